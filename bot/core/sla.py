"""SLA clocks: first-response and resolution targets counted in a handler group's business hours.

A ticket's clocks start when it opens and pause while it waits on the customer, is on hold,
resolved or closed (DESIGN §3). The due instants are derived, never accumulated: due = the
instant ``target + paused`` business minutes after the ticket opened, where ``paused`` counts
the business minutes that target's clock spent paused so far (a pause that begins after the
target was missed or met does not move it). So a priority or category change, or a pause
ending, simply recomputes them.

``sla_check_at`` is the next instant the scheduler must look at the ticket (a breach to
announce, an escalation to make); the sweep reads only tickets whose instant has come.

Only ``core.lifecycle`` calls the functions that change a ticket here (every status change,
reply and priority change passes there); the scheduler calls ``due_alerts``. Must not touch the
database or the outbox, and must not read a clock: ``now`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import BusinessHours, Settings
from bot.core.business_time import Calendar
from bot.store import models as m

PAUSED = ("waiting", "on_hold", "resolved", "closed")
FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"


def calendar_hours(settings: Settings, group: str) -> BusinessHours:
    """The business hours of ``group`` (the default ones for a group no longer configured;
    every day, all day, when there are none)."""
    configured = settings.group_by_name(group)
    key = configured.business_hours if configured else "default"
    return (settings.business_hours.get(key) or settings.business_hours.get("default")
            or BusinessHours(days={"mon-sun": "00:00-24:00"}))


def calendar(settings: Settings, group: str) -> Calendar:
    return Calendar.of(calendar_hours(settings, group))


def targets(settings: Settings, ticket: m.Ticket) -> dict[str, int | None]:
    """Business minutes allowed for each target at the ticket's priority (its category's
    targets first, when the category sets them); None: no target."""
    category = next((c for c in settings.categories if c.name == ticket.category), None)
    result: dict[str, int | None] = {}
    for target, defaults in ((FIRST_RESPONSE, settings.sla.first_response_minutes),
                             (RESOLUTION, settings.sla.resolution_minutes)):
        own = getattr(category, f"{target}_minutes", None) or {}
        result[target] = own.get(ticket.priority, defaults.get(ticket.priority))
    return result


def start(ticket: m.Ticket, settings: Settings, cal: Calendar, *, now: datetime) -> None:
    """A new ticket: clocks from its creation (paused already if it opens waiting)."""
    ticket.first_response_paused_minutes = ticket.resolution_paused_minutes = 0
    ticket.sla_paused_at = now if ticket.status in PAUSED else None
    recompute(ticket, settings, cal)


def status_changed(ticket: m.Ticket, old: str, settings: Settings, cal: Calendar, *, now: datetime) -> None:
    if ticket.status in PAUSED and old not in PAUSED:
        ticket.sla_paused_at = now
    elif ticket.status not in PAUSED and old in PAUSED:
        began = ticket.sla_paused_at
        if began is not None:
            paused = cal.minutes_between(began, now)
            # Only a clock still running when the pause began was stopped by it.
            if ticket.first_response_at is None and _after(ticket.first_response_due_at, began):
                ticket.first_response_paused_minutes += paused
            if _after(ticket.resolution_due_at, began):
                ticket.resolution_paused_minutes += paused
        ticket.sla_paused_at = None
    recompute(ticket, settings, cal)


def _after(due: datetime | None, at: datetime) -> bool:
    """The target is due after ``at`` (no due yet counts as after: it was never missed)."""
    return due is None or due > at


def responded(ticket: m.Ticket, settings: Settings, cal: Calendar, *, now: datetime) -> None:
    """Staff answered the customer: the first time, that meets (or ends) the first-response
    target."""
    if ticket.first_response_at is None:
        ticket.first_response_at = now
        recompute(ticket, settings, cal)


def recompute(ticket: m.Ticket, settings: Settings, cal: Calendar) -> None:
    """Due instants from the targets and the time paused; then the next check. While paused
    the due instants keep their last value (shown as paused); a met first response keeps the
    due it was met against."""
    if ticket.sla_paused_at is None:
        allowed = targets(settings, ticket)
        opened = ticket.created_at
        if ticket.first_response_at is None:
            minutes = allowed[FIRST_RESPONSE]
            ticket.first_response_due_at = (
                cal.add_minutes(opened, minutes + ticket.first_response_paused_minutes)
                if minutes is not None else None)
        minutes = allowed[RESOLUTION]
        ticket.resolution_due_at = (cal.add_minutes(opened, minutes + ticket.resolution_paused_minutes)
                                    if minutes is not None else None)
    ticket.sla_check_at = next_check(ticket, settings)


def _escalate_after(settings: Settings) -> timedelta | None:
    minutes = settings.sla.escalate_after_minutes
    return timedelta(minutes=minutes) if minutes else None


def _pending(ticket: m.Ticket, settings: Settings) -> list[tuple[datetime, str, str]]:
    """(when, target, "breach" | "escalation") still to come for a running clock."""
    if ticket.sla_paused_at is not None or ticket.status in PAUSED:
        return []
    later = _escalate_after(settings)
    found = []
    for target, due, alerted, escalated, met in (
            (FIRST_RESPONSE, ticket.first_response_due_at, ticket.first_response_alerted_at,
             ticket.first_response_escalated_at, ticket.first_response_at is not None),
            (RESOLUTION, ticket.resolution_due_at, ticket.resolution_alerted_at,
             ticket.resolution_escalated_at, False)):
        if due is None or met:
            continue
        if alerted is None:
            found.append((due, target, "breach"))
        elif escalated is None and later is not None:
            found.append((due + later, target, "escalation"))
    return found


def next_check(ticket: m.Ticket, settings: Settings) -> datetime | None:
    pending = _pending(ticket, settings)
    return min(when for when, _, _ in pending) if pending else None


@dataclass(frozen=True)
class Alert:
    target: str  # first_response | resolution
    kind: str  # breach | escalation
    due: datetime


def due_alerts(ticket: m.Ticket, settings: Settings, *, now: datetime) -> list[Alert]:
    """What the sweep must announce for this ticket now, each marked as announced (so it is
    announced once, in the transaction that records the announcement); the next check is set."""
    alerts = []
    for when, target, kind in _pending(ticket, settings):
        if when > now:
            continue
        due = ticket.first_response_due_at if target == FIRST_RESPONSE else ticket.resolution_due_at
        assert due is not None
        alerts.append(Alert(target, kind, due))
        setattr(ticket, f"{target}_{'alerted' if kind == 'breach' else 'escalated'}_at", now)
    ticket.sla_check_at = next_check(ticket, settings)
    return alerts


@dataclass(frozen=True)
class SlaState:
    """What cards and ``tickets show --json`` say about the clocks."""

    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_breached: bool
    resolution_breached: bool
    paused: bool
    first_response_met_at: datetime | None

    @property
    def breached(self) -> bool:
        return self.first_response_breached or self.resolution_breached


def state(ticket: m.Ticket, *, now: datetime) -> SlaState:
    fr_due, res_due = ticket.first_response_due_at, ticket.resolution_due_at
    responded_at = ticket.first_response_at
    fr_breached = fr_due is not None and (
        responded_at > fr_due if responded_at is not None
        else ticket.first_response_alerted_at is not None or (ticket.sla_paused_at is None and now > fr_due))
    finished = ticket.resolved_at if ticket.status in ("resolved", "closed") else None
    res_breached = res_due is not None and (
        finished > res_due if finished is not None
        else ticket.resolution_alerted_at is not None or (ticket.sla_paused_at is None and now > res_due))
    return SlaState(first_response_due=fr_due, resolution_due=res_due,
                    first_response_breached=bool(fr_breached), resolution_breached=bool(res_breached),
                    paused=ticket.sla_paused_at is not None, first_response_met_at=responded_at)
