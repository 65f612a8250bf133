"""``Database.read_rows``: one SELECT in one call, its columns typed as a session reads them.

The customer's page reads this way (one hop on SQLite instead of a session's several), so what
it gets must be what the ORM would give: aware UTC datetimes, booleans, NULLs from outer
joins, literal values compiled into the statement, and the parameter of each call.
"""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, or_, select, text

from bot.core import spool
from bot.store import models as m
from tests.store.test_append import T0, arrival, db  # noqa: F401 (fixture)

_ENTRIES = (select(m.RawMessage.id, m.RawMessage.source_id, m.RawMessage.received_at,
                   m.RawMessage.envelope_to, m.Quarantine.id)
            .outerjoin(m.Quarantine, m.Quarantine.raw_message_id == m.RawMessage.id)
            .where(or_(m.RawMessage.sender_key == bindparam("sender"), m.RawMessage.source_id == "nobody"),
                   m.RawMessage.state == "queued")
            .order_by(m.RawMessage.id))


async def test_rows_come_back_typed_as_a_session_reads_them(db):  # noqa: F811
    await spool.record(db, [arrival(1), arrival(2), arrival(3)])
    rows = await db.read_rows(_ENTRIES, sender="+15550000002")
    again = await db.read_rows(_ENTRIES, sender="+15550000003")  # the compiled statement reused
    async with db.reading() as s:
        expected = [tuple(r) for r in (await s.execute(_ENTRIES, {"sender": "+15550000002"})).all()]
    assert rows == expected and len(rows) == 1
    [(_, source_id, received_at, envelope_to, quarantine)] = rows
    assert source_id == f"SM{2:032d}" and received_at == T0.replace(second=17) and received_at.tzinfo is not None
    assert envelope_to == ["+15550100", "+15550101"] and quarantine is None
    assert [row[1] for row in again] == [f"SM{3:032d}"]
    assert await db.read_rows(_ENTRIES, sender="+1999") == []


@pytest.mark.database
async def test_a_read_on_a_connection_the_server_dropped_is_sent_again(db):  # noqa: F811
    """PostgreSQL: the hot-read pool does not ping its connections, so a backend the server
    terminated (a restart does the same) must cost a retry, not an error."""
    if db.is_sqlite:
        pytest.skip("about PostgreSQL's pooled connections")
    await spool.record(db, [arrival(4)])
    assert len(await db.read_rows(_ENTRIES, sender="+15550000004")) == 1  # a pooled connection now
    async with db.write_engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    rows = await db.read_rows(_ENTRIES, sender="+15550000004")
    assert [row[1] for row in rows] == [f"SM{4:032d}"]
