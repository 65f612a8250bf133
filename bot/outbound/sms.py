"""Adapter: the ``sms`` sender — customer texts out through Twilio's REST API (the official
twilio library, async).

It turns a ``customer.message`` intent on the ``sms`` channel (from, to, and a template of
templates/sms/ with its values, rendered here) into a Messages create with a ``StatusCallback`` to our ``/twilio/status``, and returns the message SID (status
callbacks find the text by it). Twilio's answers become the outbox's: 429 and 5xx are
``DeliveryFailed`` (retried with the outbox's backoff), 4xx ``DeliveryRejected``
(never retried; error 21610, an opted-out customer, says so). The library never retries on
its own here: one attempt per outbox try, so a text goes out once.

Must not decide what to send or to whom (core did), nor touch the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import jinja2
from twilio.base import values
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.core import intents
from bot.core.deliveries import SMS_OPTED_OUT
from bot.core.errors import DeliveryFailed, DeliveryRejected
from bot.core.views import OutboxView
from bot.outbound.compose import template_environment


UNSUBSCRIBED = "21610"  # Twilio: "Attempt to send to unsubscribed recipient"


class SmsSender:
    def __init__(self, *, account_sid: str, auth_token: str, api_url: str, status_url: str,
                 timeout: float = 15.0, env: jinja2.Environment | None = None,
                 media_link: Callable[[int], str | None] | None = None) -> None:
        # A text's files go as MediaUrl: a signed link Twilio fetches, made fresh for each
        # attempt (attachments.mms_link_ttl_minutes).
        self.media_link = media_link
        self.env = env or template_environment()
        # max_retries stays unset: the library then sends each request once (a number would
        # make it retry 5xx itself, 0 without end), and the outbox does the retrying.
        self._http = AsyncTwilioHttpClient()
        self.timeout = timeout  # the library sets none of its own on requests
        self._client = Client(account_sid, auth_token, http_client=self._http)
        # Every REST domain the library reaches is built on this base: the fake API in tests,
        # a regional edge or a proxy in production.
        self._client.api.base_url = api_url.rstrip("/")
        # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite that host; api_url says
        # where to go.
        self._client.edge = self._client.region = None
        self.status_url = status_url

    async def send(self, item: OutboxView, refs: dict[str, str]) -> str | None:
        if item.kind != intents.CUSTOMER_MESSAGE:
            raise DeliveryRejected(f"the sms sender cannot deliver a {item.kind!r} intent")
        payload = item.payload
        try:
            body = self.env.get_template(f"sms/{payload['template']}.txt.j2").render(payload["values"]).strip()
        except jinja2.TemplateError as exc:
            raise DeliveryRejected(f"templates/sms/{payload['template']}.txt.j2: {exc}") from exc
        media = [self.media_link(i) if self.media_link else None for i in payload.get("media", [])]
        if None in media:
            raise DeliveryRejected("a file cannot go by MMS without attachments.link_secret (its MediaUrl)")
        try:
            async with asyncio.timeout(self.timeout):
                message = await self._client.messages.create_async(
                    to=payload["to"], from_=payload["from"], body=body,
                    status_callback=self.status_url or None, media_url=media or values.unset)
        except TwilioRestException as exc:
            code = str(exc.code or "")
            if code == UNSUBSCRIBED:
                raise DeliveryRejected(f"{SMS_OPTED_OUT} (Twilio error {code})") from exc
            if exc.status == 429 or exc.status >= 500:
                # The library does not pass Retry-After on: the outbox's backoff paces us.
                raise DeliveryFailed(f"Twilio said {exc.status} {exc.msg}".strip()) from exc
            raise DeliveryRejected(f"Twilio refused the text: {exc.status} {code} {exc.msg}".strip()) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc
        return message.sid

    async def close(self) -> None:
        await self._http.close()

