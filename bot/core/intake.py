"""``ingest()``: every spooled customer message, whatever its door, becomes a ticket or joins one.

One transaction takes the entry out of the spool and stores the contact, the ticket, the
message, its attachments, the events and the outbox intents (the card or a thread post, the
customer's acknowledgement). A batch of entries may share one transaction; a replay (same
idempotency key) changes nothing. Must not parse, do network I/O or import an adapter: the
intake pipeline parses and hands over ``Parsed`` items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import acknowledgements, filetypes, groups, intents, lifecycle, ratings, sender_checks, sms_keywords, spool
from bot.core.desk import Desk
from bot.core.errors import Contended, Rejected
from bot.core.spool import SpoolEntry
from bot.core.threader import find_ticket, returned_message_id, strip_subject_tag
from bot.core.tickets import load_ticket, ticket_view
from bot.core.views import CardView, MessageView, QuarantineView, TicketView
from bot.messages import InboundMessage
from bot.store import models as m
from bot.store import upsert
from bot.store.blobstore import BlobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    outcome: str  # created | appended | duplicate | bounce | quarantined | keyword | rated
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
# The idempotency key of ingest (DESIGN §2.2): a conflict on it is another worker's copy.
SPOOL_KEY = next(c for c in m.RawMessage.__table__.constraints if c.name == "uq_raw_messages_message_key")


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
            results = await _ingest_all(s, desk, items, deadline=deadline)
    except DBAPIError as exc:
        meaning = _classified(exc)
        if meaning is None:
            raise
        raise meaning from exc
    # Said only now that it is committed: a rolled-back batch created nothing.
    for item, result in zip(items, results):
        if result.outcome == "created":
            log.info("ticket created ticket=%s channel=%s %s", result.ticket_number,
                     item.entry.channel, result.detail)
        elif result.outcome == "appended":
            log.info("message joined ticket=%s channel=%s threaded_by=%s", result.ticket_number,
                     item.entry.channel, result.detail)
    return results


def _classified(exc: DBAPIError) -> Contended | NotStorable | None:
    """What a failed ingest transaction means for its entries. Either way nothing of it was
    stored: a ``Contended`` batch is ingested again (a copy of a message another worker took
    a moment before is then found a duplicate); a refused value would be refused again, so
    the mail is held; anything else (the database went away) is the caller's to retry."""
    if isinstance(exc, IntegrityError) and upsert.violates(exc, SPOOL_KEY):
        return Contended(f"another worker ingested a copy of this message a moment before: {exc.orig}")
    if upsert.contended(exc):
        return Contended(f"another writer changed the same rows at the same moment: {exc.orig}")
    if upsert.refused_value(exc):
        return NotStorable(f"the store refused the message: {exc.orig}")
    return None


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
    for parsed in items:
        item, entry = parsed, parsed.entry
        if entry.id not in queued or entry.sender_key in elsewhere:
            elsewhere.add(entry.sender_key)
            taken.append((item, IngestResult("duplicate", detail=TAKEN_ELSEWHERE)))
            continue
        key = _key(item)
        if seen.get(key, entry.id) != entry.id:  # a copy of a message taken before, or its key reused
            item = await _reusing(s, item, seen[key], seen, batch=items)
            if item is None:
                taken.append((parsed, IngestResult("duplicate", detail="already ingested")))
                continue
            key = _key(item)
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


REUSED_MESSAGE_ID = "Message-ID reused by a different message"


async def _reusing(s: AsyncSession, item: Parsed, earlier: int, seen: dict[tuple[str, str], int], *,
                   batch: list[Parsed]) -> Parsed | None:
    """``item``'s key was taken by entry ``earlier``. None when it is a copy of that message (a
    duplicate); else a different message reusing its Message-ID (a broken mailer, a forgery),
    which must not be lost: it is ingested under a key of its own, ``<message-id>#<content
    digest>``, so its own replay is still a duplicate, and flagged for staff. Collisions are
    rare, so reading the earlier bytes back costs nothing on the usual path."""
    msg, entry = item.message, item.entry
    if msg is None or entry.channel != "email":  # keyed by their bytes or the provider's own id
        return None
    before = next((i.entry.data for i in batch if i.entry.id == earlier), None)
    if before is None:
        before = await spool.data_of(s, earlier)
    identity = spool.content_identity(entry.data)
    if before is None or spool.content_identity(before) == identity:
        return None
    suffix = f"#{identity[:16]}"
    key = (entry.channel, msg.source_id[:spool.MAX_SOURCE_ID - len(suffix)] + suffix)
    if key not in seen:
        seen.update(await spool.keys_seen(s, {key}))
    if seen.get(key, entry.id) != entry.id:
        return None  # a copy of the different message, taken before
    return Parsed(entry, replace(msg, source_id=key[1], defects=(*msg.defects, REUSED_MESSAGE_ID)),
                  item.error)


