"""Adapter: Slack's presence of group members → ``core.availability``.

Every ``interval`` seconds, asks ``users.getPresence`` about each member assignment may pick
(``availability.members_to_watch``) and reports who Slack shows as away. One person Slack
cannot answer about (an unknown user, a timeout, a rate limit) is skipped for that round and
keeps the state last seen; the others are still reported. No ticket logic here, and no
assigning: core decides what "away" means.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import availability
from bot.core.desk import Desk

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 300.0


class PresencePoller:
    def __init__(self, desk: Desk, client: AsyncWebClient, *, interval: float = INTERVAL_SECONDS) -> None:
        self.desk, self.client, self.interval = desk, client, interval
        self._stop = asyncio.Event()

    async def poll_once(self) -> dict[str, bool]:
        """One round: {Slack user id: away?} for each member Slack answered about, recorded."""
        seen: dict[str, bool] = {}
        for user in availability.members_to_watch(self.desk.settings):
            try:
                response = await self.client.users_getPresence(user=user)
            except SlackApiError as exc:
                log.warning("users.getPresence failed user=%s error=%s", user, exc.response.get("error"))
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("users.getPresence failed user=%s error=%s", user, type(exc).__name__)
                continue
            presence = response.get("presence")
            if presence not in ("active", "away"):
                log.warning("users.getPresence gave no presence user=%s", user)
                continue
            seen[user] = presence == "away"
        await availability.record_presence(self.desk, seen)
        return seen

    async def run(self) -> None:
        """Poll until ``stop()``; a round that fails as a whole (the database is away) is
        logged and the next one comes as usual."""
        while not self._stop.is_set():
            try:
                await self.poll_once()
            except Exception:  # process boundary: keep watching; the next round may work
                log.exception("presence round failed; the next one is in %.0f s", self.interval)
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
