"""Adapter helper for ``mailparse``: raw bytes → ``email.message.Message``, defused first.

The stdlib parser gets a copy of the bytes cut down to what it parses quickly (bounded
Content-Type/-Disposition fields, a bounded number of delimiter lines). The modern policy is
tried first, then compat32, then the header section alone when the tree is too deep to parse.
Only input without a header section raises ``MailParseError``. Must not interpret the message
(the modules after it do) and never alters the bytes the caller keeps as
``InboundMessage.raw``. No ticket logic here.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy

from bot.core.errors import MailParseError
from bot.inbound.mailparse.parts import _HEADER_ERRORS, MAX_PARTS, _Walk

# Parsing-cost limits for the stdlib parser (see _defuse).
MAX_MIME_FIELD = 4096
MAX_FIELD_PARAMS = 64  # a long RFC 2231 file name needs a dozen continuations
MAX_MESSAGE_PARAMS = 2000
MAX_DELIMITER_LINES = MAX_PARTS + 100  # one per part, plus closing lines

# A Content-Type or Content-Disposition field at the start of a line (not the first one):
# b"\r\nContent-Type: text/plain; p0=v" → matches at the b"\n"
_MIME_FIELD = re.compile(rb"\ncontent-(?:type|disposition):", re.IGNORECASE)


def _parse_bytes(raw: bytes, walk: _Walk) -> Message:
    """Parse with the modern policy, falling back to the lenient legacy one, then headers only."""
    data = _defuse(raw, walk)
    # Some relays prepend blank lines; the header section then looks empty to the parser.
    candidates = [data]
    if data[:1] in (b"\r", b"\n", b" ", b"\t"):
        candidates.append(data.lstrip(b"\r\n \t"))
    for data in candidates:
        msg = _parse_with_fallbacks(data, walk)
        if msg.keys():
            return msg
    raise MailParseError("no header section: not an email")


def _parse_with_fallbacks(data: bytes, walk: _Walk) -> Message:
    try:
        return BytesParser(policy=default_policy).parsebytes(data)
    except RecursionError:
        # The stdlib parser recurses once per multipart level and gives up near 1,000 levels.
        return _parse_headers_only(data, walk)
    except _HEADER_ERRORS as exc:
        walk.defect(f"modern parser failed ({type(exc).__name__}); used compat32")
    try:
        return BytesParser(policy=compat32).parsebytes(data)
    except RecursionError:
        return _parse_headers_only(data, walk)


def _defuse(raw: bytes, walk: _Walk) -> bytes:
    """The bytes the stdlib parser gets: ``raw`` minus what makes it slow, never more.

    The stdlib re-parses Content-Type/-Disposition on every access at ~60 µs per parameter
    (20,000 parameters: seconds per access) and spends ~170 µs per MIME part. So a field keeps
    at most MAX_MIME_FIELD bytes and MAX_FIELD_PARAMS parameters, the message at most
    MAX_MESSAGE_PARAMS in all, and a message with thousands of delimiter lines is parsed up to
    the limit. ``InboundMessage.raw`` is always the untouched input.
    """
    pieces: list[bytes] = []
    last = 0
    budget = MAX_MESSAGE_PARAMS
    starts = [m.start() + 1 for m in _MIME_FIELD.finditer(raw)]
    if raw[:20].lower().startswith((b"content-type:", b"content-disposition:")):
        starts.insert(0, 0)
    for start in starts:
        if start < last:
            continue
        end = _field_end(raw, start)
        allowed = max(2, min(MAX_FIELD_PARAMS, budget))  # type/boundary survive an empty budget
        cut = min(end, start + MAX_MIME_FIELD)
        semicolon = start
        for _ in range(allowed + 1):
            semicolon = raw.find(b";", semicolon + 1, cut)
            if semicolon == -1:
                break
        budget -= allowed if semicolon != -1 else raw.count(b";", start, cut)
        if semicolon != -1:
            cut = semicolon  # drop the parameter that went over, and all after it
        elif cut < end:
            cut = max(raw.rfind(b";", start, cut), start + 1)
        if cut < end:
            pieces.append(raw[last:cut])
            last = end
            walk.defect("oversized MIME header field cut for parsing")
    data = b"".join(pieces) + raw[last:] if pieces else raw
    if data.count(b"\n--") > MAX_DELIMITER_LINES:
        position = -1
        for _ in range(MAX_DELIMITER_LINES):
            position = data.find(b"\n--", position + 1)
        data = data[:position]
        walk.defect(f"more than {MAX_DELIMITER_LINES} MIME delimiter lines; the rest not parsed")
    return data


def _field_end(data: bytes, start: int) -> int:
    """Where the header field starting at ``start`` ends (before its last CRLF), folding included."""
    position = data.find(b"\n", start)
    while position != -1 and data[position + 1 : position + 2] in (b" ", b"\t"):
        position = data.find(b"\n", position + 1)
    if position == -1:
        return len(data)
    return position - 1 if data[position - 1 : position] == b"\r" else position


def _parse_headers_only(data: bytes, walk: _Walk) -> Message:
    walk.headers_only = True
    walk.defect("MIME nesting too deep to parse; body not extracted")
    return BytesParser(policy=compat32).parsebytes(data, headersonly=True)
