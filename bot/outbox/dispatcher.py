"""The dispatcher: claims due outbox rows and hands each to its channel's sender.

Senders are looked up by channel (``email``, ``sms``, ``slack``); a channel without a sender
(no Slack token yet) is simply not claimed, so its rows wait. Woken at once after a commit
that enqueued rows, otherwise it sleeps until the next row falls due. Must not render or
decide what to send: it only moves rows through ``core.deliveries``' states.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import Protocol

from bot.batching import GroupCommit
from bot.clock import Clock
from bot.core import deliveries as outbox
from bot.core import intents
from bot.core.errors import DeliveryFailed, DeliveryRejected
from bot.core.views import OutboxView
from bot.store.db import Database

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 5.0  # other processes may enqueue without waking us
GIVE_WAY_SECONDS = 1.0  # longest wait for the intake between two rounds of deliveries
BUSY_FLOOR_SECONDS = 0.25


class Sender(Protocol):
    channel: str

    async def send(self, item: OutboxView, refs: dict[str, str]) -> str | outbox.Receipt | None: ...


class Dispatcher:
    def __init__(self, *, db: Database, clock: Clock, senders: Mapping[str, Sender],
                 policy: outbox.RetryPolicy, concurrency: int = 8, lease_seconds: float = 60,
                 notice_channel: str | None = None, give_way: Callable[[], bool] | None = None,
                 rng: random.Random | None = None) -> None:
        self.db, self.clock, self.senders, self.policy = db, clock, dict(senders), policy
        self.concurrency, self.lease_seconds = concurrency, lease_seconds
        self.notice_channel = notice_channel
        self.give_way = give_way  # True while higher-priority work (intake) needs the process
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        self._paused: dict[str, float] = {}  # channel → monotonic end of a 429 pause
        self._results: GroupCommit[outbox.Delivered] = GroupCommit(
            lambda results: outbox.mark_sent(db, results, now=clock.now()), name="outbox-results")

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Until ``stop()``: claim, send, sleep until woken or the next row is due."""
        while not self._stopping:
            await self._give_way()
            try:
                claimed = await self._claim()
            except Exception:  # process boundary: log, keep serving, try again shortly
                log.exception("outbox claim failed")
                claimed = 0
            if claimed:
                continue
            await self._sleep()
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=10)

    async def _give_way(self) -> None:
        """While this process's intake is in a flood, deliveries wait — a second at a time, then
        one round goes out. Turning accepted mail into tickets comes first then (it is what
        makes the mail visible to staff); cards and acknowledgements follow seconds later
        instead of halving the intake's pace, which would keep the senders waiting too."""
        if self.give_way is None or not self.give_way():
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + GIVE_WAY_SECONDS
        while self.give_way() and not self._stopping and loop.time() < until:
            await asyncio.sleep(0.05)

    async def drain(self, *, timeout: float = 30.0) -> None:
        """Send everything that is due now, then return (``deskbell outbox`` and tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            claimed = await self._claim()
            if not claimed and not self._inflight:
                return
            if self._inflight:
                await asyncio.wait(list(self._inflight.values()), return_when=asyncio.FIRST_COMPLETED)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def close(self) -> None:
        """Let senders close what they keep open (pooled relay sessions)."""
        for sender in self.senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                await close()

    def _channels(self) -> set[str]:
        now = self.clock.monotonic()
        return {c for c in self.senders if self._paused.get(c, 0.0) <= now}

    async def _claim(self) -> int:
        room = self.concurrency - len(self._inflight)
        if room <= 0:
            return 0
        self._wake.clear()
        items = await outbox.claim(self.db, now=self.clock.now(), channels=self._channels(),
                                   limit=room, lease_seconds=self.lease_seconds,
                                   exclude=set(self._inflight))
        for item in items:
            task = asyncio.create_task(self._deliver(item), name=f"outbox-{item.id}")
            self._inflight[item.id] = task
            task.add_done_callback(lambda t, i=item.id: self._done(i))
        return len(items)

    def _done(self, item_id: int) -> None:
        self._inflight.pop(item_id, None)
        self._wake.set()

    async def _sleep(self) -> None:
        timeout = IDLE_POLL_SECONDS
        try:
            due = await outbox.next_due(self.db, channels=self._channels())
        except Exception:
            log.exception("outbox next_due failed")
            due = None
        if due is not None:
            # Due already but not claimed (every slot busy): our own sends finishing wake us.
            timeout = max(BUSY_FLOOR_SECONDS, min(timeout, (due - self.clock.now()).total_seconds()))
        # A paused channel (429) becomes claimable again when its pause ends.
        waits = [until - self.clock.monotonic() for until in self._paused.values()]
        timeout = min([timeout, *(w for w in waits if w > 0)])
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout + 0.001)
        except asyncio.TimeoutError:
            pass

    async def _deliver(self, item: OutboxView) -> None:
        try:
            await self._attempt(item)
        except asyncio.CancelledError:
            raise
        except Exception:  # recording the result failed: the lease runs out and it is retried
            log.exception("outbox bookkeeping failed id=%s kind=%s", item.id, item.kind)

    async def _attempt(self, item: OutboxView) -> None:
        sender = self.senders[item.channel]
        try:
            refs = await outbox.resolve_refs(self.db, item.payload.get("refs") or {})
            if refs is None:
                raise DeliveryRejected("the message it belongs to was never delivered")
            sent = await sender.send(item, refs)
            receipt = sent if isinstance(sent, outbox.Receipt) else outbox.Receipt(sent)
        except DeliveryRejected as exc:
            await self._fail(item, str(exc), retry_in=None)
        except DeliveryFailed as exc:
            if exc.retry_after is not None:
                self._paused[item.channel] = self.clock.monotonic() + exc.retry_after
            retry_in = None
            if item.attempts < self.policy.max_attempts:
                retry_in = self.policy.delay(item.attempts, retry_after=exc.retry_after, rng=self.rng)
            await self._fail(item, str(exc), retry_in=retry_in)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a sender bug must not kill the dispatcher; the row retries
            log.exception("sender crashed outbox=%s channel=%s", item.id, item.channel)
            retry_in = self.policy.delay(item.attempts, retry_after=None, rng=self.rng) \
                if item.attempts < self.policy.max_attempts else None
            await self._fail(item, f"{type(exc).__name__}: {exc}", retry_in=retry_in)
        else:
            # Results of sends finishing together share one transaction (and one disk flush).
            await self._results.submit(outbox.Delivered(item.id, item.attempts, receipt.remote_id,
                                                         receipt.link))
            log.info("outbox sent id=%s kind=%s ticket=%s remote=%s attempts=%s", item.id,
                     item.kind, item.ticket_number, receipt.remote_id, item.attempts)

    async def _fail(self, item: OutboxView, error: str, *, retry_in: float | None) -> None:
        notice = None
        if retry_in is None and item.kind != intents.NOTICE:  # a notice about a notice: no
            ticket = f" for ticket #{item.ticket_number}" if item.ticket_number else ""
            notice = (f"⚠️ Gave up delivering {item.kind}{ticket} after {item.attempts} tries: {error}. "
                      f"Retry with: deskbell outbox retry {item.id}")
        status = await outbox.mark_failed(self.db, item.id, now=self.clock.now(), error=error,
                                          attempts=item.attempts, retry_in=retry_in, notice=notice,
                                          notice_to=self.notice_channel)
        level = logging.WARNING if status == "pending" else logging.ERROR
        log.log(level, "outbox failed id=%s kind=%s ticket=%s attempts=%s status=%s retry_in=%s error=%s",
                item.id, item.kind, item.ticket_number, item.attempts, status,
                None if retry_in is None else round(retry_in, 2), error)
