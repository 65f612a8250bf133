"""Benchmark: building one manager digest over a handler group with 100,000 tickets of history.

Not a test. Run from the project root:

    python bench/digest.py [--tickets 100000] [--other 4000] [--runs 3] [--databases sqlite,postgresql]

For each database it seeds, straight into the tables and in chunks, ``--tickets`` tickets of one
handler group (support, 8 members) and ``--other`` of a second one (sales, 3 members), arrived
over the 90 days before NOW (weekdays and office hours busier), each with the history the
lifecycle would have left: its ``created`` event (3 % opened by staff), a ``reply`` event per
staff reply, status events (new → waiting after a reply, back to open when the customer
answers, → resolved, → closed by the auto-close; some one-touch, some on hold for weeks, a few
reopened), some priority changes, and the SLA columns that history gives in the group's
business hours (first response and resolution, their due instants and pauses, breaches with
``*_alerted_at`` set). What NOW cuts off is still open (about 5 %, in every open status). Every
ticket has its Slack card in the outbox (sent, with its permalink); a few undelivered items and
some quarantined mail complete the picture.

Then, each in a fresh process (so its memory is the digest's alone), it builds with
``digest_report.build`` inside ``db.reading()``, as ``digest_delivery.report_for`` does:

  * **daily**: the daily digest of the busiest of the last 14 days (most tickets created);
  * **weekly**: the weekly digest of the last full week (Monday to Sunday before NOW).

Each is built once cold, then ``--runs`` times warm (best is reported), then once under
``tracemalloc`` for the peak of Python allocations. The resident set's growth (``VmHWM`` after
the build less ``VmRSS`` before it, the high-water mark reset first) is that of the cold build:
the first digest a worker builds. Beside it, in the same process:

  * **scan** (the floor it is held against): one plain SELECT of the group's ticket ids and
    ``created_at``, best of ``--runs``; the digest reads a part of that history, so it should
    approach it, not be many times slower;
  * **render**: the digest's HTML and text through ``EmailComposer.render`` of the snapshot the
    outbox keeps, best of ``--runs``.

Target (issue): one digest over 100,000 tickets in under 2 s. ``--profile`` also prints the
cProfile of one warm build per digest on stderr.

PostgreSQL: a throw-away cluster (``initdb``; ``DESKBELL_TEST_POSTGRES`` to use a running
server), skipped with a note when the binaries are missing; ``ANALYZE`` after seeding. SQLite
is left without statistics, as Deskbell leaves it. Progress on stderr, the results table on
stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, insert, select  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.core import digest_report, groups, intents, sla  # noqa: E402
from bot.core.business_time import Calendar  # noqa: E402
from bot.core.digest_schedule import latest_due, period_starting  # noqa: E402
from bot.core.views import snapshot  # noqa: E402
from bot.outbound.compose import EmailComposer  # noqa: E402
from bot.store import migrate  # noqa: E402
from bot.store import models as m  # noqa: E402
from bot.store.db import Database  # noqa: E402

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)  # a Monday afternoon
ZONE = "Europe/Amsterdam"
DAYS = 90
GROUPS = {"support": [f"USUPPORT{n}" for n in range(8)], "sales": [f"USALES{n}" for n in range(3)]}
CUSTOMERS = 5000
CHUNK = 5000
TEMPLATE = "digest/manager/digest"
PAUSED = sla.PAUSED
PRIORITIES, PRIORITY_SHARE = (1, 2, 3, 4, 5), (5, 15, 50, 20, 10)
TARGET = 2.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def settings_for(url: str) -> Settings:
    recipients = ["head-of-support@example.com"]
    return Settings.model_validate({
        "database": {"url": url},
        "business_hours": {"default": {"timezone": ZONE, "days": {"mon-fri": "08:00-18:00"}}},
        "handler_groups": [{"name": name, "slack_channel": f"#{name}", "members": members}
                           for name, members in GROUPS.items()],
        "tickets": {"idle_after_minutes": 240, "auto_close_resolved_after_days": 3},
        "digests": [
            {"name": "daily", "at": "08:00", "timezone": ZONE, "recipients": recipients, "groups": ["support"]},
            {"name": "weekly", "at": "08:00", "timezone": ZONE, "recipients": recipients, "groups": ["support"],
             "period": "weekly", "day": "mon"}],
    })


# ----- seeding ----------------------------------------------------------------------------------


def arrivals(n: int, rng: random.Random) -> list[datetime]:
    """``n`` instants over the DAYS local days before NOW: weekdays about three times as busy as
    weekends, four in five in office hours."""
    zone = ZoneInfo(ZONE)
    today = NOW.astimezone(zone).date()
    days = [today - timedelta(days=d) for d in range(DAYS)]
    weights = [1.0 if d.weekday() < 5 else 0.3 for d in days]
    result = []
    for day in rng.choices(days, weights, k=n):
        while True:
            minute = (rng.uniform(8 * 60, 18 * 60) if rng.random() < 0.8 else rng.uniform(0, 24 * 60))
            at = (datetime.combine(day, datetime.min.time(), tzinfo=zone) + timedelta(minutes=minute)
                  ).astimezone(timezone.utc)
            if at < NOW - timedelta(minutes=1):
                break
        result.append(at)
    return result


class Cut(Exception):
    """The history reached NOW: what is left has not happened yet."""


class Life:
    """One ticket's history, with the columns the lifecycle keeps as it goes (``bot.core.sla``:
    due = ``target + paused`` business minutes after opening; a pause that begins after a
    target was missed does not move it)."""

    def __init__(self, number: int, created: datetime, priority: int, cal: Calendar, settings: Settings,
                 customer: str, rng: random.Random, by_staff: bool) -> None:
        self.number, self.created, self.cal, self.customer, self.rng = number, created, cal, customer, rng
        self.fr_target = settings.sla.first_response_minutes[priority]
        self.res_target = settings.sla.resolution_minutes[priority]
        self.fr_due = cal.add_minutes(created, self.fr_target)
        self.res_due = cal.add_minutes(created, self.res_target)
        self.status = "open" if by_staff else "new"  # as bot.core.staff_opened opens them
        self.paused_at: datetime | None = None
        self.pauses: list[tuple[datetime, datetime]] = []
        self.res_paused = 0
        self.first_response_at = self.resolved_at = self.closed_at = None
        self.awaiting: datetime | None = None if by_staff else created
        self.last_customer, self.last_staff, self.last_action = created, None, created
        self.events: list[tuple[Any, ...]] = []

    def at(self, when: datetime) -> datetime:
        if when >= NOW:
            raise Cut
        self.last_action = max(self.last_action, when)
        return when

    def event(self, when: datetime, kind: str, actor: str, staff_id: int | None, **data: Any) -> None:
        self.events.append((when, self.number, len(self.events), kind, actor, staff_id, data))

    def status_to(self, when: datetime, to: str, actor: str, staff_id: int | None = None) -> None:
        old = self.status
        if to == old:  # the lifecycle records no change
            return
        self.at(when)
        if to in PAUSED and old not in PAUSED:
            self.paused_at = when
        elif to not in PAUSED and old in PAUSED:
            began = self.paused_at
            if self.res_due > began:
                self.res_paused += self.cal.minutes_between(began, when)
                self.res_due = self.cal.add_minutes(self.created, self.res_target + self.res_paused)
            self.pauses.append((began, when))
            self.paused_at = None
        self.resolved_at = when if to == "resolved" else (self.resolved_at if to == "closed" else None)
        self.closed_at = when if to == "closed" else None
        self.status = to
        self.event(when, "status", actor, staff_id, **{"from": old, "to": to})

    def reply(self, when: datetime, staff: tuple[int, str]) -> None:
        self.at(when)
        self.event(when, "reply", f"staff:{staff[1]}", staff[0], message=None, channel="email")
        if self.first_response_at is None:
            self.first_response_at = when
        self.awaiting, self.last_staff = None, when

    def customer_writes(self, when: datetime) -> None:
        self.at(when)
        self.awaiting = self.awaiting or when
        self.last_customer = when

    def later(self, when: datetime, business_minutes: float) -> datetime:
        """``business_minutes`` of the group's hours after ``when``, give or take a minute."""
        return self.cal.add_minutes(when, max(1, round(business_minutes))) + timedelta(seconds=self.rng.random() * 59)


