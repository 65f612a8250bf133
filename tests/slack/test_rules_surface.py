"""The helpdesk's rules as staff see them in Slack: the card's SLA, weight, idle and reminder
lines, overdue alerts after a scheduler pass, /ticket away|back, reminder dates by command and
by the card's date picker, and Slack's presence steering assignment."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.core import reports
from bot.core.views import ContactView, TicketView
from bot.slack import blocks
from bot.slack.presence import PresencePoller
from tests.conftest import DOMAIN, running, wait_until
from tests.slack.test_interactions import customer_ticket
from tests.slack_client import SECRET, SlackSender
from tests.test_slack_cards import block_kit_problems

# A Monday morning: the default business hours (UTC, mon-fri 09:00-17:00) are open, so the
# first-response target of a P3 ticket (240 business minutes) falls at 13:00 the same day.
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class MovableClock(Clock):
    """Real time from ``start``, moved forward when a test says so: the app then lives as a
    process started later with ``DESKBELL_NOW`` would (what it enqueues is due at once)."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.moved = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.moved

    def advance(self, **delta: float) -> None:
        self.moved += timedelta(**delta)


@asynccontextmanager
async def desk(app_settings, fake_slack, *, clock: Clock | None = None, hours: str = "default",
               groups: list | None = None, **overrides):
    settings = app_settings(
        slack={"signing_secret": SECRET},
        handler_groups=[{"name": "support", "slack_channel": "#support", "email_addresses": [f"help@{DOMAIN}"],
                         "members": ["UALICE", "UBOB"], "business_hours": hours}, *(groups or [])],
        # Passes only when the test makes them (the worker's own pass runs once, at start).
        scheduler={"interval_seconds": 3600},
        **overrides)
    async with running(settings, clock=clock or Clock(MONDAY)) as app:
        host, port = app.listening.web
        yield app, SlackSender(f"http://{host}:{port}/slack/events", fake_slack.response_url())


async def answer(fake_slack, slack, text: str, *, user: str = "UALICE") -> str:
    """Type ``/ticket text`` and return the private answer."""
    count = len(fake_slack.responses)
    await slack.command(text, user=user)
    await wait_until(lambda: len(fake_slack.responses) > count)
    response = fake_slack.responses[count]
    assert response["response_type"] == "ephemeral"
    return response["text"]


async def assignee_of(app, number: int) -> str | None:
    return (await reports.show_ticket(app.db, number, now=app.clock.now()))["assignee"]


def card_updates(fake_slack, ts: str) -> list[str]:
    return [str(u.args["blocks"]) for u in fake_slack.updates() if u.args["ts"] == ts]


async def outbox_total(app) -> int:
    return sum((await reports.counts(app.db))["outbox"].values())


async def outbox_idle(app) -> bool:
    return all(key.endswith(":sent") for key in (await reports.counts(app.db))["outbox"])


