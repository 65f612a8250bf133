"""Signed Slack requests to our ASGI app over real HTTP, as Slack itself sends them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

SECRET = "test-signing-secret-0123456789"
_counter = itertools.count(1)


def sign(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class SlackSender:
    """Builds Slack's payloads and posts them, signed, to ``/slack/events``."""

    def __init__(self, url: str, response_url: str) -> None:
        self.url, self.response_url = url, response_url

    async def post(self, body: bytes, content_type: str, *, headers: dict[str, str] | None = None,
                   signature: dict[str, str] | None = None) -> tuple[int, str]:
        signature = sign(body) if signature is None else signature
        all_headers = {"Content-Type": content_type, **signature, **(headers or {})}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url, data=body, headers=all_headers) as response:
                return response.status, await response.text()

    async def interaction(self, payload: dict[str, Any], **kw: Any) -> tuple[int, str]:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded", **kw)

    async def button(self, action_id: str, number: int, *, user: str, channel: str = "C0SUPPORT",
                     action_ts: str | None = None, option: str | None = None,
                     view: dict[str, Any] | None = None, value: str | None = None,
                     **kw: Any) -> tuple[int, str]:
        action: dict[str, Any] = {"action_id": action_id, "block_id": f"ticket:{number}",
                                  "action_ts": action_ts or f"{time.time():.6f}{next(_counter)}"}
        if option is not None:
            action["selected_option"] = {"value": option}
            action["type"] = "overflow"
        else:
            action["value"] = value if value is not None else str(number)
            action["type"] = "button"
        payload: dict[str, Any] = {
            "type": "block_actions", "user": {"id": user, "team_id": "T0EXAMPLE"},
            "team": {"id": "T0EXAMPLE"}, "api_app_id": "A0APP", "token": "legacy",
            "trigger_id": f"trigger.{next(_counter)}", "actions": [action],
            "response_url": self.response_url}
        if view is not None:
            payload["view"] = view
            payload["container"] = {"type": "view", "view_id": view["id"]}
        else:
            payload["channel"] = {"id": channel}
            payload["container"] = {"type": "message", "channel_id": channel, "message_ts": "1.1"}
        return await self.interaction(payload, **kw)

    async def submit(self, view: dict[str, Any], values: dict[str, Any], *, user: str,
                     **kw: Any) -> tuple[int, str]:
        """Submit ``view`` with ``values`` (block_id → text, {"option": value}, {"user": id} or
        {"files": [Slack file objects]})."""
        state: dict[str, dict[str, Any]] = {}
        for block_id, value in values.items():
            if isinstance(value, dict) and "user" in value:
                state[block_id] = {"value": {"type": "users_select", "selected_user": value["user"]}}
            elif isinstance(value, dict) and "files" in value:  # a file_input: Slack's file objects
                state[block_id] = {"value": {"type": "file_input", "files": value["files"]}}
            elif isinstance(value, dict) and "option" in value:
                state[block_id] = {"value": {"type": "static_select",
                                             "selected_option": {"value": value["option"]}}}
            else:
                state[block_id] = {"value": {"type": "plain_text_input", "value": value}}
        payload = {"type": "view_submission", "user": {"id": user, "team_id": "T0EXAMPLE"},
                   "team": {"id": "T0EXAMPLE"}, "api_app_id": "A0APP", "token": "legacy",
                   "trigger_id": f"trigger.{next(_counter)}",
                   "view": {**view, "state": {"values": state}}}
        return await self.interaction(payload, **kw)

    async def closed(self, view: dict[str, Any], *, user: str) -> tuple[int, str]:
        return await self.interaction({"type": "view_closed", "user": {"id": user, "team_id": "T0EXAMPLE"},
                                       "team": {"id": "T0EXAMPLE"}, "api_app_id": "A0APP",
                                       "token": "legacy", "view": view, "is_cleared": False})

    async def command(self, text: str, *, user: str, command: str = "/ticket", channel: str = "C0SUPPORT",
                      trigger_id: str | None = None, **kw: Any) -> tuple[int, str]:
        body = urlencode({"command": command, "text": text, "user_id": user, "team_id": "T0EXAMPLE",
                          "channel_id": channel, "api_app_id": "A0APP", "token": "legacy",
                          "trigger_id": trigger_id or f"trigger.{next(_counter)}",
                          "response_url": self.response_url}).encode()
        return await self.post(body, "application/x-www-form-urlencoded", **kw)

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, **kw: Any) -> tuple[int, str]:
        body = json.dumps({"type": "event_callback", "team_id": "T0EXAMPLE", "api_app_id": "A0APP",
                           "token": "legacy", "event": event,
                           "event_id": event_id or f"Ev{next(_counter):06d}",
                           "event_time": int(time.time())}).encode()
        return await self.post(body, "application/json", **kw)
