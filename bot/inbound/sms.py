"""Adapter: the SMS door — Twilio's webhooks → the spool (incoming texts) and core (delivery
statuses of ours).

``POST /twilio/sms`` is a spool writer and no more: the ``X-Twilio-Signature`` is checked with
the twilio library's validator over ``twilio.webhook_url`` and the posted form (a missing or bad
signature, or another account's post: 403, nothing written); the form is committed to the spool
under its ``MessageSid`` (a replay is a no-op), and only then does Twilio hear ``200`` with an
empty TwiML ``<Response/>`` (we answer through the outbox, never inline). Twilio does not retry
a failed webhook, so our own failure is a 500 it logs in its console.

``POST /twilio/status`` (the StatusCallback of the texts we send) is signed the same way, over
its own URL; the status goes to core, which only moves it forward.

Must not parse the message beyond its id and phones, decide anything about tickets, or do
anything slow before answering.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from twilio.request_validator import RequestValidator

from bot.clock import Clock
from bot.core import deliveries
from bot.core.spool import Arrival
from bot.inbound.smsparse import form_fields
from bot.store.db import Database

log = logging.getLogger(__name__)

# Twilio's message statuses → the stages core knows (queued → sent → delivered | undelivered |
# failed); "sending" is still on Twilio's side, "canceled" a scheduled text never sent.
STAGES = {"accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued",
          "sent": "sent", "delivered": "delivered", "undelivered": "undelivered", "failed": "failed",
          "canceled": "failed"}
UNSUBSCRIBED = "21610"  # Twilio: "Attempt to send to unsubscribed recipient"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SpoolFn = Callable[[Arrival], Awaitable[None]]
Answer = tuple[int, str, str]  # HTTP status, content type, body
XML, TEXT = "text/xml", "text/plain; charset=utf-8"


class TwilioWebhooks:
    def __init__(self, *, auth_token: str, account_sid: str, sms_url: str, status_url: str,
                 spool: SpoolFn, db: Database, clock: Clock) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        self.account_sid = account_sid
        self.sms_url, self.status_url = sms_url, status_url
        self._spool, self.db, self.clock = spool, db, clock

    def _signed_form(self, url: str, body: bytes, signature: str | None) -> dict[str, str] | None:
        """The form when Twilio signed it for ``url`` (and our account sent it), else None."""
        if self._validator is None or not signature:
            return None
        form = form_fields(body)
        # The configured URL first (one HMAC); the library's validate() also tries it with and
        # without the port, which only a forgery or an odd proxy ever needs.
        expected = self._validator.compute_signature(url, form)
        if not hmac.compare_digest(expected, signature) and not self._validator.validate(url, form, signature):
            return None
        if self.account_sid and form.get("AccountSid") != self.account_sid:
            return None
        return form

    async def sms(self, body: bytes, signature: str | None, peer: str | None) -> Answer:
        """An incoming text, as Twilio posted it (the raw form and its signature header)."""
        form = self._signed_form(self.sms_url, body, signature)
        if form is None:
            log.warning("twilio sms webhook refused: bad or missing signature (is twilio.webhook_url "
                        "exactly the URL Twilio posts to?) peer=%s", peer)
            return 403, TEXT, "invalid signature"
        sid = form.get("MessageSid") or form.get("SmsMessageSid")
        sender = form.get("From", "")
        if not sid or not sender:
            return 400, TEXT, "not an incoming message: MessageSid and From are required"
        arrival = Arrival(channel="sms", door="twilio", source_id=sid, data=body,
                          received_at=self.clock.now(), envelope_from=sender,
                          envelope_to=(form.get("To", ""),), sender_key=sender)
        try:
            await self._spool(arrival)
        except Exception:  # process boundary: Twilio shows the 500 in its console
            log.exception("twilio sms spool write failed sid=%s", sid)
            return 500, TEXT, "temporary failure storing the message"
        return 200, XML, EMPTY_TWIML

    async def status(self, body: bytes, signature: str | None, peer: str | None) -> Answer:
        """A delivery report for one of our texts (its StatusCallback)."""
        form = self._signed_form(self.status_url, body, signature)
        if form is None:
            log.warning("twilio status callback refused: bad or missing signature peer=%s", peer)
            return 403, TEXT, "invalid signature"
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if not sid or not status:
            return 400, TEXT, "MessageSid and MessageStatus are required"
        stage = STAGES.get(status)
        if stage is not None:  # "receiving", "read"…: nothing a sender's report needs
            error = form.get("ErrorCode") or None
            await deliveries.sms_status(self.db, remote_id=sid, status=stage, now=self.clock.now(),
                                        reason=f"Twilio error {error}" if error else None,
                                        opted_out=error == UNSUBSCRIBED)
        return 204, TEXT, ""
