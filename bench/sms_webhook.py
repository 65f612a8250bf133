"""Benchmark: Twilio's inbound-SMS webhook (``POST /twilio/sms``), latency at a steady rate and
throughput, beside a bare uvicorn + Starlette ceiling measured in the same run.

Not a test. Run from the project root:

    python bench/sms_webhook.py [--rate 50] [--seconds 20] [--connections 32]
                                [--throughput-seconds 10] [--quick] [--profile DIR]

Every server is a separate process on loopback port 0, each in a fresh temporary directory:
  * the ceiling: this script with a hidden ``--child ceiling``. It builds the web server with
    ``Deskbell._web_server`` itself (the same ``uvicorn.Config`` options: h11 with the header
    deadline, ``limit_concurrency``, keep-alive timeout, no access log, no lifespan; the same
    pre-bound socket, and ``gc.freeze()`` after start-up as ``serve`` does), only with
    ``build_web_app`` swapped for a bare Starlette app whose ``POST /twilio/sms`` reads the
    body and answers an empty 200. One process, one event loop, as ``deskbell web``;
  * ``deskbell web`` (``python -m bot web``): the web role alone on a fresh SQLite database;
  * ``deskbell run`` (``python -m bot run``: the roles smtp, imap, web and worker in one
    process, as production on SQLite runs it; no IMAP accounts, the SMTP door idle) on a fresh
    SQLite database, posting its Slack cards to a fake Slack Web API served by this script.
    A subprocess rather than in-process: it is how it runs in production, and the load
    generator's CPU stays out of the server's process and event loop.

The load generator is this script again (hidden ``--child load``), one process per measurement,
an aiohttp client whose connections are kept alive. Each post is what Twilio sends for an
incoming SMS (``tests.faketwilio.inbound_sms_params``: every field, as Twilio posts them),
signed with ``X-Twilio-Signature`` for ``twilio.webhook_url`` by the official validator, all
built and signed before the clock starts. Every post has its own ``MessageSid``; about 30 % come
from a number that already texted in that measurement (they join its ticket), the rest from new
numbers. Deskbell answers 200 only once the form is committed to the spool (SQLite, WAL,
``synchronous=FULL``).

It measures:
  1. fixed rate: ``--rate`` posts a second for ``--seconds`` against ``deskbell run`` (and the
     ceiling, for reference); latency from each post's scheduled send time (open loop, so a
     stalled server is not hidden by the client waiting) to the end of its answer: p50, p95,
     p99 (target < 50 ms), max;
  2. throughput: ``--connections`` connections posting back to back for
     ``--throughput-seconds`` after a 1 s warm-up; answers/s within the window (and their
     latency) for the ceiling, ``deskbell web`` and ``deskbell run``; target ratio deskbell web
     / ceiling >= 0.5 (the webhook's own process, as the Procfile runs it; ``deskbell run`` also
     turns every text into a ticket and a Slack card on the same event loop, and is reported
     beside it). One reference beside them: the ceiling's same route answering Deskbell's
     TwiML body (``<Response/>``, text/xml) instead of an empty 200, which shows what the
     server set-up costs an answer that has a body;
  3. checks: no answer but 200; the spool (``raw_messages``, read with sqlite3) holds exactly
     as many rows as 200s were answered; for ``deskbell run``, the time after the last answer
     until the intake has emptied the spool, and then the tickets (compared with the distinct
     senders), the inbound SMS messages (= the 200s), held entries, and the Slack cards out
     within 15 s after that.
Also reported: CPU time of the server process (and of its main thread, the event loop) and of
the load generator per answer, from psutil during each timed window, to show which side is
busy. Against the ceiling the load generator and the server share the two cores between them.

``--profile DIR`` adds py-spy (``py-spy record --format raw --threads``) on ``deskbell web``
during its throughput run and on ``deskbell run`` during both of its runs: collapsed stacks in DIR. Sampling slows the server,
so the numbers of a profiled run are not for the record.

Progress goes to stderr; the summary block to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import queue
import random
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOMAIN = "support.example.com"
PUBLIC = "https://desk.example.com"
SMS_URL = f"{PUBLIC}/twilio/sms"  # what Twilio signs: twilio.webhook_url
SUPPORT_NUMBER = "+15550000001"
ACCOUNT_SID = "AC" + hashlib.md5(b"deskbell-bench").hexdigest()
AUTH_TOKEN = hashlib.sha256(b"deskbell-bench-token").hexdigest()[:32]
REPEAT_SENDER = 0.30  # share of posts from a number that already texted in the same measurement
WARM_UP_SECONDS = 1.0
P99_TARGET_MS = 50.0
RATIO_TARGET = 0.5
CATCH_UP_TIMEOUT = 120.0
CARDS_WAIT = 15.0  # at most this long after the intake caught up, for the Slack cards
TWIML_PATH = "/twilio/sms-twiml"  # the ceiling's second route: the same, answering Deskbell's TwiML body

TEXTS = [
    "Hi, my internet has been down since this morning.",
    "The router lights are blinking orange, what does that mean?",
    "Can you call me back about my bill please",
    "I was charged twice this month. Order 44817.",
    "Still no signal at home, tried restarting twice",
    "When will the technician come? Nobody showed up yesterday between 8 and 12.",
    "Thanks, it works again!",
    "Can I move my contract to my new address from the 1st?",
    "The app says my password is wrong even after resetting it. Help me log in please.",
    "Is there an outage in 10115 Berlin? Video calls keep freezing since Monday evening.",
]


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def command_line() -> str:
    return shlex.join(["python", "bench/sms_webhook.py", *sys.argv[1:]])


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def write_config(directory: Path, slack_url: str, slack_token: str) -> Path:
    """deskbell.yaml for one server: its own SQLite file, everything on loopback. The Twilio
    API URL is a closed port: nothing in these runs sends a text."""
    config = {
        "database": {"url": f"sqlite+aiosqlite:///{directory / 'deskbell.db'}"},
        "smtp_in": {"listen": "127.0.0.1:0", "domains": [DOMAIN]},
        "web": {"listen": "127.0.0.1:0", "public_url": PUBLIC},
        "twilio": {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_url": "http://127.0.0.1:9",
                   "from_number": "+15550000000", "webhook_url": SMS_URL},
        "email_out": {"host": "127.0.0.1", "port": 9, "from_address": f"support@{DOMAIN}",
                      "reply_domain": DOMAIN},
        "slack": {"bot_token": slack_token, "api_url": slack_url},
        "handler_groups": [{"name": "support", "slack_channel": "#support",
                            "email_addresses": [f"help@{DOMAIN}"], "phone_numbers": [SUPPORT_NUMBER]}],
        "log": {"level": "WARNING"},
    }
    path = directory / "deskbell.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ----- child: the ceiling server -------------------------------------------------------------


def run_ceiling(args: argparse.Namespace) -> None:
    """uvicorn exactly as ``Deskbell._web_server`` configures it, serving a bare Starlette app."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    import bot.app
    from bot.clock import Clock
    from bot.config import load_settings
    from bot.inbound.sms import EMPTY_TWIML

    async def sms(request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    async def twiml(request: Request) -> Response:
        await request.body()
        return Response(EMPTY_TWIML, media_type="text/xml")

    bare = Starlette(routes=[Route("/twilio/sms", sms, methods=["POST"]),
                             Route(TWIML_PATH, twiml, methods=["POST"])])
    bot.app.build_web_app = lambda **_: bare  # type: ignore[assignment]  # this process only

    async def main() -> None:
        desk = bot.app.Deskbell(load_settings(args.config), clock=Clock())
        server, sock = desk._web_server(None)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        gc.collect()
        gc.freeze()
        host, port = sock.getsockname()[:2]
        print(f"  Web       listening on http://{host}:{port} (ceiling)\n  Stop with SIGTERM", flush=True)
        await stop.wait()
        server.should_exit = True
        await task

    asyncio.run(main())


# ----- child: the load generator -------------------------------------------------------------


class Posts:
    """Signed webhook posts, built before the clock starts: (body, signature, sender)."""

    def __init__(self, tag: int, seed: int) -> None:
        from twilio.request_validator import RequestValidator

        self.tag, self.rng = tag, random.Random(seed)
        self.validator = RequestValidator(AUTH_TOKEN)
        self.items: list[tuple[bytes, str, str]] = []
        self.senders: list[str] = []

    def build(self, count: int) -> None:
        from tests.faketwilio import inbound_sms_params

        for n in range(len(self.items), len(self.items) + count):
            if self.senders and self.rng.random() < REPEAT_SENDER:
                sender = self.rng.choice(self.senders)
            else:
                sender = f"+1555{self.tag}{len(self.senders):06d}"
                self.senders.append(sender)
            sid = f"SM{self.tag:02x}{n:030x}"
            params = inbound_sms_params(account_sid=ACCOUNT_SID, from_=sender, to=SUPPORT_NUMBER,
                                        body=f"{self.rng.choice(TEXTS)} ({n})", sid=sid)
            signature = self.validator.compute_signature(SMS_URL, params)
            self.items.append((urlencode(params).encode(), signature, sender))

    def __getitem__(self, n: int) -> tuple[bytes, str, str]:
        while n >= len(self.items):  # ran past what was built: build more (costs client CPU)
            self.build(1000)
        return self.items[n]


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


def cpu_share(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    wall = after["wall"] - before["wall"]
    per = max(1, requests)
    return {key + "_ms": (after[key] - before[key]) * 1000 / per for key in ("server", "server_main", "client")} | {
        key + "_busy": (after[key] - before[key]) / wall for key in ("server", "server_main", "client")}


async def load_fixed(args: argparse.Namespace, posts: Posts) -> dict[str, Any]:
    """``rate`` posts a second for ``seconds``, each on schedule whatever the answers do."""
    import aiohttp

    count = int(args.rate * args.seconds)
    posts.build(count)
    sampler = Sampler(args.pid)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    answered: set[str] = set()
    lateness = 0.0

    async def one(session: aiohttp.ClientSession, n: int, scheduled: float) -> None:
        body, signature, sender = posts[n]
        try:
            async with session.post(args.url, data=body, headers=headers(signature)) as response:
                await response.read()
                status = str(response.status)
        except Exception as exc:  # noqa: BLE001  # counted, never fatal: the summary reports it
            status = type(exc).__name__
        latencies.append((time.perf_counter() - scheduled) * 1000)
        statuses[status] += 1
        if status == "200":
            answered.add(sender)

    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        before = sampler.sample()
        start = time.perf_counter()
        for n in range(count):
            scheduled = start + n / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lateness = max(lateness, -delay)
            tasks.append(asyncio.create_task(one(session, n, scheduled)))
        await asyncio.gather(*tasks)
        after = sampler.sample()
    return {"kind": "fixed", "sent": count, "statuses": dict(statuses), "ok": statuses["200"],
            "senders": len(answered), "latencies": latencies, "late_ms": lateness * 1000,
            "finished_at": time.time(), "cpu": cpu_share(before, after, count)}


async def load_throughput(args: argparse.Namespace, posts: Posts) -> dict[str, Any]:
    """``connections`` connections posting back to back: answers/s within the timed window
    (after a warm-up on the same connections)."""
    import aiohttp

    posts.build(args.capacity)
    sampler = Sampler(args.pid)
    statuses: Counter[str] = Counter()
    answered: set[str] = set()
    latencies: list[float] = []  # ms, of the answers within the window
    next_post = 0
    in_window = 0
    start = time.perf_counter()
    window_start = start + WARM_UP_SECONDS
    window_end = window_start + args.seconds
    samples: dict[str, dict[str, float]] = {}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_post, in_window
        while time.perf_counter() < window_end:
            n, next_post = next_post, next_post + 1
            body, signature, sender = posts[n]
            sent = time.perf_counter()
            try:
                async with session.post(args.url, data=body, headers=headers(signature)) as response:
                    await response.read()
                    status = str(response.status)
            except Exception as exc:  # noqa: BLE001  # counted, never fatal: the summary reports it
                status = type(exc).__name__
            statuses[status] += 1
            if status == "200":
                answered.add(sender)
                now = time.perf_counter()
                if window_start <= now < window_end:
                    in_window += 1
                    latencies.append((now - sent) * 1000)

    async def sample_at(name: str, when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.perf_counter()))
        samples[name] = sampler.sample() | {"answered": in_window}

    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(args.connections)),
                             sample_at("before", window_start), sample_at("after", window_end))
    finished_at = time.time()
    requests = samples["after"]["answered"] - samples["before"]["answered"]
    return {"kind": "throughput", "sent": next_post, "statuses": dict(statuses), "ok": statuses["200"],
            "senders": len(answered), "rate": in_window / args.seconds, "in_window": in_window,
            "built": len(posts.items), "finished_at": finished_at, "latencies": latencies,
            "cpu": cpu_share(samples["before"], samples["after"], int(requests))}


