"""End to end: SMTP in → ticket → Slack card and acknowledgement out (issue acceptance 1–2)."""

from __future__ import annotations

import asyncio
import re
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
        assert re.fullmatch(rb"2\.0\.0 Ok: queued as [0-9a-f]{16}", reply), reply
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


async def test_each_follow_up_is_threaded_under_its_own_tickets_card(app_settings, fake_slack, relay):
    """Two customers, two tickets, two cards: each follow-up goes in the thread of its ticket's card."""
    customers = {1: ("Alice Example <alice@example.net>", "alice@example.net", "Router down",
                     "Still down, any news?"),
                 2: ("Bob Example <bob@example.org>", "bob@example.org", "Printer jammed",
                     "The printer is still jammed.")}
    async with running(app_settings()) as app:
        port = app.listening.smtp[1]
        first_ids, acks = {}, {}
        for number, (from_addr, address, subject, _) in customers.items():
            first_ids[number] = make_msgid(domain=address.split("@")[1])
            code, text = await asyncio.to_thread(
                send_mail, port, mail(subject=subject, from_addr=from_addr, message_id=first_ids[number]),
                mail_from=address)
            assert code == 250, text
            await wait_until(lambda: len(fake_slack.cards()) == number)
            acks[number] = (await relay.wait_for(number))[number - 1]
            assert acks[number]["Subject"] == f"Re: {subject} [#{number}]"
        # The newer ticket's customer writes back first: neither "the first card" nor "the
        # latest card" is the right answer for both follow-ups.
        for number in (2, 1):
            from_addr, address, subject, follow_up = customers[number]
            ack = acks[number]
            reply = mail(subject=f"Re: {subject} [#{number}]", body=follow_up, from_addr=from_addr,
                         to=ack["Reply-To"], in_reply_to=ack["Message-ID"],
                         references=f"{first_ids[number]} {ack['Message-ID']}")
            code, text = await asyncio.to_thread(send_mail, port, reply, mail_from=address,
                                                 rcpt=(ack["Reply-To"],))
            assert code == 250, text
        await wait_until(lambda: len(fake_slack.thread_replies()) == 2 and len(fake_slack.updates()) >= 2)
        await asyncio.sleep(0.2)
        assert len(relay.messages) == 2  # a message that joins a ticket gets no acknowledgement
        listed = await reports.list_tickets(app.db, now=app.clock.now())
        shown = {n: await reports.show_ticket(app.db, n, now=app.clock.now()) for n in customers}
    assert sorted(t["number"] for t in listed) == [1, 2]
    for number, (_, _, _, follow_up) in customers.items():  # each follow-up joined its own ticket
        inbound = [msg["body"] for msg in shown[number]["messages"] if msg["kind"] == "inbound"]
        assert len(inbound) == 2 and follow_up in inbound[1], inbound
    assert not [c for c in fake_slack.calls if c.method.startswith("chat.") and not c.ok]
    cards = {int(c.args["blocks"][0]["text"]["text"].split()[0][1:]): c for c in fake_slack.cards()}
    assert sorted(cards) == [1, 2] and len(fake_slack.cards()) == 2
    assert cards[1].ts != cards[2].ts
    replies = {}
    for number, (_, _, _, follow_up) in customers.items():
        [replies[number]] = [c for c in fake_slack.thread_replies() if c.args["text"].startswith(f"#{number}:")]
        assert follow_up in str(replies[number].args["blocks"])
    # Each follow-up names the channel and ts Slack answered for its own ticket's card.
    assert {n: (r.channel, r.args["thread_ts"]) for n, r in replies.items()} == \
        {n: ("C0SUPPORT", c.ts) for n, c in cards.items()}
    for number, card in cards.items():
        assert card.channel == "C0SUPPORT"
        assert fake_slack.card_of(replies[number]) is card
        assert fake_slack.thread_of(card) == [replies[number]]
    # And each card refresh edits that ticket's own card.
    for update in fake_slack.updates():
        number = int(update.args["blocks"][0]["text"]["text"].split()[0][1:])
        assert (update.channel, update.args["ts"]) == (cards[number].channel, cards[number].ts)
