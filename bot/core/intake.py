"""``ingest()``: every customer message, whatever its door, becomes a ticket or joins one.

One transaction stores the raw bytes, the contact, the ticket, the message, its attachments,
the events and the outbox rows (Slack card or thread reply, customer acknowledgement). The
caller acknowledges the sender only after it returns. Must not do network I/O or import an
adapter: renderers come in through ``core.ports.Renderers``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import cards, groups
from bot.core.customer_mail import send_to_customer
from bot.core.desk import Desk
from bot.core.errors import Rejected
from bot.core.outbox import enqueue
from bot.core.threading import find_ticket, new_reply_token, strip_subject_tag
from bot.core.tickets import ticket_view
from bot.core.views import CardView, MessageView, QuarantineView, TicketView
from bot.messages import InboundMessage
from bot.store import models as m
from bot.store.db import Database

log = logging.getLogger(__name__)

REOPENING = {"waiting": "open", "resolved": "open", "closed": "open"}


@dataclass(frozen=True)
class IngestResult:
    outcome: str  # created | appended | duplicate | bounce | quarantined
    ticket_number: int | None = None
    message_id: int | None = None
    detail: str = ""


class NotStorable(Rejected):
    """The message breaks a limit of the store (an absurd address, a value too long): retrying
    cannot help, so the door keeps it in quarantine instead of asking the sender to retry."""


async def ingest(desk: Desk, msg: InboundMessage) -> IngestResult:
    """Store ``msg`` and everything it causes, in one transaction; replays change nothing."""
    try:
        async with desk.db.transaction() as s:
            return await _ingest(s, desk, msg)
    except IntegrityError as exc:
        # Another process stored the same (channel, source_id) between our check and insert.
        async with desk.db.reading() as s:
            if await _raw_for(s, msg.channel, msg.source_id) is not None:
                return IngestResult("duplicate", detail="stored concurrently")
        raise NotStorable(f"the store refused the message: {exc.orig}") from exc
    except DataError as exc:
        raise NotStorable(f"the store refused the message: {exc.orig}") from exc


async def quarantine(desk: Desk, *, channel: str, raw: bytes, reason: str, detail: str,
                     envelope_from: str | None = None, envelope_to: tuple[str, ...] = (),
                     door: str = "", source_id: str | None = None) -> IngestResult:
    """Keep bytes we could not turn into a message, and announce them in Slack."""
    source_id = source_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    async with desk.db.transaction() as s:
        existing = await _raw_for(s, channel, source_id)
        if existing is not None:
            return IngestResult("duplicate", detail="already held")
        raw_row = _raw_row(channel=channel, source_id=source_id, raw=raw, door=door,
                           envelope_from=envelope_from, envelope_to=envelope_to,
                           now=desk.clock.now())
        s.add(raw_row)
        await s.flush()
        q = await _hold(s, desk, raw_row, reason=reason, detail=detail)
        return IngestResult("quarantined", detail=f"quarantine #{q.id}: {reason}")


@dataclass(frozen=True)
class HeldMail:
    """A quarantined message's raw bytes and envelope, for ``reprocess``."""

    id: int
    reason: str
    raw: bytes
    envelope_from: str | None
    envelope_to: tuple[str, ...]
    door: str


async def held_mail(db: Database, *, quarantine_id: int | None = None) -> list[HeldMail]:
    """Quarantined mail still held (all of it, or one id)."""
    async with db.reading() as s:
        query = (select(m.Quarantine, m.RawMessage).join(m.RawMessage, m.RawMessage.id == m.Quarantine.raw_message_id)
                 .where(m.Quarantine.status == "held").order_by(m.Quarantine.id))
        if quarantine_id is not None:
            query = query.where(m.Quarantine.id == quarantine_id)
        return [HeldMail(id=q.id, reason=q.reason, raw=r.data, envelope_from=r.envelope_from,
                         envelope_to=tuple(r.envelope_to), door=r.door)
                for q, r in (await s.execute(query)).all()]


