"""The helpdesk's rules on a frozen clock: assignment, SLA in business hours, weight, idle
time, auto-close and breach alerts across a restart (issue acceptance, DESIGN §3).

Tickets arrive the way doors deliver them (spool rows, then the intake worker) and change
through the staff actions and scheduler passes everyone uses; time moves only when a test
moves it. Expected instants and weights are worked out by hand in the tables below.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from bot.clock import FrozenClock
from bot.config import Settings
from bot.core import actions, groups, intents, reports, scheduler, spool
from bot.core.desk import Desk
from bot.core.spool import Arrival
from bot.core.staff import Actor
from bot.inbound.pipeline import IntakeWorker
from bot.store import migrate
from bot.store import models as m
from bot.store.db import Database
from tests import mailfixtures as fx
from tests.conftest import settings_dict

UTC = timezone.utc
BOB = Actor("UBOB", "Bob Agent")
MEMBERS = [f"UMEMBER{n}" for n in range(9)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@asynccontextmanager
async def helpdesk(tmp_path: Path, at: datetime, **overrides: Any) -> AsyncIterator[tuple[Desk, FrozenClock]]:
    settings = Settings.model_validate(settings_dict(tmp_path, **overrides))
    db = Database(settings.database.url)
    await migrate.upgrade(db)
    await groups.sync_groups(db, settings)
    clock = FrozenClock(at)
    try:
        yield Desk(db=db, settings=settings, clock=clock), clock
    finally:
        await db.dispose()


_sent = Counter()


async def customer_writes(desk: Desk, *, sender: str = "alice@example.net", subject: str = "Router down",
                          count: int = 1) -> None:
    """``count`` customer emails to the support address, spooled at once, then ingested."""
    arrivals = []
    for _ in range(count):
        _sent[sender] += 1
        n = _sent[sender]
        raw = fx.plain(from_addr=sender, subject=subject, message_id=f"<{n}.{sender}>",
                       body=f"Message {n} from {sender}.\n")
        arrivals.append(Arrival(channel="email", door="smtp", source_id=f"smtp:{sender}:{n}", data=raw,
                                received_at=desk.clock.now(), envelope_from=sender,
                                envelope_to=(fx.SUPPORT,), sender_key=sender))
    await spool.record(desk.db, arrivals)


async def ingest(desk: Desk, workers: int = 1) -> None:
    await asyncio.gather(*(IntakeWorker(desk=desk).drain() for _ in range(workers)))


async def ticket(desk: Desk, number: int) -> dict[str, Any]:
    return await reports.show_ticket(desk.db, number, now=desk.clock.now(), settings=desk.settings)


async def outbox(desk: Desk, kind: str) -> list[m.OutboxItem]:
    async with desk.db.reading() as s:
        return list((await s.scalars(select(m.OutboxItem).where(m.OutboxItem.kind == kind)
                                     .order_by(m.OutboxItem.id))).all())


# ----- 1. assignment --------------------------------------------------------------------------


async def test_a_hundred_tickets_at_once_spread_evenly_and_skip_who_is_away(tmp_path):
    group = {"name": "support", "slack_channel": "#support", "email_addresses": [fx.SUPPORT],
             "members": MEMBERS}
    async with helpdesk(tmp_path, utc("2026-12-07 10:00"), handler_groups=[group]) as (desk, _):
        for who in MEMBERS[:2]:
            await actions_away(desk, who)
        for n in range(100):
            await customer_writes(desk, sender=f"customer{n}@example.net")
        await ingest(desk, workers=2)  # two intake workers at once: nobody reads a stale "least"
        rows = await reports.list_tickets(desk.db, now=desk.clock.now(), limit=1000, settings=desk.settings)
        notices = await outbox(desk, intents.NOTICE)

    loads = Counter(t["assignee"] for t in rows)
    assert len(rows) == 100 and None not in loads
    assert set(loads) == set(MEMBERS[2:])  # the two away members got none
    assert max(loads.values()) - min(loads.values()) <= 1
    # Each assignee was told, once per ticket, in a direct message.
    assert Counter(n.payload["destination"] for n in notices) == loads


async def actions_away(desk: Desk, slack_user_id: str) -> None:
    from bot.core import availability

    await availability.set_away(desk, actor=Actor(slack_user_id), away=True)


async def test_ties_go_to_whoever_was_assigned_longest_ago(tmp_path):
    group = {"name": "support", "slack_channel": "#support", "email_addresses": [fx.SUPPORT],
             "members": MEMBERS[:3]}
    async with helpdesk(tmp_path, utc("2026-12-07 10:00"), handler_groups=[group]) as (desk, clock):
        for n in range(3):  # #1 → member 0 at 10:00, #2 → member 1 at 10:01, #3 → member 2 at 10:02
            await customer_writes(desk, sender=f"first{n}@example.net")
            await ingest(desk)
            clock.advance(minutes=1)
        await actions.assign(desk, actor=Actor(MEMBERS[1]), number=2, assignee=Actor(MEMBERS[0]))  # member 0 at 10:03
        for number in (1, 2, 3):
            await actions.close(desk, actor=Actor(MEMBERS[2]), number=number)
        await customer_writes(desk, sender="next@example.net")
        await ingest(desk)
        fourth = await ticket(desk, 4)
    # All three have no open ticket; member 1 was last given one at 10:01, the longest ago.
    assert fourth["assignee"] == MEMBERS[1]


# ----- 2. SLA in business hours ---------------------------------------------------------------

NEW_YORK = {"timezone": "America/New_York", "days": {"mon-fri": "09:00-17:00"}, "holidays": ["2026-11-26"]}
BERLIN = {"timezone": "Europe/Berlin", "days": {"mon-fri": "09:00-17:00"}}
OFFICE = {"timezone": "UTC", "days": {"mon-fri": "09:00-17:00"}}
TARGETS = {"first_response_minutes": {1: 60, 2: 240, 3: 480, 4: 960, 5: 2400},
           "resolution_minutes": {1: 480, 2: 960, 3: 1440, 4: 2880, 5: 4800}}

# (case, business hours, priority, opened at (UTC), [(at, status)], expected first-response
# due, expected resolution due) — all UTC.
SLA_TABLE = [
    # Fri 16:00, P3 (480): 60 min left that day; 420 more from Mon 09:00 → Mon 16:00. Resolution 1440:
    # Fri 60 + Mon 480 + Tue 480 = 1020, 420 more on Wed → Wed 16:00.
    ("over a weekend", OFFICE, 3, "2026-12-04 16:00", [], "2026-12-07 16:00", "2026-12-09 16:00"),
    # Wed 25 Nov 15:00 EST (20:00Z): 120 min that day; Thu 26 is Thanksgiving (a holiday);
    # 120 more from Fri 09:00 EST → 11:00 EST = 16:00Z. Resolution 960: Wed 120, Fri 480 (600),
    # Mon 30 Nov 360 more → 15:00 EST = 20:00Z.
    ("over a holiday", NEW_YORK, 2, "2026-11-25 20:00", [], "2026-11-27 16:00", "2026-11-30 20:00"),
    # Fri 30 Oct 16:00 EDT (20:00Z): 60 min; clocks go back on Sun 1 Nov; 180 more from Mon
    # 09:00 EST → 12:00 EST = 17:00Z (a fixed UTC-4 would say 16:00Z). Resolution 960: Fri 60,
    # Mon 480 (540), Tue 420 more → 16:00 EST = 21:00Z.
    ("over a DST change, New York", NEW_YORK, 2, "2026-10-30 20:00", [], "2026-11-02 17:00", "2026-11-03 21:00"),
    # Fri 27 Mar 16:30 CET (15:30Z): 30 min; summer time from Sun 29 Mar; 210 more from Mon
    # 09:00 CEST → 12:30 CEST = 10:30Z. Resolution 960: Fri 30, Mon 480 (510), Tue 450 more
    # → 16:30 CEST = 14:30Z.
    ("over a DST change, Berlin", BERLIN, 2, "2026-03-27 15:30", [], "2026-03-30 10:30", "2026-03-31 14:30"),
    # Mon 09:00, P3. Waiting on the customer from Mon 10:00 to Tue 11:00: Mon 420 + Tue 120 =
    # 540 business minutes paused. First response 480 + 540 = 1020 from Mon 09:00: Mon 480,
    # Tue 480, Wed 60 → Wed 10:00. Resolution 1440 + 540 = 1980: Mon-Thu 1920, Fri 60 → Fri 10:00.
    ("with time spent waiting", OFFICE, 3, "2026-12-07 09:00",
     [("2026-12-07 10:00", "waiting"), ("2026-12-08 11:00", "open")], "2026-12-09 10:00", "2026-12-11 10:00"),
    # Thu 3 Dec 09:00, P2: first response due Thu 13:00. On hold from Fri 12:00 to Mon 10:00,
    # after that target was missed: it does not move. Resolution (960) was still running: it
    # had Thu 480 + Fri 180 = 660 when the hold began; 300 more from Mon 10:00 → Mon 15:00.
    ("on hold after a missed target", OFFICE, 2, "2026-12-03 09:00",
     [("2026-12-04 12:00", "on_hold"), ("2026-12-07 10:00", "open")], "2026-12-03 13:00", "2026-12-07 15:00"),
]


@pytest.mark.parametrize("case, hours, priority, opened, changes, first_due, resolution_due", SLA_TABLE,
                         ids=[row[0] for row in SLA_TABLE])
async def test_sla_due_times_match_the_hand_computed_table(tmp_path, case, hours, priority, opened,
                                                           changes, first_due, resolution_due):
    group = {"name": "support", "slack_channel": "#support", "email_addresses": [fx.SUPPORT],
             "business_hours": "hours"}
    async with helpdesk(tmp_path, utc(opened), handler_groups=[group], sla=TARGETS,
                        business_hours={"default": OFFICE, "hours": hours},
                        tickets={"default_priority": priority}) as (desk, clock):
        await customer_writes(desk)
        await ingest(desk)
        for at, status in changes:
            clock.advance(seconds=(utc(at) - clock.now()).total_seconds())
            await actions.set_status(desk, actor=BOB, number=1, status=status)
            if status in ("waiting", "on_hold"):
                assert (await ticket(desk, 1))["sla"]["paused"] is True
        t = await ticket(desk, 1)
    assert (t["sla"]["first_response_due"], t["sla"]["resolution_due"]) == (
        utc(first_due).isoformat().replace("+00:00", "Z"), utc(resolution_due).isoformat().replace("+00:00", "Z"))
    assert t["sla"]["paused"] is False


async def test_a_priority_change_moves_the_due_times(tmp_path):
    async with helpdesk(tmp_path, utc("2026-12-07 09:00"), sla=TARGETS,
                        business_hours={"default": OFFICE}) as (desk, clock):
        await customer_writes(desk)
        await ingest(desk)
        clock.advance(minutes=30)
        await actions.set_priority(desk, actor=BOB, number=1, priority=1)
        t = await ticket(desk, 1)
    # P1 from Mon 09:00: first response 60 → 10:00, resolution 480 → 17:00 (not from the change).
    assert (t["sla"]["first_response_due"], t["sla"]["resolution_due"]) == ("2026-12-07T10:00:00Z",
                                                                           "2026-12-07T17:00:00Z")


# ----- 3. breach alerts once, across a restart mid-sweep --------------------------------------


async def test_breach_alert_once_per_target_even_across_a_restart_mid_sweep(tmp_path, monkeypatch):
    group = {"name": "support", "slack_channel": "#support", "email_addresses": [fx.SUPPORT],
             "members": ["UBOB"]}
    overrides = {"handler_groups": [group], "sla": {**TARGETS, "escalate_after_minutes": 60,
                                                    "escalate_to": "#leads"},
                 "business_hours": {"default": OFFICE}}
    monkeypatch.setattr(scheduler, "BATCH", 3)  # 7 tickets: three transactions
    async with helpdesk(tmp_path, utc("2026-12-07 09:00"), **overrides) as (desk, clock):
        for n in range(7):
            await customer_writes(desk, sender=f"c{n}@example.net")
        await ingest(desk)
        clock.advance(hours=5)  # P3 first response (480 min) not yet due at 14:00
        assert (await scheduler.run_pass(desk))["sla"] == 0
        clock.advance(hours=3, minutes=1)  # 17:01: past every first-response due (17:00)

        due, announce = scheduler.JOBS["sla"]
        announced = 0

        async def crash_in_the_second_batch(*args: Any) -> str:
            nonlocal announced
            announced += 1
            if announced == 4:  # the first ticket of the second transaction
                raise RuntimeError("power cut")
            return await announce(*args)

        monkeypatch.setitem(scheduler.JOBS, "sla", (due, crash_in_the_second_batch))
        with pytest.raises(RuntimeError, match="power cut"):
            await scheduler.run_pass(desk)
        monkeypatch.setitem(scheduler.JOBS, "sla", (due, announce))
        after_crash = len(await breach_notices(desk))
    assert after_crash == 3 * 2  # the first batch committed: channel + assignee for each of 3

    # A new process on the same database, the same instant, then a later one.
    async with helpdesk(tmp_path, clock.now(), **overrides) as (desk, clock):
        await scheduler.run_pass(desk)
        await scheduler.run_pass(desk)
        notices = await breach_notices(desk)
        clock.advance(hours=24)  # Tue 17:01: resolution (1440) not due before Wed 17:00
        await scheduler.run_pass(desk)
        escalations = [n for n in await outbox(desk, intents.NOTICE) if "Escalation" in n.payload["text"]]
        t = await ticket(desk, 1)
    per_ticket = Counter((n.ticket_id, n.payload["destination"]) for n in notices)
    assert set(per_ticket.values()) == {1} and len(per_ticket) == 7 * 2
    assert {d for _, d in per_ticket} == {"#support", "UBOB"}
    # One escalation per ticket, 60 min after the first-response due, to the escalation channel.
    assert Counter((e.ticket_id, e.payload["destination"]) for e in escalations) == {
        (n, "#leads"): 1 for n in range(1, 8)}
    assert t["sla"]["first_response_breached"] is True and t["sla"]["breached"] is True


async def breach_notices(desk: Desk) -> list[m.OutboxItem]:
    return [n for n in await outbox(desk, intents.NOTICE) if n.payload["text"].startswith("SLA missed")]


# ----- 4. weight ------------------------------------------------------------------------------

WEIGHT = {"priority_points": {1: 40, 2: 30, 3: 20, 4: 10, 5: 0}, "good_contact_points": 20,
          "bad_contact_points": -10}
CATEGORIES = [{"name": "Billing", "handler_group": "support", "points": 10,
               "types": [{"name": "Refund", "points": 5}]},
              {"name": "Sales", "handler_group": "support", "points": 0}]


async def test_queue_order_follows_the_weight_formula(tmp_path):
    async with helpdesk(tmp_path, utc("2026-12-07 09:00"), weight=WEIGHT, categories=CATEGORIES,
                        business_hours={"default": OFFICE}) as (desk, clock):
        # (sender, arrives after minutes, priority, category, type, contact flag, staff replied?)
        seeded = [("a@example.net", 0, 3, None, None, None, False),
                  ("b@example.net", 30, 1, None, None, None, False),
                  ("c@example.net", 60, 3, "Billing", "Refund", None, False),
                  ("d@example.net", 90, 4, None, None, "good", False),
                  ("e@example.net", 120, 2, "Sales", None, "bad", False),
                  ("f@example.net", 150, 3, None, None, None, True)]
        start = clock.now()
        for number, (sender, after, priority, category, kind, flag, replied) in enumerate(seeded, start=1):
            clock.advance(seconds=(start + timedelta(minutes=after) - clock.now()).total_seconds())
            await customer_writes(desk, sender=sender)
            await ingest(desk)
            await actions.set_priority(desk, actor=BOB, number=number, priority=priority)
            if category:
                await actions.set_category(desk, actor=BOB, number=number, category=category, type_=kind)
            if flag:
                await actions.flag_contact(desk, actor=BOB, number=number, flag=flag)
            if replied:
                await actions.reply(desk, actor=BOB, number=number, text="On it.", status_after=None)
        clock.advance(seconds=(utc("2026-12-08 10:00") - clock.now()).total_seconds())
        queue = await reports.list_tickets(desk.db, now=clock.now(), status="open", queue_order=True,
                                           settings=desk.settings)

    # Waiting on staff until Tue 10:00, in business minutes: Mon from arrival to 17:00, Tue 60.
    def waited(after: int) -> int:
        return (480 - after) + 60

    expected = {1: 20 + waited(0), 2: 40 + waited(30), 3: 20 + 10 + 5 + waited(60),
                4: 10 + 20 + waited(90), 5: 30 + 0 - 10 + waited(120), 6: 20 + 0}
    assert {t["number"]: t["weight"] for t in queue} == expected
    assert [t["number"] for t in queue] == sorted(expected, key=lambda n: -expected[n])


# ----- 5. auto-close --------------------------------------------------------------------------


async def test_resolved_ticket_closes_after_n_days_with_one_notice_unless_the_customer_writes(tmp_path):
    async with helpdesk(tmp_path, utc("2026-12-07 09:00"),
                        tickets={"auto_close_resolved_after_days": 3}) as (desk, clock):
        await customer_writes(desk, sender="quiet@example.net", subject="Invoice")
        await customer_writes(desk, sender="talks@example.net", subject="Speed")
        await ingest(desk)
        for number in (1, 2):
            await actions.set_status(desk, actor=BOB, number=number, status="resolved")
        clock.advance(days=2)  # day N-1: the second customer writes again
        await customer_writes(desk, sender="talks@example.net", subject="Re: [#2] Speed")
        await ingest(desk)
        clock.advance(days=1, minutes=-1)
        assert (await scheduler.run_pass(desk))["auto_close"] == 0  # a minute short of 3 days
        clock.advance(minutes=2)
        first = await scheduler.run_pass(desk)
        again = await scheduler.run_pass(desk)
        quiet, talks = await ticket(desk, 1), await ticket(desk, 2)
        runs = await scheduler.last_runs(desk.db)
        closing = [x for x in await outbox(desk, intents.CUSTOMER_MESSAGE)
                   if x.payload["mail"]["template"] == "ticket_auto_closed"]
    assert (first["auto_close"], again["auto_close"]) == (1, 0)
    assert {name: runs[name] for name in scheduler.JOBS} == {name: clock.now() for name in scheduler.JOBS}
    assert quiet["status"] == "closed" and talks["status"] == "open"
    assert [x.ticket_id for x in closing] == [1]  # one notice, to the quiet customer only
    assert [e["data"]["reason"] for e in quiet["events"] if e["kind"] == "status" and e["data"]["to"] == "closed"] \
        == ["resolved for 3 days"]


# ----- 6. idle time: from replies, or from any action -----------------------------------------


@pytest.mark.parametrize("basis, idle_minutes, flagged", [("replies", 240, True), ("any_action", 120, False)])
async def test_idle_time_counts_from_replies_or_from_any_action(tmp_path, basis, idle_minutes, flagged):
    async with helpdesk(tmp_path, utc("2026-12-07 09:00"),
                        tickets={"idle_time_based_on": basis, "idle_after_minutes": 180}) as (desk, clock):
        await customer_writes(desk)  # 09:00 the customer writes
        await ingest(desk)
        clock.advance(hours=1)  # 10:00 staff answer: a reply, and an action
        await actions.reply(desk, actor=BOB, number=1, text="Looking into it.", status_after=None)
        clock.advance(hours=2)  # 12:00 an internal note: an action, not a reply
        await actions.note(desk, actor=BOB, number=1, text="Called the exchange.")
        clock.advance(hours=2)  # 14:00
        counts = await scheduler.run_pass(desk)
        t = await ticket(desk, 1)
        overdue = await reports.list_tickets(desk.db, now=clock.now(), overdue=True, settings=desk.settings)
    assert t["idle_minutes"] == idle_minutes  # 240 since the reply at 10:00; 120 since the note at 12:00
    assert t["idle"] is flagged and counts["idle"] == int(flagged)
    assert [x["number"] for x in overdue] == ([1] if flagged else [])


# ----- card updates are coalesced ---------------------------------------------------------------


async def test_card_updates_waiting_to_go_out_are_folded_into_one(tmp_path):
    async with helpdesk(tmp_path, utc("2026-12-07 09:00")) as (desk, clock):
        await customer_writes(desk)
        await ingest(desk)
        async with desk.db.transaction() as s:  # the card went out: its update has a card to edit
            await s.execute(update(m.OutboxItem).where(m.OutboxItem.kind == intents.CARD)
                            .values(status="sent", remote_id="C1:1.0"))
        await actions.set_priority(desk, actor=BOB, number=1, priority=1)
        await actions.set_status(desk, actor=BOB, number=1, status="on_hold")
        clock.advance(hours=9)
        await scheduler.run_pass(desk)  # the idle flag re-renders the card too
        waiting = await outbox(desk, intents.CARD_UPDATE)
        # Once the dispatcher has taken an update, the next one is a new item.
        async with desk.db.transaction() as s:
            await s.execute(update(m.OutboxItem).where(m.OutboxItem.kind == intents.CARD_UPDATE)
                            .values(status="sending"))
        await actions.set_status(desk, actor=BOB, number=1, status="open")
        after = await outbox(desk, intents.CARD_UPDATE)
    [only] = waiting
    card = only.payload["card"]["ticket"]
    assert (card["priority"], card["status"], card["idle"]) == (1, "on_hold", True)
    assert [x.status for x in after] == ["sending", "pending"]
    assert after[1].payload["card"]["ticket"]["status"] == "open"


# ----- tickets open before the rules existed ----------------------------------------------------


async def test_tickets_open_before_the_upgrade_get_their_clocks_on_the_first_pass(tmp_path):
    async with helpdesk(tmp_path, utc("2026-12-07 09:00"), sla=TARGETS, weight=WEIGHT,
                        business_hours={"default": OFFICE}) as (desk, clock):
        await customer_writes(desk, sender="old@example.net")
        await customer_writes(desk, sender="answered@example.net")
        await ingest(desk)
        clock.advance(minutes=30)
        await actions.reply(desk, actor=BOB, number=2, text="Answered.", status_after=None)
        async with desk.db.transaction() as s:  # what the rows of the previous release hold
            await s.execute(update(m.Ticket).values(
                weight=0, first_response_at=None, first_response_due_at=None, resolution_due_at=None,
                sla_check_at=None, idle_at=None, awaiting_staff_since=None))
            await s.execute(delete(m.SchedulerJob))
        clock.advance(hours=8)  # Mon 17:30: P3 first response (480 from 09:00) was due at 17:00
        first = await scheduler.run_pass(desk)
        second = await scheduler.run_pass(desk)
        old, answered = await ticket(desk, 1), await ticket(desk, 2)
        breaches = await breach_notices(desk)
    assert (first[scheduler.ADOPT], scheduler.ADOPT in second) == (2, False)
    assert old["sla"]["first_response_due"] == "2026-12-07T17:00:00Z" and old["sla"]["first_response_breached"]
    assert answered["sla"]["first_response_at"] == "2026-12-07T09:30:00Z"
    assert not answered["sla"]["first_response_breached"]
    assert [n.ticket_id for n in breaches] == [1]  # announced once, for the unanswered one
    assert old["weight"] == 20 + 480 and answered["weight"] == 20  # P3 points + business minutes waited
