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
import collections
import logging
from collections.abc import Callable

from bot.batching import GroupCommit
from bot.core import intake, spool
from bot.core.desk import Desk
from bot.core.errors import Contended, Rejected
from bot.core.intake import IngestResult, Parsed
from bot.core.spool import Arrival, SpoolEntry
from bot.inbound.mailparse import parse_email
from bot.inbound.pageparse import parse_page_message
from bot.inbound.smsparse import parse_sms
from bot.messages import InboundMessage
from bot.store.db import Database

log = logging.getLogger(__name__)

MAX_ROWS_PER_COMMIT = 256
MAX_BYTES_PER_COMMIT = 64 * 1024 * 1024
PARSE_IN_THREAD_BYTES = 1_000_000  # parse big mail off the event loop
BATCH = 64  # entries read and parsed per pass
HOLD_SECONDS = 0.02  # an intake transaction takes no more messages after holding the lock this long
POLL_SECONDS = 0.5  # other processes' doors cannot wake us: look this often
GATHER_SECONDS = 0.05  # after a wake-up, wait this long for more arrivals to ingest together
FLOOD_PER_SECOND = 50  # intake above this pace counts as a flood
MAX_ATTEMPTS = 5  # our own failures on one entry before it is held for a person

Parser = Callable[[SpoolEntry], InboundMessage]


class SpoolWriter:
    """All a door needs: ``write(arrival)`` returns once the arrival is committed. Arrivals of
    several sessions share commits (group commit); each commit wakes the intake worker."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._commits: GroupCommit[Arrival] = GroupCommit(
            lambda arrivals: spool.record(db, arrivals), name="spool-commit",
            max_items=MAX_ROWS_PER_COMMIT, max_bytes=MAX_BYTES_PER_COMMIT,
            size=lambda arrival: len(arrival.data))

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._commits.after_write(callback)

    async def write(self, arrival: Arrival) -> None:
        await self._commits.submit(arrival)


class IntakeWorker:
    """Spool → parse → ingest, woken by doors of this process and polling for others."""

    def __init__(self, *, desk: Desk, our_domain: str | None = None, batch: int = BATCH,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.desk, self.db, self.clock = desk, desk.db, desk.clock
        self.our_domain = our_domain  # where our Message-IDs live: bounces are matched by them
        self.batch, self.poll_seconds = batch, poll_seconds
        self.parsers: dict[str, Parser] = {"email": self._parse_email, "sms": _parse_sms, "web": _parse_page}
        self._wake = asyncio.Event()
        self._stopping = False
        self._recent: collections.deque[tuple[float, int]] = collections.deque()  # (when, entries)

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
                found, progress = await self._pass([])
            except Exception:  # process boundary: the database may be back in a moment
                log.exception("intake pass failed (attempt %s)", failures + 1)
                found, progress = 1, 0
            if progress:
                failures = 0
                continue
            # Nothing queued: wait for a door. Entries that could not be taken (our failure, or
            # another worker has them): try again after a pause that grows, not at once.
            failures = failures + 1 if found else 0
            delay = min(5.0, 0.2 * 2 ** failures) if failures else self.poll_seconds
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                continue
            # Woken by a door's commit: let a few more arrive first. One ingest transaction
            # per message would hold the one write connection (SQLite) most of the time and
            # make the doors' commits — what senders wait for — queue behind it.
            await asyncio.sleep(GATHER_SECONDS)

    def busy(self) -> bool:
        """True during a flood: more than ``FLOOD_PER_SECOND`` entries taken in the last second.
        Deliveries give way to intake then (see ``Dispatcher.give_way``)."""
        since = asyncio.get_running_loop().time() - 1.0
        while self._recent and self._recent[0][0] < since:
            self._recent.popleft()
        return sum(n for _, n in self._recent) > FLOOD_PER_SECOND

    async def drain(self, *, timeout: float = 60.0) -> list[tuple[SpoolEntry, IngestResult | None]]:
        """Ingest everything queued now, then return what happened to each entry."""
        outcomes: list[tuple[SpoolEntry, IngestResult | None]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            found, progress = await self._pass(outcomes)
            if not found:
                break
            if not progress:
                await asyncio.sleep(0.2)
        return outcomes

    async def _pass(self, outcomes: list[tuple[SpoolEntry, IngestResult | None]]) -> tuple[int, int]:
        """One batch: (entries found queued, entries this pass took out of the queue)."""
        entries = await spool.queued(self.db, limit=self.batch)
        if not entries:
            return 0, 0
        self._recent.append((asyncio.get_running_loop().time(), len(entries)))
        items = []
        for entry in entries:
            items.append(await self._parse(entry))
            await asyncio.sleep(0)  # parsing is CPU work: let the doors answer in between
        results: list[IngestResult | None] = []
        try:
            while len(results) < len(items):
                # Short transactions: SQLite has one writer, and the doors' commits queue
                # behind ours; a long one would make every sender wait for all of it.
                results += await intake.ingest(self.desk, items[len(results):],
                                               hold_seconds=HOLD_SECONDS)
        except Exception as exc:  # one of them is bad: find which, alone
            log.info("intake batch of %s failed (%s: %s); ingesting one by one",
                     len(items) - len(results), type(exc).__name__, exc)
            stuck: set[str] = set()  # senders whose earlier message must go first
            for item in items[len(results):]:
                result = None if item.entry.sender_key in stuck else await self._one(item)
                if result is None or result.detail == intake.TAKEN_ELSEWHERE:
                    stuck.add(item.entry.sender_key)
                results.append(result)
        outcomes.extend(zip(entries, results))
        for entry, result in zip(entries, results):
            if result is not None:
                log.debug("ingested spool=%s outcome=%s ticket=%s", entry.id, result.outcome,
                          result.ticket_number)
        return len(entries), sum(1 for r in results
                                 if r is not None and r.detail != intake.TAKEN_ELSEWHERE)

    async def _one(self, item: Parsed) -> IngestResult | None:
        try:
            return (await intake.ingest(self.desk, [item]))[0]
        except Rejected as exc:
            # Retrying cannot fix it: keep the bytes for a person instead of trying forever.
            return await intake.hold(self.desk, item, reason="error", detail=str(exc))
        except Exception as exc:  # ours: leave it queued and try again, a few times
            if isinstance(exc, Contended):  # another writer, not a fault: no traceback
                log.info("ingest collided spool=%s: %s", item.entry.id, exc)
            else:
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
                           envelope_sender=entry.envelope_from,
                           # No envelope (a mailbox's message): the parser reads the headers.
                           recipients=entry.envelope_to or None,
                           door=entry.door, our_message_id_domain=self.our_domain)


def _parse_sms(entry: SpoolEntry) -> InboundMessage:
    return parse_sms(entry.data, received_at=entry.received_at, door=entry.door)


def _parse_page(entry: SpoolEntry) -> InboundMessage:
    return parse_page_message(entry.data, source_id=entry.source_id, received_at=entry.received_at,
                              door=entry.door)