async def _resolve_hold(s: AsyncSession, desk: Desk, item: Parsed, result: IngestResult) -> None:
    """Held mail that went through after all (``deskbell reprocess``) leaves quarantine."""
    status = "duplicate" if result.outcome == "duplicate" else "reprocessed"
    await s.execute(update(m.Quarantine).where(
        m.Quarantine.raw_message_id == item.entry.id, m.Quarantine.status == "held")
        .values(status=status, ticket_id=result.ticket_number, resolved_at=desk.clock.now()))


async def _route(s: AsyncSession, desk: Desk, item: Parsed, msg: InboundMessage,
                 openings: "_Openings") -> "IngestResult | _Opening":
    """Where a parsed message goes: a bounce, a report to hold, a new ticket or an old one."""
    msg = _within_limits(msg, desk.settings)
    returned = _returned_to(msg, desk.settings.email_out.reply_domain)
    if msg.bounce is not None or returned is not None:
        return await _bounce(s, desk, item, msg, returned)
    if msg.ticket_hint is not None and await s.get(m.Ticket, msg.ticket_hint) is None:
        q = await _hold(s, desk, item, reason="unknown ticket", detail=f"#{msg.ticket_hint}")
        return IngestResult("quarantined", detail=f"quarantine #{q}: no ticket #{msg.ticket_hint}")
    contact = await _contact(s, msg, now=desk.clock.now())
    keyword = sms_keywords.keyword(msg.body) if msg.channel == "sms" else None
    if keyword is None and msg.channel == "sms" and (rated := await _rating_text(s, desk, msg, contact)):
        return rated
    if keyword is not None:
        # A carrier keyword changes what we may send; on a ticket it is shown, never reopens it.
        await sms_keywords.apply(s, desk, msg, contact, keyword)
        msg = replace(msg, auto_submitted=f"sms keyword: {keyword}")
    match = await find_ticket(s, msg, contact_id=contact.id,
                              reply_domain=desk.settings.email_out.reply_domain, now=desk.clock.now(),
                              sms_reopen_window=timedelta(days=desk.settings.tickets.sms_reopen_window_days))
    if match is None and keyword is not None:
        return IngestResult("keyword", detail=f"{keyword} from {msg.sender_address}")
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
        self._phones: set[str] = set()

    def add(self, item: Parsed, msg: InboundMessage, contact: m.Contact) -> _Opening:
        opening = _Opening(item, msg, contact)
        self.waiting.append(opening)
        if msg.message_id:
            self._message_ids.add(msg.message_id)
        if msg.channel == "sms":
            self._phones.add(msg.sender_address)
        return opening

    def answered_by(self, msg: InboundMessage) -> bool:
        """Does ``msg`` belong to a ticket still waiting here? A mail only by its Message-IDs
        (a reply token or a ticket number is not known to anyone before the ticket exists); a
        text by its phone: texts thread by phone, so a second text of a new customer in the
        same batch must find the first one's ticket written."""
        if msg.channel == "sms":
            return msg.sender_address in self._phones
        return bool(self._message_ids) and not self._message_ids.isdisjoint(
            (*msg.in_reply_to, *msg.references))

    async def open(self) -> None:
        if not self.waiting:
            return
        waiting, self.waiting = self.waiting, []
        self._message_ids, self._phones = set(), set()
        s, settings, now = self.s, self.desk.settings, self.desk.clock.now()
        chosen = [await groups.route(s, settings, recipients=o.msg.recipients, door=o.msg.door)
                  for o in waiting]
        tickets = await lifecycle.open_tickets(s, [lifecycle.NewTicket(
            subject=strip_subject_tag(o.msg.subject), group=group, requester_id=o.contact.id,
            channel=o.msg.channel, priority=settings.tickets.default_priority,
            actor=_actor(o.msg), reply_to=_asked_reply_to(o.msg), door=o.msg.door,
            event_data={"door": o.msg.door})
            for o, group in zip(waiting, chosen)], settings=settings, now=now)
        messages, files = await _store_messages(s, self.desk.files, [(t, o.msg, o.item.entry, o.contact)
                                                                    for t, o in zip(tickets, waiting)], now=now)
        for o, message in zip(waiting, messages):
            _note_sender_checks(message, o.msg, settings)
        acknowledge: list[tuple[InboundMessage, m.Ticket, TicketView, m.Message]] = []
        for o, group, ticket, message in zip(waiting, chosen, tickets, messages):
            view = await ticket_view(s, ticket, settings=settings, now=now, new=True)
            first = MessageView.of(message, intents.attachment_views(o.msg))
            card = intents.post_card(s, ticket_id=ticket.id, card=CardView(
                                         ticket=view, first_message=first,
                                         attachment_count=len(files.get(message.id, ()))),
                                     destination=groups.card_channel(group, settings),
                                     now=now)
            if files.get(message.id):
                await s.flush()  # the card's id: its thread is where the files go
                await intents.post_files(s, ticket_id=ticket.id, files=files[message.id], now=now, card=card)
            if ticket.assignee_id is not None:
                intents.assigned_notice(s, ticket, await s.get_one(m.Staff, ticket.assignee_id), now=now)
            if o.msg.channel == "email":
                acknowledge.append((o.msg, ticket, view, message))
            o.result = IngestResult("created", ticket_number=ticket.id, message_id=message.id,
                                    detail=f"group={group.name} door={o.msg.door}")
        await acknowledgements.acknowledge(s, self.desk, acknowledge)


