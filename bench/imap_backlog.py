"""Benchmark: the IMAP door draining a backlog, beside a bare aioimaplib reader in the same run.

Not a test. Run from the project root:

    python bench/imap_backlog.py [--messages 5000] [--small 500] [--quick]

It starts one throw-away Dovecot (``tests/imapserver.py``, loopback, plain IMAP, maildir with
``mail_fsync = never``) and makes a fresh user for every measurement, each seeded just before
its run with the same mails (APPEND over the stdlib imaplib on four connections, then
``sync``; the time is printed and not counted). Fresh users and identical bytes mean no run
reads a mailbox another run has already read or moved; Dovecot's own caches are per server and
the files of every user are equally fresh in the page cache. The mails are built with the
stdlib ``email`` package from a seeded random generator, so every run has the same mix: about
60 % plain text of 2–8 kB, 25 % text + HTML of 10–50 kB, 15 % with a base64 attachment, 50–200
kB in all; each has its own sender (From), Subject, Message-ID and Date. The ``--small`` run
gets the first ``--small`` of them.

Each measurement runs in a child process (this script with a hidden ``--child``), which
prints its peak RSS (``VmHWM``, see ``peak_rss_kib``) with its result:

  1. ceiling: ``aioimaplib.IMAP4`` alone logs in, SELECTs INBOX, ``UID SEARCH ALL``, then
     ``UID FETCH <uid> (BODY.PEEK[])`` one message at a time, discarding the bytes;
  2. the door: ``AccountPoller.drain()`` on an ``ImapSession`` it logged in with (after
     ``_learn_folders`` and creating ``Deskbell/Processed``), spooling through a
     ``SpoolWriter`` into a fresh SQLite database at the schema head (WAL, synchronous=FULL,
     as deskbell runs it): every message committed to the spool, then moved on the server, a
     batch at a time. Afterwards the spool must hold exactly N queued rows, INBOX must be empty
     and the processed folder hold N. Timed: the ``drain()`` call; the ceiling's timed part is
     the same (search and fetches, login and SELECT left out). Target ratio >= 0.5;
  3. until the last is a ticket: the door as in 2 with the intake worker (``IntakeWorker.run``)
     beside it on the same event loop, woken by the spool's commits as in ``deskbell run``;
     seconds from the start of ``drain()`` until the spool is empty (checked every 50 ms once
     the drain has returned). Every message must have become a ticket, none held;
  4. memory: the door of 2 for ``--small`` and for ``--messages`` messages, each in its own
     process; target: the peak RSS at ``--messages`` within 10 % of the peak at ``--small``.

Progress goes to stderr; the summary block to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import resource
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOMAIN = "support.example.com"
PROCESSED = "Deskbell/Processed"
SEED = 20260507
SEED_CONNECTIONS = 4
PROGRESS_SECONDS = 5.0
RATIO_TARGET = 0.5
RSS_GROWTH_TARGET = 0.10


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def command_line() -> str:
    return shlex.join(["python", "bench/imap_backlog.py", *sys.argv[1:]])


# ----- the mail ------------------------------------------------------------------------------

FIRST = ["Anna", "Ben", "Chloé", "Dmitri", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kemal", "Lena", "Marta", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tara"]
LAST = ["Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Horvat", "Ivanova",
        "Jensen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Rossi", "Schmidt"]
DOMAINS = ["example.net", "example.org", "mail.example.com", "customer.example", "corp.example.net"]
SUBJECTS = ["Internet drops every evening", "Invoice question", "Cannot log in to the portal",
            "Router replacement", "Change of address", "Slow connection since Monday",
            "Refund for the outage", "Email not arriving", "Upgrade my plan", "Cancel contract",
            "Wrong charge on my bill", "Modem lights blinking orange", "Password reset fails"]
SENTENCES = [
    "My connection drops every evening around eight and comes back after a few minutes.",
    "The router lights look normal, but nothing loads in the browser.",
    "I restarted the modem twice as your website suggests, it did not help.",
    "Could you please check whether there is an outage in my area?",
    "The invoice for last month shows a charge I do not recognise.",
    "I attached a screenshot of the error message and the router's status page.",
    "We have three people working from home and video calls keep freezing.",
    "Your technician was here on Tuesday, since then the line is slower than before.",
    "Please tell me what information you need from me to look into this.",
    "I have been a customer for six years and never had this problem until now.",
    "The portal says my password is wrong even right after I reset it.",
    "Is it possible to move my contract to the new address from the first of next month?",
]
ATTACHMENTS = [("application/pdf", "invoice.pdf"), ("image/png", "screenshot.png"),
               ("image/jpeg", "router.jpg"), ("application/zip", "logs.zip")]


def _text(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    length = 0
    while length < size:
        paragraph = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 5)))
        lines.append(paragraph)
        length += len(paragraph) + 2
    return "Hello,\n\n" + "\n\n".join(lines)[:size] + "\n\nThanks,\n"


def build_messages(count: int, seed: int = SEED) -> list[bytes]:
    """``count`` distinct customer mails, the same for the same seed (see the module doc)."""
    rng = random.Random(seed)
    start = datetime(2026, 5, 4, 7, 0, tzinfo=timezone.utc)
    mails = []
    for n in range(count):
        first, last, domain = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
        local = f"{first}.{last}".lower().encode("ascii", "ignore").decode() + str(n)
        msg = EmailMessage()
        msg["From"] = f"{first} {last} <{local}@{domain}>"
        msg["To"] = f"help@{DOMAIN}"
        msg["Subject"] = f"{rng.choice(SUBJECTS)} [{n}]"
        msg["Date"] = format_datetime(start + timedelta(seconds=37 * n))
        msg["Message-ID"] = f"<backlog.{n}.{seed}@{domain}>"
        kind = rng.random()
        if kind < 0.60:
            msg.set_content(_text(rng, rng.randint(1_500, 7_500)))
        elif kind < 0.85:
            text = _text(rng, rng.randint(5_000, 22_000))
            msg.set_content(text)
            html = "".join(f"<p>{p}</p>\n" for p in text.split("\n\n"))
            msg.add_alternative(f"<html><body>{html}</body></html>\n", subtype="html")
        else:
            text = _text(rng, rng.randint(500, 3_000))
            msg.set_content(text)
            content_type, filename = rng.choice(ATTACHMENTS)
            maintype, _, subtype = content_type.partition("/")
            target = rng.randint(50_000, 200_000)  # the whole message, base64 included
            msg.add_attachment(rng.randbytes(max(1_000, (target - len(text) - 1_500) * 3 // 4)),
                               maintype=maintype, subtype=subtype, filename=filename)
        mails.append(msg.as_bytes(policy=SMTP_POLICY))
    return mails


def seed_mailbox(dovecot: Any, user: str, password: str, mails: list[bytes]) -> float:
    """APPEND ``mails`` to the user's INBOX over a few connections; seconds it took."""
    started = time.perf_counter()

    def part(k: int) -> None:
        with dovecot.client(user, password, timeout=60) as client:
            for raw in mails[k::SEED_CONNECTIONS]:
                client.append(raw)

    with ThreadPoolExecutor(SEED_CONNECTIONS) as pool:
        for future in [pool.submit(part, k) for k in range(SEED_CONNECTIONS)]:
            future.result()
    # Dovecot writes without fsync: the seeded mail would otherwise be flushed by the kernel
    # ~30 s later, in the middle of a later run, and slow its SQLite commits (fsync) alone.
    os.sync()
    return time.perf_counter() - started


