"""Adapter helper for ``mailparse``: bytes → text whatever the declared charset, and text hygiene.

Decodes with the declared charset (or the superset a mislabelled one really is; ISO-2022-JP as
Windows writes it), then UTF-8, then the charsets the message declares elsewhere and the East
Asian ones when a reading is plausible (``charsets``), then cp1252; records every fallback as a
defect and every declared charset on the walk. Cleans out what the database cannot store (NUL,
lone surrogates). Must not look at headers or MIME structure, and must not raise on bad bytes.
No ticket logic here.
"""

from __future__ import annotations

import base64
import binascii
import re

from bot.inbound.mailparse import charsets
from bot.inbound.mailparse.parts import _Walk

# Characters outside the base64 alphabet: "YWJj\n ZA==" → "YWJjZA"
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def _b64decode(data: bytes) -> bytes:
    """Base64 that survives junk characters and missing or extra padding."""
    data = _NOT_BASE64.sub(b"", data)
    if len(data) % 4 == 1:
        data = data[:-1]  # a lone trailing sextet carries no full byte
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return b""


def _decode_bytes(data: bytes, charset: str | None, walk: _Walk, where: str) -> str:
    """Declared charset, then UTF-8, then a plausible reading in a charset the message declares
    elsewhere or an East Asian one, then cp1252 with replacement; a fallback is a defect."""
    declared = (charset or "").strip().strip("\"'").lower() or None
    if declared:
        walk.note_charset(declared)
        if charsets._is_jis(declared):
            jis = charsets._decode_jis(data, declared)
            if jis is not None:
                if not jis[1]:
                    walk.defect(f"{where}: charset {declared!r} holds characters outside it; "
                                "decoded as cp50221")
                return jis[0]
    tries = []
    if declared:
        tries.append(charsets._CHARSET_SUPERSETS.get(declared, declared))
    tries.append("utf-8")
    for candidate in tries:
        try:
            text = data.decode(candidate)
        except (LookupError, ValueError):  # unknown charset, or bytes it cannot decode
            continue
        if declared and candidate == "utf-8" and tries[0] != "utf-8":
            walk.defect(f"{where}: charset {declared!r} failed; decoded as utf-8")
        elif not declared and not data.isascii():
            walk.defect(f"{where}: undeclared 8-bit charset; decoded as utf-8")
        return text
    return _decode_failed(data, declared, walk, where)


def _decode_failed(data: bytes, declared: str | None, walk: _Walk, where: str) -> str:
    """Bytes that failed their label and UTF-8: the search (``charsets._guess``), else cp1252."""
    found = charsets._guess(data, [declared, *walk.declared_charsets])
    codec = found[1] if found else "cp1252"
    walk.defect(f"{where}: charset {declared or 'us-ascii'!r} failed; decoded as {codec}")
    return found[0] if found else data.decode("cp1252", errors="replace")


def _clean(text: str) -> str:
    """No NUL (PostgreSQL text refuses it) and no lone surrogates (UTF-7 can produce them)."""
    text = text.replace("\x00", "")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _visible_len(text: str) -> int:
    return len("".join(text.split()))
