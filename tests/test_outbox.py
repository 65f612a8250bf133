"""Outbox state machine and dispatcher (DESIGN §2.3): order, leases, crash recovery."""

from __future__ import annotations

import random
from datetime import timedelta

import aiohttp
from sqlalchemy import update

from bot.clock import Clock
from bot.core import deliveries as outbox
from bot.core import intents
from bot.core.views import CardView, ContactView, TicketView
from bot.outbox.dispatcher import Dispatcher
from bot.slack.sender import SlackSender, make_client
from bot.store import migrate
from bot.store import models as m
from bot.store.db import Database
from tests.conftest import database_url


async def _db(tmp_path) -> Database:
    db = Database(database_url(tmp_path))
    await migrate.upgrade(db)
    return db


def test_backoff_grows_with_jitter_and_honours_retry_after():
    policy = outbox.RetryPolicy(max_attempts=5, base_seconds=2, max_seconds=60)
    rng = random.Random(7)
    delays = [policy.delay(n, retry_after=None, rng=rng) for n in range(1, 8)]
    assert 1 <= delays[0] <= 2 and 4 <= delays[2] <= 8
    assert all(d <= 60 for d in delays) and delays[-1] >= 30
    assert 30 <= policy.delay(1, retry_after=30, rng=rng) <= 32


async def test_items_of_one_ticket_are_claimed_one_at_a_time_in_order(tmp_path):
    db, clock = await _db(tmp_path), Clock()
    async with db.transaction() as s:
        for kind in (intents.CARD, intents.THREAD_MESSAGE, intents.CARD_UPDATE):
            intents.enqueue(s, channel="slack", kind=kind, payload={}, now=clock.now(), ordering_key="k")
        intents.enqueue(s, channel="slack", kind=intents.NOTICE, payload={}, now=clock.now())
    first = await outbox.claim(db, now=clock.now(), channels={"slack"}, limit=10, lease_seconds=30)
    assert [i.kind for i in first] == [intents.CARD, intents.NOTICE]
    assert await outbox.claim(db, now=clock.now(), channels={"slack"}, limit=10, lease_seconds=30) == []
    await outbox.mark_sent(db, [outbox.Delivered(first[0].id, 1, "C1/1.1")], now=clock.now())
    second = await outbox.claim(db, now=clock.now(), channels={"slack"}, limit=10, lease_seconds=30)
    assert [i.kind for i in second] == [intents.THREAD_MESSAGE]
    await db.dispose()


async def test_expired_lease_is_reclaimed_as_uncertain(tmp_path):
    db, clock = await _db(tmp_path), Clock()
    async with db.transaction() as s:
        intents.enqueue(s, channel="email", kind=intents.CUSTOMER_MESSAGE, payload={}, now=clock.now())
    [item] = await outbox.claim(db, now=clock.now(), channels={"email"}, limit=5, lease_seconds=30)
    assert not item.uncertain
    assert await outbox.claim(db, now=clock.now(), channels={"email"}, limit=5, lease_seconds=30) == []
    later = clock.now() + timedelta(seconds=31)
    [again] = await outbox.claim(db, now=later, channels={"email"}, limit=5, lease_seconds=30)
    assert again.id == item.id and again.uncertain and again.attempts == 2
    await db.dispose()


def _card(number: int, now) -> CardView:  # noqa: ANN001
    ticket = TicketView(number=number, subject="Router down", status="new", priority=3, category=None,
                        type=None, group="support", assignee=None,
                        requester=ContactView(name="Alice", email="alice@example.net", phone=None),
                        channel="email", unread=True, weight=0, created_at=now, updated_at=now,
                        last_customer_message_at=now, resolved_at=None, closed_at=None)
    return CardView(ticket=ticket, first_message=None)


