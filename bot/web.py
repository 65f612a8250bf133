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

from bot.clock import Clock

log = logging.getLogger(__name__)


def build_web_app(*, ping: Callable[[], Awaitable[None]],
                  metrics: Callable[[], Awaitable[str]],
                  slack_handler: Callable[[Request], Awaitable[Response]] | None = None,
                  slack_signing_secret: str = "", clock: Clock | None = None,
                  max_body_bytes: int = 1048576, metrics_token: str = "") -> Starlette:
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

    async def slack_events(request: Request) -> Response:
        # Slack's signature is checked by the handler (bolt) before anything is read or written.
        if slack_handler is None:
            return JSONResponse({"error": "Slack interactivity is not configured "
                                          "(slack.bot_token and slack.signing_secret)"}, status_code=503)
        return await slack_handler(request)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz),
              Route("/metrics", metrics_endpoint),
              Route("/slack/events", slack_events, methods=["POST"])]
    return Starlette(routes=routes)
