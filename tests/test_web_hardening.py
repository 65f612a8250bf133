"""The HTTP side against a hostile internet: body caps, Slack signatures checked before bolt,
header deadlines, /metrics access, readiness that sees an unwritable database, plain 500s and
the connection limit. Real uvicorn servers on loopback port 0 and real SQLite files."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.store.db import Database
from bot.web import build_web_app
from bot.webguard import header_deadline_protocol
from tests.conftest import running
from tests.slack_client import SECRET, sign

MB = 1024 * 1024
CAP = 1 * MB


# ----- harness ----------------------------------------------------------------------------

async def nothing() -> None:
    return None


async def no_metrics() -> str:
    return "deskbell_up 1\n"


class Bolt:
    """Stands in for bolt's handler: records what reached it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        return JSONResponse({"ok": True})


def web_app(**kw: Any) -> Any:
    kw.setdefault("ping", nothing)
    kw.setdefault("metrics", no_metrics)
    kw.setdefault("slack_signing_secret", SECRET)
    kw.setdefault("max_body_bytes", CAP)
    return build_web_app(**kw)


@asynccontextmanager
async def serving(app: Any, *, header_timeout: float = 0.5, keepalive: float = 0.5,
                  max_connections: int | None = None) -> AsyncIterator[int]:
    """uvicorn configured as app.py configures it, on 127.0.0.1 port 0; yields the port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = uvicorn.Server(uvicorn.Config(
        app, log_config=None, lifespan="off", access_log=False, limit_concurrency=max_connections,
        timeout_keep_alive=keepalive, http=header_deadline_protocol(header_timeout)))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert not task.done() and time.monotonic() < deadline, "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        yield reader, writer
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError):
            pass


async def exchange(port: int, raw: bytes, timeout: float = 5) -> bytes:
    """Send one raw request (which should ask for Connection: close); the whole answer."""
    async with connection(port) as (reader, writer):
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)


def http_request(method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: deskbell.test", "Connection: close",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:80]
    return int(response.split(b" ", 2)[1])


def header_of(response: bytes, name: str) -> str | None:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def body_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1]


async def eof_within(reader: asyncio.StreamReader, timeout: float) -> tuple[float, bytes]:
    """Read until the server closes; (seconds it took, what arrived). Fails after ``timeout``."""
    start, got = time.monotonic(), b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), max(0.01, start + timeout - time.monotonic())):
            got += chunk
    except ConnectionResetError:
        pass
    except asyncio.TimeoutError:
        raise AssertionError(f"the server kept the connection open for {timeout}s") from None
    return time.monotonic() - start, got


# ----- 1. request bodies and Slack signatures -----------------------------------------------

def push_body(port: int, *, chunked: bool, total: int = 50 * MB) -> tuple[int, bytes]:
    """Blocking client (run on a thread): post ``total`` unsigned bytes to /slack/events until
    the server stops it; (bytes it managed to send, the server's answer). Sends one reused
    64 kB buffer, so the client itself allocates next to nothing."""
    piece = b"x" * 65536
    chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
    head = b"POST /slack/events HTTP/1.1\r\nHost: deskbell.test\r\nContent-Type: application/json\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Content-Length: %d\r\n\r\n" % total
    sent, answer = 0, b""
    with closing(socket.create_connection(("127.0.0.1", port), timeout=20)) as s:
        s.sendall(head)
        try:
            while sent < total:
                s.sendall(chunk if chunked else piece)
                sent += len(piece)
        except OSError:  # the server answered and closed: expected
            pass
        try:
            while data := s.recv(65536):
                answer += data
        except OSError:
            pass  # the reset that followed the answer
    return sent, answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_unsigned_50_mb_body_gets_413_without_the_process_holding_it(chunked):
    bolt = Bolt()
    async with serving(web_app(slack_handler=bolt)) as port:
        tracemalloc.start()
        try:
            sent, answer = await asyncio.wait_for(asyncio.to_thread(push_body, port, chunked=chunked), 120)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert status_of(answer) == 413
    assert header_of(answer, "connection") == "close"
    assert sent < 25 * MB  # cut off, not read to the end
    assert peak < 8 * MB, f"peak Python memory {peak / MB:.1f} MB for a 50 MB body"
    assert bolt.bodies == []


async def test_declared_length_over_the_cap_is_answered_before_any_body_is_sent():
    bolt = Bolt()
    async with serving(web_app(slack_handler=bolt, max_body_bytes=4096)) as port:
        async with connection(port) as (reader, writer):
            writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4097\r\n\r\n")
            await writer.drain()
            _, answer = await eof_within(reader, 5)
        # Every route, not just Slack's: the cap comes before routing.
        other = await exchange(port, http_request("POST", "/healthz", body=b"x" * 5000))
    assert status_of(answer) == 413 and b"4096" in body_of(answer)
    assert status_of(other) == 413
    assert bolt.bodies == []


async def test_a_signed_body_of_exactly_the_cap_reaches_the_handler():
    bolt = Bolt()
    body = json.dumps({"type": "event_callback", "pad": "p" * 4000}).encode()
    cap = len(body)
    async with serving(web_app(slack_handler=bolt, max_body_bytes=cap)) as port:
        answer = await exchange(port, http_request("POST", "/slack/events", body=body, headers=sign(body)))
        too_big = body + b" "
        refused = await exchange(port, http_request("POST", "/slack/events", body=too_big, headers=sign(too_big)))
    assert status_of(answer) == 200 and bolt.bodies == [body]
    assert status_of(refused) == 413


def _signed(body: bytes, **headers: str) -> dict[str, str]:
    return {**sign(body), **headers}


BODY = b"command=%2Fticket&text=close+1&user_id=UALICE&team_id=T0EXAMPLE&trigger_id=t1"
# Made when the test runs, not at collection: the suite may take longer than the window.
UNSIGNED: dict[str, Callable[[], dict[str, str]]] = {
    "no signature": lambda: {},
    "wrong secret": lambda: sign(BODY, secret="wrong-secret"),
    "stale": lambda: sign(BODY, timestamp=int(time.time()) - 6 * 60),
    "from the future": lambda: sign(BODY, timestamp=int(time.time()) + 6 * 60),
    "timestamp missing": lambda: {"X-Slack-Signature": sign(BODY)["X-Slack-Signature"]},
    "timestamp not a number": lambda: _signed(BODY, **{"X-Slack-Request-Timestamp": "yesterday"}),
    "timestamp with an exponent": lambda: _signed(BODY, **{"X-Slack-Request-Timestamp": "1e9"}),
    "timestamp of 5000 digits": lambda: _signed(BODY, **{"X-Slack-Request-Timestamp": "9" * 5000}),
    "signature of another body": lambda: sign(BODY + b"&more=1"),
    "signature not ASCII": lambda: _signed(BODY, **{"X-Slack-Signature": "v0=\xe9t\xe9"}),
}


@pytest.mark.parametrize("how", list(UNSIGNED))
async def test_unsigned_small_request_gets_403_and_nothing_reaches_bolt(how, caplog):
    bolt, headers = Bolt(), UNSIGNED[how]()
    with caplog.at_level(logging.INFO):
        async with serving(web_app(slack_handler=bolt)) as port:
            answer = await exchange(port, http_request(
                "POST", "/slack/events", body=BODY,
                headers={"Content-Type": "application/x-www-form-urlencoded", **headers}))
    assert status_of(answer) == 403
    assert json.loads(body_of(answer)) == {"error": "invalid request"}
    assert bolt.bodies == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_body_that_is_not_utf8_is_refused_even_with_the_right_signature(caplog):
    bolt = Bolt()
    body = b"payload=\xff\xfe\x00"
    async with serving(web_app(slack_handler=bolt)) as port:
        answer = await exchange(port, http_request("POST", "/slack/events", body=body, headers=sign(body)))
    assert status_of(answer) == 403 and bolt.bodies == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_signature_window_is_measured_by_the_given_clock():
    class Late:  # the injected clock says it is ten minutes later than the signature
        def now(self):
            from datetime import datetime, timedelta, timezone
            return datetime.now(timezone.utc) + timedelta(minutes=10)

    bolt = Bolt()
    async with serving(web_app(slack_handler=bolt, clock=Late())) as port:
        answer = await exchange(port, http_request("POST", "/slack/events", body=BODY, headers=sign(BODY)))
    assert status_of(answer) == 403 and bolt.bodies == []


async def test_bolt_gets_the_very_bytes_that_were_verified():
    """A real bolt app behind the route: its own signature check and parser see our bytes."""
    async def authorize(**_: Any) -> AuthorizeResult:  # no auth.test call to a real Slack
        return AuthorizeResult(enterprise_id=None, team_id="T0EXAMPLE", bot_token="xoxb-test",
                               bot_user_id="UBOT", bot_id="B0BOT")

    bolt = AsyncApp(signing_secret=SECRET, authorize=authorize, process_before_response=True)
    seen: list[dict[str, Any]] = []

    @bolt.command("/ticket")
    async def command(ack, body):  # noqa: ANN001 (bolt injects by name)
        seen.append(body)
        await ack("ok")

    handler = AsyncSlackRequestHandler(bolt).handle
    body = urlencode({"command": "/ticket", "text": "close 1 — ünïcode", "user_id": "UALICE",
                      "team_id": "T0EXAMPLE", "trigger_id": "t1"}).encode()
    async with serving(web_app(slack_handler=handler)) as port:
        answer = await exchange(port, http_request(
            "POST", "/slack/events", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)}))
    assert status_of(answer) == 200
    assert [b["text"] for b in seen] == ["close 1 — ünïcode"]


async def test_a_slack_handler_without_a_signing_secret_is_refused_at_build_time():
    with pytest.raises(ValueError, match="signing_secret"):
        build_web_app(ping=nothing, metrics=no_metrics, slack_handler=Bolt())


# ----- 2. slowloris and idle connections ----------------------------------------------------

async def dribble(writer: asyncio.StreamWriter, data: bytes, every: float = 0.1) -> None:
    try:
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            await asyncio.sleep(every)
    except (ConnectionError, OSError):
        pass  # cut off: what we are testing for


HEAD = b"GET /healthz HTTP/1.1\r\nHost: deskbell.test\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"


async def test_a_client_dribbling_header_bytes_is_cut_off_while_others_are_served():
    async with serving(web_app(), header_timeout=0.5, keepalive=5) as port:
        async with connection(port) as (reader, writer):
            slow = asyncio.create_task(dribble(writer, HEAD))
            try:
                # A normal client on the same server meanwhile.
                normal = await exchange(port, http_request("GET", "/healthz"))
                took, got = await eof_within(reader, 3)
            finally:
                slow.cancel()
    assert status_of(normal) == 200
    assert got == b"" and 0.4 <= took <= 2.0


async def test_a_connection_that_never_sends_anything_is_closed():
    async with serving(web_app(), header_timeout=0.5, keepalive=5) as port:
        async with connection(port) as (reader, _):
            took, got = await eof_within(reader, 3)
    assert got == b"" and took <= 2.0


async def test_the_deadline_restarts_after_each_response_and_dribbling_the_next_head_is_cut_off():
    async with serving(web_app(), header_timeout=0.5, keepalive=5) as port:
        async with connection(port) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 3)
            # Keep-alive: sending bytes stops uvicorn's idle timer; the header deadline is not fooled.
            slow = asyncio.create_task(dribble(writer, HEAD))
            try:
                took, got = await eof_within(reader, 3)
            finally:
                slow.cancel()
    assert status_of(first) == 200
    assert got == b"" and took <= 2.0


async def test_keep_alive_requests_and_pipelined_requests_are_still_served():
    async with serving(web_app(), header_timeout=0.5, keepalive=5) as port:
        async with connection(port) as (reader, writer):
            for _ in range(3):  # each within the deadline, together longer than it
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                await writer.drain()
                assert status_of(await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 3)) == 200
                await asyncio.sleep(0.3)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            _, got = await eof_within(reader, 3)
    assert got.count(b"HTTP/1.1 200 ") == 2


async def test_a_slow_request_body_is_not_mistaken_for_a_slow_head():
    bolt = Bolt()
    body = b'{"type":"event_callback"}'
    async with serving(web_app(slack_handler=bolt), header_timeout=0.3, keepalive=5) as port:
        async with connection(port) as (reader, writer):
            head = http_request("POST", "/slack/events", body=b"", headers=sign(body))
            writer.write(head.replace(b"Content-Length: 0", b"Content-Length: %d" % len(body)))
            await writer.drain()
            await dribble(writer, body, every=0.03)  # ~0.75 s, past the header deadline
            _, got = await eof_within(reader, 3)
    assert status_of(got) == 200 and bolt.bodies == [body]


async def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout():
    async with serving(web_app(), header_timeout=5, keepalive=0.5) as port:
        async with connection(port) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 3)
            took, got = await eof_within(reader, 3)
    assert got == b"" and 0.3 <= took <= 2.0


# ----- 3. /metrics ------------------------------------------------------------------------------

async def test_metrics_with_a_token_needs_the_bearer_token():
    async with serving(web_app(metrics_token="m3trics-t0ken")) as port:
        async def get(**headers: str) -> bytes:
            return await exchange(port, http_request("GET", "/metrics", headers=headers))

        missing = await get()
        wrong = await get(Authorization="Bearer m3trics-t0ken-not")
        basic = await get(Authorization="Basic bTN0cmljcy10MGtlbg==")
        right = await get(Authorization="Bearer m3trics-t0ken")
        lower = await get(Authorization="bearer m3trics-t0ken")
        # The token, not the address, decides: a proxied client with the token is let in.
        proxied = await get(Authorization="Bearer m3trics-t0ken", **{"X-Forwarded-For": "203.0.113.9"})
    for refused in (missing, wrong, basic):
        assert status_of(refused) == 401
        assert header_of(refused, "www-authenticate").startswith("Bearer")
        assert b"deskbell_up" not in refused
    for allowed in (right, lower, proxied):
        assert status_of(allowed) == 200 and b"deskbell_up 1" in body_of(allowed)


@pytest.mark.parametrize("proxy_header", [{"X-Forwarded-For": "203.0.113.9"},
                                          {"Forwarded": "for=203.0.113.9"},
                                          {"X-Real-IP": "203.0.113.9"},
                                          {"X-Forwarded-For": "127.0.0.1"}],
                         ids=["x-forwarded-for", "forwarded", "x-real-ip", "forwarded-for-loopback"])
async def test_metrics_without_a_token_refuses_clients_that_came_through_a_proxy(proxy_header):
    async with serving(web_app()) as port:
        direct = await exchange(port, http_request("GET", "/metrics"))
        proxied = await exchange(port, http_request("GET", "/metrics", headers=proxy_header))
    assert status_of(direct) == 200 and b"deskbell_up 1" in body_of(direct)
    assert status_of(proxied) == 403
    assert b"web.metrics_token" in body_of(proxied) and body_of(proxied).count(b"\n") == 1


async def call_asgi(app: Any, *, client: tuple[str, int] | None, path: str = "/metrics") -> tuple[int, bytes]:
    """One request straight into the ASGI app (a peer address no socket test can fake)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"deskbell.test")], "client": client,
             "server": ("127.0.0.1", 8080)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("peer,allowed", [(("127.0.0.1", 5), True), (("127.8.9.10", 5), True),
                                          (("::1", 5), True), (("::ffff:127.0.0.1", 5), True),
                                          (("203.0.113.9", 5), False), (("10.0.0.2", 5), False),
                                          (("::ffff:10.0.0.2", 5), False), (("2001:db8::1", 5), False),
                                          (None, False), (("testclient", 5), False)])
