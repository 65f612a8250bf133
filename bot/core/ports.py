"""What core needs from the outside, as protocols; ``app.py`` plugs the adapters in.

Outbox rows are rendered at enqueue time, so core calls these renderers inside its
transaction. Renderers must be pure (no I/O, no clock): data in, payload out.
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.core.views import (
    CardView,
    MessageView,
    OutgoingEmail,
    QuarantineView,
    TicketView,
)


class Renderers(Protocol):
    def ticket_card(self, card: CardView) -> dict[str, Any]:
        """Slack ``text`` + ``blocks`` of a ticket's card."""

    def thread_message(self, ticket: TicketView, message: MessageView) -> dict[str, Any]:
        """Slack ``text`` + ``blocks`` of one message posted in the card's thread."""

    def notice(self, text: str) -> dict[str, Any]:
        """Slack ``text`` + ``blocks`` of a short system notice (our own text, already safe)."""

    def quarantine_notice(self, item: QuarantineView) -> dict[str, Any]:
        """Slack ``text`` + ``blocks`` announcing mail held in quarantine."""

    def customer_email(self, mail: OutgoingEmail) -> str:
        """The whole RFC 5322 message, ready for SMTP."""