def headers(signature: str) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1"}


def run_load(args: argparse.Namespace) -> None:
    posts = Posts(args.tag, seed=args.tag * 7919)
    began = time.perf_counter()
    posts.build(min(args.capacity, 2000))
    runner = load_fixed if args.mode == "fixed" else load_throughput
    result = asyncio.run(runner(args, posts))
    result["build_seconds"] = time.perf_counter() - began
    print(json.dumps(result), flush=True)


# ----- the parent ----------------------------------------------------------------------------


class Server:
    """A server process; its web port is read from its start-up summary ("Web       listening on
    http://127.0.0.1:N", then "Stop with"). Its stdout keeps being read so it never blocks."""

    def __init__(self, name: str, argv: list[str], cwd: Path) -> None:
        self.name, self.cwd = name, cwd
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=open(cwd / "stderr.log", "ab"),  # noqa: SIM115  # the child keeps it
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = 0
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
                self.port = int(match.group(1))
            if "Stop with" in line and self.port:
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

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                say(f"  ({self.name} ignored SIGTERM for 15 s; killed)")
                self.proc.kill()
                self.proc.wait(5)
        problems = self.problems()
        if problems:
            say(f"  note: {self.name} logged {len(problems)} error line(s), first: {problems[0][:300]}")


async def load(server: Server, mode: str, *, tag: int, rate: float = 0.0, seconds: float,
               connections: int = 0, capacity: int = 0, path: str = "/twilio/sms",
               profile: Path | None = None) -> dict[str, Any]:
    """One measurement by a load-generator process of its own (optionally under py-spy)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "load", "--mode", mode,
            "--url", f"http://127.0.0.1:{server.port}{path}", "--pid", str(server.pid), "--tag", str(tag), "--seconds", str(seconds),
            "--rate", str(rate), "--connections", str(connections),
            "--capacity", str(capacity or int(rate * seconds) + 1)]
    child = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    spy = None
    if profile is not None:
        # Starts sampling at once; the load child spends its first moments building posts.
        spy = await asyncio.create_subprocess_exec(
            "py-spy", "record", "--format", "raw", "--threads", "--rate", "250", "--pid", str(server.pid),
            "--duration", str(int(seconds + (WARM_UP_SECONDS if mode == "throughput" else 0) + 4)),
            "--output", str(profile), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await child.communicate()
    if spy is not None:
        await spy.wait()
    if child.returncode:
        raise SystemExit(f"the {mode} load against {server.name} failed (exit {child.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


def spool_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        queries = {
            "rows": "SELECT count(*) FROM raw_messages",
            "queued": "SELECT count(*) FROM raw_messages WHERE state = 'queued'",
            "held": "SELECT count(*) FROM raw_messages WHERE state = 'held'",
            "tickets": "SELECT count(*) FROM tickets",
            "messages": "SELECT count(*) FROM messages WHERE kind = 'inbound' AND channel = 'sms'",
        }
        return {name: conn.execute(sql).fetchone()[0] for name, sql in queries.items()}


async def catch_up(db: Path, since: float) -> float | None:
    """Seconds after ``since`` (time.time()) until no spool entry is queued; None on timeout.
    Polled every 50 ms with the stdlib sqlite3 module (WAL: it never blocks the server)."""
    def queued() -> int:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM raw_messages WHERE state = 'queued'").fetchone()[0]

    deadline = time.time() + CATCH_UP_TIMEOUT
    while time.time() < deadline:
        if await asyncio.to_thread(queued) == 0:
            return max(0.0, time.time() - since)
        await asyncio.sleep(0.05)
    return None


def describe_fixed(result: dict[str, Any]) -> str:
    lat = result["latencies"]
    return (f"p50 {pct(lat, 50):.1f} ms, p95 {pct(lat, 95):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
            f"max {max(lat):.1f} ms; {errors(result)} errors")


def describe_cpu(result: dict[str, Any]) -> str:
    c = result["cpu"]
    return (f"CPU per answer: server {c['server_ms']:.2f} ms (main thread {c['server_main_ms']:.2f}), "
            f"client {c['client_ms']:.2f} ms; busy: server {c['server_busy']:.0%} "
            f"(main thread {c['server_main_busy']:.0%}), client {c['client_busy']:.0%}")


def errors(result: dict[str, Any]) -> int:
    return sum(n for status, n in result["statuses"].items() if status != "200")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="posts a second in the fixed-rate run (default 50)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the fixed-rate run (default 20)")
    parser.add_argument("--connections", type=int, default=32,
                        help="concurrent keep-alive connections in the throughput run (default 32)")
    parser.add_argument("--throughput-seconds", type=float, default=10.0,
                        help="timed window of each throughput run, after a 1 s warm-up (default 10)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of a few seconds: 3 s fixed rate, 2 s throughput windows")
    parser.add_argument("--profile", metavar="DIR",
                        help="record py-spy profiles (collapsed stacks) of deskbell web and run into DIR; "
                             "slows the server, so not for the record")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories (databases, logs)")
    # Internal: the children (see the module doc).
    parser.add_argument("--child", choices=("ceiling", "load"), help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("fixed", "throughput"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tag", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--capacity", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ceiling":
        run_ceiling(args)
        return
    if args.child == "load":
        run_load(args)
        return
    if args.quick:
        args.seconds, args.throughput_seconds = 3.0, 2.0
    if args.rate <= 0 or args.seconds <= 0 or args.throughput_seconds <= 0 or args.connections < 1:
        parser.error("--rate, --seconds, --throughput-seconds and --connections must be positive")
    asyncio.run(parent(args))


async def parent(args: argparse.Namespace) -> None:
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)

    import uvicorn

    from tests.fakes import FakeSlack  # the fake the tests use

    started = time.perf_counter()
    cpus = os.cpu_count()
    say(f"$ {command_line()}")
    say(f"Deskbell SMS webhook benchmark — {cpus} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}, uvicorn {uvicorn.__version__} (h11, asyncio loop)")
    work = Path(tempfile.mkdtemp(prefix="deskbell-sms-bench-"))
    slack = await FakeSlack().start()
    servers: list[Server] = []
    thr_args = {"seconds": args.throughput_seconds, "connections": args.connections}
    conns = args.connections

    def start(name: str, argv: list[str], where: Path) -> Server:
        server = Server(name, argv, where)
        servers.append(server)
        return server

    def directory(name: str) -> tuple[Path, Path]:
        where = work / name
        where.mkdir()
        return where, write_config(where, slack.url, slack.token)

    try:
        # 1. The ceiling, and the reference: the same answering Deskbell's TwiML body.
        where, config = directory("ceiling")
        ceiling = start("ceiling", [sys.executable, str(Path(__file__).resolve()), "--child", "ceiling",
                                    "--config", str(config)], where)
        say(f"\n1. Ceiling (uvicorn as Deskbell._web_server, bare Starlette route), pid {ceiling.pid}")
        c_thr = await load(ceiling, "throughput", tag=1, capacity=60_000, **thr_args)
        say(f"   throughput, {conns} connections: {describe_throughput(c_thr)}")
        c_twiml = await load(ceiling, "throughput", tag=1, capacity=60_000, path=TWIML_PATH, **thr_args)
        say(f"   reference, the same route answering Deskbell's TwiML body: {describe_throughput(c_twiml)}")
        c_fix = await load(ceiling, "fixed", tag=2, rate=args.rate, seconds=args.seconds)
        say(f"   fixed {args.rate:g}/s for {args.seconds:g} s: {describe_fixed(c_fix)}; {describe_cpu(c_fix)}")
        ceiling.stop()
        capacity = int(c_thr["rate"] * (args.throughput_seconds + WARM_UP_SECONDS) * 1.2) + 1000

        # 2. deskbell web: the door alone.
        where, config = directory("web")
        web = start("deskbell web", [sys.executable, "-m", "bot", "web", "--config", str(config)], where)
        say(f"\n2. deskbell web (web role alone), pid {web.pid}")
        w_thr = await load(web, "throughput", tag=3, capacity=capacity,
                           profile=profile_dir / "web-throughput.txt" if profile_dir else None, **thr_args)
        say(f"   throughput, {conns} connections: {describe_throughput(w_thr)}; ratio "
            f"{w_thr['rate'] / c_thr['rate']:.2f}")
        web.stop()
        w_counts = spool_counts(where / "deskbell.db")
        say(f"   spool rows {w_counts['rows']}, 200s answered {w_thr['ok']}")

        # 3. deskbell run: web and worker (and the idle SMTP door) in one process.
        where, config = directory("run")
        db = where / "deskbell.db"
        run = start("deskbell run", [sys.executable, "-m", "bot", "run", "--config", str(config)], where)
        say(f"\n3. deskbell run (smtp, imap, web, worker in one process), pid {run.pid}")
        r_fix = await load(run, "fixed", tag=4, rate=args.rate, seconds=args.seconds,
                           profile=profile_dir / "run-fixed.txt" if profile_dir else None)
        say(f"   fixed {args.rate:g}/s for {args.seconds:g} s: {describe_fixed(r_fix)}; {describe_cpu(r_fix)}")
        fix_catch = await catch_up(db, r_fix["finished_at"])
        say(f"   intake caught up {fix_catch:.2f} s after the last answer" if fix_catch is not None
            else "   intake did NOT catch up")
        r_thr = await load(run, "throughput", tag=5, capacity=capacity,
                           profile=profile_dir / "run-throughput.txt" if profile_dir else None, **thr_args)
        say(f"   throughput, {conns} connections: {describe_throughput(r_thr)}; ratio "
            f"{r_thr['rate'] / c_thr['rate']:.2f}")
        thr_catch = await catch_up(db, r_thr["finished_at"])
        r_counts = spool_counts(db)
        say(f"   intake caught up {thr_catch:.1f} s after the last answer; spool rows {r_counts['rows']}, "
            f"queued {r_counts['queued']}, held {r_counts['held']}; tickets {r_counts['tickets']}, "
            f"inbound SMS messages {r_counts['messages']}" if thr_catch is not None else
            f"   intake did NOT catch up within {CATCH_UP_TIMEOUT:.0f} s: {r_counts}")
        waited = time.perf_counter()
        while len(slack.cards()) < r_counts["tickets"] and time.perf_counter() - waited < CARDS_WAIT:
            await asyncio.sleep(0.2)
        cards, cards_after = len(slack.cards()), time.perf_counter() - waited
        run.stop()
        r_counts = spool_counts(db)
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.stop()
        await slack.stop()
        if args.keep:
            say(f"\nKept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    run_ok = r_fix["ok"] + r_thr["ok"]
    senders = r_fix["senders"] + r_thr["senders"]
    all_errors = errors(r_fix) + errors(r_thr) + errors(w_thr)
    spool_equal = r_counts["rows"] == run_ok and w_counts["rows"] == w_thr["ok"]
    p99 = pct(r_fix["latencies"], 99)
    ratio = w_thr["rate"] / c_thr["rate"]
    caught = (f"intake caught up in {thr_catch:.1f} s after the {r_thr['sent']} posts of the throughput run "
              f"({fix_catch:.2f} s after the fixed-rate run)"
              if thr_catch is not None and fix_catch is not None else "intake did NOT catch up")
    lines = [
        (f"sms webhook ({cpus} CPUs, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
         f"uvicorn {uvicorn.__version__} h11; deskbell run, web and load generator each a process)"),
        (f"  fixed {args.rate:g} req/s for {args.seconds:g} s: p50 {pct(r_fix['latencies'], 50):.1f} ms, "
         f"p95 {pct(r_fix['latencies'], 95):.1f} ms, p99 {p99:.1f} ms (target < {P99_TARGET_MS:.0f} ms: "
         f"{verdict(p99 < P99_TARGET_MS)}), max {max(r_fix['latencies']):.1f} ms; {errors(r_fix)} errors"
         f"  [ceiling p50 {pct(c_fix['latencies'], 50):.1f}, p99 {pct(c_fix['latencies'], 99):.1f} ms]"),
        (f"  throughput, {conns} connections: ceiling {c_thr['rate']:.0f} req/s, deskbell web {w_thr['rate']:.0f} "
         f"req/s, ratio {ratio:.2f} (target >= {RATIO_TARGET}: {verdict(ratio >= RATIO_TARGET)})"
         f"  [deskbell run {r_thr['rate']:.0f} req/s, ratio {r_thr['rate'] / c_thr['rate']:.2f}; "
         f"ceiling answering the TwiML body {c_twiml['rate']:.0f} req/s]"),
        f"  spool rows = 200 answers: {'yes' if spool_equal else 'NO'}; {caught}",
        (f"  answer latency in the throughput runs, p50 / p99 ms: ceiling {lat(c_thr)}, its TwiML reference "
         f"{lat(c_twiml)}, deskbell web {lat(w_thr)}, deskbell run {lat(r_thr)}"),
        (f"  server CPU per answer (main thread) in the throughput runs: ceiling {cpu_ms(c_thr)}, deskbell web "
         f"{cpu_ms(w_thr)}, deskbell run {cpu_ms(r_thr)} ms; at {args.rate:g}/s: deskbell run {cpu_ms(r_fix)} ms; "
         f"load generator busy {c_thr['cpu']['client_busy']:.0%} of a core against the ceiling"),
        (f"  checks: non-200 answers {all_errors}; spool rows run {r_counts['rows']} = {run_ok} answers, web "
         f"{w_counts['rows']} = {w_thr['ok']}; {r_counts['tickets']} tickets for {senders} distinct senders, "
         f"{r_counts['messages']} inbound SMS messages, {r_counts['held']} held; {cards} Slack cards "
         f"{cards_after:.1f} s after the intake caught up"),
        f"  `{command_line()}`; whole run {time.perf_counter() - started:.0f} s",
    ]
    print("\n".join(lines), flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def lat(result: dict[str, Any]) -> str:
    return f"{pct(result['latencies'], 50):.1f} / {pct(result['latencies'], 99):.1f}"


def cpu_ms(result: dict[str, Any]) -> str:
    return f"{result['cpu']['server_ms']:.2f} ({result['cpu']['server_main_ms']:.2f})"


def describe_throughput(result: dict[str, Any]) -> str:
    return (f"{result['rate']:.1f} answers/s, latency p50 {pct(result['latencies'], 50):.1f} / p99 "
            f"{pct(result['latencies'], 99):.1f} ms; {errors(result)} errors; {describe_cpu(result)}")


if __name__ == "__main__":
    main()
