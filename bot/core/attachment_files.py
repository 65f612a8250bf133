"""Customers' stored files for the people allowed to have them: their bytes for the Slack
sender, a signed link for a thread post or a text message, and a download for a signed link.

A download is only ever offered as a download: a safe content type (``filetypes``), never the
customer's HTML or SVG. Reads only; no HTTP (the web app serves what this returns), no clock
(``now`` is given).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Settings
from bot.core import file_links, filetypes
from bot.core.desk import Desk
from bot.store import models as m


@dataclass(frozen=True)
class Download:
    name: str
    content_type: str  # safe to serve: an inert type both declared and seen, else octet-stream
    data: bytes


def link_for(settings: Settings, attachment_id: int, *, now: datetime, ttl: timedelta | None = None) -> str | None:
    """A signed link to the file, valid ``ttl`` (default ``attachments.link_ttl_hours``); None
    when ``attachments.link_secret`` is not set."""
    secret = settings.attachments.link_secret.get_secret_value()
    if not secret:
        return None
    return file_links.link(settings.web.public_url, attachment_id, secret=secret, now=now,
                           ttl=ttl or timedelta(hours=settings.attachments.link_ttl_hours))


async def read_bytes(desk: Desk, sha256: str) -> bytes | None:
    async with desk.db.reading() as s:
        return await desk.files.read(s, sha256)


async def download(desk: Desk, attachment_id: str, expires: str, signature: str) -> Download | int:
    """The file a link names, or the HTTP status to answer: 403 for a missing, bad or expired
    signature (checked before anything is looked up), 404 for a well-signed id we do not have."""
    number = file_links.verify(attachment_id, expires, signature, now=desk.clock.now(),
                               secret=desk.settings.attachments.link_secret.get_secret_value())
    if number is None:
        return 403
    async with desk.db.reading() as s:
        row = await s.get(m.AttachmentRow, number)
        data = await desk.files.read(s, row.sha256) if row is not None and row.sha256 else None
    if row is None or data is None:
        return 404
    return Download(name=row.name, content_type=filetypes.download_type(row.content_type, row.sniffed_type),
                    data=data)
