"""The one door pipeline: doors write the spool, the intake worker turns it into tickets.

``SpoolWriter`` is all a door needs: it commits arrivals (several sessions' arrivals share one
commit, each caller still waits for its own row to be durable) and wakes the worker.
``IntakeWorker`` takes queued entries in arrival order, parses each with the parser of its
channel and hands them to ``core.intake.ingest`` in batches — one transaction per batch, or
per message when one of them fails. What cannot be parsed is quarantined with its bytes.
Must not hold ticket logic (core does) or speak any door's protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.core import intake, spool
from bot.core.desk import Desk
from bot.core.errors import Rejected
from bot.core.intake import IngestResult, Parsed
from bot.core.spool import Arrival, SpoolEntry
from bot.inbound.mailparse import parse_email
from bot.messages import InboundMessage
from bot.store.db import Database

log = logging.getLogger(__name__)

MAX_ROWS_PER_COMMIT = 256
MAX_BYTES_PER_COMMIT = 64 * 1024 * 1024
PARSE_IN_THREAD_BYTES = 1_000_000  # parse big mail off the event loop
BATCH = 64  # entries per intake transaction
POLL_SECONDS = 0.5  # other processes' doors cannot wake us: look this often
MAX_ATTEMPTS = 5  # our own failures on one entry before it is held for a person

Parser = Callable[[SpoolEntry], InboundMessage]


class SpoolWriter:
    """Group commit for doors: while one commit runs, arrivals queue for the next one."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[Arrival, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._on_commit: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._on_commit.append(callback)

    async def write(self, arrival: Arrival) -> None:
        """Return once ``arrival`` is committed; raise if it could not be."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((arrival, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="spool-commit")
        await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch = self._take_batch()
                try:
                    await spool.record(self.db, [arrival for arrival, _ in batch])
                except Exception as exc:  # every waiting door answers "try again later"
                    log.error("spool commit failed rows=%s error=%s: %s", len(batch), type(exc).__name__, exc)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
                for callback in self._on_commit:
                    callback()
        finally:
            self._flusher = None

    def _take_batch(self) -> list[tuple[Arrival, asyncio.Future[None]]]:
        size = count = 0
        for count, (arrival, _) in enumerate(self._waiting, start=1):
            size += len(arrival.data)
            if count >= MAX_ROWS_PER_COMMIT or size >= MAX_BYTES_PER_COMMIT:
                break
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        return batch


class IntakeWorker:
    """Spool → parse → ingest, woken by doors of this process and polling for others."""

    def __init__(self, *, desk: Desk, our_domain: str | None = None, batch: int = BATCH,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.desk, self.db, self.clock = desk, desk.db, desk.clock
        self.our_domain = our_domain  # where our Message-IDs live: bounces are matched by them
        self.batch, self.poll_seconds = batch, poll_seconds
        self.parsers: dict[str, Parser] = {"email": self._parse_email}
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Until ``stop()``: take what is queued, then sleep until woken or the next poll."""
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                done = await self.pass_once()
                failures = 0
            except Exception:  # process boundary: the database may be back in a moment
                failures += 1
                log.exception("intake pass failed (attempt %s)", failures)
                done = 0
            if done and not failures:
                continue
            delay = min(5.0, 0.2 * 2 ** failures) if failures else self.poll_seconds
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def drain(self, *, timeout: float = 60.0) -> list[tuple[SpoolEntry, IngestResult | None]]:
        """Ingest everything queued now, then return what happened to each entry."""
        outcomes: list[tuple[SpoolEntry, IngestResult | None]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            taken = await self._pass(outcomes)
            if not taken:
                break
        return outcomes

    async def pass_once(self) -> int:
        """One batch; returns how many entries it took (0: the queue is empty)."""
        return await self._pass([])

    async def _pass(self, outcomes: list[tuple[SpoolEntry, IngestResult | None]]) -> int:
        entries = await spool.queued(self.db, limit=self.batch)
        if not entries:
            return 0
        items = [await self._parse(entry) for entry in entries]
        try:
            results: list[IngestResult | None] = list(await intake.ingest(self.desk, items))
        except Exception as exc:  # one of them is bad: find which, alone
            log.info("intake batch of %s failed (%s: %s); ingesting one by one",
                     len(items), type(exc).__name__, exc)
            results = []
            stuck: set[str] = set()  # senders whose earlier message must go first
            for item in items:
                result = None if item.entry.sender_key in stuck else await self._one(item)
                if result is None:
                    stuck.add(item.entry.sender_key)
                results.append(result)
        outcomes.extend(zip(entries, results))
        for entry, result in zip(entries, results):
            if result is not None:
                log.debug("ingested spool=%s outcome=%s ticket=%s", entry.id, result.outcome,
                          result.ticket_number)
        return len(entries)

    async def _one(self, item: Parsed) -> IngestResult | None:
        try:
            return (await intake.ingest(self.desk, [item]))[0]
        except Rejected as exc:
            # Retrying cannot fix it: keep the bytes for a person instead of trying forever.
            return await intake.hold(self.desk, item, reason="error", detail=str(exc))
        except Exception as exc:  # ours: leave it queued and try again, a few times
            log.exception("ingest failed spool=%s door=%s", item.entry.id, item.entry.door)
            attempts = await spool.note_failure(self.db, item.entry.id, f"{type(exc).__name__}: {exc}")
            if attempts >= MAX_ATTEMPTS:
                return await intake.hold(self.desk, item, reason="error",
                                         detail=f"failed {attempts} times: {type(exc).__name__}: {exc}")
            return None

    async def _parse(self, entry: SpoolEntry) -> Parsed:
        parser = self.parsers.get(entry.channel)
        if parser is None:
            return Parsed(entry, None, error=f"no parser for channel {entry.channel!r}")
        try:
            if len(entry.data) > PARSE_IN_THREAD_BYTES:
                return Parsed(entry, await asyncio.to_thread(parser, entry))
            return Parsed(entry, parser(entry))
        except Rejected as exc:  # the parser's own verdict (MailParseError)
            return Parsed(entry, None, error=str(exc))
        except Exception as exc:  # a parser bug must cost one message, never the queue
            log.exception("parser crashed spool=%s size=%s", entry.id, len(entry.data))
            return Parsed(entry, None, error=f"the parser failed: {type(exc).__name__}: {exc}")

    def _parse_email(self, entry: SpoolEntry) -> InboundMessage:
        return parse_email(entry.data, received_at=entry.received_at,
                           envelope_sender=entry.envelope_from, recipients=entry.envelope_to,
                           door=entry.door, our_message_id_domain=self.our_domain)