async def reprocess(desk: Desk, quarantine_id: int, msg: InboundMessage) -> IngestResult:
    """Run held mail through intake again (after a fix); it keeps its stored raw bytes."""
    async with desk.db.transaction() as s:
        q = await s.get_one(m.Quarantine, quarantine_id)
        if q.status != "held":
            return IngestResult("duplicate", ticket_number=q.ticket_id, detail="already reprocessed")
        raw_row = await s.get_one(m.RawMessage, q.raw_message_id)
        result = await _ingest(s, desk, msg, raw_row=raw_row, held=q)
        if result.outcome != "quarantined":
            q.status, q.ticket_id, q.resolved_at = "reprocessed", result.ticket_number, desk.clock.now()
        return result


async def _ingest(s: AsyncSession, desk: Desk, msg: InboundMessage, *,
                  raw_row: m.RawMessage | None = None, held: m.Quarantine | None = None) -> IngestResult:
    settings, now = desk.settings, desk.clock.now()
    if raw_row is None:
        existing = await _raw_for(s, msg.channel, msg.source_id)
        if existing is not None:
            number = await s.scalar(select(m.Message.ticket_id).where(
                m.Message.raw_message_id == existing.id).limit(1))
            return IngestResult("duplicate", ticket_number=number)
        raw_row = _raw_row(channel=msg.channel, source_id=msg.source_id, raw=msg.raw, door=msg.door,
                           envelope_from=msg.envelope_sender, envelope_to=msg.recipients, now=now)
        s.add(raw_row)
        await s.flush()

    if msg.bounce is not None:
        return await _bounce(s, desk, msg, raw_row, held=held)

    contact = await _contact(s, msg, now=now)
    match = await find_ticket(s, msg, contact_id=contact.id,
                              reply_domain=settings.email_out.reply_domain)
    if match is None and _is_report(msg):
        # Delay notices, delivery and read receipts: worth a line on their ticket, never a ticket.
        q = await _hold(s, desk, raw_row, reason="report", detail=msg.auto_submitted or "")
        return IngestResult("quarantined", detail=f"quarantine #{q.id}: report")
    if match is None:
        return await _open_ticket(s, desk, msg, raw_row, contact)
    return await _append(s, desk, msg, raw_row, contact, match.ticket, how=match.how)


async def _open_ticket(s: AsyncSession, desk: Desk, msg: InboundMessage,
                       raw_row: m.RawMessage, contact: m.Contact) -> IngestResult:
    settings, now = desk.settings, desk.clock.now()
    group = await groups.route(s, settings, recipients=msg.recipients)
    ticket = m.Ticket(subject=strip_subject_tag(msg.subject)[:998] or "(no subject)",
                      status="new", priority=settings.tickets.default_priority,
                      group_id=group.id, requester_id=contact.id, channel=msg.channel,
                      reply_token=new_reply_token(), via_email=msg.channel == "email",
                      unread=True, weight=0, created_at=now, updated_at=now,
                      last_customer_message_at=now, last_action_at=now)
    s.add(ticket)
    await s.flush()
    message = await _store_message(s, ticket, msg, raw_row, contact, now=now)
    s.add(m.Event(ticket_id=ticket.id, kind="created", actor=_actor(msg), created_at=now,
                  data={"channel": msg.channel, "group": group.name, "door": msg.door}))

    view = await ticket_view(s, ticket, now=now)
    message_view = MessageView.of(message, cards.attachment_views(msg))
    cards.post_card(s, desk.renderers, ticket_id=ticket.id,
                    card=CardView(ticket=view, first_message=message_view),
                    channel=group.slack_channel or settings.slack.fallback_channel, now=now)
    if msg.channel == "email":
        await _acknowledge(s, desk, msg, ticket, view, message_view, contact)
    log.info("ticket created ticket=%s channel=%s group=%s door=%s", ticket.id, msg.channel,
             group.name, msg.door)
    return IngestResult("created", ticket_number=ticket.id, message_id=message.id)


