"""The ticket lifecycle: open a ticket, add a message, change its status, assign it.

The one place where a ticket's status and owner change, for intake, staff actions and the
scheduler alike, so every change records the same event and keeps the same timestamps; the
SLA clocks (``core.sla``), idle time and weight (``core.weighing``) follow from here and from
nowhere else. Works inside the caller's transaction; no commits, no outbox intents and no
rendering here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import assignment, sla, weighing
from bot.core.business_time import Calendar
from bot.core.errors import Rejected
from bot.core.threader import new_reply_token
from bot.store import models as m
from bot.store import upsert

STATUSES = ("new", "open", "waiting", "on_hold", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "waiting", "on_hold")
# A customer writing again brings these back to staff (DESIGN §3).
REOPENED_BY_CUSTOMER = ("waiting", "resolved", "closed")


class UnknownStatus(Rejected):
    """A status that is not one of ``STATUSES``."""


def record_event(s: AsyncSession, ticket_id: int | None, kind: str, *, actor: str, now: datetime,
                 staff_id: int | None = None, **data: Any) -> None:
    """One line of the ticket's history (the audit log)."""
    s.add(m.Event(ticket_id=ticket_id, kind=kind, actor=actor[:400], staff_id=staff_id,
                  data=data, created_at=now))


@dataclass(frozen=True)
class NewTicket:
    """What a ticket starts with; ``by_staff``: opened for a customer by staff."""

    subject: str
    group: m.HandlerGroup
    requester_id: int
    channel: str
    priority: int
    actor: str
    status: str = "new"
    staff_id: int | None = None
    assignee_id: int | None = None
    by_staff: bool = False
    reply_to: str | None = None  # where replies go when not to the requester's own address
    door: str = ""  # the door its first message came through (smtp, imap:<account>, …)
    event_data: dict[str, Any] = field(default_factory=dict)


async def open_tickets(s: AsyncSession, new: list[NewTicket], *, settings: Settings,
                       now: datetime) -> list[m.Ticket]:
    """New tickets, each with its ``created`` event; several are written in one statement.
    A customer's new ticket without an assignee goes to the least loaded available member of
    its group (``core.assignment``)."""
    tickets = [m.Ticket(subject=t.subject[:998] or "(no subject)", status=t.status,
                        priority=t.priority, group_id=t.group.id, requester_id=t.requester_id,
                        channel=t.channel, door=t.door, reply_token=new_reply_token(), reply_to=t.reply_to,
                        via_email=t.channel == "email", unread=not t.by_staff, weight=0,
                        assignee_id=t.assignee_id, created_at=now, updated_at=now,
                        last_action_at=now, last_customer_message_at=None if t.by_staff else now,
                        last_staff_reply_at=now if t.by_staff else None, last_reply_at=now,
                        awaiting_staff_since=None if t.by_staff else now,
                        first_response_at=now if t.by_staff else None) for t in new]
    chosen = await assignment.choose(s, settings, [(t.group, not t.by_staff and t.assignee_id is None)
                                                   for t in new], now=now)
    for ticket, assignee in zip(tickets, chosen):
        if assignee is not None:
            ticket.assignee_id = assignee.id
    numbers = await upsert.take_numbers(s, "ticket", len(tickets))
    if numbers is not None:  # #N without gaps, even when a transaction rolls back
        for ticket, number in zip(tickets, numbers):
            ticket.id = number
    for ticket, t in zip(tickets, new):
        ticket.weight = weighing.points(settings, ticket, await s.get(m.Contact, t.requester_id))
        sla.start(ticket, settings, sla.calendar(settings, t.group.name), now=now)
        weighing.schedule_idle(settings, ticket)
    s.add_all(tickets)
    await s.flush()
    for ticket, t, assignee in zip(tickets, new, chosen):
        record_event(s, ticket.id, "created", actor=t.actor, now=now, staff_id=t.staff_id,
                     channel=t.channel, group=t.group.name,
                     **({"by_staff": True} if t.by_staff else {}), **t.event_data)
        if assignee is not None:
            record_event(s, ticket.id, "assignee", actor="system", now=now,
                         **{"from": None, "to": assignee.slack_user_id, "reason": "least_open_tickets"})
    return tickets


