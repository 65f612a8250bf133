"""Benchmark: the customer's signed ticket page (``GET /t/<token>``), p99 latency at a steady
rate beside the same server answering its cheapest static route, measured in the same run.

Not a test. Run from the project root:

    python bench/customer_page.py [--rate 50] [--seconds 20] [--postgres] [--profile DIR] [--keep]

Target (issue 22's acceptance): at 50 requests a second, the page's p99 is at most 2× the p99
of the same ASGI server answering a static page, and under 50 ms.

The server is ``deskbell run`` (``python -m bot run``: the roles smtp, imap, web and worker in
one process, as production on SQLite runs it; no IMAP accounts) on loopback port 0 in a fresh
temporary directory, on a fresh SQLite database — and with ``--postgres`` a second one on a
fresh database of a throw-away PostgreSQL cluster (``fsync=off``; ``tests.pg.Cluster``, or the
server named by ``DESKBELL_TEST_POSTGRES``). A subprocess rather than in-process: it is how it
runs in production, and the load generator's CPU stays out of the server's event loop. Slack is
left unconfigured (cards wait in the outbox, as the README says); mail out goes to a relay sink
in this script. ``customer_page.requests_per_minute`` is set to 1,000,000: the page's
per-address limiter (``webguard.PerClientLimit``) would otherwise answer 429 to all but the
first 30 requests a minute from the load generator's one address. The limiter still runs on
every request (its cost is in the numbers); it just never refuses.

The ticket is seeded the way it grows in production: a customer's mail through the SMTP door
(the acknowledgement, caught by the relay sink, carries the signed link the bench then opens,
as the customer would), then staff actions through ``bot.core.actions`` in this process on the
same database (Alice assigns it to herself; replies from Alice and Bob, two internal notes) and
the customer's answers through the SMTP door again, each a reply to the acknowledgement (its
Message-ID in In-Reply-To, ``Re: … [#N]``, with a quoted line). The page then shows 10 public
entries (5 from the customer, 5 from staff); the notes must not appear, which is checked once.

The static answer, the ceiling, is ``GET /healthz``: the cheapest route the web app has (a
constant JSON ``{"status": "ok"}`` through the same uvicorn, the same ``ErrorShield`` and
``BodyLimit`` middleware and the same Starlette router as the page; ``/readyz`` pings the
database and ``/metrics`` counts rows, so neither is static).

The load generator is this script again (hidden ``--child load``), one process, an aiohttp
client whose connections are kept alive. Open loop: each request has its scheduled send time
on a fixed timetable of ``--rate`` a second, is sent then whatever earlier answers are doing,
and its latency is measured from that scheduled time to the end of its answer's body, so a
stalled server is not hidden by the client waiting for it (coordinated omission). The two
answers are measured in alternating blocks of 5 s (static, page, page, static, …; each
``--seconds`` in all), so that whatever else the machine is doing falls on both alike; each
block's stragglers are awaited before the next one starts. A second of each, unrecorded, warms
up first (connections, the compiled template, SQLAlchemy's statement cache).

Every answer is checked: status 200, and the page's body holds the ticket's subject (the
static one its JSON); anything else, a timeout (10 s) or a connection error counts as an
error. Reported: p50, p90, p99 and max per answer; the ratio of the p99s and the verdicts; CPU
time of the server process (and of its main thread, the event loop) per answer, from psutil
over the blocks; the most the load generator sent a request behind its timetable (a large
figure would mean the client, not the server, was late: those milliseconds are in the
latencies too), and on stderr its CPU per answer. The client spins the last 1.5 ms before
each send time instead of sleeping them (``SPIN_SECONDS``): asyncio's timers wake up to a
millisecond late, which would otherwise be in every latency, the static page's most of all.

``--profile DIR`` adds, after the timed runs, another ``--seconds`` of each answer alone at the
same rate under py-spy (``py-spy record --format raw --threads``, collapsed stacks into
``DIR/<database>-page.txt`` and ``DIR/<database>-static.txt``). They never overlap the timed
blocks: sampling slows the server.

Progress goes to stderr; the Markdown tables for bench/RESULTS.md to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import queue
import re
import shlex
import shutil
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOMAIN = "support.example.com"
PUBLIC = "https://desk.example.com"  # web.public_url: what the links in mail name
CUSTOMER = "Ann Customer <ann.customer@example.net>"
SUBJECT = "Router down since Monday, no internet in the flat"
LINK_SECRET = "bench-page-link-secret-0123456789abcdef"
# High enough that the per-address limiter never refuses the load generator (see the doc).
REQUESTS_PER_MINUTE = 1_000_000
STATIC_PATH = "/healthz"
STATIC_BODY = b'{"status":"ok"}'
P99_TARGET_MS = 50.0
RATIO_TARGET = 2.0
BLOCK_SECONDS = 5.0
WARM_UP_SECONDS = 1.0
REQUEST_TIMEOUT = 10.0
# The event loop's timers wake up to a millisecond late (epoll's timeout is whole milliseconds,
# rounded up), which would add 0-1 ms of the client's own to every latency: the load generator
# sleeps until this long before a send time and yields to the loop (sleep(0)) for the rest.
# At 50 requests a second that spinning costs the client at most 7.5 % of a core.
SPIN_SECONDS = 0.0015

# The conversation the ticket gets, in order: who, and what they write. Notes stay internal.
ALICE = ("UBENCHALICE", "Alice Agent")
BOB = ("UBENCHBOB", "Bob Builder")
CONVERSATION: list[tuple[str, tuple[str, str] | None, str]] = [
    ("customer", None,
     ("Hello,\n\nour internet has been down since Monday morning. The router's power light is on, the "
      "DSL light blinks orange and never turns green. I restarted it twice and checked the cable to "
      "the wall socket. We both work from home, so this is urgent for us.\n\nCustomer number 4481-2207.\n"
      "\nThanks,\nAnn")),
    ("note", ALICE, "Line test shows sync drops every 40 s. Possibly the street cabinet, check the outage map."),
    ("reply", ALICE,
     ("Hi Ann,\n\nthank you for the details, and sorry for the trouble. Our line test shows the connection "
      "to your street cabinet dropping every 40 seconds. Could you plug the router directly into the first "
      "wall socket, without any extension cable or splitter, and tell us whether the DSL light changes?\n\n"
      "Best regards,\nAlice")),
    ("customer", None,
     ("Hi Alice,\n\nI plugged it straight into the first socket. The light still blinks orange, it went "
      "green for a few seconds once and then back to orange. Is there anything else I can try?\n\nAnn")),
    ("reply", ALICE,
     ("Hi Ann,\n\nthanks for trying. Please also do a factory reset (hold the reset button for 15 seconds "
      "with a paper clip while the router is on) and wait ten minutes. If it still does not sync, we will "
      "send a technician.\n\nAlice")),
    ("customer", None,
     ("Did the reset, waited 20 minutes. Same thing: orange blinking. The neighbours say theirs works fine, "
      "so it must be our line. When can a technician come? We are home Thursday and Friday.\n\nAnn")),
    ("note", BOB, "Booked technician slot Thu 08:00-12:00, job 77120. Tell the customer."),
    ("reply", BOB,
     ("Hello Ann,\n\nI have booked a technician for Thursday between 8:00 and 12:00 (job 77120). They will "
      "call you about 30 minutes before arriving. Please make sure someone can let them into the basement "
      "where the building's connection box is.\n\nKind regards,\nBob")),
    ("customer", None,
     ("Thank you Bob. Thursday works. The basement key is with the caretaker, I will get it on Wednesday "
      "evening.\n\nAnn")),
    ("reply", BOB,
     ("Perfect, thank you. The technician will replace the connection in the box if the test there fails as "
      "well. You will get an email when the job is closed.\n\nBob")),
    ("customer", None,
     ("The technician was here this morning and replaced a corroded connector in the basement. The light is "
      "green and the internet works again. Could you check that the speed is back to what we pay for? It "
      "feels slower than before.\n\nAnn")),
    ("reply", ALICE,
     ("Hi Ann,\n\ngreat to hear it works again. Your line now syncs at 98 Mbit/s down and 38 up, which is "
      "within your 100/40 plan. If it feels slow over Wi-Fi, try the 5 GHz network (its name ends in -5G). "
      "I will leave this request open for a few days in case anything comes back.\n\nAlice")),
]
PUBLIC_ENTRIES = sum(1 for kind, _, _ in CONVERSATION if kind != "note")


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def command_line() -> str:
    return shlex.join(["python", "bench/customer_page.py", *sys.argv[1:]])


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def write_config(directory: Path, relay_port: int, database_url: str | None) -> Path:
    """deskbell.yaml for the server: its own database, everything on loopback, the page on."""
    config = {
        "database": {"url": database_url or f"sqlite+aiosqlite:///{directory / 'deskbell.db'}"},
        "smtp_in": {"listen": "127.0.0.1:0", "domains": [DOMAIN]},
        "web": {"listen": "127.0.0.1:0", "public_url": PUBLIC},
        "email_out": {"host": "127.0.0.1", "port": relay_port, "from_address": f"support@{DOMAIN}",
                      "reply_domain": DOMAIN, "from_name": "Example Support"},
        "handler_groups": [{"name": "support", "slack_channel": "#support",
                            "email_addresses": [f"help@{DOMAIN}"]}],
        "customer_page": {"link_secret": LINK_SECRET, "requests_per_minute": REQUESTS_PER_MINUTE},
        "log": {"level": "WARNING"},
    }
    path = directory / "deskbell.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ----- child: the load generator -------------------------------------------------------------


class Sampler:
    """CPU seconds of the server (process and main thread) and of this client at a moment."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.pid = pid

    def sample(self) -> dict[str, float]:
        times = self.proc.cpu_times()
        main = next((t for t in self.proc.threads() if t.id == self.pid), None)
        return {"server": times.user + times.system,
                "server_main": (main.user_time + main.system_time) if main else 0.0,
                "client": time.process_time(), "wall": time.perf_counter()}


