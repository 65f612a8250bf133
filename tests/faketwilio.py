"""A loopback stand-in for Twilio's Messages API, and the forms Twilio posts to our webhooks.

``FakeTwilio`` is an aiohttp server on 127.0.0.1 port 0 speaking the part of Twilio's REST API
2010-04-01 that SMS needs: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form
encoded, HTTP Basic auth) and MMS media URLs. It refuses what Twilio would refuse (wrong
credentials, a sender that is not one of our numbers, a recipient who texted STOP, an empty or
too long body), answering with Twilio's JSON error shape, so the official ``twilio`` library
raises its own ``TwilioRestException`` with Twilio's ``code``. Tests assert on what it recorded
(``messages``, ``requests``, ``media``) and script failures (``fail_next``, ``down``, ``delay``).

Pointing the official library at it (twilio 9.13, read from its source): every REST call is built
as ``Domain.base_url + "/" + version + "/" + uri`` and ``Domain.absolute_url`` reads
``base_url`` at each request, so::

    client = Client(account_sid, auth_token, http_client=AsyncTwilioHttpClient())
    client.api.base_url = fake.url    # config twilio.api_url; "https://api.twilio.com" by default
    await client.messages.create_async(to=..., from_=..., body=...)
    await client.http_client.close()  # closes its aiohttp ClientSession

posts to ``{fake.url}/2010-04-01/Accounts/{account_sid}/Messages.json``. ``client.api`` is
created once and cached, so the override holds for ``client.messages`` and
``client.api.account.messages`` alike; it affects only the ``api`` domain (not lookups,
messaging, ...). One trap: with ``TWILIO_EDGE`` / ``TWILIO_REGION`` in the environment (or
``edge=`` / ``region=`` given) ``Client.get_hostname`` rewrites the URL's host into
``product.edge.region.twilio.com`` pieces and mangles ``127.0.0.1:PORT``; ``environment={}`` does
not prevent it (an empty mapping falls back to ``os.environ``), setting ``client.edge =
client.region = None`` does.

What the library does by itself (tests/test_faketwilio.py pins it): ``AsyncTwilioHttpClient()``
never retries. ``max_retries=N`` wraps its session in aiohttp_retry with N *attempts* in all,
retrying any method, POST included, on every 5xx (never on 429): ``max_retries=1`` is one try,
and ``max_retries=0`` retries 5xx without limit. Its ``timeout=`` is stored but never used (each
request hands aiohttp ``timeout=None``, no limit at all): bound a call with ``asyncio.timeout``.
``TwilioRestException`` carries no headers; ``Retry-After`` is only on
``http_client._test_only_last_response.headers``.

The other direction (Twilio calling our webhooks) needs no server: ``inbound_sms_params`` and
``status_params`` build the exact form fields Twilio posts, and ``twilio_signature`` the
``X-Twilio-Signature`` header for them, computed by the official ``RequestValidator``.

What it must not do: reach the real Twilio or any other host (it fetches a ``MediaUrl`` only on
loopback, as Twilio fetches ours, and never calls a ``StatusCallback``: a test posts
``status_params`` itself), or be lenient where Twilio is strict. It is not a model of delivery: every accepted message stays ``queued``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
MAX_BODY = 1600  # characters: Twilio's limit for one (concatenated) message
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_DOCS = "https://www.twilio.com/docs/errors/{code}"
# Twilio's code for a refusal that is only an HTTP status (its errors 20xxx).
_STATUS_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
_RECORD: web.RequestKey["TwilioRequest"] = web.RequestKey("record", "TwilioRequest")
_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
            "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM7_EXTENDED = set("\f^{}\\[~]|€")  # two septets each (escape + char)


def new_sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 lowercase hex digits (``SM…``, ``MM…``, ``ME…``, ``AC…``)."""
    return prefix + secrets.token_hex(16)


