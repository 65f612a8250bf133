"""The real ``deskbell`` process: start on defaults, queue without Slack, survive SIGKILL.

Acceptance 1 and 3 of the foundation: what an operator does from the README, and the
"durable before 250" invariant (DESIGN §2.1) with the process killed mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path

import yaml

from bot.config import Settings
from bot.core import deliveries, reports, spool
from bot.store.db import Database
from tests.conftest import DOMAIN, settings_dict, wait_until

SMTP_LINE = re.compile(rb"SMTP\s+listening on 127\.0\.0\.1:(\d+)")


class BotProcess:
    def __init__(self, config: Path, cwd: Path, role: str = "run") -> None:
        self.config, self.cwd, self.role = config, cwd, role
        self.proc: subprocess.Popen[bytes] | None = None
        self.smtp_port = 0
        self.stdout = b""

    def start(self, timeout: float = 30) -> "BotProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", self.role, "--config", str(self.config)],
                                     cwd=self.cwd, stdout=subprocess.PIPE,
                                     stderr=open(self.cwd / "stderr.log", "ab"), env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"deskbell exited {self.proc.returncode}: "
                                     f"{(self.cwd / 'stderr.log').read_text()[-3000:]}")
            self.stdout += line
            match = SMTP_LINE.search(line)
            if match:
                self.smtp_port = int(match.group(1))
            if b"Stop with" in line:
                return self
        raise AssertionError("deskbell did not print its start-up summary in time")

    def terminate(self, timeout: float = 12) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def write_config(tmp_path: Path, **kwargs) -> Path:
    path = tmp_path / "deskbell.yaml"
    path.write_text(yaml.safe_dump(settings_dict(tmp_path, **kwargs)))
    return path


def message(n: int) -> tuple[str, bytes]:
    """(subject, raw) of the n-th customer's first mail."""
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.net>"
    msg["To"] = f"help@{DOMAIN}"
    msg["Subject"] = subject = f"Problem number {n}"
    msg["Message-ID"] = make_msgid(idstring=f"n{n}", domain="example.net")
    msg.set_content(f"Message body {n}\n")
    return subject, msg.as_bytes(policy=SMTP)


