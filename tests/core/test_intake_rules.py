"""Intake rules that protect customers and third parties (DESIGN §2.5, §2.6, §3)."""

from __future__ import annotations

import asyncio

from bot.core import actions, reports
from bot.core.staff import Actor
from tests import mailfixtures as fx
from tests.conftest import DOMAIN, deliver, running
from tests.test_foundation import mail

ALICE = Actor("UALICE", "Alice Agent")


async def test_a_third_party_cannot_redirect_staff_replies(app_settings, relay):
    async with running(app_settings()) as app:
        await deliver(app, mail(message_id="<orig-1@example.net>"))
        intruder = fx.plain(from_addr="mallory@evil.example", subject="Re: Router down",
                            in_reply_to="<orig-1@example.net>",
                            extra_headers={"Reply-To": "steal@evil.example"})
        await deliver(app, intruder, mail_from="mallory@evil.example")
        shown = await reports.show_ticket(app.db, 1, now=app.clock.now())
        assert [m["sender"] for m in shown["messages"] if m["kind"] == "inbound"][-1] == "mallory@evil.example"
        await actions.reply(app.desk, actor=ALICE, number=1, text="Here is your answer.")
        messages = await relay.wait_for(2)
    assert [str(m["To"]) for m in messages] == ["Alice Example <alice@example.net>"] * 2


async def test_forged_reply_to_cannot_aim_acknowledgements_at_a_victim(app_settings, relay):
    async with running(app_settings(email_out={"ack_rate_limit_per_hour": 2})) as app:
        for n in range(5):
            spam = fx.plain(from_addr=f"spammer{n}@example.org", subject=f"Buy now {n}",
                            extra_headers={"Reply-To": "victim@example.org"})
            await deliver(app, spam, mail_from=f"spammer{n}@example.org")
        await relay.wait_for(2)
        await asyncio.sleep(0.3)
        t = await reports.show_ticket(app.db, 5, now=app.clock.now())
    assert [str(m["To"]) for m in relay.messages] == ["victim@example.org"] * 2
    assert [e["data"] for e in t["events"] if e["kind"] == "ack_suppressed"] == [{"reason": "rate limit"}]


async def test_delay_notice_is_not_a_ticket(app_settings, fake_slack):
    async with running(app_settings()) as app:
        code, _ = await deliver(app, fx.delay_warning(), mail_from="")
        assert code == 250
        assert await reports.list_tickets(app.db, now=app.clock.now()) == []
        assert (await reports.counts(app.db))["quarantine"]["held"] == 1


async def test_our_own_mail_coming_back_does_not_reopen(app_settings, relay, fake_slack):
    async with running(app_settings()) as app:
        await deliver(app, mail())
        [ack] = await relay.wait_for(1)
        await actions.close(app.desk, actor=ALICE, number=1)
        echo = fx.plain(subject=str(ack["Subject"]), in_reply_to=ack["Message-ID"],
                        extra_headers={"X-Deskbell-Loop": DOMAIN})
        await deliver(app, echo)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert t["status"] == "closed"


async def test_absurd_ticket_numbers_are_just_unknown(app_settings):
    async with running(app_settings()) as app:
        code, _ = await deliver(app, mail(subject="Re: hello [#99999999999]"))
        assert code == 250
        listed = await reports.list_tickets(app.db, now=app.clock.now())
    assert [t["number"] for t in listed] == [1]


async def test_reply_carries_the_time_it_was_sent(app_settings, relay):
    async with running(app_settings()) as app:
        await deliver(app, mail())
        await relay.wait_for(1)
        await asyncio.sleep(1.2)
        await actions.reply(app.desk, actor=ALICE, number=1, text="Answer")
        [ack, answer] = await relay.wait_for(2)
    assert (answer["Date"].datetime - ack["Date"].datetime).total_seconds() >= 1