async def test_card_shows_assignee_sla_and_weight_then_overdue_after_a_pass(app_settings, fake_slack):
    clock = MovableClock(MONDAY)
    async with desk(app_settings, fake_slack, clock=clock) as (app, slack):
        await customer_ticket(app, fake_slack)
        card = fake_slack.cards()[0]
        t = await reports.show_ticket(app.db, 1, now=app.clock.now(), settings=app.settings)
        due = datetime.fromisoformat(t["sla"]["first_response_due"].replace("Z", "+00:00"))
        await wait_until(lambda: fake_slack.dms("UALICE"))  # the ticket is hers: core tells her
        dms_before = len(fake_slack.dms("UALICE"))

        shown = str(card.args["blocks"])
        assert t["assignee"] == "UALICE" and "<@UALICE>" in shown
        assert f"First response due <!date^{int(due.timestamp())}^{{date_short_pretty}} {{time}}|" \
               f"{due:%Y-%m-%d %H:%M} UTC>" in shown
        assert "*Weight*" in shown and "overdue" not in shown and "Idle" not in shown
        assert any(e["type"] == "datepicker" and e["action_id"] == "ticket.follow_up" and "initial_date" not in e
                   for b in card.args["blocks"] if b["type"] == "actions" for e in b["elements"])
        assert block_kit_problems(card.args) == []

        await wait_until(lambda: outbox_idle(app))  # nothing in flight while the clock jumps
        clock.advance(seconds=(due - clock.now()).total_seconds() + 5 * 60)
        later = clock.now()
        done = await app.tick(now=later)
        assert done["sla"] == 1 and done["idle"] == 1
        await wait_until(lambda: any("overdue since" in b for b in card_updates(fake_slack, card.ts)))
        await wait_until(lambda: len(fake_slack.dms("UALICE")) > dms_before)
        await wait_until(lambda: any("SLA missed" in c.args.get("text", "") for c in fake_slack.cards()))
        outbox = await outbox_total(app)

        again = await app.tick(now=later)  # the same instant once more: nothing new to say
        assert again["sla"] == 0 and again["idle"] == 0
        assert await outbox_total(app) == outbox

    overdue = next(b for b in card_updates(fake_slack, card.ts) if "overdue since" in b)
    assert f"🔴 *First response overdue since <!date^{int(due.timestamp())}^" in overdue
    assert "💤 Idle 4 h" in overdue
    [alert] = [c for c in fake_slack.cards() if "SLA missed" in c.args.get("text", "")]
    assert alert.args["channel"] == "#support" and "past its first response target" in alert.args["text"]
    assert "SLA missed" in fake_slack.dms("UALICE")[-1].args["text"]
    assert len([d for d in fake_slack.dms("UALICE") if "SLA missed" in d.args["text"]]) == 1