async def _append(s: AsyncSession, desk: Desk, msg: InboundMessage, entry: SpoolEntry,
                  contact: m.Contact, ticket: m.Ticket, *, how: str) -> IngestResult:
    now = desk.clock.now()
    if s.bind.dialect.name != "sqlite":
        # Serialise with staff actions on this ticket, so a status change and this reopening
        # each record what they really changed (SQLite's one writer does this already).
        ticket = await load_ticket(s, ticket.id, for_update=True)
    [message], files = await _store_messages(s, desk.files, [(ticket, msg, entry, contact)], now=now)
    _note_sender_checks(message, msg, desk.settings)
    await _consider_reply_to(s, ticket, msg, contact, how=how, now=now)
    # An out-of-office answer (RFC 3834 §2), a report or our own mail coming back joins the
    # ticket but must not reopen it.
    reassigned = await lifecycle.customer_wrote(
        s, ticket, settings=desk.settings, actor=_actor(msg), now=now, message_id=message.id,
        threaded_by=how, reopen=not msg.auto_submitted and not msg.loop)
    if reassigned is not None:
        intents.assigned_notice(s, ticket, reassigned, now=now, why="its assignee is away")
    view = await ticket_view(s, ticket, settings=desk.settings, now=now)
    card = await intents.card_item(s, ticket.id)
    await intents.post_thread_message(s, ticket_id=ticket.id, ticket=view, card=card,
                                      message=MessageView.of(message, intents.attachment_views(msg)),
                                      now=now)
    await intents.post_files(s, ticket_id=ticket.id, files=files.get(message.id, []), now=now, card=card)
    group = await s.get_one(m.HandlerGroup, ticket.group_id)
    await intents.update_card(s, ticket_id=ticket.id, ticket=view, now=now, card=card,
                              repost_to=groups.card_channel(group, desk.settings))
    return IngestResult("appended", ticket_number=ticket.id, message_id=message.id, detail=how)


# Evidence that a message answers our own mail (only we and its recipients know these), as
# opposed to a stored Message-ID or a subject tag, which anyone can copy.
STRONG_THREADING = ("reply_token", "our_message_id")


def _asked_reply_to(msg: InboundMessage) -> str | None:
    return msg.reply_to if msg.reply_to and len(msg.reply_to) <= 320 else None


async def _consider_reply_to(s: AsyncSession, ticket: m.Ticket, msg: InboundMessage, contact: m.Contact,
                             *, how: str, now: datetime) -> None:
    """Where replies go belongs to the ticket (DESIGN §3): a forged From with a ticket's tag
    and its own Reply-To must not steal the conversation. Only the requester's human mail
    threaded by strong evidence redirects replies; any other differing Reply-To is put on
    the card for staff to accept."""
    asked = _asked_reply_to(msg)
    if asked is None or msg.auto_submitted or msg.loop:
        return
    requester = await s.get_one(m.Contact, ticket.requester_id)  # loaded already: no query
    if asked.lower() == (ticket.reply_to or requester.email or "").lower():
        return
    if how in STRONG_THREADING and contact.id == ticket.requester_id:
        lifecycle.redirect_replies(s, ticket, asked, actor=_actor(msg), now=now, threaded_by=how)
    else:
        lifecycle.propose_reply_to(s, ticket, asked, actor=_actor(msg), now=now, threaded_by=how)


