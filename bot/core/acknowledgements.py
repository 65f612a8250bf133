"""Acknowledgements: telling a customer we have their new ticket — and when not to.

Never to automatic mail, lists, bounces or ourselves (RFC 3834, DESIGN §2.6); only to the From
address or a Reply-To in its own domain (DESIGN §3); at most so many per address, per domain
and in all per clock hour, so forged senders cannot aim us at a victim (backscatter). Works in
the caller's transaction; the mail itself is recorded by ``customer_mail``. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import lifecycle
from bot.core.customer_mail import Conversation, Draft, send_all
from bot.core.desk import Desk
from bot.core.views import MessageView, TicketView
from bot.messages import InboundMessage
from bot.store import models as m
from bot.store import upsert


async def acknowledge(s: AsyncSession, desk: Desk,
                       opened: list[tuple[InboundMessage, m.Ticket, TicketView, m.Message]]) -> None:
    """Tell each customer we have their ticket — unless answering could start a mail loop."""
    settings, now = desk.settings, desk.clock.now()
    addresses = [_ack_address(msg) for msg, *_ in opened]
    reasons = [_no_ack_reason(msg, to, settings) for (msg, *_), to in zip(opened, addresses)]
    limited = [i for i, reason in enumerate(reasons) if reason is None]
    for i, reason in zip(limited, await _ack_rate_exceeded(
            s, [addresses[i] for i in limited], settings, now=now)):
        reasons[i] = reason
    for (msg, ticket, _, _), reason in zip(opened, reasons):
        if reason is not None:
            lifecycle.record_event(s, ticket.id, "ack_suppressed", actor="system", now=now, reason=reason)
    sending = [(o, to) for o, to, reason in zip(opened, addresses, reasons) if reason is None]
    # Each ticket's whole conversation is its one message: no need to read it back. The
    # address is the one chosen above, not the message's Reply-To as such (see _ack_address).
    drafts = [Draft(ticket=ticket, view=view, template="ticket_opened", kind="automatic",
                    auto_submitted="auto-replied", first_message=MessageView.of(first),
                    known=Conversation(reply_to=to, last_inbound=msg.message_id,
                                       message_ids=(msg.message_id,) if msg.message_id else ()))
              for (msg, ticket, view, first), to in sending]
    for ((_, ticket, _, _), to), out in zip(sending, await send_all(s, desk, drafts, now=now)):
        if out is not None:
            lifecycle.record_event(s, ticket.id, "acknowledged", actor="system", now=now,
                                   message=out.id, to=to)


def _ack_address(msg: InboundMessage) -> str:
    """Where an acknowledgement goes (DESIGN §3): the Reply-To only when it is in the From
    address's own domain, else the From address. Anyone can write any Reply-To: one in a third
    party's domain must never receive automatic mail carrying this sender's subject and name."""
    sender = msg.sender_address.lower()
    reply_to = (msg.reply_to or "").lower()
    if reply_to and "@" in sender and _domain(reply_to) == _domain(sender):
        return reply_to
    return sender


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _no_ack_reason(msg: InboundMessage, to: str, settings: Settings) -> str | None:
    # RFC 3834 §2 and DESIGN §2.6: never answer automatic mail, lists, bounces or ourselves.
    if msg.loop:
        return "our own mail"
    if msg.auto_submitted:
        return msg.auto_submitted
    if msg.envelope_sender == "":
        return "null envelope sender"
    if not msg.sender_address or "@" not in to:
        return "no reply address"
    if _domain(to) in _our_domains(settings):
        return "reply address in our own domain"
    return None


def _our_domains(settings: Settings) -> set[str]:
    return {d.lower() for d in settings.smtp_in.domains} | {settings.email_out.reply_domain.lower()}


async def _ack_rate_exceeded(s: AsyncSession, addresses: list[str], settings: Settings, *,
                             now: datetime) -> list[str | None]:
    """Caps on acknowledgements per clock hour, for each address: why it may not have one, or
    None. Mail forged with someone else's address must not turn us into a cannon aimed at them
    (backscatter), and an auto-responder that answers each acknowledgement from a new address
    (bot+1@, bot+2@, …) is still one domain; the total caps everything else. Every cap is
    counted in the one statement, in a small table of its own, however long the history is."""
    out = settings.email_out
    hour = now.replace(minute=0, second=0, microsecond=0)
    reasons = await _capped(s, addresses, [
        (out.ack_rate_limit_per_hour, "rate limit", lambda a: f"ack:{a}"),
        (out.ack_rate_limit_per_domain_per_hour, "domain rate limit", lambda a: f"ack-domain:{_domain(a)}"),
    ], hour=hour)
    # The total counts only what passed the other caps: a flood from one sender or domain
    # must not use up the hour's acknowledgements for everyone else.
    passed = [i for i, reason in enumerate(reasons) if reason is None]
    for i, reason in zip(passed, await _capped(s, [addresses[i] for i in passed], [
            (out.ack_rate_limit_total_per_hour, "total rate limit", lambda a: "ack-total")], hour=hour)):
        reasons[i] = reason
    return reasons


Cap = tuple[int, str, Callable[[str], str]]  # limit (0: none), reason, counter key of an address


async def _capped(s: AsyncSession, addresses: list[str], caps: list[Cap], *,
                  hour: datetime) -> list[str | None]:
    """Count each address against each cap in one statement; why each may not have one."""
    caps = [cap for cap in caps if cap[0] > 0]
    if not caps or not addresses:
        return [None] * len(addresses)
    counts = await upsert.bump_counters(
        s, [key(a) for a in addresses for _, _, key in caps], window_start=hour)
    reasons: list[str | None] = []
    for i in range(len(addresses)):  # one count per cap for each address, in the caps' order
        mine = counts[i * len(caps):(i + 1) * len(caps)]
        reasons.append(next((reason for (limit, reason, _), count in zip(caps, mine) if count > limit), None))
    return reasons
