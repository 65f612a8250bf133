"""Handler groups: kept in step with the config, and chosen for a new ticket.

Routing: a message read from an IMAP account with a ``handler_group`` goes to that group (the
account is its channel of entry); else a recipient listed in a group's ``email_addresses`` (or
``phone_numbers``) picks that group; anything else goes to the fallback group. Must not reject mail: the
SMTP door has already refused recipients outside ``smtp_in.domains``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ImapAccount, Settings
from bot.store import models as m
from bot.store import upsert
from bot.store.db import Database


async def sync_groups(db: Database, settings: Settings) -> None:
    """Create or update one row per configured group (rows of removed groups stay for history).
    Several processes starting at once all run this: one upsert, so none trips on a row
    another has just made."""
    async with db.transaction() as s:
        await upsert.groups(s, {g.name: g.slack_channel for g in settings.handler_groups})


def group_name_for(settings: Settings, recipients: tuple[str, ...], door: str = "") -> str:
    account = imap_account(settings, door)
    if account is not None and account.handler_group:
        return account.handler_group
    wanted = [r.strip().lower() for r in recipients]
    for address in wanted:
        for group in settings.handler_groups:
            if address in {a.lower() for a in [*group.email_addresses, *group.phone_numbers]}:
                return group.name
    return settings.fallback_group_name


def imap_account(settings: Settings, door: str) -> ImapAccount | None:
    """The IMAP account behind a door name ``imap:<account>``, if it is still configured."""
    if not door.startswith("imap:"):
        return None
    name = door.removeprefix("imap:")
    return next((a for a in settings.imap_accounts if a.name == name), None)


def card_channel(group: m.HandlerGroup, settings: Settings) -> str:
    """Where the group's ticket cards go: its Slack channel, else the fallback channel."""
    return group.slack_channel or settings.slack.fallback_channel


async def route(s: AsyncSession, settings: Settings, *, recipients: tuple[str, ...],
                door: str = "") -> m.HandlerGroup:
    return await row(s, settings, group_name_for(settings, recipients, door))


async def row(s: AsyncSession, settings: Settings, name: str) -> m.HandlerGroup:
    """The group's row; made when the config names a group the database has not seen yet.
    A session asks once per group: the rows it loaded stay in ``s.info`` for its lifetime
    (a batch of messages shares one session)."""
    loaded: dict[str, m.HandlerGroup] = s.info.setdefault("handler_groups", {})
    if name not in loaded:
        config = settings.group_by_name(name)
        loaded[name] = await upsert.group(s, name=name,
                                          slack_channel=config.slack_channel if config else "")
    return loaded[name]