async def test_starts_on_defaults_queues_cards_without_slack_then_posts(tmp_path, fake_slack, relay):
    # No Slack token, and on SQLite no database file yet: the first start makes it.
    config = write_config(tmp_path, relay_port=relay.port, migrated=False)
    bot = BotProcess(config, tmp_path).start()
    assert b"Slack     off" in bot.stdout and b"cards are queued" in bot.stdout
    _, raw = message(1)

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", bot.smtp_port, timeout=30) as client:
            client.sendmail("customer1@example.net", [f"help@{DOMAIN}"], raw)

    await asyncio.to_thread(send)
    listed = await asyncio.to_thread(cli, "tickets", "list", "--config", str(config), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^\s+1\s+new\s+", listed.stdout, re.M), listed.stdout
    assert "Problem number 1" in listed.stdout
    pending = json.loads((await asyncio.to_thread(
        cli, "outbox", "list", "--json", "--config", str(config), cwd=tmp_path)).stdout)
    assert [i["status"] for i in pending if i["channel"] == "slack"] == ["pending"]
    assert await asyncio.to_thread(bot.terminate) == 0

    config = write_config(tmp_path, relay_port=relay.port, slack_url=fake_slack.url)
    bot = BotProcess(config, tmp_path).start()
    try:
        await wait_until(lambda: len(fake_slack.cards()) == 1, timeout=15)
        assert fake_slack.cards()[0].args["blocks"][0]["text"]["text"] == "#1 Problem number 1"
    finally:
        assert await asyncio.to_thread(bot.terminate) == 0


def stream(port: int, accepted: list[tuple[str, bytes]], *, first: int, clients: int = 8,
           total: int = 1000) -> None:
    """``clients`` MTAs, each on one reused connection, until the messages run out or the
    server goes away; every message answered 250 lands in ``accepted``."""
    per_client = total // clients

    def client(c: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
                for i in range(per_client):
                    subject, raw = message(first + c * per_client + i)
                    conn.sendmail(f"customer{c}@example.net", [f"help@{DOMAIN}"], raw)
                    accepted.append((subject, raw))
        except (smtplib.SMTPException, OSError):
            return

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def resend(port: int, messages: list[tuple[str, bytes]]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
        for _, raw in messages:
            conn.sendmail("customer@example.net", [f"help@{DOMAIN}"], raw)


async def check_each_accepted_once(config: Path, tmp_path: Path, fake_slack,  # noqa: ANN001
                                   accepted: list[tuple[str, bytes]]) -> None:
    """Restart and let everything settle: each accepted message is one ticket with one card.
    The last ones are sent again first, as an MTA does when the kill cost it our 250."""
    bot = BotProcess(config, tmp_path).start()
    await asyncio.to_thread(resend, bot.smtp_port, accepted[-20:])
    db = Database(Settings.model_validate(yaml.safe_load(config.read_text())).database.url)
    try:
        async def settled() -> bool:
            if await spool.pending_count(db):
                return False
            items = await deliveries.list_items(db, limit=100_000)
            return all(i.status == "sent" for i in items if i.channel == "slack")
        await wait_until(settled, timeout=120, interval=0.25)
        tickets = await reports.list_tickets(db, now=datetime.now(timezone.utc), limit=100_000)
    finally:
        await db.dispose()
        assert await asyncio.to_thread(bot.terminate) == 0
    subjects = [t["subject"] for t in tickets]
    assert len(subjects) == len(set(subjects)), "a message became two tickets"
    missing = {subject for subject, _ in accepted} - set(subjects)
    assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
    headers = [c.args["blocks"][0]["text"]["text"] for c in fake_slack.cards()]
    assert len(headers) == len(set(headers)), "a card was posted twice"
    assert {f"#{t['number']}" for t in tickets} == {h.split()[0] for h in headers}


async def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path, fake_slack, relay):
    """DESIGN §2.1 with 8 MTAs streaming 1,000 messages into `deskbell run`, killed with -9."""
    config = write_config(tmp_path, relay_port=relay.port, slack_url=fake_slack.url)
    bot = BotProcess(config, tmp_path).start()
    accepted: list[tuple[str, bytes]] = []
    sender = asyncio.create_task(asyncio.to_thread(stream, bot.smtp_port, accepted, first=0))
    await wait_until(lambda: len(accepted) >= 300, timeout=60)
    bot.kill()
    await sender
    assert 300 <= len(accepted) < 1000, "the kill must land mid-stream"
    await check_each_accepted_once(config, tmp_path, fake_slack, accepted)


async def test_sigkill_of_separate_door_and_worker_loses_nothing(tmp_path, fake_slack, relay):
    """The Procfile roles: the worker is killed mid-stream, then the door; nothing is lost."""
    config = write_config(tmp_path, relay_port=relay.port, slack_url=fake_slack.url)
    smtp = BotProcess(config, tmp_path, role="smtp").start()
    worker = BotProcess(config, tmp_path, role="worker").start()
    accepted: list[tuple[str, bytes]] = []
    sender = asyncio.create_task(asyncio.to_thread(stream, smtp.smtp_port, accepted, first=0))
    await wait_until(lambda: len(accepted) >= 200, timeout=60)
    worker.kill()
    await wait_until(lambda: len(accepted) >= 400, timeout=60)
    smtp.kill()
    await sender
    assert 400 <= len(accepted) < 1000, "the kills must land mid-stream"
    await check_each_accepted_once(config, tmp_path, fake_slack, accepted)


async def test_procfile_roles_share_one_database(tmp_path, fake_slack, relay):
    """`deskbell smtp` and `deskbell worker` as separate processes (the Procfile) on SQLite."""
    config = write_config(tmp_path, relay_port=relay.port, slack_url=fake_slack.url)
    smtp = BotProcess(config, tmp_path, role="smtp").start()
    worker = BotProcess(config, tmp_path, role="worker").start()
    try:
        for n in range(3):
            _, raw = message(n)
            await asyncio.to_thread(_send, smtp.smtp_port, raw)
        # The worker is not woken by the other process's commits; it finds them on its next look.
        await wait_until(lambda: len(fake_slack.cards()) == 3, timeout=20)
        await relay.wait_for(3, timeout=20)
    finally:
        assert await asyncio.to_thread(smtp.terminate) == 0
        assert await asyncio.to_thread(worker.terminate) == 0
    assert sorted(c.args["blocks"][0]["text"]["text"] for c in fake_slack.cards()) == [
        f"#{n + 1} Problem number {n}" for n in range(3)]


def _send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("customer@example.net", [f"help@{DOMAIN}"], raw)
