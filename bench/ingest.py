"""Benchmark: SMTP door acceptance, mail in → committed ticket (on an empty and on a full
database), and end of DATA → Slack card, each beside a ceiling measured in the same run.

Not a test. Run from the project root:

    python bench/ingest.py [--messages 1000] [--prefill 200000] [--rate 20] [--seconds 15]

It starts, as separate processes on loopback port 0, each in a fresh temporary directory:
  * the ceilings: aiosmtpd servers whose handler per message only discards it (the null sink),
    parses it, or parses it and commits the raw bytes to SQLite ("persist");
  * ``deskbell smtp`` (the SMTP door alone) on a fresh SQLite database;
  * ``deskbell run`` on an empty SQLite database, posting cards to a fake Slack Web API and
    acknowledgements to a relay sink, both served by this script;
  * ``deskbell run`` on a database prefilled with ``--prefill`` tickets of history (contacts,
    tickets mostly closed, their messages and raw mail, events, delivered outbox rows), written
    with SQLAlchemy Core on a synchronous engine after ``deskbell db upgrade``.
Every SMTP client reuses one connection (as an MTA does) and every message has its own
Message-ID and sender (From and MAIL FROM), and the per-domain and total acknowledgement caps
are off (all senders share one domain), so every new ticket is acknowledged.

It measures, with 8 concurrent clients:
  1. door acceptance: messages/s until the last 250 from ``deskbell smtp``, against the null sink
     (target ratio >= 0.40); the parse and persist references are shown beside it. Each of these
     door-only servers gets 40 untimed messages, then ``--repeat`` timed runs; the best counts;
  2. end to end on an empty database: ``--messages`` messages to ``deskbell run``, time from the
     first send until the last of their tickets is committed (a thread polls the tickets table
     with the stdlib sqlite3 module every 20 ms; WAL, so it never blocks the server), against
     the persist reference's rate (target ratio >= 0.15);
  3. on that same server, end of DATA → Slack card latency at ``--rate`` msg/s for ``--seconds``
     (target p99 < 250 ms), and its resident memory idle (< 120 MB) and under that load (< 300 MB);
  4. end to end as in 2 on the prefilled database, against the empty-database rate (target
     ratio >= 0.90); the time the prefill took is printed with it.
It ends with a summary table in Markdown, for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import queue
import random
import re
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes import FakeSlack, RelaySink  # noqa: E402  (the same fakes the tests use)

DOMAIN = "support.example.com"
CLIENTS = 8
WARM_UP = 5 * CLIENTS  # untimed messages sent to each door-only server before its timed runs

# Targets of the summary table.
DOOR_TARGET = 0.40  # deskbell smtp / null sink
E2E_TARGET = 0.15  # end to end / persist reference
HISTORY_TARGET = 0.90  # end to end with history / end to end on an empty database
P99_TARGET_MS = 250.0
IDLE_RSS_TARGET_MB = 120.0
LOADED_RSS_TARGET_MB = 300.0

# Reference servers, each an aiosmtpd handler doing a fixed amount of work per message:
#   discard  — accept and drop (the ceiling);
#   parse    — plus the stdlib email parse that any ingest must do;
#   persist  — plus one SQLite WAL commit (synchronous=FULL) of the raw bytes: the least any
#              "durable before 250" design can do, with no ticket logic at all.
REFERENCE_SINK = textwrap.dedent("""
    import asyncio, sys
    from email.parser import BytesParser
    from email.policy import default
    from aiosmtpd.smtp import SMTP

    MODE, DB = sys.argv[1], sys.argv[2]

    class Handler:
        db = None

        async def handle_DATA(self, server, session, envelope):
            if MODE in ("parse", "persist"):
                BytesParser(policy=default).parsebytes(envelope.original_content)
            if MODE == "persist":
                await self.db.execute("INSERT INTO raw(data) VALUES (?)", (envelope.original_content,))
                await self.db.commit()
            return "250 2.0.0 Ok"

    async def main():
        handler = Handler()
        if MODE == "persist":
            import aiosqlite
            handler.db = await aiosqlite.connect(DB)
            await handler.db.execute("PRAGMA journal_mode=WAL")
            await handler.db.execute("PRAGMA synchronous=FULL")
            await handler.db.execute("CREATE TABLE raw(id INTEGER PRIMARY KEY, data BLOB)")
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink", loop=loop, data_size_limit=26214400,
                         enable_SMTPUTF8=True), "127.0.0.1", 0)
        print(f"SMTP      listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        print("Stop with", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")

