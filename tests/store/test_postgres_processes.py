"""Several processes per role on one PostgreSQL (DESIGN §5): real ``deskbell smtp`` and
``deskbell worker`` processes side by side — every message one ticket, numbered without gaps,
every card posted once, and a worker killed mid-dispatch costs a lease, not a double post."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import aiosmtplib
import yaml

from bot.store import migrate
from bot.store.db import Database
from tests.conftest import DOMAIN, settings_dict, wait_until
from tests.pg import pg_databases, pg_url, postgres_server, psql, with_database  # noqa: F401  (fixtures)
from tests.test_process import BotProcess, message

CLIENTS = 8


def config(tmp_path: Path, url: str, fake_slack, relay, **overrides) -> Path:  # noqa: ANN001
    data = settings_dict(tmp_path, slack_url=fake_slack.url, relay_port=relay.port,
                         database={"url": url}, log={"level": "WARNING"}, **overrides)
    data["smtp_in"]["max_sessions_per_client"] = 4 * CLIENTS
    path = tmp_path / "deskbell.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def upgraded(url: str) -> None:
    db = Database(url)
    await migrate.upgrade(db)
    await db.dispose()


async def send(ports: list[int], total: int) -> None:
    mails = [message(n) for n in range(total)]

    async def client(port: int, batch: list[tuple[str, bytes]]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        for n, (_, raw) in batch:
            await smtp.sendmail(f"customer{n}@example.net", [f"help@{DOMAIN}"], raw)
        await smtp.quit()

    numbered = list(enumerate(mails))
    shares = [numbered[c::CLIENTS * len(ports)] for c in range(CLIENTS * len(ports))]
    await asyncio.gather(*(client(ports[i % len(ports)], share) for i, share in enumerate(shares) if share))


def posts_per_subject(fake_slack) -> collections.Counter[str]:  # noqa: ANN001
    return collections.Counter(c.args["blocks"][0]["text"]["text"].split(" ", 1)[1]
                               for c in fake_slack.cards())


async def test_two_doors_and_two_workers_make_every_ticket_once_in_sequence(tmp_path, fake_slack, relay,
                                                                           pg_url, postgres_server):  # noqa: F811
    total = 2000
    await upgraded(pg_url)
    path = config(tmp_path, pg_url, fake_slack, relay)
    processes = [BotProcess(path, tmp_path, role) for role in ("smtp", "smtp", "worker", "worker")]
    try:
        await asyncio.gather(*(asyncio.to_thread(p.start, 60) for p in processes))
        await send([p.smtp_port for p in processes if p.role == "smtp"], total)
        await wait_until(lambda: len(fake_slack.cards()) >= total, timeout=240, interval=0.5)
        await asyncio.sleep(1)  # a card posted twice would show up now
    finally:
        for p in processes:
            if p.proc is not None and p.proc.poll() is None:
                await asyncio.to_thread(p.terminate)
    admin = with_database(postgres_server, pg_url.rsplit("/", 1)[1])
    numbers = [int(n) for n in psql(admin, "SELECT id FROM tickets ORDER BY id").split()]
    assert numbers == list(range(1, total + 1))
    posts = posts_per_subject(fake_slack)
    assert len(posts) == total and set(posts.values()) == {1}


async def test_a_worker_killed_mid_dispatch_leaves_its_claims_to_the_other_none_twice(
        tmp_path, fake_slack, relay, pg_url, postgres_server):  # noqa: F811
    total = 60
    await upgraded(pg_url)
    fake_slack.post_delay = 0.3  # posts take a while: the kill lands while some are in flight
    path = config(tmp_path, pg_url, fake_slack, relay, outbox={"lease_seconds": 3, "concurrency": 8,
                                                               "backoff_base_seconds": 0.05,
                                                               "backoff_max_seconds": 0.4,
                                                               "max_attempts": 30})
    door = BotProcess(path, tmp_path, "smtp")
    doomed = BotProcess(path, tmp_path, "worker")
    survivor = BotProcess(path, tmp_path, "worker")
    try:
        await asyncio.to_thread(door.start, 60)
        await asyncio.to_thread(doomed.start, 60)
        await send([door.smtp_port], total)
        admin = with_database(postgres_server, pg_url.rsplit("/", 1)[1])

        def claimed() -> int:
            return int(psql(admin, "SELECT count(*) FROM outbox WHERE status = 'sending' "
                                   "AND channel = 'slack'") or 0)

        await wait_until(lambda: claimed() > 0 and len(fake_slack.cards()) >= 5, timeout=60, interval=0.05)
        await asyncio.to_thread(doomed.kill)
        assert claimed() > 0, "the kill must leave claims behind"
        await asyncio.to_thread(survivor.start, 60)
        await wait_until(lambda: len(posts_per_subject(fake_slack)) == total, timeout=120, interval=0.5)
        await asyncio.sleep(4)  # past another lease: a second post would show up now
    finally:
        for p in (door, doomed, survivor):
            if p.proc is not None and p.proc.poll() is None:
                await asyncio.to_thread(p.terminate)
    posts = posts_per_subject(fake_slack)
    assert len(posts) == total and set(posts.values()) == {1}, posts.most_common(3)