def live(life: Life, rng: random.Random, group: str, staff: tuple[int, str], by_staff: bool,
         priorities: tuple[int, int]) -> None:
    """The story of one ticket, up to NOW (``Cut``)."""
    created, actor = life.created, f"staff:{staff[1]}"
    staff_actor = (actor, staff[0])
    life.event(created, "created", actor if by_staff else f"customer:{life.customer}", staff[0] if by_staff else None,
               channel="email", group=group, **({"by_staff": True} if by_staff else {}))
    if priorities[0] != priorities[1]:
        life.event(life.at(created + timedelta(minutes=rng.uniform(2, 40))), "priority", *staff_actor,
                   **{"from": priorities[0], "to": priorities[1]})

    def lognormal() -> float:  # median 0.6 of the target: about one in five misses it
        return rng.lognormvariate(-0.5, 0.6)

    r = life.later(created, life.fr_target * lognormal())
    life.reply(r, staff)
    path = rng.random()
    if path < 0.28:  # answered and solved in one go
        life.status_to(r, "resolved", *staff_actor)
    elif path < 0.36:  # answered, then worked on
        life.status_to(r, "open", *staff_actor)
        done = life.later(r, life.res_target * 0.4 * lognormal())
        if rng.random() < 0.5:
            life.reply(done, staff)
        life.status_to(done, "resolved", *staff_actor)
    elif path < 0.375:  # on hold for weeks (a part on order, a third party)
        life.status_to(r, "on_hold", *staff_actor)
        back = life.later(r + timedelta(days=rng.uniform(3, 45)), 1)
        life.status_to(back, "open", *staff_actor)
        life.status_to(life.later(back, rng.uniform(30, 240)), "resolved", *staff_actor)
    else:  # waiting on the customer after the reply
        life.status_to(r, "waiting", *staff_actor)
        for _ in range(3):
            if rng.random() < 0.35:  # the customer answers
                c = r + timedelta(hours=rng.expovariate(1 / 14))
                life.customer_writes(c)
                life.status_to(c, "open", f"customer:{life.customer}")
                r = life.later(c, life.fr_target * lognormal())
                life.reply(r, staff)
                if rng.random() < 0.6:
                    life.status_to(r, "resolved", *staff_actor)
                    break
                life.status_to(r, "waiting", *staff_actor)
            else:  # no answer: staff resolve it a few days later
                life.status_to(life.later(r + timedelta(days=rng.uniform(2, 7)), rng.uniform(1, 90)),
                               "resolved", *staff_actor)
                break
        else:
            life.status_to(life.later(r + timedelta(days=2), 30), "resolved", *staff_actor)
    if rng.random() < 0.03:  # reopened by the customer
        c = life.resolved_at + timedelta(hours=rng.expovariate(1 / 30))
        life.customer_writes(c)
        life.status_to(c, "open", f"customer:{life.customer}")
        r = life.later(c, life.fr_target * lognormal())
        life.reply(r, staff)
        life.status_to(r, "resolved", *staff_actor)
    if rng.random() < 0.4:  # auto-closed 3 days after (the rest was closed by hand later, or not yet)
        life.status_to(life.resolved_at + timedelta(days=3, seconds=rng.uniform(0, 30)), "closed", "system")


