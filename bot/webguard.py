"""HTTP guards that know no route: a header deadline per connection, a cap on request bodies,
and one plain 500 for any exception a route lets escape.

uvicorn closes idle keep-alive connections but lets a client dribble header bytes forever
(slowloris), and Starlette reads whatever body a client sends. Must not know any route, read
a body beyond the cap, or log an exception's message (it may carry a token or a password).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


def header_deadline_protocol(seconds: float) -> type[H11Protocol]:
    """An h11 protocol class for ``uvicorn.Config(http=...)`` with a header deadline.

    A connection must complete a request's headers within ``seconds`` of opening, and the
    next request's headers within ``seconds`` of the previous response; else it is closed,
    however many bytes it keeps sending. The deadline does not run while a request is being
    answered (its body is the body cap's business, idleness after it uvicorn's keep-alive).
    """
    if seconds <= 0:
        raise ValueError("the header deadline must be positive")

    class HeaderDeadlineProtocol(H11Protocol):
        header_timeout = seconds

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            # uvicorn starts a new request/response cycle exactly when h11 has parsed a whole
            # request head: from then on the client is no longer late.
            if self.cycle is not cycle:
                self._disarm_header_deadline()

        def on_response_complete(self) -> None:
            # Armed before uvicorn looks at pipelined data, so a request already waiting
            # there disarms it again at once (through handle_events).
            if not self.transport.is_closing():
                self._arm_header_deadline()
            super().on_response_complete()

        def _arm_header_deadline(self) -> None:
            self._disarm_header_deadline()
            self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _header_deadline_passed(self) -> None:
            self._header_deadline = None
            if self.transport.is_closing():
                return
            # Debug only: a slowloris attack would otherwise fill the log at its own pace.
            log.debug("closing a connection that sent no complete request head in %ss", self.header_timeout)
            try:
                self.conn.send(h11.ConnectionClosed())
            except h11.LocalProtocolError:  # h11 already in an error state: just close
                pass
            self.transport.close()

    return HeaderDeadlineProtocol


class BodyTooLarge(Exception):
    """Raised inside the app when the body passes the cap (the 413 has already been sent)."""


class BodyLimit:
    """Pure ASGI middleware: no request body longer than ``max_bytes`` reaches the app.

    A declared Content-Length above the cap gets 413 before a byte of the body is read; a
    chunked body is counted as it arrives and answered 413 the moment it passes the cap, so
    the app never holds more than ``max_bytes``. Either way the connection is closed (the
    rest of the body is not worth reading). Must not buffer anything itself.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send)
            return
        seen, started, refused = 0, False, False

        async def counted_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Refuse before the app gets this chunk: it never holds more than the cap.
                    if not started:
                        refused = True
                        await self._too_large(send)
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is out; whatever the app's error handling says is moot
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not refused:  # the app had already started answering: cut it short
                raise

    async def _too_large(self, send: Send) -> None:
        body = f"Request body too large (the limit is {self.max_bytes} bytes).\n".encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            # h11 has already refused a malformed one; anything odd here is treated as huge.
            return int(value) if value.isdigit() and len(value) < 20 else 1 << 62
    return None


class ErrorShield:
    """Pure ASGI middleware, outermost: an exception escaping the app becomes one plain
    ``500 Internal Server Error`` and one log line naming the route template, the exception
    type and where it was raised.

    Must not log the exception's message, the URL's path or query (``/t/<token>``,
    ``?sig=``), headers or body: any of them may carry a secret.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except BodyTooLarge:
            return  # BodyLimit cut a response short; uvicorn closes the connection
        except Exception as exc:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            log.error("HTTP 500 for %s %s: %s raised at %s", scope.get("method", "?"), route,
                      type(exc).__name__, _where(exc))
            if not started:
                body = b"Internal Server Error\n"
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
            # Not re-raised: uvicorn would log it again, message and all.


def _where(exc: BaseException, depth: int = 3) -> str:
    """The innermost frames as ``file.py:line in function``, innermost first; no message."""
    frames = traceback.extract_tb(exc.__traceback__)[-depth:]
    return " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames)) or "?"


class PerClientLimit:
    """At most ``per_minute`` requests from one client address in any minute (a sliding
    window). In memory, per process: it slows down guessing at links from one address; it is
    no defence against many addresses (the links' signatures are)."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10_000) -> None:
        self.per_minute, self.clock, self.max_clients = per_minute, clock, max_clients
        self._seen: dict[str, collections.deque[float]] = {}

    def allow(self, client: str) -> bool:
        now = self.clock()
        if len(self._seen) >= self.max_clients:  # a flood of addresses: forget the quiet ones
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - 60}
        times = self._seen.setdefault(client, collections.deque())
        while times and times[0] <= now - 60:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        return True
