"""The error taxonomy shared by every door.

Two families, after the Zulip email gateway: ``Rejected`` is the sender's fault (SMTP 5xx,
HTTP 4xx, the message is not retried) and ``Failed`` is ours (SMTP 451, HTTP 5xx, IMAP message
left untouched: the sender or poller retries). Nothing here does I/O.
"""

from __future__ import annotations


class DeskbellError(Exception):
    """Base class of every error Deskbell raises on purpose."""


class Rejected(DeskbellError):
    """The input is wrong and retrying it will not help."""


class BadRequest(Rejected):
    """The request names something that does not exist or is out of range."""


class Failed(DeskbellError):
    """We could not do our part; the same input may succeed later."""


class MailParseError(Rejected):
    """The bytes are not a message we can read at all (they go to quarantine, not a bounce)."""


class UnknownRecipient(Rejected):
    """No handler group and no ticket answers to this address."""


class TicketNotFound(Rejected):
    """The ticket number does not exist."""


class StoreUnavailable(Failed):
    """The database refused or timed out; the caller should retry later."""


class Contended(Failed):
    """Another writer changed the same rows at the same moment; trying again will settle it."""


class DeliveryFailed(Failed):
    """A send did not go through but may later (timeouts, 5xx, 429 with ``retry_after`` seconds)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryRejected(Rejected):
    """The remote side refused for good (SMTP 5xx, invalid channel, bad token): no retry."""


class SenderUnavailable(Failed):
    """The sender for a channel is not configured (e.g. no Slack token yet): the item waits."""