class Target:
    """One answer being measured: its URL, what its body must hold, and what was seen."""

    def __init__(self, name: str, url: str, must_hold: bytes) -> None:
        self.name, self.url, self.must_hold = name, url, must_hold
        self.latencies: list[float] = []  # ms from the scheduled send time to the end of the body
        self.outcomes: Counter[str] = Counter()
        self.cpu = {"server": 0.0, "server_main": 0.0, "client": 0.0, "wall": 0.0}
        self.late = 0.0  # the most the client sent behind its timetable, seconds


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    base = f"http://127.0.0.1:{args.port}"
    targets = {"static": Target("static", base + STATIC_PATH, STATIC_BODY),
               "page": Target("page", base + args.page_path, html.escape(args.subject).encode())}
    chosen = [targets[args.only]] if args.only else [targets["static"], targets["page"]]
    sampler = Sampler(args.pid)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)

    async def one(session: aiohttp.ClientSession, target: Target, scheduled: float, record: bool) -> None:
        try:
            async with session.get(target.url) as response:
                body = await response.read()
                if response.status != 200:
                    outcome = str(response.status)
                elif target.must_hold not in body:
                    outcome = "200 without the expected content"
                else:
                    outcome = "ok"
        except Exception as exc:  # noqa: BLE001  # counted, never fatal: the summary reports it
            outcome = type(exc).__name__
        if record:
            target.latencies.append((time.perf_counter() - scheduled) * 1000)
            target.outcomes[outcome] += 1

    async def block(session: aiohttp.ClientSession, target: Target, seconds: float, record: bool) -> None:
        """``rate`` requests a second for ``seconds``, each sent on schedule whatever the answers do."""
        count = max(1, round(args.rate * seconds))
        before = sampler.sample()
        tasks = []
        start = time.perf_counter()
        for n in range(count):
            scheduled = start + n / args.rate
            delay = scheduled - time.perf_counter()
            if delay > SPIN_SECONDS:
                await asyncio.sleep(delay - SPIN_SECONDS)
            while time.perf_counter() < scheduled:  # the last moment spun: see SPIN_SECONDS
                await asyncio.sleep(0)
            if record:
                target.late = max(target.late, time.perf_counter() - scheduled)
            tasks.append(asyncio.create_task(one(session, target, scheduled, record)))
        await asyncio.gather(*tasks)
        if record:
            after = sampler.sample()
            for key in target.cpu:
                target.cpu[key] += after[key] - before[key]

    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for target in chosen:
            await block(session, target, WARM_UP_SECONDS, record=False)
        # Alternating blocks, the order flipped every pair (A B B A A B …): slow drift of the
        # machine's load lands on both answers alike.
        blocks = []
        left = args.seconds
        while left > 1e-9:
            blocks.append(min(BLOCK_SECONDS, left))
            left -= BLOCK_SECONDS
        for i, seconds in enumerate(blocks):
            for target in (chosen if i % 2 == 0 else chosen[::-1]):
                await block(session, target, seconds, record=True)
    return {t.name: {"latencies": t.latencies, "outcomes": dict(t.outcomes), "cpu": t.cpu, "late_ms": t.late * 1000}
            for t in chosen}


