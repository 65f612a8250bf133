"""Adapter helper for ``mailparse``: is this mail automatic, and is it a bounce?

Reads the marks of machine mail (RFC 3834 Auto-Submitted, Precedence, X-Auto-Response-
Suppress, list headers, a null envelope sender, multipart/report; a mailer-daemon name only
when there is no envelope to tell) and takes delivery status notifications apart (RFC 3464):
failed recipients, status, diagnostic and the Message-ID of the mail that bounced, ours
preferred (the one our return path names first). Must not decide what becomes of such mail
(core does, DESIGN §2.6). No ticket logic here.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses

from bot.core.threader import returned_message_id
from bot.inbound.mailparse.headers import _fix_8bit, _ids, _unfold, _values
from bot.inbound.mailparse.parts import (
    _content_type,
    _iter_parts,
    _param,
    _payload_bytes,
    _Walk,
)
from bot.inbound.mailparse.text import _collapse, _decode_bytes
from bot.messages import Bounce

# RFC 3834 / DESIGN §2.6: values of these headers that mark mail as automatic.
_PRECEDENCE_AUTO = {"bulk", "junk", "list", "auto_reply"}
_SUPPRESS_AUTO = {"oof", "autoreply", "all"}
# Local parts of bounce senders (RFC 5321 §4.5.1 postmaster; "MAILER-DAEMON" by Sendmail/Postfix).
_DAEMON_LOCALPARTS = {"mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster", "mail-daemon"}
# RFC 3464 §2.3.3 actions that do not mean the message failed.
_DSN_NOT_FAILED = {"delayed", "delivered", "relayed", "expanded"}
# The same news in prose (Exim, Sendmail warnings): delivery still being tried.
_DELAY_PHRASES = (
    "has not yet been delivered",
    "warning message only",
    "delivery has been delayed",
    "will continue to try",
    "will keep trying",
)

# Original Message-ID quoted in a non-standard bounce body:
# "   Message-ID: <t42.7.x9@reply.example.com>" → "t42.7.x9@reply.example.com"
_BODY_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
# RFC 3463 enhanced status code in bounce prose: "550 5.1.1 <bob@x>: user unknown" → "5.1.1"
_STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def _auto_submitted(
    msg: Message, walk: _Walk, envelope_sender: str | None, from_addr: str
) -> str | None:
    """Why this mail is automatic (RFC 3834, DESIGN §2.6), or None for a person's mail."""

    def first(name: str) -> str | None:
        values = _values(msg, name)
        return _collapse(_fix_8bit(_unfold(values[0]), name, walk)) if values else None

    value = first("Auto-Submitted")
    if value is not None:
        token = value.split(";", 1)[0].strip().lower()
        if token != "no":  # RFC 3834 §5: "no" is the only value for a person's mail
            return f"auto-submitted:{token or 'yes'}"
    if first("X-Autoreply") is not None:
        return "x-autoreply"
    if first("X-Autorespond") is not None:
        return "x-autorespond"
    value = first("X-Auto-Response-Suppress")
    if value is not None:
        tokens = {t.strip().lower() for t in value.split(",")}
        hit = sorted(tokens & _SUPPRESS_AUTO)
        if hit:
            return f"x-auto-response-suppress:{hit[0]}"
    value = first("Precedence")
    if value is not None:
        token = value.split()[0].lower() if value.split() else ""
        if token in _PRECEDENCE_AUTO:
            return f"precedence:{token}"
    if first("List-Id") is not None:
        return "list-id"
    if first("List-Unsubscribe") is not None:
        return "list-unsubscribe"
    if envelope_sender is not None and envelope_sender.strip().strip("<>").strip() == "":
        return "null-sender"  # RFC 5321 §4.5.5: notifications go out with MAIL FROM:<>
    if _is_daemon(from_addr) and _null_sender(msg, envelope_sender) is None:
        return "mailer-daemon"  # no envelope to tell: the name is all there is
    report_type = _report_type(msg, walk)
    if report_type:
        return f"report:{report_type}"  # e.g. read receipts (RFC 8098 disposition-notification)
    return None


def _is_daemon(address: str) -> bool:
    return address.split("@", 1)[0] in _DAEMON_LOCALPARTS


def _null_sender(msg: Message, envelope_sender: str | None) -> bool | None:
    """Did this come with the null reverse-path, as every bounce must (RFC 5321 §4.5.5)? The
    envelope says; without one (not taken in by SMTP), the Return-Path the delivering MTA wrote
    (RFC 5321 §4.4); None when neither is known."""
    if envelope_sender is None:
        values = _values(msg, "Return-Path")
        if not values:
            return None
        envelope_sender = _unfold(values[0])
    return envelope_sender.strip().strip("<>").strip() == ""


def _report_type(part: Message, walk: _Walk) -> str | None:
    if _content_type(part, walk) != "multipart/report":
        return None
    return (_param(part, "report-type", walk) or "unknown").lower()


