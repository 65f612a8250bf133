"""Outbox sender for the ``slack`` channel: turns staff-facing intents into Web API calls.

It alone knows Slack: which method shows an intent, Block Kit (through ``blocks``), how a
delivered message is identified (``"<channel id>/<ts>"``, see ``remote_id``) and how to find a
post after a crash instead of posting twice. Translates Slack's answers into the outbox's two
failure kinds: ``DeliveryFailed`` (retry; 429 carries Retry-After) and ``DeliveryRejected``.
Must not touch the database or decide what to post.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import intents
from bot.core.deliveries import Receipt
from bot.core.errors import DeliveryFailed, DeliveryRejected
from bot.core.views import AttachmentView, CardView, MessageView, OutboxView, QuarantineView, TicketView, restore
from bot.slack import blocks

log = logging.getLogger(__name__)

METADATA_TYPE = "deskbell_outbox"
# Errors an operator can fix without touching the row (invite the bot, rotate the token):
# keep retrying with backoff instead of giving up at once.
FIXABLE = {"not_in_channel", "channel_not_found", "invalid_auth", "not_authed", "account_inactive",
           "token_revoked", "token_expired", "ratelimited", "internal_error", "fatal_error",
           "service_unavailable", "request_timeout"}
# Our clock and Slack's may disagree a little: look this much further back for a lost post.
CLOCK_SKEW = timedelta(minutes=5)
PAGE = 200  # messages per history page while looking for a lost post


def make_client(*, token: str, base_url: str, session: aiohttp.ClientSession,
                timeout: int = 15) -> AsyncWebClient:
    # No SDK-level retries: the outbox owns retrying, with backoff and a record of each try.
    return AsyncWebClient(token=token, base_url=base_url if base_url.endswith("/") else base_url + "/",
                          session=session, timeout=timeout, retry_handlers=[])


def remote_id(channel: str, ts: str) -> str:
    """How a delivered Slack message is recorded: ``C123/1700000000.000100``."""
    return f"{channel}/{ts}"


def _split(remote: str) -> tuple[str, str]:
    channel, ts = remote.split("/", 1)
    return channel, ts


def permalink(remote: str) -> str:
    """``C123/1700000000.000100`` → the message's web link (Slack redirects to the workspace)."""
    channel, ts = _split(remote)
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


Call = tuple[str, dict[str, Any]]


def _card(item: OutboxView, refs: dict[str, str]) -> Call:
    card = restore(CardView, item.payload["card"])
    return "chat.postMessage", {"channel": item.payload["destination"], **blocks.ticket_card(card)}


def _card_update(item: OutboxView, refs: dict[str, str]) -> Call:
    channel, ts = _split(refs["card"])
    link = permalink(refs["new_card"]) if "new_card" in refs else None
    card = restore(CardView, item.payload["card"])
    return "chat.update", {"channel": channel, "ts": ts, **blocks.ticket_card(card, new_card_url=link)}


def _thread_message(item: OutboxView, refs: dict[str, str]) -> Call:
    channel, ts = _split(refs["card"])
    content = blocks.thread_message(restore(TicketView, item.payload["ticket"]),
                                    restore(MessageView, item.payload["message"]))
    return "chat.postMessage", {"channel": channel, "thread_ts": ts, **content}


def _thread_update(item: OutboxView, refs: dict[str, str]) -> Call:
    channel, ts = _split(refs["post"])
    content = blocks.thread_message(restore(TicketView, item.payload["ticket"]),
                                    restore(MessageView, item.payload["message"]))
    return "chat.update", {"channel": channel, "ts": ts, **content}


def _thread_notice(item: OutboxView, refs: dict[str, str]) -> Call:
    channel, ts = _split(refs["card"])
    return "chat.postMessage", {"channel": channel, "thread_ts": ts, **blocks.notice(item.payload["text"])}


def _notice(item: OutboxView, refs: dict[str, str]) -> Call:
    return "chat.postMessage", {"channel": item.payload["destination"], **blocks.notice(item.payload["text"])}


def _quarantine_notice(item: OutboxView, refs: dict[str, str]) -> Call:
    content = blocks.quarantine_notice(restore(QuarantineView, item.payload["item"]))
    return "chat.postMessage", {"channel": item.payload["destination"], **content}


RENDER: dict[str, Callable[[OutboxView, dict[str, str]], Call]] = {
    intents.CARD: _card, intents.CARD_UPDATE: _card_update,
    intents.THREAD_MESSAGE: _thread_message, intents.THREAD_UPDATE: _thread_update,
    intents.THREAD_NOTICE: _thread_notice,
    intents.NOTICE: _notice, intents.QUARANTINE_NOTICE: _quarantine_notice,
}


@dataclass(frozen=True)
class Files:
    """Where a customer's file comes from, for the ``ticket.file`` intent: its bytes by
    SHA-256, a signed download link by attachment id (None: links are not configured)."""

    read: Callable[[str], Awaitable[bytes | None]]
    link: Callable[[int], str | None]
    max_upload_bytes: int
    upload: bool = True