BODY = ("Hello,\n\nmy internet connection drops every evening around 8 pm. "
        "The router lights look normal. Could you have a look?\n\nThanks,\nCustomer\n") * 3


def message(n: int, tag: str) -> tuple[str, bytes]:
    """One customer mail with its own sender and Message-ID; returns (sender, bytes).
    The subject is ``"{tag} {n}"``."""
    sender = f"customer.{tag}.{n}@example.net"
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <{sender}>"
    msg["To"] = f"help@{DOMAIN}"
    msg["Subject"] = f"{tag} {n}"
    msg["Message-ID"] = f"<{tag}.{n}.{time.time_ns()}@example.net>"
    msg.set_content(BODY)
    return sender, msg.as_bytes(policy=SMTP_POLICY)


# ----- processes -----------------------------------------------------------------------------


class Server:
    """A server process listening on port 0; its ports are read from its start-up summary
    ("SMTP      listening on 127.0.0.1:N", "Web       listening on http://127.0.0.1:N"). Start-up
    is over at the "Stop with" line or, failing that, once a port is known and the process has
    been quiet for a second. Standard output keeps being read so the process never blocks."""

    QUIET_SECONDS = 1.0
    LISTENS = True  # False: a process with no port (a worker) has started at "Stop with"

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.cwd = cwd
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=open(cwd / "stderr.log", "ab"),
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = self.web_port = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=self.QUIET_SECONDS)
            except queue.Empty:
                if self.port or self.web_port:
                    return
                continue
            if line is None:
                self.proc.wait(5)
                raise SystemExit(f"server {' '.join(argv[1:4])} exited with {self.proc.returncode}:\n"
                                 f"{self.stderr_text()[-2000:]}")
            match = re.search(r"(SMTP|Web)\s+listening on (?:http://)?127\.0\.0\.1:(\d+)", line)
            if match and match.group(1) == "SMTP":
                self.port = int(match.group(2))
            elif match:
                self.web_port = int(match.group(2))
            if "Stop with" in line and (self.port or self.web_port or not self.LISTENS):
                return
        self.proc.kill()
        raise SystemExit(f"server did not start within 60 s: {self.stderr_text()[-2000:]}")

    def _pump(self) -> None:
        for raw in self.proc.stdout:  # type: ignore[union-attr]
            line = raw.decode(errors="replace")
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stderr_text(self) -> str:
        return (self.cwd / "stderr.log").read_text(errors="replace")

    def problems(self) -> list[str]:
        """Lines of its stderr that report an error (the servers log at WARNING and up)."""
        return [line for line in self.stderr_text().splitlines()
                if re.search(r"\b(ERROR|CRITICAL)\b|^Traceback", line)]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 1e6

    def stop(self) -> None:
        """SIGTERM, and wait for it to drain and exit (SIGKILL after 15 s)."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            print(f"  (server pid {self.proc.pid} ignored SIGTERM for 15 s; killed)", flush=True)
            self.proc.kill()
            self.proc.wait(5)


class Fleet:
    """Every server this run started, each in its own fresh directory; stopped on the way out."""

    def __init__(self, work: Path) -> None:
        self.work, self.servers = work, []  # type: ignore[var-annotated]

    def directory(self, name: str) -> Path:
        path = self.work / name
        path.mkdir()
        return path

    def start(self, argv: list[str], cwd: Path) -> Server:
        server = Server(argv, cwd)
        self.servers.append(server)
        return server

    def deskbell(self, role: str, cwd: Path) -> Server:
        return self.start([sys.executable, "-m", "bot", role, "--config", str(cwd / "deskbell.yaml")], cwd)

    def stop(self, server: Server, name: str) -> None:
        server.stop()
        problems = server.problems()
        if problems:
            print(f"  note: {name} logged {len(problems)} error line(s), first: {problems[0][:300]}",
                  flush=True)

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


def write_config(directory: Path, slack: FakeSlack, relay: RelaySink, *,
                 database_url: str | None = None, max_sessions_per_client: int = 20) -> Path:
    """A deskbell config for one server: its own SQLite file (or ``database_url``), everything
    else on loopback."""
    config = {
        "database": {"url": database_url or f"sqlite+aiosqlite:///{directory / 'deskbell.db'}"},
        "smtp_in": {"listen": "127.0.0.1:0", "domains": [DOMAIN],
                    "max_sessions_per_client": max_sessions_per_client},
        "web": {"listen": "127.0.0.1:0"},
        "email_out": {"host": "127.0.0.1", "port": relay.port, "from_address": f"support@{DOMAIN}",
                      "reply_domain": DOMAIN, "ack_rate_limit_per_domain_per_hour": 0,
                      "ack_rate_limit_total_per_hour": 0},
        "slack": {"bot_token": slack.token, "api_url": slack.url},
        "log": {"level": "WARNING"},
    }
    path = directory / "deskbell.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ----- measurements --------------------------------------------------------------------------


async def send_all(port: int, mails: list[tuple[str, bytes]], *, clients: int) -> None:
    """Deliver ``mails`` over ``clients`` connections in parallel, each reused for its share."""
    async def client(batch: list[tuple[str, bytes]]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        for sender, raw in batch:
            await smtp.sendmail(sender, [f"help@{DOMAIN}"], raw)
        await smtp.quit()

    await asyncio.gather(*(client(mails[c::clients]) for c in range(clients) if mails[c::clients]))


async def throughput(port: int, *, clients: int, total: int, tag: str, warm_up: int = 0,
                     repeat: int = 1) -> float:
    """Messages per second until the last 250, with ``clients`` connections in parallel; the
    best of ``repeat`` timed runs, after ``warm_up`` untimed messages."""
    if warm_up:
        await send_all(port, [message(n, f"warm{tag}") for n in range(warm_up)], clients=clients)
    best = 0.0
    for run in range(repeat):
        mails = [message(n, f"{tag}{run}") for n in range(total)]
        start = time.perf_counter()
        await send_all(port, mails, clients=clients)
        best = max(best, total / (time.perf_counter() - start))
    return best


@dataclass
class EndToEnd:
    sent: int
    accepted_seconds: float  # first send → last 250
    committed: int  # tickets committed when the wait ended
    committed_seconds: float | None  # first send → last ticket committed (None: never)

    @property
    def rate(self) -> float | None:
        return self.sent / self.committed_seconds if self.committed_seconds else None

    @property
    def accept_rate(self) -> float:
        return self.sent / self.accepted_seconds


async def end_to_end(server: Server, db: Path, *, clients: int, total: int, tag: str) -> EndToEnd:
    """Send ``total`` new-ticket mails; wait until that many tickets beyond those already
    stored are committed. A thread polls ``count(*)`` of the tickets table every 20 ms (rowids
    only grow, so counting past the highest id before the first send counts exactly the new
    ones, without rescanning the history each time)."""
    mails = [message(n, tag) for n in range(total)]
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        baseline = conn.execute("SELECT coalesce(max(id), 0) FROM tickets").fetchone()[0]
    timeout = 120 + 0.2 * total
    seen: dict[str, Any] = {"count": 0, "at": None}
    stop = threading.Event()

    def poll() -> None:
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("PRAGMA journal_mode=WAL")
        reader.execute("PRAGMA query_only=1")
        try:
            while not stop.is_set():
                count = reader.execute("SELECT count(*) FROM tickets WHERE id > ?", (baseline,)).fetchone()[0]
                seen["count"] = count
                if count >= total:
                    seen["at"] = time.perf_counter()
                    return
                if not server.alive:
                    return
                stop.wait(0.02)
        finally:
            reader.close()

    poller = threading.Thread(target=poll, daemon=True)
    start = time.perf_counter()
    poller.start()
    await send_all(server.port, mails, clients=clients)
    accepted = time.perf_counter() - start
    await asyncio.to_thread(poller.join, max(0.0, start + timeout - time.perf_counter()))
    stop.set()
    await asyncio.to_thread(poller.join)
    at = seen["at"]
    return EndToEnd(sent=total, accepted_seconds=accepted, committed=seen["count"],
                    committed_seconds=None if at is None else at - start)



def cards_by_subject(slack: FakeSlack, tag: str) -> dict[int, float]:
    """n → when the Slack card of the mail with subject "{tag} n" arrived."""
    found: dict[int, float] = {}
    pattern = re.compile(rf"\b{re.escape(tag)} (\d+)\b")
    for call in slack.cards():
        match = pattern.search(json.dumps(call.args.get("blocks", [])) + call.args.get("text", ""))
        if match:
            found.setdefault(int(match.group(1)), call.at)
    return found


async def wait_for_cards(slack: FakeSlack, tag: str, count: int, timeout: float) -> float:
    """Seconds until ``count`` cards of ``tag`` were posted (or the timeout passed)."""
    start = time.perf_counter()
    while len(cards_by_subject(slack, tag)) < count and time.perf_counter() - start < timeout:
        await asyncio.sleep(0.2)
    return time.perf_counter() - start


async def wait_quiet(slack: FakeSlack, relay: RelaySink, *, quiet: float = 1.0, timeout: float = 120) -> float:
    """Seconds until neither Slack nor the relay has been sent anything for ``quiet`` seconds."""
    start = last_change = time.perf_counter()
    seen = -1
    while time.perf_counter() - start < timeout:
        now_seen = len(slack.calls) + len(relay.sink.received)
        if now_seen != seen:
            seen, last_change = now_seen, time.perf_counter()
        elif time.perf_counter() - last_change >= quiet:
            break
        await asyncio.sleep(0.1)
    return last_change - start


async def latency(port: int, slack: FakeSlack, *, rate: float, seconds: float,
                  server: Server) -> tuple[list[float], int, float]:
    """End of DATA → chat.postMessage received, at a steady rate, one connection per message.
    Returns the latencies in ms, how many were sent, and the peak RSS seen meanwhile."""
    sent_at: dict[int, float] = {}
    count = int(rate * seconds)
    peak_rss = 0.0

    async def one(n: int) -> None:
        sender, raw = message(n, "steady")
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        await smtp.ehlo()
        await smtp.mail(sender)
        await smtp.rcpt(f"help@{DOMAIN}")
        # aiosmtplib writes the whole message and the final dot before awaiting the reply;
        # FakeSlack stamps calls with time.monotonic(), so this does too.
        sent_at[n] = time.monotonic()
        await smtp.data(raw)
        await smtp.quit()

    tasks = []
    start = time.perf_counter()
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(n)))
        if n % 20 == 0:
            peak_rss = max(peak_rss, server.rss_mb)
    await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 30
    posted: dict[int, float] = {}
    while time.perf_counter() < deadline:
        posted = cards_by_subject(slack, "steady")
        peak_rss = max(peak_rss, server.rss_mb)
        if len(posted) >= count:
            break
        await asyncio.sleep(0.1)
    return [(posted[n] - sent_at[n]) * 1000 for n in sent_at if n in posted], count, peak_rss


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# ----- history for the prefilled database ----------------------------------------------------

SUBJECTS = ["Internet drops every evening", "Invoice question", "Cannot log in to the portal",
            "Router replacement", "Change of address", "Slow connection since Monday",
            "Refund for the outage", "Email not arriving", "Upgrade my plan", "Cancel contract"]
STATUSES = ["closed"] * 85 + ["resolved"] * 5 + ["waiting"] * 3 + ["open"] * 3 + ["on_hold"] * 2 + ["new"] * 2
TOKEN_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # as bot.core.threader's reply tokens


def prefill(config_path: Path, db: Path, *, tickets: int, say: Callable[[str], None]) -> float:
    """Write ``tickets`` tickets of history, with ~tickets/4 contacts, one inbound message and
    its raw mail per ticket, 3 events and 2 delivered outbox rows per ticket, into a database
    already at the schema head. Only the columns the models require (and a few that history
    always has) are written: a new NOT NULL column makes this fail, as it should."""
    from sqlalchemy import create_engine, event, insert, select

    from bot.config import load_settings
    from bot.store import models as m

    begun = time.perf_counter()
    settings = load_settings(config_path)
    engine = create_engine(f"sqlite:///{db}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=OFF")  # a crash here only loses the benchmark's data
        cur.execute("PRAGMA cache_size=-262144")
        cur.close()

    contacts_t, tickets_t, raw_t = m.Contact.__table__, m.Ticket.__table__, m.RawMessage.__table__
    messages_t, events_t, outbox_t = m.Message.__table__, m.Event.__table__, m.OutboxItem.__table__
    groups_t = m.HandlerGroup.__table__
    rng = random.Random(20261203)
    now = datetime.now(timezone.utc)
    span = timedelta(days=730)
    n_contacts = max(1, tickets // 4)
    batch = 10_000
    rows_written = 0

    with engine.begin() as conn:
        # The group mail falls into; `deskbell run` would create the same row at start-up.
        name = settings.fallback_group_name
        group_id = conn.scalar(select(groups_t.c.id).where(groups_t.c.name == name))
        if group_id is None:
            group = settings.group_by_name(name)
            group_id = conn.execute(insert(groups_t).values(
                name=name, slack_channel=group.slack_channel if group else "")).inserted_primary_key[0]
        for first in range(1, n_contacts + 1, 50_000):
            conn.execute(insert(contacts_t), [
                {"id": c, "email": f"prefill.customer{c}@example.org", "name": f"Customer {c}",
                 "created_at": now - span + span * (c / n_contacts) * 0.9}
                for c in range(first, min(n_contacts, first + 49_999) + 1)])
        rows_written += n_contacts
    say(f"  prefill: {n_contacts:,} contacts ({time.perf_counter() - begun:.1f} s)")

    tokens: set[str] = set()

    def token() -> str:
        while True:
            t = "".join(rng.choice(TOKEN_ALPHABET) for _ in range(12))
            if t not in tokens:
                tokens.add(t)
                return t

    per_transaction = 50_000
    for tx_first in range(1, tickets + 1, per_transaction):
        tx_last = min(tickets, tx_first + per_transaction - 1)
        with engine.begin() as conn:
            for first in range(tx_first, tx_last + 1, batch):
                last = min(tx_last, first + batch - 1)
                raws, ts, msgs, evs, outs = [], [], [], [], []
                for i in range(first, last + 1):
                    created = now - span + span * (i / (tickets + 1))
                    contact = rng.randint(1, n_contacts)
                    address = f"prefill.customer{contact}@example.org"
                    subject = rng.choice(SUBJECTS)
                    status = rng.choice(STATUSES)
                    mid = f"prefill.{i}@example.net"
                    body = BODY if i % 3 == 0 else BODY[:160]
                    data = (f"Return-Path: <{address}>\r\nFrom: Customer {contact} <{address}>\r\n"
                            f"To: help@{DOMAIN}\r\nSubject: {subject}\r\n"
                            f"Date: {format_datetime(created)}\r\nMessage-ID: <{mid}>\r\n"
                            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                            f"{body}").replace("\n", "\r\n").replace("\r\r", "\r").encode()
                    done = created + timedelta(hours=rng.randint(1, 72))
                    raws.append({"id": i, "channel": "email", "source_id": mid, "door": "smtp",
                                 "envelope_from": address, "envelope_to": [f"help@{DOMAIN}"],
                                 "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                 "data": data, "received_at": created,
                                 # spool bookkeeping, where the table has it: long since ingested
                                 "message_key": mid, "state": "done", "sender_key": address,
                                 "processed_at": created})
                    ts.append({"id": i, "subject": subject, "status": status, "priority": 3,
                               "group_id": group_id, "requester_id": contact, "channel": "email",
                               "reply_token": token(), "via_email": True,
                               "unread": status == "new", "weight": 0,
                               "created_at": created, "updated_at": done,
                               "last_customer_message_at": created,
                               "resolved_at": done if status in ("resolved", "closed") else None,
                               "closed_at": done if status == "closed" else None})
                    msgs.append({"id": i, "ticket_id": i, "kind": "inbound", "channel": "email",
                                 "contact_id": contact, "sender": f"Customer {contact} <{address}>",
                                 "subject": subject, "body": body, "message_id": mid,
                                 "raw_message_id": i, "created_at": created})
                    actor = f"customer:{address}"
                    evs.append({"ticket_id": i, "kind": "created", "actor": actor, "created_at": created,
                                "data": {"channel": "email", "group": name, "door": "smtp"}})
                    evs.append({"ticket_id": i, "kind": "acknowledged", "actor": "system",
                                "created_at": created, "data": {"to": address}})
                    evs.append({"ticket_id": i, "kind": "status", "actor": "system", "created_at": done,
                                "data": {"from": "new", "to": status if status != "new" else "open"}})
                    for channel, kind, key in (("slack", "ticket.card", f"slack:t{i}"),
                                               ("email", "customer.message", f"email:t{i}")):
                        outs.append({"channel": channel, "kind": kind, "ticket_id": i,
                                     "ordering_key": key, "payload": {}, "status": "sent",
                                     "attempts": 1, "due_at": created, "created_at": created,
                                     "sent_at": created + timedelta(seconds=1)})
                conn.execute(insert(raw_t), raws)
                conn.execute(insert(tickets_t), ts)
                conn.execute(insert(messages_t), msgs)
                conn.execute(insert(events_t), evs)
                conn.execute(insert(outbox_t), outs)
                rows_written += len(raws) + len(ts) + len(msgs) + len(evs) + len(outs)
        say(f"  prefill: {tx_last:,}/{tickets:,} tickets with their messages, raw mail, events "
            f"and outbox rows ({time.perf_counter() - begun:.1f} s)")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    seconds = time.perf_counter() - begun
    say(f"  prefill: {rows_written:,} rows, {db.stat().st_size / 1e6:,.0f} MB, in {seconds:.1f} s")
    return seconds


# ----- the run -------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def command_line() -> str:
    return shlex.join(["python", "bench/ingest.py", *sys.argv[1:]])


async def main() -> None:
    class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        pass

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    parser.add_argument("--messages", type=int, default=1000,
                        help="messages per throughput and end-to-end run (8 clients share them)")
    parser.add_argument("--prefill", type=int, default=200_000,
                        help="tickets of history for the second end-to-end run; 0 skips that run")
    parser.add_argument("--rate", type=float, default=20.0, help="steady rate (msg/s) for the latency run")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the latency run")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs against each door-only server (the references and "
                             "deskbell smtp); the best counts")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directories (databases, configs, server logs)")
    args = parser.parse_args()
    if args.messages < CLIENTS:
        parser.error(f"--messages must be at least {CLIENTS}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    def say(text: str = "") -> None:
        print(text, flush=True)

    say(f"$ {command_line()}")
    say(f"Deskbell ingest benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}; {CLIENTS} SMTP clients, {args.messages} messages per run")

    work = Path(tempfile.mkdtemp(prefix="deskbell-bench-"))
    fleet = Fleet(work)
    slack = await FakeSlack().start()
    relay = await RelaySink().start()
    started = time.perf_counter()
    try:
        # 0. The ceilings.
        say(f"\nReference servers (aiosmtpd handlers), {CLIENTS} clients, messages/s until the last 250 "
            f"(best of {args.repeat}):")
        reference: dict[str, float] = {}
        for mode in ("discard", "parse", "persist"):
            where = fleet.directory(f"ref-{mode}")
            sink = fleet.start([sys.executable, "-c", REFERENCE_SINK, mode, str(where / "raw.db")], where)
            reference[mode] = await throughput(sink.port, clients=CLIENTS, total=args.messages,
                                               tag=mode, warm_up=WARM_UP, repeat=args.repeat)
            fleet.stop(sink, f"reference {mode}")
            say(f"  {mode:<8} {reference[mode]:8.1f}   ({reference[mode] / reference['discard']:.2f} of discard)")
        ceiling, persist = reference["discard"], reference["persist"]

        # 1. Door acceptance: the SMTP role alone.
        where = fleet.directory("door")
        write_config(where, slack, relay)
        door = fleet.deskbell("smtp", where)
        door_rate = await throughput(door.port, clients=CLIENTS, total=args.messages, tag="door",
                                     warm_up=WARM_UP, repeat=args.repeat)
        fleet.stop(door, "deskbell smtp")
        door_ratio = door_rate / ceiling
        say(f"\n1. Door acceptance, deskbell smtp: {door_rate:.1f} msg/s until the last 250 "
            f"(best of {args.repeat}); "
            f"null sink {ceiling:.1f}; ratio {door_ratio:.2f} (target ≥ {DOOR_TARGET:.2f}) "
            f"{verdict(door_ratio >= DOOR_TARGET)}")

        # 2. End to end on an empty database; 3. latency and memory on the same server.
        where = fleet.directory("run-empty")
        write_config(where, slack, relay)
        bot = fleet.deskbell("run", where)
        await asyncio.sleep(2)
        idle_rss = bot.rss_mb
        empty = await end_to_end(bot, where / "deskbell.db", clients=CLIENTS, total=args.messages, tag="e2e")
        empty_ratio = empty.rate / persist if empty.rate else None
        say(f"\n2. End to end, deskbell run on an empty database: last 250 after "
            f"{empty.accepted_seconds:.2f} s ({empty.accept_rate:.1f} msg/s), "
            + (f"last ticket committed after {empty.committed_seconds:.2f} s: {empty.rate:.1f} msg/s; "
               f"persist reference {persist:.1f}; ratio {empty_ratio:.2f} (target ≥ {E2E_TARGET:.2f}) "
               f"{verdict(empty_ratio >= E2E_TARGET)}" if empty.rate and empty_ratio is not None else
               f"only {empty.committed}/{empty.sent} tickets committed before giving up"))
        drain = await wait_for_cards(slack, "e2e", empty.sent, timeout=120)
        drain += await wait_quiet(slack, relay)
        say(f"   Their Slack cards and acknowledgements were all out {drain:.1f} s after the last "
            f"ticket was seen; then the latency run starts on the idle server.")
        slack.calls.clear()
        lat, lat_count, loaded_rss = await latency(bot.port, slack, rate=args.rate, seconds=args.seconds,
                                                   server=bot)
        fleet.stop(bot, "deskbell run (empty database)")
        p99 = pct(lat, 99) if lat else None
        say(f"\n3. End of DATA → Slack card at {args.rate:g} msg/s for {args.seconds:g} s "
            f"({len(lat)}/{lat_count} posted): "
            + (f"p50 {pct(lat, 50):.1f} ms, p99 {p99:.1f} ms, max {max(lat):.1f} ms, "
               f"mean {statistics.mean(lat):.1f} ms (target p99 < {P99_TARGET_MS:.0f} ms) "
               f"{verdict(p99 < P99_TARGET_MS and len(lat) == lat_count)}" if lat and p99 is not None
               else "no card arrived"))
        say(f"   Resident memory of deskbell run: idle {idle_rss:.0f} MB (target < {IDLE_RSS_TARGET_MB:.0f}), "
            f"under that load {loaded_rss:.0f} MB (target < {LOADED_RSS_TARGET_MB:.0f})")

        # 4. End to end with history.
        history: EndToEnd | None = None
        history_ratio: float | None = None
        prefill_seconds = 0.0
        if args.prefill > 0:
            where = fleet.directory("run-history")
            config = write_config(where, slack, relay)
            say(f"\n4. Prefilling {args.prefill:,} tickets of history:")
            upgrade = subprocess.run([sys.executable, "-m", "bot", "db", "upgrade", "--config", str(config)],
                                     cwd=where, capture_output=True, text=True)
            if upgrade.returncode:
                raise SystemExit(f"deskbell db upgrade failed:\n{upgrade.stderr[-2000:]}")
            say(f"  {upgrade.stdout.strip()}".replace(str(where), "…"))
            prefill_seconds = await asyncio.to_thread(prefill, config, where / "deskbell.db",
                                                      tickets=args.prefill, say=say)
            bot = fleet.deskbell("run", where)
            await asyncio.sleep(2)
            history = await end_to_end(bot, where / "deskbell.db", clients=CLIENTS, total=args.messages,
                                       tag="history")
            fleet.stop(bot, "deskbell run (prefilled database)")
            if history.rate and empty.rate:
                history_ratio = history.rate / empty.rate
            say(f"   End to end, deskbell run with {args.prefill:,} tickets stored: last 250 after "
                f"{history.accepted_seconds:.2f} s ({history.accept_rate:.1f} msg/s), "
                + (f"last ticket committed after {history.committed_seconds:.2f} s: "
                   f"{history.rate:.1f} msg/s" if history.rate else
                   f"only {history.committed}/{history.sent} tickets committed before giving up")
                + (f"; empty-database rate {empty.rate:.1f}; ratio {history_ratio:.2f} "
                   f"(target ≥ {HISTORY_TARGET:.2f}) {verdict(history_ratio >= HISTORY_TARGET)}"
                   if history_ratio is not None else ""))
    finally:
        fleet.stop_all()
        await slack.stop()
        await relay.stop()
        if args.keep:
            say(f"\nKept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    # Summary, for bench/RESULTS.md.
    def rate_cell(result: EndToEnd) -> str:
        return f"{result.rate:.1f}" if result.rate else f"{result.committed}/{result.sent} in time"

    n = args.messages
    rows = [
        (f"door acceptance: `deskbell smtp`, {CLIENTS} clients (msg/s until the last 250)", f"{door_rate:.1f}",
         f"null sink {ceiling:.1f} (ratio {door_ratio:.2f}); target ≥ {DOOR_TARGET:.2f}",
         verdict(door_ratio >= DOOR_TARGET)),
        (f"reference: parse only, {CLIENTS} clients", f"{reference['parse']:.1f}",
         f"ratio {reference['parse'] / ceiling:.2f} of the null sink", "—"),
        (f"reference: parse + one SQLite commit of the raw bytes (persist), {CLIENTS} clients",
         f"{persist:.1f}", f"ratio {persist / ceiling:.2f} of the null sink", "—"),
        (f"end to end, empty database: {n} mails → tickets committed (msg/s)", rate_cell(empty),
         f"persist {persist:.1f}" + (f" (ratio {empty_ratio:.2f})" if empty_ratio is not None else "")
         + f"; target ≥ {E2E_TARGET:.2f}",
         verdict(empty_ratio is not None and empty_ratio >= E2E_TARGET)),
    ]
    if history is not None:
        rows.append((f"end to end, {args.prefill:,} tickets already stored (msg/s)", rate_cell(history),
                     (f"empty database {empty.rate:.1f}" if empty.rate else "empty database —")
                     + (f" (ratio {history_ratio:.2f})" if history_ratio is not None else "")
                     + f"; target ≥ {HISTORY_TARGET:.2f}",
                     verdict(history_ratio is not None and history_ratio >= HISTORY_TARGET)))
    else:
        rows.append(("end to end, tickets already stored", "skipped (--prefill 0)", "—", "—"))
    rows += [
        (f"end of DATA → Slack card, {args.rate:g} msg/s for {args.seconds:g} s",
         f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms" + (
             f" ({len(lat)}/{lat_count} posted)" if len(lat) < lat_count else "") if lat else "no card",
         f"target p99 < {P99_TARGET_MS:.0f} ms",
         verdict(bool(lat) and pct(lat, 99) < P99_TARGET_MS and len(lat) == lat_count)),
        ("resident memory, idle", f"{idle_rss:.0f} MB", f"target < {IDLE_RSS_TARGET_MB:.0f} MB",
         verdict(idle_rss < IDLE_RSS_TARGET_MB)),
        (f"resident memory, under the {args.rate:g} msg/s load", f"{loaded_rss:.0f} MB",
         f"target < {LOADED_RSS_TARGET_MB:.0f} MB", verdict(loaded_rss < LOADED_RSS_TARGET_MB)),
    ]
    say(f"\nSummary — `{command_line()}`, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
        f"door-only rates best of {args.repeat}"
        + (f"; prefill took {prefill_seconds:.0f} s" if history is not None else "")
        + f"; whole run {time.perf_counter() - started:.0f} s\n")
    say("| measure | Deskbell | ceiling / target | verdict |")
    say("| --- | --- | --- | --- |")
    for row in rows:
        say("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    asyncio.run(main())
