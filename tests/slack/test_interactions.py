"""Staff work a ticket entirely from Slack: signed interactions in, outbox rows and mail out."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from email.utils import make_msgid

import pytest
from sqlalchemy import func, select

from bot.core import intents, reports
from bot.store import models as m
from tests.conftest import DOMAIN, rename_table, running, send_mail, wait_until
from tests.slack_client import SECRET, SlackSender, sign
from tests.test_foundation import mail

HOSTILE = "<!channel> *pwned* <@U0ADMIN> & <https://evil.example|login>"


@asynccontextmanager
async def desk(app_settings, fake_slack, *, support_members=("UALICE", "UBOB"), **overrides):
    settings = app_settings(
        slack={"signing_secret": SECRET, "admins": ["UADMIN"]},
        handler_groups=[
            {"name": "support", "slack_channel": "#support", "email_addresses": [f"help@{DOMAIN}"],
             "members": list(support_members)},
            {"name": "sales", "slack_channel": "#sales", "email_addresses": [f"sales@{DOMAIN}"],
             "members": ["UBOB"]}],
        categories=[{"name": "Billing", "handler_group": "support", "types": [{"name": "Refund"}]}],
        canned_responses=[{"name": "Restart", "text": "Please restart the router."}],
        **overrides)
    async with running(settings) as app:
        host, port = app.listening.web
        yield app, SlackSender(f"http://{host}:{port}/slack/events", fake_slack.response_url())


async def customer_ticket(app, fake_slack, *, subject="Router down", body="No internet since 8am.",
                          message_id=None) -> str:
    message_id = message_id or make_msgid(domain="example.net")
    cards = len(fake_slack.cards())
    code, _ = await asyncio.to_thread(send_mail, app.listening.smtp[1],
                                      mail(subject=subject, body=body, message_id=message_id))
    assert code == 250
    await wait_until(lambda: len(fake_slack.cards()) > cards)  # this ticket's card, not an earlier one
    # … and recorded as delivered: a message in its thread is matched to the ticket by it.
    await wait_until(lambda: _cards_delivered(app, cards + 1))
    return message_id


async def _cards_delivered(app, count: int) -> bool:
    async with app.db.reading() as s:
        return await s.scalar(select(func.count()).select_from(m.OutboxItem).where(
            m.OutboxItem.kind == intents.CARD, m.OutboxItem.remote_id.is_not(None))) >= count


async def events(app, kind: str | None = None) -> list[m.Event]:
    async with app.db.reading() as s:
        query = select(m.Event).order_by(m.Event.id)
        if kind:
            query = query.where(m.Event.kind == kind)
        return list((await s.scalars(query)).all())


async def test_reply_modal_sends_one_threaded_email_and_updates_the_card(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        original_id = await customer_ticket(app, fake_slack)
        await relay.wait_for(1)  # the acknowledgement
        status, _ = await slack.button("ticket.reply", 1, user="UALICE")
        assert status == 200
        await wait_until(lambda: fake_slack.views_opened)
        modal = fake_slack.views_opened[-1]
        assert modal["callback_id"] == "reply" and modal["notify_on_close"] is True
        assert "No internet since 8am." in str(modal["blocks"])  # the customer's last message
        await wait_until(lambda: any("Alice Agent is replying" in str(u.args) for u in fake_slack.updates()))
        await slack.button("reply.canned", 1, user="UALICE", option="0", view=modal)
        await wait_until(lambda: len(fake_slack.views_opened) == 2)
        modal = fake_slack.views_opened[-1]
        text_block = next(b for b in modal["blocks"] if b.get("block_id", "").startswith("text."))
        assert text_block["element"]["initial_value"] == "Please restart the router."
        status, _ = await slack.submit(modal, {text_block["block_id"]: "Please restart the router.",
                                               "status_after": {"option": "waiting"}}, user="UALICE")
        assert status == 200
        [ack, answer] = await relay.wait_for(2)
        await wait_until(lambda: any("replied to the customer" in c.args.get("text", "")
                                     for c in fake_slack.thread_replies()))
        # The card update follows the thread post in the outbox (same ticket, later id): the
        # post being there does not mean the update has been sent yet.
        card_ts = fake_slack.cards()[0].ts
        await wait_until(lambda: "Waiting on customer" in str(
            [u for u in fake_slack.updates() if u.args["ts"] == card_ts][-1].args["blocks"]))
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert answer["Subject"] == "Re: Router down [#1]"
    assert answer["In-Reply-To"] == original_id
    assert original_id in answer["References"] and ack["Message-ID"] in answer["References"]
    assert answer["From"].addresses[0].display_name == "Alice Agent (support)"
    assert answer["Reply-To"] == ack["Reply-To"] and "Auto-Submitted" not in answer
    assert "Please restart the router." in answer.get_body(("plain",)).get_content()
    assert "> No internet since 8am." in answer.get_body(("plain",)).get_content()  # history quoted
    assert t["status"] == "waiting"
    reply_events = [e for e in t["events"] if e["kind"] == "reply"]
    assert [e["actor"] for e in reply_events] == ["staff:UALICE"]
    card_update = [u for u in fake_slack.updates() if u.args["ts"] == card_ts][-1].args
    assert "Waiting on customer" in str(card_update["blocks"]) and "is replying" not in str(card_update)


async def test_same_submission_delivered_twice_sends_one_email(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await relay.wait_for(1)
        await slack.button("ticket.reply", 1, user="UALICE")
        await wait_until(lambda: fake_slack.views_opened)
        modal = fake_slack.views_opened[-1]
        values = {"text.0": "Once only.", "status_after": {"option": "waiting"}}
        await slack.submit(modal, values, user="UALICE")
        await slack.submit(modal, values, user="UALICE", headers={"X-Slack-Retry-Num": "1"})
        await relay.wait_for(2)
        await asyncio.sleep(0.5)
        assert len(relay.messages) == 2  # the acknowledgement and one reply
        assert len(await events(app, "reply")) == 1
        action_ts = "1700000000.555"
        await slack.button("ticket.close", 1, user="UALICE", action_ts=action_ts)
        await slack.button("ticket.close", 1, user="UALICE", action_ts=action_ts)
        await wait_until(lambda: len(relay.sink.received) == 3)
        await asyncio.sleep(0.5)
        assert len(await events(app, "status")) == 2  # → waiting (reply), → closed
        assert len(relay.messages) == 3  # one close confirmation


async def test_two_people_press_assign_to_me_at_once(app_settings, fake_slack):
    # A group with no members listed: its tickets arrive unassigned, open to all staff.
    async with desk(app_settings, fake_slack, support_members=()) as (app, slack):
        await customer_ticket(app, fake_slack)
        await asyncio.gather(slack.button("ticket.assign_me", 1, user="UALICE"),
                             slack.button("ticket.assign_me", 1, user="UBOB"))
        await wait_until(lambda: fake_slack.ephemerals)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        [loser_note] = fake_slack.ephemerals
    winner = t["assignee"]
    assert winner in ("UALICE", "UBOB")
    assert loser_note["user"] == ({"UALICE", "UBOB"} - {winner}).pop()
    winner_name = {"UALICE": "Alice Agent", "UBOB": "Bob Agent"}[winner]
    assert f"already assigned to {winner_name}" in loser_note["text"]
    assert len([e for e in t["events"] if e["kind"] == "assignee"]) == 1


@pytest.mark.parametrize("how", ["bad", "stale", "missing"])
async def test_bad_or_stale_signature_is_refused_and_writes_nothing(app_settings, fake_slack, how):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        before = len(await events(app))
        body = b"command=%2Fticket&text=close+1&user_id=UALICE&team_id=T0EXAMPLE&trigger_id=t1"
        signature = {"bad": sign(body, secret="wrong-secret"),
                     "stale": sign(body, timestamp=int(time.time()) - 6 * 60),
                     "missing": {}}[how]
        status, _ = await slack.post(body, "application/x-www-form-urlencoded", signature=signature)
        await asyncio.sleep(0.3)
        assert status in (401, 403)
        assert len(await events(app)) == before
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert t["status"] == "new"


async def test_staff_message_in_the_card_thread_is_a_note_never_mailed(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await relay.wait_for(1)
        card = fake_slack.cards()[0]
        channel, ts = "C0SUPPORT", fake_slack.messages["C0SUPPORT"][0]["ts"]
        event = {"type": "message", "channel": channel, "user": "UBOB", "text": "Checked the line: OK",
                 "ts": "1700000099.000100", "thread_ts": ts}
        await slack.event(event, event_id="Ev1")
        await slack.event(event, event_id="Ev1", headers={"X-Slack-Retry-Num": "1"})
        await wait_until(lambda: fake_slack.updates())
        await asyncio.sleep(0.5)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert card.args["channel"] == "#support"
    notes = [msg for msg in t["messages"] if msg["kind"] == "note"]
    assert [n["body"] for n in notes] == ["Checked the line: OK"]
    assert len(relay.messages) == 1  # only the acknowledgement ever reached the customer


async def test_outsider_is_refused_except_close_when_everyone_may_close(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await slack.command("priority 1 1", user="UCAROL")
        await wait_until(lambda: fake_slack.responses)
        assert "only members of the support group" in fake_slack.responses[-1]["text"]
        await slack.command("show 1", user="UCAROL")
        await wait_until(lambda: len(fake_slack.responses) == 2)
        assert "only members of the support group can see" in fake_slack.responses[-1]["text"]
        await slack.command("list", user="UCAROL")
        await wait_until(lambda: len(fake_slack.responses) == 3)
        assert fake_slack.responses[-1]["text"] == "No tickets."
        await slack.command("close 1", user="UCAROL")
        await wait_until(lambda: len(fake_slack.responses) == 4)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert t["priority"] == 3 and t["status"] == "closed"
    assert [e["actor"] for e in t["events"] if e["kind"] == "status"] == ["staff:UCAROL"]


async def test_outsider_cannot_close_when_only_members_may(app_settings, fake_slack):
    async with desk(app_settings, fake_slack, tickets={"all_users_can_close": False}) as (app, slack):
        await customer_ticket(app, fake_slack)
        await slack.button("ticket.close", 1, user="UCAROL")
        await wait_until(lambda: fake_slack.ephemerals)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert "only members of the support group can close" in fake_slack.ephemerals[0]["text"]
    assert t["status"] == "new"


async def test_slash_commands_change_the_ticket_and_explain_mistakes(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await customer_ticket(app, fake_slack, subject="Second")
        script = [
            ("priority 1 2", "priority set to P2"),
            ("priority 1 9", "priority must be 1 (highest) to 5, got 9"),
            ("status 1 on_hold", "is now on_hold"),
            ("status 1 sleeping", "unknown status 'sleeping'"),
            ("assign 1 <@UBOB|bob>", "assigned to Bob Agent"),
            ("link 1 2", "#1 linked to #2"),
            ("note 1 called the customer", "Note added"),
            ("show 99", "there is no ticket #99"),
            ("transfer 1 sales", "a transfer needs a note"),
            ("transfer 1 nowhere why not", "unknown group 'nowhere'"),
            ("transfer 1 sales upsell: wants the 1 Gbit plan", "transferred to sales"),
            ("list group sales", "#1"),
            ("reopen 1", "is not closed"),
            ("frobnicate", "Unknown command"),
            ("help", "/ticket"),
        ]
        for n, (text, expected) in enumerate(script, start=1):
            await slack.command(text, user="UBOB")
            await wait_until(lambda: len(fake_slack.responses) >= n)
            assert expected in fake_slack.responses[n - 1]["text"], (text, fake_slack.responses[n - 1])
            assert fake_slack.responses[n - 1]["response_type"] == "ephemeral"
        await wait_until(lambda: len(fake_slack.cards()) == 3)  # two tickets + the transferred card
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert (t["priority"], t["status"], t["group"], t["assignee"]) == (2, "on_hold", "sales", "UBOB")
    new_card = fake_slack.cards()[-1].args
    assert new_card["channel"] == "#sales"
    old_card = [u for u in fake_slack.updates() if "Transferred to sales" in str(u.args)]
    assert old_card and old_card[-1].args["channel"] == "C0SUPPORT"
    new_ts = fake_slack.messages["C0SALES"][0]["ts"]
    assert f"https://slack.com/archives/C0SALES/p{new_ts.replace('.', '')}" in str(old_card[-1].args)
    kinds = [e["kind"] for e in t["events"]]
    for kind in ("priority", "status", "assignee", "link", "note", "transfer"):
        assert kind in kinds


async def test_second_writer_is_warned_and_may_reply_anyway(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await slack.button("ticket.reply", 1, user="UALICE")
        await wait_until(lambda: len(fake_slack.views_opened) == 1)
        await slack.button("ticket.reply", 1, user="UBOB")
        await wait_until(lambda: len(fake_slack.views_opened) == 2)
        warning = fake_slack.views_opened[1]
        assert warning["callback_id"] == "lock_warning"
        assert "Alice Agent is writing a reply" in str(warning["blocks"])
        await slack.button("ticket.reply_anyway", 1, user="UBOB", view=warning)
        await wait_until(lambda: len(fake_slack.views_opened) == 3)
        assert fake_slack.views_opened[2]["callback_id"] == "reply"
        await slack.closed(fake_slack.views_opened[2], user="UBOB")
        await asyncio.sleep(0.3)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    kinds = [(e["kind"], e["actor"]) for e in t["events"] if e["kind"] in ("lock", "unlock")]
    assert kinds == [("lock", "staff:UALICE"), ("lock", "staff:UBOB"), ("unlock", "staff:UBOB")]


async def test_customer_text_is_escaped_in_modals_cards_and_home(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack, subject=HOSTILE, body=HOSTILE)
        await slack.button("ticket.reply", 1, user="UALICE")
        await slack.event({"type": "app_home_opened", "user": "UALICE", "tab": "home"})
        await wait_until(lambda: len(fake_slack.views_opened) == 2)
        await slack.command("show 1", user="UALICE")
        await wait_until(lambda: fake_slack.responses)
    for view in fake_slack.views_opened:
        _assert_literal(view)
    assert "&lt;!channel&gt;" in fake_slack.responses[0]["text"]
    assert "<!channel>" not in fake_slack.responses[0]["text"]
    home = next(v for v in fake_slack.views_opened if v["type"] == "home")
    assert "My tickets" in str(home) and HOSTILE in str(home)  # literally, inside plain_text


def _assert_literal(node) -> None:
    """Customer text may appear only inside plain_text objects (never parsed by Slack)."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            assert "<!channel>" not in node["text"] and "<@U0ADMIN>" not in node["text"], node
        for value in node.values():
            _assert_literal(value)
    elif isinstance(node, list):
        for value in node:
            _assert_literal(value)


