"""Signed links to a customer's ticket page: ``/t/<ticket>.<expiry>.<signature>``.

The signature is an HMAC-SHA256 over the ticket, its requester and the expiry with
``customer_page.link_secret`` (or one of ``previous_link_secrets``, so the key can be
rotated): a link opens one ticket for the person it was sent to, until it expires, and cannot
be turned into another. Compared in constant time. Pure computation: no database, no clock
(``now`` is given), no HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Settings

MAC_BYTES = 18  # 144 bits: 24 characters in the link


@dataclass(frozen=True)
class PageToken:
    ticket_id: int
    expires: int
    mac: bytes


def _mac(secret: str, ticket_id: int, requester_id: int, expires: int) -> bytes:
    message = f"page:{ticket_id}:{requester_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()[:MAC_BYTES]


def token(ticket_id: int, requester_id: int, *, secret: str, now: datetime, ttl: timedelta) -> str:
    expires = int((now + ttl).timestamp())
    mac = base64.urlsafe_b64encode(_mac(secret, ticket_id, requester_id, expires)).decode().rstrip("=")
    return f"{ticket_id}.{expires:x}.{mac}"


def parse(text: str) -> PageToken | None:
    """The parts of a link's token; None for anything that is not one."""
    parts = text.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 18 or len(parts[1]) > 12:
        return None
    try:
        expires = int(parts[1], 16)
        mac = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except ValueError:
        return None
    return PageToken(int(parts[0]), expires, mac) if len(mac) == MAC_BYTES else None


def valid(link: PageToken, requester_id: int, *, secrets: list[str], now: datetime) -> bool:
    """Signed by one of ``secrets`` for this ticket and requester, and not expired."""
    matched = False
    for secret in secrets:  # every secret is tried: the time taken says nothing about which
        if secret:
            matched |= hmac.compare_digest(_mac(secret, link.ticket_id, requester_id, link.expires), link.mac)
    return matched and link.expires >= now.timestamp()


def link_for(settings: Settings, ticket_id: int, requester_id: int, *, now: datetime) -> str | None:
    """The page's signed link for this ticket's requester; None when the page is off."""
    page = settings.customer_page
    secret = page.link_secret.get_secret_value()
    if not secret:
        return None
    signed = token(ticket_id, requester_id, secret=secret, now=now, ttl=timedelta(days=page.link_ttl_days))
    return f"{settings.web.public_url.rstrip('/')}/t/{signed}"