async def _append(s: AsyncSession, desk: Desk, msg: InboundMessage, raw_row: m.RawMessage,
                  contact: m.Contact, ticket: m.Ticket, *, how: str) -> IngestResult:
    now = desk.clock.now()
    message = await _store_message(s, ticket, msg, raw_row, contact, now=now)
    ticket.updated_at = now
    ticket.last_customer_message_at = now
    ticket.unread = True
    s.add(m.Event(ticket_id=ticket.id, kind="customer_message", actor=_actor(msg),
                  created_at=now, data={"message": message.id, "threaded_by": how}))
    # An out-of-office answer (RFC 3834 §2), a report or our own mail coming back joins the
    # ticket but must not reopen it.
    if ticket.status in REOPENING and not msg.auto_submitted and not msg.loop:
        old, ticket.status = ticket.status, REOPENING[ticket.status]
        ticket.resolved_at = ticket.closed_at = None
        s.add(m.Event(ticket_id=ticket.id, kind="status", actor=_actor(msg), created_at=now,
                      data={"from": old, "to": ticket.status, "reason": "customer replied"}))
    view = await ticket_view(s, ticket, now=now)
    await cards.post_thread_message(s, desk.renderers, ticket_id=ticket.id, ticket=view,
                                    message=MessageView.of(message, cards.attachment_views(msg)),
                                    now=now)
    await cards.update_card(s, desk.renderers, ticket_id=ticket.id, ticket=view, now=now)
    log.info("message joined ticket=%s channel=%s threaded_by=%s", ticket.id, msg.channel, how)
    return IngestResult("appended", ticket_number=ticket.id, message_id=message.id, detail=how)


async def _store_message(s: AsyncSession, ticket: m.Ticket, msg: InboundMessage,
                         raw_row: m.RawMessage, contact: m.Contact, *, now: datetime) -> m.Message:
    message = m.Message(ticket_id=ticket.id, kind="inbound", channel=msg.channel,
                        contact_id=contact.id, sender=_sender_label(msg)[:400],
                        reply_to=msg.reply_to if msg.reply_to and len(msg.reply_to) <= 320 else None,
                        subject=msg.subject[:998],
                        body=msg.body, quoted=msg.quoted, message_id=msg.message_id,
                        raw_message_id=raw_row.id,
                        auto_submitted=msg.auto_submitted[:100] if msg.auto_submitted else None,
                        created_at=now)
    s.add(message)
    await s.flush()
    if not msg.attachments:
        return message
    digests = [a.sha256 for a in msg.attachments]
    known = set((await s.scalars(select(m.Blob.sha256).where(m.Blob.sha256.in_(digests)))).all())
    for attachment, digest in zip(msg.attachments, digests):
        if digest not in known:  # the same file twice is stored once
            known.add(digest)
            s.add(m.Blob(sha256=digest, size=attachment.size, data=attachment.data))
    await s.flush()  # blobs first: attachment rows refer to them
    s.add_all(m.AttachmentRow(message_id=message.id, name=a.name[:255],
                              content_type=a.content_type[:255], size=a.size, sha256=digest,
                              inline=a.inline) for a, digest in zip(msg.attachments, digests))
    return message


async def _acknowledge(s: AsyncSession, desk: Desk, msg: InboundMessage, ticket: m.Ticket,
                       view: TicketView, first: MessageView, contact: m.Contact) -> None:
    """Tell the customer we have their ticket — unless answering could start a mail loop."""
    settings, now = desk.settings, desk.clock.now()
    reason = _no_ack_reason(msg)
    to_address = (msg.reply_to or msg.sender_address).lower()
    if reason is None and to_address.rpartition("@")[2] in _our_domains(settings):
        reason = "reply address in our own domain"
    if reason is None and await _ack_rate_exceeded(s, to_address, settings, now=now):
        reason = "rate limit"
    if reason is not None:
        s.add(m.Event(ticket_id=ticket.id, kind="ack_suppressed", actor="system",
                      created_at=now, data={"reason": reason}))
        return
    out = await send_to_customer(s, desk, ticket=ticket, view=view, template="ticket_opened",
                                 kind="automatic", now=now, auto_submitted="auto-replied",
                                 context={"first_message": first})
    if out is not None:
        s.add(m.Event(ticket_id=ticket.id, kind="acknowledged", actor="system", created_at=now,
                      data={"message": out.id, "to": to_address}))


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


async def _ack_rate_exceeded(s: AsyncSession, to_address: str, settings: Settings, *,
                             now: datetime) -> bool:
    """Per-destination cap on acknowledgements: mail forged with someone else's Reply-To must
    not turn us into a cannon aimed at them (backscatter)."""
    limit = settings.email_out.ack_rate_limit_per_hour
    if limit <= 0:
        return False
    sent = await s.scalar(select(func.count(m.Event.id)).where(
        m.Event.kind == "acknowledged", m.Event.data["to"].as_string() == to_address,
        m.Event.created_at > now - timedelta(hours=1)))
    return (sent or 0) >= limit


