"""Adapter: what Twilio posted for an incoming SMS or MMS (the spooled form) → ``InboundMessage``.

The spool keeps the form exactly as it came (``application/x-www-form-urlencoded``); this
reads it: the sender's phone (``From``), our number (``To``, which routes it to a group), the
text, and MMS media as attachments whose bytes are still on Twilio (``MediaUrlN``; fetched
later). Must not touch the database, the network or decide anything about tickets.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import unquote_plus

from bot.core.customer_sms import subject_of
from bot.core.errors import Rejected
from bot.messages import Attachment, InboundMessage

MAX_MEDIA = 10  # Twilio's own limit per MMS
_PHONE = re.compile(r"^\+?[0-9A-Za-z:._-]{2,40}$")  # E.164, or a channel address (whatsapp:+1…)
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "video/mp4": "mp4",
               "audio/mpeg": "mp3", "text/vcard": "vcf", "application/pdf": "pdf"}


class SmsParseError(Rejected):
    """The form is not an incoming message (no MessageSid or no sender)."""


class Form(dict[str, str]):
    """A posted form: one value per field (Twilio never repeats a field)."""

    def getall(self, name: str) -> list[str]:
        # What the twilio validator asks a multi-dict first; a plain dict makes it raise and
        # catch two AttributeErrors per field before it reads the value.
        return [self[name]]


def form_fields(data: bytes) -> Form:
    """The posted form. ``parse_qsl`` without its per-field checks, and unquoting only what is
    quoted: every text pays for this on the path Twilio waits on."""
    fields = Form()
    for pair in data.decode("utf-8", "replace").split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        fields[name] = value
    return fields


def parse_sms(data: bytes, *, received_at: datetime, door: str = "twilio") -> InboundMessage:
    form = form_fields(data)
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
    sender = form.get("From", "").strip()
    if not sid or not _PHONE.match(sender):
        raise SmsParseError(f"not an incoming SMS: MessageSid {sid!r}, From {sender!r}")
    media = []
    count = min(_int(form.get("NumMedia")), MAX_MEDIA)
    for i in range(count):
        url = form.get(f"MediaUrl{i}", "")
        if not url:
            continue
        kind = form.get(f"MediaContentType{i}", "application/octet-stream")[:255]
        media.append(Attachment(name=f"mms-{i + 1}.{_EXTENSIONS.get(kind, 'bin')}", content_type=kind,
                                data=b"", source_url=url))
    body = form.get("Body", "")
    return InboundMessage(
        channel="sms", source_id=sid, raw=data, received_at=received_at,
        sender_address=sender, recipients=(form.get("To", "").strip(),),
        subject=subject_of(body), body=body, attachments=tuple(media), door=door)


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