def ticket_row(life: Life, group_id: int, staff: tuple[int, str], priority: int, contact_id: int,
               rng: random.Random) -> dict[str, Any]:
    """The ticket's columns as its history leaves them at NOW."""
    def running_at(instant: datetime) -> bool:
        pauses = [*life.pauses, *([(life.paused_at, NOW)] if life.paused_at else [])]
        return not any(a <= instant < b for a, b in pauses)

    alert = timedelta(seconds=rng.uniform(1, 30))  # the next scheduler pass
    fr_end = life.first_response_at or NOW
    fr_alerted = life.fr_due + alert if life.fr_due < fr_end and life.fr_due + alert < NOW else None
    res_end = life.resolved_at if life.status in ("resolved", "closed") else NOW
    res_alerted = (life.res_due + alert if life.res_due < res_end and life.res_due + alert < NOW
                   and running_at(life.res_due) else None)
    is_open = life.status not in ("resolved", "closed")
    pending = [due for due, alerted, done in ((life.fr_due, fr_alerted, life.first_response_at),
                                              (life.res_due, res_alerted, None)) if not alerted and not done]
    last_reply = max(x for x in (life.last_customer, life.last_staff) if x is not None)
    return {
        "id": life.number, "subject": f"Ticket {life.number}: printer on floor {life.number % 7} offline",
        "status": life.status, "priority": priority, "group_id": group_id, "assignee_id": staff[0],
        "requester_id": contact_id, "channel": "email", "reply_token": uuid.UUID(int=rng.getrandbits(128)).hex,
        "via_email": True, "unread": False, "weight": rng.randrange(0, 60), "door": "smtp",
        "created_at": life.created, "updated_at": life.last_action, "last_action_at": life.last_action,
        "last_customer_message_at": life.last_customer, "last_staff_reply_at": life.last_staff,
        "last_reply_at": last_reply, "awaiting_staff_since": life.awaiting if is_open else None,
        "resolved_at": life.resolved_at, "closed_at": life.closed_at,
        "idle_at": last_reply + timedelta(minutes=240) if is_open else None,
        "first_response_at": life.first_response_at, "first_response_due_at": life.fr_due,
        "resolution_due_at": life.res_due, "sla_paused_at": life.paused_at,
        "first_response_paused_minutes": 0, "resolution_paused_minutes": life.res_paused,
        "sla_check_at": min(pending) if is_open and pending and life.paused_at is None else None,
        "first_response_alerted_at": fr_alerted, "resolution_alerted_at": res_alerted,
        "first_response_escalated_at": fr_alerted + timedelta(minutes=60)
        if fr_alerted and fr_alerted + timedelta(minutes=60) < fr_end else None,
        "resolution_escalated_at": res_alerted + timedelta(minutes=60)
        if res_alerted and res_alerted + timedelta(minutes=60) < res_end else None,
    }