async def _bounce(s: AsyncSession, desk: Desk, msg: InboundMessage,
                  raw_row: m.RawMessage, *, held: m.Quarantine | None = None) -> IngestResult:
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
        if held is not None:  # reprocessing: still about nothing we sent, stays where it is
            return IngestResult("quarantined", detail=f"quarantine #{held.id}: bounce")
        q = await _hold(s, desk, raw_row, reason="bounce",
                        detail=f"delivery report about {bounce.original_message_id or 'unknown mail'}"
                               f" {bounce.status} {bounce.diagnostic}".strip())
        return IngestResult("quarantined", detail=f"quarantine #{q.id}: bounce")
    original.delivery_status = "failed"
    s.add(m.Event(ticket_id=original.ticket_id, kind="bounce", actor="system", created_at=now,
                  data={"message": original.id, "status": bounce.status,
                        "recipients": list(bounce.recipients), "diagnostic": bounce.diagnostic[:500]}))
    text = (f"Mail to {', '.join(bounce.recipients) or 'the customer'} bounced"
            f" ({bounce.status or 'no status'}).")
    await cards.post_notice_in_thread(s, desk.renderers, ticket_id=original.ticket_id,
                                      text=text, now=now)
    log.info("bounce recorded ticket=%s status=%s", original.ticket_id, bounce.status)
    return IngestResult("bounce", ticket_number=original.ticket_id, detail=bounce.status)


async def _hold(s: AsyncSession, desk: Desk, raw_row: m.RawMessage, *, reason: str,
                detail: str) -> m.Quarantine:
    now = desk.clock.now()
    q = m.Quarantine(raw_message_id=raw_row.id, reason=reason, detail=detail[:4000],
                     status="held", created_at=now)
    s.add(q)
    await s.flush()
    view = QuarantineView(id=q.id, reason=reason, detail=q.detail, status=q.status,
                          size=raw_row.size, envelope_from=raw_row.envelope_from,
                          envelope_to=tuple(raw_row.envelope_to), created_at=now)
    enqueue(s, channel="slack", kind="slack.quarantine", now=now,
            payload={"method": "chat.postMessage",
                     "args": {"channel": desk.settings.slack.fallback_channel,
                              **desk.renderers.quarantine_notice(view)}})
    log.warning("quarantined id=%s reason=%s size=%s", q.id, reason, raw_row.size)
    return q


async def _contact(s: AsyncSession, msg: InboundMessage, *, now: datetime) -> m.Contact:
    column = m.Contact.email if msg.channel == "email" else m.Contact.phone
    address = msg.sender_address.lower() if msg.channel == "email" else msg.sender_address
    if len(address) > (320 if msg.channel == "email" else 32):
        raise NotStorable(f"sender address of {len(address)} characters is not an address")
    contact = await s.scalar(select(m.Contact).where(column == address))
    if contact is None:
        contact = m.Contact(name=msg.sender_name[:200], created_at=now,
                            **({"email": address} if msg.channel == "email" else {"phone": address}))
        s.add(contact)
        await s.flush()
    elif msg.sender_name and not contact.name:
        contact.name = msg.sender_name[:200]
    return contact


async def _raw_for(s: AsyncSession, channel: str, source_id: str) -> m.RawMessage | None:
    return await s.scalar(select(m.RawMessage).where(
        m.RawMessage.channel == channel, m.RawMessage.source_id == source_id))


def _raw_row(*, channel: str, source_id: str, raw: bytes, door: str, envelope_from: str | None,
             envelope_to: tuple[str, ...], now: datetime) -> m.RawMessage:
    return m.RawMessage(channel=channel, source_id=source_id[:998], door=door,
                        envelope_from=envelope_from, envelope_to=list(envelope_to), size=len(raw),
                        sha256=hashlib.sha256(raw).hexdigest(), data=raw, received_at=now)


def _actor(msg: InboundMessage) -> str:
    return f"customer:{msg.sender_address}"[:400]


def _sender_label(msg: InboundMessage) -> str:
    return f"{msg.sender_name} <{msg.sender_address}>" if msg.sender_name else msg.sender_address
