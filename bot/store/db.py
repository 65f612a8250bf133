"""Engines, sessions and the unit of work.

``Database.transaction()`` is the only way to write: one transaction per unit of work, and
the dispatcher is woken after a commit that enqueued outbox rows. Must not hold module-level
engines or sessions (``app.py`` makes one ``Database`` and passes it down), and must not know
what a ticket is.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.store.sqlite_driver import one_hop_url

log = logging.getLogger(__name__)

OUTBOX_FLAG = "outbox_enqueued"


def _sqlite_pragmas(engine: AsyncEngine, *, immediate: bool) -> None:
    """WAL so readers never block the writer; FULL sync so a commit survives power loss too."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions get in the way).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # A writer takes the write lock up front: a deferred transaction that later upgrades
        # to a writer fails at once with SQLITE_BUSY when another process committed meanwhile.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """One database: a write path and a read path (the same pool on PostgreSQL)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._on_outbox: list[Callable[[], None]] = []
        if self.is_sqlite:
            url = one_hop_url(url)
            # SQLite has one writer; a one-connection write pool queues our own writers in
            # order instead of letting them fight over the file lock.
            self.write_engine = create_async_engine(url, echo=echo, pool_size=1, max_overflow=0,
                                                    pool_timeout=60)
            self.read_engine = create_async_engine(url, echo=echo)
            _sqlite_pragmas(self.write_engine, immediate=True)
            _sqlite_pragmas(self.read_engine, immediate=False)
        else:
            self.write_engine = create_async_engine(url, echo=echo, pool_pre_ping=True)
            self.read_engine = self.write_engine
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    def on_outbox_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each commit that enqueued outbox rows (wakes the dispatcher)."""
        self._on_outbox.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self._writer() as session:
            async with session.begin():
                yield session
            enqueued = session.info.pop(OUTBOX_FLAG, False)
        if enqueued:
            for callback in self._on_outbox:
                callback()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; loaded rows stay usable after the block ends."""
        async with self._reader() as session:
            async with session.begin():
                yield session

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def mark_outbox_enqueued(session: AsyncSession) -> None:
    session.info[OUTBOX_FLAG] = True
