"""Group commit: items that arrive while one batch is being written share the next write.

Each caller still waits for its own item to be written (or for the write's error), so
"durable before acknowledged" holds item by item, while a busy moment costs one transaction
(one disk flush) per batch instead of one per item. An idle moment costs nothing extra: the
first item is written at once. Knows nothing of what it writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class WriterStopped(RuntimeError):
    """The writer was cancelled (shutting down) before it wrote the item: not written."""


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], Awaitable[None]], *, name: str,
                 max_items: int = 256, max_bytes: int = 64 * 1024 * 1024,
                 size: Callable[[T], int] = lambda _: 0) -> None:
        self._write, self.name = write, name
        self.max_items, self.max_bytes, self._size = max_items, max_bytes, size
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._after: list[Callable[[], None]] = []

    def after_write(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each successful write."""
        self._after.append(callback)

    async def submit(self, item: T) -> None:
        """Return once ``item`` is written; raise what the write raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name=self.name)
        await future

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                batch = self._take()
                try:
                    await self._write([item for item, _ in batch])
                except Exception as exc:  # every waiting caller hears of it and decides
                    log.error("%s: writing %s item(s) failed: %s: %s", self.name, len(batch),
                              type(exc).__name__, exc)
                    _settle(batch, exc)
                    continue
                _settle(batch, None)
                for callback in self._after:
                    try:
                        callback()
                    except Exception:  # a waker's trouble must not stall the writers
                        log.exception("%s: after-write callback failed", self.name)
        finally:
            self._writer = None
            # Cancelled mid-write (shutdown): nobody may wait forever for an answer.
            gone = WriterStopped(f"{self.name} stopped before writing this")
            _settle(batch, gone)
            _settle(self._waiting, gone)
            self._waiting = []

    def _take(self) -> list[tuple[T, asyncio.Future[None]]]:
        size = count = 0
        for count, (item, _) in enumerate(self._waiting, start=1):
            size += self._size(item)
            if count >= self.max_items or size >= self.max_bytes:
                break
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        return batch


def _settle(batch: list[tuple[T, asyncio.Future[None]]], error: BaseException | None) -> None:
    for _, future in batch:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
