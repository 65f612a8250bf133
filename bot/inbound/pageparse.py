"""Adapter: a message a customer wrote on their ticket's page (the spooled form) → ``InboundMessage``.

The page's door (``core.customer_page.message_arrival``) has already proved the link and its
form, and wrote the ticket, the requester and the text as a small JSON document; this reads it
back. The ticket is a fact the door verified (``ticket_hint``), not a claim to check again.
Must not touch the database or decide anything about tickets.
"""

from __future__ import annotations

import json
from datetime import datetime

from bot.core.errors import Rejected
from bot.messages import InboundMessage

CHANNEL = "web"


class PageParseError(Rejected):
    """The spooled document is not a page message (only a damaged row can be)."""


def parse_page_message(data: bytes, *, source_id: str, received_at: datetime, door: str = "page") -> InboundMessage:
    try:
        doc = json.loads(data)
        ticket, body, address = int(doc["ticket"]), str(doc["body"]), str(doc["address"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PageParseError(f"not a page message: {type(exc).__name__}") from exc
    return InboundMessage(channel=CHANNEL, source_id=source_id, raw=data, received_at=received_at,
                          sender_address=address, sender_name=str(doc.get("name") or ""), body=body,
                          door=door, ticket_hint=ticket)
