"""Adapter helper: raw RFC 5322 bytes → InboundMessage. No ticket logic, no I/O.

``parse_email`` is shared by the SMTP and IMAP doors. It must not touch the database, the
network or the clock, must not decide threading or routing (the core's threading does), and
must not give up on a message because part of it is broken: real mail has wrong charsets, raw
8-bit headers, missing boundaries and bad base64, and all of it still reaches a ticket with the
complaints recorded in ``defects``. Only bytes that are not an email at all raise
``MailParseError`` (the caller quarantines them, DESIGN §2.4); no other exception leaves here.
Nor may one message stall the door: input shaped to make the stdlib parser, tnefparse,
the HTML converter or the reply parser slow or huge is cut down first, and each cut is a defect.

These rules bind every module of the package. This one only runs the steps in order:
``parsing`` (bytes → ``Message``, defused), ``headers`` (addresses, ids, subject),
``authresults`` (what upstream MTAs said of the sender), ``render``
(the readable text; ``htmltext`` renders HTML, ``attachments`` with ``names`` and ``tnef``
collects the files), ``replies`` (new text vs. quoted history) and ``automatic`` (auto-replies,
bounces). ``parts`` and ``text`` are the helpers they share.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from bot.core.errors import MailParseError
from bot.inbound.mailparse import (
    authresults,
    automatic,
    headers,
    parsing,
    parts,
    render,
    replies,
    text,
)
from bot.inbound.mailparse.headers import MAX_ADDRESS_HEADER
from bot.inbound.mailparse.htmltext import MAX_HTML_CHARS
from bot.inbound.mailparse.names import MAX_NAME_BYTES
from bot.inbound.mailparse.parsing import (
    MAX_DELIMITER_LINES,
    MAX_FIELD_PARAMS,
    MAX_MESSAGE_PARAMS,
    MAX_MIME_FIELD,
)
from bot.inbound.mailparse.parts import MAX_DEFECTS, MAX_DEPTH, MAX_PARTS
from bot.inbound.mailparse.replies import MAX_REPLY_PARSE, REPLY_LANGUAGES
from bot.messages import InboundMessage

__all__ = [
    "parse_email",
    # The limits, importable from here as before; each module above owns its own.
    "MAX_ADDRESS_HEADER",
    "MAX_DEFECTS",
    "MAX_DELIMITER_LINES",
    "MAX_DEPTH",
    "MAX_FIELD_PARAMS",
    "MAX_HTML_CHARS",
    "MAX_MESSAGE_PARAMS",
    "MAX_MIME_FIELD",
    "MAX_NAME_BYTES",
    "MAX_PARTS",
    "MAX_REPLY_PARSE",
    "REPLY_LANGUAGES",
]


def parse_email(
    raw: bytes,
    *,
    received_at: datetime,
    envelope_sender: str | None = None,
    recipients: tuple[str, ...] | None = (),
    door: str = "smtp",
    our_message_id_domain: str | None = None,
) -> InboundMessage:
    """Turn the bytes of one received mail into an ``InboundMessage`` (channel ``email``).

    ``recipients`` are the envelope's; None when the door had no envelope (a message read from
    a mailbox): then Delivered-To, X-Original-To, To and Cc say where it went.

    ``our_message_id_domain`` (the right-hand side of the Message-IDs we generate) lets a bounce
    that quotes several ids name ours. Raises ``MailParseError`` only, and only when ``raw`` is
    not an email (empty, no header section) or an unexpected bug occurs; never anything else.
    """
    try:
        return _parse(
            raw,
            received_at=received_at,
            envelope_sender=envelope_sender,
            recipients=None if recipients is None else tuple(recipients),
            door=door,
            our_domain=(our_message_id_domain or "").strip().lower() or None,
        )
    except MailParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - one message's boundary: quarantine it, keep serving
        reason = f"{type(exc).__name__}: {exc}"[:300]
        raise MailParseError(f"unexpected error while parsing mail: {reason}") from exc


def _parse(
    raw: bytes,
    *,
    received_at: datetime,
    envelope_sender: str | None,
    recipients: tuple[str, ...] | None,
    door: str,
    our_domain: str | None,
) -> InboundMessage:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise MailParseError(f"raw mail must be bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    if not raw.strip():
        raise MailParseError("empty input: not an email")

    walk = parts._Walk()
    msg = parsing._parse_bytes(raw, walk)
    # The parts' declared charsets first: undeclared 8-bit header bytes are tried in them.
    parts._note_charsets(msg, walk)

    if recipients is None:  # no envelope: the delivering MTA's headers stand in for it
        recipients = headers._header_recipients(msg)
        if envelope_sender is None:
            envelope_sender = headers._return_path(msg)
    reply_name_addr = headers._first_address(msg, "Reply-To", walk)
    from_name, from_addr = headers._requester(
        msg, walk, reply_to=reply_name_addr, envelope_sender=envelope_sender
    )
    reply_addr = reply_name_addr[1]
    reply_to = reply_addr if reply_addr and reply_addr != from_addr else None

    message_id = headers._message_id(msg, walk)
    source_id = message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    in_reply_to = headers._ids(headers._values(msg, "In-Reply-To"))
    references = headers._ids(headers._values(msg, "References"))
    subject = text._collapse(headers._decoded_header(msg, "Subject", walk))

    full_text = "" if walk.headers_only else text._clean(render._render_body(msg, walk))
    body, quoted = replies._split_reply(full_text)

    bounce, dsn_reason = automatic._find_bounce(
        msg, walk, full_text, in_reply_to, references, from_addr, our_domain,
        envelope_sender=envelope_sender,
    )
    auto = dsn_reason or automatic._auto_submitted(msg, walk, envelope_sender, from_addr)

    parts._note_mime_defects(msg, walk)
    return InboundMessage(
        channel="email",
        source_id=source_id,
        raw=raw,
        received_at=received_at,
        sender_address=from_addr,
        sender_name=from_name,
        reply_to=reply_to,
        envelope_sender=envelope_sender,
        recipients=recipients,
        subject=subject,
        body=body,
        quoted=quoted,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        attachments=tuple(walk.attachments),
        auto_submitted=auto,
        bounce=bounce,
        loop=bool(headers._values(msg, "X-Deskbell-Loop")),
        defects=tuple(walk.defects),
        door=door,
        auth_results=authresults._auth_results(msg, walk),
    )
