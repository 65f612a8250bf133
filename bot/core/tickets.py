"""Loading tickets and describing them: the shared reads of intake and staff actions.

Reads only (inside the caller's transaction); changes belong to ``intake`` and ``actions``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import sla, weighing
from bot.core.errors import TicketNotFound
from bot.core.views import RatingView, TicketView
from bot.store import models as m



MAX_NUMBER = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


async def load_ticket(s: AsyncSession, number: int, *, for_update: bool = False) -> m.Ticket:
    """The ticket; ``for_update`` also takes its row lock until the transaction ends, so two
    writers of one ticket go one after the other and the second reads what the first wrote
    (PostgreSQL; on SQLite the writer already holds the whole database, FOR UPDATE is left out).
    FOR NO KEY UPDATE, the lock an UPDATE of the row takes anyway: rows that only refer to the
    ticket (its messages, events, links from another ticket) can still be written meanwhile."""
    lock = {"key_share": True} if for_update else None
    ticket = await s.get(m.Ticket, number, with_for_update=lock,
                         populate_existing=for_update) if 1 <= number <= MAX_NUMBER else None
    if ticket is None:
        raise TicketNotFound(f"there is no ticket #{number}")
    return ticket


async def ticket_view(s: AsyncSession, ticket: m.Ticket, *, settings: Settings,
                      now: datetime, new: bool = False) -> TicketView:
    """The ticket as cards and messages show it, with its SLA clocks, idle time and weight as
    of ``now``; a reply lock that expired before ``now`` is not shown (the scheduler clears
    it). ``new``: the ticket was made in this transaction, so it has no links yet (saves a
    query on the ingest path)."""
    group = await s.get_one(m.HandlerGroup, ticket.group_id)
    requester = await s.get_one(m.Contact, ticket.requester_id)
    assignee = await s.get(m.Staff, ticket.assignee_id) if ticket.assignee_id else None
    locker = None
    if ticket.lock_staff_id and ticket.lock_expires_at and ticket.lock_expires_at > now:
        locker = await s.get(m.Staff, ticket.lock_staff_id)
    links: tuple[int, ...] = () if new else tuple((await s.scalars(select(m.TicketLink.other_id).where(
        m.TicketLink.ticket_id == ticket.id).order_by(m.TicketLink.other_id))).all())
    clocks = sla.state(ticket, now=now)
    return TicketView.of(ticket, group=group.name, requester=requester,
                         assignee=assignee.slack_user_id if assignee else None,
                         locked_by=(locker.name or locker.slack_user_id) if locker else None,
                         links=links,
                         weight=weighing.live_weight(ticket, sla.calendar(settings, group.name), now=now),
                         first_response_due=clocks.first_response_due, resolution_due=clocks.resolution_due,
                         first_response_breached=clocks.first_response_breached,
                         resolution_breached=clocks.resolution_breached, sla_paused=clocks.paused,
                         first_responded_at=clocks.first_response_met_at,
                         idle_minutes=weighing.idle_minutes(settings, ticket, now=now),
                         idle=weighing.is_idle(settings, ticket, now=now),
                         business_timezone=sla.calendar_hours(settings, group.name).timezone,
                         rating=None if new else await rating_of(s, ticket))


async def rating_of(s: AsyncSession, ticket: m.Ticket) -> RatingView | None:
    """The newest rating, of whichever closing (a reopened ticket keeps showing it)."""
    row = await s.scalar(select(m.Rating).where(m.Rating.ticket_id == ticket.id)
                         .order_by(m.Rating.closed_at.desc()).limit(1))
    return RatingView.of(row) if row is not None else None
