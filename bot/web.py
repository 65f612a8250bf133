"""Adapter: the one ASGI app (health, readiness, metrics; Slack and Twilio mount here later).

Routes only: each handler calls one function it was given. Must not open database sessions
itself or hold global state; ``app.py`` builds it with what it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)


def build_web_app(*, ping: Callable[[], Awaitable[None]],
                  metrics: Callable[[], Awaitable[str]],
                  extra_routes: list[Route] | None = None) -> Starlette:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            await ping()
        except Exception as exc:  # readiness reports any failure, it does not crash
            log.warning("readyz: database unreachable: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def metrics_endpoint(_: Request) -> Response:
        return PlainTextResponse(await metrics(), media_type="text/plain; version=0.0.4")

    routes = [Route("/healthz", healthz), Route("/readyz", readyz),
              Route("/metrics", metrics_endpoint), *(extra_routes or [])]
    return Starlette(routes=routes)
