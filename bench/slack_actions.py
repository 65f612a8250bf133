"""Benchmark: how fast Slack button presses are acknowledged, beside a bolt app that only acks.

Not a test. Run from the project root:

    python bench/slack_actions.py [--presses 50] [--rounds 5]

Starts ``deskbell run`` (the fake Slack Web API and the relay sink are served by this script)
and, as the ceiling, a bare slack-bolt app on uvicorn whose listener only calls ``ack()``. Both
receive the same signed ``block_actions`` payloads: ``--presses`` concurrent "Assign to me"
presses on different tickets, repeated ``--rounds`` times; each burst starts once the work of
the previous one (the card updates) is done. It prints the HTTP response time
(what Slack measures against its 3-second limit) p50/p99 for each, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import aiosmtplib
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import Server, pct  # noqa: E402
from tests.fakes import FakeSlack, RelaySink  # noqa: E402  (the same fakes the tests use)
from tests.slack_client import SECRET, SlackSender  # noqa: E402

DOMAIN = "support.example.com"

BARE_BOLT = textwrap.dedent("""
    import asyncio, socket, sys
    import uvicorn
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.routing import Route

    bolt = AsyncApp(client=AsyncWebClient(token=sys.argv[2], base_url=sys.argv[1]),
                    signing_secret=sys.argv[3])

    @bolt.action("ticket.assign_me")
    async def only_ack(ack):
        await ack()

    handler = AsyncSlackRequestHandler(bolt)

    async def events(request):
        return await handler.handle(request)

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        print(f"Web       listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
        print("Stop with", flush=True)
        app = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
        await uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).serve(sockets=[sock])

    asyncio.run(main())
""")


async def presses(sender: SlackSender, count: int, first_ticket: int) -> list[float]:
    """``count`` concurrent presses on tickets first_ticket…; milliseconds until each answer."""
    async def one(i: int) -> float:
        start = time.perf_counter()
        status, _ = await sender.button("ticket.assign_me", first_ticket + i, user="UALICE")
        if status != 200:
            raise SystemExit(f"press answered HTTP {status}")
        return (time.perf_counter() - start) * 1000

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def rounds(sender: SlackSender, *, presses_per_round: int, count: int, first: int,
                 settled: "Callable[[int], bool]") -> list[float]:
    """Separate bursts: each starts once the previous one's work is done (``settled``)."""
    timings: list[float] = []
    for r in range(count):
        timings += await presses(sender, presses_per_round, first + r * presses_per_round)
        deadline = time.monotonic() + 60
        while not settled(r + 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=50, help="concurrent presses per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    total = args.presses * args.rounds

    work = Path(tempfile.mkdtemp(prefix="deskbell-bench-"))
    slack = await FakeSlack().start()
    relay = await RelaySink().start()
    (work / "deskbell.yaml").write_text(yaml.safe_dump({
        "database": {"url": f"sqlite+aiosqlite:///{work / 'bench.db'}"},
        "smtp_in": {"listen": "127.0.0.1:0", "domains": [DOMAIN]},
        "web": {"listen": "127.0.0.1:0"},
        "email_out": {"host": "127.0.0.1", "port": relay.port, "from_address": f"support@{DOMAIN}",
                      "reply_domain": DOMAIN, "ack_rate_limit_per_hour": 0},
        "slack": {"bot_token": slack.token, "api_url": slack.url, "signing_secret": SECRET},
        "log": {"level": "WARNING"},
        "outbox": {"concurrency": int(os.environ.get("BENCH_OUTBOX_CONCURRENCY", "8"))},
    }))
    print(f"Deskbell Slack ack benchmark — {os.cpu_count()} CPUs, "
          f"{args.presses} concurrent presses × {args.rounds} rounds")

    bare = Server([sys.executable, "-c", BARE_BOLT, slack.url, slack.token, SECRET], work)
    bare_sender = SlackSender(f"http://127.0.0.1:{bare.web_port}/slack/events", slack.response_url())
    await presses(bare_sender, 5, 1)  # warm-up: imports, auth.test
    bare_ms = await rounds(bare_sender, presses_per_round=args.presses, count=args.rounds, first=1,
                           settled=lambda done: True)
    bare.stop()

    bot = Server([sys.executable, "-m", "bot", "run", "--config", str(work / "deskbell.yaml")], work)
    # One ticket per press, so every press does its real work: assign, event, card update.
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=bot.port)
    await smtp.connect()
    for n in range(total + 5):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = f"c{n}@example.net", f"help@{DOMAIN}", f"Ticket {n}"
        msg.set_content("Please help.")
        await smtp.sendmail(f"c{n}@example.net", [f"help@{DOMAIN}"], msg.as_bytes(policy=SMTP_POLICY))
    await smtp.quit()
    while len(slack.cards()) < total + 5:  # let the cards go out before measuring
        await asyncio.sleep(0.2)
    ours_sender = SlackSender(f"http://127.0.0.1:{bot.web_port}/slack/events", slack.response_url())
    await presses(ours_sender, 5, total + 1)  # warm-up on spare tickets
    while len(slack.updates()) < 5:
        await asyncio.sleep(0.05)
    ours_ms = await rounds(ours_sender, presses_per_round=args.presses, count=args.rounds, first=1,
                           settled=lambda done: len(slack.updates()) >= 5 + done * args.presses)
    deadline = time.monotonic() + 60
    while len(slack.updates()) < total + 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    updated = len(slack.updates())
    bot.stop()
    await slack.stop()
    await relay.stop()

    ratio = pct(ours_ms, 99) / pct(bare_ms, 99)
    print(f"\nAck latency (HTTP response time) over {len(ours_ms)} presses:")
    print(f"  bare bolt app (ack only): p50 {pct(bare_ms, 50):6.1f} ms   p99 {pct(bare_ms, 99):6.1f} ms")
    print(f"  deskbell                : p50 {pct(ours_ms, 50):6.1f} ms   p99 {pct(ours_ms, 99):6.1f} ms"
          f"   mean {statistics.mean(ours_ms):.1f} ms")
    print(f"  p99 ratio deskbell / bare: {ratio:.2f}   (targets: p99 < 100 ms, ratio ≤ 2.0)")
    print(f"  cards updated after the presses: {updated} of {total + 5}")


if __name__ == "__main__":
    asyncio.run(main())
