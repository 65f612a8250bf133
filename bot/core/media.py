"""MMS media: pictures and files that came with a text, still on the provider's servers until a
fetcher brings their bytes in.

Named reads and writes: which attachments wait, and keeping (or giving up on) their bytes —
stored once per content hash like every attachment, withheld when over
``attachments.max_bytes_per_file``, and then shown in the card's thread (a ``ticket.file``
intent). No network I/O here (the fetcher in ``inbound`` does it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.core import filetypes, intents
from bot.store import models as m
from bot.store.blobstore import BlobStore
from bot.store.db import Database


@dataclass(frozen=True)
class WaitingMedia:
    attachment_id: int
    url: str
    name: str


async def waiting(db: Database, *, limit: int = 20) -> list[WaitingMedia]:
    async with db.reading() as s:
        rows = (await s.execute(select(m.AttachmentRow.id, m.AttachmentRow.source_url, m.AttachmentRow.name)
                                .where(m.AttachmentRow.source_url.is_not(None))
                                .order_by(m.AttachmentRow.id).limit(limit))).all()
        return [WaitingMedia(r.id, r.source_url, r.name) for r in rows]


async def keep(db: Database, attachment_id: int, data: bytes, *, content_type: str | None,
               max_bytes: int, now: datetime, files: BlobStore | None = None) -> None:
    """The bytes arrived: keep them (or only their size, over the limit), and show them in
    the card's thread like any customer's file."""
    async with db.transaction() as s:
        row = await s.get(m.AttachmentRow, attachment_id)
        if row is None or row.source_url is None:
            return  # another worker kept them first
        row.source_url = None
        row.size = len(data)
        if content_type:
            row.content_type = content_type.split(";")[0].strip()[:255]
        if len(data) > max_bytes:
            row.withheld = True
            return
        digest = hashlib.sha256(data).hexdigest()
        await (files or BlobStore()).put(s, [(digest, data)])
        row.sha256 = digest
        row.sniffed_type = filetypes.sniff(data)
        ticket_id = await s.scalar(select(m.Message.ticket_id).where(m.Message.id == row.message_id))
        await intents.post_files(s, ticket_id=ticket_id, files=[row], now=now)


async def give_up(db: Database, attachment_id: int, reason: str, *, now: datetime) -> None:
    """The bytes cannot be had (gone, refused): the attachment stays as a name, withheld."""
    async with db.transaction() as s:
        row = await s.get(m.AttachmentRow, attachment_id)
        if row is None or row.source_url is None:
            return
        message = await s.get_one(m.Message, row.message_id)
        row.source_url = None
        row.withheld = True
        s.add(m.Event(ticket_id=message.ticket_id, kind="media_lost", actor="system",
                      data={"attachment": row.id, "name": row.name, "reason": reason[:500]}, created_at=now))
