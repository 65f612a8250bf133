"""Adapter: fetches MMS media from Twilio in the background (HTTP Basic with the account's
credentials, as Twilio requires when media URLs are protected), so a customer's picture is kept
with their message.

Runs in the worker role beside intake. A fetch that fails is tried again after a pause that
grows, then given up (the attachment stays listed, withheld, with an event saying why). Must
not decide anything about tickets; bytes go to core, which stores them.
"""

from __future__ import annotations

import asyncio
import base64
import logging

import aiohttp

from bot.clock import Clock
from bot.core import media
from bot.store.blobstore import BlobStore
from bot.store.db import Database

log = logging.getLogger(__name__)

ATTEMPTS = 5
POLL_SECONDS = 2.0


class MediaFetcher:
    def __init__(self, *, db: Database, clock: Clock, account_sid: str, auth_token: str,
                 max_bytes: int, timeout: float = 30.0, poll_seconds: float = POLL_SECONDS,
                 files: BlobStore | None = None) -> None:
        self.db, self.clock, self.files = db, clock, files
        token = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self.max_bytes, self.timeout, self.poll_seconds = max_bytes, timeout, poll_seconds
        self._failures: dict[int, tuple[int, float]] = {}  # attachment → (failures, next try)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http:
            while not self._stopping.is_set():
                try:
                    for item in await media.waiting(self.db):
                        await self._fetch(http, item)
                except Exception:  # the database may be back in a moment
                    log.exception("mms: a pass over waiting media failed")
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)
                except asyncio.TimeoutError:
                    pass

    async def _fetch(self, http: aiohttp.ClientSession, item: media.WaitingMedia) -> None:
        failures, next_try = self._failures.get(item.attachment_id, (0, 0.0))
        if self.clock.monotonic() < next_try:
            return
        try:
            async with http.get(item.url, headers=self._headers) as response:
                if response.status in (404, 410):
                    await media.give_up(self.db, item.attachment_id, f"Twilio says {response.status}",
                                        now=self.clock.now())
                    return
                response.raise_for_status()
                # Read no further than the limit: a bigger file is kept as its size only.
                data = await response.content.read(self.max_bytes + 1)
                await media.keep(self.db, item.attachment_id, data, content_type=response.content_type,
                                 max_bytes=self.max_bytes, now=self.clock.now(), files=self.files)
                self._failures.pop(item.attachment_id, None)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            failures += 1
            if failures >= ATTEMPTS:
                log.warning("mms: giving up on %s after %s attempts: %s", item.name, failures, exc)
                await media.give_up(self.db, item.attachment_id, str(exc), now=self.clock.now())
                self._failures.pop(item.attachment_id, None)
                return
            self._failures[item.attachment_id] = (failures, self.clock.monotonic() + 2 ** failures)
            log.info("mms: fetching %s failed (%s); trying again later", item.name, exc)
