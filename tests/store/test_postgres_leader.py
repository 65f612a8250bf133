"""One process at a time does work that must not run twice (an IMAP account's poller, a
scheduler pass): a named advisory lock on PostgreSQL, passed on when its holder dies."""

from __future__ import annotations

import asyncio

from bot.store.leader import Leadership, lock_key
from tests.conftest import wait_until
from tests.pg import pg_databases, pg_url, postgres_server, psql, with_database  # noqa: F401  (fixtures)


class Work:
    """Counts how many holders are working at once."""

    def __init__(self) -> None:
        self.running, self.most, self.started = 0, 0, []

    def for_(self, who: str):  # noqa: ANN201
        async def work() -> None:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(who)
            try:
                await asyncio.Event().wait()
            finally:
                self.running -= 1
        return work


async def test_one_holder_at_a_time_and_the_turn_passes_when_it_dies(pg_url, postgres_server):  # noqa: F811
    work = Work()
    a, b = (Leadership(pg_url, "imap:support", retry_seconds=0.2) for _ in range(2))
    tasks = [asyncio.create_task(a.run(work.for_("a"))), asyncio.create_task(b.run(work.for_("b")))]
    try:
        await wait_until(lambda: work.running == 1, timeout=10)
        await asyncio.sleep(1)  # both keep trying: still one
        assert work.running == 1 and len(work.started) == 1
        first = work.started[0]
        admin = with_database(postgres_server, pg_url.rsplit("/", 1)[1])
        high, low = (lock_key("imap:support") >> 32) & 0xFFFFFFFF, lock_key("imap:support") & 0xFFFFFFFF
        # The holder's connection dies (a crash, a network cut): the server frees its lock.
        killed = psql(admin, "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = "
                             f"'advisory' AND granted AND classid = {high} AND objid = {low}")
        assert killed.strip() == "1"
        await wait_until(lambda: len(work.started) >= 2 and work.running == 1, timeout=10)
        assert work.most == 1
        assert first in work.started
    finally:
        a.stop()
        b.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_on_sqlite_the_one_process_always_holds_it(tmp_path):
    work = Work()
    leader = Leadership(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "scheduler")
    task = asyncio.create_task(leader.run(work.for_("only")))
    await wait_until(lambda: work.running == 1, timeout=5)
    leader.stop()
    await task
    assert work.running == 0
