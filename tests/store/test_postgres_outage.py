"""PostgreSQL goes away for a while and comes back: the doors answer 4xx meanwhile (the sender
keeps the mail and retries), readiness is false, and afterwards everything accepted is ingested
and delivered without restarting any process."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from pathlib import Path

import aiohttp

from bot.core import reports
from bot.store import migrate
from bot.store.db import Database
from tests.conftest import running, send_mail, wait_until
from tests.pg import _as_user, _binary, pg_databases, pg_url, postgres_server, psql  # noqa: F401  (fixtures)
from tests.test_foundation import mail

OUTAGE_SECONDS = 20  # as long as the issue asks: connections and pools must outlive it


def stop_server(url: str) -> tuple[str, list[str]]:
    """Stop the server behind ``url``; returns its data directory and start options."""
    data = psql(url, "SHOW data_directory").strip()
    opts = shlex.split((Path(data) / "postmaster.opts").read_text())
    options = opts[1:]
    if "-D" in options:  # pg_ctl gives the data directory itself
        at = options.index("-D")
        del options[at:at + 2]
    subprocess.run(_as_user([_binary("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"]),
                   check=True, capture_output=True)
    return data, options


def start_server(data: str, options: list[str]) -> None:
    subprocess.run(_as_user([_binary("pg_ctl"), "-D", data, "-o", shlex.join(options), "-w",
                             "-l", str(Path(data).parent / "log"), "start"]),
                   check=True, capture_output=True)


async def test_a_postgresql_outage_costs_retries_not_mail_nor_a_restart(app_settings, fake_slack, relay,
                                                                        pg_url, postgres_server):  # noqa: F811
    db = Database(pg_url)
    await migrate.upgrade(db)
    await db.dispose()
    settings = app_settings(database={"url": pg_url})
    async with running(settings) as app:
        port = app.listening.smtp[1]
        web = f"http://127.0.0.1:{app.listening.web[1]}"
        assert (await asyncio.to_thread(send_mail, port, mail(subject="Before")))[0] == 250
        await wait_until(lambda: len(fake_slack.cards()) == 1, timeout=10)

        data, options = await asyncio.to_thread(stop_server, postgres_server)
        try:
            code, reply = await asyncio.to_thread(send_mail, port, mail(subject="During"))
            assert code == 451 and reply.startswith(b"4.3.0"), (code, reply)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{web}/readyz") as answer:
                    assert answer.status == 503
            await asyncio.sleep(OUTAGE_SECONDS)
        finally:
            await asyncio.to_thread(start_server, data, options)

        # The sender retries, as an MTA would; the same processes carry on.
        async def retried() -> bool:
            code, _ = await asyncio.to_thread(send_mail, port, mail(subject="During"))
            return code == 250
        await wait_until(retried, timeout=30, interval=0.5)
        assert (await asyncio.to_thread(send_mail, port, mail(subject="After")))[0] == 250
        await wait_until(lambda: len(fake_slack.cards()) == 3, timeout=30)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{web}/readyz") as answer:
                assert answer.status == 200
        tickets = await reports.list_tickets(app.db, now=app.clock.now())
    assert sorted(t["subject"] for t in tickets) == ["After", "Before", "During"]
    assert [t["number"] for t in sorted(tickets, key=lambda t: t["number"])] == [1, 2, 3]