def _note_sender_checks(message: m.Message, msg: InboundMessage, settings: Settings) -> None:
    """Keep what trusted MTAs said failed about the sender (shown with the message in Slack)."""
    failed = sender_checks.failed_checks(msg.auth_results, trusted_ids=settings.smtp_in.authserv_ids)
    if failed:
        message.authentication = failed


async def _store_messages(s: AsyncSession, files: BlobStore,
                          received: list[tuple[m.Ticket, InboundMessage, SpoolEntry, m.Contact]], *,
                          now: datetime) -> tuple[list[m.Message], dict[int, list[m.AttachmentRow]]]:
    """The customer messages as ticket entries, with their attachments (files kept once, in
    the configured store): the messages, and each one's attachment rows by message id."""
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
    rows: dict[int, list[m.AttachmentRow]] = {}
    kept = [a for _, msg, _, _ in received for a in msg.attachments]
    if kept:
        await files.put(s, ((a.sha256, a.data) for a in kept if a.sha256 is not None))
        for message, (_, msg, _, _) in zip(messages, received):
            rows[message.id] = [m.AttachmentRow(
                message_id=message.id, name=a.name[:255], content_type=a.content_type[:255], size=a.size,
                sha256=a.sha256, inline=a.inline, withheld=a.withheld, source_url=a.source_url,
                sniffed_type=filetypes.sniff(a.data), content_id=a.content_id) for a in msg.attachments]
            s.add_all(rows[message.id])
        await s.flush()
    return messages, rows


def _within_limits(msg: InboundMessage, settings: Settings) -> InboundMessage:
    """attachments.max_bytes_per_file and max_bytes_per_message, in the order the files came: a
    file past either is withheld (kept as a row without bytes) and said so in the message's
    defects — never dropped unseen."""
    limits = settings.attachments
    files, total, notes = [], 0, []
    for a in msg.attachments:
        past = ("max_bytes_per_file" if a.size > limits.max_bytes_per_file else
                "max_bytes_per_message" if total + a.size > limits.max_bytes_per_message else None)
        if past is None:
            files.append(a)
            total += a.size
            continue
        files.append(replace(a, data=b"", withheld_size=a.size))
        notes.append(f"attachment {a.name[:100]!r} ({a.size} bytes) withheld: over attachments.{past}")
    if not notes:
        return msg
    return replace(msg, attachments=tuple(files), defects=(*msg.defects, *notes))


def _is_report(msg: InboundMessage) -> bool:
    return (msg.auto_submitted or "").startswith(("dsn:", "mailer-daemon:", "report:"))


def _returned_to(msg: InboundMessage, reply_domain: str) -> str | None:
    """The Message-ID named by the return-path address this mail was sent to, if it was."""
    for rcpt in msg.recipients:
        named = returned_message_id(rcpt, domain=reply_domain)
        if named is not None:
            return named
    return None


async def _bounce(s: AsyncSession, desk: Desk, item: Parsed, msg: InboundMessage,
                  returned: str | None) -> IngestResult:
    """A DSN marks the mail it reports as failed; a DSN about nothing we sent is held. Mail to
    our return path is about the message its address names (``returned``), whatever it quotes."""
    bounce = msg.bounce
    about = returned if returned is not None else bounce.original_message_id if bounce else None
    original = await _sent_message(s, about)
    if original is None:
        where = f" to {', '.join(msg.recipients)}" if returned is not None else ""
        status = f" {bounce.status} {bounce.diagnostic}" if bounce else ""
        q = await _hold(s, desk, item, reason="bounce",
                        detail=f"delivery report{where} about {about or 'unknown mail'}{status}".strip())
        return IngestResult("quarantined", detail=f"quarantine #{q}: bounce")
    if bounce is None:
        return await _returned_report(s, desk, item, msg, original)
    now = desk.clock.now()
    original.delivery_status = "failed"
    lifecycle.record_event(s, original.ticket_id, "bounce", actor="system", now=now,
                           message=original.id, status=bounce.status,
                           recipients=list(bounce.recipients), diagnostic=bounce.diagnostic[:500])
    text = (f"Mail to {', '.join(bounce.recipients) or 'the customer'} bounced"
            f" ({bounce.status or 'no status'}).")
    await intents.post_notice_in_thread(s, ticket_id=original.ticket_id, text=text, now=now)
    log.info("bounce recorded ticket=%s status=%s", original.ticket_id, bounce.status)
    return IngestResult("bounce", ticket_number=original.ticket_id, detail=bounce.status)


