"""A TNEF writer for tests: builds winmail.dat streams (MS-OXTNEF) from file names and bytes.

Outlook in Rich Text mode sends attachments inside one application/ms-tnef part. The layout
written here follows MS-OXTNEF §2.1.3: a header (TNEF signature 0x223E9F78, a legacy key),
then attributes of ``level(1) id(4) length(4) data(length) checksum(2)``, all little-endian,
where ``id`` is the attribute tag in the low word and its type in the high word, and the
checksum is the sum of the data bytes modulo 65,536. The message-level attributes come first
(attTnefVersion, attOemCodepage, attMessageClass); then, per attachment, attAttachRendData
(which opens the attachment), attAttachTitle (the short file name), attAttachData (the bytes)
and, unless left out, attAttachment: a MAPI property list holding the attach method and the
long file name, display name and extension as Unicode strings.

Tests only: no body, recipients, RTF or embedded messages, and no reading of TNEF. Every
stream is built from the arguments alone, so the TNEF tests need no sample from outside the
project.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

TNEF_SIGNATURE = 0x223E9F78
LEGACY_KEY = 0x0D3C  # any 16-bit value; readers only skip it

LEVEL_MESSAGE = 0x01
LEVEL_ATTACHMENT = 0x02

# Attribute types (MS-OXTNEF §2.1.3.3, the high word of an attribute id).
ATP_STRING = 0x0001
ATP_BYTE = 0x0006
ATP_WORD = 0x0007
ATP_DWORD = 0x0008

# Attribute ids: type << 16 | tag.
ATT_TNEF_VERSION = ATP_DWORD << 16 | 0x9006
ATT_OEM_CODEPAGE = ATP_BYTE << 16 | 0x9007
ATT_MESSAGE_CLASS = ATP_WORD << 16 | 0x8008
ATT_ATTACH_REND_DATA = ATP_BYTE << 16 | 0x9002
ATT_ATTACH_TITLE = ATP_STRING << 16 | 0x8010
ATT_ATTACH_DATA = ATP_BYTE << 16 | 0x800F
ATT_ATTACHMENT = ATP_BYTE << 16 | 0x9005

TNEF_VERSION = 0x00010000
OEM_CODEPAGE = 1252
# The TNEF name of the MAPI message class IPM.Note (attMessageClass, MS-OXTNEF §2.1.3.3.5).
MESSAGE_CLASS = "IPM.Microsoft Mail.Note"

# attAttachRendData: AttachType (file), AttachPosition (none), width, height, DataFlags.
ATTACH_TYPE_FILE = 0x0001
RENDER_POSITION_NONE = 0xFFFFFFFF

# MAPI property types (MS-OXCDATA) and tags (MS-OXPROPS) used in attAttachment.
PT_LONG = 0x0003
PT_UNICODE = 0x001F
PID_TAG_DISPLAY_NAME = 0x3001
PID_TAG_ATTACH_EXTENSION = 0x3703
PID_TAG_ATTACH_METHOD = 0x3705
PID_TAG_ATTACH_LONG_FILENAME = 0x3707
ATTACH_BY_VALUE = 0x0001


@dataclass(frozen=True)
class TnefFile:
    """One attachment. ``title`` is the attAttachTitle (8.3 short name in the OEM code page,
    derived from ``name`` when not given); ``mapi_props=False`` writes no attAttachment, the
    way old clients did, so only the title names the file."""

    name: str
    data: bytes
    title: str | None = None
    mapi_props: bool = True


def checksum(data: bytes) -> int:
    return sum(data) & 0xFFFF


def attribute(level: int, attr_id: int, data: bytes) -> bytes:
    """One TNEF attribute: level, id, length, data, checksum."""
    return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", checksum(data))


def short_name(name: str) -> str:
    """The DOS 8.3 name for attAttachTitle: "notes.txt" stays, "Quarterly report.pdf" →
    "QUARTE~1.PDF"."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""

    def fits(part: str, size: int) -> bool:
        return part.isascii() and part.isalnum() and len(part) <= size

    if fits(stem, 8) and (not ext or fits(ext, 3)):
        return name

    def letters(part: str) -> str:
        return "".join(c for c in part.upper() if c.isascii() and c.isalnum())

    stem, ext = (letters(stem)[:6] or "FILE") + "~1", letters(ext)[:3]
    return stem + "." + ext if ext else stem


def _mapi_unicode(tag: int, value: str) -> bytes:
    """A single-valued PT_UNICODE property: tag, one value, its byte length (with the NUL),
    then UTF-16LE text padded to a multiple of 4 bytes."""
    text = value.encode("utf-16-le") + b"\x00\x00"
    padding = b"\x00" * (-len(text) % 4)
    return struct.pack("<HHII", PT_UNICODE, tag, 1, len(text)) + text + padding


def _mapi_long(tag: int, value: int) -> bytes:
    return struct.pack("<HHI", PT_LONG, tag, value)


def attachment_props(name: str) -> bytes:
    """The attAttachment data: a MAPI property list (count, then each property)."""
    extension = "." + name.rpartition(".")[2] if "." in name else ""
    props = [
        _mapi_long(PID_TAG_ATTACH_METHOD, ATTACH_BY_VALUE),
        _mapi_unicode(PID_TAG_ATTACH_LONG_FILENAME, name),
        _mapi_unicode(PID_TAG_DISPLAY_NAME, name),
    ]
    if extension:
        props.append(_mapi_unicode(PID_TAG_ATTACH_EXTENSION, extension))
    return struct.pack("<I", len(props)) + b"".join(props)


def tnef_stream(
    files: Sequence[TnefFile],
    *,
    message_class: str = MESSAGE_CLASS,
    codepage: int = OEM_CODEPAGE,
    key: int = LEGACY_KEY,
) -> bytes:
    """A complete TNEF stream holding ``files`` in order.

    A reader treats fewer than 13 bytes left as the end of the stream, so a file written
    without MAPI properties should hold at least two bytes (its attAttachData is then last).
    """
    out = [struct.pack("<IH", TNEF_SIGNATURE, key)]
    out.append(attribute(LEVEL_MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", TNEF_VERSION)))
    out.append(attribute(LEVEL_MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", codepage, 0)))
    out.append(attribute(LEVEL_MESSAGE, ATT_MESSAGE_CLASS, message_class.encode("ascii") + b"\x00"))
    for file in files:
        title = file.title if file.title is not None else short_name(file.name)
        rend = struct.pack("<HIHHI", ATTACH_TYPE_FILE, RENDER_POSITION_NONE, 32, 32, 0)
        out.append(attribute(LEVEL_ATTACHMENT, ATT_ATTACH_REND_DATA, rend))
        out.append(attribute(LEVEL_ATTACHMENT, ATT_ATTACH_TITLE, title.encode("cp1252") + b"\x00"))
        out.append(attribute(LEVEL_ATTACHMENT, ATT_ATTACH_DATA, file.data))
        if file.mapi_props:
            out.append(attribute(LEVEL_ATTACHMENT, ATT_ATTACHMENT, attachment_props(file.name)))
    return b"".join(out)
