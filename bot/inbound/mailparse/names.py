"""Adapter helper for ``mailparse``: attachment file names and media types.

Reads a part's file name however the client wrote it (RFC 2231, RFC 2047 inside quotes, raw
8-bit), then makes it safe to show and to store: no directories, no control or bidi
characters, at most MAX_NAME_BYTES; a part without a name becomes ``attachment-<n>`` with an
extension from its type. Types come from the stdlib's own table, never the host's. Must not
read payloads or add attachments. No ticket logic here.
"""

from __future__ import annotations

import email.utils
import mimetypes
import unicodedata
from email.message import Message

from bot.inbound.mailparse.headers import _decode_words, _first_value, _fix_8bit, _unfold
from bot.inbound.mailparse.parts import _HEADER_ERRORS, _Walk
from bot.inbound.mailparse.text import _clean, _collapse, _decode_bytes

MAX_NAME_BYTES = 255

# The stdlib's own table, not the host's mime.types: the same names on every host.
_MIME = mimetypes.MimeTypes()
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/rfc822-headers": ".txt",
    "message/delivery-status": ".txt",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/octet-stream": ".bin",
    "image/jpeg": ".jpg",
}


def _filename(part: Message, walk: _Walk) -> str | None:
    """Decoded file name (RFC 2231 parameters, RFC 2047 words, raw 8-bit), unsanitised."""
    try:
        name = part.get_filename()
    except _HEADER_ERRORS:
        walk.defect("unreadable attachment file name")
        name = None
    if name is not None and "\ufffd" in name:
        name = _filename_from_raw(part, walk) or name
    if name is not None and "=?" in name:
        name = _decode_words(name, walk)  # Outlook: filename="=?utf-8?B?...?=" (not RFC 2231)
    return name


def _filename_from_raw(part: Message, walk: _Walk) -> str | None:
    """Re-read a name whose bytes the modern parser replaced with U+FFFD: raw 8-bit bytes (no
    charset given; ``_fix_8bit`` reads them) or an RFC 2231 value its label does not fit."""
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        value = _first_value(part, header, walk)
        if value is None:
            continue
        legacy = Message()
        legacy[header] = _fix_8bit(_unfold(value), header, walk)
        try:
            name = legacy.get_param(param, header=header)
        except _HEADER_ERRORS:  # e.g. TypeError from decode_params on mangled RFC 2231 parts
            continue
        if isinstance(name, tuple):
            name = _rfc2231_value(name, walk)
        if name:
            return str(name).strip()
    return None


def _rfc2231_value(value: tuple, walk: _Walk) -> str:
    """An RFC 2231 (charset, language, text) triple through our decoder, so that a label that
    does not fit the bytes ("shift_jis" on cp932 with ①, "iso-2022-jp" with NEC characters)
    reads as the sender meant. compat32 hands the %-decoded bytes over as Latin-1 text."""
    charset, _language, text = (str(item or "") for item in value)
    try:
        data = text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return email.utils.collapse_rfc2231_value(value)
    return _decode_bytes(data, charset or None, walk, "file name")


def _sanitize_name(name: str | None, ctype: str, index: int) -> str:
    """A file name safe to show and to store: no directories, no control or bidi characters."""
    name = _clean(name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: control characters; Cf: format characters such as U+202E, which makes
    # "invoice\u202egpj.exe" display as "invoiceexe.jpg".
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf"))
    name = _collapse(name).strip(". ")
    if not name:
        return f"attachment-{index}{_extension(ctype)}"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = "." + ext if dot and stem and len(ext) <= 16 else ""
        stem = name[: len(name) - len(ext)] if ext else name
        budget = MAX_NAME_BYTES - len(ext.encode("utf-8"))
        stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")
        name = stem + ext
    return name


def _extension(ctype: str) -> str:
    return _EXTENSIONS.get(ctype) or _MIME.guess_extension(ctype) or (
        ".txt" if ctype.startswith("text/") else ".bin"
    )


def _guess_type(name: str) -> str:
    return _MIME.guess_type(name)[0] or "application/octet-stream"
