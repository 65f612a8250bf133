"""One holder at a time across processes: a named PostgreSQL advisory lock.

For work that must run in exactly one process of many — an IMAP account's poller, a scheduler
pass — whichever process holds the lock does it. The lock is a session lock on a connection of
its own (not the engine's pool, whose statement timeout would cut a wait short), so the server
releases it the moment that connection dies: a crashed or partitioned holder's turn passes to
another process within ``retry_seconds``. On SQLite there is one process: the lock is always
held. Must not decide what the holder does, nor hold a lock across processes on SQLite.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import make_url

from bot.store.notify import until_first

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (advisory locks are numbered)."""
    return int.from_bytes(hashlib.sha256(f"deskbell:{name}".encode()).digest()[:8], "big", signed=True)


class Leadership:
    """``run(work)`` runs ``work`` whenever this process holds the lock ``name``, and cancels
    it when the lock is lost; until ``stop()``."""

    def __init__(self, url: str, name: str, *, retry_seconds: float = 5.0) -> None:
        self.url, self.name, self.retry_seconds = url, name, retry_seconds
        self.sqlite = url.startswith("sqlite")
        self.holding = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        if self.sqlite:
            self.holding.set()
            await until_first(work(), self._stopping.wait())
            return
        import asyncpg  # the postgres extra

        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stopping.is_set():
            try:
                conn = await asyncpg.connect(dsn, timeout=10)
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                log.warning("leader %s: cannot connect (%s)", self.name, type(exc).__name__)
                await self._pause()
                continue
            try:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(self.name)):
                    await self._lead(conn, work)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("leader %s: connection lost (%s)", self.name, type(exc).__name__)
            finally:
                self.holding.clear()
                if not conn.is_closed():
                    await conn.close(timeout=2)  # releases the lock if we held it
            await self._pause()

    async def _lead(self, conn: object, work: Callable[[], Awaitable[None]]) -> None:
        log.info("leader %s: this process holds it", self.name)
        self.holding.set()
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())  # type: ignore[attr-defined]

        async def watch() -> None:
            # A silent network partition does not end the connection: ask now and then.
            while not lost.is_set():
                await asyncio.sleep(self.retry_seconds)
                try:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.retry_seconds)  # type: ignore[attr-defined]
                except Exception:  # noqa: BLE001 — any failure means we may not hold it any more
                    lost.set()

        await until_first(work(), lost.wait(), watch(), self._stopping.wait())

    async def _pause(self) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), self.retry_seconds)
        except asyncio.TimeoutError:
            pass
