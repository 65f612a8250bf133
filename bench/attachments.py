"""Benchmark: SMTP ingest with a 1 MB attachment per message against the same messages
without it, in the same run.

Not a test. Run from the project root:

    python bench/attachments.py [--messages 300] [--size 1000000] [--repeat 3]
                                [--stores database,directory] [--postgres] [--profile DIR]

Three sets of ``--messages`` customer mails, built once and sent unchanged to every server:
  * plain: text/plain, the ingest benchmark's body, each with its own sender and Message-ID;
  * distinct: the same mails (same headers, same text part) as multipart/mixed with a
    ``--size``-byte PDF attached (base64, 1.37 MB on the wire for 1 MB), each file's bytes its
    own (``%PDF-1.7`` and random bytes), so content addressing keeps every one;
  * same: as distinct, but every mail carries one and the same file (stored once).

Each measurement starts ``deskbell run`` (a separate process, all roles, on loopback port 0)
in a fresh directory on a fresh SQLite database (WAL, ``synchronous=FULL``, as Deskbell sets
it), with ``attachments.store`` set to ``database`` (bytes in the ``blobs`` table) or
``directory`` (files under the run's directory, fsynced before the commit). Slack is left
unconfigured: cards and file uploads (one ``ticket.file`` intent per file) wait in the outbox,
as they do until a bot token is set, so nothing here uploads; the customers'
acknowledgements go to an SMTP relay sink in this process. Then ``CLIENTS`` (8) SMTP clients,
each reusing one connection (EHLO once; MAIL, RCPT, DATA per message, each reply awaited, as an
MTA sends), send the set. The clients write bytes encoded and dot-stuffed when the sets were
built, so the sending side costs about 2 ms of CPU per 1.37 MB message (aiosmtplib, which
bench/ingest.py uses, re-encodes every message: 21 ms each, and would be what is measured).
Timed from the first connect:
  * last 250: until the last message has its answer (what the senders wait for);
  * ingested: until every message is a ticket and the spool has nothing queued (a thread polls
    the database every 20 ms: SQLite with the stdlib sqlite3 module, WAL, so it never blocks
    the server; PostgreSQL with asyncpg).
Messages/s and attachment MB/s for each, and the ratio of the attachment sets to the plain set,
the best of ``--repeat`` runs each (the runs interleave: plain, then each store's distinct and
same, then again). The target is a ratio >= 0.7 (the upload to Slack happens in the
dispatcher, not before the 250). After each run the database is checked: as many tickets,
attachment rows and pending ``ticket.file`` intents as messages, and as many blobs as distinct
files (for ``directory`` as many files, and no bytes in the table). The CPU the server used
(its event loop thread and the rest) and this process's is shown per message, to name the busy
side.

Beside them, the door alone: ``deskbell smtp`` (the Procfile's smtp role; only the spool commit
before each 250) on a fresh SQLite database, sent the plain and the distinct set, the ratio of
its last-250 rates judged against the same target. And two references for the protocol alone,
each sent the plain and the distinct set the same way: an aiosmtpd server whose handler discards every message (null sink; aiosmtpd
reads DATA line by line, as Deskbell's door does), and the same null sink reading DATA in
chunks (``CHUNKED_SINK``).

``--postgres`` adds the same runs on a throw-away PostgreSQL cluster (``fsync=off``, as
bench/scale.py's) with ``attachments.store: database``. ``--profile DIR`` records py-spy
(``--format raw --threads``) on the server during the first distinct run of each store:
collapsed stacks in DIR; sampling slows the server, so a profiled run's numbers are not for
the record.

Ends with a summary table in Markdown, for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import shutil
import signal
import sqlite3
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import BODY, CLIENTS, DOMAIN, REFERENCE_SINK, Fleet
from tests.fakes import RelaySink

TARGET = 0.70  # with an attachment / without, messages per second
KINDS = ("plain", "distinct", "same")
DATE = format_datetime(datetime(2026, 12, 3, 9, 30, tzinfo=UTC))


def say(text: str = "") -> None:
    print(text, flush=True)


def command_line() -> str:
    return shlex.join(["python", "bench/attachments.py", *sys.argv[1:]])


# A null sink that reads DATA in chunks instead of lines: what the wire costs when a message is
# taken with a few C-level searches per 64 kB (readuntil on the end marker; past the reader's
# limit, what it holds so far) and un-stuffed with one bytes.replace. The reference for the
# door's own line-by-line DATA loop; not a complete DATA handler (no line-length check).
CHUNKED_SINK = textwrap.dedent("""
    import asyncio
    from aiosmtpd.smtp import SMTP, syntax

    END = b"\\r\\n.\\r\\n"

    class Chunked(SMTP):
        @syntax("DATA")
        async def smtp_DATA(self, arg):
            if not self.envelope.rcpt_tos:
                await self.push("503 Error: need RCPT command")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            pieces = [b"\\r\\n"]
            while True:
                try:
                    pieces.append(await self._reader.readuntil(END))
                    break
                except asyncio.LimitOverrunError as overrun:
                    pieces.append(await self._reader.read(overrun.consumed))
            data = b"".join(pieces)[2:-3].replace(b"\\r\\n..", b"\\r\\n.")
            self.envelope.original_content = data
            self._set_post_data_state()
            await self.push("250 OK")

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Chunked(Handler(), hostname="sink", loop=loop, data_size_limit=26214400), "127.0.0.1", 0)
        print(f"SMTP      listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        print("Stop with", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


# ----- the mail ------------------------------------------------------------------------------


def build(kind: str, count: int, size: int) -> list[tuple[str, bytes]]:
    """``count`` mails (sender, bytes); the n-th mail of every kind has the same headers and
    text part, and for ``distinct``/``same`` a ``size``-byte PDF attached."""
    shared = b"%PDF-1.7\n" + os.urandom(size - 9) if kind == "same" else None
    mails = []
    for n in range(count):
        sender = f"customer.{n}@example.net"
        msg = EmailMessage()
        msg["From"] = f"Customer {n} <{sender}>"
        msg["To"] = f"help@{DOMAIN}"
        msg["Subject"] = f"Invoice dispute {n}"
        msg["Date"] = DATE
        msg["Message-ID"] = f"<attachments.{n}@example.net>"
        msg.set_content(BODY)
        if kind != "plain":
            data = shared if shared is not None else b"%PDF-1.7\n" + os.urandom(size - 9)
            msg.add_attachment(data, maintype="application", subtype="pdf", filename=f"invoice-{n}.pdf")
        mails.append((sender, wire(msg.as_bytes(policy=SMTP_POLICY))))
    return mails


def wire(raw: bytes) -> bytes:
    """``raw`` as it goes after DATA: CRLF line ends, dot-stuffed (RFC 5321 §4.5.2), ended."""
    data = re.sub(rb"\r?\n", b"\r\n", raw)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


class Reply(Exception):
    pass


async def _reply(reader: asyncio.StreamReader, expect: str) -> None:
    """Read one (possibly multi-line) reply; it must start with ``expect``."""
    while True:
        line = await reader.readline()
        if not line:
            raise Reply(f"connection closed while waiting for {expect}")
        if not line.startswith(expect.encode()):
            raise Reply(f"expected {expect}, got {line[:200]!r}")
        if line[3:4] != b"-":
            return


async def send_all(port: int, mails: list[tuple[str, bytes]], *, clients: int) -> None:
    """Deliver ``mails`` (sender, bytes after DATA) over ``clients`` connections in parallel,
    each reused for its share: EHLO once, then MAIL, RCPT, DATA per message, each awaited, as
    an MTA sends. The bytes were encoded beforehand, so a client costs next to no CPU here."""
    async def client(batch: list[tuple[str, bytes]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        await _reply(reader, "220")
        writer.write(b"EHLO bench.example.net\r\n")
        await _reply(reader, "250")
        for sender, data in batch:
            writer.write(f"MAIL FROM:<{sender}>\r\n".encode())
            await _reply(reader, "250")
            writer.write(f"RCPT TO:<help@{DOMAIN}>\r\n".encode())
            await _reply(reader, "250")
            writer.write(b"DATA\r\n")
            await _reply(reader, "354")
            writer.write(data)
            await _reply(reader, "250")
        writer.write(b"QUIT\r\n")
        await _reply(reader, "221")
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(client(mails[c::clients]) for c in range(clients) if mails[c::clients]))


# ----- one measurement -----------------------------------------------------------------------


@dataclass
class Run:
    label: str  # e.g. "sqlite/database distinct"
    kind: str
    messages: int
    wire_bytes: int
    file_bytes: int  # attachment bytes sent (decoded)
    last_250: float = 0.0
    ingested: float | None = None
    cpu_server: float = 0.0  # seconds, whole process
    cpu_loop: float = 0.0  # seconds, its main thread (the event loop)
    cpu_bench: float = 0.0  # seconds, this process (the clients and the poller)
    peak_rss_mb: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def accept_rate(self) -> float:
        return self.messages / self.last_250

    @property
    def ingest_rate(self) -> float | None:
        return self.messages / self.ingested if self.ingested else None


def write_config(directory: Path, relay: RelaySink, *, store: str, database_url: str | None) -> Path:
    config = {
        "database": {"url": database_url or f"sqlite+aiosqlite:///{directory / 'deskbell.db'}"},
        "smtp_in": {"listen": "127.0.0.1:0", "domains": [DOMAIN]},
        "web": {"listen": "127.0.0.1:0"},
        "email_out": {"host": "127.0.0.1", "port": relay.port, "from_address": f"support@{DOMAIN}",
                      "reply_domain": DOMAIN, "ack_rate_limit_per_domain_per_hour": 0,
                      "ack_rate_limit_total_per_hour": 0},
        "attachments": {"store": store, "directory": str(directory / "attachments")},
        "log": {"level": "WARNING"},
    }
    path = directory / "deskbell.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Counts:
    """What the poller reads: tickets, spool rows, queued spool rows."""

    def __init__(self, sqlite_path: Path | None, pg_url: str | None) -> None:
        self.sqlite_path, self.pg_url = sqlite_path, pg_url
        self.conn: Any = None

    SQL = ("SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM raw_messages), "
           "(SELECT count(*) FROM raw_messages WHERE state = 'queued')")

    def open(self) -> None:
        """On the thread that reads (PostgreSQL: asyncpg on an event loop of that thread)."""
        if self.sqlite_path is not None:
            self.conn = sqlite3.connect(self.sqlite_path, isolation_level=None)
            self.conn.execute("PRAGMA query_only=1")
        else:
            import asyncpg

            self.loop = asyncio.new_event_loop()
            self.conn = self.loop.run_until_complete(asyncpg.connect(self.pg_url))

    def read(self) -> tuple[int, int, int]:
        return tuple(self.query(self.SQL)[0])  # type: ignore[return-value]

    def query(self, sql: str) -> list[tuple]:
        if self.sqlite_path is not None:
            return list(self.conn.execute(sql).fetchall())
        return [tuple(row) for row in self.loop.run_until_complete(self.conn.fetch(sql))]

    def close(self) -> None:
        if self.conn is None:
            return
        if self.sqlite_path is not None:
            self.conn.close()
        else:
            self.loop.run_until_complete(self.conn.close())
            self.loop.close()
        self.conn = None


def cpu_of(proc: psutil.Process) -> tuple[float, float]:
    """(whole process, main thread) CPU seconds so far."""
    times = proc.cpu_times()
    main = next((t for t in proc.threads() if t.id == proc.pid), None)
    return times.user + times.system, (main.user_time + main.system_time) if main else 0.0


def bench_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


async def measure(fleet: Fleet, relay: RelaySink, mails: list[tuple[str, bytes]], *, kind: str, store: str,
                  label: str, size: int, pg: dict[str, str] | None, profile: Path | None,
                  keep: bool) -> Run:
    """One ``deskbell run`` on a fresh database, sent ``mails``; the directory (and the
    PostgreSQL database) is removed afterwards unless ``keep``."""
    name = label.replace("/", "-").replace(" ", "-")
    where = fleet.directory(f"{name}-{time.time_ns()}")
    database_url = pg_url = None
    if pg is not None:
        from tests.pg import psql, with_database

        db_name = f"att_{time.time_ns()}"
        psql(pg["server"], f"CREATE DATABASE {db_name}")
        database_url = with_database(pg["server"], db_name, driver="asyncpg")
        pg_url = with_database(pg["server"], db_name)
    config = write_config(where, relay, store=store, database_url=database_url)
    if pg is not None:
        upgrade = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "db", "upgrade", "--config", str(config), cwd=where,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await upgrade.communicate()
        if upgrade.returncode:
            raise SystemExit(f"deskbell db upgrade failed:\n{stderr.decode()[-2000:]}")
    server = fleet.deskbell("run", where)
    await asyncio.sleep(2)  # start-up work (groups, scheduler) out of the way
    proc = psutil.Process(server.proc.pid)
    run = Run(label=label, kind=kind, messages=len(mails), wire_bytes=sum(len(raw) for _, raw in mails),
              file_bytes=0 if kind == "plain" else size * len(mails))
    counts = Counts(None if pg is not None else where / "deskbell.db", pg_url)
    total = len(mails)
    seen: dict[str, Any] = {"at": None, "last": (0, 0, 0), "rss": 0.0}
    stop = threading.Event()

    def poll() -> None:
        counts.open()
        try:
            while not stop.is_set():
                tickets, rows, queued = seen["last"] = counts.read()
                if tickets >= total and rows >= total and queued == 0:
                    seen["at"] = time.perf_counter()
                    return
                if not server.alive:
                    return
                try:
                    seen["rss"] = max(seen["rss"], proc.memory_info().rss / 1e6)
                except psutil.Error:
                    pass
                stop.wait(0.02)
        finally:
            counts.close()

    spy = None
    if profile is not None:
        spy = await asyncio.create_subprocess_exec(
            "py-spy", "record", "--format", "raw", "--threads", "--rate", "200", "--pid", str(proc.pid),
            "--output", str(profile), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await asyncio.sleep(1)
    cpu_before, loop_before = cpu_of(proc)
    bench_before = bench_cpu()
    poller = threading.Thread(target=poll, daemon=True)
    start = time.perf_counter()
    poller.start()
    await send_all(server.port, mails, clients=CLIENTS)
    run.last_250 = time.perf_counter() - start
    timeout = 120 + 0.5 * total
    await asyncio.to_thread(poller.join, max(0.0, start + timeout - time.perf_counter()))
    stop.set()
    await asyncio.to_thread(poller.join)
    cpu_after, loop_after = cpu_of(proc)
    run.cpu_bench = bench_cpu() - bench_before
    run.cpu_server, run.cpu_loop = cpu_after - cpu_before, loop_after - loop_before
    run.peak_rss_mb = seen["rss"]
    if seen["at"] is not None:
        run.ingested = seen["at"] - start
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has
        try:
            await asyncio.wait_for(spy.wait(), 60)
        except TimeoutError:
            spy.kill()
    fleet.stop(server, f"deskbell run ({label})")
    run.problems = server.problems()

    def stored() -> dict[str, Any]:
        counts.open()
        try:
            tickets, _rows, queued = counts.read()

            def one(sql: str) -> Any:
                return counts.query(sql)[0][0]

            return {"tickets": tickets, "queued": queued,
                    "attachments": one("SELECT count(*) FROM attachments"),
                    "blobs": one("SELECT count(*) FROM blobs"),
                    "blob_bytes_in_table": one("SELECT coalesce(sum(length(data)), 0) FROM blobs"),
                    "file_intents": one("SELECT count(*) FROM outbox WHERE kind = 'ticket.file' "
                                        "AND status = 'pending'"),
                    "cards_waiting": one("SELECT count(*) FROM outbox WHERE kind = 'ticket.card' "
                                         "AND status = 'pending'")}
        finally:
            counts.close()

    run.checks = await asyncio.to_thread(stored)
    files = [p for p in (where / "attachments").rglob("*") if p.is_file()] if (where / "attachments").exists() else []
    run.checks["files_in_directory"] = len(files)
    if pg is None:
        run.checks["database_mb"] = sum(p.stat().st_size for p in where.glob("deskbell.db*")) / 1e6
    if not keep:
        shutil.rmtree(where, ignore_errors=True)
        if pg is not None:
            from tests.pg import psql

            psql(pg["server"], f"DROP DATABASE IF EXISTS {db_name}")
    return run



def check(run: Run, *, store: str) -> list[str]:
    """What is wrong with what a run stored (empty: all as expected)."""
    n, c = run.messages, run.checks
    want = {"tickets": n, "queued": 0,
            "attachments": 0 if run.kind == "plain" else n,
            "blobs": {"plain": 0, "distinct": n, "same": 1}[run.kind],
            "file_intents": 0 if run.kind == "plain" else n,
            "cards_waiting": n}
    if store == "directory":
        want["files_in_directory"] = want["blobs"]
        want["blob_bytes_in_table"] = 0
    return [f"{key} {c.get(key)} (expected {value})" for key, value in want.items() if c.get(key) != value]


async def null_sink(fleet: Fleet, mails: list[tuple[str, bytes]], *, chunked: bool = False) -> float:
    """Seconds until the last 250 from an aiosmtpd server that discards every message (reading
    DATA line by line, as aiosmtpd does, or in chunks)."""
    where = fleet.directory(f"null-{time.time_ns()}")
    argv = ([sys.executable, "-c", CHUNKED_SINK] if chunked else
            [sys.executable, "-c", REFERENCE_SINK, "discard", str(where / "raw.db")])
    sink = fleet.start(argv, where)
    start = time.perf_counter()
    await send_all(sink.port, mails, clients=CLIENTS)
    seconds = time.perf_counter() - start
    fleet.stop(sink, "null sink")
    return seconds


async def door_alone(fleet: Fleet, relay: RelaySink, mails: list[tuple[str, bytes]], *, keep: bool) -> float:
    """Seconds until the last 250 from ``deskbell smtp`` (the door alone, as the Procfile's smtp
    role runs it) on a fresh SQLite database: the spool commit is all it does before a 250."""
    where = fleet.directory(f"door-{time.time_ns()}")
    write_config(where, relay, store="database", database_url=None)
    door = fleet.deskbell("smtp", where)
    start = time.perf_counter()
    await send_all(door.port, mails, clients=CLIENTS)
    seconds = time.perf_counter() - start
    fleet.stop(door, "deskbell smtp")
    if not keep:
        shutil.rmtree(where, ignore_errors=True)
    return seconds


# ----- the run -------------------------------------------------------------------------------


def verdict(ratio: float | None) -> str:
    return "—" if ratio is None else ("met" if ratio >= TARGET else "**missed**")


async def main() -> None:
    class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        pass

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    parser.add_argument("--messages", type=int, default=300, help="messages per set")
    parser.add_argument("--size", type=int, default=1_000_000, help="bytes of each attached file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each set and store; the best counts")
    parser.add_argument("--stores", default="database,directory",
                        help="attachments.store values to measure (SQLite)")
    parser.add_argument("--postgres", action="store_true",
                        help="also measure on a throw-away PostgreSQL cluster (store: database)")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy collapsed stacks of the server during the first distinct run of each store")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args()
    stores = [s for s in args.stores.split(",") if s]
    if any(s not in ("database", "directory") for s in stores) or not stores:
        parser.error("--stores takes database and/or directory")
    if args.messages < CLIENTS or args.size < 64 or args.repeat < 1:
        parser.error(f"--messages ≥ {CLIENTS}, --size ≥ 64, --repeat ≥ 1")
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)

    say(f"$ {command_line()}")
    say(f"Deskbell attachments benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}; {CLIENTS} SMTP clients, {args.messages} messages per set, "
        f"{args.size:,}-byte file per message")
    started = time.perf_counter()
    built = time.perf_counter()
    mails = {kind: build(kind, args.messages, args.size) for kind in KINDS}
    say(f"Built the sets in {time.perf_counter() - built:.1f} s: " + ", ".join(
        f"{kind} {sum(len(r) for _, r in mails[kind]) / len(mails[kind]) / 1e3:,.1f} kB a mail" for kind in KINDS))

    # (database, store) combinations; PostgreSQL measures the database store.
    targets: list[tuple[str, str]] = [("sqlite", s) for s in stores]
    if args.postgres:
        targets.append(("postgresql", "database"))

    work = Path(tempfile.mkdtemp(prefix="deskbell-attachments-"))
    fleet = Fleet(work)
    relay = await RelaySink().start()
    cluster = None
    pg: dict[str, str] | None = None
    runs: list[tuple[str, str, Run]] = []  # (database, store, run)
    null: dict[str, float] = {}
    profiled: set[tuple[str, str]] = set()
    try:
        if args.postgres:
            from tests.pg import Cluster

            server_url = os.environ.get("DESKBELL_TEST_POSTGRES")
            if not server_url:
                cluster = Cluster()
                server_url = cluster.start()
            pg = {"server": server_url}
        say(f"\nNull sink (aiosmtpd, discards), {CLIENTS} clients, seconds until the last 250 (best of {args.repeat}):")
        for chunked in (False, True):
            for kind in ("plain", "distinct"):
                key = f"{kind} chunked" if chunked else kind
                null[key] = min([await null_sink(fleet, mails[kind], chunked=chunked) for _ in range(args.repeat)])
                say(f"  {key:<16} {null[key]:6.2f} s  {args.messages / null[key]:8.1f} msg/s")
        say(f"Door alone (deskbell smtp, SQLite), {CLIENTS} clients, seconds until the last 250 "
            f"(best of {args.repeat}):")
        door: dict[str, float] = {}
        for kind in ("plain", "distinct"):
            door[kind] = min([await door_alone(fleet, relay, mails[kind], keep=args.keep)
                              for _ in range(args.repeat)])
            say(f"  {kind:<16} {door[kind]:6.2f} s  {args.messages / door[kind]:8.1f} msg/s  "
                f"({null[kind] / door[kind]:.2f} of the null sink)")
        for r in range(args.repeat):
            say(f"\nRound {r + 1} of {args.repeat}:")
            plan = []  # each database: its plain set, then each store's distinct and same sets
            for database in dict.fromkeys(d for d, _ in targets):
                plan.append((database, next(s for d, s in targets if d == database), "plain"))
                plan += [(database, store, kind) for d, store in targets if d == database
                         for kind in ("distinct", "same")]
            for database, store, kind in plan:
                label = f"{database}/{store} {kind}" if kind != "plain" else f"{database} plain"
                profile = None
                if profile_dir is not None and kind == "distinct" and (database, store) not in profiled:
                    profiled.add((database, store))
                    profile = profile_dir / f"{database}-{store}-distinct.txt"
                run = await measure(fleet, relay, mails[kind], kind=kind, store=store, label=label,
                                    size=args.size, pg=pg if database == "postgresql" else None,
                                    profile=profile, keep=args.keep)
                wrong = check(run, store=store)
                n = run.messages
                say(f"  {label:<34} last 250 {run.last_250:6.2f} s ({run.accept_rate:6.1f} msg/s, "
                    f"{run.wire_bytes / run.last_250 / 1e6:5.1f} MB/s on the wire), "
                    + (f"ingested {run.ingested:6.2f} s ({run.ingest_rate:6.1f} msg/s)" if run.ingested
                       else f"NOT all ingested in time: {run.checks}")
                    + f"; CPU ms a message: server {run.cpu_server / n * 1e3:.1f} (event loop "
                    f"{run.cpu_loop / n * 1e3:.1f}), bench {run.cpu_bench / n * 1e3:.1f}; peak RSS "
                    f"{run.peak_rss_mb:.0f} MB"
                    + (f"; database {run.checks['database_mb']:,.0f} MB" if "database_mb" in run.checks else "")
                    + (" (profiled: not for the record)" if profile else ""))
                if wrong:
                    say(f"    stored wrong: {'; '.join(wrong)}")
                if run.problems:
                    say(f"    server logged {len(run.problems)} error line(s), first: {run.problems[0][:300]}")
                if profile is None:
                    runs.append((database, store, run))
    finally:
        fleet.stop_all()
        await relay.stop()
        if cluster is not None:
            cluster.stop()
        if args.keep:
            say(f"\nKept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    # Summary: the best run of each (database, store, kind).
    def best(database: str, store: str | None, kind: str) -> Run | None:
        found = [run for d, s, run in runs if d == database and run.kind == kind and (store is None or s == store)]
        if not found:
            return None
        return min(found, key=lambda run: run.ingested if run.ingested else float("inf"))

    def best_250(database: str, store: str | None, kind: str) -> float | None:
        found = [run.last_250 for d, s, run in runs if d == database and run.kind == kind
                 and (store is None or s == store)]
        return min(found) if found else None

    n = args.messages
    mb = args.size / 1e6
    say(f"\nSummary — `{command_line()}`, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}; {n} messages a set, {CLIENTS} clients; best of {args.repeat}; "
        f"whole run {time.perf_counter() - started:.0f} s\n")
    say("| database, store | set | last 250: msg/s (file MB/s) | ratio to plain | ingested: msg/s (file MB/s) "
        "| ratio to plain | target ≥ 0.7 (ingested) | server CPU ms a message (event loop) |")
    say("| --- | --- | --- | --- | --- | --- | --- | --- |")
    plain_250 = {d: best_250(d, None, "plain") for d, _ in targets}
    plain = {d: best(d, None, "plain") for d, _ in targets}
    for database in dict.fromkeys(d for d, _ in targets):
        p = plain[database]
        if p is not None:
            say(f"| {database} | plain | {n / plain_250[database]:.1f} (—) | — | "
                + (f"{p.ingest_rate:.1f} (—)" if p.ingest_rate else "not all in time")
                + f" | — | — | {p.cpu_server / n * 1e3:.1f} ({p.cpu_loop / n * 1e3:.1f}) |")
        for d, store in targets:
            if d != database:
                continue
            for kind in ("distinct", "same"):
                run = best(database, store, kind)
                b250 = best_250(database, store, kind)
                if run is None or b250 is None:
                    continue
                r250 = (n / b250) / (n / plain_250[database]) if plain_250[database] else None
                ringest = (run.ingest_rate / p.ingest_rate if run.ingest_rate and p and p.ingest_rate else None)
                say(f"| {database}, {store} | {kind} 1 MB | {n / b250:.1f} ({n * mb / b250:.1f}) | "
                    + (f"{r250:.2f}" if r250 is not None else "—") + " | "
                    + (f"{run.ingest_rate:.1f} ({run.ingest_rate * mb:.1f})" if run.ingest_rate
                       else "not all in time")
                    + " | " + (f"{ringest:.2f}" if ringest is not None else "—")
                    + f" | {verdict(ringest)} | {run.cpu_server / n * 1e3:.1f} ({run.cpu_loop / n * 1e3:.1f}) |")
    say(f"| door alone (`deskbell smtp`, SQLite) | plain / distinct | {n / door['plain']:.1f} / "
        f"{n / door['distinct']:.1f} ({n * mb / door['distinct']:.1f}) | "
        f"{door['plain'] / door['distinct']:.2f} | — | — | "
        f"{verdict(door['plain'] / door['distinct'])} (last 250) | — |")
    for key, what in (("", "aiosmtpd, DATA line by line"), (" chunked", "DATA read in chunks")):
        say(f"| null sink ({what}) | plain / distinct | {n / null['plain' + key]:.1f} / "
            f"{n / null['distinct' + key]:.1f} ({n * mb / null['distinct' + key]:.1f}) | "
            f"{null['plain' + key] / null['distinct' + key]:.2f} | — | — | — | — |")


if __name__ == "__main__":
    asyncio.run(main())
