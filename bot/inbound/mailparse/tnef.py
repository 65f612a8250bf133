"""Adapter helper for ``mailparse``: Outlook's winmail.dat (application/ms-tnef) → its files.

tnefparse decodes the stream, but only after a walk here that reads it the way tnefparse will
and charges every loop and copy to a budget proportional to its size: tnefparse trusts the
counts it reads, and one hostile count makes it loop billions of times. When the stream is
too costly, undecodable or holds no files, the caller keeps the .dat itself. Must not patch
tnefparse or let its exceptions out. No ticket logic here.
"""

from __future__ import annotations

from dataclasses import dataclass

import tnefparse

from bot.inbound.mailparse.names import _guess_type, _sanitize_name
from bot.inbound.mailparse.parts import _Walk
from bot.messages import Attachment

# Media types of winmail.dat (an application/octet-stream part named winmail.dat counts too).
_TNEF_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}

# TNEF layout (MS-OXTNEF §2.1.3): signature, key, then attributes of
# level(1) id(2) type(2) length(4) data(length) checksum(2); ids below hold MAPI property lists.
_TNEF_SIGNATURE = 0x223E9F78
_TNEF_MAPI_LISTS = {0x9003, 0x9005}  # attMsgProps, attAttachment
_TNEF_RECIPIENTS = 0x9004  # attRecipTable: a row count, then one MAPI list per row
_TNEF_UNUSED_ID = b"\xff\xff"  # an attribute id tnefparse does not know, so it skips the data
_TNEF_EMBEDDED = 0x3701  # PidTagAttachDataObject: may hold a whole embedded TNEF message
_TNEF_EMBEDDED_SIG = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_MAPI_FIXED_SIZES = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8, 0x0006: 8,
                     0x0007: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}
_MAPI_VARIABLE = {0x001E, 0x001F, 0x000D, 0x0102, 0x0000}
_TNEF_MAX_STEPS = 50_000  # properties and values; real winmail.dat files have a few thousand
_TNEF_MAX_SKIPPED = 64  # tnefparse logs a warning for each property counted past the data's end


class _TnefTooCostly(Exception):
    """A count or length in a TNEF stream asks for more work than the stream can justify."""


@dataclass
class _TnefBudget:
    steps: int
    nbytes: int

    def charge(self, steps: int = 0, nbytes: int = 0) -> None:
        self.steps -= steps
        self.nbytes -= nbytes
        if self.steps < 0 or self.nbytes < 0:
            raise _TnefTooCostly


def _add_tnef_files(data: bytes, walk: _Walk) -> bool:
    """Expand Outlook's winmail.dat into its files; False keeps the .dat itself."""
    prepared = _tnef_prepare(data)
    if prepared is None:
        walk.defect("winmail.dat too costly to decode; kept as is")
        return False
    try:
        tnef = tnefparse.TNEF(prepared)
        files = [(a.long_filename() or a.name, a.data) for a in tnef.attachments]
    except Exception as exc:  # noqa: BLE001 - third-party decoder on hostile bytes; keep the file
        walk.defect(f"winmail.dat not decodable ({type(exc).__name__}); kept as is")
        return False
    files = [(name, content) for name, content in files if isinstance(content, bytes)]
    if not files:
        # Truncated or body-only TNEF: nothing recovered, so the original must stay visible.
        walk.defect("winmail.dat held no files; kept as is")
        return False
    for name, content in files:
        index = len(walk.attachments) + 1
        name = _sanitize_name(str(name or ""), "application/octet-stream", index)
        walk.attachments.append(Attachment(name=name, content_type=_guess_type(name), data=content))
    return True


