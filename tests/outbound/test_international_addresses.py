"""Internationalised addresses (RFC 6531/6532) end to end: a sender whose address is not ASCII
gets a ticket and a card; the acknowledgement reaches them over SMTPUTF8, or, with a relay
that cannot do that, fails once with a reason staff see on the card — never a retry loop."""

from __future__ import annotations

import asyncio
import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from bot.config import Settings
from bot.core import deliveries, reports
from tests.conftest import DOMAIN, running, settings_dict, settle, wait_until
from tests.fakes import RelaySink

ADDRESS = "jörg@bücher.example"


def international_mail() -> bytes:
    """What an RFC 6532 client sends: the address and the headers as raw UTF-8."""
    msg = EmailMessage(policy=policy.SMTPUTF8)
    msg["From"] = f"Jörg Müller <{ADDRESS}>"
    msg["To"] = f"help@{DOMAIN}"
    msg["Subject"] = "Bestellung Nr. 4711"
    msg["Message-ID"] = "<order-4711@bücher.example>"
    msg.set_content("Hallo, wo bleibt meine Bestellung?")
    return msg.as_bytes()


def send_utf8(port: int) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        return client.sendmail(ADDRESS, [f"help@{DOMAIN}"], international_mail(),
                               mail_options=["SMTPUTF8"])


@pytest.mark.parametrize("relay_utf8", [True, False], ids=["relay-with-smtputf8", "relay-without"])
async def test_non_ascii_sender_gets_a_ticket_and_an_answer_or_a_clear_failure(
        tmp_path, fake_slack, relay_utf8):
    relay = await RelaySink(smtputf8=relay_utf8).start()
    settings = Settings.model_validate(settings_dict(tmp_path, slack_url=fake_slack.url,
                                                     relay_port=relay.port))
    try:
        async with running(settings) as app:
            assert await asyncio.to_thread(send_utf8, app.listening.smtp[1]) == {}
            await settle(app)
            [ticket] = await reports.list_tickets(app.db, now=app.clock.now())
            assert ticket["requester"] == {"name": "Jörg Müller", "email": ADDRESS, "phone": None}
            await wait_until(lambda: len([c for c in fake_slack.cards()
                                          if c.args["blocks"][0]["type"] == "header"]) == 1)
            if relay_utf8:
                [(_, rcpt, raw)] = (await relay.wait_for(1), relay.sink.received)[1]
                assert rcpt == [ADDRESS]
                ack = message_from_bytes(raw, policy=policy.SMTPUTF8)
                assert ADDRESS in str(ack["To"]) and ack["Subject"] == "Re: Bestellung Nr. 4711 [#1]"
            else:
                # Given up at once (a permanent refusal), and said where staff work the ticket.
                await wait_until(lambda: any("non-ASCII address" in c.args.get("text", "")
                                             for c in fake_slack.thread_replies()))
                [item] = [i for i in await deliveries.list_items(app.db) if i.channel == "email"]
                assert (item.status, item.attempts) == ("dead", 1)
                assert "does not offer SMTPUTF8" in item.last_error
                assert relay.sink.received == []
    finally:
        await relay.stop()
