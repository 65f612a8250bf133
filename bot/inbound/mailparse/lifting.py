"""Adapter helper for ``mailparse``: big base64 bodies kept out of the stdlib parser.

The stdlib parser walks every line of a body (its feed parser looks at each for a boundary),
then ``get_payload(decode=True)`` joins the lines and decodes them: for a 1 MB attachment
some 17,000 lines, most of the parse. Before parsing, each leaf body of at least
``MIN_LIFT_BYTES`` under ``Content-Transfer-Encoding: base64`` is cut out of the bytes and
decoded at once (one C call); a short marker takes its place, and ``parts._payload_bytes``
(and the flattening of attached messages) put the decoded bytes or the original text back.

A body is lifted only when the result cannot differ from the stdlib's: strictly valid base64
(the alphabet, CR and LF, ``=`` only at the end, whole quads), in a part whose own header
section says base64 and is neither multipart nor message. Anything else is left where it
is for the stdlib. Must not touch the header sections, boundaries or any other byte, and must
not interpret the message. No ticket logic here.
"""

from __future__ import annotations

import binascii
import re
import secrets

MIN_LIFT_BYTES = 64 * 1024  # below this the stdlib's line walk costs less than a millisecond
HEADER_WINDOW = 64 * 1024  # how far a part's header section may reach either side of its encoding

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_CTE_FIELD = b"\ncontent-transfer-encoding:"
# The value, alone on its line: b" base64\r" → match (the line was cut at its \n)
_BASE64_VALUE = re.compile(rb'[ \t]*"?base64"?[ \t]*\r?')
# A Content-Type that holds parts, not a body: b"\ncontent-type: multipart/mixed;" → match
_CONTAINER_TYPE = re.compile(rb"\ncontent-type:[ \t]*(?:multipart|message)/")


class Lifted:
    """The bodies cut out of one message: marker → (original text, decoded bytes)."""

    def __init__(self) -> None:
        self.prefix = f"\x00lifted-{secrets.token_hex(8)}-"  # NUL: never in base64 or headers
        self.bodies: dict[str, tuple[bytes, bytes]] = {}

    def add(self, original: bytes, decoded: bytes) -> bytes:
        marker = f"{self.prefix}{len(self.bodies)}\x00"
        self.bodies[marker] = (original, decoded)
        return marker.encode("ascii")

    def decoded(self, payload: str) -> bytes | None:
        """The bytes of a payload that is exactly one marker (line breaks aside)."""
        body = self.bodies.get(payload.strip("\r\n")) if self.bodies else None
        return body[1] if body else None

    def restore_text(self, payload: str) -> str:
        """``payload`` with every marker in it replaced by the text it stood for."""
        if not self.bodies or self.prefix not in payload:
            return payload
        for marker, (original, _) in self.bodies.items():
            payload = payload.replace(marker, original.decode("ascii"))
        return payload

    def restore_bytes(self, data: bytes) -> bytes:
        if not self.bodies or self.prefix.encode("ascii") not in data:
            return data
        for marker, (original, _) in self.bodies.items():
            data = data.replace(marker.encode("ascii"), original)
        return data


def lift(data: bytes, lifted: Lifted) -> bytes:
    """``data`` with each liftable base64 body replaced by a marker recorded in ``lifted``."""
    if len(data) < MIN_LIFT_BYTES:
        return data
    lower = data.lower()
    kept: list[bytes] = []
    copied = search = 0
    while (hit := lower.find(_CTE_FIELD, search)) >= 0:
        search = hit + len(_CTE_FIELD)
        body = _body_span(lower, hit)
        if body is None:
            continue
        start, end = body
        search = end
        decoded = _strict_base64(data[start:end])
        if decoded is None:
            continue
        kept += [data[copied:start], lifted.add(data[start:end], decoded)]
        copied = end
    if not kept:
        return data
    kept.append(data[copied:])
    return b"".join(kept)


def _body_span(lower: bytes, hit: int) -> tuple[int, int] | None:
    """(start, end) of the body whose header section holds the base64 field at ``hit``, its
    trailing line break left out; None when that is not a big leaf body."""
    line_end = lower.find(b"\n", hit + 1)
    if line_end < 0 or not _BASE64_VALUE.fullmatch(lower, hit + len(_CTE_FIELD), line_end):
        return None
    window = hit + HEADER_WINDOW
    blank = [i for i in (lower.find(b"\n\r\n", hit, window), lower.find(b"\n\n", hit, window)) if i >= 0]
    if not blank:
        return None
    header_end = min(blank)
    start = header_end + (3 if lower.startswith(b"\n\r\n", header_end) else 2)
    if lower.find(b"\n--", hit, header_end) >= 0:  # a delimiter before the blank line: not a section
        return None
    floor = max(0, hit - HEADER_WINDOW)
    section_start = max(lower.rfind(b"\n\n", floor, hit), lower.rfind(b"\n\r\n", floor, hit),
                        lower.rfind(b"\n--", floor, hit))
    if section_start < 0 and floor > 0:
        return None
    if _CONTAINER_TYPE.search(b"\n" + lower[max(section_start, 0):header_end + 1]):
        return None
    delimiter = lower.find(b"\n--", start)
    end = len(lower) if delimiter < 0 else delimiter
    while end > start and lower[end - 1] in b"\r\n":
        end -= 1
    return (start, end) if end - start >= MIN_LIFT_BYTES else None


def _strict_base64(text: bytes) -> bytes | None:
    """The bytes of base64 the stdlib would decode without a defect, else None: its lines
    joined (as ``get_payload`` joins them), only the alphabet, whole quads, and ``=`` only as
    the last one or two (the pattern its validating decode checks first)."""
    quads = text.translate(None, b"\r\n")
    padding = quads.find(b"=")
    if len(quads) % 4 or quads.translate(None, _ALPHABET + b"=") or (
            padding >= 0 and (padding < len(quads) - 2 or quads[padding:].strip(b"="))):
        return None
    return binascii.a2b_base64(quads)
