"""Who gets a new ticket: the available member of its handler group with the fewest open
tickets, ties to whoever was assigned longest ago (DESIGN §3).

Available = not ``/ticket away`` and not shown away by Slack's presence. Loads are read once
per call and counted on as tickets are handed out, so a batch of tickets spreads evenly. On
PostgreSQL the group's row is locked first (FOR NO KEY UPDATE, which tickets referring to the
group do not wait for), so two intake workers never read the same "least loaded" member and
both give them a ticket; on SQLite the one writer does that already.

Must not decide whether a ticket should be assigned (the caller says) or tell anyone (the
caller enqueues the notices).
"""

from __future__ import annotations

import heapq
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.store import models as m
from bot.store import upsert

OPEN = ("new", "open", "waiting", "on_hold")
NEVER = datetime.min  # ranks a member never assigned before first among equals


async def choose(s: AsyncSession, settings: Settings, wanted: list[tuple[m.HandlerGroup, bool]], *,
                 now: datetime) -> list[m.Staff | None]:
    """For each (group, assign?) in order: the member to assign, or None (not asked, or
    nobody available). Marks each chosen member as assigned ``now``."""
    chosen: list[m.Staff | None] = [None] * len(wanted)
    by_group: dict[int, list[int]] = {}
    groups: dict[int, m.HandlerGroup] = {}
    for i, (group, assign) in enumerate(wanted):
        if assign:
            by_group.setdefault(group.id, []).append(i)
            groups[group.id] = group
    for group_id in sorted(by_group):  # one order for every writer: no deadlock between them
        queue = await _queue(s, settings, groups[group_id], now=now)
        for i in by_group[group_id]:
            if not queue:
                break
            load, _, _, member = heapq.heappop(queue)
            chosen[i] = member
            member.last_assigned_at = now
            heapq.heappush(queue, (load + 1, _naive(now), member.slack_user_id, member))
    return chosen


async def _queue(s: AsyncSession, settings: Settings, group: m.HandlerGroup, *,
                 now: datetime) -> list[tuple[int, datetime, str, m.Staff]]:
    """The group's available members as a heap of (open tickets, last assigned, id, row)."""
    config = settings.group_by_name(group.name)
    if config is None or not config.members:
        return []
    if s.bind.dialect.name == "postgresql":
        await s.execute(select(m.HandlerGroup.id).where(m.HandlerGroup.id == group.id)
                        .with_for_update(key_share=True))
    members = [row for row in await upsert.staff_rows(s, list(config.members), now=now)
               if not row.away and not row.slack_away]
    if not members:
        return []
    loads = dict((await s.execute(
        select(m.Ticket.assignee_id, func.count()).where(
            m.Ticket.assignee_id.in_([row.id for row in members]), m.Ticket.status.in_(OPEN))
        .group_by(m.Ticket.assignee_id))).all())
    queue = [(loads.get(row.id, 0), _naive(row.last_assigned_at), row.slack_user_id, row) for row in members]
    heapq.heapify(queue)
    return queue


def _naive(at: datetime | None) -> datetime:
    """Comparable whatever the driver gave back (aware on PostgreSQL, aware UTC on SQLite)."""
    return at.replace(tzinfo=None) if at is not None else NEVER