def run_load(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(drive(args))), flush=True)


# ----- the parent ----------------------------------------------------------------------------


class Server:
    """``deskbell run`` as a process; its SMTP and web ports are read from its start-up summary
    ("SMTP      listening on 127.0.0.1:N", "Web       listening on http://127.0.0.1:N", then
    "Stop with"). Its stdout keeps being read so it never blocks on a full pipe."""

    def __init__(self, name: str, config: Path, cwd: Path) -> None:
        self.name, self.cwd = name, cwd
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(config)],
                                     cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=open(cwd / "stderr.log", "ab"),  # noqa: SIM115  # the child keeps it
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.web_port = self.smtp_port = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                raise SystemExit(f"{name} exited with {self.proc.returncode}:\n{self.stderr_text()[-2000:]}")
            if match := re.search(r"Web\s+listening on http://127\.0\.0\.1:(\d+)", line):
                self.web_port = int(match.group(1))
            if match := re.search(r"SMTP\s+listening on 127\.0\.0\.1:(\d+)", line):
                self.smtp_port = int(match.group(1))
            if "Stop with" in line and self.web_port and self.smtp_port:
                return
        self.proc.kill()
        raise SystemExit(f"{name} did not start within 60 s: {self.stderr_text()[-2000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        for raw in self.proc.stdout:  # type: ignore[union-attr]
            self._lines.put(raw.decode(errors="replace"))
        self._lines.put(None)

    def stderr_text(self) -> str:
        return (self.cwd / "stderr.log").read_text(errors="replace")

    def problems(self) -> list[str]:
        return [line for line in self.stderr_text().splitlines()
                if re.search(r"\b(ERROR|CRITICAL)\b|^Traceback", line)]

    def stop(self) -> list[str]:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                say(f"  ({self.name} ignored SIGTERM for 15 s; killed)")
                self.proc.kill()
                self.proc.wait(5)
        return self.problems()


def send_mail(port: int, raw: bytes) -> None:
    """One customer mail through the SMTP door (blocking: called through ``asyncio.to_thread``)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mail.example.net")
        client.sendmail("ann.customer@example.net", [f"help@{DOMAIN}"], raw)


def customer_mail(text: str, *, number: int | None = None, answering: EmailMessage | None = None) -> bytes:
    """The customer's first mail, or (``answering`` our acknowledgement) a reply to it as a mail
    client writes one: ``Re:`` with the ticket's tag, In-Reply-To/References, a quoted line."""
    msg = EmailMessage()
    msg["From"], msg["To"] = CUSTOMER, f"help@{DOMAIN}"
    msg["Message-ID"] = make_msgid(domain="example.net")
    if answering is None:
        msg["Subject"] = SUBJECT
        msg.set_content(text)
    else:
        msg["Subject"] = f"Re: {SUBJECT} [#{number}]"
        msg["In-Reply-To"] = msg["References"] = answering["Message-ID"]
        quoted = "\n".join(f"> {line}" for line in answering.get_body(("plain",)).get_content().splitlines()[:3])
        msg.set_content(f"{text}\n\nOn Monday, Example Support wrote:\n{quoted}\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


async def wait_for(what: str, predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


async def seed(server: Server, relay: Any, config: Path) -> tuple[int, str]:
    """The ticket and its conversation (see the doc): its number and the page's path from the
    link in the acknowledgement."""
    from sqlalchemy import func, select

    from bot.app import Deskbell
    from bot.clock import Clock
    from bot.config import load_settings
    from bot.core import actions
    from bot.core.staff import Actor
    from bot.store import models as m

    first = len(relay.messages)
    await asyncio.to_thread(send_mail, server.smtp_port, customer_mail(CONVERSATION[0][2]))
    await wait_for("the acknowledgement", lambda: len(relay.messages) > first)
    ack = relay.messages[first]
    match = re.search(r"https?://\S+?(/t/[\w.-]+)", ack.get_body(("plain",)).get_content())
    if match is None:
        raise SystemExit("the acknowledgement carries no page link (is customer_page.link_secret read?)")
    path = match.group(1)
    number = int(path.removeprefix("/t/").split(".")[0])

    # Staff act from this process on the same database, as a second worker or the CLI would.
    staff_app = Deskbell(load_settings(config), clock=Clock())
    desk = staff_app.desk

    async def count(*where: Any) -> int:
        async with desk.db.reading() as s:
            return await s.scalar(select(func.count()).where(*where)) or 0

    try:
        alice = Actor(*ALICE)
        await actions.assign(desk, actor=alice, number=number, assignee=alice)
        customers = 1
        for kind, who, text in CONVERSATION[1:]:
            if kind == "customer":
                customers += 1
                await asyncio.to_thread(send_mail, server.smtp_port,
                                        customer_mail(text, number=number, answering=ack))

                async def on_the_ticket(wanted: int = customers) -> bool:
                    return await count(m.Message.ticket_id == number, m.Message.kind == "inbound") >= wanted

                # The next staff answer comes after this mail is on the ticket, as it would.
                await wait_for("the customer's mail on the ticket", on_the_ticket)
            elif kind == "reply":
                await actions.reply(desk, actor=Actor(*who), number=number, text=text)
            else:
                await actions.note(desk, actor=Actor(*who), number=number, text=text)

        async def mail_sent() -> bool:
            return await count(m.OutboxItem.channel == "email", m.OutboxItem.status.in_(("pending", "sending"))) == 0

        # On SQLite the server's dispatcher is not woken by another process's commits (it polls
        # every 5 s): wait until every mail has left, so the measurement finds an idle outbox.
        await wait_for("the staff replies to reach the relay", mail_sent)
    finally:
        await staff_app.db.dispose()
    return number, path


async def check_page(port: int, path: str) -> dict[str, Any]:
    """The page once, as the customer sees it: what it shows, and what it must not."""
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as answer:
        status, body = answer.status, await answer.read()
    text = body.decode(errors="replace")
    entries = text.count('<li class="message')
    notes = [t for kind, _, t in CONVERSATION if kind == "note"]
    problems = []
    if status != 200:
        problems.append(f"status {status}")
    if html.escape(SUBJECT) not in text:
        problems.append("the subject is missing")
    if entries != PUBLIC_ENTRIES:
        problems.append(f"{entries} conversation entries, expected {PUBLIC_ENTRIES}")
    if any(html.escape(n) in text for n in notes):
        problems.append("an internal note is shown")
    if problems:
        raise SystemExit(f"the ticket page is not as seeded: {'; '.join(problems)}")
    return {"entries": entries, "bytes": len(body)}


async def load(server: Server, args: argparse.Namespace, path: str, *, only: str | None = None,
               profile: Path | None = None) -> dict[str, Any]:
    """One measurement by a load-generator process of its own (optionally under py-spy)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "load", "--port", str(server.web_port),
            "--pid", str(server.pid), "--page-path", path, "--subject", SUBJECT,
            "--rate", str(args.rate), "--seconds", str(args.seconds)]
    if only:
        argv += ["--only", only]
    child = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    spy = None
    if profile is not None:
        # Starts sampling at once: the warm-up second is in the profile too.
        spy = await asyncio.create_subprocess_exec(
            "py-spy", "record", "--format", "raw", "--threads", "--rate", "250", "--pid", str(server.pid),
            "--duration", str(int(args.seconds + WARM_UP_SECONDS + 2)), "--output", str(profile),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await child.communicate()
    if spy is not None:
        await spy.wait()
    if child.returncode:
        raise SystemExit(f"the load against {server.name} failed (exit {child.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


def errors(result: dict[str, Any]) -> int:
    return sum(n for outcome, n in result["outcomes"].items() if outcome != "ok")


def per_answer(result: dict[str, Any], *, client: bool = False) -> tuple[float, float]:
    """Server CPU ms an answer, and that of its main thread (the event loop); with ``client``,
    the load generator's CPU ms an answer and the share of a core it kept busy."""
    n, cpu = max(1, len(result["latencies"])), result["cpu"]
    if client:
        return cpu["client"] * 1000 / n, cpu["client"] / max(cpu["wall"], 1e-9)
    return cpu["server"] * 1000 / n, cpu["server_main"] * 1000 / n


def describe(result: dict[str, Any]) -> str:
    lat = result["latencies"]
    cpu, main = per_answer(result)
    client, busy = per_answer(result, client=True)
    return (f"{len(lat)} answers: p50 {pct(lat, 50):.1f}, p90 {pct(lat, 90):.1f}, p99 {pct(lat, 99):.1f}, "
            f"max {max(lat):.1f} ms; {errors(result)} errors {dict(result['outcomes'])}; server CPU "
            f"{cpu:.2f} ms an answer (event loop {main:.2f}); load generator {client:.2f} ms an answer "
            f"({busy:.0%} of a core), at most {result['late_ms']:.1f} ms behind its timetable")


async def one_database(database: str, args: argparse.Namespace, work: Path, relay: Any,
                       pg_server: str | None, profile_dir: Path | None) -> dict[str, Any]:
    """Seed a ticket on a fresh ``deskbell run`` and measure its page against /healthz."""
    where = work / database
    where.mkdir()
    database_url = None
    if pg_server is not None:
        from tests.pg import psql, with_database

        name = f"page_{time.time_ns()}"
        psql(pg_server, f"CREATE DATABASE {name}")
        database_url = with_database(pg_server, name, driver="asyncpg")
    config = write_config(where, relay.port, database_url)
    if pg_server is not None:  # the app migrates SQLite by itself, PostgreSQL only when told
        upgrade = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "db", "upgrade", "--config", str(config), cwd=where,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await upgrade.communicate()
        if upgrade.returncode:
            raise SystemExit(f"deskbell db upgrade failed:\n{stderr.decode()[-2000:]}")
    server = Server(f"deskbell run ({database})", config, where)
    try:
        say(f"\n{database}: deskbell run, pid {server.pid}, web on 127.0.0.1:{server.web_port}")
        began = time.perf_counter()
        number, path = await seed(server, relay, config)
        page = await check_page(server.web_port, path)
        say(f"  seeded ticket #{number} in {time.perf_counter() - began:.1f} s: {page['entries']} public "
            f"entries (notes hidden), page {page['bytes']:,} bytes; link {path[:24]}…")
        await asyncio.sleep(1.0)  # the relay's last deliveries settled; the dispatcher asleep
        say(f"  measuring {args.seconds:g} s of each at {args.rate:g}/s in alternating blocks "
            f"of {BLOCK_SECONDS:g} s …")
        result = await load(server, args, path)
        say(f"  static {STATIC_PATH}: {describe(result['static'])}")
        say(f"  ticket page:  {describe(result['page'])}")
        if profile_dir is not None:
            for only in ("page", "static"):
                out = profile_dir / f"{database}-{only}.txt"
                profiled = await load(server, args, path, only=only, profile=out)
                say(f"  profiled {only} alone (not for the record): {describe(profiled[only])}; stacks in {out}")
    finally:
        problems = server.stop()
    if problems:
        say(f"  note: the server logged {len(problems)} error line(s), first: {problems[0][:300]}")
    return {"database": database, "page": page, "number": number, "result": result, "server_errors": len(problems)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second (default 50)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="timed seconds of each answer, in blocks of 5 s (default 20)")
    parser.add_argument("--postgres", action="store_true",
                        help="also measure on PostgreSQL (a throw-away cluster, or DESKBELL_TEST_POSTGRES)")
    parser.add_argument("--profile", metavar="DIR",
                        help="afterwards, profile each answer alone with py-spy into DIR (not for the record)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (databases, logs)")
    # Internal: the load generator (see the module doc).
    parser.add_argument("--child", choices=("load",), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--page-path", help=argparse.SUPPRESS)
    parser.add_argument("--subject", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("page", "static"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "load":
        run_load(args)
        return
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    asyncio.run(parent(args))


async def parent(args: argparse.Namespace) -> None:
    import jinja2
    import sqlalchemy
    import starlette
    import uvicorn

    from tests.fakes import RelaySink  # the relay the tests use: a real aiosmtpd server

    started = time.perf_counter()
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    versions = (f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, uvicorn {uvicorn.__version__} "
                f"(h11), Starlette {starlette.__version__}, Jinja2 {jinja2.__version__}, "
                f"SQLAlchemy {sqlalchemy.__version__}")
    say(f"$ {command_line()}")
    say(f"Deskbell customer page benchmark — {os.cpu_count()} CPUs, {versions}")
    work = Path(tempfile.mkdtemp(prefix="deskbell-page-bench-"))
    relay = await RelaySink().start()
    cluster = None
    runs = []
    try:
        runs.append(await one_database("sqlite", args, work, relay, None, profile_dir))
        if args.postgres:
            from tests.pg import Cluster, psql

            pg_server = os.environ.get("DESKBELL_TEST_POSTGRES")
            if not pg_server:
                cluster = Cluster()
                pg_server = cluster.start()
            version = psql(pg_server, "SHOW server_version").strip().split()[0]
            versions += f", PostgreSQL {version} (fsync=off)"
            runs.append(await one_database("postgresql", args, work, relay, pg_server, profile_dir))
    finally:
        await relay.stop()
        if cluster is not None:
            cluster.stop()
        if args.keep:
            say(f"\nKept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(report(runs, args, versions, time.perf_counter() - started), flush=True)


def report(runs: list[dict[str, Any]], args: argparse.Namespace, versions: str, took: float) -> str:
    lines = [
        (f"{os.cpu_count()} CPUs; {versions}. `{command_line()}`: {args.seconds:g} s of each answer at "
         f"{args.rate:g} req/s, open loop, in alternating {BLOCK_SECONDS:g} s blocks; whole run {took:.0f} s."),
        "",
        ("| database | answer | answers | p50 ms | p90 ms | p99 ms | max ms | errors "
         "| server CPU ms an answer (event loop) | client late, max ms |"),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        page = run["page"]
        labels = {"static": f"static: `GET {STATIC_PATH}` ({len(STATIC_BODY)} B)",
                  "page": f"ticket page: `GET /t/<token>` ({page['entries']} entries, {page['bytes'] / 1024:.1f} kB)"}
        for name, label in labels.items():
            r = run["result"][name]
            lat = r["latencies"]
            cpu, main = per_answer(r)
            lines.append(f"| {run['database']} | {label} | {len(lat):,} | {pct(lat, 50):.1f} | {pct(lat, 90):.1f} "
                         f"| {pct(lat, 99):.1f} | {max(lat):.1f} | {errors(r)} | {cpu:.2f} ({main:.2f}) "
                         f"| {r['late_ms']:.1f} |")
    lines += [
        "",
        f"| database | page p99 / static p99 | target ≤ {RATIO_TARGET:g}× | page p99 | target < {P99_TARGET_MS:g} ms |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for run in runs:
        page_p99 = pct(run["result"]["page"]["latencies"], 99)
        static_p99 = pct(run["result"]["static"]["latencies"], 99)
        ratio = page_p99 / static_p99
        lines.append(f"| {run['database']} | {page_p99:.1f} / {static_p99:.1f} ms = {ratio:.2f}× | "
                     f"{verdict(ratio <= RATIO_TARGET)} | {page_p99:.1f} ms | {verdict(page_p99 < P99_TARGET_MS)} |")
    logged = sum(run["server_errors"] for run in runs)
    failed = sum(errors(run["result"][name]) for run in runs for name in ("static", "page"))
    lines += ["", (f"Checks: {failed} answers not 200 or without the subject (the static one: its JSON); "
                   f"{logged} error lines in the server's log.")]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


if __name__ == "__main__":
    main()
