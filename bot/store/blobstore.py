"""Attachment bytes, stored once per SHA-256: in the ``blobs`` table (the default; every process
and host of a PostgreSQL deployment sees them) or as files under a directory
(``attachments.store: directory``), ``<directory>/<ab>/<cd>/<sha256>``.

A file is written (to a temporary name, flushed, then renamed) before the transaction that
records its row commits: a crash in between leaves at most an unreferenced file, never a row
without its bytes. Content addressing makes a rewrite of the same file harmless, and the
hash is checked again on every read. Persistence only: no decisions about which files to
keep (core does), no HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m
from bot.store import upsert

_HEX = frozenset("0123456789abcdef")


class BlobStore:
    def __init__(self, kind: str = "database", directory: str | os.PathLike[str] = "attachments/") -> None:
        self.kind = kind
        self.directory = Path(directory)

    def path(self, sha256: str) -> Path:
        # The name is our own hex digest, never a customer's file name: nothing can climb out.
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise ValueError("not a SHA-256 hex digest")
        return self.directory / sha256[:2] / sha256[2:4] / sha256

    async def put(self, s: AsyncSession, files: Iterable[tuple[str, bytes]]) -> None:
        """Keep each (sha256, bytes) once, in the caller's transaction."""
        rows = dict(files)
        if not rows:
            return
        if self.kind == "directory":
            await asyncio.to_thread(self._write, rows)
            await upsert.blobs(s, ((digest, b"") for digest in rows), sizes={d: len(b) for d, b in rows.items()})
        else:
            await upsert.blobs(s, rows.items())

    def _write(self, rows: dict[str, bytes]) -> None:
        for digest, data in rows.items():
            target = self.path(digest)
            if target.exists() and target.stat().st_size == len(data):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp.name, target)

    async def read(self, s: AsyncSession, sha256: str) -> bytes | None:
        """The bytes of ``sha256`` (wherever the row says they are), None when they are gone or
        no longer hash to their name."""
        blob = await s.scalar(select(m.Blob).where(m.Blob.sha256 == sha256))
        if blob is None:
            return None
        if blob.data or blob.size == 0:
            data = blob.data or b""
        else:
            try:
                data = await asyncio.to_thread(self.path(sha256).read_bytes)
            except OSError:
                return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None
