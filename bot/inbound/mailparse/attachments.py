"""Adapter helper for ``mailparse``: parts that are not body text → ``Attachment`` records.

A leaf keeps its transfer-decoded bytes (inline images are marked), winmail.dat is expanded
through ``tnef`` or kept as is, an attached message becomes .eml bytes with its headers
written back as they came, and delivery-status blocks become text. Must not decide which
parts are body text (``render`` does) or look inside files other than winmail.dat. No ticket
logic here.
"""

from __future__ import annotations

import io
from email.generator import BytesGenerator
from email.message import Message
from email.policy import compat32

from bot.inbound.mailparse.headers import _decoded_header, _values
from bot.inbound.mailparse.names import _filename, _sanitize_name
from bot.inbound.mailparse.parts import _HEADER_ERRORS, _payload_bytes, _Walk
from bot.inbound.mailparse.text import _collapse
from bot.inbound.mailparse.tnef import _TNEF_TYPES, _add_tnef_files
from bot.messages import Attachment


def _add_leaf_attachment(
    part: Message, ctype: str, disposition: str | None, filename: str | None, walk: _Walk
) -> None:
    data = _payload_bytes(part, walk)
    index = len(walk.attachments) + 1
    name = _sanitize_name(filename, ctype, index)
    is_tnef = ctype in _TNEF_TYPES or (
        ctype == "application/octet-stream" and (filename or "").lower() == "winmail.dat"
    )
    if is_tnef and _add_tnef_files(data, walk):
        return
    # Inline images are the ones a client shows in the text (RFC 2183 inline, or referenced by
    # Content-ID from an HTML part of multipart/related).
    inline = ctype.startswith("image/") and (
        disposition == "inline" or (disposition is None and bool(_values(part, "Content-ID")))
    )
    content_id = _values(part, "Content-ID")
    cid = _collapse(content_id[0]).strip().strip("<>")[:998] if content_id else None
    walk.attachments.append(Attachment(name=name, content_type=ctype, data=data, inline=inline,
                                       content_id=cid or None))


def _add_message_attachment(part: Message, ctype: str, walk: _Walk) -> None:
    """message/rfc822 as .eml bytes; message/delivery-status and friends as text."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    index = len(walk.attachments) + 1
    if ctype == "message/delivery-status" and isinstance(payload, list):
        data = b"\r\n".join(_flatten(block, walk) for block in payload if isinstance(block, Message))
        walk.attachments.append(Attachment(f"attachment-{index}.txt", ctype, data))
        return
    if isinstance(inner, Message):
        data = _flatten(inner, walk)
        subject = _decoded_header(inner, "Subject", walk)
        name = "message.eml"
        if subject:
            name = _sanitize_name(_collapse(subject)[:200] + ".eml", ctype, index)
    else:
        data = _payload_bytes(part, walk)
        name = _sanitize_name(_filename(part, walk), ctype, index)
    walk.attachments.append(Attachment(name=name, content_type=ctype, data=data))


def _flatten(msg: Message, walk: _Walk) -> bytes:
    """Bytes of an attached message. The legacy policy writes headers back as they came."""
    buffer = io.BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, policy=compat32.clone(linesep="\r\n")).flatten(msg)
    except (RecursionError, *_HEADER_ERRORS) as exc:
        walk.defect(f"attached message not re-serialisable ({type(exc).__name__})")
        return b""
    return walk.lifted.restore_bytes(buffer.getvalue())
