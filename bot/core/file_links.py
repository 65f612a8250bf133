"""Signed download links for stored attachments: ``/files/<id>?exp=<unix time>&sig=<hex>``.

The signature is an HMAC-SHA256 over the attachment id and the expiry with
``attachments.link_secret``; a link cannot be made for another file or stretched in time
without the secret, and it is checked in constant time before anything is looked up (a
guessed id learns nothing). Pure computation: no database, no clock (``now`` is given), no
HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import urlencode


class LinkSecretMissing(ValueError):
    """``attachments.link_secret`` is empty: no link can be made or trusted."""


def _signature(attachment_id: int, expires: int, secret: str) -> str:
    if not secret:
        raise LinkSecretMissing("attachments.link_secret is not set")
    message = f"file:{attachment_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def link(public_url: str, attachment_id: int, *, secret: str, now: datetime, ttl: timedelta) -> str:
    expires = int((now + ttl).timestamp())
    query = urlencode({"exp": expires, "sig": _signature(attachment_id, expires, secret)})
    return f"{public_url.rstrip('/')}/files/{attachment_id}?{query}"


def verify(attachment_id: str, expires: str, signature: str, *, secret: str, now: datetime) -> int | None:
    """The attachment id a well-signed, unexpired link names; None for anything else."""
    if not (secret and attachment_id.isdigit() and expires.isdigit() and signature.isascii()
            and len(attachment_id) < 19 and len(expires) < 19):
        return None
    number = int(attachment_id)
    expected = _signature(number, int(expires), secret)
    if not hmac.compare_digest(expected, signature.lower()) or int(expires) < now.timestamp():
        return None
    return number