# ----- the children --------------------------------------------------------------------------


def peak_rss_kib() -> int:
    """This process's peak resident set in KiB: ``VmHWM``, the high-water mark of its own
    address space. ``ru_maxrss`` is not used on Linux: it keeps the high-water mark of the
    address space the process had before execve, i.e. of the parent it was forked from (this
    script's parent holds every seeded mail), so each child would report the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


async def child_ceiling(args: argparse.Namespace) -> dict[str, Any]:
    """The bare reader: aioimaplib alone, fetch one message at a time and drop it."""
    import aioimaplib

    client = aioimaplib.IMAP4(host=args.host, port=args.port, timeout=120)
    await client.wait_hello_from_server()
    if (response := await client.login(args.user, args.password)).result != "OK":
        raise SystemExit(f"LOGIN: {response}")
    if (response := await client.select("INBOX")).result != "OK":
        raise SystemExit(f"SELECT INBOX: {response}")
    tag = f"[ceiling {args.count}]"
    started = last = time.perf_counter()
    response = await client.uid_search("ALL", charset=None)
    if response.result != "OK":
        raise SystemExit(f"UID SEARCH: {response}")
    uids = [int(w) for line in response.lines[:-1] if isinstance(line, bytes)
            for w in line.split() if w.isdigit()]
    fetched = size = 0
    for uid in uids:
        response = await client.uid("fetch", str(uid), "(BODY.PEEK[])")
        if response.result != "OK":
            raise SystemExit(f"UID FETCH {uid}: {response}")
        literal = next((x for x in response.lines if isinstance(x, bytearray)), None)
        if literal is None:
            raise SystemExit(f"UID FETCH {uid}: no literal in the answer")
        size += len(literal)
        fetched += 1
        now = time.perf_counter()
        if now - last >= PROGRESS_SECONDS:
            last = now
            say(f"  {tag} {fetched}/{len(uids)} fetched ({fetched / (now - started):.0f}/s)")
    seconds = time.perf_counter() - started
    await client.logout()
    return {"messages": fetched, "bytes": size, "seconds": seconds, "peak_rss_kib": peak_rss_kib()}


def child_settings(args: argparse.Namespace, work: Path) -> Any:
    from bot.config import Settings

    return Settings.model_validate({
        "database": {"url": f"sqlite+aiosqlite:///{work / 'deskbell.db'}"},
        "smtp_in": {"listen": "127.0.0.1:0", "domains": [DOMAIN]},
        "email_out": {"host": "127.0.0.1", "port": 9, "from_address": f"support@{DOMAIN}",
                      "reply_domain": DOMAIN, "ack_rate_limit_per_domain_per_hour": 0,
                      "ack_rate_limit_total_per_hour": 0},
        "slack": {"bot_token": ""},
        "handler_groups": [{"name": "support", "slack_channel": "#support",
                            "email_addresses": [f"help@{DOMAIN}"]}],
        "imap_accounts": [{"name": "support", "host": args.host, "port": args.port, "tls": False,
                           "username": args.user, "password": args.password,
                           "processed_mailbox": PROCESSED, "handler_group": "support",
                           "response_timeout_seconds": 60}],
        "log": {"level": "WARNING"},
    })


async def child_door(args: argparse.Namespace) -> dict[str, Any]:
    """The door draining the backlog into the spool. ``--child ticket``: the intake worker runs
    beside it until the spool is empty. ``--then-intake``: once the door is done (and its
    peak RSS read), the intake worker alone drains the spool, for comparison."""
    from sqlalchemy import func, select

    from bot.clock import Clock
    from bot.core import groups, spool
    from bot.core.desk import Desk
    from bot.inbound.imap import AccountPoller
    from bot.inbound.imapclient import ImapSession
    from bot.inbound.pipeline import IntakeWorker, SpoolWriter
    from bot.store import migrate
    from bot.store import models as m
    from bot.store.db import Database

    tag = f"[{args.child} {args.count}]"
    work = Path(args.work)
    settings = child_settings(args, work)
    account = settings.imap_accounts[0]
    clock = Clock()
    db = Database(settings.database.url, **settings.database.engine_options)
    await migrate.upgrade(db)
    await groups.sync_groups(db, settings)
    writer = SpoolWriter(db)
    poller = AccountPoller(account, db=db, clock=clock, spool=writer.write)
    intake = IntakeWorker(desk=Desk(db=db, settings=settings, clock=clock),
                          our_domain=settings.email_out.reply_domain)
    intake_task: asyncio.Task[None] | None = None
    if args.child == "ticket":
        writer.on_commit(intake.wake)  # as deskbell run wires the doors of its own process
    result: dict[str, Any] = {}
    async with ImapSession(host=account.host, port=account.port, tls=account.tls,
                           starttls=account.starttls, timeout=account.response_timeout_seconds) as imap:
        await imap.login(account.username, password=account.password.get_secret_value(),
                         mechanism=account.auth)
        await poller._learn_folders(imap)
        await imap.create(poller.processed)
        selected = await imap.select(poller.mailbox)
        if selected.exists != args.count:
            raise SystemExit(f"{tag} INBOX holds {selected.exists} messages, expected {args.count}")
        if args.child == "ticket":
            intake_task = asyncio.create_task(intake.run())
        started = time.perf_counter()
        spooled = await poller.drain(imap, selected)
        drained = time.perf_counter() - started
        result.update(messages=spooled, seconds=drained)
        say(f"  {tag} drain returned after {drained:.2f} s: {spooled} spooled ({spooled / drained:.0f}/s)")
        if intake_task is not None:
            last = time.perf_counter()
            while (pending := await spool.pending_count(db)) > 0:
                await asyncio.sleep(0.05)
                now = time.perf_counter()
                if now - last >= PROGRESS_SECONDS:
                    last = now
                    say(f"  {tag} {pending} still in the spool after {now - started:.0f} s")
            result["until_empty"] = time.perf_counter() - started
            intake.stop()
            await intake_task
        result["peak_rss_kib"] = peak_rss_kib()
    result["pending"] = await spool.pending_count(db)
    if args.then_intake:
        say(f"  {tag} now the intake worker alone on the {result['pending']} spooled messages")
        begun = time.perf_counter()
        await intake.drain(timeout=3600)
        result["intake_alone"] = time.perf_counter() - begun
        say(f"  {tag} intake alone took {result['intake_alone']:.1f} s")
    async with db.reading() as s:
        result["tickets"] = await s.scalar(select(func.count()).select_from(m.Ticket))
        result["held"] = await s.scalar(select(func.count()).select_from(m.Quarantine))
    await db.dispose()
    return result


def run_child(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"  [{args.child} {args.count}] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bot.inbound.imap").setLevel(logging.INFO)  # the door's own progress lines
    if args.child == "ceiling":
        result = asyncio.run(child_ceiling(args))
    else:
        result = asyncio.run(child_door(args))
    print(json.dumps(result), flush=True)


# ----- the parent ----------------------------------------------------------------------------


class Run:
    """One measurement: a fresh user seeded with the mails, then a child process on it."""

    def __init__(self, dovecot: Any, work: Path, mails: list[bytes]) -> None:
        self.dovecot, self.work, self.mails = dovecot, work, mails

    def __call__(self, mode: str, count: int, *, then_intake: bool = False) -> dict[str, Any]:
        user, password = self.dovecot.add_user()
        mails = self.mails[:count]
        seconds = seed_mailbox(self.dovecot, user, password, mails)
        say(f"  seeded {user} with {count} messages ({sum(map(len, mails)) / 1e6:.1f} MB) in "
            f"{seconds:.1f} s (not counted)")
        where = self.work / f"{mode}-{count}-{user}"
        where.mkdir()
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--count", str(count),
                "--host", self.dovecot.host, "--port", str(self.dovecot.port), "--user", user,
                "--password", password, "--work", str(where)] + (["--then-intake"] if then_intake else [])
        proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if proc.returncode:
            raise SystemExit(f"the {mode} child for {count} messages failed (exit {proc.returncode})")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["seed_seconds"] = seconds
        if mode in ("door", "ticket"):
            with self.dovecot.client(user, password) as client:
                inbox, processed = client.count("INBOX"), client.count(PROCESSED)
            result.update(inbox=inbox, processed=processed)
            problems = []
            if result["messages"] != count:
                problems.append(f"{result['messages']} spooled")
            if mode == "door" and result["pending"] != count:
                problems.append(f"{result['pending']} queued rows in the spool")
            if inbox or processed != count:
                problems.append(f"INBOX holds {inbox}, {PROCESSED} {processed}")
            if mode == "ticket" and result["pending"]:
                problems.append(f"{result['pending']} still queued")
            if (mode == "ticket" or then_intake) and (result["tickets"] != count or result["held"]):
                problems.append(f"{result['tickets']} tickets, {result['held']} held")
            if problems:
                raise SystemExit(f"the {mode} run of {count} messages is wrong: " + "; ".join(problems))
        elif result["messages"] != count:
            raise SystemExit(f"the ceiling fetched {result['messages']} of {count} messages")
        return result


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000,
                        help="backlog size for the ceiling, the door and the ticket runs (default 5000)")
    parser.add_argument("--small", type=int, default=500,
                        help="backlog size of the door's second memory run (default 500)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 300 and 100 messages (overrides --messages and --small)")
    parser.add_argument("--keep", action="store_true", help="keep the databases (temporary directory)")
    # Internal: one measurement in a child process (see Run).
    parser.add_argument("--child", choices=("ceiling", "door", "ticket"), help=argparse.SUPPRESS)
    for name in ("--host", "--user", "--password", "--work"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--then-intake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    if args.quick:
        args.messages, args.small = 300, 100
    if args.small < 1 or args.messages < args.small:
        parser.error("need 1 <= --small <= --messages")

    from tests.imapserver import Dovecot, dovecot_binary

    if dovecot_binary() is None:
        raise SystemExit("dovecot is not installed (Debian: apt-get install dovecot-imapd)")

    started = time.perf_counter()
    found = subprocess.run([dovecot_binary() or "dovecot", "--version"], capture_output=True,
                           text=True).stdout.split()
    dovecot_version = found[0] if found else "?"
    say(f"$ {command_line()}")
    say(f"Deskbell IMAP backlog benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}, Dovecot {dovecot_version}")
    begun = time.perf_counter()
    mails = build_messages(args.messages)
    total_mb = sum(map(len, mails)) / 1e6
    sizes = sorted(map(len, mails))
    say(f"  built {len(mails)} messages, {total_mb:.1f} MB (median {sizes[len(sizes) // 2] / 1e3:.1f} kB, "
        f"largest {sizes[-1] / 1e3:.0f} kB) in {time.perf_counter() - begun:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="deskbell-imap-bench-"))
    dovecot = Dovecot().start()
    try:
        run = Run(dovecot, work, mails)
        say(f"\n1. Ceiling: aioimaplib fetch + discard, {args.messages} messages")
        ceiling = run("ceiling", args.messages)
        ceiling_rate = ceiling["messages"] / ceiling["seconds"]
        say(f"   {ceiling_rate:.1f} msg/s ({ceiling['seconds']:.2f} s)")
        say(f"\n2. Door: AccountPoller.drain into the spool, {args.messages} messages")
        door = run("door", args.messages, then_intake=True)
        door_rate = door["messages"] / door["seconds"]
        say(f"   {door_rate:.1f} msg/s ({door['seconds']:.2f} s), ratio {door_rate / ceiling_rate:.2f}; "
            f"then intake alone {door['intake_alone']:.1f} s")
        say(f"\n3. Door + intake until the spool is empty, {args.messages} messages")
        ticket = run("ticket", args.messages)
        say(f"   {ticket['until_empty']:.1f} s; its drain() returned after {ticket['seconds']:.1f} s")
        say(f"\n4. Door again, {args.small} messages, for its peak RSS")
        small = run("door", args.small)
    finally:
        dovecot.stop()
        if args.keep:
            say(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    ratio = door_rate / ceiling_rate
    rss_small, rss_big = small["peak_rss_kib"] / 1024, door["peak_rss_kib"] / 1024
    growth = (rss_big - rss_small) / rss_small
    n = args.messages
    seeding = " / ".join(f"{r['seed_seconds']:.1f}" for r in (ceiling, door, ticket, small))
    lines = [
        f"imap backlog: {n} messages ({total_mb:.1f} MB)",
        f"  ceiling (aioimaplib fetch+discard) ....  {ceiling_rate:7.1f} msg/s",
        f"  deskbell door (spool commit + MOVE) ...  {door_rate:7.1f} msg/s   ratio {ratio:.2f} "
        f"(target >= {RATIO_TARGET}) {verdict(ratio >= RATIO_TARGET)}",
        f"  until the last is a ticket ............  {ticket['until_empty']:7.1f} s       "
        f"door and intake together ({n / ticket['until_empty']:.1f} msg/s; its drain() returned "
        f"after {ticket['seconds']:.1f} s; {ticket['tickets']} tickets, {ticket['held']} held)",
        f"  peak RSS door {args.small}: {rss_small:.1f} MiB, {n}: {rss_big:.1f} MiB  growth "
        f"{growth * 100:+.1f} % (target <= {RSS_GROWTH_TARGET * 100:.0f} %) "
        f"{verdict(growth <= RSS_GROWTH_TARGET)}",
        f"  for comparison, one after the other: door alone {door['seconds']:.1f} s, then intake "
        f"alone {door['intake_alone']:.1f} s = {door['seconds'] + door['intake_alone']:.1f} s; peak "
        f"RSS ceiling {ceiling['peak_rss_kib'] / 1024:.1f} MiB, door + intake "
        f"{ticket['peak_rss_kib'] / 1024:.1f} MiB",
        f"  `{command_line()}`: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite "
        f"{sqlite3.sqlite_version}, Dovecot {dovecot_version}; seeding (not counted) {seeding} s; "
        f"whole run {time.perf_counter() - started:.0f} s",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
