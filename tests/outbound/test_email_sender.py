"""The email sender reuses relay sessions and recovers when the relay has closed one."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from aiosmtpd.smtp import SMTP

from bot.core import intents
from bot.core.errors import DeliveryFailed, DeliveryRejected
from bot.core.views import OutboxView, OutgoingEmail, snapshot
from bot.outbound.compose import EmailComposer
from bot.outbound.email import EmailSender
from tests.outbound.test_compose import ticket

NOW = datetime(2026, 3, 3, tzinfo=timezone.utc)
MAIL = OutgoingEmail(template="ticket_opened", ticket=ticket("hi"), to_address="a@example.net",
                     to_name="A", subject="Re: hi [#7]", message_id="t7.1.abc@support.example.com",
                     reply_to="support+tok123456@support.example.com", in_reply_to=None, references=(),
                     auto_submitted="auto-replied", date=NOW)


def item(n: int) -> OutboxView:
    return OutboxView(id=n, channel="email", kind=intents.CUSTOMER_MESSAGE, ticket_number=1,
                      status="sending", attempts=1, due_at=NOW, last_error=None, remote_id=None,
                      created_at=NOW, sent_at=None,
                      payload={"from": "support@support.example.com", "to": ["a@example.net"],
                               "mail": snapshot(MAIL)})


class Relay:
    def __init__(self, *, hang_up_after_each: bool = False, answer: str = "250 2.0.0 Ok: queued as Q1") -> None:
        self.sessions = 0
        self.hang_up, self.answer = hang_up_after_each, answer

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname  # a new-style EHLO hook must record it itself
        return responses

    async def handle_DATA(self, server, session, envelope):
        if self.hang_up:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return self.answer


async def serve(handler: Relay) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="relay", loop=loop), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def sender(port: int) -> EmailSender:
    composer = EmailComposer(from_address="support@support.example.com", from_name="Support",
                             loop_marker="support.example.com")
    return EmailSender(composer=composer, host="127.0.0.1", port=port, starttls=False, username="",
                       password="", timeout=5)


async def test_sessions_are_reused_and_queue_ids_recorded():
    relay = Relay()
    server, port = await serve(relay)
    s = sender(port)
    assert [await s.send(item(n), {}) for n in range(3)] == ["Q1", "Q1", "Q1"]
    assert relay.sessions == 1
    await s.close()
    server.close()


async def test_a_session_the_relay_closed_is_replaced_without_losing_the_mail():
    relay = Relay(hang_up_after_each=True)
    server, port = await serve(relay)
    s = sender(port)
    await s.send(item(1), {})
    await asyncio.sleep(0.2)  # the relay hangs up on the pooled session
    assert await s.send(item(2), {}) == "Q1"
    assert relay.sessions == 2
    await s.close()
    server.close()


@pytest.mark.parametrize("answer, error", [("550 5.7.1 rejected", DeliveryRejected),
                                           ("451 4.3.0 try later", DeliveryFailed)])
async def test_relay_answers_become_permanent_or_temporary_failures(answer, error):
    server, port = await serve(Relay(answer=answer))
    with pytest.raises(error):
        await sender(port).send(item(1), {})
    server.close()


async def test_unreachable_relay_is_temporary():
    server, port = await serve(Relay())
    server.close()
    await server.wait_closed()
    with pytest.raises(DeliveryFailed):
        await sender(port).send(item(1), {})


async def test_the_mail_is_composed_from_the_intent_snapshot():
    relay = Relay()
    server, port = await serve(relay)
    received: list[bytes] = []
    original = relay.handle_DATA

    async def keep(server_, session, envelope):  # noqa: ANN001
        received.append(envelope.original_content)
        return await original(server_, session, envelope)

    relay.handle_DATA = keep
    s = sender(port)
    await s.send(item(1), {})
    await s.close()
    server.close()
    assert b"Message-ID: <t7.1.abc@support.example.com>" in received[0]
    assert b"ticket #7" in received[0]