def _tnef_prepare(data: bytes) -> bytes | None:
    """The TNEF bytes safe to hand to tnefparse, or None when decoding would cost too much.

    tnefparse trusts the counts it reads: a "number of values" of 0xFFFFFFFF in a 3 KB
    winmail.dat makes it loop billions of times and exhaust memory. So the stream is walked
    here first, the way tnefparse will walk it, charging every loop and copy to a budget
    proportional to its size. The recipient table, which we do not use and whose rows
    tnefparse resumes at offsets that depend on its decoding errors, is renamed so tnefparse
    skips it; an embedded message that has one is refused.
    """
    budget = _TnefBudget(steps=_TNEF_MAX_STEPS, nbytes=8 * len(data) + 32 * 1024 * 1024)
    work: list[bytes] = []
    try:
        recipient_tables = _tnef_walk_stream(data, budget, work, top=True)
        while work:
            _tnef_walk_stream(work.pop(), budget, work, top=False)
    except _TnefTooCostly:
        return None
    if not recipient_tables:
        return data
    patched = bytearray(data)
    for offset in recipient_tables:
        patched[offset + 1 : offset + 3] = _TNEF_UNUSED_ID
    return bytes(patched)


def _u32(data: bytes, offset: int) -> int | None:
    return int.from_bytes(data[offset : offset + 4], "little") if offset + 4 <= len(data) else None


def _tnef_walk_stream(data: bytes, budget: _TnefBudget, work: list[bytes], *, top: bool) -> list[int]:
    """Offsets of the recipient-table attributes; embedded MAPI streams are queued on ``work``."""
    recipient_tables: list[int] = []
    if _u32(data, 0) != _TNEF_SIGNATURE:
        return recipient_tables  # tnefparse rejects it at once
    offset = 6
    while offset + 12 < len(data):
        remaining = len(data) - offset
        budget.charge(1, remaining)  # tnefparse slices the rest of the stream for every attribute
        name = int.from_bytes(data[offset + 1 : offset + 3], "little")
        length = min(remaining, (_u32(data, offset + 5) or 0) + 11)
        body = data[offset + 9 : offset + length - 2]
        if name in _TNEF_MAPI_LISTS:
            _tnef_walk_mapi(body, budget, work)
        elif name == _TNEF_RECIPIENTS:
            if not top:
                raise _TnefTooCostly  # inside an embedded message we cannot rename it
            recipient_tables.append(offset)
        offset += length
    return recipient_tables


def _tnef_walk_mapi(data: bytes, budget: _TnefBudget, work: list[bytes]) -> None:
    """Mirror of tnefparse.mapi.decode_mapi with the same offsets. Where tnefparse would stop
    on a decoding error this walk goes on, which costs more budget, never less."""
    count = _u32(data, 0)
    if count is None:
        return
    budget.charge(count)
    offset = 4
    size = len(data)
    for index in range(count):
        if offset >= size:
            if count - index > _TNEF_MAX_SKIPPED:
                raise _TnefTooCostly
            break
        if offset + 4 > size:
            return
        attr_type = int.from_bytes(data[offset : offset + 2], "little")
        attr_name = int.from_bytes(data[offset + 2 : offset + 4], "little")
        offset += 4
        if attr_name >= 0x8000:  # named property: GUID, kind, then an id or a name
            kind = _u32(data, offset + 16)
            if kind is None:
                return
            offset += 20
            if kind == 0:
                offset += 4
            else:
                name_len = _u32(data, offset)
                if name_len is None:
                    return
                name_len += -name_len % 4
                budget.charge(0, max(0, min(name_len, size - offset - 4)) * 2)
                offset += 4 + name_len
        values = None
        if attr_type & 0x1000:
            attr_type ^= 0x1000
            values = _u32(data, offset)
            if values is None:
                return
            offset += 4
            budget.charge(values)
        for _ in range(values or 1):
            if attr_type in _MAPI_FIXED_SIZES:
                offset += _MAPI_FIXED_SIZES[attr_type]
                continue
            if attr_type not in _MAPI_VARIABLE:
                return  # tnefparse raises on an unknown type and keeps what it has
            items = 1
            if not values:
                items = _u32(data, offset)
                if items is None:
                    return
                offset += 4
                budget.charge(items)
            for _ in range(items):
                length = _u32(data, offset)
                if length is None:
                    return
                length += -length % 4
                offset += 4
                item = data[offset : offset + length]
                budget.charge(0, 2 * len(item))  # the copy, and its decoded text
                if attr_name == _TNEF_EMBEDDED and item.startswith(_TNEF_EMBEDDED_SIG):
                    work.append(item[len(_TNEF_EMBEDDED_SIG) :])
                offset += length
        if (values or 1) % 2 and attr_type in (0x0002, 0x000B):
            offset += 2
