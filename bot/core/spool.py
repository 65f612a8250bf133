"""The spool: raw messages as the doors committed them, waiting for the intake worker.

A door records an ``Arrival`` and answers its sender; nothing else happens before that
(DESIGN §2.1). The intake worker reads ``queued`` entries in arrival order, and each one
leaves the spool in the same transaction that ingests it (``done``) or holds it (``held``).
Named reads and writes only, and the identity of an entry's content (is it a copy of an
earlier one?): what a message means is decided in ``core.intake``. No I/O besides the
database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m
from bot.store.db import Database
from bot.store.notify import SPOOL

MAX_SOURCE_ID = 998


@dataclass(frozen=True)
class Arrival:
    """What a door received, before anyone has looked inside it."""

    channel: str  # email | sms
    door: str  # smtp | imap:<account> | twilio
    source_id: str  # the door's own id (SMTP queue id, IMAP account:uidvalidity:uid, SMS id)
    data: bytes
    received_at: datetime
    envelope_from: str | None = None  # SMTP MAIL FROM ("" is the null sender)
    envelope_to: tuple[str, ...] = ()
    # Entries of one sender are ingested in arrival order. SMTP uses the envelope sender: a
    # forwarder that rewrites it per message (SRS, VERP) gets no ordering across its messages.
    sender_key: str = ""


@dataclass(frozen=True)
class SpoolEntry:
    id: int
    channel: str
    door: str
    source_id: str
    data: bytes
    received_at: datetime
    envelope_from: str | None
    envelope_to: tuple[str, ...]
    attempts: int
    sha256: str = ""
    sender_key: str = ""
    held: bool = False  # re-queued from quarantine (``deskbell reprocess``)

    @classmethod
    def of(cls, row: m.RawMessage, *, held: bool = False) -> "SpoolEntry":
        return cls(id=row.id, channel=row.channel, door=row.door, source_id=row.source_id,
                   data=row.data, received_at=row.received_at, envelope_from=row.envelope_from,
                   envelope_to=tuple(row.envelope_to), attempts=row.attempts,
                   sha256=row.sha256, sender_key=row.sender_key, held=held)


def _row(a: Arrival) -> dict:
    return {"channel": a.channel, "door": a.door, "source_id": a.source_id[:MAX_SOURCE_ID],
            "data": a.data, "size": len(a.data), "sha256": hashlib.sha256(a.data).hexdigest(),
            "envelope_from": a.envelope_from, "envelope_to": list(a.envelope_to),
            "sender_key": a.sender_key[:400], "received_at": a.received_at, "state": "queued",
            "attempts": 0}


async def record(db: Database, arrivals: list[Arrival]) -> None:
    """Commit every arrival in one transaction (one disk flush for the lot). An arrival whose
    ``(channel, source_id)`` is spooled already is a replay and is left out."""
    # Intake workers of other processes (PostgreSQL) are woken at commit.
    await db.append(m.RawMessage.__table__, [_row(a) for a in arrivals], wake=SPOOL)


async def queued(db: Database, *, limit: int) -> list[SpoolEntry]:
    """The oldest entries waiting for intake, in arrival order. An entry is left out while an
    earlier entry of the same sender waits outside this batch (another worker has it)."""
    async with db.reading() as s:
        rows = (await s.scalars(select(m.RawMessage).where(m.RawMessage.state == "queued")
                                .order_by(m.RawMessage.id).limit(limit))).all()
        if not rows:
            return []
        ids = {r.id for r in rows}
        first = dict((await s.execute(select(m.RawMessage.sender_key, func.min(m.RawMessage.id))
                                      .where(m.RawMessage.state == "queued",
                                             m.RawMessage.sender_key.in_({r.sender_key for r in rows}))
                                      .group_by(m.RawMessage.sender_key))).all())
        held = set((await s.scalars(select(m.Quarantine.raw_message_id).where(
            m.Quarantine.raw_message_id.in_(ids), m.Quarantine.status == "held"))).all())
        return [SpoolEntry.of(r, held=r.id in held) for r in rows if first.get(r.sender_key) in ids]


async def take(s: AsyncSession, entry_id: int, *, state: str, now: datetime,
               message_key: str | None = None) -> bool:
    """Move a queued entry to ``state`` inside the caller's transaction; False when it is not
    queued any more (another worker took it first)."""
    result = await s.execute(update(m.RawMessage).where(
        m.RawMessage.id == entry_id, m.RawMessage.state == "queued")
        .values(state=state, processed_at=now, message_key=message_key)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def still_queued(s: AsyncSession, ids: list[int]) -> set[int]:
    """Which of these entries are still queued, read inside the caller's write transaction
    (on SQLite it holds the one write lock; elsewhere the rows are locked): the others were
    taken by another worker since they were read."""
    query = select(m.RawMessage.id).where(m.RawMessage.id.in_(ids), m.RawMessage.state == "queued")
    if s.bind.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return set((await s.scalars(query)).all())


async def keys_seen(s: AsyncSession, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The entries already taken under these (channel, idempotency key) pairs."""
    if not keys:
        return {}
    # Both columns, so the unique (channel, message_key) index answers it: the spool keeps
    # every message ever received.
    rows = await s.execute(select(m.RawMessage.channel, m.RawMessage.message_key, m.RawMessage.id)
                           .where(m.RawMessage.channel.in_({channel for channel, _ in keys}),
                                  m.RawMessage.message_key.in_({key for _, key in keys})))
    return {(channel, key): entry for channel, key, entry in rows.all() if (channel, key) in keys}