def _find_bounce(
    msg: Message,
    walk: _Walk,
    text: str,
    in_reply_to: tuple[str, ...],
    references: tuple[str, ...],
    from_addr: str,
    our_domain: str | None,
    *,
    envelope_sender: str | None = None,
) -> tuple[Bounce | None, str | None]:
    """(Bounce, "bounce") for a failure DSN (RFC 3464) or a prose bounce from a mailer daemon
    sent with the null sender; (None, "dsn:<action>") for a DSN that reports no failure;
    (None, None) otherwise.

    A bounce is known by its structure (multipart/report, message/delivery-status) or by the
    null envelope sender, not by its From: a person may write from postmaster@ (RFC 5321
    §4.5.1 wants one to read it), and that is a person's mail. Only without an envelope or a
    Return-Path to tell (``envelope_sender`` None) does a daemon's name alone count."""
    report = None
    status_part = None
    original_ids: list[str] = []
    for part, _depth in _iter_parts(msg, walk):
        ctype = _content_type(part, walk)
        if ctype == "multipart/report" and report is None:
            report = part
        elif ctype == "message/delivery-status" and status_part is None:
            status_part = part
        elif ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
            original_ids.extend(_original_ids(part, ctype, walk))
    report_type = (_param(report, "report-type", walk) or "").lower() if report is not None else ""
    is_dsn = status_part is not None or report_type == "delivery-status"
    if not is_dsn and not (_is_daemon(from_addr) and _null_sender(msg, envelope_sender) is not False):
        return None, None

    # Sent to the return path of one of our messages (VERP, core.threader.return_path): that
    # names the mail, even when the report quotes nothing of it.
    original_ids[:0] = _returned_ids(msg, our_domain)
    original_ids.extend(in_reply_to)
    original_ids.extend(reversed(references))  # the last reference is the message replied to
    original_ids.extend(_BODY_MESSAGE_ID.findall(text))
    original = _pick_ours(original_ids, our_domain)

    if not is_dsn:
        # Prose bounce (qmail, old Exim, some gateways): no structure, so the best we can do.
        folded = _collapse(text).lower()
        if any(phrase in folded for phrase in _DELAY_PHRASES):
            return None, "mailer-daemon:delay"  # Exim's "not yet been delivered" is no failure
        found = _STATUS_CODE.search(text)
        return Bounce(original, status=found.group(1) if found else ""), "bounce"

    recipients, status, diagnostic, actions = _delivery_status(status_part, walk)
    if actions and not (set(actions) - _DSN_NOT_FAILED):
        return None, f"dsn:{sorted(set(actions))[0]}"  # a delay warning is not a failure
    return Bounce(original, recipients=recipients, status=status, diagnostic=diagnostic), "bounce"


# Where the delivering MTA records the envelope recipient (Delivered-To, X-Original-To) and the
# address a bounce is written to (To).
_RECIPIENT_FIELDS = ("Delivered-To", "X-Original-To", "To")


def _returned_ids(msg: Message, our_domain: str | None) -> list[str]:
    if not our_domain:
        return []
    found = []
    for name in _RECIPIENT_FIELDS:
        for value in _values(msg, name):
            for _, address in getaddresses([_unfold(value)]):
                named = returned_message_id(address, domain=our_domain)
                if named:
                    found.append(named)
    return found


def _original_ids(part: Message, ctype: str, walk: _Walk) -> list[str]:
    if ctype == "text/rfc822-headers":
        headers = BytesParser(policy=compat32).parsebytes(_payload_bytes(part, walk), headersonly=True)
    else:
        payload = part.get_payload()
        headers = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(headers, Message):
            return []
    return list(_ids(_values(headers, "Message-ID")))


def _pick_ours(ids: list[str], our_domain: str | None) -> str | None:
    if our_domain:
        for candidate in ids:
            if candidate.rsplit("@", 1)[-1].lower() == our_domain:
                return candidate
    return ids[0] if ids else None


def _delivery_status(
    part: Message | None, walk: _Walk
) -> tuple[tuple[str, ...], str, str, list[str]]:
    """Final-Recipient addresses, the first failure's Status and Diagnostic-Code, all Actions."""
    if part is None:
        return (), "", "", []
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [b for b in payload if isinstance(b, Message)]
    else:
        # Some MTAs base64-encode the status; the parser then keeps it as one string.
        text = _decode_bytes(_payload_bytes(part, walk), "utf-8", walk, "delivery-status")
        blocks = [
            BytesParser(policy=compat32).parsebytes(chunk.encode("utf-8"), headersonly=True)
            for chunk in text.replace("\r\n", "\n").split("\n\n")
            if chunk.strip()
        ]
    recipients: list[str] = []
    actions: list[str] = []
    status = diagnostic = ""
    # RFC 3464 §2.1: the per-message fields come first, then one block per recipient.
    for block in blocks[1:]:
        recipient = _dsn_field(block, "Final-Recipient", walk) or _dsn_field(
            block, "Original-Recipient", walk
        )
        if not recipient:
            continue
        address = recipient.split(";", 1)[-1].strip().strip("<>").lower()  # "rfc822; bob@x"
        action = _dsn_field(block, "Action", walk).lower()
        recipients.append(address)
        actions.append(action or "failed")
        if not status and action not in _DSN_NOT_FAILED:
            status = (_dsn_field(block, "Status", walk).split() or [""])[0]
            diagnostic = _dsn_field(block, "Diagnostic-Code", walk).split(";", 1)[-1].strip()[:500]
    return tuple(recipients), status, diagnostic, actions


def _dsn_field(block: Message, name: str, walk: _Walk) -> str:
    values = _values(block, name)
    return _collapse(_fix_8bit(_unfold(values[0]), name, walk)) if values else ""