def num_segments(body: str) -> int:
    """How many SMS segments Twilio bills ``body`` as: GSM-7 (160, or 153 a part) when every
    character is in the GSM alphabet, else UCS-2 (70, or 67 a part, counted in UTF-16 units)."""
    if not body:
        return 1
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in body):
        septets = sum(2 if c in _GSM7_EXTENDED else 1 for c in body)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio sends with a POST of ``params`` to ``url`` (HMAC-SHA1
    of the URL and the sorted fields, keyed by the auth token), by the official validator."""
    return RequestValidator(auth_token).compute_signature(url, params)


def _country(number: str) -> str:
    """The ISO country Twilio names for a number: enough of the plan for tests (``""`` = unknown)."""
    for prefix, country in (("+1", "US"), ("+44", "GB"), ("+33", "FR"), ("+49", "DE"), ("+61", "AU")):
        if number.startswith(prefix):
            return country
    return ""


def inbound_sms_params(*, account_sid: str, from_: str, to: str, body: str, sid: str | None = None,
                       media: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The form Twilio posts to a number's messaging webhook for an incoming SMS (or, with
    ``media`` as ``(url, content_type)`` pairs, an MMS): every field it sends, as strings.

    A new ``sid`` is ``SM…`` for an SMS and ``MM…`` for an MMS, as Twilio's. ``MessagingServiceSid``
    is absent (the number is not in a Messaging Service); the city/state/zip fields are present
    and empty, as Twilio leaves them for numbers it cannot place.
    """
    sid = sid or new_sid("MM" if media else "SM")
    params = {
        "ToCountry": _country(to), "ToState": "", "ToCity": "", "ToZip": "",
        "FromCountry": _country(from_), "FromState": "", "FromCity": "", "FromZip": "",
        "SmsMessageSid": sid, "SmsSid": sid, "MessageSid": sid, "SmsStatus": "received",
        "AccountSid": account_sid, "From": from_, "To": to, "Body": body,
        "NumMedia": str(len(media)), "NumSegments": str(num_segments(body)), "ApiVersion": API_VERSION,
    }
    for i, (url, content_type) in enumerate(media):
        params[f"MediaContentType{i}"] = content_type
        params[f"MediaUrl{i}"] = url
    return params


def status_params(*, account_sid: str, sid: str, status: str, to: str, from_: str,
                  error_code: int | str | None = None) -> dict[str, str]:
    """The form Twilio posts to a message's ``StatusCallback`` when its status changes
    (``sent``, ``delivered``, ``undelivered``, ``failed`` …); ``ErrorCode`` only when given."""
    params = {"SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "MessageSid": sid,
              "AccountSid": account_sid, "To": to, "From": from_, "ApiVersion": API_VERSION}
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params


@dataclass
class TwilioRequest:
    """One HTTP request the fake was sent, refused or not, and what it answered."""

    method: str
    path: str
    form: MultiDict[str]  # the posted fields (``form.getall("MediaUrl")`` for repeated ones)
    auth: tuple[str, str] | None  # HTTP Basic (user, password) as sent; None without
    headers: dict[str, str]
    status: int = 0  # the HTTP status the fake answered
    result: dict[str, Any] = field(default_factory=dict)  # the JSON body answered, if JSON
    at: float = field(default_factory=time.monotonic)

    @property
    def code(self) -> int | None:
        """Twilio's error code in the answer (21610, 20429 …); None when it was accepted."""
        return self.result.get("code") if self.status >= 400 else None


@dataclass
class SentMessage:
    """A message the fake accepted (answered 201): what our side asked Twilio to send."""

    to: str
    from_: str
    body: str
    status_callback: str | None
    media_urls: list[str]
    sid: str
    at: float = field(default_factory=time.monotonic)
    result: dict[str, Any] = field(default_factory=dict)  # the Message resource answered
    # What fetching each MediaUrl gave (loopback only): (HTTP status, content type, bytes).
    fetched: list[tuple[int, str, bytes]] = field(default_factory=list)


@dataclass
class Media:
    """MMS media held by the fake, fetched at ``url`` with the account's credentials."""

    sid: str  # ME…
    message_sid: str  # MM…
    content: bytes
    content_type: str
    url: str
    fetches: int = 0  # times its bytes were served