async def test_staff_opens_a_ticket_for_a_customer(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        await slack.command("new email <mailto:dave@example.org|dave@example.org> Outage notice | "
                            "Your line will be down tonight.", user="UALICE")
        [sent] = await relay.wait_for(1)
        await wait_until(lambda: fake_slack.cards())
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert sent["To"] == "dave@example.org" and sent["Subject"] == "Re: Outage notice [#1]"
    assert (t["status"], t["assignee"], t["requester"]["email"]) == ("open", "UALICE", "dave@example.org")


async def test_requests_without_a_signing_secret_are_refused(app_settings, fake_slack):
    async with running(app_settings()) as app:
        host, port = app.listening.web
        slack = SlackSender(f"http://{host}:{port}/slack/events", fake_slack.response_url())
        status, text = await slack.command("close 1", user="UALICE")
    assert status == 503 and "not configured" in text


@pytest.mark.parametrize("option, values, check", [
    ("assign", {"user": {"user": "UBOB"}}, lambda t: t["assignee"] == "UBOB"),
    ("fields", {"priority": {"option": "1"}, "status": {"option": "open"}},
     lambda t: (t["priority"], t["status"]) == (1, "open")),
    ("category", {"category": {"option": '["Billing", "Refund"]'}},
     lambda t: (t["category"], t["type"]) == ("Billing", "Refund")),
    ("link", {"other": "#2"}, lambda t: any(e["kind"] == "link" for e in t["events"])),
    ("transfer", {"group": {"option": "sales"}, "note": "Upsell", "category": {"option": '["Billing", null]'}},
     lambda t: (t["group"], t["category"]) == ("sales", "Billing")),
])
async def test_each_overflow_modal_changes_the_ticket_and_the_card(app_settings, fake_slack, option,
                                                                   values, check):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await customer_ticket(app, fake_slack, subject="Other")
        updates_before = len(fake_slack.updates())
        await slack.button("ticket.more", 1, user="UBOB", option=f"{option}:1")
        await wait_until(lambda: fake_slack.views_opened)
        modal = fake_slack.views_opened[-1]
        assert modal["callback_id"] == option
        status, _ = await slack.submit(modal, values, user="UBOB")
        assert status == 200
        await wait_until(lambda: len(fake_slack.updates()) > updates_before)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert check(t), t
    staff_events = [e for e in t["events"] if e["actor"] == "staff:UBOB"]
    assert staff_events, "every action records who did it"
    assert fake_slack.ephemerals == []  # no refusal, no error


async def test_modal_with_a_missing_field_is_sent_back_with_the_error(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await slack.button("ticket.more", 1, user="UBOB", option="transfer:1")
        await wait_until(lambda: fake_slack.views_opened)
        status, text = await slack.submit(fake_slack.views_opened[-1], {"group": {"option": "sales"}, "note": " "},
                                          user="UBOB")
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert status == 200 and '"response_action":"errors"' in text.replace(" ", "")
    assert t["group"] == "support"


async def test_admin_lifts_a_reply_lock_others_cannot(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await slack.button("ticket.reply", 1, user="UALICE")
        await wait_until(lambda: fake_slack.views_opened)
        await slack.button("ticket.unlock", 1, user="UBOB")
        await wait_until(lambda: fake_slack.ephemerals)
        assert "only an admin can unlock" in fake_slack.ephemerals[-1]["text"]
        await slack.button("ticket.unlock", 1, user="UADMIN")
        await wait_until(lambda: len(fake_slack.ephemerals) == 2)
        assert "#1 unlocked" in fake_slack.ephemerals[-1]["text"]
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert [e["actor"] for e in t["events"] if e["kind"] == "unlock"] == ["staff:UADMIN"]


async def test_customer_message_marks_the_card_unread_until_staff_act(app_settings, fake_slack):
    async with desk(app_settings, fake_slack, tickets={"auto_reassign_on_update": True}) as (app, slack):
        await customer_ticket(app, fake_slack)
        assert "Unread" in str(fake_slack.cards()[0].args["blocks"])
        await slack.command("note 1 looking into it", user="UALICE")
        await wait_until(lambda: fake_slack.updates())
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert "Unread" not in str(fake_slack.updates()[-1].args["blocks"])
    assert t["assignee"] == "UALICE"  # auto_reassign_on_update: whoever notes owns it


async def test_socket_mode_carries_the_same_commands(app_settings, fake_slack):
    """With slack.app_token set, Slack's requests arrive over Socket Mode instead of HTTP."""
    settings = app_settings(slack={"app_token": fake_slack.app_token, "signing_secret": ""})
    async with running(settings) as app:
        await customer_ticket(app, fake_slack)
        envelope = fake_slack.push_envelope("slash_commands", {
            "command": "/ticket", "text": "priority 1 2", "user_id": "UALICE", "team_id": "T0EXAMPLE",
            "channel_id": "C0SUPPORT", "trigger_id": "trigger.socket.1",
            "response_url": fake_slack.response_url()})
        await wait_until(lambda: fake_slack.responses, timeout=15)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert envelope in [a.get("envelope_id") for a in fake_slack.socket_acks]
    assert "priority set to P2" in fake_slack.responses[0]["text"]
    assert t["priority"] == 2


async def test_a_repeated_slash_command_is_done_once(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await slack.command("note 1 called twice?", user="UALICE", trigger_id="trigger.same")
        await slack.command("note 1 called twice?", user="UALICE", trigger_id="trigger.same")
        await wait_until(lambda: len(fake_slack.responses) == 2)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert [m["body"] for m in t["messages"] if m["kind"] == "note"] == ["called twice?"]
    assert fake_slack.responses[1]["text"] == "Already done."


async def test_close_confirms_by_threaded_email_and_reopen_restores(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        original_id = await customer_ticket(app, fake_slack)
        [ack] = await relay.wait_for(1)
        await slack.button("ticket.close", 1, user="UALICE")
        [_, confirmation] = await relay.wait_for(2)
        await wait_until(lambda: any("Reopen" in str(u.args) for u in fake_slack.updates()))
        await slack.button("ticket.reopen", 1, user="UBOB")

        async def reopened() -> bool:
            return (await reports.show_ticket(app.db, 1, now=app.clock.now()))["status"] == "open"

        await wait_until(reopened)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert confirmation["In-Reply-To"] == original_id
    assert ack["Message-ID"] in confirmation["References"]
    assert confirmation["Subject"] == "Re: Router down [#1]"
    assert confirmation["Auto-Submitted"] == "auto-generated"
    assert "has been closed" in confirmation.get_body(("plain",)).get_content()
    statuses = [(e["actor"], e["data"]["to"]) for e in t["events"] if e["kind"] == "status"]
    assert statuses == [("staff:UALICE", "closed"), ("staff:UBOB", "open")]
    assert t["status"] == "open" and t["closed_at"] is None


async def test_our_failure_during_an_action_is_told_and_changes_nothing(app_settings, fake_slack, tmp_path):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        await rename_table(tmp_path / "deskbell.db", "events", "events_away")
        await slack.button("ticket.close", 1, user="UALICE")
        await wait_until(lambda: fake_slack.ephemerals)
        await rename_table(tmp_path / "deskbell.db", "events_away", "events")
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert "did not work on our side" in fake_slack.ephemerals[0]["text"]
    assert t["status"] == "new"
