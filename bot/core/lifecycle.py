"""The ticket lifecycle: open a ticket, add a message, change its status, assign it.

The one place where a ticket's status and owner change, for intake, staff actions and (later)
the scheduler alike, so every change records the same event and keeps the same timestamps
(SLA clocks read them). Works inside the caller's transaction; no commits, no outbox intents
and no rendering here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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


async def open_tickets(s: AsyncSession, new: list[NewTicket], *, now: datetime) -> list[m.Ticket]:
    """New tickets, each with its ``created`` event; several are written in one statement."""
    tickets = [m.Ticket(subject=t.subject[:998] or "(no subject)", status=t.status,
                        priority=t.priority, group_id=t.group.id, requester_id=t.requester_id,
                        channel=t.channel, door=t.door, reply_token=new_reply_token(), reply_to=t.reply_to,
                        via_email=t.channel == "email", unread=not t.by_staff, weight=0,
                        assignee_id=t.assignee_id, created_at=now, updated_at=now,
                        last_action_at=now, last_customer_message_at=None if t.by_staff else now,
                        last_staff_reply_at=now if t.by_staff else None) for t in new]
    numbers = await upsert.take_numbers(s, "ticket", len(tickets))
    if numbers is not None:  # #N without gaps, even when a transaction rolls back
        for ticket, number in zip(tickets, numbers):
            ticket.id = number
    s.add_all(tickets)
    await s.flush()
    for ticket, t in zip(tickets, new):
        record_event(s, ticket.id, "created", actor=t.actor, now=now, staff_id=t.staff_id,
                     channel=t.channel, group=t.group.name,
                     **({"by_staff": True} if t.by_staff else {}), **t.event_data)
    return tickets


async def open_ticket(s: AsyncSession, new: NewTicket, *, now: datetime) -> m.Ticket:
    return (await open_tickets(s, [new], now=now))[0]


def customer_wrote(s: AsyncSession, ticket: m.Ticket, *, actor: str, now: datetime,
                   message_id: int, threaded_by: str, reopen: bool) -> None:
    """A customer message joined ``ticket``: it is unread again, and (unless the message is
    automatic) a ticket waiting on the customer or finished goes back to open."""
    ticket.updated_at = ticket.last_customer_message_at = now
    ticket.unread = True
    record_event(s, ticket.id, "customer_message", actor=actor, now=now, message=message_id,
                 threaded_by=threaded_by)
    if reopen and ticket.status in REOPENED_BY_CUSTOMER:
        change_status(s, ticket, "open", actor=actor, now=now, reason="customer replied")


def change_status(s: AsyncSession, ticket: m.Ticket, status: str, *, actor: str, now: datetime,
                  staff_id: int | None = None, **event_data: Any) -> bool:
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
    record_event(s, ticket.id, "status", actor=actor, now=now, staff_id=staff_id,
                 **{"from": old, "to": status, **event_data})
    return True


def assign(s: AsyncSession, ticket: m.Ticket, assignee: m.Staff | None, *, previous: str | None,
           actor: str, now: datetime, staff_id: int | None = None, **event_data: Any) -> None:
    """Give ``ticket`` to ``assignee`` (None: nobody); ``previous`` is the old owner's Slack id."""
    ticket.assignee_id = assignee.id if assignee else None
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
