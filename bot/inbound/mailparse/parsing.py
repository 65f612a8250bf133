"""Adapter helper for ``mailparse``: raw bytes → ``email.message.Message``, defused first.

The stdlib parser gets a copy of the bytes with the header section repaired (junk lines before
the first field dropped, unindented continuation lines joined to their field) and cut down to
what it parses quickly (bounded Content-Type/-Disposition fields, a bounded number of delimiter
lines). The modern policy is tried first, then compat32, then the header section alone when the
tree is too deep to parse. Only input without a header section raises ``MailParseError``. Must
not interpret the message (the modules after it do), must not repair anything past the header
section, and never alters the bytes the caller keeps as ``InboundMessage.raw``. No ticket logic
here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy

from bot.core.errors import MailParseError
from bot.inbound.mailparse.lifting import lift
from bot.inbound.mailparse.parts import _HEADER_ERRORS, MAX_PARTS, _Walk

# Parsing-cost limits for the stdlib parser (see _defuse).
MAX_MIME_FIELD = 4096
MAX_FIELD_PARAMS = 64  # a long RFC 2231 file name needs a dozen continuations
MAX_MESSAGE_PARAMS = 2000
MAX_DELIMITER_LINES = MAX_PARTS + 100  # one per part, plus closing lines
# Header-repair limits (see _repair_header_section): a few junk lines are a banner or a
# separator, more are a text that is not mail; a few unindented lines are a broken fold, more
# are a body that lost its blank separator line.
MAX_JUNK_LINES = 5
MAX_ORPHAN_LINES = 3
MAX_HEADER_SCAN = 256 * 1024  # header sections are a few KiB; past this, nothing is repaired

# A Content-Type or Content-Disposition field at the start of a line (not the first one):
# b"\r\nContent-Type: text/plain; p0=v" → matches at the b"\n"
_MIME_FIELD = re.compile(rb"\ncontent-(?:type|disposition):", re.IGNORECASE)
# The first line of a header field as the stdlib parser sees one: a field name of printable
# ASCII without ":" (RFC 5322 §3.6.8 ftext) and the colon. "Subject: Hi" → match;
# "twice, please refund" and "Begin forwarded message:" (spaces in the name) → no match
_FIELD_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
# A field name with the obsolete space before the colon (RFC 5322 §4.5): "Subject : Hi". Not
# ours to join to the field above; the stdlib parser decides what it is.
_OBS_FIELD_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]+:")
# A field every real message has at least one of (RFC 5322 §3.6, RFC 2045 §4, RFC 5321 §4.4),
# at the start of a line: b"\r\nSubject: Hi" → match. Junk is dropped only above one of them,
# so a text with a "Note: ..." line does not become a message.
_KNOWN_FIELD = re.compile(
    rb"(?:^|\n)(?:from|sender|reply-to|to|cc|subject|date|message-id|received|return-path"
    rb"|mime-version|content-type):",
    re.IGNORECASE,
)
# What a junk line may hold: text, no control bytes but tab (binary is not a banner):
# b"Begin forwarded message:" → match; b"\x89PNG\x00" → no match
_TEXT_LINE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")


def _parse_bytes(raw: bytes, walk: _Walk) -> Message:
    """Parse with the modern policy, falling back to the lenient legacy one, then headers only."""
    # Lifting first: the defusing scans then read kilobytes, not the bodies' megabytes.
    data = _defuse(lift(_repair_header_section(raw, walk), walk.lifted), walk)
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


def _repair_header_section(raw: bytes, walk: _Walk) -> bytes:
    """``raw`` with its header section made parseable (RFC 5322 §2.2), each repair a defect."""
    return _join_orphan_lines(_drop_leading_junk(raw, walk), walk)


def _lines(data: bytes, limit: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line without its CR LF) of each line of ``data`` that starts before ``limit``."""
    start = 0
    while start < min(len(data), limit):
        end = data.find(b"\n", start)
        end = len(data) if end == -1 else end + 1
        yield start, data[start:end].rstrip(b"\r\n")
        start = end


def _drop_leading_junk(data: bytes, walk: _Walk) -> bytes:
    """Drop the text lines above the first header field: a separator ("-----"), a forward
    banner ("Begin forwarded message:") or an mbox "From " line (RFC 4155). RFC 5322 §2.1 starts
    a message with its header fields; strict parsers read all of it as a body without headers.
    Blank lines alone above the headers are left to ``_parse_bytes``."""
    junk = 0
    for start, line in _lines(data, MAX_HEADER_SCAN):
        if _FIELD_LINE.match(line):
            if junk == 0 or not _KNOWN_FIELD.search(_header_section(data, start)):
                return data
            walk.defect(f"{junk} line(s) before the header section dropped (RFC 5322 §2.1)")
            return data[start:]
        if not line.strip(b" \t"):
            continue
        junk += 1
        if junk > MAX_JUNK_LINES or len(line) > 998 or not _TEXT_LINE.fullmatch(line):
            return data  # a text or binary, not mail under a banner (RFC 5322 §2.1.1: 998)
    return data


def _header_section(data: bytes, start: int) -> bytes:
    """The header section that starts at ``start``: up to its blank line, at most
    MAX_HEADER_SCAN bytes, with a line end before it so every field starts after one."""
    section = b"\n" + data[start : start + MAX_HEADER_SCAN]
    ends = [end for end in (section.find(b"\n\r\n"), section.find(b"\n\n")) if end != -1]
    return section[: min(ends)] if ends else section


def _join_orphan_lines(data: bytes, walk: _Walk) -> bytes:
    """Indent header lines that continue a field but do not start with whitespace, as broken
    folding code writes them (RFC 5322 §2.2.3 wants a space or tab there). Strict parsers end
    the header section at such a line and lose every field after it. Only lines followed by
    another field are joined: unindented lines before the blank line may be a body that lost
    its separator, and stay as they are."""
    orphans: list[int] = []  # start offsets of the lines to indent
    run: list[int] = []
    field = b""
    for start, line in _lines(data, MAX_HEADER_SCAN):
        if not line:
            break  # RFC 5322 §2.1: the blank line ends the header section
        if line[:1] in (b" ", b"\t"):
            continue  # a proper continuation line
        if line.startswith(b"From "):
            break  # a misplaced mbox line (RFC 4155): the stdlib parser skips it; we stop
        if _FIELD_LINE.match(line) or _OBS_FIELD_LINE.match(line):
            if run:
                orphans.extend(run)
                walk.defect(
                    f"{len(run)} header line(s) without leading whitespace joined to "
                    f"{field.decode('ascii', 'replace')[:40]} (RFC 5322 §2.2.3)"
                )
                run = []
            field = line.split(b":", 1)[0]
            continue
        if not field or len(run) >= MAX_ORPHAN_LINES:
            break
        run.append(start)
    if not orphans:
        return data
    pieces, last = [], 0
    for start in orphans:
        pieces += [data[last:start], b" "]
        last = start
    return b"".join(pieces) + data[last:]


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
