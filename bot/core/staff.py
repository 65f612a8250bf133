"""Staff: who a Slack user is to Deskbell, and what they may do.

Identity comes in from the Slack adapter (it asks Slack who they are, outside any transaction);
here it is only stored. Permission rules (operators' docs): members of a handler group act on
that group's tickets; a group with no members listed is open to all staff; ``slack.admins``
act everywhere; ``tickets.all_users_can_close`` lets anyone close. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.errors import Rejected
from bot.store import models as m
from bot.store import upsert


class NotAllowed(Rejected):
    """The staff member may not do this to this ticket."""


@dataclass(frozen=True)
class Actor:
    """A Slack user acting on tickets, as the Slack adapter resolved them."""

    slack_user_id: str
    name: str = ""
    email: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.slack_user_id


async def staff_row(s: AsyncSession, actor: Actor, *, now: datetime) -> m.Staff:
    """The actor's staff row, created on first sight and kept up to date."""
    row = await upsert.staff(s, slack_user_id=actor.slack_user_id, name=actor.name,
                             email=actor.email, now=now)
    if actor.name and row.name != actor.name[:200]:
        row.name = actor.name[:200]
    if actor.email and row.email != actor.email:
        row.email = actor.email
    return row


def is_admin(settings: Settings, slack_user_id: str) -> bool:
    return slack_user_id in settings.slack.admins


def members_of(settings: Settings, group: str) -> list[str]:
    config = settings.group_by_name(group)
    return list(config.members) if config else []


def check_allowed(settings: Settings, actor: Actor, *, group: str, action: str) -> None:
    """Raise ``NotAllowed`` unless ``actor`` may do ``action`` on a ticket of ``group``."""
    if is_admin(settings, actor.slack_user_id):
        return
    if action == "close" and settings.tickets.all_users_can_close:
        return
    members = members_of(settings, group)
    if not members or actor.slack_user_id in members:
        return
    raise NotAllowed(f"only members of the {group} group can {action.replace('_', ' ')} its tickets")


def visible_groups(settings: Settings, actor: Actor) -> list[str]:
    """The handler groups whose tickets ``actor`` may see (App Home, ``/ticket list|show``)."""
    return [g.name for g in settings.handler_groups
            if is_admin(settings, actor.slack_user_id) or not g.members or actor.slack_user_id in g.members]
