"""Who is available for new tickets: ``/ticket away`` and ``/ticket back``, and Slack's presence.

Assignment (``core.assignment``) skips a member who said they are away, and one Slack shows as
away (the Slack adapter reports presence here). Saying ``back`` clears the first; presence
clears itself when Slack shows them active again. Must not assign or reassign anything.
"""

from __future__ import annotations

from sqlalchemy import update

from bot.config import Settings
from bot.core.desk import Desk
from bot.core.staff import Actor, staff_row
from bot.store import models as m
from bot.store import upsert


async def set_away(desk: Desk, *, actor: Actor, away: bool) -> str:
    """What to tell the actor."""
    now = desk.clock.now()
    async with desk.db.transaction() as s:
        staff = await staff_row(s, actor, now=now)
        changed = staff.away != away
        staff.away = away
    if away:
        return ("You are away: new tickets go to the others in your groups until you say "
                "/ticket back." if changed else "You were already away.")
    return "Welcome back: new tickets can come to you again." if changed else "You were not away."


async def record_presence(desk: Desk, presence: dict[str, bool]) -> None:
    """Slack's presence of staff members ({Slack user id: away?}), as the adapter last saw it."""
    if not presence:
        return
    async with desk.db.transaction() as s:
        # Members nobody has assigned yet get their row now: the next assignment must know.
        await upsert.staff_rows(s, sorted(presence), now=desk.clock.now())
        for away in (True, False):
            users = sorted(u for u, a in presence.items() if a is away)
            if users:
                await s.execute(update(m.Staff).where(m.Staff.slack_user_id.in_(users))
                                .values(slack_away=away).execution_options(synchronize_session=False))


def members_to_watch(settings: Settings) -> list[str]:
    """The Slack users whose presence assignment depends on: every group's members."""
    return sorted({u for g in settings.handler_groups for u in g.members})
