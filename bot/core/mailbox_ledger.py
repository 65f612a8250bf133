"""The IMAP door's ledger: how far each watched mailbox has been taken into the spool.

A mailbox's position is ``(uidvalidity, last_uid)``: every message up to ``last_uid`` is in the
spool (the spool's unique source id makes a second fetch of one harmless, so the position may
lag behind the spool, never run ahead of it). Alongside it: what was left behind as too large,
the backlog at the last look and the last error, for the log and ``deskbell check``; and where
moved messages went, so one that intake quarantines can follow to the quarantine folder.

Named reads and writes only; no I/O besides the database, no IMAP (the door speaks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select, update

from bot.store import models as m
from bot.store import upsert
from bot.store.db import Database

PLACEMENTS_KEPT = timedelta(days=30)  # a message still unfiled by then is not going to be


@dataclass(frozen=True)
class LeftBehind:
    """A message the door will not fetch again, and why (shown by ``deskbell check``)."""

    uid: int
    reason: str


@dataclass(frozen=True)
class Position:
    uidvalidity: int  # 0: never selected (only an error was noted)
    last_uid: int
    left_behind: tuple[LeftBehind, ...] = ()


@dataclass(frozen=True)
class MailboxState:
    """One mailbox as ``deskbell check`` reports it."""

    account: str
    mailbox: str
    uidvalidity: int
    last_uid: int
    waiting: int
    left_behind: tuple[LeftBehind, ...]
    last_error: str | None
    last_error_at: datetime | None
    synced_at: datetime | None


@dataclass(frozen=True)
class Placement:
    """A spooled message's place after the door moved it."""

    source_id: str
    mailbox: str
    uidvalidity: int
    uid: int


def source_id(account: str, mailbox: str, uidvalidity: int, uid: int) -> str:
    """The spool's source id of one IMAP message (DESIGN §2.2: account, UIDVALIDITY, UID)."""
    return f"imap:{account}:{mailbox}:{uidvalidity}:{uid}"


async def position(db: Database, account: str, mailbox: str) -> Position | None:
    async with db.reading() as s:
        row = await s.get(m.ImapMailbox, (account, mailbox))
        if row is None:
            return None
        return Position(row.uidvalidity, row.last_uid, _left_behind(row.left_behind))


def _left_behind(stored: list) -> tuple[LeftBehind, ...]:
    return tuple(LeftBehind(int(x["uid"]), str(x["reason"])) for x in stored)


async def start_over(db: Database, account: str, mailbox: str, *, uidvalidity: int, now: datetime) -> None:
    """A mailbox seen for the first time, or under a new UIDVALIDITY: nothing of it is taken."""
    async with db.transaction() as s:
        await upsert.replace(s, m.ImapMailbox, keys={"account": account, "mailbox": mailbox}, values={
            "uidvalidity": uidvalidity, "last_uid": 0, "waiting": 0, "left_behind": [],
            "last_error": None, "last_error_at": None, "synced_at": None, "updated_at": now})


async def advance(db: Database, account: str, mailbox: str, *, uidvalidity: int, last_uid: int,
                  waiting: int, left_behind: tuple[LeftBehind, ...], placements: list[Placement],
                  now: datetime, drained: bool) -> None:
    """Record progress after a batch: its messages are spooled (and moved, when ``placements``
    says where). One transaction; the position only moves forward, under the same UIDVALIDITY."""
    async with db.transaction() as s:
        values: dict[str, object] = {"last_uid": last_uid, "waiting": waiting,
                                     "left_behind": [{"uid": x.uid, "reason": x.reason} for x in left_behind],
                                     "updated_at": now,
                                     "last_error": None, "last_error_at": None}
        if drained:
            values["synced_at"] = now
        await s.execute(update(m.ImapMailbox).where(
            m.ImapMailbox.account == account, m.ImapMailbox.mailbox == mailbox,
            m.ImapMailbox.uidvalidity == uidvalidity, m.ImapMailbox.last_uid <= last_uid)
            .values(**values))
        if placements:
            await s.execute(upsert.insert_for(s, m.ImapPlacement).on_conflict_do_nothing(), [
                {"source_id": p.source_id, "account": account, "mailbox": p.mailbox,
                 "uidvalidity": p.uidvalidity, "uid": p.uid, "filed_at": None, "created_at": now}
                for p in placements])


async def note_error(db: Database, account: str, mailbox: str, error: str, *, now: datetime) -> None:
    """Why the account is not being read right now (login refused, server unreachable); an
    account never read yet gets a row for it, at UIDVALIDITY 0."""
    async with db.transaction() as s:
        insert = upsert.insert_for(s, m.ImapMailbox).values(
            account=account, mailbox=mailbox, uidvalidity=0, last_uid=0, waiting=0, left_behind=[],
            last_error=error[:2000], last_error_at=now, updated_at=now)
        await s.execute(insert.on_conflict_do_update(
            index_elements=["account", "mailbox"],
            set_={"last_error": insert.excluded.last_error, "last_error_at": insert.excluded.last_error_at}))


async def quarantined(db: Database, account: str, mailbox: str) -> list[Placement]:
    """Messages moved to ``mailbox`` whose spool entry intake has since held (quarantined),
    not yet filed in the quarantine folder."""
    async with db.reading() as s:
        rows = (await s.execute(
            select(m.ImapPlacement).join(m.RawMessage, and_(
                m.RawMessage.channel == "email", m.RawMessage.source_id == m.ImapPlacement.source_id))
            .where(m.ImapPlacement.account == account, m.ImapPlacement.mailbox == mailbox,
                   m.ImapPlacement.filed_at.is_(None), m.RawMessage.state == "held")
            .order_by(m.ImapPlacement.uid).limit(500))).scalars().all()
        return [Placement(r.source_id, r.mailbox, r.uidvalidity, r.uid) for r in rows]


async def filed(db: Database, source_ids: list[str], *, now: datetime) -> None:
    """These messages are in the quarantine folder now; placements past their use go."""
    async with db.transaction() as s:
        if source_ids:
            await s.execute(update(m.ImapPlacement).where(m.ImapPlacement.source_id.in_(source_ids))
                            .values(filed_at=now))
        await s.execute(delete(m.ImapPlacement).where(m.ImapPlacement.created_at < now - PLACEMENTS_KEPT))


async def states(db: Database) -> list[MailboxState]:
    async with db.reading() as s:
        rows = (await s.scalars(select(m.ImapMailbox).order_by(m.ImapMailbox.account,
                                                               m.ImapMailbox.mailbox))).all()
        return [MailboxState(r.account, r.mailbox, r.uidvalidity, r.last_uid, r.waiting,
                             _left_behind(r.left_behind), r.last_error, r.last_error_at, r.synced_at)
                for r in rows]
