"""Files staff attach in Slack (the Reply modal's file input): their bytes, fetched from
``url_private`` with the bot token, as ``Attachment`` records for core.

Slack answers a request without the token with a redirect to its sign-in page, not the file:
redirects are not followed, and a file whose length differs from what Slack said is refused.
Must not store anything or decide what to send (core does).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.filetypes import safe_name
from bot.messages import Attachment


class FetchFailed(Exception):
    """A shared file could not be had; the message names it."""


async def fetch(client: AsyncWebClient, shared: list[dict[str, Any]], *, timeout: float = 60.0) -> list[Attachment]:
    files = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        for info in shared:
            name = safe_name(str(info.get("name") or info.get("title") or ""), fallback=f"file-{len(files) + 1}")
            url = info.get("url_private_download") or info.get("url_private")
            if not url:
                raise FetchFailed(f"Slack gave no address for {name}")
            try:
                async with http.get(url, headers={"Authorization": f"Bearer {client.token}"},
                                    allow_redirects=False) as answer:
                    if answer.status != 200:
                        raise FetchFailed(f"Slack would not hand over {name} (HTTP {answer.status})")
                    data = await answer.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise FetchFailed(f"could not fetch {name} from Slack: {type(exc).__name__}") from exc
            if isinstance(info.get("size"), int) and info["size"] != len(data):
                raise FetchFailed(f"{name} arrived with {len(data):,} bytes, not the {info['size']:,} Slack announced")
            files.append(Attachment(name=name, content_type=str(info.get("mimetype") or "application/octet-stream"),
                                    data=data))
    return files