class SlackSender:
    channel = "slack"

    def __init__(self, client: AsyncWebClient, *, files: Files | None = None) -> None:
        self.client = client
        self.files = files
        self._channel_ids: dict[str, str] = {}

    async def send(self, item: OutboxView, refs: dict[str, str]) -> str | Receipt:
        if item.kind == intents.FILE:
            return await self._send_file(item, refs)
        render = RENDER.get(item.kind)
        if render is None:
            raise DeliveryRejected(f"the Slack sender cannot show a {item.kind!r} intent")
        method, args = render(item, refs)
        if method == "chat.postMessage":
            # Tag the post so a retry after a crash can find it instead of posting twice.
            args["metadata"] = {"event_type": METADATA_TYPE, "event_payload": {"outbox_id": item.id}}
            if item.uncertain:
                found = await self._find_posted(args, item)
                if found:
                    log.info("slack post found after uncertain attempt outbox=%s", item.id)
                    return await self._with_link(item, found)
        data = await self._call(method, args)
        return await self._with_link(item, remote_id(data.get("channel", args.get("channel")), data.get("ts", "")))

    async def _send_file(self, item: OutboxView, refs: dict[str, str]) -> str:
        """A customer's file in the card's thread: uploaded (files.getUploadURLExternal, the
        bytes, files.completeUploadExternal), or, for a program or script, a file over
        ``slack.max_upload_bytes`` or with uploads off, a post with its signed link."""
        if self.files is None:
            raise DeliveryFailed("no file source configured for Slack uploads")
        channel, ts = _split(refs["card"])
        file = restore(AttachmentView, item.payload["file"])
        why = ("a program or script" if file.executable else
               "empty" if file.size == 0 else  # Slack refuses to upload nothing
               "larger than Slack takes here" if file.size > self.files.max_upload_bytes else
               None if self.files.upload else "uploads to Slack are off")
        if why is not None:
            content = blocks.file_link(file, self.files.link(file.id) if file.id is not None else None, why)
            post = {"channel": channel, "thread_ts": ts, **content,
                    "metadata": {"event_type": METADATA_TYPE, "event_payload": {"outbox_id": item.id}}}
            if item.uncertain and (found := await self._find_posted(post, item)):
                return found
            data = await self._call("chat.postMessage", post)
            return remote_id(data.get("channel", channel), data.get("ts", ""))
        # Any earlier attempt may have shared the file before failing (its answer lost, or the
        # process killed): look first, upload only when it is not there.
        if (item.uncertain or item.attempts > 1) and (found := await self._find_uploaded(channel, ts, file, item)):
            log.info("slack upload found after uncertain attempt outbox=%s", item.id)
            return found
        content = await self.files.read(file.sha256)
        if content is None:
            raise DeliveryRejected(f"the bytes of {file.name!r} are no longer stored")
        try:
            response = await self.client.files_upload_v2(
                content=content, filename=file.name, title=file.name, channel=channel, thread_ts=ts,
                request_file_info=False)
        except SlackApiError as exc:
            raise self._translate(exc) from exc
        except (SlackRequestError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"slack upload failed: {type(exc).__name__}: {exc}") from exc
        uploaded = (response.get("files") or [{}])[0]
        return remote_id(channel, f"file:{uploaded.get('id', '')}")

    async def _find_uploaded(self, channel: str, thread_ts: str, file: AttachmentView, item: OutboxView) -> str | None:
        """A file of this name and size already shared in the thread since the item was
        recorded: the upload went through before the crash, and is not made twice."""
        oldest = f"{(item.created_at - CLOCK_SKEW).timestamp():.6f}"
        cursor = None
        while True:
            data = await self._call("conversations.replies", {
                "channel": channel, "ts": thread_ts, "oldest": oldest, "limit": PAGE,
                **({"cursor": cursor} if cursor else {})})
            for message in data.get("messages", []):
                for shared in message.get("files") or []:
                    if shared.get("name") == file.name and shared.get("size") == file.size:
                        return remote_id(channel, f"file:{shared.get('id', '')}")
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    async def _with_link(self, item: OutboxView, remote: str) -> str | Receipt:
        """A card's permalink, asked for once when it is posted (digests link to it). The post
        went out whatever happens here: a failure falls back to the archive link, which Slack
        redirects to the workspace."""
        if item.kind != intents.CARD:
            return remote
        channel, ts = _split(remote)
        try:
            data = await self._call("chat.getPermalink", {"channel": channel, "message_ts": ts})
        except (DeliveryFailed, DeliveryRejected) as exc:
            log.warning("no permalink for outbox=%s: %s", item.id, exc)
            data = {}
        return Receipt(remote, data.get("permalink") or permalink(remote))

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

    async def _find_posted(self, args: dict[str, Any], item: OutboxView) -> str | None:
        """Look for a message carrying this row's metadata among everything posted since the
        row was recorded (its first attempt came later), page by page: in a busy channel the
        lost post may be hundreds of messages back."""
        try:
            channel = await self._channel_id(args["channel"])
            if channel is None:
                return None
            oldest = f"{(item.created_at - CLOCK_SKEW).timestamp():.6f}"
            if "thread_ts" in args:
                method, query = "conversations.replies", {"ts": args["thread_ts"]}
            else:
                method, query = "conversations.history", {}
            cursor = None
            while True:
                data = await self._call(method, {
                    "channel": channel, **query, "oldest": oldest, "limit": PAGE,
                    "include_all_metadata": True, **({"cursor": cursor} if cursor else {})})
                for message in data.get("messages", []):
                    meta = message.get("metadata") or {}
                    if meta.get("event_type") == METADATA_TYPE and \
                            (meta.get("event_payload") or {}).get("outbox_id") == item.id:
                        return remote_id(channel, message["ts"])
                cursor = (data.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except DeliveryRejected:
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