def card_row(number: int, channel: str, created: datetime) -> dict[str, Any]:
    ts = f"{created.timestamp():.6f}"
    return {"channel": "slack", "kind": intents.CARD, "ticket_id": number, "message_id": None,
            "ordering_key": f"ticket:{number}", "payload": {"destination": channel, "card": {"number": number}},
            "status": "sent", "attempts": 1, "due_at": created, "created_at": created,
            "sent_at": created + timedelta(seconds=1), "remote_id": f"C{channel[1:].upper()}:{ts}",
            "remote_link": f"https://example.slack.com/archives/C{channel[1:].upper()}/p{ts.replace('.', '')}"}


async def insert_chunks(db: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with db.transaction() as s:
            await s.execute(insert(table), rows[start:start + CHUNK])


async def seed(db: Database, settings: Settings, tickets: int, other: int) -> dict[str, Any]:
    """Returns what was seeded: counts, the busiest recent day, how long it took."""
    rng = random.Random(tickets)
    started = time.perf_counter()
    await groups.sync_groups(db, settings)
    async with db.transaction() as s:
        group_ids = {g.name: g.id for g in (await s.scalars(select(m.HandlerGroup))).all()}
        await s.execute(insert(m.Staff), [{"slack_user_id": u, "name": f"Agent {u[-1]} of {g}", "created_at": NOW,
                                           "is_admin": False} for g, members in GROUPS.items() for u in members])
        await s.execute(insert(m.Contact), [{"email": f"c{n}@example.net", "name": f"Customer {n}",
                                             "created_at": NOW - timedelta(days=DAYS), "sms_opted_out": False}
                                            for n in range(CUSTOMERS)])
        staff = {row.slack_user_id: row.id for row in (await s.execute(select(m.Staff.id, m.Staff.slack_user_id))).all()}
        contact_ids = list((await s.scalars(select(m.Contact.id).order_by(m.Contact.id))).all())
    members = {g: [(staff[u], u) for u in us] for g, us in GROUPS.items()}
    cal = sla.calendar(settings, "support")
    opened = sorted([(at, "support") for at in arrivals(tickets, rng)] + [(at, "sales") for at in arrivals(other, rng)])
    ticket_rows: list[dict[str, Any]] = []
    all_events: list[tuple[Any, ...]] = []
    cards: list[dict[str, Any]] = []
    for number, (created, group) in enumerate(opened, start=1):
        final = rng.choices(PRIORITIES, PRIORITY_SHARE)[0]
        first = rng.choice(PRIORITIES) if rng.random() < 0.08 else final
        contact = rng.randrange(CUSTOMERS)
        who = rng.choice(members[group])
        by_staff = rng.random() < 0.03
        life = Life(number, created, final, cal, settings, f"c{contact}@example.net", rng, by_staff)
        try:
            live(life, rng, group, who, by_staff, (first, final))
        except Cut:
            pass
        all_events.extend(life.events)
        ticket_rows.append(ticket_row(life, group_ids[group], who, final, contact_ids[contact], rng))
        cards.append(card_row(number, f"#{group}", created + timedelta(seconds=2)))
    generated = time.perf_counter() - started
    await insert_chunks(db, m.Ticket, ticket_rows)
    all_events.sort(key=lambda e: (e[0], e[1], e[2]))  # ids in the order they happened
    await insert_chunks(db, m.Event, [{"ticket_id": e[1], "kind": e[3], "actor": e[4], "staff_id": e[5],
                                       "data": e[6], "created_at": e[0]} for e in all_events])
    dead = [{**card_row(t["id"], "#support", t["created_at"]), "kind": intents.CUSTOMER_MESSAGE, "channel": "email",
             "ordering_key": None, "status": "dead", "remote_id": None, "remote_link": None, "sent_at": None,
             "attempts": 10, "payload": {}}
            for t in rng.sample(ticket_rows[-3000:], 30)]
    dead += [{**d, "ticket_id": None, "kind": intents.NOTICE, "channel": "slack"} for d in dead[:3]]
    await insert_chunks(db, m.OutboxItem, sorted(cards + dead, key=lambda r: r["created_at"]))
    async with db.transaction() as s:
        raw = [{"channel": "email", "source_id": f"held:{n}", "state": "held", "door": "smtp", "size": 1,
                "sha256": "0" * 64, "data": b"x", "received_at": NOW - timedelta(hours=n)} for n in range(12)]
        await s.execute(insert(m.RawMessage), raw)
        raw_ids = (await s.scalars(select(m.RawMessage.id))).all()
        await s.execute(insert(m.Quarantine), [{"raw_message_id": i, "reason": "unparseable", "detail": "",
                                                "status": "held", "created_at": NOW} for i in raw_ids])
    if not db.is_sqlite:
        async with db.write_engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
    support = [t for t in ticket_rows if t["group_id"] == group_ids["support"]]
    zone = settings.digests[0].zone
    recent = Counter(t["created_at"].astimezone(zone).date() for t in support
                     if t["created_at"] >= NOW - timedelta(days=15))
    today = NOW.astimezone(zone).date()
    busiest = max((d for d in recent if today - timedelta(days=14) <= d < today), key=lambda d: (recent[d], d))
    return {"tickets": len(ticket_rows), "support": len(support), "events": len(all_events),
            "kinds": dict(Counter(e[3] for e in all_events)), "outbox": len(cards) + len(dead),
            "open": dict(Counter(t["status"] for t in support if t["status"] not in ("resolved", "closed"))),
            "busiest": busiest.isoformat(), "busiest_created": recent[busiest],
            "generated": generated, "seconds": time.perf_counter() - started}


# ----- measuring (in a process of its own) ------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


async def measure(url: str, name: str, first_day: date, runs: int, profile: bool) -> dict[str, Any]:
    settings = settings_for(url)
    digest = next(d for d in settings.digests if d.name == name)
    period = period_starting(digest, first_day)
    db = Database(url)
    statements = [0]
    event.listen(db.read_engine.sync_engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))

    async def build() -> digest_report.DigestReport:
        async with db.reading() as s:
            return await digest_report.build(s, settings, digest, "support", period, now=NOW)

    async def scan() -> int:
        async with db.reading() as s:
            group_id = await s.scalar(select(m.HandlerGroup.id).where(m.HandlerGroup.name == "support"))
            return len((await s.execute(select(m.Ticket.id, m.Ticket.created_at)
                                        .where(m.Ticket.group_id == group_id))).all())

    try:
        async with db.reading() as s:  # connect (and the pool) outside the measured build
            await s.scalar(select(1))
        gc.collect()
        rss_before = _status_kib("VmRSS")
        reset = _reset_peak()
        started = time.perf_counter()
        report = await build()
        cold = time.perf_counter() - started
        rss_growth = _status_kib("VmHWM") - rss_before if reset else None
        walls, cpus = [], []
        for _ in range(runs):
            statements[0] = 0
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            report = await build()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        queries = statements[0]
        gc.collect()
        tracemalloc.start()
        await build()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        scans = []
        for _ in range(runs):
            started = time.perf_counter()
            scanned = await scan()
            scans.append(time.perf_counter() - started)
        composer = EmailComposer(from_address="support@example.com", from_name="Support", loop_marker="x")
        renders, html_bytes = [], 0
        for _ in range(runs):
            started = time.perf_counter()
            text, html = composer.render(TEMPLATE, {"report": snapshot(report)})
            renders.append(time.perf_counter() - started)
            html_bytes = len(html.encode())
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await build()
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
            say(f"--- cProfile, {name} digest, {url.split(':')[0]} ---\n{out.getvalue()}")
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            say(out.getvalue())
        return {
            "digest": name, "first_day": period.first_day.isoformat(), "last_day": period.last_day.isoformat(),
            "cold": cold, "best": min(walls), "walls": walls, "cpu": cpus[walls.index(min(walls))],
            "queries": queries, "peak_python": peak, "rss_growth_kib": rss_growth,
            "scan": min(scans), "scanned": scanned, "render": min(renders), "html_bytes": html_bytes,
            "text_bytes": len(text.encode()),
            "figures": {"new": report.new.value, "resolved": report.resolved.value, "closed": report.closed.value,
                        "reopened": report.reopened.value, "backlog": report.backlog_total.value,
                        "open": report.open_count, "first_response": [report.first_response.met,
                                                                       report.first_response.breached],
                        "resolution": [report.resolution.met, report.resolution.breached]},
        }
    finally:
        await db.dispose()


