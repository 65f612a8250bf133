"""Texts to the customer: one outbound message row plus one ``customer.message`` intent on the
``sms`` channel, from the number the customer texted.

Refused here, when staff send, not later in the outbox: a customer who opted out (STOP), one
without a phone number, a text longer than the provider takes, or no number of ours to text from.
No I/O.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import intents, page_links
from bot.core.customer_mail import outgoing_files
from bot.core.errors import BadRequest
from bot.core.segments import sms_length
from bot.messages import Attachment
from bot.store import models as m

MAX_SMS_CHARS = 1600  # what SMS providers take as one (concatenated) message
RATING_QUESTION = "How did we do? Reply with a number from 1 (poor) to 5 (great)."


def subject_of(text: str) -> str:
    """A ticket's subject from the first words of a text (texts have none of their own)."""
    line = " ".join(text.split())
    return (line[:60].rsplit(" ", 1)[0] + "…") if len(line) > 60 else (line or "SMS")


def opted_out_reason(contact: m.Contact) -> str:
    return (f"{contact.phone} has opted out of texts (they sent STOP); reply by email, or wait "
            "until they text START")


async def our_number(s: AsyncSession, settings: Settings, ticket: m.Ticket, group: m.HandlerGroup) -> str:
    """Where texts to this ticket's customer come from: the number they last texted, else the
    group's first number, else ``twilio.from_number`` ("" when there is none)."""
    texted = await s.scalar(
        select(m.RawMessage.envelope_to).join(m.Message, m.Message.raw_message_id == m.RawMessage.id)
        .where(m.Message.ticket_id == ticket.id, m.Message.channel == "sms", m.Message.kind == "inbound")
        .order_by(m.Message.id.desc()).limit(1))
    if texted and texted[0]:
        return texted[0]
    config = settings.group_by_name(group.name)
    if config is not None and config.phone_numbers:
        return config.phone_numbers[0]
    return settings.twilio.from_number


async def send_sms(s: AsyncSession, settings: Settings, *, ticket: m.Ticket, contact: m.Contact,
                   group: m.HandlerGroup, body: str, kind: str, now: datetime,
                   staff_id: int | None = None, sender: str = "system",
                   files: tuple[Attachment, ...] = ()) -> m.Message:
    """A text to the ticket's customer; ``files`` go as MMS media (the SMS sender names each
    by a signed link that expires after ``attachments.mms_link_ttl_minutes``)."""
    if not contact.phone:
        raise BadRequest(f"ticket #{ticket.id} has no customer phone number to text")
    if contact.sms_opted_out:
        raise BadRequest(opted_out_reason(contact))
    if len(body) > MAX_SMS_CHARS:
        raise BadRequest(f"a text can hold {MAX_SMS_CHARS:,} characters; this one has {len(body):,}: "
                         "shorten it or send it by email")
    from_ = await our_number(s, settings, ticket, group)
    if not from_:
        raise BadRequest("there is no number to text from: set twilio.from_number or the group's "
                         "phone_numbers")
    out = m.Message(ticket_id=ticket.id, kind=kind, channel="sms", staff_id=staff_id, sender=sender,
                    body=body, delivery_status="queued", created_at=now)
    s.add(out)
    await s.flush()
    media = outgoing_files(s, out, files)
    if media:
        await s.flush()  # their ids name them in the signed links
    link = page_links.link_for(settings, ticket.id, ticket.requester_id, now=now)
    intents.customer_sms(s, ticket_id=ticket.id, message_id=out.id, to=contact.phone, from_=from_,
                         template="staff_reply", now=now, media=[row.id for row in media],
                         values={"text": body, "staff_name": sender, "group": group.name,
                                 "ticket_number": ticket.id, "page_url": link if fits(body, link) else None})
    return out


def fits(text: str, link: str | None) -> bool:
    """Whether ``link`` on a line of its own after ``text`` costs no more segments than the
    text alone: the page link rides along only when the customer pays nothing for it."""
    if not link:
        return False
    return sms_length(f"{text}\n{link}").segments <= max(1, sms_length(text).segments)


async def text_closing(s: AsyncSession, settings: Settings, *, ticket: m.Ticket, contact: m.Contact,
                       group: m.HandlerGroup, said: str, now: datetime) -> str | None:
    """Tell a customer who texts that their ticket is closed, and ask for a rating (a digit in
    answer; ``core.ratings``) unless ratings are off. Returns why they were not texted (opted
    out, no number to text from), or None."""
    question = f" {RATING_QUESTION}" if settings.tickets.rating_change_days else ""
    try:
        await send_sms(s, settings, ticket=ticket, contact=contact, group=group, kind="automatic",
                       body=said + question, now=now)
    except BadRequest as exc:
        return str(exc)
    return None