async def open_ticket(s: AsyncSession, new: NewTicket, *, settings: Settings, now: datetime) -> m.Ticket:
    return (await open_tickets(s, [new], settings=settings, now=now))[0]


async def calendar(s: AsyncSession, settings: Settings, ticket: m.Ticket) -> Calendar:
    """The business hours the ticket's clocks run in: its group's."""
    group = await s.get_one(m.HandlerGroup, ticket.group_id)  # loaded already, as a rule
    return sla.calendar(settings, group.name)


async def customer_wrote(s: AsyncSession, ticket: m.Ticket, *, settings: Settings, actor: str,
                         now: datetime, message_id: int, threaded_by: str, reopen: bool) -> m.Staff | None:
    """A customer message joined ``ticket``: it is unread again, it is staff's turn, and
    (unless the message is automatic) a ticket waiting on the customer or finished goes back
    to open. With ``auto_reassign_on_update``, a ticket whose assignee is away goes to an
    available member of its group: returns that new assignee, for the caller to tell."""
    ticket.updated_at = ticket.last_customer_message_at = now
    ticket.unread = True
    record_event(s, ticket.id, "customer_message", actor=actor, now=now, message=message_id,
                 threaded_by=threaded_by)
    if reopen:
        ticket.last_reply_at = ticket.last_action_at = now
        ticket.awaiting_staff_since = ticket.awaiting_staff_since or now
        if ticket.status in REOPENED_BY_CUSTOMER:
            await change_status(s, ticket, "open", settings=settings, actor=actor, now=now,
                                reason="customer replied")
    weighing.schedule_idle(settings, ticket)
    if reopen and settings.tickets.auto_reassign_on_update and ticket.assignee_id is not None:
        return await _reassign_if_away(s, ticket, settings=settings, now=now)
    return None


async def _reassign_if_away(s: AsyncSession, ticket: m.Ticket, *, settings: Settings,
                            now: datetime) -> m.Staff | None:
    holder = await s.get_one(m.Staff, ticket.assignee_id)
    if not (holder.away or holder.slack_away):
        return None
    group = await s.get_one(m.HandlerGroup, ticket.group_id)
    [other] = await assignment.choose(s, settings, [(group, True)], now=now)
    if other is None:
        return None
    assign(s, ticket, other, previous=holder.slack_user_id, actor="system", now=now,
           reason="auto_reassign_on_update: assignee away")
    return other


async def staff_replied(s: AsyncSession, ticket: m.Ticket, *, settings: Settings, now: datetime) -> None:
    """Staff answered the customer (by any channel): the customer's turn now; the first
    answer meets the first-response target."""
    ticket.last_staff_reply_at = ticket.last_reply_at = now
    ticket.awaiting_staff_since = None
    sla.responded(ticket, settings, await calendar(s, settings, ticket), now=now)
    weighing.schedule_idle(settings, ticket)


async def acted(s: AsyncSession, ticket: m.Ticket, *, settings: Settings, now: datetime) -> None:
    """Staff did something to the ticket (after the action's own changes): the action's time,
    and the rules again for what it may have changed (priority, category, group, contact)."""
    ticket.updated_at = ticket.last_action_at = now
    await rules_changed(s, ticket, settings=settings)
    weighing.schedule_idle(settings, ticket)


async def rules_changed(s: AsyncSession, ticket: m.Ticket, *, settings: Settings) -> None:
    """Weight points and SLA due times again, from the ticket as it is now."""
    ticket.weight = weighing.points(settings, ticket, await s.get(m.Contact, ticket.requester_id))
    sla.recompute(ticket, settings, await calendar(s, settings, ticket))


