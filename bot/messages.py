"""The one shape every door hands to the core: ``InboundMessage``.

Parsers build it from a spooled message (email, SMS);
``core.intake.ingest`` consumes it. Plain data only: no parsing, no I/O and no ticket logic
here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message (inline images and attached messages included)."""

    name: str
    content_type: str
    data: bytes
    inline: bool = False
    withheld_size: int | None = None  # set when the bytes were not kept (over a limit): their size
    source_url: str | None = None  # the bytes are still there, to be fetched (MMS media)
    content_id: str | None = None  # how an HTML body refers to it (cid:…), without the <>

    @property
    def withheld(self) -> bool:
        return self.withheld_size is not None

    @property
    def size(self) -> int:
        return self.withheld_size if self.withheld_size is not None else len(self.data)

    @cached_property
    def sha256(self) -> str | None:  # computed once: attachments can be tens of megabytes
        if self.withheld or self.source_url is not None:
            return None
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Bounce:
    """What a delivery status notification (RFC 3464) tells about a message we sent."""

    original_message_id: str | None  # Message-ID of our mail that failed, when the DSN carries it
    recipients: tuple[str, ...] = ()
    status: str = ""  # e.g. "5.1.1"
    diagnostic: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A customer message as received by one of the doors.

    ``source_id`` is the message's idempotency key (email Message-ID or a hash of the raw
    bytes; an SMS's message id): a message that comes again with the same
    ``(channel, source_id)``, by any door, creates nothing new. (The spool keeps the door's
    own id for the delivery, e.g. the SMTP queue id, separately.)
    """

    channel: str  # "email" | "sms" | "web" (written on the ticket's page)
    source_id: str
    raw: bytes  # the exact bytes received
    received_at: datetime
    sender_address: str  # requester address (email, lower-cased) or E.164 phone number
    sender_name: str = ""
    reply_to: str | None = None  # where replies go when it differs from the sender (email Reply-To)
    envelope_sender: str | None = None  # SMTP MAIL FROM; "" is the null sender <>
    recipients: tuple[str, ...] = ()  # envelope recipients (addresses or our phone numbers)
    subject: str = ""
    body: str = ""  # the new text shown to staff
    quoted: str = ""  # quoted history and signature moved out of ``body``
    message_id: str | None = None  # header Message-ID without angle brackets
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    auto_submitted: str | None = None  # why this is automatic mail (never auto-reply to it), else None
    bounce: Bounce | None = None  # set when the message is a DSN
    loop: bool = False  # carries our own X-Deskbell-Loop header
    defects: tuple[str, ...] = field(default=())  # parser complaints worth keeping (charset, headers)
    door: str = ""  # which door took it in: "smtp", "imap:<account>", "twilio"
    # Authentication-Results headers, topmost first: ((authserv-id, ((method, result), …)), …).
    # Anyone can write one; core decides which to trust.
    auth_results: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # The ticket a door proved the sender may write to (the page's signed link); None otherwise.
    ticket_hint: int | None = None
