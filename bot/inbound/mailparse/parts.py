"""Adapter helper for ``mailparse``: the record of one parse, and safe access to MIME parts.

``_Walk`` collects the defects, attachments and declared charsets of one message (the charsets
tell the decoders what undeclared 8-bit bytes elsewhere in it probably are). The accessors read
a part's Content-Type (parsed once per part), Content-Disposition and payload without letting
the stdlib's header errors out, and ``_iter_parts`` visits the tree without recursion. Must not
decide what a part is (body text, attachment, report: the modules that use these do) and must
not import the rest of the package but ``lifting`` (the bodies cut out before parsing). No ticket logic here.
"""

from __future__ import annotations

import email.errors
import email.utils
from dataclasses import dataclass, field
from email.message import Message

from bot.inbound.mailparse.lifting import Lifted
from bot.messages import Attachment

# A tree this deep is an attack or a broken generator, never a real client; past it the parts are
# skipped (with a defect) so neither our walk nor the stdlib generator can hit RecursionError.
MAX_DEPTH = 100
# Same idea for width: a message with thousands of parts is not worth walking to the end.
MAX_PARTS = 1000
MAX_DEFECTS = 50
# A real message declares one or two charsets; a hostile one with hundreds would only make every
# undeclared header try them all.
MAX_CHARSET_HINTS = 8

# Exceptions the stdlib header machinery is known to raise on hostile input (CPython has had
# IndexError/AttributeError bugs in ``_header_value_parser``); a part that triggers one is
# degraded, not fatal.
_HEADER_ERRORS = (
    email.errors.MessageError, ValueError, IndexError, AttributeError, TypeError, LookupError
)


@dataclass
class _Walk:
    """What one pass over the MIME tree collects besides the text."""

    defects: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts: int = 0
    too_deep: bool = False
    too_wide: bool = False
    headers_only: bool = False  # the stdlib parser gave up on the body (see parsing.py)
    # Content-Type of each part, parsed once: the stdlib re-parses the header on every access.
    content_types: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)
    # Charset labels the message declares (Content-Type charset parameters, RFC 2047 words), in
    # the order met, lower-cased, without repeats.
    declared_charsets: list[str] = field(default_factory=list)
    # Big base64 bodies decoded before parsing; their parts hold a marker (see lifting.py).
    lifted: Lifted = field(default_factory=Lifted)

    def defect(self, text: str) -> None:
        if text not in self.defects and len(self.defects) < MAX_DEFECTS:
            self.defects.append(text)

    def note_charset(self, label: str | None) -> None:
        label = (label or "").strip().strip("\"'").lower()
        if (label and len(label) <= 40 and label not in self.declared_charsets
                and len(self.declared_charsets) < MAX_CHARSET_HINTS):
            self.declared_charsets.append(label)


def _content_type(part: Message, walk: _Walk) -> str:
    return _content_info(part, walk)[0]


def _param(part: Message, name: str, walk: _Walk) -> str | None:
    return _content_info(part, walk)[1].get(name)


def _content_info(part: Message, walk: _Walk) -> tuple[str, dict[str, str]]:
    """(media type, Content-Type parameters) of a part, read once per part."""
    key = id(part)  # parts live as long as the walk
    if key not in walk.content_types:
        try:
            ctype = part.get_content_type()
            pairs = part.get_params() or []
        except _HEADER_ERRORS:
            walk.defect("unreadable Content-Type; treated as text/plain")
            ctype, pairs = "text/plain", []
        params: dict[str, str] = {}
        for name, value in pairs[1:]:  # the first pair is the media type itself
            if isinstance(value, tuple):  # RFC 2231 (charset, language, value) under compat32
                value = email.utils.collapse_rfc2231_value(value)
            params.setdefault(str(name).lower(), str(value))
        walk.content_types[key] = (ctype, params)
        walk.note_charset(params.get("charset"))
    return walk.content_types[key]


def _disposition(part: Message, walk: _Walk) -> str | None:
    try:
        return part.get_content_disposition()
    except _HEADER_ERRORS:
        walk.defect("unreadable Content-Disposition")
        return None


def _payload_bytes(part: Message, walk: _Walk) -> bytes:
    """Transfer-decoded payload; bad base64/quoted-printable degrade, the parser notes a defect."""
    payload = part.get_payload()
    if isinstance(payload, str) and walk.lifted.prefix in payload:
        decoded = walk.lifted.decoded(payload)
        # As the stdlib decides whether to decode (its get_payload reads the field the same way).
        if decoded is not None and str(part.get("content-transfer-encoding", "")).lower() == "base64":
            return decoded
        part.set_payload(walk.lifted.restore_text(payload))
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _iter_parts(msg: Message, walk: _Walk):
    """Every part of the tree, parents first, without recursion and without entering attached
    messages (those are attachments, not our structure)."""
    stack = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        if depth >= MAX_DEPTH or not part.is_multipart():
            continue
        if _content_type(part, walk).startswith("message/"):
            continue
        children = part.get_payload()
        if isinstance(children, list):
            kids = [child for child in children if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(kids))


def _note_charsets(msg: Message, walk: _Walk) -> None:
    """Record the charset of every part before anything is decoded, so that undeclared 8-bit
    bytes in the headers can be tried in them first. Costs little: each part's Content-Type is
    parsed here once and reused by the later steps."""
    for part, _depth in _iter_parts(msg, walk):
        _content_info(part, walk)


def _note_mime_defects(msg: Message, walk: _Walk) -> None:
    for part, _depth in _iter_parts(msg, walk):
        for defect in getattr(part, "defects", ()):
            walk.defect(f"mime: {type(defect).__name__}")
