"""Who a conversation belongs to, and what staff are told: forged senders cannot take a ticket
over, failing sender checks are shown, confirmations say only what is true, mail that cannot
go is trimmed or refused up front, and failures on our side are answered (issue: hostile world).
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

from sqlalchemy import select

from bot.core import reports, sender_checks
from bot.store import models as m
from tests.conftest import DOMAIN, deliver, rename_table, settle, wait_until
from tests.slack.test_interactions import customer_ticket, desk, events

FORGER = "thief@attacker.example"


def forged(*, subject: str = "Re: Router down [#1]", reply_to: str | None = FORGER,
           auth: list[str] = (), to: str = f"help@{DOMAIN}", from_addr: str = "Alice Example <alice@example.net>",
           body: str = "Please send everything to my new address.") -> bytes:
    msg = EmailMessage()
    for header in auth:  # topmost first, as MTAs prepend them
        msg["Authentication-Results"] = header
    msg["From"], msg["To"], msg["Subject"] = from_addr, to, subject
    msg["Message-ID"] = make_msgid(domain="attacker.example")
    if reply_to:
        msg["Reply-To"] = reply_to
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP)


async def ticket_row(app, number: int = 1) -> m.Ticket:
    async with app.db.reading() as s:
        return await s.get_one(m.Ticket, number)


def recipients(relay) -> list[str]:
    return [to for _, tos, _ in relay.sink.received for to in tos]


async def test_forged_sender_with_subject_tag_cannot_redirect_replies(app_settings, fake_slack, relay):
    """A forged From of the customer, the ticket's tag and its own Reply-To joins the ticket
    (the tag is weak evidence) but replies keep going to the customer; the card offers staff
    the choice, the failing DMARC verdict of our MTA is shown, and the confirmation names the
    real recipient."""
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await relay.wait_for(1)  # the acknowledgement
        code, _ = await deliver(app, forged(auth=[
            f"mx.{DOMAIN}; dmarc=fail (p=reject) header.from=example.net; spf=fail smtp.mailfrom=example.net"]))
        assert code == 250
        post = await wait_until(lambda: [c for c in fake_slack.thread_replies()
                                         if "new address" in str(c.args.get("blocks"))])
        assert "Sender checks failed (DMARC fail, SPF fail)" in str(post[0].args["blocks"])
        ticket = await ticket_row(app)
        assert ticket.reply_to is None and ticket.proposed_reply_to == FORGER
        card = await wait_until(lambda: [u for u in fake_slack.updates() if FORGER in str(u.args["blocks"])])
        buttons = [e for b in card[-1].args["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert {"ticket.use_reply_to", "ticket.keep_reply_to"} <= {e.get("action_id") for e in buttons}

        await slack.command("reply 1 Your router is fixed.", user="UALICE")
        [*_, answer] = await relay.wait_for(2)
        assert recipients(relay)[-1] == "alice@example.net" and answer["To"].addresses[0].addr_spec == \
            "alice@example.net"
        said = await wait_until(lambda: fake_slack.responses)
        assert "alice@example.net" in said[-1]["text"] and "queued" in said[-1]["text"]
        assert FORGER not in said[-1]["text"] and "sent to" not in said[-1]["text"].lower()

        # Staff accept the other address: only now does it get the replies.
        await slack.button("ticket.use_reply_to", 1, user="UALICE", value=f"1:{FORGER}")
        await wait_until(lambda: events(app, "reply_to"))
        await slack.command("reply 1 As you asked.", user="UALICE")
        await relay.wait_for(3)
        assert recipients(relay)[-1] == FORGER
    ticket = await ticket_row(app)
    assert ticket.reply_to == FORGER and ticket.proposed_reply_to is None


async def test_reply_token_from_the_customer_moves_replies_a_tag_does_not(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        [ack] = await relay.wait_for(1)
        token_address = ack["Reply-To"].addresses[0].addr_spec
        # The customer's own answer to our mail (strong evidence) with a work address.
        await deliver(app, forged(to=token_address, subject="Re: Router down", reply_to="alice@work.example"),
                      rcpt=(token_address,))
        assert (await ticket_row(app)).reply_to == "alice@work.example"
        # Someone else on the ticket's tag, asking for replies elsewhere: proposed, not taken.
        await deliver(app, forged(reply_to="alice@elsewhere.example"))
        ticket = await ticket_row(app)
        assert (ticket.reply_to, ticket.proposed_reply_to) == ("alice@work.example", "alice@elsewhere.example")
        await slack.button("ticket.keep_reply_to", 1, user="UALICE")
        await wait_until(lambda: events(app, "reply_to_declined"))
        await slack.command("reply 1 Done.", user="UALICE")
        await relay.wait_for(2)
    assert recipients(relay)[-1] == "alice@work.example"
    assert (await ticket_row(app)).proposed_reply_to is None


async def test_only_a_trusted_mta_verdict_counts(app_settings, fake_slack, relay):
    """Anyone can write Authentication-Results into their mail: a sender's own 'fail' below our
    MTA's 'pass' is not shown, nor is a forged 'pass' able to hide our MTA's 'fail'."""
    theirs = "forged.example; dmarc=fail header.from=example.net"
    ours_pass = f"mx.{DOMAIN}; dmarc=pass header.from=example.net; dkim=pass; spf=pass"
    ours_fail = f"mx.{DOMAIN}; dkim=fail; dkim=fail; spf=softfail"
    results = lambda *headers: sender_checks.failed_checks(  # noqa: E731
        [(h.split(";")[0], tuple(tuple(p.split()[0].split("=")) for p in h.split(";")[1:])) for h in headers],
        trusted_ids=trusted)
    trusted: list[str] = []
    assert results(ours_pass, theirs) is None
    assert results(ours_fail, "forged.example; spf=pass") == {"dkim": "fail", "spf": "softfail"}
    trusted = [f"mx.{DOMAIN}"]
    assert results(theirs, ours_pass) is None  # the forged one on top is not ours
    assert results("forged.example; dkim=pass", ours_fail) == {"dkim": "fail", "spf": "softfail"}
    assert results(f"mx.{DOMAIN}; dkim=fail; dkim=pass") is None  # one good signature is enough
    # A header with our id below ours is the sender's: its "pass" cannot hide our "fail".
    assert results(f"mx.{DOMAIN}; dmarc=fail; spf=fail", f"mx.{DOMAIN}; dmarc=pass; spf=pass") == \
        {"dmarc": "fail", "spf": "fail"}

    async with desk(app_settings, fake_slack, smtp_in={"authserv_ids": [f"MX.{DOMAIN}"]}) as (app, _):
        await deliver(app, forged(subject="Invoice", reply_to=None, auth=[theirs, ours_pass]))
        await deliver(app, forged(subject="Invoice 2", reply_to=None, from_addr="bob@example.org",
                                  auth=["forged.example; dmarc=pass", ours_fail]))
        await wait_until(lambda: len(fake_slack.cards()) == 2)
    first, second = (str(c.args["blocks"]) for c in fake_slack.cards())
    assert "Sender checks failed" not in first
    assert "Sender checks failed (DKIM fail, SPF softfail)" in second
    t = await reports.show_ticket(app.db, 2, now=app.clock.now())
    async with app.db.reading() as s:
        stored = await s.scalar(select(m.Message.authentication).where(m.Message.ticket_id == 2))
    assert stored == {"dkim": "fail", "spf": "softfail"} and t["number"] == 2


async def test_thread_says_queued_then_what_the_relay_did(app_settings, fake_slack, relay):
    """A reply is "queued" when staff submit it; the thread post changes to accepted when the
    relay takes it, or to not delivered when the relay refuses it for good."""
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await relay.wait_for(1)
        await slack.command("reply 1 First answer.", user="UALICE")
        post = await wait_until(lambda: [c for c in fake_slack.thread_replies()
                                         if "First answer." in str(c.args["blocks"])])
        assert "⏳ Queued for alice@example.net" in str(post[0].args["blocks"])
        updated = await wait_until(lambda: [u for u in fake_slack.updates() if u.args["ts"] == post[0].ts])
        assert "✅ Accepted by the mail server for alice@example.net" in str(updated[-1].args["blocks"])

        relay.sink.refuse = "550 5.1.1 mailbox unavailable"
        await slack.command("reply 1 Second answer.", user="UALICE")
        post = await wait_until(lambda: [c for c in fake_slack.thread_replies()
                                         if "Second answer." in str(c.args["blocks"])])
        updated = await wait_until(lambda: [u for u in fake_slack.updates() if u.args["ts"] == post[0].ts])
        assert "⚠️ Not delivered to alice@example.net" in str(updated[-1].args["blocks"])
        await wait_until(lambda: any("was not delivered" in str(c.args) for c in fake_slack.thread_replies()))


async def test_long_history_is_trimmed_to_fit_and_a_too_long_reply_is_refused_up_front(
        app_settings, fake_slack, relay):
    limit = 60_000
    async with desk(app_settings, fake_slack, email_out={"max_message_bytes": limit}) as (app, slack):
        await customer_ticket(app, fake_slack, body="OLDEST " + "a" * 12_000)
        for n in range(3):
            await deliver(app, forged(reply_to=None, body=f"NEWER{n} " + "b" * 12_000))
        await relay.wait_for(1)
        await slack.command("reply 1 Here is the fix.", user="UALICE")
        [*_, answer] = await relay.wait_for(2)
        raw = relay.sink.received[-1][2]
        assert len(raw) <= limit
        text = answer.get_body(("plain",)).get_content()
        assert "Here is the fix." in text and "NEWER2" in text and "OLDEST" not in text

        await slack.command("reply 1 " + "x" * limit, user="UALICE")
        said = await wait_until(lambda: [r for r in fake_slack.responses if "too long" in r["text"]])
        assert "shorten it" in said[-1]["text"]
        await asyncio.sleep(0.3)
        assert len(relay.sink.received) == 2
    async with app.db.reading() as s:
        dead = (await s.scalars(select(m.OutboxItem).where(m.OutboxItem.status == "dead"))).all()
    assert dead == []


async def test_slash_command_that_breaks_on_our_side_is_answered(app_settings, fake_slack, relay, tmp_path):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await rename_table(tmp_path / "deskbell.db", "tickets", "tickets_away")
        try:
            status, _ = await slack.command("priority 1 2", user="UALICE")
            assert status == 200
            said = await wait_until(lambda: fake_slack.responses)
        finally:
            await rename_table(tmp_path / "deskbell.db", "tickets_away", "tickets")
    assert "did not work on our side" in said[-1]["text"]


async def test_linking_needs_permission_on_both_tickets(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)  # #1 in support (UALICE and UBOB)
        await deliver(app, forged(subject="Quote please", reply_to=None, to=f"sales@{DOMAIN}"),
                      rcpt=(f"sales@{DOMAIN}",))  # #2 in sales (UBOB only)
        await slack.command("link 1 2", user="UALICE")
        said = await wait_until(lambda: fake_slack.responses)
        assert "only members of the sales group" in said[-1]["text"]
        assert await events(app, "link") == []
        await slack.command("link 1 2", user="UBOB")
        await wait_until(lambda: events(app, "link"))


async def test_ticket_created_is_logged_once_and_only_after_commit(app_settings, fake_slack, relay,
                                                                   tmp_path, caplog):
    """A batch that rolls back created nothing, so the log must not say it did."""
    caplog.set_level(logging.INFO, logger="bot.core.intake")
    async with desk(app_settings, fake_slack) as (app, _):
        await rename_table(tmp_path / "deskbell.db", "outbox", "outbox_away")
        await asyncio.to_thread(__import__("tests.conftest", fromlist=["send_mail"]).send_mail,
                                app.listening.smtp[1], forged(subject="Hello", reply_to=None))
        await wait_until(lambda: any("failed" in r.getMessage() or "retry" in r.getMessage()
                                     for r in caplog.records if r.name.startswith("bot.")), timeout=10)
        await rename_table(tmp_path / "deskbell.db", "outbox_away", "outbox")
        await settle(app, timeout=30)
    created = [r for r in caplog.records if r.getMessage().startswith("ticket created")]
    tickets = await reports.list_tickets(app.db, now=app.clock.now())
    assert len(created) == len(tickets) <= 1
