"""Loopback stand-ins for the outside world: a fake Slack Web API and an SMTP relay sink.

Real protocols on port 0: the fake Slack is an aiohttp server speaking Slack's JSON; the relay
is a real aiosmtpd server. Tests assert on what these received.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    ok: bool
    at: float = field(default_factory=time.monotonic)
    result: dict[str, Any] = field(default_factory=dict)  # the JSON body the fake answered

    @property
    def channel(self) -> str | None:
        """The channel id Slack answered (``#name`` in ``args`` resolved), if it answered one."""
        return self.result.get("channel")

    @property
    def ts(self) -> str | None:
        """The ``ts`` Slack answered: what a later ``thread_ts`` or ``chat.update`` must name."""
        return self.result.get("ts")


@dataclass
class FakeSlack:
    """A small Slack Web API: chat.* (with getPermalink), conversations.*, auth.test, users.info,
    users.getPresence.

    Strict where a mistake would otherwise go unseen: a ``thread_ts`` must be the ``ts`` of a
    top-level message posted in that same channel, and ``chat.update`` needs a ``ts`` it knows.
    """

    calls: list[SlackCall] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel id → messages
    channels: dict[str, str] = field(default_factory=lambda: {
        "support": "C0SUPPORT", "sales": "C0SALES", "helpdesk": "C0HELPDESK"})
    # Failure script: each entry answers one call (status, headers, body); empty = healthy.
    failures: list[tuple[int, dict[str, str], dict[str, Any] | str]] = field(default_factory=list)
    fail_methods: set[str] = field(default_factory=lambda: {"chat.postMessage", "chat.update"})
    post_delay: float = 0.0  # seconds chat.postMessage takes before it answers (a slow Slack)
    token: str = "xoxb-test-token"
    url: str = ""
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    @property
    def posts(self) -> list[SlackCall]:
        return [c for c in self.calls if c.method == "chat.postMessage" and c.ok]

    def cards(self) -> list[SlackCall]:
        """Top-level posts in channels (direct messages to a person are ``dms()``)."""
        return [c for c in self.posts if "thread_ts" not in c.args and not _is_person(c.args.get("channel"))]

    def dms(self, user: str | None = None) -> list[SlackCall]:
        """Posts sent to a person (a user id as the channel), optionally to ``user`` only."""
        return [c for c in self.posts if _is_person(c.args.get("channel"))
                and (user is None or c.args.get("channel") == user)]

    def thread_replies(self) -> list[SlackCall]:
        return [c for c in self.posts if "thread_ts" in c.args]

    def updates(self) -> list[SlackCall]:
        return [c for c in self.calls if c.method == "chat.update" and c.ok]

    def card_of(self, reply: SlackCall) -> SlackCall | None:
        """The top-level post a thread reply went under: same channel, ``ts`` = its ``thread_ts``."""
        thread_ts = reply.args.get("thread_ts")
        if thread_ts is None or reply.channel is None:
            return None
        found = [c for c in self.cards() if c.channel == reply.channel and c.ts == thread_ts]
        return found[0] if found else None

    def thread_of(self, card: SlackCall) -> list[SlackCall]:
        """The replies posted in a top-level post's thread, oldest first."""
        return [c for c in self.thread_replies()
                if c.channel == card.channel and c.args.get("thread_ts") == card.ts]

    async def start(self) -> "FakeSlack":
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/response/{id}", self._response_url)
        app.router.add_post("/upload/{id}", self._upload)
        app.router.add_get("/private/{id}", self._private)
        app.router.add_get("/socket", self._socket)
        # At the end, an answer still being waited for (its caller killed meanwhile, say, while
        # upload_answer_delay runs) is cut short rather than waited out.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/"
        return self

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        self.responses.append(await request.json())
        return web.json_response({"ok": True})

    def response_url(self, n: int = 1) -> str:
        return self.url.replace("/api/", f"/response/{n}")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _channel_id(self, channel: str) -> str:
        if channel.startswith("#"):
            return self.channels.setdefault(channel[1:], f"C0{channel[1:].upper()[:8]}")
        return channel

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        expected = self.app_token if method == "apps.connections.open" else self.token
        if request.headers.get("Authorization") != f"Bearer {expected}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if request.method == "GET":
            args = dict(request.query)
        elif request.content_type == "application/json":
            args = await request.json()
        else:  # a form, and (as slack_sdk sends some methods) arguments in the query string
            args = {**dict(request.query), **dict(await request.post())}
        if self.failures and method in self.fail_methods:
            status, headers, body = self.failures.pop(0)
            self.calls.append(SlackCall(method, args, ok=False,
                                        result=dict(body) if isinstance(body, dict) else {}))
            if isinstance(body, str):
                return web.Response(status=status, headers=headers, text=body)
            return web.json_response(body, status=status, headers=headers)
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        if self.post_delay and method == "chat.postMessage":
            await asyncio.sleep(self.post_delay)  # the post lands even if the caller died meanwhile
        result = handler(args)
        if method == "files.completeUploadExternal" and result.get("ok") and self.upload_answer_delay:
            await asyncio.sleep(self.upload_answer_delay)  # shared already, whatever the caller does now
        if method == "files.completeUploadExternal" and result.get("ok") and self.lose_upload_answers:
            # The file is shared in the channel, but the caller never learns it (a dropped
            # connection, a 5xx from Slack's edge).
            self.lose_upload_answers -= 1
            self.calls.append(SlackCall(method, args, ok=False, result={}))
            return web.Response(status=502, text="Bad Gateway")
        # A copy: a later chat.update edits the stored message, not what this call was answered.
        self.calls.append(SlackCall(method, args, ok=bool(result.get("ok")), result=json.loads(json.dumps(result))))
        return web.json_response(result)

    users: dict[str, dict[str, str]] = field(default_factory=lambda: {
        "UALICE": {"real_name": "Alice Agent", "email": "alice@staff.example.com"},
        "UBOB": {"real_name": "Bob Agent", "email": "bob@staff.example.com"},
        "UCAROL": {"real_name": "Carol Outsider", "email": "carol@staff.example.com"},
        "UADMIN": {"real_name": "Ada Admin", "email": "ada@staff.example.com"}})
    # users.getPresence answers: "active" unless set here ("away"); an unknown user is an error.
    presence: dict[str, str] = field(default_factory=dict)
    views_opened: list[dict[str, Any]] = field(default_factory=list)
    pending_uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    lose_upload_answers: int = 0  # completed uploads whose answer is lost (the file is shared)
    upload_answer_delay: float = 0.0  # seconds a completed upload waits before it answers
    files: dict[str, bytes] = field(default_factory=dict)  # file id → bytes, once an upload completed
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # posts to response_url

    app_token: str = "xapp-1-test-app-token"
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    _socket_out: asyncio.Queue = field(default_factory=asyncio.Queue)

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.url.replace("http://", "ws://").replace("/api/", "/socket")}

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        """Socket Mode: say hello, hand over queued envelopes, collect the app's acks."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1})

        async def pump() -> None:
            while True:
                await ws.send_json(await self._socket_out.get())

        sender = asyncio.create_task(pump())
        try:
            async for message in ws:
                if message.type == web.WSMsgType.TEXT:
                    self.socket_acks.append(json.loads(message.data))
        finally:
            sender.cancel()
        return ws

    def push_envelope(self, kind: str, payload: dict[str, Any]) -> str:
        envelope_id = f"env-{next(self._ts)}"
        self._socket_out.put_nowait({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                     "accepts_response_payload": kind != "events_api"})
        return envelope_id

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user": "deskbell", "team": "Example", "team_id": "T0EXAMPLE",
                "user_id": "UBOT", "bot_id": "BBOT"}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        profile = self.users.get(args.get("user", ""))
        if profile is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": args["user"], "name": args["user"].lower(), "profile": profile}}

    def _users_getPresence(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user", "")
        if user not in self.users and user not in self.presence:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "presence": self.presence.get(user, "active")}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args["view"] if isinstance(args["view"], dict) else json.loads(args["view"])
        view = {**view, "id": f"V{len(self.views_opened) + 1:04d}", "hash": "h1"}
        self.views_opened.append(view)
        return {"ok": True, "view": view}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args["view"] if isinstance(args["view"], dict) else json.loads(args["view"])
        view = {**view, "id": args.get("view_id", "V0"), "hash": "h2"}
        self.views_opened.append(view)
        return {"ok": True, "view": view}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args["view"] if isinstance(args["view"], dict) else json.loads(args["view"])
        self.views_opened.append({**view, "published_for": args["user_id"]})
        return {"ok": True, "view": view}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self.ephemerals.append(args)
        return {"ok": True, "message_ts": "1.1"}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(args["channel"])
        if "thread_ts" in args and not any(
                m["ts"] == args["thread_ts"] and "thread_ts" not in m for m in self.messages.get(channel, [])):
            # Like Slack: a reply must name the ts of a top-level message in that same channel.
            return {"ok": False, "error": "thread_not_found"}
        # Like Slack's: the posting time in seconds, unique within the channel.
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {"ts": ts, **{k: v for k, v in args.items() if k != "channel"}}
        self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(args["channel"])
        if not any(m["ts"] == args["message_ts"] for m in self.messages.get(channel, [])):
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel,
                "permalink": f"https://deskbell-test.slack.com/archives/{channel}/p{args['message_ts'].replace('.', '')}"}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(args["channel"])
        for message in self.messages.get(channel, []):
            if message["ts"] == args["ts"]:
                message.update({k: v for k, v in args.items() if k not in ("channel", "ts")})
                return {"ok": True, "channel": channel, "ts": args["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channels": [{"id": i, "name": n} for n, i in self.channels.items()],
                "response_metadata": {"next_cursor": ""}}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first, ``oldest`` bound, at most ``limit`` (Slack caps it at 999) per page,
        ``cursor`` paging: as Slack pages a channel's history."""
        messages = [m for m in reversed(self.messages.get(args["channel"], []))
                    if "thread_ts" not in m and float(m["ts"]) >= float(args.get("oldest", 0))]
        return self._page(messages, args)

    @staticmethod
    def _page(messages: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        limit = min(int(args.get("limit", 100)), 999)
        start = int(args.get("cursor") or 0)
        page, rest = messages[start:start + limit], messages[start + limit:]
        return {"ok": True, "messages": page, "has_more": bool(rest),
                "response_metadata": {"next_cursor": str(start + limit) if rest else ""}}

    # ----- files: the upload flow of files_upload_v2, and url_private ----------------------

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length", "")).isdigit() or int(args["length"]) < 1:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        self.pending_uploads[file_id] = {"name": args["filename"], "length": int(args["length"]), "data": None}
        return {"ok": True, "file_id": file_id, "upload_url": self.url.replace("/api/", f"/upload/{file_id}")}

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        pending = self.pending_uploads.get(request.match_info["id"])
        if pending is None:
            return web.Response(status=404, text="unknown upload")
        pending["data"] = await request.read()
        return web.Response(text="OK - " + str(len(pending["data"])))

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args["files"] if isinstance(args["files"], list) else json.loads(args["files"])
        channel = args.get("channel_id")
        if channel is not None and channel.startswith("#"):
            return {"ok": False, "error": "invalid_channel"}  # Slack wants the channel's id here
        thread_ts = args.get("thread_ts")
        if thread_ts and not any(m["ts"] == thread_ts and "thread_ts" not in m
                                 for m in self.messages.get(channel or "", [])):
            return {"ok": False, "error": "thread_not_found"}
        shared = []
        for f in files:
            pending = self.pending_uploads.pop(f["id"], None)
            if pending is None or pending["data"] is None:
                return {"ok": False, "error": "file_not_found"}
            if len(pending["data"]) != pending["length"]:
                return {"ok": False, "error": "file_upload_size_mismatch"}
            self.files[f["id"]] = pending["data"]
            shared.append({"id": f["id"], "name": pending["name"], "title": f.get("title") or pending["name"],
                           "size": len(pending["data"]),
                           "url_private": self.url.replace("/api/", f"/private/{f['id']}")})
        if channel:
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            self.messages.setdefault(channel, []).append(
                {"ts": ts, "thread_ts": thread_ts, "files": shared, "upload": True} if thread_ts else
                {"ts": ts, "files": shared, "upload": True})
        return {"ok": True, "files": [{"id": s["id"], "title": s["title"]} for s in shared]}

    async def _private(self, request: web.Request) -> web.StreamResponse:
        """``url_private``: the file's bytes, to the bot's token only (as Slack serves them)."""
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=302, headers={"Location": "https://slack.com/signin"})
        data = self.files.get(request.match_info["id"])
        return web.Response(status=404) if data is None else web.Response(body=data)

    def staff_upload(self, name: str, data: bytes, mimetype: str) -> dict[str, Any]:
        """A file a person put in a file input: stored, described as Slack describes it."""
        file_id = f"F{next(self._ts):08d}"
        self.files[file_id] = data
        return {"id": file_id, "name": name, "title": name, "mimetype": mimetype, "size": len(data),
                "url_private": self.url.replace("/api/", f"/private/{file_id}")}

    def shared_files(self, card: SlackCall) -> list[dict[str, Any]]:
        """The files shared in a card's thread, oldest first, each with its bytes as ``data``."""
        return [{**f, "data": self.files[f["id"]]} for m in self.messages.get(card.channel or "", [])
                if m.get("thread_ts") == card.ts for f in m.get("files") or []]

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        messages = [m for m in self.messages.get(args["channel"], [])
                    if m.get("thread_ts") == args["ts"] or m["ts"] == args["ts"]]
        return {"ok": True, "messages": messages}


class _Sink:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        self.refuse: str | None = None  # e.g. "451 4.3.0 try later"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        if self.refuse:
            return self.refuse
        with self.lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return f"250 2.0.0 Ok: queued as Q{len(self.received):05d}"


class RelaySink:
    """A real SMTP server on loopback (the test's event loop) that keeps what it is handed.
    Without ``smtputf8`` it does not offer SMTPUTF8 and refuses non-ASCII addresses, as most
    relays configured by default do."""

    def __init__(self, *, smtputf8: bool = False) -> None:
        self.sink = _Sink()
        self.port = 0
        self.smtputf8 = smtputf8
        self._server: asyncio.Server | None = None

    async def start(self) -> "RelaySink":
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.sink, hostname="relay.test", loop=loop, enable_SMTPUTF8=self.smtputf8),
            "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.sink.lock:
            return [message_from_bytes(raw, policy=policy.default) for _, _, raw in self.sink.received]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.sink.received) < count and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return self.messages


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, default=str)


def _is_person(channel: object) -> bool:
    return isinstance(channel, str) and channel[:1] in ("U", "W")
