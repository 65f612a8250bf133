"""Adapter helper for ``mailparse``: header values → text, addresses and Message-IDs.

Unfolds, repairs undeclared 8-bit bytes, decodes RFC 2047 words in any charset, picks the
first usable address out of a broken From/Sender/Reply-To and the ids out of Message-ID,
In-Reply-To and References; each repair is a defect. Works on the raw header values, not the
stdlib's parsed header objects (those raise on hostile input). Must not decide threading or
routing from what it reads (core does). No ticket logic here.
"""

from __future__ import annotations

import email.utils
import quopri
import re
from email.message import Message

from bot.inbound.mailparse.parts import _Walk
from bot.inbound.mailparse.text import _b64decode, _clean, _collapse, _decode_bytes

MAX_ADDRESS_HEADER = 4096

# Message ids inside angle brackets, junk around them ignored:
# "<a@x> (Bob's message of Monday) <b@y>" → ["a@x", "b@y"]
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
# A bare id some mailers send without brackets: "1234.5678@mail.example.com"
_BARE_ID = re.compile(r"^[^<>\s]+@[^<>\s]+$")
# RFC 5322 §2.2.3 unfolding: "Router\r\n down" → "Router down"
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# RFC 2047 encoded word, tolerating spaces inside (seen from broken clients); the text part
# cannot hold "?" (Q writes =3F), which also keeps the scan linear:
# "=?utf-8?q?Caf=C3=A9?=" → ("utf-8", "q", "Caf=C3=A9")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
# Whitespace between two adjacent encoded words is dropped (RFC 2047 §6.2):
# "=?utf-8?q?a?= \r\n =?utf-8?q?b?=" → "ab"
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?[^?\s]+\?[bBqQ]\?)")
# An address anywhere in a broken header: "Bob Smith bob@example.com (home)" → "bob@example.com".
# The lookbehind starts a match only at a token's first character, so a long run without "@"
# is scanned once, not once per position.
_ADDR_IN_TEXT = re.compile(r"(?<![^\s<>()\[\]\"',;:])[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
# A plausible addr-spec after getaddresses(): "alice@example.net"
_ADDR_SPEC = re.compile(r"^[^\s<>@]+@[^\s<>@]+$")


def _values(msg: Message, name: str) -> list[str]:
    """Raw values of every ``name`` header, unparsed (8-bit bytes still surrogate-escaped)."""
    lname = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == lname]


def _first_value(msg: Message, name: str, walk: _Walk) -> str | None:
    values = _values(msg, name)
    if len(values) > 1:
        walk.defect(f"duplicate {name} header; first used")
    return values[0] if values else None


def _unfold(value: str) -> str:
    return _FOLD.sub("", value).replace("\r", "").replace("\n", " ")


def _fix_8bit(value: str, name: str, walk: _Walk) -> str:
    """Undeclared 8-bit bytes in a header (RFC 5322 forbids them, clients send them anyway):
    try UTF-8 (RFC 6532), then cp1252."""
    if value.isascii():
        return value
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value  # already text (not from bytes)
    try:
        text = data.decode("utf-8")
        walk.defect(f"8-bit {name} header decoded as utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        walk.defect(f"8-bit {name} header decoded as cp1252")
    return text


def _decode_words(text: str, walk: _Walk) -> str:
    """RFC 2047 encoded words → text, whatever their charset or encoding errors."""
    if "=?" not in text:
        return text
    text = _BETWEEN_WORDS.sub("", text)

    def decode(match: re.Match[str]) -> str:
        charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
        charset = charset.split("*", 1)[0]  # RFC 2231 §5 language suffix: "utf-8*en"
        if encoding == "b":
            data = _b64decode(payload.encode("ascii", "replace"))
        else:
            data = quopri.decodestring(payload.encode("utf-8", "surrogateescape"), header=True)
        return _decode_bytes(data, charset, walk, "encoded word")

    return _ENCODED_WORD.sub(decode, text)


def _decoded_header(msg: Message, name: str, walk: _Walk) -> str:
    value = _first_value(msg, name, walk)
    if value is None:
        return ""
    return _clean(_decode_words(_fix_8bit(_unfold(value), name, walk), walk))


def _first_address(msg: Message, name: str, walk: _Walk) -> tuple[str, str]:
    """(display name, lower-cased addr-spec) of the first address in ``name``, or ("", "")."""
    values = _values(msg, name)
    if len(values) > 1:
        walk.defect(f"duplicate {name} header; first usable one used")
    for value in values:
        # A real address header is short; a huge one would only feed quadratic parsing.
        text = _fix_8bit(_unfold(value[:MAX_ADDRESS_HEADER]), name, walk)
        for display, addr in email.utils.getaddresses([text]):
            addr = addr.strip().strip("<>").strip()
            if _ADDR_SPEC.match(addr):
                return _collapse(_clean(_decode_words(display, walk))), addr.lower()
        found = _ADDR_IN_TEXT.search(text)
        if found:
            walk.defect(f"malformed {name} header; address picked out of it")
            return "", found.group(0).rstrip(".").lower()
    return "", ""


def _message_id(msg: Message, walk: _Walk) -> str | None:
    value = _first_value(msg, "Message-ID", walk)
    if value is None:
        walk.defect("no Message-ID")
        return None
    value = _unfold(value).strip()
    found = _ANGLE_ID.search(value)
    candidate = found.group(1) if found else value
    # Ids without "@" ("<1>", "<12345>") collide across senders and would make a new message
    # look like a replay of an old one (DESIGN §2.2), so they count as absent.
    if len(candidate) <= 998 and candidate.isascii() and _BARE_ID.match(candidate):
        return candidate
    walk.defect("unusable Message-ID; raw bytes hashed instead")
    return None


def _ids(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        for found in _ANGLE_ID.findall(_unfold(value)):
            if found.isascii():
                seen.setdefault(found, None)
    return tuple(seen)
