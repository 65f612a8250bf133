"""Wake-ups across processes on PostgreSQL: ``NOTIFY`` on commit, ``LISTEN`` in the workers.

A door in one process and the intake worker in another would otherwise meet only at the
worker's next poll; a staff action in a web process and the dispatcher in a worker likewise.
``notify()`` adds a ``NOTIFY`` to the caller's transaction (PostgreSQL delivers it only if the
transaction commits); ``Listener`` holds one connection of its own that listens and calls the
given callbacks. Polling stays as the fallback: a lost notification (the listener reconnecting)
costs at most one poll interval, never a message. SQLite has one process: nothing to do there.
Must not carry data in the notification (a wake-up only) nor decide what a wake-up means.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

SPOOL = "deskbell_spool"  # a door committed arrivals: intake has work
OUTBOX = "deskbell_outbox"  # a transaction enqueued intents: the dispatcher has work

_STATEMENTS = {channel: text(f"NOTIFY {channel}") for channel in (SPOOL, OUTBOX)}


async def notify(s: AsyncSession, channel: str) -> None:
    """Wake the listeners of ``channel`` when the caller's transaction commits (PostgreSQL)."""
    if s.bind.dialect.name == "postgresql":
        await s.execute(_STATEMENTS[channel])


class Listener:
    """One LISTEN connection; reconnects with backoff when the server goes away."""

    def __init__(self, url: str, callbacks: Mapping[str, Callable[[], None]]) -> None:
        # asyncpg wants a plain DSN: no "+asyncpg" driver suffix.
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.callbacks = dict(callbacks)
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        import asyncpg  # the postgres extra; only PostgreSQL deployments get here

        failures = 0
        while not self._stopping.is_set():
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** failures) * random.uniform(0.5, 1.0)
                log.warning("listen: cannot connect (%s); again in %.1f s", type(exc).__name__, delay)
                await self._pause(delay)
                continue
            try:
                conn.add_termination_listener(lambda _conn: lost.set())
                for channel, callback in self.callbacks.items():
                    await conn.add_listener(channel, _caller(callback))
                failures = 0
                self.connected.set()
                # Everything that happened while we were away: look now rather than at the next poll.
                for callback in self.callbacks.values():
                    callback()
                await until_first(lost.wait(), self._stopping.wait())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                failures += 1
                log.warning("listen: connection lost (%s)", type(exc).__name__)
            finally:
                self.connected.clear()
                if not conn.is_closed():
                    await conn.close(timeout=2)
            if failures and not self._stopping.is_set():  # never a tight reconnect loop
                await self._pause(min(30.0, 0.5 * 2 ** failures) * random.uniform(0.5, 1.0))

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass


def _caller(callback: Callable[[], None]) -> Callable[..., None]:
    def on_notification(_conn: object, _pid: int, _channel: str, _payload: str) -> None:
        callback()
    return on_notification


async def until_first(*awaitables: Awaitable[object]) -> None:
    """Run them together until the first ends; cancel the rest (and re-raise its error)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
