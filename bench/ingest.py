"""Benchmark: SMTP in → committed ticket, and end of DATA → Slack post, against a null sink.

Not a test. Run from the project root:

    python bench/ingest.py [--messages 400] [--rate 20] [--seconds 15]

It starts, as separate processes on loopback port 0:
  * the ceiling: an aiosmtpd server whose handler accepts and discards every message, and two
    reference handlers that only parse, or parse and commit the raw bytes to SQLite;
  * ``deskbell run`` on a fresh SQLite database, posting cards to a fake Slack Web API and
    acknowledgements to a relay sink, both served by this script.
Then it measures throughput with 1 and 8 concurrent SMTP clients (each client reuses one
connection, as an MTA does), latency from the end of DATA to the Slack card at a steady rate,
and the resident memory of ``deskbell run`` idle and under that load. It prints each result
beside its target and the ceiling measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import aiosmtplib
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes import FakeSlack, RelaySink  # noqa: E402  (the same fakes the tests use)

DOMAIN = "support.example.com"

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


def message(n: int, tag: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.net>"
    msg["To"] = f"help@{DOMAIN}"
    msg["Subject"] = f"{tag} {n}"
    msg["Message-ID"] = f"<{tag}.{n}.{time.time_ns()}@example.net>"
    msg.set_content("Hello,\n\nmy internet connection drops every evening around 8 pm. "
                    "The router lights look normal. Could you have a look?\n\nThanks,\nCustomer\n" * 3)
    return msg.as_bytes(policy=SMTP_POLICY)


class Server:
    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=open(cwd / "stderr.log", "ab"),
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.port = self.web_port = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()  # type: ignore[union-attr]
            if not line and self.proc.poll() is not None:
                raise SystemExit(f"server exited: {(cwd / 'stderr.log').read_text()[-2000:]}")
            # "  SMTP      listening on 127.0.0.1:2525 …" / "  Web       listening on http://127.0.0.1:8080 …"
            match = re.search(r"(SMTP|Web)\s+listening on (?:http://)?127\.0\.0\.1:(\d+)", line)
            if match and match.group(1) == "SMTP":
                self.port = int(match.group(2))
            elif match:
                self.web_port = int(match.group(2))
            if "Stop with" in line:
                return
        raise SystemExit("server did not start")

    @property
    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 1e6

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


async def throughput(port: int, *, clients: int, total: int, tag: str) -> float:
    """Messages per second until the last 250, with ``clients`` connections in parallel."""
    per_client = total // clients
    bodies = [[message(c * per_client + i, tag) for i in range(per_client)] for c in range(clients)]

    async def client(batch: list[bytes]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        for raw in batch:
            await smtp.sendmail("customer@example.net", [f"help@{DOMAIN}"], raw)
        await smtp.quit()

    start = time.perf_counter()
    await asyncio.gather(*(client(b) for b in bodies))
    return per_client * clients / (time.perf_counter() - start)


async def latency(port: int, slack: FakeSlack, *, rate: float, seconds: float,
                  server: Server) -> tuple[list[float], float]:
    """End of DATA → chat.postMessage received, at a steady rate; also the peak RSS."""
    sent_at: dict[str, float] = {}
    count = int(rate * seconds)
    peak_rss = 0.0

    async def one(n: int) -> None:
        raw = message(n, "steady")
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        await smtp.ehlo()
        await smtp.mail("customer@example.net")
        await smtp.rcpt(f"help@{DOMAIN}")
        # aiosmtplib writes the whole message and the final dot before awaiting the reply.
        sent_at[f"steady {n}"] = time.perf_counter()
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
    while time.perf_counter() < deadline:
        posted = {c.args["blocks"][0]["text"]["text"].split(" ", 1)[1]: c.at
                  for c in slack.cards() if "steady" in c.args.get("text", "")}
        peak_rss = max(peak_rss, server.rss_mb)
        if len(posted) >= count:
            break
        await asyncio.sleep(0.1)
    return [(posted[k] - sent_at[k]) * 1000 for k in sent_at if k in posted], peak_rss


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400, help="messages per throughput run")
    parser.add_argument("--rate", type=float, default=20.0, help="steady rate for the latency run")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the latency run")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="deskbell-bench-"))
    slack = await FakeSlack().start()
    relay = await RelaySink().start()
    config = {
        "database": {"url": f"sqlite+aiosqlite:///{work / 'bench.db'}"},
        "smtp_in": {"listen": "127.0.0.1:0", "domains": [DOMAIN]},
        "web": {"listen": "127.0.0.1:0"},
        "email_out": {"host": "127.0.0.1", "port": relay.port, "from_address": f"support@{DOMAIN}",
                      "reply_domain": DOMAIN, "ack_rate_limit_per_hour": 0},
        "slack": {"bot_token": slack.token, "api_url": slack.url},
        "log": {"level": "WARNING"},
    }
    (work / "deskbell.yaml").write_text(yaml.safe_dump(config))

    print(f"Deskbell ingest benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    reference: dict[str, dict[int, float]] = {}
    for mode in ("discard", "parse", "persist"):
        sink = Server([sys.executable, "-c", REFERENCE_SINK, mode, str(work / f"{mode}.db")], work)
        reference[mode] = {c: await throughput(sink.port, clients=c, total=args.messages,
                                               tag=f"{mode}{c}") for c in (1, 8)}
        sink.stop()
    ceiling = reference["discard"]

    bot = Server([sys.executable, "-m", "bot", "run", "--config", str(work / "deskbell.yaml")], work)
    await asyncio.sleep(2)
    idle_rss = bot.rss_mb
    ours = {c: await throughput(bot.port, clients=c, total=args.messages, tag=f"bot{c}")
            for c in (1, 8)}
    # Let the backlog of cards drain before measuring latency at a steady rate.
    backlog_start = time.perf_counter()
    while len(slack.cards()) < 2 * (args.messages // 8 * 8) and time.perf_counter() - backlog_start < 120:
        await asyncio.sleep(0.2)
    drain_seconds = time.perf_counter() - backlog_start
    slack.calls.clear()
    lat, loaded_rss = await latency(bot.port, slack, rate=args.rate, seconds=args.seconds, server=bot)
    bot.stop()
    await slack.stop()
    await relay.stop()

    print(f"\nThroughput, messages/s until the last 250 ({args.messages} messages per run):")
    for c in (1, 8):
        ratio = ours[c] / ceiling[c]
        target = "  (target ≥ 0.50)" if c == 8 else ""
        print(f"  {c} client{'s' if c > 1 else ' '}: deskbell {ours[c]:7.1f}   null sink {ceiling[c]:7.1f}"
              f"   ratio {ratio:4.2f}{target}")
    print("\nReference handlers with 8 clients (ratio to the null sink): "
          + ", ".join(f"{mode} {reference[mode][8]:.0f} ({reference[mode][8] / ceiling[8]:.2f})"
                      for mode in ("parse", "persist")))
    print(f"\nCard backlog after the throughput runs drained in {drain_seconds:.1f} s.")
    print(f"\nEnd of DATA → Slack card at {args.rate:g} msg/s for {args.seconds:g} s "
          f"({len(lat)}/{int(args.rate * args.seconds)} posted):")
    if lat:
        print(f"  p50 {pct(lat, 50):6.1f} ms   p99 {pct(lat, 99):6.1f} ms   max {max(lat):6.1f} ms"
              f"   (target p99 < 250 ms)   mean {statistics.mean(lat):.1f} ms")
    print(f"\nResident memory of deskbell run: idle {idle_rss:.0f} MB (target < 120), "
          f"under load {loaded_rss:.0f} MB (target < 300)")


if __name__ == "__main__":
    asyncio.run(main())
