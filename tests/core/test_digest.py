"""Manager digests from a seeded helpdesk (issue acceptance 1, 4 and 5; DESIGN §3).

Two days of a handler group's life are played through the doors' intake, the staff actions and
the scheduler passes everyone uses, on a frozen clock; cards go to a fake Slack, which hands
out their permalinks. Every figure of the digest is then compared with a value worked out by
hand below (business hours Mon–Fri 09:00–17:00 UTC) or read from the tickets one by one.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import aiohttp
from sqlalchemy import select, update

from bot.core import actions, deliveries, digest_schedule, intents, scheduler, spool
from bot.core.desk import Desk
from bot.core.digest_report import DigestReport, build, median, p90
from bot.core.spool import Arrival
from bot.core.staff import Actor
from bot.outbox.dispatcher import Dispatcher
from bot.slack.sender import SlackSender, make_client
from bot.store import models as m
from tests import mailfixtures as fx
from tests.conftest import DOMAIN
from tests.core.test_rules import OFFICE, helpdesk, ingest, ticket, utc

ALICE, BOB = Actor("UALICE", "Alice Agent"), Actor("UBOB", "Bob Agent")
SALES = f"sales@{DOMAIN}"
RULES = dict(
    handler_groups=[
        {"name": "support", "slack_channel": "#support", "email_addresses": [fx.SUPPORT],
         "members": ["UALICE", "UBOB"], "business_hours": "office"},
        {"name": "sales", "slack_channel": "#sales", "email_addresses": [SALES], "business_hours": "office"}],
    business_hours={"default": OFFICE, "office": OFFICE},
    sla={"first_response_minutes": {1: 15, 2: 30, 3: 60, 4: 480},
         "resolution_minutes": {1: 120, 2: 240, 3: 480, 4: 2400}, "escalate_after_minutes": 0},
    digests=[{"name": "daily", "at": "08:00", "timezone": "UTC", "recipients": ["boss@example.com"],
              "groups": ["support"]}],
)
TUESDAY = date(2026, 12, 8)
_written = Counter()


async def arrive(desk: Desk, sender: str, to: str = fx.SUPPORT, subject: str = "Internet down") -> None:
    _written[sender] += 1
    raw = fx.plain(from_addr=sender, to_addr=to, subject=subject, message_id=f"<{_written[sender]}.{sender}>",
                   body=f"Help, {sender} here.\n")
    await spool.record(desk.db, [Arrival(channel="email", door="smtp", source_id=f"digest:{sender}:{_written[sender]}",
                                         data=raw, received_at=desk.clock.now(), envelope_from=sender,
                                         envelope_to=(to,), sender_key=sender)])
    await ingest(desk)


async def at(desk: Desk, clock: Any, when: str) -> None:
    """Move the clock to ``when`` with a scheduler pass on the way (breaches are announced)."""
    clock._at = utc(when)  # frozen clock: only tests move it
    await scheduler.run_pass(desk, now=desk.clock.now())


async def seed(desk: Desk, clock: Any) -> None:
    """Monday 7 and Tuesday 8 December 2026; tickets are numbered in the order they arrive."""
    await at(desk, clock, "2026-12-07 09:30"); await arrive(desk, "c1@example.net")           # 1
    await at(desk, clock, "2026-12-07 10:00"); await arrive(desk, "c2@example.net")           # 2
    await actions.reply(desk, actor=BOB, number=1, text="Rebooting it.", status_after=None)    # FR 30: met
    await at(desk, clock, "2026-12-07 12:00")
    await actions.set_status(desk, actor=BOB, number=1, status="resolved")                    # 150 min: met
    await at(desk, clock, "2026-12-07 16:00"); await arrive(desk, "c3@example.net")           # 3
    await at(desk, clock, "2026-12-07 16:30")
    await actions.reply(desk, actor=BOB, number=3, text="Looking.", status_after=None)        # FR 30: met

    await at(desk, clock, "2026-12-08 09:00"); await arrive(desk, "c4@example.net")           # 4
    await at(desk, clock, "2026-12-08 09:15")
    await actions.reply(desk, actor=BOB, number=2, text="Sorry for the wait.")                # FR 435: late; waiting
    await at(desk, clock, "2026-12-08 09:20")
    await actions.reply(desk, actor=ALICE, number=4, text="Which model?")                     # FR 20: met; waiting
    await at(desk, clock, "2026-12-08 10:00")
    await actions.close(desk, actor=BOB, number=1)
    await arrive(desk, "c5@example.net")                                                       # 5
    await at(desk, clock, "2026-12-08 10:05")
    await actions.set_priority(desk, actor=BOB, number=5, priority=2)                         # FR due 10:30
    await at(desk, clock, "2026-12-08 10:50")
    await actions.reply(desk, actor=BOB, number=5, text="On it.", status_after="open")        # FR 50: breached
    await at(desk, clock, "2026-12-08 11:00"); await arrive(desk, "s1@example.net", to=SALES)  # 6, sales
    await at(desk, clock, "2026-12-08 11:20")
    await actions.set_status(desk, actor=ALICE, number=4, status="open")                      # paused 120 min
    await at(desk, clock, "2026-12-08 12:00")
    await actions.set_status(desk, actor=ALICE, number=4, status="resolved")                  # 180 - 120 = 60
    await at(desk, clock, "2026-12-08 13:00"); await arrive(desk, "c7@example.net")           # 7
    await at(desk, clock, "2026-12-08 14:00")
    await actions.reopen(desk, actor=BOB, number=1)
    await at(desk, clock, "2026-12-08 15:00")
    await actions.set_status(desk, actor=BOB, number=3, status="resolved")                    # 420 min: met
    await at(desk, clock, "2026-12-08 16:30"); await arrive(desk, "c8@example.net")           # 8
    # After the period: the backlog at its end must not see these.
    await at(desk, clock, "2026-12-09 07:00")
    await actions.set_priority(desk, actor=BOB, number=8, priority=4)
    await at(desk, clock, "2026-12-09 07:30")
    await actions.set_status(desk, actor=ALICE, number=7, status="on_hold")


async def post_cards(desk: Desk, fake_slack: Any) -> None:
    async with aiohttp.ClientSession() as http:
        sender = SlackSender(make_client(token=fake_slack.token, base_url=fake_slack.url, session=http))
        dispatcher = Dispatcher(db=desk.db, clock=desk.clock, senders={"slack": sender},
                                policy=deliveries.RetryPolicy())
        await dispatcher.drain(timeout=30)


async def give_up(desk: Desk, **where: Any) -> None:
    """Mark outbox items as the dispatcher does when it gives up on them."""
    async with desk.db.transaction() as s:
        await s.execute(update(m.OutboxItem).filter_by(**where).values(status="dead", last_error="relay said 550"))


async def digest_of(desk: Desk, day: date, group: str = "support") -> DigestReport:
    digest = desk.settings.digests[0]
    async with desk.db.reading() as s:
        return await build(s, desk.settings, digest, group, digest_schedule.period_starting(digest, day),
                           now=desk.clock.now())


async def test_every_figure_of_a_seeded_day_matches_the_hand_count(tmp_path, fake_slack):
    async with helpdesk(tmp_path, utc("2026-12-07 09:00"), slack_url=fake_slack.url, **RULES) as (desk, clock):
        await seed(desk, clock)
        await post_cards(desk, fake_slack)
        await give_up(desk, ticket_id=4, kind=intents.CUSTOMER_MESSAGE)  # #4's acknowledgement and reply
        await give_up(desk, ticket_id=6, kind=intents.CUSTOMER_MESSAGE)  # sales: not support's
        async with desk.db.transaction() as s:
            intents.notice(s, destination="#helpdesk", text="lost", now=desk.clock.now())
            raw = m.RawMessage(channel="email", source_id="q1", state="held", door="smtp", size=1, sha256="0" * 64,
                               data=b"x", received_at=desk.clock.now())
            s.add(raw)
            await s.flush()
            s.add(m.Quarantine(raw_message_id=raw.id, reason="unparseable", created_at=desk.clock.now()))
        await give_up(desk, kind=intents.NOTICE, ticket_id=None)
        await at(desk, clock, "2026-12-09 08:00")
        report = await digest_of(desk, TUESDAY)
        shown = {n: await ticket(desk, n) for n in range(1, 9)}
        async with desk.db.reading() as s:
            cards = dict((await s.execute(select(m.OutboxItem.ticket_id, m.OutboxItem.remote_id).where(
                m.OutboxItem.kind == intents.CARD, m.OutboxItem.status == "sent"))).all())

    # Counts: Tuesday against Monday (ticket 6 is the sales group's).
    assert (report.new.value, report.new.previous) == (4, 3)  # 4 5 7 8 | 1 2 3
    assert (report.resolved.value, report.resolved.previous) == (2, 1)  # 4 3 | 1
    assert (report.closed.value, report.closed.previous) == (1, 0)  # 1
    assert (report.reopened.value, report.reopened.previous) == (1, 0)  # 1
    # Backlog at Wednesday 00:00: 1 open P3, 2 waiting P3, 5 open P2, 7 and 8 new P3 (7 went on
    # hold and 8 to P4 only on Wednesday); at Tuesday 00:00: 2 and 3 new.
    rows = {row.status: row for row in report.backlog}
    assert report.priorities == (1, 2, 3, 4, 5)
    assert rows["new"].by_priority == (0, 0, 2, 0, 0) and rows["new"].previous_total == 2
    assert rows["open"].by_priority == (0, 1, 1, 0, 0) and rows["open"].previous_total == 0
    assert rows["waiting"].by_priority == (0, 0, 1, 0, 0)
    assert rows["on_hold"].total == 0
    assert (report.backlog_total.value, report.backlog_total.previous) == (5, 2)
    # SLA: first response met by 4; breached by 5 (due 10:30) and 7 (due 14:00). Monday: 1 and
    # 3 met, 2 breached at 11:00 (answered on Tuesday). Resolution: 4 and 3 met, 5 breached at
    # 14:00; 2 is waiting (its clock stands), 1 was reopened; Monday has no verdict left.
    assert (report.first_response.met, report.first_response.breached) == (1, 2)
    assert report.first_response.percent == 33.3 and report.first_response.previous_percent == 66.7
    assert (report.resolution.met, report.resolution.breached) == (2, 1)
    assert report.resolution.percent == 66.7 and report.resolution.previous_percent is None
    # Business minutes: first responses 2 = 420 + 15, 4 = 20, 5 = 50; resolutions 4 = 180 - 120
    # paused, 3 = 60 on Monday + 360 on Tuesday.
    times = report.first_response_time
    assert (times.count, times.median, times.p90) == (3, median([435, 20, 50]), p90([435, 20, 50])) == (3, 50, 435)
    assert (times.previous_median, times.previous_p90) == (30, 30)
    times = report.resolution_time
    assert (times.count, times.median, times.p90) == (2, 240, 420)
    assert times.previous_median is None
    # The chart: the 7 days up to Tuesday.
    assert [bar.day for bar in report.chart] == [(TUESDAY - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    assert [(b.new, b.resolved, b.sla_met, b.sla_breached) for b in report.chart] == \
        [(0, 0, 0, 0)] * 5 + [(3, 1, 2, 1), (4, 2, 3, 3)]
    assert report.chart[-1].sla_percent == 50.0 and report.chart_max == 4
    assert not report.quiet

    # Right now (Wednesday 08:00): open 1 2 5 7 8; weight = priority points + business minutes
    # waiting on staff: 8 is P4 (10) waiting since 16:30 (30 min), 5 is P2 (30), the rest P3 (20).
    assert report.open_count == 5
    assert [(t.number, t.weight) for t in report.heaviest] == [(8, 40), (5, 30), (1, 20), (2, 20), (7, 20)]
    assert [t.weight for t in report.heaviest] == [shown[t.number]["weight"] for t in report.heaviest]
    assert [t.number for t in report.oldest] == [1, 2, 5, 7, 8]
    assert [t.number for t in report.waiting] == [2, 7] and (report.waiting_count, report.on_hold_count) == (1, 1)
    assert {t.number for t in report.heaviest if t.overdue} == {2, 5, 7}
    assert {t.number for t in report.heaviest if t.overdue} == {
        n for n, t in shown.items() if t["sla"]["breached"] and t["status"] not in ("resolved", "closed")
        and t["group"] == "support"}
    # Each line links to its card, as Slack's chat.getPermalink named it when the card was posted.
    for line in report.heaviest:
        channel, ts = cards[line.number].split("/")
        assert line.link == f"https://deskbell-test.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    # Load: open tickets per assignee (as the tickets say), past SLA, replies on Tuesday
    # (Bob: 2 and 5; Alice: 4).
    open_now = [t for n, t in shown.items() if t["status"] not in ("resolved", "closed") and t["group"] == "support"]
    expected = Counter(t["assignee"] for t in open_now)
    overdue = Counter(t["assignee"] for t in open_now if t["sla"]["breached"])
    load = {p.slack_user_id: p for p in report.load}
    assert set(load) == {"UALICE", "UBOB"}
    assert {u: (p.open, p.overdue, p.replies) for u, p in load.items()} == \
        {u: (expected[u], overdue[u], {"UBOB": 2, "UALICE": 1}[u]) for u in load}
    # Needs attention: two dead mails about support's tickets, one item about none, one quarantined.
    assert (report.dead_outbox, report.dead_outbox_other, report.quarantined) == (2, 1, 1)


async def test_a_quiet_day_says_nothing_happened(tmp_path):
    async with helpdesk(tmp_path, utc("2026-12-09 08:00"), **RULES) as (desk, _):
        report = await digest_of(desk, TUESDAY)
    assert report.quiet and report.open_count == 0 and report.backlog_total.value == 0
    assert report.first_response.percent is None and report.first_response_time.median is None
    assert report.heaviest == () and report.chart_max == 1
