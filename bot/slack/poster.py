"""Outbox sender for Slack: one Web API call per outbox row.

Given a rendered row (``method`` + ``args``) and the remote ids its ``refs`` resolved to, it
calls Slack and returns ``"<channel id>/<ts>"``. Translates Slack's answers into the outbox's
two failure kinds: ``DeliveryFailed`` (retry; 429 carries Retry-After) and ``DeliveryRejected``.
Must not touch the database or decide what to post.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import DeliveryFailed, DeliveryRejected
from bot.core.views import OutboxView

log = logging.getLogger(__name__)

METADATA_TYPE = "deskbell_outbox"
# Errors an operator can fix without touching the row (invite the bot, rotate the token):
# keep retrying with backoff instead of giving up at once.
FIXABLE = {"not_in_channel", "channel_not_found", "invalid_auth", "not_authed", "account_inactive",
           "token_revoked", "token_expired", "ratelimited", "internal_error", "fatal_error",
           "service_unavailable", "request_timeout"}


def make_client(*, token: str, base_url: str, session: aiohttp.ClientSession,
                timeout: int = 15) -> AsyncWebClient:
    # No SDK-level retries: the outbox owns retrying, with backoff and a record of each try.
    return AsyncWebClient(token=token, base_url=base_url if base_url.endswith("/") else base_url + "/",
                          session=session, timeout=timeout, retry_handlers=[])


def permalink(remote_id: str) -> str:
    """``C123/1700000000.000100`` → the message's web link (Slack redirects to the workspace)."""
    channel, ts = remote_id.split("/", 1)
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


class SlackPoster:
    channel = "slack"

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._channel_ids: dict[str, str] = {}

    async def send(self, item: OutboxView, refs: dict[str, str]) -> str:
        method = item.payload["method"]
        args: dict[str, Any] = dict(item.payload["args"])
        if "channel" in refs:
            args["channel"] = refs["channel"].split("/", 1)[0]
        for name in ("thread_ts", "ts"):
            if name in refs:
                args[name] = refs[name].split("/", 1)[1]
        links = {name[5:]: permalink(remote) for name, remote in refs.items() if name.startswith("link:")}
        if links:
            encoded = json.dumps(args)
            for placeholder, url in links.items():
                encoded = encoded.replace(placeholder, url)
            args = json.loads(encoded)
        if method == "chat.postMessage":
            # Tag the post so a retry after a crash can find it instead of posting twice.
            args["metadata"] = {"event_type": METADATA_TYPE, "event_payload": {"outbox_id": item.id}}
            if item.uncertain:
                found = await self._find_posted(args, item.id)
                if found:
                    log.info("slack post found after uncertain attempt outbox=%s", item.id)
                    return found
        data = await self._call(method, args)
        return f"{data.get('channel', args.get('channel'))}/{data.get('ts', '')}"

    async def _call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.client.api_call(method, json=args)
        except SlackApiError as exc:
            raise self._translate(exc) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"slack unreachable: {type(exc).__name__}: {exc}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    @staticmethod
    def _translate(exc: SlackApiError) -> Exception:
        response = exc.response
        status = response.status_code
        error = response.data.get("error", "") if isinstance(response.data, dict) else ""
        if status == 429 or error == "ratelimited":
            retry_after = response.headers.get("Retry-After") or response.headers.get("retry-after")
            try:
                seconds = float(retry_after) if retry_after is not None else None
            except ValueError:
                seconds = None
            return DeliveryFailed(f"slack rate limited (Retry-After {retry_after})", retry_after=seconds)
        if status >= 500 or status == 408:
            return DeliveryFailed(f"slack HTTP {status}")
        if error in FIXABLE or not error:
            return DeliveryFailed(f"slack error {error or 'HTTP ' + str(status)}")
        return DeliveryRejected(f"slack error {error}")

    async def _find_posted(self, args: dict[str, Any], outbox_id: int) -> str | None:
        """Look for a message carrying this row's metadata (it may have been posted already)."""
        try:
            channel = await self._channel_id(args["channel"])
            if channel is None:
                return None
            if "thread_ts" in args:
                data = await self._call("conversations.replies", {
                    "channel": channel, "ts": args["thread_ts"], "limit": 200,
                    "include_all_metadata": True})
            else:
                data = await self._call("conversations.history", {
                    "channel": channel, "limit": 100, "include_all_metadata": True})
        except DeliveryRejected:
            return None
        for message in data.get("messages", []):
            meta = message.get("metadata") or {}
            if meta.get("event_type") == METADATA_TYPE and \
                    (meta.get("event_payload") or {}).get("outbox_id") == outbox_id:
                return f"{channel}/{message['ts']}"
        return None

    async def _channel_id(self, channel: str) -> str | None:
        if not channel.startswith("#"):
            return channel
        name = channel[1:]
        if name not in self._channel_ids:
            cursor = None
            while True:
                data = await self._call("conversations.list", {
                    "types": "public_channel,private_channel", "limit": 1000,
                    "exclude_archived": True, **({"cursor": cursor} if cursor else {})})
                for ch in data.get("channels", []):
                    self._channel_ids[ch.get("name", "")] = ch.get("id", "")
                cursor = (data.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        return self._channel_ids.get(name)
