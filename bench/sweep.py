"""Benchmark: one scheduler pass (SLA breaches, idle flags, auto-close, reminders, reply locks)
over a large open queue, and how it grows with the queue.

Not a test. Run from the project root:

    python bench/sweep.py [--sizes 10000,100000,1000000] [--due 0.001] [--databases sqlite,postgresql]

For each database and size it seeds that many open tickets straight into the tables (one
handler group with 5 members, 1,000 customers; the rows as the ticket lifecycle leaves them:
SLA due and next-check instants, idle instants, weights), spread over the last 30 days, then
times ``scheduler.run_pass`` (what ``deskbell tick`` and the worker run) three ways:

  * **quiet**: a pass when nothing is due (the steady state between two passes 30 s apart);
  * **due**: a pass when ``--due`` of the tickets (default 0.1 %) have just crossed an SLA
    target and their idle limit (so each is announced, flagged and its card re-rendered);
  * **again**: the same pass repeated for the same instant (nothing may be sent twice).

Target (issue): 100,000 open tickets in under 2 s, growing linearly or better. The ceiling
printed beside each is the time to read every open ticket's id once (a full scan of the
queue), which a sweep that looked at every ticket could not beat.

PostgreSQL: a throw-away cluster (``initdb``; ``DESKBELL_TEST_POSTGRES`` to use a running
server), skipped with a note when the binaries are missing. Progress on stderr, the results
table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select  # noqa: E402

from bot.clock import FrozenClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core import groups, scheduler  # noqa: E402
from bot.core.desk import Desk  # noqa: E402
from bot.store import migrate  # noqa: E402
from bot.store import models as m  # noqa: E402
from bot.store.db import Database  # noqa: E402

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)  # a Monday afternoon
MEMBERS = [f"UMEMBER{n}" for n in range(5)]
CUSTOMERS = 1000
CHUNK = 5000


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def settings_for(url: str) -> Settings:
    return Settings.model_validate({
        "database": {"url": url},
        "handler_groups": [{"name": "support", "slack_channel": "#support", "members": MEMBERS}],
        "tickets": {"idle_after_minutes": 240, "auto_close_resolved_after_days": 3},
        "sla": {"escalate_after_minutes": 60, "escalate_to": "#leads"},
    })


def ticket_rows(n: int, start: int, group_id: int, staff_ids: list[int], contact_ids: list[int],
                due: set[int], rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + n):
        created = NOW - timedelta(minutes=rng.randrange(60, 30 * 24 * 60))
        soon = NOW + timedelta(minutes=rng.randrange(1, 10 * 24 * 60))
        is_due = i in due
        rows.append({
            "id": i, "subject": f"Ticket {i}", "status": "open", "priority": rng.randrange(1, 6),
            "group_id": group_id, "assignee_id": staff_ids[i % len(staff_ids)],
            "requester_id": contact_ids[i % len(contact_ids)], "channel": "email",
            "reply_token": uuid.uuid4().hex, "via_email": True, "unread": False, "weight": rng.randrange(0, 60),
            "created_at": created, "updated_at": created, "last_action_at": created,
            "last_customer_message_at": created, "last_reply_at": created, "awaiting_staff_since": created,
            "door": "smtp", "first_response_due_at": NOW - timedelta(minutes=1) if is_due else soon,
            "resolution_due_at": soon + timedelta(days=2),
            "sla_check_at": NOW - timedelta(minutes=1) if is_due else soon,
            "idle_at": NOW - timedelta(minutes=1) if is_due else soon + timedelta(hours=1),
            "first_response_paused_minutes": 0, "resolution_paused_minutes": 0,
        })
    return rows


async def seed(db: Database, settings: Settings, size: int, due_fraction: float) -> None:
    rng = random.Random(size)
    await groups.sync_groups(db, settings)
    async with db.transaction() as s:
        group_id = await s.scalar(select(m.HandlerGroup.id).where(m.HandlerGroup.name == "support"))
        await s.execute(insert(m.Staff), [{"slack_user_id": u, "name": u, "created_at": NOW, "is_admin": False}
                                          for u in MEMBERS])
        await s.execute(insert(m.Contact), [{"email": f"c{n}@example.net", "name": f"Customer {n}",
                                             "created_at": NOW, "sms_opted_out": False}
                                            for n in range(CUSTOMERS)])
        staff_ids = list((await s.scalars(select(m.Staff.id))).all())
        contact_ids = list((await s.scalars(select(m.Contact.id))).all())
    due = set(rng.sample(range(1, size + 1), max(1, int(size * due_fraction))))
    started = time.perf_counter()
    for start in range(1, size + 1, CHUNK):
        async with db.transaction() as s:
            await s.execute(insert(m.Ticket), ticket_rows(min(CHUNK, size - start + 1), start, group_id,
                                                          staff_ids, contact_ids, due, rng))
        if start % 100_000 == 1 and start > 1:
            say(f"    seeded {start - 1:,} tickets ({time.perf_counter() - started:.0f} s)")
    if not db.is_sqlite:
        async with db.write_engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
    say(f"    seeded {size:,} tickets in {time.perf_counter() - started:.1f} s ({len(due):,} due)")


async def timed(coro: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await coro
    return time.perf_counter() - started, result


async def one(url: str, size: int, due_fraction: float) -> dict[str, Any]:
    settings = settings_for(url)
    db = Database(url)
    try:
        await migrate.upgrade(db)
        await seed(db, settings, size, due_fraction)
        clock = FrozenClock(NOW)
        desk = Desk(db=db, settings=settings, clock=clock)

        async def scan() -> int:
            async with db.reading() as s:
                return len((await s.scalars(select(m.Ticket.id).where(m.Ticket.status == "open"))).all())

        ceiling, _ = await timed(scan())
        quiet, _ = await timed(scheduler.run_pass(desk, now=NOW - timedelta(minutes=2)))
        due, done = await timed(scheduler.run_pass(desk, now=NOW))
        again, twice = await timed(scheduler.run_pass(desk, now=NOW))
        async with db.reading() as s:
            notices = await s.scalar(select(func.count()).select_from(m.OutboxItem))
        return {"size": size, "ceiling": ceiling, "quiet": quiet, "due": due, "again": again,
                "acted": done, "twice": twice, "outbox": notices}
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="open tickets per run")
    parser.add_argument("--due", type=float, default=0.001, help="fraction of tickets due in the 'due' pass")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="deskbell-sweep-"))
    cluster, server = None, os.environ.get("DESKBELL_TEST_POSTGRES")
    results: list[tuple[str, dict[str, Any]]] = []
    say(f"$ python bench/sweep.py {' '.join(sys.argv[1:])}".rstrip())
    try:
        for database in args.databases.split(","):
            if database == "postgresql" and not server:
                try:
                    from tests.pg import Cluster

                    cluster = Cluster()
                    server = cluster.start()
                except (FileNotFoundError, OSError) as exc:
                    say(f"PostgreSQL skipped: {exc}")
                    continue
            for size in sizes:
                if database == "sqlite":
                    url = f"sqlite+aiosqlite:///{work / f'sweep-{size}.db'}"
                else:
                    from tests.pg import psql, with_database

                    name = f"sweep_{size}_{uuid.uuid4().hex[:6]}"
                    psql(server, f"CREATE DATABASE {name}")
                    url = with_database(server, name, driver="asyncpg")
                say(f"{database}, {size:,} open tickets")
                result = await one(url, size, args.due)
                say(f"    quiet {result['quiet']:.3f} s, due {result['due']:.3f} s ({result['acted']}), "
                    f"again {result['again']:.3f} s, full scan {result['ceiling']:.3f} s")
                results.append((database, result))
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    print("| database | open tickets | quiet pass | due pass (tickets acted on) | per ticket acted on | "
          "same instant again | full scan of the queue (ceiling) | target < 2 s at 100k |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for database, r in results:
        acted = sum(r["acted"].values())
        repeated = sum(r["twice"].values())
        print(f"| {database} | {r['size']:,} | {r['quiet']:.3f} s | {r['due']:.3f} s ({acted:,}) | "
              f"{r['due'] / max(acted, 1) * 1000:.2f} ms | {r['again']:.3f} s ({repeated} acted) | "
              f"{r['ceiling']:.3f} s | "
              f"{('met' if r['due'] < 2 else 'MISSED') if r['size'] == 100_000 else '—'} |")


if __name__ == "__main__":
    asyncio.run(main())