async def test_away_members_get_no_new_tickets_until_back(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        assert "You are away" in await answer(fake_slack, slack, "away")
        assert "already away" in await answer(fake_slack, slack, "away")
        await customer_ticket(app, fake_slack, subject="First")
        await customer_ticket(app, fake_slack, subject="Second")
        assert [await assignee_of(app, n) for n in (1, 2)] == ["UBOB", "UBOB"]
        assert "Welcome back" in await answer(fake_slack, slack, "back")
        await customer_ticket(app, fake_slack, subject="Third")
        assert await assignee_of(app, 3) == "UALICE"
        help_text = await answer(fake_slack, slack, "help")
    assert "`away`" in help_text and "followup N" in help_text and "{customer_name}" in help_text


async def test_reminder_dates_by_command_in_the_groups_time_zone(app_settings, fake_slack):
    berlin = {"default": {"timezone": "UTC"}, "berlin": {"timezone": "Europe/Berlin"}}
    async with desk(app_settings, fake_slack, business_hours=berlin, hours="berlin") as (app, slack):
        await customer_ticket(app, fake_slack)
        said = await answer(fake_slack, slack, "followup 1 2026-12-01")
        assert "follow-up set to 2026-12-01 08:00 UTC" in said and "(2026-12-01 09:00 Europe/Berlin)" in said
        said = await answer(fake_slack, slack, "actiondue #1 2026-07-01 14:30")
        assert "action required set to 2026-07-01 12:30 UTC" in said  # summer time: UTC+2
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        assert (t["follow_up_at"], t["action_required_at"]) == ("2026-12-01T08:00:00Z", "2026-07-01T12:30:00Z")
        mistakes = {
            "followup 1 tomorrow": "'tomorrow' is not a date: write it as YYYY-MM-DD",
            "followup 1 2026-02-30": "2026-02-30 is not a day of the calendar",
            "followup 1 2026-12-01 25:00": "'25:00' is not a time of day",
            "followup 1 2026-03-29 02:30": "does not exist in Europe/Berlin",
            "followup 1 2026-12-01 9:00 extra": "usage: followup N YYYY-MM-DD [HH:MM]",
            "followup 2026-12-01": "which ticket?",
            "followup 99 2026-12-01": "there is no ticket #99",
        }
        for text, expected in mistakes.items():
            said = await answer(fake_slack, slack, text)
            assert said.startswith("⚠️") and expected in said, (text, said)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        assert t["follow_up_at"] == "2026-12-01T08:00:00Z"  # no mistake changed anything
        assert "cleared" in await answer(fake_slack, slack, "actiondue 1 clear")
        card_ts = fake_slack.cards()[0].ts
        await wait_until(lambda: any("Follow up" in b and "Action required" not in b
                                     for b in card_updates(fake_slack, card_ts)))
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert t["action_required_at"] is None
    last = [u for u in fake_slack.updates() if u.args["ts"] == card_ts][-1].args
    [picker] = [e for b in last["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["type"] == "datepicker"]
    assert picker["initial_date"] == "2026-12-01"
    assert f"📅 Follow up <!date^{int(datetime(2026, 12, 1, 8, tzinfo=timezone.utc).timestamp())}^" in str(last)
    assert block_kit_problems(last) == []


async def test_card_date_picker_sets_the_follow_up(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        await customer_ticket(app, fake_slack)
        action = {"type": "datepicker", "action_id": "ticket.follow_up", "block_id": "ticket:1",
                  "selected_date": "2026-03-10", "action_ts": f"{time.time():.6f}"}
        payload = {"type": "block_actions", "user": {"id": "UBOB", "team_id": "T0EXAMPLE"},
                   "team": {"id": "T0EXAMPLE"}, "api_app_id": "A0APP", "token": "legacy",
                   "trigger_id": "trigger.picker", "actions": [action], "channel": {"id": "C0SUPPORT"},
                   "container": {"type": "message", "channel_id": "C0SUPPORT", "message_ts": "1.1"},
                   "response_url": fake_slack.response_url()}
        status, _ = await slack.interaction(payload)
        assert status == 200
        await wait_until(lambda: fake_slack.ephemerals)
        await slack.interaction(payload)  # the same pick delivered twice: done once, said once
        await asyncio.sleep(0.3)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert t["follow_up_at"] == "2026-03-10T09:00:00Z"
    assert "#1 follow-up set to 2026-03-10 09:00 UTC" in fake_slack.ephemerals[0]["text"]
    assert [e["user"] for e in fake_slack.ephemerals] == ["UBOB"]
    assert [e["actor"] for e in t["events"] if e["kind"] == "reminder_set"] == ["staff:UBOB"]


async def test_slack_presence_steers_assignment(app_settings, fake_slack):
    # UGHOST (of another group) is no Slack user any more: each round skips them, not the others.
    ghosts = [{"name": "sales", "slack_channel": "#sales", "email_addresses": [f"sales@{DOMAIN}"],
               "members": ["UGHOST"]}]
    async with desk(app_settings, fake_slack, groups=ghosts) as (app, slack):
        await customer_ticket(app, fake_slack, subject="First")
        await customer_ticket(app, fake_slack, subject="Second")
        assert [await assignee_of(app, n) for n in (1, 2)] == ["UALICE", "UBOB"]
        client = AsyncWebClient(token=fake_slack.token, base_url=fake_slack.url)
        fake_slack.presence["UALICE"] = "away"
        assert await PresencePoller(app.desk, client).poll_once() == {"UALICE": True, "UBOB": False}
        await customer_ticket(app, fake_slack, subject="Third")
        # Alice's turn (as few tickets as Bob, assigned longer ago), but Slack shows her away.
        assert await assignee_of(app, 3) == "UBOB"

        fake_slack.presence["UALICE"] = "active"
        poller = PresencePoller(app.desk, client, interval=0.05)
        rounds = asyncio.create_task(poller.run())
        asked = len(presence_calls(fake_slack))
        await wait_until(lambda: len(presence_calls(fake_slack)) >= asked + 6)  # two rounds of three
        poller.stop()
        await asyncio.wait_for(rounds, 5)
        await customer_ticket(app, fake_slack, subject="Fourth")
        assert await assignee_of(app, 4) == "UALICE"
    assert {c.args["user"] for c in presence_calls(fake_slack)} == {"UALICE", "UBOB", "UGHOST"}
    assert not any(c.ok for c in presence_calls(fake_slack) if c.args["user"] == "UGHOST")


def presence_calls(fake_slack):
    return [c for c in fake_slack.calls if c.method == "users.getPresence"]


def test_card_lines_for_each_state_of_the_clocks():
    """What the card says, state by state (the view as core hands it to the sender)."""
    opened = MONDAY
    due, later = opened + timedelta(hours=4), opened + timedelta(hours=6)
    base = TicketView(number=7, subject="s", status="open", priority=3, category=None, type=None, group="support",
                      assignee="UALICE", requester=ContactView("Ann", "ann@example.net", None), channel="email",
                      unread=False, weight=20, created_at=opened, updated_at=opened, last_customer_message_at=opened,
                      resolved_at=None, closed_at=None, first_response_due=due, resolution_due=later)

    def lines(**changes) -> list[str]:
        return [re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"[\1]", line)
                for line in blocks.rules_lines(dataclasses.replace(base, **changes))]

    assert lines() == ["First response due [2026-03-02 13:00 UTC]", "Resolution due [2026-03-02 15:00 UTC]"]
    assert lines(status="waiting", sla_paused=True) == ["⏸ SLA paused"]
    assert lines(first_responded_at=opened + timedelta(hours=1), idle=True, idle_minutes=300) == [
        "First response ✓ [2026-03-02 10:00 UTC]", "Resolution due [2026-03-02 15:00 UTC]", "💤 Idle 5 h"]
    assert lines(first_response_breached=True, resolution_breached=True) == [
        "🔴 *First response overdue since [2026-03-02 13:00 UTC]*",
        "🔴 *Resolution overdue since [2026-03-02 15:00 UTC]*"]
    assert lines(status="resolved", sla_paused=True, first_responded_at=later, first_response_breached=True,
                 resolved_at=later + timedelta(hours=1), resolution_breached=True) == [
        "🔴 *First response late:* [2026-03-02 15:00 UTC] (due [2026-03-02 13:00 UTC])",
        "🔴 *Resolved late:* [2026-03-02 16:00 UTC] (due [2026-03-02 15:00 UTC])"]
    assert lines(status="closed", sla_paused=True, first_responded_at=opened, resolved_at=opened,
                 follow_up_at=later, action_required_at=due) == [
        "First response ✓ [2026-03-02 09:00 UTC]", "Resolution ✓ [2026-03-02 09:00 UTC]",
        "📅 Follow up [2026-03-02 15:00 UTC]", "❗ Action required by [2026-03-02 13:00 UTC]"]
    assert [blocks.duration(m) for m in (45, 300, 3000)] == ["45 min", "5 h", "2 d 2 h"]


async def test_flagging_the_customer_changes_the_weight_of_their_tickets(app_settings, fake_slack):
    async with desk(app_settings, fake_slack, weight={"good_contact_points": 20, "bad_contact_points": -10}) \
            as (app, slack):
        await customer_ticket(app, fake_slack, subject="First")
        await customer_ticket(app, fake_slack, subject="Second")  # the same customer
        before = [(await reports.show_ticket(app.db, n, now=app.clock.now(), settings=app.settings))["weight"]
                  for n in (1, 2)]
        assert "a good customer" in await answer(fake_slack, slack, "customer 1 good")
        good = [(await reports.show_ticket(app.db, n, now=app.clock.now(), settings=app.settings))["weight"]
                for n in (1, 2)]
        assert "usage: customer N good|bad|clear" in await answer(fake_slack, slack, "customer 1 great")
        await answer(fake_slack, slack, "customer 2 bad")
        bad = [(await reports.show_ticket(app.db, n, now=app.clock.now(), settings=app.settings))["weight"]
               for n in (1, 2)]
    # Both tickets are the customer's: the flag weighs on each (business minutes waited may add).
    assert [g - b for g, b in zip(good, before)] in ([20, 20], [21, 20], [20, 21], [21, 21])
    assert [b - g for b, g in zip(bad, good)] in ([-30, -30], [-29, -30], [-30, -29], [-29, -29])
