"""Benchmark: Deskbell on PostgreSQL with several processes per role — how far it scales here.

Not a test. Run from the project root:

    python bench/scale.py [--messages 2000] [--smtp 1,2,4] [--workers 1,2]

It starts a throw-away PostgreSQL cluster on loopback (or uses ``DESKBELL_TEST_POSTGRES``), a
fake Slack Web API and a relay sink in this process, and for each combination of ``--smtp``
door processes (``deskbell smtp``) and ``--workers`` worker processes (``deskbell worker``) on
one fresh database:
  * door throughput: messages/s until the last 250, 8 SMTP clients per door process, against
    the same number of aiosmtpd null sinks (handlers that accept and drop) in the same run;
  * end to end: from the first send until the last ticket is committed (polled every 50 ms),
    and until the last card is posted;
  * correctness: as many tickets as messages, numbers 1..N without gaps or duplicates, each
    card posted exactly once (the fake Slack counts).
Then the CPU each kind of process used during the run (psutil), which names the bottleneck,
and the capacity per day the best end-to-end rate implies. Ends with a Markdown table for
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402  (the ingest bench's processes and mail)
    CLIENTS,
    REFERENCE_SINK,
    Fleet,
    Server,
    message,
    send_all,
    write_config,
)
from tests.fakes import FakeSlack, RelaySink  # noqa: E402
from tests.pg import Cluster, psql, with_database  # noqa: E402


class Worker(Server):
    """A ``deskbell worker``: it listens on nothing, so it has started at its "Stop with" line."""

    LISTENS = False


def command_line() -> str:
    return "python bench/scale.py " + " ".join(sys.argv[1:])


async def spread(ports: list[int], mails: list[tuple[str, bytes]]) -> float:
    """Send ``mails`` to all ``ports`` at once, 8 clients each; seconds until the last 250."""
    start = time.perf_counter()
    await asyncio.gather(*(send_all(port, mails[i::len(ports)], clients=CLIENTS)
                           for i, port in enumerate(ports)))
    return time.perf_counter() - start


async def wait_tickets(admin_url: str, total: int, timeout: float) -> float | None:
    """Seconds until ``total`` tickets are committed (None: not within ``timeout``)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        count = int(await asyncio.to_thread(psql, admin_url, "SELECT count(*) FROM tickets") or 0)
        if count >= total:
            return time.perf_counter() - start
        await asyncio.sleep(0.05)
    return None


def postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process on this machine, by pid."""
    found = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] and proc.info["name"].startswith("postgres") and proc.info["cpu_times"]:
            found[proc.pid] = proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return found


def cpu_seconds(servers: list[Server]) -> float:
    total = 0.0
    for server in servers:
        try:
            times = psutil.Process(server.proc.pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


async def run_one(fleet: Fleet, server_url: str, slack: FakeSlack, relay: RelaySink, *, smtp: int,
                  workers: int, messages: int, say) -> dict:
    name = f"s{smtp}w{workers}_{uuid.uuid4().hex[:6]}"
    psql(server_url, f"CREATE DATABASE {name}")
    url = with_database(server_url, name, driver="asyncpg")
    admin = with_database(server_url, name)
    where = fleet.directory(name)
    # Several doors on one host: every client comes from 127.0.0.1.
    config = write_config(where, slack, relay, database_url=url, max_sessions_per_client=4 * CLIENTS)
    upgrade = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "db", "upgrade",
                                                   "--config", str(config), cwd=where,
                                                   stdout=asyncio.subprocess.DEVNULL)
    await upgrade.wait()
    doors = [fleet.start([sys.executable, "-m", "bot", "smtp", "--config", str(config)], where)
             for _ in range(smtp)]
    crew = [Worker([sys.executable, "-m", "bot", "worker", "--config", str(config)], where)
            for _ in range(workers)]
    fleet.servers.extend(crew)
    tag = f"scale{name}"
    cards_before = len(slack.cards())
    mails = [message(n, tag) for n in range(messages)]
    cpu_doors, cpu_workers, cpu_db = cpu_seconds(doors), cpu_seconds(crew), postgres_cpu()
    start = time.perf_counter()
    sending = asyncio.create_task(spread([d.port for d in doors], mails))
    committed = await wait_tickets(admin, messages, timeout=120 + 0.2 * messages)
    accepted = await sending
    while len(slack.cards()) - cards_before < messages and time.perf_counter() - start < 300:
        await asyncio.sleep(0.1)
    carded = time.perf_counter() - start
    cpu_doors, cpu_workers = cpu_seconds(doors) - cpu_doors, cpu_seconds(crew) - cpu_workers
    cpu_db = sum(t - cpu_db.get(pid, 0.0) for pid, t in postgres_cpu().items())
    numbers = [int(n) for n in psql(admin, "SELECT id FROM tickets ORDER BY id").split()]
    subjects = [c.args.get("text", "") for c in slack.cards()[cards_before:]]
    per_ticket: dict[str, int] = {}
    for text in subjects:
        key = text.split(" — ")[0]
        per_ticket[key] = per_ticket.get(key, 0) + 1
    for server in doors + crew:
        fleet.stop(server, f"deskbell ({name})")
    result = {
        "smtp": smtp, "workers": workers, "door": messages / accepted,
        "end_to_end": messages / committed if committed else None,
        "cards_seconds": carded, "tickets": len(numbers),
        "sequential": numbers == list(range(1, len(numbers) + 1)),
        "cards": len(subjects), "posted_twice": sum(1 for v in per_ticket.values() if v > 1),
        "cpu_doors": cpu_doors, "cpu_workers": cpu_workers, "cpu_db": cpu_db,
    }
    say(f"  {smtp} smtp + {workers} worker(s): door {result['door']:7.1f} msg/s, end to end "
        f"{(result['end_to_end'] or 0):6.1f} msg/s, cards out after {carded:5.1f} s; "
        f"{result['tickets']} tickets, numbers 1..N {'yes' if result['sequential'] else 'NO'}, "
        f"{result['cards']} cards, {result['posted_twice']} posted twice; CPU s: doors "
        f"{cpu_doors:.1f}, workers {cpu_workers:.1f}, PostgreSQL {cpu_db:.1f}")
    return result


async def null_sinks(fleet: Fleet, count: int, messages: int) -> float:
    where = fleet.directory(f"null{count}")
    sinks = [fleet.start([sys.executable, "-c", REFERENCE_SINK, "discard", str(where / "raw.db")], where)
             for _ in range(count)]
    seconds = await spread([s.port for s in sinks], [message(n, f"null{count}") for n in range(messages)])
    for sink in sinks:
        fleet.stop(sink, "null sink")
    return messages / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="messages per combination")
    parser.add_argument("--smtp", default="1,2,4", help="door process counts to try")
    parser.add_argument("--workers", default="1,2", help="worker process counts to try")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    doors = [int(x) for x in args.smtp.split(",")]
    crews = [int(x) for x in args.workers.split(",")]

    def say(text: str = "") -> None:
        print(text, flush=True)

    say(f"$ {command_line()}")
    say(f"Deskbell scale benchmark on PostgreSQL — {os.cpu_count()} CPUs, {args.messages} messages "
        f"per combination, {CLIENTS} SMTP clients per door process")
    work = Path(tempfile.mkdtemp(prefix="deskbell-scale-"))
    fleet = Fleet(work)
    cluster = None
    server_url = os.environ.get("DESKBELL_TEST_POSTGRES")
    if not server_url:
        cluster = Cluster()
        server_url = cluster.start()
    slack = await FakeSlack().start()
    relay = await RelaySink().start()
    results, ceilings = [], {}
    try:
        for count in sorted(set(doors)):
            ceilings[count] = await null_sinks(fleet, count, args.messages)
            say(f"  null sink × {count}: {ceilings[count]:7.1f} msg/s")
        for smtp in doors:
            for workers in crews:
                results.append(await run_one(fleet, server_url, slack, relay, smtp=smtp, workers=workers,
                                             messages=args.messages, say=say))
    finally:
        fleet.stop_all()
        await slack.stop()
        await relay.stop()
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)

    say("\n| smtp | workers | door msg/s (ratio to null sinks) | end to end msg/s | tickets | "
        "numbers 1..N | cards (twice) | CPU s doors / workers / PostgreSQL |")
    say("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        e2e = f"{r['end_to_end']:.1f}" if r["end_to_end"] else "not all committed"
        say(f"| {r['smtp']} | {r['workers']} | {r['door']:.1f} ({r['door'] / ceilings[r['smtp']]:.2f}) | "
            f"{e2e} | {r['tickets']} | {'yes' if r['sequential'] else 'no'} | {r['cards']} "
            f"({r['posted_twice']}) | {r['cpu_doors']:.1f} / {r['cpu_workers']:.1f} / {r['cpu_db']:.1f} |")
    best = max((r["end_to_end"] or 0 for r in results), default=0)
    say(f"\nBest end to end: {best:.1f} msg/s, i.e. {best * 86400 / 1e6:.1f} million messages a day "
        f"on this {os.cpu_count()}-CPU machine (database, doors, workers and clients together).")


if __name__ == "__main__":
    asyncio.run(main())
