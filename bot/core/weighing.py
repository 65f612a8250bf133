"""Weight and idle time: how queues are ordered and which tickets are flagged as forgotten.

Weight = priority points + category and type points + the requester's good/bad points + the
business minutes the customer has waited on staff (DESIGN §3). The points part is kept on the
ticket (``tickets.weight``) whenever what it depends on changes; the waiting part grows with
the clock, so lists add it when they read (``live_weight``).

Idle time runs from the last reply either way (``tickets.idle_time_based_on: replies``) or
from any action on the ticket, a reply or a customer message included (``any_action``); a
ticket idle ``idle_after_minutes`` is flagged. ``idle_at`` is when that happens, for the sweep.

Only ``core.lifecycle`` changes tickets through this module; readers call ``live_weight`` and
``idle_minutes``. Must not touch the database or read a clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config import Settings
from bot.core.business_time import Calendar
from bot.store import models as m

OPEN = ("new", "open", "waiting", "on_hold")
WAITING_ON_STAFF = ("new", "open")


def points(settings: Settings, ticket: m.Ticket, contact: m.Contact | None) -> int:
    weight = settings.weight.priority_points.get(ticket.priority, 0)
    category = next((c for c in settings.categories if c.name == ticket.category), None)
    if category is not None:
        weight += category.points
        kind = next((t for t in category.types if t.name == ticket.type), None)
        weight += kind.points if kind is not None else 0
    if contact is not None and contact.rating == "good":
        weight += settings.weight.good_contact_points
    elif contact is not None and contact.rating == "bad":
        weight += settings.weight.bad_contact_points
    return weight


def waiting_minutes(ticket: m.Ticket, cal: Calendar, *, now: datetime) -> int:
    """Business minutes the customer has waited for staff (0 unless it is staff's turn)."""
    if ticket.status not in WAITING_ON_STAFF or ticket.awaiting_staff_since is None:
        return 0
    return cal.minutes_between(ticket.awaiting_staff_since, now)


def live_weight(ticket: m.Ticket, cal: Calendar, *, now: datetime) -> int:
    return ticket.weight + waiting_minutes(ticket, cal, now=now)


def idle_basis(settings: Settings, ticket: m.Ticket) -> datetime:
    """When idle time starts counting for this ticket."""
    if settings.tickets.idle_time_based_on == "replies":
        return ticket.last_reply_at or ticket.created_at
    return ticket.last_action_at or ticket.created_at


def idle_minutes(settings: Settings, ticket: m.Ticket, *, now: datetime) -> int | None:
    """Minutes since the basis; None for a resolved or closed ticket."""
    if ticket.status not in OPEN:
        return None
    return max(0, int((now - idle_basis(settings, ticket)).total_seconds() // 60))


def is_idle(settings: Settings, ticket: m.Ticket, *, now: datetime) -> bool:
    after = settings.tickets.idle_after_minutes
    minutes = idle_minutes(settings, ticket, now=now)
    return bool(after) and minutes is not None and minutes >= after


def schedule_idle(settings: Settings, ticket: m.Ticket) -> None:
    """After activity: not idle any more, and when it will be (None: never, or not open)."""
    after = settings.tickets.idle_after_minutes
    ticket.idle_flagged_at = None
    ticket.idle_at = (idle_basis(settings, ticket) + timedelta(minutes=after)
                      if after and ticket.status in OPEN else None)
