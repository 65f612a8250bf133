"""PostgreSQL is a first-class database: the migrations run on it and Deskbell works on it."""

from __future__ import annotations

from bot.core import reports
from bot.store import migrate
from bot.store.db import Database
from tests.conftest import deliver, running
from tests.pg import pg_databases, pg_url, postgres_server  # noqa: F401  (fixtures)
from tests.test_foundation import mail


async def test_a_mail_becomes_a_ticket_on_postgresql(app_settings, pg_url):  # noqa: F811
    db = Database(pg_url)
    await migrate.upgrade(db)
    await db.dispose()
    async with running(app_settings(database={"url": pg_url})) as app:
        code, _ = await deliver(app, mail())
        assert code == 250
        tickets = await reports.list_tickets(app.db, now=app.clock.now())
    assert [t["number"] for t in tickets] == [1]