async def adopt(s: AsyncSession, ticket: m.Ticket, *, settings: Settings, now: datetime) -> None:
    """A ticket opened before the rules existed (an upgrade): its clocks, weight and idle
    instant from its history as far as it tells — the first staff reply meets the first
    response; a paused ticket counts as paused since its last status change; time paused
    before that is not known and counts as running."""
    replies = select(func.min(m.Event.created_at)).where(m.Event.ticket_id == ticket.id, m.Event.kind == "reply")
    ticket.first_response_at = ticket.first_response_at or await s.scalar(replies)
    spoke_last = ticket.last_staff_reply_at and (not ticket.last_customer_message_at
                                                 or ticket.last_staff_reply_at >= ticket.last_customer_message_at)
    ticket.awaiting_staff_since = None if spoke_last else ticket.last_customer_message_at
    if ticket.status in sla.PAUSED and ticket.sla_paused_at is None:
        changed = select(func.max(m.Event.created_at)).where(m.Event.ticket_id == ticket.id, m.Event.kind == "status")
        ticket.sla_paused_at = await s.scalar(changed) or now
    await rules_changed(s, ticket, settings=settings)
    weighing.schedule_idle(settings, ticket)


async def change_status(s: AsyncSession, ticket: m.Ticket, status: str, *, settings: Settings,
                        actor: str, now: datetime, staff_id: int | None = None, **event_data: Any) -> bool:
    """Move ``ticket`` to ``status``; False when it was there already."""
    if status not in STATUSES:
        raise UnknownStatus(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    old = ticket.status
    if old == status:
        return False
    ticket.status = status
    # A closed ticket keeps when it was resolved; anything but resolved/closed clears both.
    ticket.resolved_at = now if status == "resolved" else (ticket.resolved_at if status == "closed" else None)
    ticket.closed_at = now if status == "closed" else None
    if status == "closed":
        ticket.lock_staff_id = ticket.lock_expires_at = None
    sla.status_changed(ticket, old, settings, await calendar(s, settings, ticket), now=now)
    weighing.schedule_idle(settings, ticket)
    record_event(s, ticket.id, "status", actor=actor, now=now, staff_id=staff_id,
                 **{"from": old, "to": status, **event_data})
    return True


def assign(s: AsyncSession, ticket: m.Ticket, assignee: m.Staff | None, *, previous: str | None,
           actor: str, now: datetime, staff_id: int | None = None, **event_data: Any) -> None:
    """Give ``ticket`` to ``assignee`` (None: nobody); ``previous`` is the old owner's Slack id."""
    ticket.assignee_id = assignee.id if assignee else None
    if assignee is not None:
        assignee.last_assigned_at = now
    record_event(s, ticket.id, "assignee", actor=actor, now=now, staff_id=staff_id,
                 **{"from": previous, "to": assignee.slack_user_id if assignee else None, **event_data})


def redirect_replies(s: AsyncSession, ticket: m.Ticket, address: str | None, *, actor: str,
                     now: datetime, staff_id: int | None = None, **event_data: Any) -> bool:
    """Send the ticket's replies to ``address`` from now on (None: the requester's own
    address). Callers decide who may: staff, or a customer message threaded by our reply
    token or our Message-ID (DESIGN §3). False when nothing changed."""
    if ticket.proposed_reply_to and (address or "").lower() == ticket.proposed_reply_to.lower():
        ticket.proposed_reply_to = None
    if (ticket.reply_to or "").lower() == (address or "").lower():
        return False
    old, ticket.reply_to = ticket.reply_to, address
    ticket.updated_at = now
    record_event(s, ticket.id, "reply_to", actor=actor, now=now, staff_id=staff_id,
                 **{"from": old, "to": address, **event_data})
    return True


def propose_reply_to(s: AsyncSession, ticket: m.Ticket, address: str, *, actor: str, now: datetime,
                     **event_data: Any) -> bool:
    """A message that joined by weaker evidence asks for replies elsewhere: show it to staff,
    change nothing. False when the same address is already proposed."""
    if (ticket.proposed_reply_to or "").lower() == address.lower():
        return False
    ticket.proposed_reply_to = address
    record_event(s, ticket.id, "reply_to_proposed", actor=actor, now=now, address=address, **event_data)
    return True