async def _lost_card(tmp_path, fake_slack, *, posted_since: int) -> None:  # noqa: ANN001
    """The process died after Slack accepted the card but before we recorded it; then
    ``posted_since`` other messages arrived in the channel before the retry."""
    db, clock = await _db(tmp_path), Clock()
    async with db.transaction() as s:
        item = intents.post_card(s, ticket_id=None, destination="#support", now=clock.now(),
                                 card=_card(1, clock.now()))
        await s.flush()
        item_id = item.id
    # What Slack already holds from the first, unrecorded attempt:
    lost = fake_slack._chat_postMessage({"channel": "#support", "text": "card", "metadata": {
        "event_type": "deskbell_outbox", "event_payload": {"outbox_id": item_id}}})
    for n in range(posted_since):
        fake_slack._chat_postMessage({"channel": "#support", "text": f"another card {n}"})
    async with db.transaction() as s:
        await s.execute(update(m.OutboxItem).values(status="sending", attempts=1,
                                                    lease_until=clock.now() - timedelta(seconds=1)))
    async with aiohttp.ClientSession() as http:
        sender = SlackSender(make_client(token=fake_slack.token, base_url=fake_slack.url, session=http))
        dispatcher = Dispatcher(db=db, clock=clock, senders={"slack": sender},
                                policy=outbox.RetryPolicy())
        await dispatcher.drain(timeout=10)
    [row] = await outbox.list_items(db)
    await db.dispose()
    assert row.status == "sent" and row.remote_id == f"C0SUPPORT/{lost['ts']}"
    assert [c.method for c in fake_slack.calls if c.method in ("chat.postMessage", "chat.update")] == []


async def test_post_that_landed_before_a_crash_is_found_not_repeated(tmp_path, fake_slack):
    await _lost_card(tmp_path, fake_slack, posted_since=0)


async def test_lost_post_is_found_however_busy_the_channel_became(tmp_path, fake_slack):
    """A real MTA retried into a busy channel: hundreds of cards since the lost one."""
    await _lost_card(tmp_path, fake_slack, posted_since=450)
    pages = [c for c in fake_slack.calls if c.method == "conversations.history"]
    assert len(pages) >= 3 and all("oldest" in c.args for c in pages)


async def test_a_late_result_does_not_overwrite_a_takeover(tmp_path):
    """A worker whose lease ran out must not flip a row another worker already delivered."""
    db, clock = await _db(tmp_path), Clock()
    async with db.transaction() as s:
        intents.enqueue(s, channel="email", kind=intents.CUSTOMER_MESSAGE, payload={}, now=clock.now())
    [first] = await outbox.claim(db, now=clock.now(), channels={"email"}, limit=1, lease_seconds=1)
    later = clock.now() + timedelta(seconds=2)
    [second] = await outbox.claim(db, now=later, channels={"email"}, limit=1, lease_seconds=30)
    await outbox.mark_sent(db, [outbox.Delivered(second.id, second.attempts, "Q2")], now=later)
    status = await outbox.mark_failed(db, first.id, now=later, error="timeout", attempts=first.attempts,
                                      retry_in=5)
    [row] = await outbox.list_items(db)
    assert status == "taken over" and (row.status, row.remote_id) == ("sent", "Q2")
    await db.dispose()


async def test_items_waiting_behind_their_ticket_do_not_count_as_due(tmp_path):
    db, clock = await _db(tmp_path), Clock()
    async with db.transaction() as s:
        intents.enqueue(s, channel="slack", kind=intents.CARD, payload={}, now=clock.now(), ordering_key="k")
        intents.enqueue(s, channel="slack", kind=intents.THREAD_MESSAGE, payload={}, now=clock.now(),
                        ordering_key="k")
    await outbox.claim(db, now=clock.now(), channels={"slack"}, limit=5, lease_seconds=30)
    # The card is being sent; the thread reply waits for it, so nothing is due before the lease ends.
    assert await outbox.next_due(db, channels={"slack"}) > clock.now() + timedelta(seconds=29)
    await db.dispose()
