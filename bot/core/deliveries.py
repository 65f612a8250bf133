"""The delivery state machine of outbox intents: claim, sent, retry, dead.

``pending → sending → sent`` on success; ``sending → pending`` (later) on a temporary failure;
``→ dead`` after ``max_attempts`` or a permanent refusal. A ``sending`` row whose lease ran out
(the process died mid-send) is claimed again and flagged *uncertain*, so a sender can check
whether the first attempt landed before sending twice. Items sharing an ``ordering_key`` go out
one at a time in id order. Intents are recorded by ``core.intents``; no network I/O here: the
dispatcher does the sending.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from bot.core import intents
from bot.core.views import OutboxView
from bot.store import models as m
from bot.store.db import Database, mark_outbox_enqueued

ACTIVE = ("pending", "sending")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_seconds: float = 2.0
    max_seconds: float = 900.0

    def delay(self, attempts: int, *, retry_after: float | None, rng: random.Random) -> float:
        """Exponential backoff with full jitter; a server's Retry-After wins when it is longer."""
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempts - 1)))
        delay = rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            # Honour the server's wish, plus a little jitter so waiting items don't stampede.
            delay = max(retry_after, 0.0) + rng.uniform(0, min(1.0, self.base_seconds))
        return delay


def _unblocked():
    """No earlier item with the same ordering key is still waiting or being sent."""
    earlier = aliased(m.OutboxItem)
    blocked = exists().where(
        earlier.ordering_key == m.OutboxItem.ordering_key,
        earlier.id < m.OutboxItem.id,
        earlier.status.in_(ACTIVE),
    )
    return or_(m.OutboxItem.ordering_key.is_(None), ~blocked)


def _eligible(now: datetime, channels: set[str]):
    return and_(
        m.OutboxItem.channel.in_(channels),
        or_(
            and_(m.OutboxItem.status == "pending", m.OutboxItem.due_at <= now),
            and_(m.OutboxItem.status == "sending", m.OutboxItem.lease_until <= now),
        ),
        _unblocked(),
    )


async def claim(db: Database, *, now: datetime, channels: set[str], limit: int,
                lease_seconds: float, exclude: set[int] = frozenset()) -> list[OutboxView]:
    """Take up to ``limit`` due items for the given channels, leasing them to this process."""
    if not channels or limit <= 0:
        return []
    async with db.transaction() as s:
        query = (select(m.OutboxItem).where(_eligible(now, channels))
                 .order_by(m.OutboxItem.id).limit(limit))
        if exclude:
            query = query.where(m.OutboxItem.id.not_in(exclude))
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = (await s.scalars(query)).all()
        claimed: list[OutboxView] = []
        for row in rows:
            uncertain = row.status == "sending"
            row.status = "sending"
            row.attempts += 1
            row.lease_until = now + timedelta(seconds=lease_seconds)
            claimed.append(OutboxView.of(row, uncertain=uncertain))
        return claimed


async def resolve_refs(db: Database, refs: dict[str, int]) -> dict[str, str] | None:
    """Remote ids of the items ``refs`` names ({"card": 12} → {"card": "<the sender's id>"}).

    Returns None when a referenced item will never be sent (dead).
    """
    if not refs:
        return {}
    async with db.reading() as s:
        rows = {r.id: r for r in (await s.scalars(
            select(m.OutboxItem).where(m.OutboxItem.id.in_(set(refs.values()))))).all()}
    resolved: dict[str, str] = {}
    for name, item_id in refs.items():
        row = rows.get(item_id)
        if row is None or row.status == "dead" or row.remote_id is None:
            return None
        resolved[name] = row.remote_id
    return resolved


def _still_ours(item_id: int, attempts: int):
    # Another process may have taken the row over after our lease ran out: then its result counts.
    return and_(m.OutboxItem.id == item_id, m.OutboxItem.status == "sending",
                m.OutboxItem.attempts == attempts)


@dataclass(frozen=True)
class Receipt:
    """What a sender may return instead of a bare remote id: the id, and where people open
    what was delivered (a Slack card's permalink, which digests link to)."""

    remote_id: str | None
    link: str | None = None


