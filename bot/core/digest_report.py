"""The figures of a manager digest: one handler group, one period, compared with the period before.

What each number means (the digest's footer says the same to its readers):

- **new**: tickets of the group created in the period. **resolved / closed / reopened**:
  tickets that entered that state in the period, each counted once however often it did
  (reopened: from resolved or closed back to work). A ticket counts in the group it is in now.
- **backlog**: tickets new, open, waiting or on hold at the end of the period, by status and
  priority, rebuilt from the status and priority history (so a later change does not rewrite
  a past digest).
- **SLA met / breached**: each target reaches its verdict once: met when the first response
  (or the resolution) came on or before its due instant, breached at the due instant
  otherwise; a verdict counts in the period it fell in. Tickets staff opened themselves have
  no first-response verdict.
- **times**: business minutes in the group's hours from opening to the first response (of
  first responses in the period) and to the resolution (of resolutions in the period), less
  the time the SLA clock stood still (waiting on the customer, on hold). Median, and p90 by
  nearest rank.
- **right now** (as of building the digest): heaviest and oldest open tickets, load per staff
  member (open tickets, how many are past an SLA target, replies sent in the period), tickets
  waiting on the customer or on hold, undelivered outbox items and quarantined mail.

Reads only (the caller's session), never writes; no rendering, no clock (``now`` is given).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config import Settings
from bot.config.schema import Digest
from bot.core import intents, sla, weighing
from bot.core.business_time import Calendar
from bot.core.digest_schedule import Period, period_starting, previous
from bot.core.errors import BadRequest
from bot.core.lifecycle import OPEN_STATUSES
from bot.store import models as m

CHART_DAYS = 7
FINISHED = ("resolved", "closed")
STATUS_WORDS = {"new": "New", "open": "Open", "waiting": "Waiting on customer", "on_hold": "On hold"}


@dataclass(frozen=True)
class Compared:
    value: int | float | None
    previous: int | float | None


@dataclass(frozen=True)
class SlaFigure:
    met: int
    breached: int
    percent: float | None  # met of all verdicts; None: no verdict in the period
    previous_percent: float | None


@dataclass(frozen=True)
class TimeFigure:
    """Business minutes."""

    count: int
    median: float | None
    p90: float | None
    previous_median: float | None
    previous_p90: float | None


@dataclass(frozen=True)
class BacklogRow:
    status: str
    label: str
    by_priority: tuple[int, ...]  # in the order of DigestReport.priorities
    total: int
    previous_total: int


@dataclass(frozen=True)
class DayBar:
    day: str  # ISO date in the digest's time zone
    label: str  # "Mon 23 Nov"
    new: int
    resolved: int
    sla_met: int
    sla_breached: int
    sla_percent: float | None


@dataclass(frozen=True)
class TicketLine:
    number: int
    subject: str
    status: str
    priority: int
    weight: int
    assignee: str | None  # a name (or Slack id when Slack never told us the name)
    age_minutes: int  # since it was opened, wall clock
    waiting_minutes: int | None  # business minutes waiting on staff; None: the customer's turn
    overdue: bool  # past an SLA target
    link: str | None  # the Slack card
    since: str | None = None  # waiting list: waiting/on hold since (local ISO time)


@dataclass(frozen=True)
class StaffLoad:
    name: str
    slack_user_id: str
    open: int
    overdue: int
    replies: int  # in the period


@dataclass(frozen=True)
class DigestReport:
    digest: str
    group: str
    period: str  # daily | weekly
    timezone: str
    first_day: str  # ISO dates, local
    last_day: str
    start: str  # ISO instants, local
    end: str
    generated_at: str
    new: Compared
    resolved: Compared
    closed: Compared
    reopened: Compared
    priorities: tuple[int, ...]
    backlog: tuple[BacklogRow, ...]
    backlog_total: Compared
    first_response: SlaFigure
    resolution: SlaFigure
    first_response_time: TimeFigure
    resolution_time: TimeFigure
    chart: tuple[DayBar, ...]
    chart_max: int
    heaviest: tuple[TicketLine, ...]
    oldest: tuple[TicketLine, ...]
    waiting: tuple[TicketLine, ...]
    waiting_count: int
    on_hold_count: int
    open_count: int
    load: tuple[StaffLoad, ...]
    dead_outbox: int  # undelivered items about the group's tickets
    dead_outbox_other: int  # undelivered items about no ticket (notices, digests)
    quarantined: int  # mail held for the whole desk
    quiet: bool  # nothing happened in the period


class Window:
    """[start, end): membership of an instant."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end

    def __contains__(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


async def build(s: AsyncSession, settings: Settings, digest: Digest, group_name: str, period: Period,
                *, now: datetime) -> DigestReport:
    group = await s.scalar(select(m.HandlerGroup).where(m.HandlerGroup.name == group_name))
    if group is None:
        raise BadRequest(f"no handler group {group_name!r} has any tickets yet")
    before = previous(digest, period)
    current, earlier = Window(period.start, period.end), Window(before.start, before.end)
    days = [period_starting(digest, period.last_day - timedelta(days=n)) for n in range(CHART_DAYS - 1, -1, -1)]
    chart_days = [Window(d.start, d.end) for d in days]  # one calendar day each, even in a week digest
    since = min(before.start, days[0].start)
    cal = sla.calendar(settings, group_name)
    local = digest.zone

    created = sorted((await s.scalars(select(m.Ticket.created_at).where(
        m.Ticket.group_id == group.id, m.Ticket.created_at >= since, m.Ticket.created_at < period.end))).all())
    changes = (await s.execute(select(m.Event.ticket_id, m.Event.created_at, _field("from"), _field("to"))
                               .join(m.Ticket, m.Ticket.id == m.Event.ticket_id).where(
        m.Event.kind == "status", m.Event.created_at >= since, m.Event.created_at < period.end,
        m.Ticket.group_id == group.id))).all()
    verdicts = await _verdicts(s, group.id, since, period.end, now=now)
    windows = [current, earlier, *chart_days]
    # One pass over the changes: each lands in the windows that hold it (sets: a ticket
    # that entered a state twice in a window counts once).
    entered: list[dict[str, set[int]]] = [{"resolved": set(), "closed": set(), "reopened": set()} for _ in windows]
    for ticket_id, at, was, became in changes:
        kinds = [k for k, hit in (("resolved", became == "resolved"), ("closed", became == "closed"),
                                  ("reopened", was in FINISHED and became in OPEN_STATUSES)) if hit]
        if kinds:
            for w, window in enumerate(windows):
                if at in window:
                    for kind in kinds:
                        entered[w][kind].add(ticket_id)

    def counts(window: Window) -> dict[str, int]:
        sets = entered[windows.index(window)]
        return {"new": bisect_left(created, window.end) - bisect_left(created, window.start),
                **{kind: len(ids) for kind, ids in sets.items()}}

    now_counts, before_counts = counts(current), counts(earlier)
    sla_now, sla_before = _sla(verdicts, current), _sla(verdicts, earlier)  # (first response, resolution)
    priorities = tuple(range(1, settings.tickets.priorities + 1))
    at_end, at_start = await _backlog(s, group.id, instants=(period.end, period.start))
    backlog = tuple(BacklogRow(status=status, label=STATUS_WORDS[status],
                               by_priority=tuple(at_end.get((status, p), 0) for p in priorities),
                               total=sum(n for (st, _), n in at_end.items() if st == status),
                               previous_total=sum(n for (st, _), n in at_start.items() if st == status))
                    for status in OPEN_STATUSES)
    chart = []
    for day, window in zip(days, chart_days):
        met, breached = (sum(pair) for pair in zip(*(_count(verdicts, window, target) for target in (0, 1))))
        day_counts = counts(window)
        chart.append(DayBar(day=day.first_day.isoformat(), label=f"{day.first_day:%a %d %b}",
                            new=day_counts["new"], resolved=day_counts["resolved"], sla_met=met,
                            sla_breached=breached, sla_percent=_percent(met, breached)))
    right_now = await _right_now(s, settings, digest, group, cal, period, now=now)
    quiet = not any(now_counts.values()) and not any(sum(pair) for pair in sla_now)
    return DigestReport(
        digest=digest.name, group=group_name, period=digest.period, timezone=digest.timezone,
        first_day=period.first_day.isoformat(), last_day=period.last_day.isoformat(),
        start=period.start.astimezone(local).isoformat(), end=period.end.astimezone(local).isoformat(),
        generated_at=now.astimezone(local).isoformat(),
        **{k: Compared(now_counts[k], before_counts[k]) for k in now_counts},
        priorities=priorities, backlog=backlog,
        backlog_total=Compared(sum(at_end.values()), sum(at_start.values())),
        first_response=_sla_figure(sla_now[0], sla_before[0]), resolution=_sla_figure(sla_now[1], sla_before[1]),
        first_response_time=_times(verdicts, current, earlier, cal, FIRST),
        resolution_time=_times(verdicts, current, earlier, cal, LAST),
        chart=tuple(chart), chart_max=max([1, *(max(b.new, b.resolved) for b in chart)]),
        quiet=quiet, **right_now)


# ----- SLA verdicts and times -----------------------------------------------------------------

FIRST, LAST = "first_response", "resolution"


async def _verdicts(s: AsyncSession, group_id: int, since: datetime, end: datetime, *, now: datetime) -> list[Any]:
    """The group's tickets with an SLA verdict or a time to measure in [since, end)."""
    t = m.Ticket
    def within(column: Any) -> Any:
        return and_(column >= since, column < end)
    opened = aliased(m.Event)
    rows = (await s.execute(select(
        t.id, t.status, t.created_at, t.first_response_at, t.first_response_due_at,
        t.first_response_alerted_at, t.first_response_paused_minutes, t.resolved_at, t.resolution_due_at,
        t.resolution_alerted_at, t.resolution_paused_minutes, t.sla_paused_at,
        opened.data["by_staff"].as_boolean().label("by_staff"))
        .outerjoin(opened, and_(opened.ticket_id == t.id, opened.kind == "created")).where(
        t.group_id == group_id,
        or_(within(t.first_response_at), within(t.first_response_due_at), within(t.resolution_due_at),
            and_(t.status.in_(FINISHED), within(t.resolved_at)))))).all()
    return [_Verdicts.of(row, now, staff_opened=bool(row.by_staff)) for row in rows]


@dataclass(frozen=True)
class _Verdicts:
    """One ticket's verdict per target: (met?, at) or None while undecided; and what its
    times are measured from."""

    first: tuple[bool, datetime] | None
    last: tuple[bool, datetime] | None
    row: Any

    @classmethod
    def of(cls, r: Any, now: datetime, *, staff_opened: bool) -> "_Verdicts":
        running = r.sla_paused_at is None
        first = None if staff_opened else _verdict(r.first_response_at, r.first_response_due_at,
                                                    r.first_response_alerted_at, running, now)
        finished = r.resolved_at if r.status in FINISHED else None
        last = _verdict(finished, r.resolution_due_at, r.resolution_alerted_at, running, now)
        return cls(first=first, last=last, row=r)


def _verdict(done: datetime | None, due: datetime | None, alerted: datetime | None, running: bool,
             now: datetime) -> tuple[bool, datetime] | None:
    """The rule of ``sla.state``: met by ``done`` on or before ``due``; breached at ``due`` when
    done late, announced, or still running past it."""
    if due is None:
        return None
    if done is not None:
        return (True, done) if done <= due else (False, due)
    if alerted is not None or (running and now > due):
        return False, due
    return None


def _count(verdicts: list[_Verdicts], window: Window, target: int) -> tuple[int, int]:
    met = breached = 0
    for v in verdicts:
        verdict = v.first if target == 0 else v.last
        if verdict is not None and verdict[1] in window:
            met, breached = (met + 1, breached) if verdict[0] else (met, breached + 1)
    return met, breached


def _sla(verdicts: list[_Verdicts], window: Window) -> tuple[tuple[int, int], tuple[int, int]]:
    return _count(verdicts, window, 0), _count(verdicts, window, 1)


def _percent(met: int, breached: int) -> float | None:
    return round(100 * met / (met + breached), 1) if met + breached else None


def _sla_figure(current: tuple[int, int], earlier: tuple[int, int]) -> SlaFigure:
    return SlaFigure(met=current[0], breached=current[1], percent=_percent(*current),
                     previous_percent=_percent(*earlier))


def _clock_minutes(v: _Verdicts, cal: Calendar, target: str) -> tuple[datetime, int] | None:
    """When the target's time ends and how many business minutes its clock ran until then."""
    r = v.row
    if target == FIRST:
        if v.first is None or r.first_response_at is None:
            return None
        end, paused, stopped = r.first_response_at, r.first_response_paused_minutes, r.first_response_at
    else:
        if r.status not in FINISHED or r.resolved_at is None:
            return None
        end, paused = r.resolved_at, r.resolution_paused_minutes
        # The clock stopped when the current pause began (waiting, then resolved), not later.
        stopped = min(end, r.sla_paused_at) if r.sla_paused_at is not None else end
    return end, max(0, cal.minutes_between(r.created_at, stopped) - paused)


def _times(verdicts: list[_Verdicts], current: Window, earlier: Window, cal: Calendar,
           target: str) -> TimeFigure:
    measured = [x for x in (_clock_minutes(v, cal, target) for v in verdicts) if x is not None]
    now = [minutes for end, minutes in measured if end in current]
    before = [minutes for end, minutes in measured if end in earlier]
    return TimeFigure(count=len(now), median=median(now), p90=p90(now),
                      previous_median=median(before), previous_p90=p90(before))


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(statistics.median(values)) if values else None


def p90(values: Iterable[float]) -> float | None:
    """Nearest rank: the smallest value with at least 90 % of the values at or below it."""
    ordered = sorted(values)
    return float(ordered[math.ceil(0.9 * len(ordered)) - 1]) if ordered else None


# ----- backlog at an instant ------------------------------------------------------------------


async def _backlog(s: AsyncSession, group_id: int, *, instants: tuple[datetime, ...]) -> list[dict[tuple[str, int], int]]:
    """{(status, priority): tickets} at each instant, from the history: a ticket's value then
    is the ``from`` of its first change at or after it, else what it is now (every change
    records the value it replaced: ``lifecycle.change_status``, ``actions.set_priority``).
    Only tickets open now or changed since the earliest instant can have been open then: the
    rest is not read."""
    earliest = min(instants)
    later = (select(m.Event.ticket_id, m.Event.kind, m.Event.created_at, _field("from"))
             .join(m.Ticket, m.Ticket.id == m.Event.ticket_id).where(
        m.Ticket.group_id == group_id, m.Event.kind.in_(("status", "priority")), m.Event.created_at >= earliest)
        .order_by(m.Event.created_at, m.Event.id))
    history: dict[int, list[Any]] = defaultdict(list)
    for change in (await s.execute(later)).all():
        history[change.ticket_id].append(change)
    tickets = (await s.execute(select(m.Ticket.id, m.Ticket.created_at, m.Ticket.status, m.Ticket.priority).where(
        m.Ticket.group_id == group_id, m.Ticket.created_at < max(instants),
        or_(m.Ticket.status.in_(OPEN_STATUSES), m.Ticket.id.in_(select(m.Event.ticket_id).where(
            m.Event.kind == "status", m.Event.created_at >= earliest)))))).all()
    result = []
    for instant in instants:
        counts: dict[tuple[str, int], int] = defaultdict(int)
        for t in tickets:
            if t.created_at >= instant:
                continue
            changes = history.get(t.id, ())
            status = _value_at(changes, "status", instant, t.status)
            if status in OPEN_STATUSES:
                counts[(status, int(_value_at(changes, "priority", instant, t.priority)))] += 1
        result.append(dict(counts))
    return result


def _value_at(changes: Iterable[Any], kind: str, instant: datetime, current: Any) -> Any:
    """The value before the first change at or after ``instant`` (changes in time order)."""
    for change in changes:
        if change.kind == kind and change.created_at >= instant:
            return change._mapping["from"]
    return current


def _field(name: str) -> Any:
    """One member of an event's data, as text (``from`` / ``to`` of a change)."""
    return m.Event.data[name].as_string().label(name)


# ----- right now ------------------------------------------------------------------------------


async def _right_now(s: AsyncSession, settings: Settings, digest: Digest, group: m.HandlerGroup,
                     cal: Calendar, period: Period, *, now: datetime) -> dict[str, Any]:
    open_tickets = (await s.scalars(select(m.Ticket).where(
        m.Ticket.group_id == group.id, m.Ticket.status.in_(OPEN_STATUSES)))).all()
    staff_ids = {t.assignee_id for t in open_tickets if t.assignee_id}
    replies = dict((await s.execute(select(m.Event.staff_id, func.count(m.Event.id))
                                    .join(m.Ticket, m.Ticket.id == m.Event.ticket_id).where(
        m.Event.kind == "reply", m.Event.created_at >= period.start, m.Event.created_at < period.end,
        m.Ticket.group_id == group.id, m.Event.staff_id.is_not(None)).group_by(m.Event.staff_id))).all())
    configured = settings.group_by_name(group.name)
    members = list(configured.members) if configured else []
    staff = {row.id: row for row in (await s.scalars(select(m.Staff).where(or_(
        m.Staff.id.in_(staff_ids | set(replies)), m.Staff.slack_user_id.in_(members))))).all()}

    def name(staff_id: int | None) -> str | None:
        row = staff.get(staff_id) if staff_id else None
        return (row.name or row.slack_user_id) if row else None

    weights = {t.id: weighing.live_weight(t, cal, now=now) for t in open_tickets}
    overdue = {t.id for t in open_tickets if sla.state(t, now=now).breached}
    top = digest.top
    heaviest = sorted(open_tickets, key=lambda t: (-weights[t.id], t.created_at, t.id))[:top]
    oldest = sorted(open_tickets, key=lambda t: (t.created_at, t.id))[:top]
    paused = [t for t in open_tickets if t.status in ("waiting", "on_hold")]
    waiting = sorted(paused, key=lambda t: (t.sla_paused_at or t.updated_at, t.id))[:top]
    shown = {t.id for t in (*heaviest, *oldest, *waiting)}
    links: dict[int, str] = {}
    if shown:
        for ticket_id, link in (await s.execute(select(m.OutboxItem.ticket_id, m.OutboxItem.remote_link).where(
                m.OutboxItem.kind == intents.CARD, m.OutboxItem.ticket_id.in_(shown),
                m.OutboxItem.status == "sent").order_by(m.OutboxItem.id))).all():
            links[ticket_id] = link  # the newest card wins

    def line(t: m.Ticket, *, since: bool = False) -> TicketLine:
        staffs_turn = t.awaiting_staff_since is not None and t.status not in ("waiting", "on_hold")
        return TicketLine(
            number=t.id, subject=t.subject, status=t.status, priority=t.priority, weight=weights[t.id],
            assignee=name(t.assignee_id), age_minutes=int((now - t.created_at).total_seconds() // 60),
            waiting_minutes=weighing.waiting_minutes(t, cal, now=now) if staffs_turn else None,
            overdue=t.id in overdue, link=links.get(t.id),
            since=(t.sla_paused_at or t.updated_at).astimezone(digest.zone).isoformat() if since else None)

    loads: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for t in open_tickets:
        if t.assignee_id:
            loads[t.assignee_id][0] += 1
            loads[t.assignee_id][1] += t.id in overdue
    people = [StaffLoad(name=name(i) or "", slack_user_id=staff[i].slack_user_id, open=loads[i][0],
                        overdue=loads[i][1], replies=replies.get(i, 0))
              for i in staff if i in loads or i in replies or staff[i].slack_user_id in members]
    known = {p.slack_user_id for p in people}
    people += [StaffLoad(name=member, slack_user_id=member, open=0, overdue=0, replies=0)
               for member in members if member not in known]
    people.sort(key=lambda p: (-p.open, -p.replies, p.name.lower()))

    dead = m.OutboxItem.status == "dead"
    return {
        "heaviest": tuple(line(t) for t in heaviest), "oldest": tuple(line(t) for t in oldest),
        "waiting": tuple(line(t, since=True) for t in waiting),
        "waiting_count": sum(1 for t in paused if t.status == "waiting"),
        "on_hold_count": sum(1 for t in paused if t.status == "on_hold"),
        "open_count": len(open_tickets), "load": tuple(people),
        "dead_outbox": await s.scalar(select(func.count(m.OutboxItem.id)).join(
            m.Ticket, m.Ticket.id == m.OutboxItem.ticket_id).where(dead, m.Ticket.group_id == group.id)) or 0,
        "dead_outbox_other": await s.scalar(select(func.count(m.OutboxItem.id)).where(
            dead, m.OutboxItem.ticket_id.is_(None))) or 0,
        "quarantined": await s.scalar(select(func.count(m.Quarantine.id)).where(
            m.Quarantine.status == "held")) or 0,
    }

