"""Adapter helper for ``mailparse``: bytes → text whatever the declared charset, and text hygiene.

Decodes with the declared charset (or the superset a mislabelled one really is), then UTF-8,
then cp1252, and records every fallback as a defect; cleans out what the database cannot
store (NUL, lone surrogates). Must not look at headers or MIME structure, and must not raise
on bad bytes. No ticket logic here.
"""

from __future__ import annotations

import base64
import binascii
import re

from bot.inbound.mailparse.parts import _Walk

# Mislabelled charsets decode better as their supersets (WHATWG Encoding Standard label table):
# Outlook says ks_c_5601-1987 and sends cp949, "gb2312" mail is usually GBK, iso-8859-1 is cp1252.
_CHARSET_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "tis-620": "cp874",
    "windows-874": "cp874",
}

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
    """Declared charset, then UTF-8, then cp1252 with replacement; a fallback is a defect."""
    declared = (charset or "").strip().strip("\"'").lower() or None
    tries = []
    if declared:
        tries.append(_CHARSET_SUPERSETS.get(declared, declared))
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
    walk.defect(f"{where}: charset {declared or 'us-ascii'!r} failed; decoded as cp1252")
    return data.decode("cp1252", errors="replace")


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