@dataclass(frozen=True)
class Delivered:
    """One successful send, as the sender reported it."""

    item_id: int
    attempts: int  # which claim of the item this result belongs to
    remote_id: str | None
    link: str | None = None


async def mark_sent(db: Database, results: list[Delivered], *, now: datetime) -> None:
    """Record successful sends, all in one transaction. A result whose claim was taken over
    by another worker (its lease ran out) is ignored: the newer claim's result counts."""
    if not results:
        return
    async with db.transaction() as s:
        # Only a customer message's delivery is the message's; a thread post that follows
        # one carries its id too.
        message_of = case((m.OutboxItem.kind == intents.CUSTOMER_MESSAGE, m.OutboxItem.message_id))
        post = aliased(m.OutboxItem)  # a thread post showing that message's delivery (staff replies)
        followed = exists().where(post.message_id == m.OutboxItem.message_id,
                                  post.kind == intents.THREAD_MESSAGE)
        query = select(m.OutboxItem.id, m.OutboxItem.attempts, message_of, followed).where(
            m.OutboxItem.id.in_([d.item_id for d in results]), m.OutboxItem.status == "sending")
        if not db.is_sqlite:  # SQLite's writer holds the whole database; elsewhere lock the rows
            query = query.with_for_update(of=m.OutboxItem)
        rows = (await s.execute(query)).all()
        ours = {(r[0], r[1]): r[2] for r in rows}
        shown = {r[2] for r in rows if r[2] is not None and r[3]}
        mine = [d for d in results if (d.item_id, d.attempts) in ours]
        if not mine:
            return
        outbox = m.OutboxItem.__table__
        await s.execute(update(outbox).where(outbox.c.id == bindparam("item"))
                        .values(status="sent", remote_id=bindparam("remote"),
                                remote_link=bindparam("link"), sent_at=now,
                                lease_until=None, last_error=None),
                        [{"item": d.item_id, "remote": d.remote_id, "link": d.link} for d in mine])
        messages = [(ours[(d.item_id, d.attempts)], d.remote_id) for d in mine
                    if ours[(d.item_id, d.attempts)] is not None]
        if messages:
            table = m.Message.__table__
            await s.execute(update(table).where(table.c.id == bindparam("message"))
                            .values(delivery_status="sent", remote_id=bindparam("remote")),
                            [{"message": message, "remote": remote} for message, remote in messages])
            await intents.show_delivery(s, {message: ("sent", remote) for message, remote in messages
                                            if message in shown}, now=now)


async def mark_failed(db: Database, item_id: int, *, now: datetime, error: str, attempts: int,
                      retry_in: float | None, notice: str | None = None,
                      notice_to: str | None = None) -> str:
    """Record a failed attempt: back to ``pending`` after ``retry_in`` seconds, or ``dead``.

    A dead item can leave a ``notice`` for ``notice_to`` (a channel) so people see it.
    Returns the new status.
    """
    async with db.transaction() as s:
        row = await s.scalar(select(m.OutboxItem).where(_still_ours(item_id, attempts)))
        if row is None:
            return "taken over"
        row.last_error = error[:2000]
        row.lease_until = None
        if retry_in is not None:
            row.status = "pending"
            row.due_at = now + timedelta(seconds=retry_in)
        else:
            row.status = "dead"
            if row.message_id is not None and row.kind == intents.CUSTOMER_MESSAGE:
                await s.execute(update(m.Message).where(m.Message.id == row.message_id)
                                .values(delivery_status="failed"))
                await intents.show_delivery(s, {row.message_id: ("failed", None)}, now=now)
            s.add(m.Event(ticket_id=row.ticket_id, kind="delivery_failed", actor="system",
                          data={"outbox_id": row.id, "kind": row.kind, "error": row.last_error},
                          created_at=now))
            if row.kind == intents.CUSTOMER_MESSAGE and row.ticket_id is not None:
                # Staff must see it where they work the ticket, not only in the fallback channel.
                what = "The text" if row.channel == "sms" else "Mail"
                await intents.post_notice_in_thread(
                    s, ticket_id=row.ticket_id, now=now,
                    text=f"⚠️ {what} to the customer was not delivered: {row.last_error}")
            if row.channel == "sms" and error.startswith(SMS_OPTED_OUT):
                await s.execute(update(m.Contact).where(m.Contact.phone == row.payload.get("to"))
                                .values(sms_opted_out=True))
            if notice is not None and notice_to:
                intents.notice(s, destination=notice_to, text=notice, now=now)
        return row.status