@dataclass
class FakeTwilio:
    """Twilio's Messages API for one account, strict the way Twilio is.

    ``numbers`` are the account's SMS-capable numbers (the only valid ``From``); ``unsubscribed``
    the recipients who texted STOP to us (Twilio refuses them with 21610 until they text START).
    """

    account_sid: str = "AC" + "0123456789abcdef" * 2
    auth_token: str = "test-auth-token"
    numbers: set[str] = field(default_factory=lambda: {"+15550000000"})
    unsubscribed: set[str] = field(default_factory=set)
    messages: list[SentMessage] = field(default_factory=list)
    requests: list[TwilioRequest] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)  # ME sid → media
    down: bool = False  # answer 503 to everything (Twilio unreachable behind its edge)
    delay: float = 0.0  # seconds Messages.json takes before it answers (a slow Twilio)
    # Like Twilio with "Enforce HTTP Auth on Media URLs": an authenticated media GET is redirected
    # (307) to a short-lived URL that serves the bytes without auth. False serves them directly.
    media_redirect: bool = True
    url: str = ""
    _failures: list[tuple[int, int | None]] = field(default_factory=list)
    _cdn: dict[str, str] = field(default_factory=dict)  # short-lived URL token → ME sid (until stop())
    _runner: web.AppRunner | None = None
    _tokens: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        if not re.fullmatch(r"AC[0-9a-f]{32}", self.account_sid):
            raise ValueError(f"an account SID is AC and 32 hex digits, not {self.account_sid!r}")

    @property
    def messages_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

    def fail_next(self, n: int = 1, *, status: int = 429, retry_after: int | None = None) -> None:
        """The next ``n`` Messages.json requests fail with ``status`` and Twilio's error body
        (429: code 20429 "Too Many Requests"), with a ``Retry-After`` header when given."""
        self._failures.extend([(status, retry_after)] * n)

    def add_media(self, content: bytes, content_type: str) -> str:
        """Keep ``content`` as the media of a new incoming MMS; its absolute URL, as Twilio puts
        in ``MediaUrl0``: ``{url}/2010-04-01/Accounts/{sid}/Messages/MM…/Media/ME…``."""
        if not self.url:
            raise RuntimeError("start() the fake first: media URLs name its port")
        sid, message_sid = new_sid("ME"), new_sid("MM")
        url = f"{self.url}/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{sid}"
        self.media[sid] = Media(sid, message_sid, content, content_type, url)
        return url

    def media_at(self, url: str) -> Media:
        return next(m for m in self.media.values() if m.url == url)

    def refused(self) -> list[TwilioRequest]:
        return [r for r in self.requests if r.status >= 400]

    async def start(self) -> "FakeTwilio":
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{message_sid}/Media/{media_sid}",
                           self._get_media)
        app.router.add_get("/mms-cdn/{token}", self._get_cdn)
        app.router.add_get("/2010-04-01/Accounts/{sid}.json", self._get_account)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- answers -------------------------------------------------------------------------------

    async def _get_account(self, request: web.Request) -> web.StreamResponse:
        """The Account resource: what ``deskbell check`` reads to see the credentials work."""
        if not self._authorized(request):
            return self._unauthorized()
        if request.match_info["sid"] != self.account_sid:
            return self._error(404)
        return web.json_response({"sid": self.account_sid, "friendly_name": "Example Support",
                                  "status": "active", "type": "Full"})

    @staticmethod
    def _error(status: int, code: int | None = None, message: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
        """Twilio's JSON error: ``{"code", "message", "more_info", "status"}``."""
        code = code or _STATUS_CODES.get(status, 20000 + status)
        body = {"code": code, "message": message or HTTPStatus(status).phrase,
                "more_info": _DOCS.format(code=code), "status": status}
        return web.json_response(body, status=status, headers=headers)

    def _unauthorized(self) -> web.Response:
        return self._error(401, 20003, "Authenticate", headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def _authorized(self, request: web.Request) -> bool:
        return _basic_auth(request.headers.get("Authorization", "")) == (self.account_sid, self.auth_token)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        credentials = _basic_auth(request.headers.get("Authorization", ""))
        form: MultiDict[str] = MultiDict()
        if request.method == "POST":
            form = MultiDict((k, v) for k, v in (await request.post()).items() if isinstance(v, str))
        record = TwilioRequest(request.method, request.path, form, credentials, dict(request.headers))
        self.requests.append(record)
        request[_RECORD] = record
        if self.down:
            response: web.StreamResponse = self._error(503)
        else:
            try:
                response = await handler(request)
            except web.HTTPNotFound:
                response = self._error(404, message=f"The requested resource {request.path} was not found")
            except web.HTTPMethodNotAllowed:
                response = self._error(405)
        record.status = response.status
        if isinstance(response, web.Response) and response.content_type == "application/json":
            record.result = json.loads(response.text or "{}")
        return response

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        form = request[_RECORD].form
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return self._error(status, headers=headers)
        if not self._authorized(request):
            return self._unauthorized()
        if request.match_info["sid"] != self.account_sid:
            return self._error(404, message=f"The requested resource {request.path} was not found")
        if self.delay:
            await asyncio.sleep(self.delay)  # the message is accepted even if the caller gave up
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        media_urls = form.getall("MediaUrl", [])
        callback = form.get("StatusCallback")
        if not to:
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_:
            return self._error(400, 21603, "A 'From' phone number is required.")
        if from_ not in self.numbers:
            return self._error(400, 21606, f"The From phone number {from_} is not a valid, SMS-capable "
                                           "inbound phone number or short code for your account.")
        if not body and not media_urls:
            return self._error(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            return self._error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if callback is not None and not _http_url(callback):
            return self._error(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        if any(not _http_url(u) for u in media_urls):
            return self._error(400, 21620, "Invalid media URL(s).")
        if to in self.unsubscribed:
            return self._error(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = new_sid("MM" if media_urls else "SM")
        result = self._message_resource(sid, to=to, from_=from_, body=body, media=len(media_urls))
        sent = SentMessage(to=to, from_=from_, body=body, status_callback=callback,
                           media_urls=media_urls, sid=sid, result=result)
        for url in media_urls:  # Twilio fetches each file to send it; this fake, only ours on loopback
            if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
                sent.fetched.append(await _fetch_loopback(url))
        self.messages.append(sent)
        return web.json_response(result, status=201)

    def _message_resource(self, sid: str, *, to: str, from_: str, body: str, media: int) -> dict[str, Any]:
        """A Message resource as Twilio answers a create: every field ``MessageInstance`` reads."""
        now = format_datetime(datetime.now(timezone.utc))  # RFC 2822, "+0000"
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid, "api_version": API_VERSION, "body": body,
            "date_created": now, "date_updated": now, "date_sent": None,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": from_, "to": to, "messaging_service_sid": None,
            "num_media": str(media), "num_segments": str(num_segments(body)),
            "price": None, "price_unit": "USD", "sid": sid, "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "uri": f"{uri}.json",
        }

    async def _get_media(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized()
        media = self.media.get(request.match_info["media_sid"])
        if (media is None or request.match_info["sid"] != self.account_sid
                or request.match_info["message_sid"] != media.message_sid):
            return self._error(404, message=f"The requested resource {request.path} was not found")
        if self.media_redirect:
            token = f"{next(self._tokens)}-{secrets.token_hex(8)}"
            self._cdn[token] = media.sid
            return web.Response(status=307, headers={"Location": f"{self.url}/mms-cdn/{token}"})
        return self._serve(media)

    async def _get_cdn(self, request: web.Request) -> web.StreamResponse:
        media = self.media.get(self._cdn.get(request.match_info["token"], ""))
        if media is None:
            return web.Response(status=403, text="Request has expired")
        return self._serve(media)

    @staticmethod
    def _serve(media: Media) -> web.Response:
        media.fetches += 1
        return web.Response(body=media.content, headers={"Content-Type": media.content_type})


def _basic_auth(header: str) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic …`` header; None without a readable one."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon else None


def _http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def _fetch_loopback(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, allow_redirects=False) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), await answer.read()
