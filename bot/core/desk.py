"""``Desk``: what every core operation needs besides its own arguments.

Built once in ``app.py`` and passed to ``ingest``, staff actions and the scheduler. Plain
references only: no behaviour, no I/O, nothing that renders (senders do that).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import Clock
from bot.config import Settings
from bot.store.blobstore import BlobStore
from bot.store.db import Database


@dataclass(frozen=True)
class Desk:
    db: Database
    settings: Settings
    clock: Clock
    files: BlobStore = field(default_factory=BlobStore)  # attachment bytes (database or directory)