async def next_due(db: Database, *, channels: set[str]) -> datetime | None:
    """When the earliest item this process could claim becomes due (None: nothing waits).

    Items queued behind an earlier one of the same ticket are left out: they become due when
    that one is done, which wakes the dispatcher anyway.
    """
    if not channels:
        return None
    due = case((m.OutboxItem.status == "pending", m.OutboxItem.due_at), else_=m.OutboxItem.lease_until)
    async with db.reading() as s:
        return await s.scalar(select(func.min(due)).where(
            m.OutboxItem.channel.in_(channels), m.OutboxItem.status.in_(ACTIVE), _unblocked()))


async def list_items(db: Database, *, status: str | None = None, limit: int = 100) -> list[OutboxView]:
    async with db.reading() as s:
        query = select(m.OutboxItem).order_by(m.OutboxItem.id.desc()).limit(limit)
        if status:
            query = query.where(m.OutboxItem.status == status)
        return [OutboxView.of(r) for r in (await s.scalars(query)).all()]


async def retry(db: Database, *, now: datetime, item_ids: list[int] | None = None) -> int:
    """Put dead items (all, or the given ids) back in the queue, due now. Returns how many."""
    async with db.transaction() as s:
        query = update(m.OutboxItem).where(m.OutboxItem.status == "dead")
        if item_ids:
            query = query.where(m.OutboxItem.id.in_(item_ids))
        result = await s.execute(query.values(status="pending", attempts=0, due_at=now,
                                              last_error=None))
        if result.rowcount:
            mark_outbox_enqueued(s)
        return result.rowcount or 0


# A text's delivery moves one way: a report of an earlier stage that arrives after a later one
# (reports may come out of order) changes nothing; a final stage is never replaced.
SMS_STAGES = {"queued": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2}
# How a sender says the carrier refused because the customer opted out (STOP): the contact is
# then marked opted out here too.
SMS_OPTED_OUT = "the customer has opted out of texts"


async def sms_status(db: Database, *, remote_id: str, status: str, reason: str | None = None,
                     opted_out: bool = False, now: datetime) -> bool:
    """Record a delivery report for the text its sender knows as ``remote_id``; False when it
    changes nothing (unknown text, an earlier stage, or its final status is known already)."""
    stage = SMS_STAGES.get(status)
    if stage is None:
        return False
    async with db.transaction() as s:
        query = select(m.Message).where(m.Message.remote_id == remote_id, m.Message.channel == "sms")
        if not db.is_sqlite:  # two reports at once: one after the other
            query = query.with_for_update()
        message = await s.scalar(query)
        if message is None:
            return False
        if stage <= SMS_STAGES.get(message.delivery_status or "queued", 0):
            return False
        message.delivery_status = status
        await intents.show_delivery(s, {message.id: (status, remote_id)}, now=now)
        if status in ("undelivered", "failed"):
            s.add(m.Event(ticket_id=message.ticket_id, kind="delivery_failed", actor="system",
                          data={"message": message.id, "status": status, "reason": reason},
                          created_at=now))
            await intents.post_notice_in_thread(
                s, ticket_id=message.ticket_id, now=now,
                text=f"⚠️ The text to the customer was {status}{f' ({reason})' if reason else ''}.")
            if opted_out:
                ticket = await s.get_one(m.Ticket, message.ticket_id)
                await s.execute(update(m.Contact).where(m.Contact.id == ticket.requester_id)
                                .values(sms_opted_out=True))
        return True
