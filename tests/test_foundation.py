"""End to end: SMTP in → ticket → Slack card and acknowledgement out (issue acceptance 1–2)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

from bot.core import reports
from tests.conftest import DOMAIN, running, send_mail, wait_until


def mail(*, subject="Router down", body="My router has no internet since this morning.",
         from_addr="Alice Example <alice@example.net>", to=f"help@{DOMAIN}",
         message_id: str | None = None, in_reply_to: str | None = None,
         references: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = from_addr, to, subject
    msg["Message-ID"] = message_id or make_msgid(domain="example.net")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP)


async def test_new_mail_gives_ticket_card_and_acknowledgement(app_settings, fake_slack, relay):
    async with running(app_settings()) as app:
        code, reply = await asyncio.to_thread(send_mail, app.listening.smtp[1], mail())
        assert code == 250, reply
        assert b"ticket #1" in reply
        await wait_until(lambda: len(fake_slack.cards()) == 1)
        [ack] = await relay.wait_for(1)
    card = fake_slack.cards()[0]
    assert card.args["channel"] == "#support"
    assert card.args["blocks"][0]["text"]["text"] == "#1 Router down"
    assert ack["Subject"] == "Re: Router down [#1]"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Reply-To"].startswith("support+") and ack["Reply-To"].endswith("@" + DOMAIN)
    assert ack["Message-ID"].startswith("<t1.")
    assert ack["In-Reply-To"]


async def test_reply_to_acknowledgement_joins_ticket_in_thread(app_settings, fake_slack, relay):
    async with running(app_settings()) as app:
        port = app.listening.smtp[1]
        original_id = make_msgid(domain="example.net")
        await asyncio.to_thread(send_mail, port, mail(message_id=original_id))
        [ack] = await relay.wait_for(1)
        await wait_until(lambda: len(fake_slack.cards()) == 1)
        reply = mail(subject="Re: Router down [#1]", body="Still down, any news?",
                     to=ack["Reply-To"], in_reply_to=ack["Message-ID"],
                     references=f"{original_id} {ack['Message-ID']}")
        code, text = await asyncio.to_thread(send_mail, port, reply, rcpt=(ack["Reply-To"],))
        assert code == 250 and b"appended ticket #1" in text
        await wait_until(lambda: fake_slack.thread_replies() and fake_slack.updates())
        await asyncio.sleep(0.2)
        assert len(fake_slack.cards()) == 1
        assert len(relay.messages) == 1  # a message that joins a ticket gets no acknowledgement
        [thread] = fake_slack.thread_replies()
        assert thread.args["thread_ts"] == fake_slack.cards()[0].args.get("ts", thread.args["thread_ts"])
        listed = await reports.list_tickets(app.db, now=app.clock.now())
    assert [t["number"] for t in listed] == [1]