def measure_in_child(url: str, name: str, first_day: str, runs: int, profile: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", url, "--digest", name, "--first-day", first_day,
               "--runs", str(runs), *(["--profile"] if profile else [])]
    done = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----- the run ----------------------------------------------------------------------------------


async def one(url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_for(url)
    db = Database(url)
    try:
        await migrate.upgrade(db)
        seeded = await seed(db, settings, args.tickets, args.other)
    finally:
        await db.dispose()
    say(f"    seeded {seeded['tickets']:,} tickets ({seeded['support']:,} support), {seeded['events']:,} events "
        f"{seeded['kinds']}, {seeded['outbox']:,} outbox rows in {seeded['seconds']:.1f} s "
        f"(generating {seeded['generated']:.1f} s); open support tickets {seeded['open']}; busiest recent day "
        f"{seeded['busiest']} ({seeded['busiest_created']} new)")
    weekly = next(d for d in settings.digests if d.name == "weekly")
    days = {"daily": seeded["busiest"], "weekly": latest_due(weekly, NOW).first_day.isoformat()}
    results = {}
    for name in ("daily", "weekly"):
        r = measure_in_child(url, name, days[name], args.runs, args.profile)
        say(f"    {name} {r['first_day']}..{r['last_day']}: cold {r['cold']:.3f} s, best {r['best']:.3f} s "
            f"(runs {', '.join(f'{w:.3f}' for w in r['walls'])}; cpu {r['cpu']:.3f} s, {r['queries']} statements), "
            f"peak Python {r['peak_python'] / 2**20:.1f} MiB, RSS +{(r['rss_growth_kib'] or 0) / 1024:.1f} MiB, "
            f"scan {r['scan']:.3f} s ({r['scanned']:,} rows), render {r['render'] * 1000:.1f} ms; {r['figures']}")
        results[name] = r
    return {"seeded": seeded, **results}


def table(results: list[tuple[str, dict[str, Any]]]) -> None:
    print("| database | digest (period) | build, best of runs (cold) | CPU | statements | peak Python "
          "(tracemalloc) | RSS growth, cold | scan of the group's ids + created_at | digest / scan | "
          "render HTML + text | target < 2 s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for database, run in results:
        for name in ("daily", "weekly"):
            r = run[name]
            period = r["first_day"] if name == "daily" else f"{r['first_day']} – {r['last_day']}"
            growth = f"{r['rss_growth_kib'] / 1024:.1f} MiB" if r["rss_growth_kib"] is not None else "—"
            print(f"| {database} | {name} ({period}) | {r['best']:.3f} s ({r['cold']:.3f} s) | {r['cpu']:.3f} s | "
                  f"{r['queries']} | {r['peak_python'] / 2**20:.1f} MiB | {growth} | "
                  f"{r['scan']:.3f} s ({r['scanned']:,} rows) | {r['best'] / r['scan']:.1f} | "
                  f"{r['render'] * 1000:.1f} ms | {'met' if r['best'] < TARGET else 'MISSED'} |")
    print()
    print("| database | digest | new | resolved | closed | reopened | backlog at end | open now | "
          "first response met / breached | resolution met / breached |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for database, run in results:
        for name in ("daily", "weekly"):
            f = run[name]["figures"]
            print(f"| {database} | {name} | {f['new']:,} | {f['resolved']:,} | {f['closed']:,} | {f['reopened']} | "
                  f"{f['backlog']:,} | {f['open']:,} | {f['first_response'][0]:,} / {f['first_response'][1]:,} | "
                  f"{f['resolution'][0]:,} / {f['resolution'][1]:,} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets of the digest's group")
    parser.add_argument("--other", type=int, default=4000, help="tickets of a second group")
    parser.add_argument("--runs", type=int, default=3, help="warm builds per digest (the best counts)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--profile", action="store_true", help="cProfile one warm build per digest (stderr)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a database URL: the child's part
    parser.add_argument("--digest", help=argparse.SUPPRESS)
    parser.add_argument("--first-day", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        result = await measure(args.measure, args.digest, date.fromisoformat(args.first_day), args.runs, args.profile)
        print(json.dumps(result))
        return
    work = Path(tempfile.mkdtemp(prefix="deskbell-digest-"))
    cluster, server = None, os.environ.get("DESKBELL_TEST_POSTGRES")
    results: list[tuple[str, dict[str, Any]]] = []
    say(f"$ python bench/digest.py {' '.join(sys.argv[1:])}".rstrip())
    try:
        for database in args.databases.split(","):
            if database == "postgresql" and not server:
                try:
                    from tests.pg import Cluster

                    cluster = Cluster()
                    server = cluster.start()
                except (FileNotFoundError, OSError) as exc:
                    say(f"PostgreSQL skipped: {exc}")
                    continue
            if database == "sqlite":
                url = f"sqlite+aiosqlite:///{work / 'digest.db'}"
            else:
                from tests.pg import psql, with_database

                name = f"digest_{uuid.uuid4().hex[:6]}"
                psql(server, f"CREATE DATABASE {name}")
                url = with_database(server, name, driver="asyncpg")
            say(f"{database}, {args.tickets:,} tickets of the group (+{args.other:,} of another)")
            results.append((database, await one(url, args)))
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    table(results)


if __name__ == "__main__":
    asyncio.run(main())
