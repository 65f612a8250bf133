"""``ingest()``: every spooled customer message, whatever its door, becomes a ticket or joins one.

One transaction takes the entry out of the spool and stores the contact, the ticket, the
message, its attachments, the events and the outbox intents (the card or a thread post, the
customer's acknowledgement). A batch of entries may share one transaction; a replay (same
idempotency key) changes nothing. Must not parse, do network I/O or import an adapter: the
intake pipeline parses and hands over ``Parsed`` items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import groups, intents, lifecycle, spool
from bot.core.customer_mail import Conversation, Draft, send_all
from bot.core.desk import Desk
from bot.core.errors import Failed, Rejected
from bot.core.spool import SpoolEntry
from bot.core.threader import find_ticket, strip_subject_tag
from bot.core.tickets import ticket_view
from bot.core.views import CardView, MessageView, QuarantineView, TicketView
from bot.messages import InboundMessage
from bot.store import models as m
from bot.store import upsert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    outcome: str  # created | appended | duplicate | bounce | quarantined
    ticket_number: int | None = None
    message_id: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Parsed:
    """A spool entry and what the parser made of it (``message`` None: it could not)."""

    entry: SpoolEntry
    message: InboundMessage | None
    error: str = ""


TAKEN_ELSEWHERE = "taken by another worker"


class Contended(Failed):
    """Another writer changed the same rows at the same moment; trying again will settle it."""


class NotStorable(Rejected):
    """The message breaks a limit of the store (an absurd address, a value too long): retrying
    cannot help, so it is held in quarantine for a person."""


async def ingest(desk: Desk, items: list[Parsed], *,
                 hold_seconds: float | None = None) -> list[IngestResult]:
    """Ingest ``items`` in order, in one transaction: all of them or none. With
    ``hold_seconds``, stop taking more once the transaction has run that long and return the
    results of those taken (at least one); the caller passes the rest again."""
    deadline = None if hold_seconds is None else desk.clock.monotonic() + hold_seconds
    try:
        async with desk.db.transaction() as s:
            return await _ingest_all(s, desk, items, deadline=deadline)
    except IntegrityError as exc:
        # Another writer stored the same key or row a moment before: next time it is a duplicate.
        raise Contended(f"another writer got there first: {exc.orig}") from exc
    except DataError as exc:
        raise NotStorable(f"the store refused the message: {exc.orig}") from exc


async def hold(desk: Desk, item: Parsed, *, reason: str, detail: str) -> IngestResult:
    """Take an entry out of the queue into quarantine (it could not be ingested)."""
    async with desk.db.transaction() as s:
        if not await spool.take(s, item.entry.id, state="held", now=desk.clock.now()):
            return IngestResult("duplicate", detail=TAKEN_ELSEWHERE)
        q = await _hold(s, desk, item, reason=reason, detail=detail)
        return IngestResult("quarantined", detail=f"quarantine #{q}: {reason}")


async def _ingest_all(s: AsyncSession, desk: Desk, items: list[Parsed], *,
                      deadline: float | None) -> list[IngestResult]:
    """The spool's bookkeeping is done for the whole batch at once (which entries are still
    queued, which keys were seen, and marking them), and new tickets are opened together, so
    a batch costs a few statements more than one message, not a dozen more per message."""
    queued = await spool.still_queued(s, [item.entry.id for item in items])
    seen = await spool.keys_seen(s, {_key(i) for i in items})
    openings = _Openings(s, desk)
    taken: list[tuple[Parsed, IngestResult | _Opening]] = []
    elsewhere: set[str] = set()  # senders with an entry another worker holds: theirs go first
    for item in items:
        entry = item.entry
        if entry.id not in queued or entry.sender_key in elsewhere:
            elsewhere.add(entry.sender_key)
            taken.append((item, IngestResult("duplicate", detail=TAKEN_ELSEWHERE)))
            continue
        key = _key(item)
        if seen.get(key, entry.id) != entry.id:  # a copy of a message taken before
            taken.append((item, IngestResult("duplicate", detail="already ingested")))
            continue
        seen[key] = entry.id
        if item.message is None:
            q = await _hold(s, desk, item, reason="unparseable", detail=item.error)
            taken.append((item, IngestResult("quarantined", detail=f"quarantine #{q}: unparseable")))
        else:
            if openings.answered_by(item.message):
                await openings.open()  # it answers a message of this batch: that ticket first
            taken.append((item, await _route(s, desk, item, item.message, openings)))
        if deadline is not None and desk.clock.monotonic() >= deadline:
            break
    await openings.open()
    results = [outcome.result if isinstance(outcome, _Opening) else outcome for _, outcome in taken]
    finished: list[tuple[int, str, str | None]] = []
    for (item, _), result in zip(taken, results):
        assert result is not None
        if result.detail == TAKEN_ELSEWHERE:
            continue  # not ours to mark
        duplicate, held = result.outcome == "duplicate", result.outcome == "quarantined"
        finished.append((item.entry.id, "held" if held else "done",
                         None if duplicate else _key(item)[1]))
        if item.entry.held and not held:
            await _resolve_hold(s, desk, item, result)
    await spool.finish(s, finished, now=desk.clock.now())
    return results


def _key(item: Parsed) -> tuple[str, str]:
    """The idempotency key of an entry (DESIGN §2.2): its Message-ID, or a hash of its bytes
    (unparseable mail too, so an MTA's retry of it is not held twice)."""
    key = item.message.source_id if item.message is not None else f"sha256:{item.entry.sha256}"
    return item.entry.channel, key[:spool.MAX_SOURCE_ID]


async def _resolve_hold(s: AsyncSession, desk: Desk, item: Parsed, result: IngestResult) -> None:
    """Held mail that went through after all (``deskbell reprocess``) leaves quarantine."""
    status = "duplicate" if result.outcome == "duplicate" else "reprocessed"
    await s.execute(update(m.Quarantine).where(
        m.Quarantine.raw_message_id == item.entry.id, m.Quarantine.status == "held")
        .values(status=status, ticket_id=result.ticket_number, resolved_at=desk.clock.now()))


async def _route(s: AsyncSession, desk: Desk, item: Parsed, msg: InboundMessage,
                 openings: "_Openings") -> "IngestResult | _Opening":
    """Where a parsed message goes: a bounce, a report to hold, a new ticket or an old one."""
    if msg.bounce is not None:
        return await _bounce(s, desk, item, msg)
    contact = await _contact(s, msg, now=desk.clock.now())
    match = await find_ticket(s, msg, contact_id=contact.id,
                              reply_domain=desk.settings.email_out.reply_domain)
    if match is None and _is_report(msg):
        # Delay notices, delivery and read receipts: worth a line on their ticket, never a ticket.
        q = await _hold(s, desk, item, reason="report", detail=msg.auto_submitted or "")
        return IngestResult("quarantined", detail=f"quarantine #{q}: report")
    if match is None:
        return openings.add(item, msg, contact)
    return await _append(s, desk, msg, item.entry, contact, match.ticket, how=match.how)


@dataclass
class _Opening:
    """A message that opens a ticket, waiting to be written with the others of its batch."""

    item: Parsed
    msg: InboundMessage
    contact: m.Contact
    result: IngestResult | None = None


class _Openings:
    """New tickets of one transaction, opened together: their tickets, messages,
    acknowledgements and intents are each written in one statement for the lot."""

    def __init__(self, s: AsyncSession, desk: Desk) -> None:
        self.s, self.desk = s, desk
        self.waiting: list[_Opening] = []
        self._message_ids: set[str] = set()

    def add(self, item: Parsed, msg: InboundMessage, contact: m.Contact) -> _Opening:
        opening = _Opening(item, msg, contact)
        self.waiting.append(opening)
        if msg.message_id:
            self._message_ids.add(msg.message_id)
        return opening

    def answered_by(self, msg: InboundMessage) -> bool:
        """Does ``msg`` refer to a message still waiting here? (Only Message-IDs can: a reply
        token or a ticket number is not known to anyone before the ticket exists.)"""
        return bool(self._message_ids) and not self._message_ids.isdisjoint(
            (*msg.in_reply_to, *msg.references))

    async def open(self) -> None:
        if not self.waiting:
            return
        waiting, self.waiting = self.waiting, []
        self._message_ids = set()
        s, settings, now = self.s, self.desk.settings, self.desk.clock.now()
        chosen = [await groups.route(s, settings, recipients=o.msg.recipients) for o in waiting]
        tickets = await lifecycle.open_tickets(s, [lifecycle.NewTicket(
            subject=strip_subject_tag(o.msg.subject), group=group, requester_id=o.contact.id,
            channel=o.msg.channel, priority=settings.tickets.default_priority,
            actor=_actor(o.msg), event_data={"door": o.msg.door})
            for o, group in zip(waiting, chosen)], now=now)
        messages = await _store_messages(s, [(t, o.msg, o.item.entry, o.contact)
                                             for t, o in zip(tickets, waiting)], now=now)
        acknowledge: list[tuple[InboundMessage, m.Ticket, TicketView, m.Message]] = []
        for o, group, ticket, message in zip(waiting, chosen, tickets, messages):
            view = await ticket_view(s, ticket, now=now, new=True)
            first = MessageView.of(message, intents.attachment_views(o.msg))
            intents.post_card(s, ticket_id=ticket.id, card=CardView(ticket=view, first_message=first),
                              destination=groups.card_channel(group, settings),
                              now=now)
            if o.msg.channel == "email":
                acknowledge.append((o.msg, ticket, view, message))
            o.result = IngestResult("created", ticket_number=ticket.id, message_id=message.id)
            log.info("ticket created ticket=%s channel=%s group=%s door=%s", ticket.id,
                     o.msg.channel, group.name, o.msg.door)
        await _acknowledge(s, self.desk, acknowledge)


async def _append(s: AsyncSession, desk: Desk, msg: InboundMessage, entry: SpoolEntry,
                  contact: m.Contact, ticket: m.Ticket, *, how: str) -> IngestResult:
    now = desk.clock.now()
    [message] = await _store_messages(s, [(ticket, msg, entry, contact)], now=now)
    # An out-of-office answer (RFC 3834 §2), a report or our own mail coming back joins the
    # ticket but must not reopen it.
    lifecycle.customer_wrote(s, ticket, actor=_actor(msg), now=now, message_id=message.id,
                             threaded_by=how, reopen=not msg.auto_submitted and not msg.loop)
    view = await ticket_view(s, ticket, now=now)
    card = await intents.card_item(s, ticket.id)
    await intents.post_thread_message(s, ticket_id=ticket.id, ticket=view, card=card,
                                      message=MessageView.of(message, intents.attachment_views(msg)),
                                      now=now)
    group = await s.get_one(m.HandlerGroup, ticket.group_id)
    await intents.update_card(s, ticket_id=ticket.id, ticket=view, now=now, card=card,
                              repost_to=groups.card_channel(group, desk.settings))
    log.info("message joined ticket=%s channel=%s threaded_by=%s", ticket.id, msg.channel, how)
    return IngestResult("appended", ticket_number=ticket.id, message_id=message.id, detail=how)


async def _store_messages(s: AsyncSession,
                          received: list[tuple[m.Ticket, InboundMessage, SpoolEntry, m.Contact]], *,
                          now: datetime) -> list[m.Message]:
    """The customer messages as ticket entries, with their attachments (files kept once)."""
    messages = [m.Message(ticket_id=ticket.id, kind="inbound", channel=msg.channel,
                          contact_id=contact.id, sender=_sender_label(msg)[:400],
                          reply_to=msg.reply_to if msg.reply_to and len(msg.reply_to) <= 320 else None,
                          subject=msg.subject[:998], body=msg.body, quoted=msg.quoted,
                          message_id=msg.message_id, raw_message_id=entry.id,
                          defects=list(msg.defects) or None,
                          auto_submitted=msg.auto_submitted[:100] if msg.auto_submitted else None,
                          created_at=now)
                for ticket, msg, entry, contact in received]
    s.add_all(messages)
    await s.flush()
    files = [a for _, msg, _, _ in received for a in msg.attachments]
    if files:
        await upsert.blobs(s, ((a.sha256, a.data) for a in files))
        s.add_all(m.AttachmentRow(message_id=message.id, name=a.name[:255],
                                  content_type=a.content_type[:255], size=a.size, sha256=a.sha256,
                                  inline=a.inline)
                  for message, (_, msg, _, _) in zip(messages, received) for a in msg.attachments)
    return messages


async def _acknowledge(s: AsyncSession, desk: Desk,
                       opened: list[tuple[InboundMessage, m.Ticket, TicketView, m.Message]]) -> None:
    """Tell each customer we have their ticket — unless answering could start a mail loop."""
    settings, now = desk.settings, desk.clock.now()
    reasons = []
    for msg, *_ in opened:
        reason = _no_ack_reason(msg)
        if reason is None and _ack_address(msg).rpartition("@")[2] in _our_domains(settings):
            reason = "reply address in our own domain"
        reasons.append(reason)
    limited = [i for i, reason in enumerate(reasons) if reason is None]
    for i, exceeded in zip(limited, await _ack_rate_exceeded(
            s, [_ack_address(opened[i][0]) for i in limited], settings, now=now)):
        if exceeded:
            reasons[i] = "rate limit"
    for (msg, ticket, _, _), reason in zip(opened, reasons):
        if reason is not None:
            lifecycle.record_event(s, ticket.id, "ack_suppressed", actor="system", now=now, reason=reason)
    sending = [o for o, reason in zip(opened, reasons) if reason is None]
    # Each ticket's whole conversation is its one message: no need to read it back.
    drafts = [Draft(ticket=ticket, view=view, template="ticket_opened", kind="automatic",
                    auto_submitted="auto-replied", first_message=MessageView.of(first),
                    known=Conversation(reply_to=first.reply_to, last_inbound=msg.message_id,
                                       message_ids=(msg.message_id,) if msg.message_id else ()))
              for msg, ticket, view, first in sending]
    for (msg, ticket, _, _), out in zip(sending, await send_all(s, desk, drafts, now=now)):
        if out is not None:
            lifecycle.record_event(s, ticket.id, "acknowledged", actor="system", now=now,
                                   message=out.id, to=_ack_address(msg))


def _ack_address(msg: InboundMessage) -> str:
    return (msg.reply_to or msg.sender_address).lower()


def _is_report(msg: InboundMessage) -> bool:
    return (msg.auto_submitted or "").startswith(("dsn:", "mailer-daemon:", "report:"))


def _no_ack_reason(msg: InboundMessage) -> str | None:
    # RFC 3834 §2 and DESIGN §2.6: never answer automatic mail, lists, bounces or ourselves.
    if msg.loop:
        return "our own mail"
    if msg.auto_submitted:
        return msg.auto_submitted
    if msg.envelope_sender == "":
        return "null envelope sender"
    if not msg.sender_address or "@" not in (msg.reply_to or msg.sender_address):
        return "no reply address"
    return None


def _our_domains(settings: Settings) -> set[str]:
    return {d.lower() for d in settings.smtp_in.domains} | {settings.email_out.reply_domain.lower()}


async def _ack_rate_exceeded(s: AsyncSession, addresses: list[str], settings: Settings, *,
                             now: datetime) -> list[bool]:
    """Per-destination cap on acknowledgements: mail forged with someone else's Reply-To must
    not turn us into a cannon aimed at them (backscatter). Counted per clock hour in its own
    small table, so the check costs one statement however long the history is."""
    limit = settings.email_out.ack_rate_limit_per_hour
    if limit <= 0:
        return [False] * len(addresses)
    hour = now.replace(minute=0, second=0, microsecond=0)
    counts = await upsert.bump_counters(s, [f"ack:{a}" for a in addresses], window_start=hour)
    return [count > limit for count in counts]


async def _bounce(s: AsyncSession, desk: Desk, item: Parsed, msg: InboundMessage) -> IngestResult:
    """A DSN marks the mail it reports as failed; a DSN about nothing we sent is held."""
    now = desk.clock.now()
    bounce = msg.bounce
    assert bounce is not None
    original = None
    if bounce.original_message_id:
        original = await s.scalar(select(m.Message).where(
            m.Message.message_id == bounce.original_message_id,
            m.Message.kind.in_(("outbound", "automatic"))).limit(1))
    if original is None:
        q = await _hold(s, desk, item, reason="bounce",
                        detail=f"delivery report about {bounce.original_message_id or 'unknown mail'}"
                               f" {bounce.status} {bounce.diagnostic}".strip())
        return IngestResult("quarantined", detail=f"quarantine #{q}: bounce")
    original.delivery_status = "failed"
    lifecycle.record_event(s, original.ticket_id, "bounce", actor="system", now=now,
                           message=original.id, status=bounce.status,
                           recipients=list(bounce.recipients), diagnostic=bounce.diagnostic[:500])
    text = (f"Mail to {', '.join(bounce.recipients) or 'the customer'} bounced"
            f" ({bounce.status or 'no status'}).")
    await intents.post_notice_in_thread(s, ticket_id=original.ticket_id, text=text, now=now)
    log.info("bounce recorded ticket=%s status=%s", original.ticket_id, bounce.status)
    return IngestResult("bounce", ticket_number=original.ticket_id, detail=bounce.status)


async def _hold(s: AsyncSession, desk: Desk, item: Parsed, *, reason: str, detail: str) -> int:
    """Quarantine the entry (the caller marks it ``held``) and announce it once."""
    now, entry = desk.clock.now(), item.entry
    if item.entry.held:  # reprocessed and still not ingestible: the same hold, not a new one
        q = await s.scalar(select(m.Quarantine).where(
            m.Quarantine.raw_message_id == entry.id, m.Quarantine.status == "held"))
        if q is not None:
            q.reason, q.detail = reason, detail[:4000]
            return q.id
    q = m.Quarantine(raw_message_id=entry.id, reason=reason, detail=detail[:4000],
                     status="held", created_at=now)
    s.add(q)
    await s.flush()
    view = QuarantineView(id=q.id, reason=reason, detail=q.detail, status=q.status,
                          size=len(entry.data), envelope_from=entry.envelope_from,
                          envelope_to=entry.envelope_to, created_at=now)
    intents.quarantine_notice(s, destination=desk.settings.slack.fallback_channel, item=view, now=now)
    log.warning("quarantined id=%s reason=%s size=%s", q.id, reason, len(entry.data))
    return q.id


async def _contact(s: AsyncSession, msg: InboundMessage, *, now: datetime) -> m.Contact:
    email = msg.channel == "email"
    address = msg.sender_address.lower() if email else msg.sender_address
    if len(address) > (320 if email else 32):
        raise NotStorable(f"sender address of {len(address)} characters is not an address")
    contact = await upsert.contact(s, now=now, name=msg.sender_name,
                                   **({"email": address} if email else {"phone": address}))
    if msg.sender_name and not contact.name:
        contact.name = msg.sender_name[:200]
    return contact


def _actor(msg: InboundMessage) -> str:
    return f"customer:{msg.sender_address}"[:400]


def _sender_label(msg: InboundMessage) -> str:
    return f"{msg.sender_name} <{msg.sender_address}>" if msg.sender_name else msg.sender_address
