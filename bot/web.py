"""Adapter: the one ASGI app (health, readiness, metrics, Slack, Twilio's webhooks).

Routes only: each handler calls one function it was given. Must not open database sessions
itself or hold global state; ``app.py`` builds it with what it needs. Every request body is
capped (``webguard.BodyLimit``) and an escaping exception is one plain 500
(``webguard.ErrorShield``). Must not hand bolt a request whose Slack signature it has not
checked, nor show /metrics to the internet.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote

from slack_sdk import signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.clock import Clock
from bot.store.db import DatabaseUnavailable
from bot.webguard import BodyLimit, ErrorShield, PerClientLimit
from bot.webpages import WebPages

log = logging.getLogger(__name__)

READY_TIMEOUT = 5.0  # a database that has not answered by then is as good as unreachable
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def build_web_app(*, ping: Callable[[], Awaitable[None]],
                  metrics: Callable[[], Awaitable[str]],
                  slack_handler: Callable[[Request], Awaitable[Response]] | None = None,
                  slack_signing_secret: str = "", clock: Clock | None = None,
                  max_body_bytes: int = 1048576, metrics_token: str = "",
                  twilio_sms: TwilioHandler | None = None,
                  twilio_status: TwilioHandler | None = None,
                  files: FileHandler | None = None,
                  customer_page: PageHandler | None = None, page_action: PageAction | None = None,
                  page_requests_per_minute: int = 30,
                  page_logo_origin: str = "") -> ASGIApp:
    if slack_handler is not None and not slack_signing_secret:
        raise ValueError("POST /slack/events needs slack.signing_secret to verify Slack's requests")
    slack_verifier = SlackVerifier(slack_signing_secret, clock or Clock()) if slack_signing_secret else None

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            await asyncio.wait_for(ping(), READY_TIMEOUT)
        except Exception as exc:  # readiness reports any failure, it does not crash
            if isinstance(exc, DatabaseUnavailable):  # our own words, no secrets in them
                state, why = exc.state, str(exc)
            else:  # a driver's message may quote the URL: the type says enough
                state, why = "unreachable", type(exc).__name__
            log.warning("readyz: database %s: %s", state, why)
            return JSONResponse({"status": "unavailable", "database": state}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def metrics_endpoint(request: Request) -> Response:
        refusal = metrics_refusal(request, metrics_token)
        if refusal is not None:
            return refusal
        return PlainTextResponse(await metrics(), media_type="text/plain; version=0.0.4")

    async def slack_events(request: Request) -> Response:
        if slack_handler is None or slack_verifier is None:
            return JSONResponse({"error": "Slack interactivity is not configured "
                                          "(slack.bot_token and slack.signing_secret)"}, status_code=503)
        body = await request.body()  # at most max_body_bytes: BodyLimit sees to it
        if not slack_verifier.valid(body, request.headers):
            # Before bolt parses a byte or anything is written (DESIGN §2.9: 403).
            log.info("slack: refused a request without a valid, fresh signature")
            return JSONResponse({"error": "invalid request"}, status_code=403)
        # Starlette keeps the body on the request: bolt's adapter reads these same bytes.
        return await slack_handler(request)

    async def file_download(request: Request) -> Response:
        if files is None:
            return PlainTextResponse("Not Found", status_code=404)
        query = request.query_params
        result = await files(request.path_params["id"], query.get("exp", ""), query.get("sig", ""))
        if isinstance(result, int):
            return PlainTextResponse("Forbidden" if result == 403 else "Not Found", status_code=result,
                                     headers=DOWNLOAD_HEADERS)
        # Always a download, never a page of ours: a customer's HTML or SVG must not run on
        # this origin, and a browser must not guess a more dangerous type (nosniff).
        return Response(result.data, media_type=result.content_type, headers={
            **DOWNLOAD_HEADERS, "Content-Disposition": content_disposition(result.name)})

    page_limit = PerClientLimit(page_requests_per_minute)
    page_headers = {**PAGE_HEADERS, "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'"
        + (f" {page_logo_origin}" if page_logo_origin else "")
        + "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")}

    async def ticket_page(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        if not page_limit.allow(client):
            return PlainTextResponse("Too many requests; try again in a minute.", status_code=429,
                                     headers={**page_headers, "Retry-After": "60"})
        said = request.query_params.get("done", "")[:20]
        rate = request.query_params.get("rate", "")[:1]  # a rating link of the close mail
        html = await customer_page(request.path_params["token"], said,
                                   int(rate) if rate.isdigit() else None) if customer_page else None
        if html is None:  # one answer for every link that does not open a ticket: no oracle
            return HTMLResponse(pages.render("not_found"), status_code=404, headers=page_headers)
        return HTMLResponse(html, headers=page_headers)

    async def ticket_page_action(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        if not page_limit.allow(client):
            return PlainTextResponse("Too many requests; try again in a minute.", status_code=429,
                                     headers={**page_headers, "Retry-After": "60"})
        # A plain urlencoded form of a few fields (read here: no multipart parser needed).
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace"),
                                             max_num_fields=20).items()}
        token = request.path_params["token"]
        result = await page_action(token, form) if page_action else 404
        if isinstance(result, int):
            page = pages.render("not_found") if result == 404 else "Forbidden"
            return HTMLResponse(page, status_code=result, headers=page_headers)
        # Post/redirect/get: a reload shows the page, it does not post again.
        return RedirectResponse(f"/t/{token}?done={quote(result)}", status_code=303, headers=page_headers)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz),
              Route("/t/{token}", ticket_page, methods=["GET"]),
              Route("/t/{token}", ticket_page_action, methods=["POST"]),
              Route("/metrics", metrics_endpoint),
              Route("/slack/events", slack_events, methods=["POST"]),
              Route("/files/{id}", file_download, methods=["GET"])]
    starlette = Starlette(routes=routes)
    # Twilio's webhooks bypass Starlette's middleware and routing: a text's answer is what
    # Twilio waits for, and most of the work per text would otherwise be that stack.
    direct = {"/twilio/sms": _twilio_endpoint(twilio_sms), "/twilio/status": _twilio_endpoint(twilio_status)}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in direct:
            await direct[scope["path"]](scope, receive, send)
            return
        await starlette(scope, receive, send)

    return ErrorShield(BodyLimit(app, max_body_bytes))


TwilioHandler = Callable[[bytes, "str | None", "str | None"], Awaitable[tuple[int, str, str]]]
# (token, what the last action said, the score a rating link chose) → the page's HTML, or None (one generic 404 for every
# link that opens nothing).
PageHandler = Callable[[str, str, "int | None"], Awaitable["str | None"]]
# (token, the posted form) → what to tell the customer, or the status to answer (403, 404).
PageAction = Callable[[str, dict[str, str]], Awaitable["str | int"]]
PAGE_HEADERS = {"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff"}
pages = WebPages()
# (attachment id, exp, sig) → the file, or the status to answer (403, 404).
FileHandler = Callable[[str, str, str], Awaitable[Any]]
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
                    "Content-Security-Policy": "default-src 'none'; sandbox", "Referrer-Policy": "no-referrer",
                    "X-Frame-Options": "DENY"}


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one per RFC 6266 / RFC 5987."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _twilio_endpoint(handler: TwilioHandler | None) -> ASGIApp:
    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            status, kind, text = 405, "text/plain", "Method Not Allowed"
        elif handler is None:  # without the auth token no signature can be checked
            status, kind, text = 503, "application/json", '{"error": "SMS is not configured (twilio.auth_token)"}'
        else:
            body, more = b"", True
            while more:  # at most max_body_bytes: BodyLimit sees to it
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
            signature = next((v.decode("latin-1") for k, v in scope["headers"]
                              if k == b"x-twilio-signature"), None)
            client = scope.get("client")
            status, kind, text = await handler(body, signature, client[0] if client else None)
        payload = text.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
    return endpoint




class SlackVerifier:
    """Slack's ``X-Slack-Signature`` over the raw body, within 5 minutes of ``clock``.

    Must not raise on anything a client sends (a missing, non-numeric or absurd timestamp, a
    body that is not UTF-8): those are simply invalid.
    """

    def __init__(self, secret: str, clock: Clock) -> None:
        wall = signature.Clock()
        wall.now = lambda: clock.now().timestamp()  # type: ignore[method-assign]
        self._verifier = signature.SignatureVerifier(secret, clock=wall)

    def valid(self, body: bytes, headers: Mapping[str, str]) -> bool:
        timestamp = headers.get("x-slack-request-timestamp", "")
        sig = headers.get("x-slack-signature", "")
        # Plain digits only: int() would also take " 1_7e9" forms, or choke on 5,000 digits.
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return False
        if not (sig and sig.isascii()):  # compare_digest raises on non-ASCII text
            return False
        try:
            return self._verifier.is_valid(body=body, timestamp=timestamp, signature=sig)
        except (ValueError, TypeError, UnicodeDecodeError):  # not UTF-8: Slack never sends that
            return False


def metrics_refusal(request: Request, token: str) -> Response | None:
    """None when this client may read /metrics, else the response that says why not."""
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Digests first: compare_digest is constant-time only for equal lengths.
        if scheme.lower() == "bearer" and hmac.compare_digest(
                hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(token.encode()).digest()):
            return None
        return PlainTextResponse("A valid Authorization: Bearer token is required.\n", status_code=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    # A reverse proxy on this host hands public clients over from loopback: its headers say so.
    if _is_loopback(request.client.host if request.client else "") and not any(
            name in request.headers for name in PROXY_HEADERS):
        return None
    return PlainTextResponse("GET /metrics answers only direct loopback clients; set web.metrics_token "
                             "to read it from elsewhere (Authorization: Bearer <token>).\n", status_code=403)


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
