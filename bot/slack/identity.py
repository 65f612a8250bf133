"""Who a Slack user is: name and email from ``users.info``, cached in memory.

Resolved before a core action starts (never inside a transaction). When Slack cannot answer,
the action still goes ahead with the bare user id. No database access here.
"""

from __future__ import annotations

import logging
import time

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.staff import Actor

log = logging.getLogger(__name__)

TTL_SECONDS = 3600.0


class Directory:
    def __init__(self, client: AsyncWebClient, *, ttl: float = TTL_SECONDS) -> None:
        self.client, self.ttl = client, ttl
        self._cache: dict[str, tuple[float, Actor]] = {}

    async def actor(self, user_id: str) -> Actor:
        hit = self._cache.get(user_id)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        try:
            response = await self.client.users_info(user=user_id)
            user = response.get("user") or {}
            profile = user.get("profile") or {}
            actor = Actor(slack_user_id=user_id,
                          name=profile.get("real_name") or profile.get("display_name") or user.get("name") or "",
                          email=profile.get("email"))
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("users.info failed user=%s error=%s", user_id, type(exc).__name__)
            return Actor(slack_user_id=user_id)
        self._cache[user_id] = (time.monotonic(), actor)
        return actor
