"""The HTTP endpoints of DESIGN §5: health, readiness, metrics."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import uvicorn

from bot.web import build_web_app
from tests.conftest import deliver, running
from tests.test_foundation import mail


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}") as response:
            return response.status, await response.text()


async def test_health_readiness_and_metrics(app_settings):
    async with running(app_settings()) as app:
        await deliver(app, mail())
        port = app.listening.web[1]
        assert (await get(port, "/healthz"))[0] == 200
        status, body = await get(port, "/readyz")
        assert status == 200 and '"database":"ok"' in body.replace(" ", "")
        status, metrics = await get(port, "/metrics")
    assert status == 200
    assert 'deskbell_tickets{status="new"} 1' in metrics
    assert "deskbell_quarantine_held 0" in metrics
    assert "deskbell_spool_queued 0" in metrics  # accepted mail all ingested


async def test_readyz_says_unavailable_when_the_database_is_not_reachable():
    async def unreachable() -> None:
        raise ConnectionRefusedError("database down")

    async def metrics() -> str:
        return ""

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    server = uvicorn.Server(uvicorn.Config(build_web_app(ping=unreachable, metrics=metrics),
                                           log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        port = sock.getsockname()[1]
        assert (await get(port, "/healthz"))[0] == 200  # the process is up …
        status, body = await get(port, "/readyz")  # … but not ready
        assert status == 503 and "unreachable" in body
    finally:
        server.should_exit = True
        await task


def test_the_web_socket_says_tcp_so_answers_go_out_without_nagle_delay(tmp_path):
    """asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; without it, an
    answer's body waits up to 40 ms for the client's delayed ACK of its headers."""
    import socket

    from bot.app import Deskbell
    from bot.clock import Clock
    from bot.config import Settings
    from tests.conftest import settings_dict

    app = Deskbell(Settings.model_validate(settings_dict(tmp_path)), clock=Clock())
    _, sock = app._web_server(None)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
