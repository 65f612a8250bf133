"""``Database.append``: the doors' one-transaction insert (one thread hop on SQLite).

What a door acknowledges must be in the table exactly once, with its values as the ORM reads
them back, and a write that fails must leave nothing behind and the connection fit for the
next writer.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from bot.core import spool
from bot.core.spool import Arrival
from bot.store import migrate
from bot.store import models as m
from bot.store.db import Database
from tests.conftest import database_url

T0 = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=timezone.utc)


def arrival(n: int, *, source_id: str | None = None) -> Arrival:
    return Arrival(channel="sms", door="twilio", source_id=source_id or f"SM{n:032d}",
                   data=f"MessageSid=SM{n}&From=%2B1555000{n:04d}&Body=h%C3%A9".encode(),
                   received_at=T0 + timedelta(seconds=n), envelope_from=f"+1555000{n:04d}",
                   envelope_to=("+15550100", "+15550101"), sender_key=f"+1555000{n:04d}")


@pytest.fixture
async def db(tmp_path):
    database = Database(database_url(tmp_path))
    await migrate.upgrade(database)
    yield database
    await database.dispose()


async def count(db: Database) -> int:
    async with db.reading() as s:
        return await s.scalar(select(func.count()).select_from(m.RawMessage))


async def test_rows_read_back_as_written_and_a_replay_is_left_out(db):
    await spool.record(db, [arrival(1), arrival(2)])
    await spool.record(db, [arrival(2), arrival(3)])  # 2 again: a replay

    entries = await spool.queued(db, limit=10)
    assert [e.source_id for e in entries] == [f"SM{n:032d}" for n in (1, 2, 3)]
    first = entries[0]
    assert first.received_at == T0 + timedelta(seconds=1)  # aware UTC, microseconds kept
    assert first.envelope_to == ("+15550100", "+15550101")
    assert first.data == arrival(1).data
    assert first.sha256 and first.sender_key == "+15550000001" and first.attempts == 0


async def test_a_failed_write_stores_none_of_its_rows_and_the_next_one_works(db):
    rows = [spool._row(arrival(4)), {**spool._row(arrival(5)), "state": None}]  # state is NOT NULL

    with pytest.raises(Exception, match="(?i)not null|null value"):
        await db.append(m.RawMessage.__table__, rows)
    assert await count(db) == 0  # the good row of that transaction is gone too

    await spool.record(db, [arrival(6)])  # the write connection was left clean
    async with db.transaction() as s:  # and an ordinary unit of work still commits
        s.add(m.RawMessage(**spool._row(arrival(7))))
    assert await count(db) == 2