async def test_metrics_without_a_token_answers_only_loopback_peers(peer, allowed):
    status, body = await call_asgi(web_app(), client=peer)
    assert status == (200 if allowed else 403)
    assert (b"deskbell_up" in body) is allowed


# ----- 4. readiness sees a database that cannot take writes -----------------------------------

def make_sqlite(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as con:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE kept (x)")
        con.execute("INSERT INTO kept VALUES (1)")


@asynccontextmanager
async def database(url: str, **kw: Any) -> AsyncIterator[Database]:
    db = Database(url, **kw)
    try:
        yield db
    finally:
        await db.dispose()


async def readyz(db: Database) -> tuple[int, dict[str, Any], float]:
    app = web_app(ping=db.ping)
    start = time.monotonic()
    status, body = await call_asgi(app, client=("127.0.0.1", 5), path="/readyz")
    return status, json.loads(body), time.monotonic() - start


async def test_readyz_is_ok_on_a_writable_database_and_the_probe_writes_nothing(tmp_path):
    path = tmp_path / "ok.db"
    make_sqlite(path)
    async with database(f"sqlite+aiosqlite:///{path}") as db:
        for _ in range(3):
            status, body, _ = await readyz(db)
            assert (status, body) == (200, {"status": "ok", "database": "ok"})
    with closing(sqlite3.connect(path)) as con:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["kept"]
        assert con.execute("PRAGMA user_version").fetchone() == (0,)


async def test_readyz_fails_fast_while_another_process_holds_the_write_lock(tmp_path, caplog):
    path = tmp_path / "locked.db"
    make_sqlite(path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        async with database(f"sqlite+aiosqlite:///{path}") as db:  # the default probe timeout
            holder.execute("BEGIN IMMEDIATE")  # reads still work: only writers are stuck
            with caplog.at_level(logging.WARNING):
                status, body, took = await readyz(db)
            holder.execute("ROLLBACK")
            after = await readyz(db)
    finally:
        holder.close()
    assert (status, body) == (503, {"status": "unavailable", "database": "locked"})
    assert took < 4  # not the writers' 10 s busy_timeout
    warnings = [r for r in caplog.records if r.name == "bot.web"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING and not warnings[0].exc_info
    assert "locked" in warnings[0].getMessage()
    assert after[:2] == (200, {"status": "ok", "database": "ok"})


async def test_readyz_says_read_only_when_the_database_opens_read_only(tmp_path):
    path = tmp_path / "ro.db"
    make_sqlite(path)
    async with database(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true") as db:
        status, body, _ = await readyz(db)
    assert (status, body) == (503, {"status": "unavailable", "database": "read-only"})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files anyway")
async def test_readyz_says_read_only_when_the_file_is_made_read_only(tmp_path):
    path = tmp_path / "chmod.db"
    make_sqlite(path)
    async with database(f"sqlite+aiosqlite:///{path}") as db:
        assert (await readyz(db))[0] == 200
        path.chmod(0o444)
        try:
            status, body, _ = await readyz(db)
        finally:
            path.chmod(0o644)
    assert (status, body) == (503, {"status": "unavailable", "database": "read-only"})


async def test_a_new_install_without_a_database_file_yet_still_pings(tmp_path):
    """``deskbell check`` before the first run: SQLite makes the file, as it always did."""
    path = tmp_path / "new.db"
    async with database(f"sqlite+aiosqlite:///{path}") as db:
        await db.ping()
    assert path.exists()


async def test_readyz_says_unreachable_when_the_database_file_is_gone(tmp_path):
    path = tmp_path / "gone.db"
    make_sqlite(path)
    async with database(f"sqlite+aiosqlite:///{path}") as db:
        assert (await readyz(db))[0] == 200
        for leftover in tmp_path.glob("gone.db*"):
            leftover.unlink()
        status, body, _ = await readyz(db)
        assert not path.exists()  # and no empty database made in its place
    assert (status, body) == (503, {"status": "unavailable", "database": "unreachable"})


# ----- 5. plain 500s and the connection limit -------------------------------------------------

async def test_an_exception_in_a_route_is_one_plain_500_and_one_log_line_without_its_message(caplog):
    secret = "xoxb-very-secret-token"

    async def broken_metrics() -> str:
        raise RuntimeError(f"could not reach https://user:{secret}@db.example/")

    async def broken_bolt(request: Request) -> Response:
        raise KeyError(secret)

    with caplog.at_level(logging.DEBUG):
        async with serving(web_app(metrics=broken_metrics, slack_handler=broken_bolt)) as port:
            metrics = await exchange(port, http_request("GET", "/metrics"))
            slack = await exchange(port, http_request("POST", "/slack/events", body=BODY, headers=sign(BODY)))
            after = await exchange(port, http_request("GET", "/healthz"))  # still serving
    for answer in (metrics, slack):
        assert status_of(answer) == 500
        assert body_of(answer).strip() == b"Internal Server Error"
        assert header_of(answer, "content-type").startswith("text/plain")
    assert status_of(after) == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2, [r.getMessage() for r in errors]
    assert "RuntimeError" in errors[0].getMessage() and "/metrics" in errors[0].getMessage()
    assert "KeyError" in errors[1].getMessage() and "/slack/events" in errors[1].getMessage()
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") + str(r.exc_text or "") for r in caplog.records)
    assert secret not in logged and not any(r.exc_info for r in errors)


async def test_past_max_connections_new_requests_get_503():
    async with serving(web_app(), header_timeout=5, keepalive=5, max_connections=3) as port:
        async with connection(port), connection(port):
            await asyncio.sleep(0.1)  # both accepted by the server
            crowded = await exchange(port, http_request("GET", "/healthz"))  # the third
        await asyncio.sleep(0.1)
        roomy = await exchange(port, http_request("GET", "/healthz"))
    assert status_of(crowded) == 503
    assert status_of(roomy) == 200


# ----- the whole app, wired by app.py ---------------------------------------------------------

async def test_the_running_app_applies_the_web_limits(app_settings):
    settings = app_settings(
        slack={"signing_secret": SECRET},
        web={"max_body_bytes": 4096, "max_connections": 3, "header_timeout_seconds": 0.5,
             "keepalive_timeout_seconds": 0.5, "metrics_token": "m3trics"})
    async with running(settings) as app:
        port = app.listening.web[1]
        big = await exchange(port, http_request("POST", "/slack/events", body=b"x" * 5000, headers=sign(b"x" * 5000)))
        unsigned = await exchange(port, http_request("POST", "/slack/events", body=b"{}"))
        metrics = await exchange(port, http_request("GET", "/metrics"))
        async with connection(port) as (reader, writer):
            slow = asyncio.create_task(dribble(writer, HEAD))
            try:
                took, got = await eof_within(reader, 3)
            finally:
                slow.cancel()
        async with connection(port), connection(port):
            await asyncio.sleep(0.1)
            crowded = await exchange(port, http_request("GET", "/healthz"))
    assert status_of(big) == 413
    assert status_of(unsigned) == 403
    assert status_of(metrics) == 401
    assert got == b"" and took <= 2.0
    assert status_of(crowded) == 503
