"""Which ticket a customer message answers — the one place that decides (DESIGN §2.5).

Order: reply-token address → our Message-IDs in In-Reply-To/References → any stored
Message-ID → subject tag ``[#N]`` only when the sender is already on that ticket → SMS: same
phone with a ticket open or closed recently → a new ticket. Reads only; never writes.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import InboundMessage
from bot.store import models as m

# "support+k7f2m9qx4t@support.example.com" → local "support", token "k7f2m9qx4t"
REPLY_ADDRESS_RE = re.compile(r"^(?P<local>[^@+]+)\+(?P<token>[a-z0-9]{8,32})@(?P<domain>[^@]+)$", re.I)
# "Re: Router down [#42]" → 42
SUBJECT_TAG_RE = re.compile(r"\[#(\d{1,9})\]")  # ticket ids are 32-bit
# "<t42.17.f3a9c2@support.example.com>" (without brackets) → ticket 42, message 17
OUR_MESSAGE_ID_RE = re.compile(r"^t(?P<ticket>\d+)\.(?P<msg>\d+)\.[0-9a-z]+@(?P<domain>.+)$", re.I)

TOKEN_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o/1/l: survives being read aloud


@dataclass(frozen=True)
class ThreadMatch:
    ticket: m.Ticket
    how: str  # reply_token | our_message_id | message_id | subject_tag | phone


def new_reply_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(12))


def new_message_id(*, ticket: int, message: int, domain: str) -> str:
    """Our Message-ID (without brackets): t{ticket}.{msg}.{rand}@domain (DESIGN §2.6)."""
    return f"t{ticket}.{message}.{secrets.token_hex(6)}@{domain}"


def reply_address(*, from_address: str, token: str, reply_domain: str) -> str:
    local = from_address.split("@", 1)[0].split("+", 1)[0]
    return f"{local}+{token}@{reply_domain}"


def reply_token_of(address: str, *, reply_domain: str) -> str | None:
    match = REPLY_ADDRESS_RE.match(address.strip())
    if match and match["domain"].lower() == reply_domain.lower():
        return match["token"].lower()
    return None


# Our envelope sender (MAIL FROM), which the email sender sets: "bounces+<local part of our
# Message-ID>@reply_domain" (VERP). Bounces go to it, so one names the mail it is about even
# when it quotes nothing of it, and being in reply_domain it comes back to us. Only machines
# write to it (RFC 5321 §4.5.5, RFC 3834 §4): it never opens a ticket nor gets an answer.
RETURN_PATH_LOCAL = "bounces"
_NOT_IN_LOCAL_PART = re.compile(r"[^A-Za-z0-9._=-]")


def return_path(message_id: str) -> str:
    """The envelope sender of our mail with this Message-ID (ours are always address-safe;
    anything else is made so, and then names nothing)."""
    local, _, domain = message_id.rpartition("@")
    return f"{RETURN_PATH_LOCAL}+{_NOT_IN_LOCAL_PART.sub('-', local).strip('.')}@{domain}"


def returned_message_id(address: str, *, domain: str) -> str | None:
    """The Message-ID a return-path address of ``domain`` names ("" when it names none); None
    for any other address."""
    local, at, where = address.strip().strip("<>").rpartition("@")
    tag, plus, token = local.partition("+")
    if not at or not plus or tag.lower() != RETURN_PATH_LOCAL or where.lower() != domain.lower():
        return None
    return f"{token}@{domain}" if token else ""


def strip_subject_tag(subject: str) -> str:
    """Drop only our own ``[#N]`` tag; other systems' prefixes stay as they were."""
    return re.sub(r"\s{2,}", " ", SUBJECT_TAG_RE.sub("", subject)).strip()


async def find_ticket(session: AsyncSession, msg: InboundMessage, *, contact_id: int | None,
                      reply_domain: str, now: datetime | None = None,
                      sms_reopen_window: timedelta = timedelta(days=7)) -> ThreadMatch | None:
    if msg.channel == "sms":
        if contact_id is None or now is None:
            return None
        return await _by_phone(session, contact_id, since=now - sms_reopen_window)
    if msg.ticket_hint is not None:  # written on the ticket's own page: the signed link proved it
        ticket = await session.get(m.Ticket, msg.ticket_hint)
        return ThreadMatch(ticket, "page") if ticket is not None else None
    for rcpt in msg.recipients:
        token = reply_token_of(rcpt, reply_domain=reply_domain)
        if token:
            ticket = await session.scalar(select(m.Ticket).where(m.Ticket.reply_token == token))
            if ticket is not None:
                return ThreadMatch(ticket, "reply_token")

    # Newest reference first: In-Reply-To, then References from the end.
    ids = list(dict.fromkeys([*msg.in_reply_to, *reversed(msg.references)]))
    ours = [i for i in ids if i.lower().endswith("@" + reply_domain.lower()) and OUR_MESSAGE_ID_RE.match(i)]
    for group, how in ((ours, "our_message_id"), ([i for i in ids if i not in ours], "message_id")):
        for message_id in group:
            ticket_id = await session.scalar(
                select(m.Message.ticket_id).where(m.Message.message_id == message_id).limit(1))
            if ticket_id is not None:
                return ThreadMatch(await session.get_one(m.Ticket, ticket_id), how)

    if contact_id is not None:
        for number in SUBJECT_TAG_RE.findall(msg.subject):
            ticket = await session.get(m.Ticket, int(number))
            if ticket is not None and await _is_on_ticket(session, ticket, contact_id):
                return ThreadMatch(ticket, "subject_tag")
    return None


# Statuses a text joins as it is (anything else is reopened by it, if recent enough).
_STILL_OPEN = ("new", "open", "waiting", "on_hold")


async def _by_phone(session: AsyncSession, contact_id: int, *, since: datetime) -> ThreadMatch | None:
    """A text has no headers to thread by: it joins the sender's newest open ticket, else
    their newest one resolved or closed since ``since`` (it reopens that one)."""
    mine = select(m.Ticket).where(m.Ticket.requester_id == contact_id).order_by(m.Ticket.id.desc()).limit(1)
    ticket = await session.scalar(mine.where(m.Ticket.status.in_(_STILL_OPEN)))
    if ticket is None:
        ticket = await session.scalar(mine.where(
            m.Ticket.status.in_(("resolved", "closed")),
            func.coalesce(m.Ticket.closed_at, m.Ticket.resolved_at, m.Ticket.updated_at) >= since))
    return ThreadMatch(ticket, "phone") if ticket is not None else None


async def _is_on_ticket(session: AsyncSession, ticket: m.Ticket, contact_id: int) -> bool:
    if ticket.requester_id == contact_id:
        return True
    found = await session.scalar(select(m.Message.id).where(
        m.Message.ticket_id == ticket.id, m.Message.contact_id == contact_id).limit(1))
    return found is not None