async def data_of(s: AsyncSession, entry_id: int) -> bytes | None:
    """The bytes of one entry (by its primary key), e.g. an earlier message whose key a new
    one reuses."""
    return await s.scalar(select(m.RawMessage.data).where(m.RawMessage.id == entry_id))


# The header fields that make a message what it is, as its author wrote them. A copy that
# reaches us twice (an MTA's retry, a second door, a forward) differs only in the trace and
# authentication fields each hop adds (Received, Return-Path, Delivered-To, X-Original-To,
# Authentication-Results, ARC-*, DKIM-Signature of a forwarder), so those are left out.
# Message-ID is left out too: it is the key this identity is compared under.
_IDENTITY_FIELDS = (b"from", b"to", b"cc", b"subject", b"date")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_WHITESPACE = re.compile(rb"\s+")


def content_identity(data: bytes) -> str:
    """sha256 over From, To, Cc, Subject, Date and the body bytes after the header block.

    Read from the bytes alone (no MIME parse), so the copy of a message kept in the spool can
    be compared with a newcomer inside the ingest transaction. Folding and white space in the
    fields, line ends (CRLF on the wire, LF in some mail stores) and trailing blank lines of the
    body (smtplib adds a CRLF, some stores drop one) do not count; any other change does.
    """
    found = _HEADER_END.search(data)
    head, body = (data[:found.start()], data[found.end():]) if found else (data, b"")
    fields: dict[bytes, list[bytes]] = {name: [] for name in _IDENTITY_FIELDS}
    name = None
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and name is not None:
            fields[name][-1] += line  # a folded continuation of the field before
            continue
        label, colon, value = line.partition(b":")
        name = label.strip().lower() if colon else None
        if name not in fields:
            name = None
            continue
        fields[name].append(value)
    digest = hashlib.sha256()
    for label in _IDENTITY_FIELDS:
        for value in fields[label]:
            digest.update(label + b":" + _WHITESPACE.sub(b" ", value).strip() + b"\n")
    digest.update(b"\n" + body.replace(b"\r\n", b"\n").rstrip(b"\n"))
    return digest.hexdigest()


async def finish(s: AsyncSession, outcomes: list[tuple[int, str, str | None]], *, now: datetime) -> None:
    """Take entries out of the queue in one statement: (id, ``done`` or ``held``, the
    idempotency key they were ingested under, or None)."""
    if outcomes:
        table = m.RawMessage.__table__
        await s.execute(update(table).where(table.c.id == bindparam("entry"))
                        .values(state=bindparam("new_state"), message_key=bindparam("key"),
                                processed_at=now),
                        [{"entry": i, "new_state": state, "key": key} for i, state, key in outcomes])


async def note_failure(db: Database, entry_id: int, error: str) -> int:
    """Count a failed ingest attempt (our fault); returns the attempts so far."""
    async with db.transaction() as s:
        return await s.scalar(update(m.RawMessage).where(m.RawMessage.id == entry_id)
                              .values(attempts=m.RawMessage.attempts + 1, last_error=error[:2000])
                              .returning(m.RawMessage.attempts)) or 0


async def requeue_held(db: Database, *, quarantine_id: int | None = None) -> list[int]:
    """Put held entries (all, or one quarantine id) back in the queue; returns the quarantine
    ids that were re-queued."""
    async with db.transaction() as s:
        query = select(m.Quarantine).where(m.Quarantine.status == "held").order_by(m.Quarantine.id)
        if quarantine_id is not None:
            query = query.where(m.Quarantine.id == quarantine_id)
        held = (await s.scalars(query)).all()
        if held:
            await s.execute(update(m.RawMessage).where(
                m.RawMessage.id.in_({q.raw_message_id for q in held}))
                .values(state="queued", attempts=0, last_error=None))
        return [q.id for q in held]


async def queued_count(s: AsyncSession) -> int:
    """How many entries wait for intake (the ``deskbell_spool_queued`` gauge)."""
    return await s.scalar(select(func.count(m.RawMessage.id)).where(m.RawMessage.state == "queued")) or 0


async def pending_count(db: Database) -> int:
    async with db.reading() as s:
        return await queued_count(s)

