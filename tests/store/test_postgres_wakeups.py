"""On PostgreSQL the roles may live in separate processes: a door's commit and a staff action's
outbox rows wake the workers of other processes at once (LISTEN/NOTIFY), not at their next
poll; polling stays the fallback."""

from __future__ import annotations

import asyncio
import time

from bot.core import reports
from bot.store import migrate
from bot.store.db import Database
from tests.conftest import running, send_mail, wait_until
from tests.pg import pg_databases, pg_url, postgres_server  # noqa: F401  (fixtures)
from tests.test_foundation import mail


async def test_a_door_in_another_process_wakes_the_intake_worker_at_once(app_settings, fake_slack,
                                                                         pg_url):  # noqa: F811
    db = Database(pg_url)
    await migrate.upgrade(db)
    await db.dispose()
    settings = app_settings(database={"url": pg_url})
    async with running(settings, roles=("worker",)) as worker, running(settings, roles=("smtp",)) as door:
        assert worker.intake is not None
        worker.intake.poll_seconds = 60  # a poll would come far too late: only a wake-up is in time
        await asyncio.sleep(0.5)  # the worker has polled once and sleeps; its listener is connected
        start = time.monotonic()
        code, _ = await asyncio.to_thread(send_mail, door.listening.smtp[1], mail())
        assert code == 250
        await wait_until(lambda: reports.list_tickets(worker.db, now=worker.clock.now()), timeout=5)
        took = time.monotonic() - start
        await wait_until(lambda: fake_slack.cards(), timeout=5)  # the outbox woke the dispatcher too
    assert took < 3, took
