"""DESIGN §2.1: one sender's messages are ingested in the order they arrived, whatever the
batching of the spool and the intake worker."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage

import aiosmtplib

from bot.core import reports
from bot.inbound import pipeline
from tests.conftest import DOMAIN, running, settle, wait_until
from tests.test_foundation import mail

# Customers, written for by 40 clients at once: a backlog of 240 first and second messages,
# several of the intake worker's batches, with pairs inside one batch and pairs split across two.
REPETITIONS = 120


async def test_back_to_back_messages_of_one_sender_end_on_one_ticket_in_order(app_settings, relay):
    """Each customer writes, adds a follow-up the moment the first is accepted (it answers the
    first), then replies to our acknowledgement: three messages, one ticket, in that order.
    The first two arrive while intake is behind (the door runs alone), so the worker meets
    them in big batches, pairs side by side; the third arrives live."""
    # 40 clients at once from one address: more than the default per-client cap.
    settings = app_settings(email_out={"ack_rate_limit_per_hour": 0, "ack_rate_limit_per_domain_per_hour": 0},
                            smtp_in={"max_sessions_per_client": 40})

    async def send(port: int, address: str, raw: bytes, to: str = f"help@{DOMAIN}") -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await smtp.connect()
        await smtp.sendmail(address, [to], raw)
        await smtp.quit()

    assert REPETITIONS % 40 == 0 and 2 * REPETITIONS > 3 * pipeline.BATCH
    async with running(settings, roles=("smtp",)) as door:
        port = door.listening.smtp[1]

        async def write_twice(n: int) -> None:
            address, first_id = f"customer{n}@example.net", f"<first.{n}@example.net>"
            await send(port, address, mail(from_addr=address, subject=f"Problem {n}",
                                           body=f"first {n}", message_id=first_id))
            await send(port, address, mail(from_addr=address, subject=f"Re: Problem {n}",
                                           body=f"second {n}", in_reply_to=first_id))

        for start in range(0, REPETITIONS, 40):
            await asyncio.gather(*(write_twice(n) for n in range(start, start + 40)))

    async with running(settings) as app:
        port = app.listening.smtp[1]
        acks: dict[str, EmailMessage] = {}

        def ack_for(address: str) -> EmailMessage | None:
            with relay.sink.lock:
                fresh = relay.sink.received[len(acks):]
            for _, rcpt, raw in fresh:
                acks[rcpt[0]] = message_from_bytes(raw, policy=policy.default)
            return acks.get(address)

        async def reply_to_ack(n: int) -> None:
            address = f"customer{n}@example.net"
            ack = await wait_until(lambda: ack_for(address), timeout=60)
            await send(port, address, mail(from_addr=address, to=str(ack["Reply-To"]),
                                           subject=str(ack["Subject"]), body=f"third {n}",
                                           in_reply_to=ack["Message-ID"]), to=str(ack["Reply-To"]))

        await asyncio.gather(*(reply_to_ack(n) for n in range(REPETITIONS)))
        await settle(app, timeout=60)
        tickets = await reports.list_tickets(app.db, now=app.clock.now(), limit=10 * REPETITIONS)
        assert len(tickets) == REPETITIONS, "a follow-up opened a ticket of its own"
        for t in tickets:
            shown = await reports.show_ticket(app.db, t["number"], now=app.clock.now())
            n = t["subject"].split()[-1]
            bodies = [m["body"] for m in shown["messages"] if m["kind"] == "inbound"]
            assert bodies == [f"first {n}", f"second {n}", f"third {n}"], (t["number"], bodies)