async def _sent_message(s: AsyncSession, message_id: str | None) -> m.Message | None:
    if not message_id:
        return None
    return await s.scalar(select(m.Message).where(
        m.Message.message_id == message_id, m.Message.kind.in_(("outbound", "automatic"))).limit(1))


async def _returned_report(s: AsyncSession, desk: Desk, item: Parsed, msg: InboundMessage,
                           original: m.Message) -> IngestResult:
    """Mail at our return path that reports no failure: an auto-reply (RFC 3834 §4 answers the
    return path) or a delay notice. A line on the ticket of the mail it is about, marked
    automatic so it neither reopens the ticket nor is ever answered."""
    msg = replace(msg, auto_submitted=msg.auto_submitted or "return-path")
    ticket = await s.get_one(m.Ticket, original.ticket_id)
    contact = await _contact(s, msg, now=desk.clock.now())
    return await _append(s, desk, msg, item.entry, contact, ticket, how="return_path")


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
    await _announce_hold(s, desk, view, now=now)
    log.warning("quarantined id=%s reason=%s size=%s", q.id, reason, len(entry.data))
    return q.id


async def _announce_hold(s: AsyncSession, desk: Desk, view: QuarantineView, *, now: datetime) -> None:
    """A notice per held mail, up to slack.quarantine_notices_per_hour in a clock hour: a flood
    of junk must not bury the channel. Past it each one is only counted, and one notice, sent
    when the hour is over, says how many more were held."""
    limit, channel = desk.settings.slack.quarantine_notices_per_hour, desk.settings.slack.fallback_channel
    if limit > 0:
        hour = now.replace(minute=0, second=0, microsecond=0)
        [count] = await upsert.bump_counters(s, ["quarantine-notices"], window_start=hour)
        if count > limit:
            await _held_more(s, channel, more=count - limit, hour=hour, now=now)
            return
    intents.quarantine_notice(s, destination=channel, item=view, now=now)


async def _held_more(s: AsyncSession, channel: str, *, more: int, hour: datetime, now: datetime) -> None:
    """The hour's one "N more held" notice: made at the first mail past the limit, due when
    the hour ends, its count brought up to date until then. Found by its ordering key (an
    index), so a flood costs one statement per mail."""
    key, end = f"quarantine-more:{hour:%Y-%m-%dT%H}", hour + timedelta(hours=1)
    payload = {"destination": channel,
               "text": f"Quarantine: {more} more held this hour ({hour:%H:%M}–{end:%H:%M} UTC) without"
                       f" a notice each; see deskbell reprocess"}
    updated = await s.execute(update(m.OutboxItem).where(
        m.OutboxItem.ordering_key == key, m.OutboxItem.status == "pending").values(payload=payload)
        .execution_options(synchronize_session=False))
    if updated.rowcount or await s.scalar(select(m.OutboxItem.id).where(
            m.OutboxItem.ordering_key == key).limit(1)) is not None:
        return  # brought up to date, or already sent: once an hour
    intents.enqueue(s, channel="slack", kind=intents.NOTICE, payload=payload, now=now,
                    ordering_key=key).due_at = end


async def _rating_text(s: AsyncSession, desk: Desk, msg: InboundMessage, contact: m.Contact) -> IngestResult | None:
    """A text that is one digit from 1 to 5, answering the close confirmation of the sender's
    newest ticket (closed, recently enough to rate): their rating, not a message that reopens
    it. With a ticket of theirs still open, a digit is a message for that one."""
    digit = msg.body.strip().rstrip(".!")
    if len(digit) != 1 or not digit.isdigit() or int(digit) not in ratings.SCORES:
        return None
    ticket = await s.scalar(select(m.Ticket).where(m.Ticket.requester_id == contact.id)
                            .order_by(m.Ticket.id.desc()).limit(1))
    if ticket is None or not ratings.open_for_rating(desk.settings, ticket, desk.clock.now()):
        return None
    outcome = await ratings.rate(s, desk.settings, ticket, score=int(digit), via="sms", now=desk.clock.now())
    return IngestResult("rated", ticket_number=ticket.id, detail=f"{digit}/5 ({outcome})")


async def _contact(s: AsyncSession, msg: InboundMessage, *, now: datetime) -> m.Contact:
    if msg.ticket_hint is not None:  # written on the ticket's page: its requester, proved by the link
        ticket = await s.get_one(m.Ticket, msg.ticket_hint)
        return await s.get_one(m.Contact, ticket.requester_id)
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
