"""Races that PostgreSQL shows at once and SQLite's single writer hides.

Each test runs two or more writers on their own engines (as separate processes would) and
makes them meet just before the contended step, so their transactions really overlap.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import await_only

from bot.app import Deskbell
from bot.clock import Clock
from bot.config import Settings
from bot.core import actions, groups, intake, spool
from bot.core.desk import Desk
from bot.core.errors import Failed
from bot.core.intake import IngestResult, Parsed
from bot.core.staff import Actor
from bot.inbound.pipeline import IntakeWorker
from bot.store import migrate, upsert
from bot.store import models as m
from bot.store.db import Database
from tests.conftest import DOMAIN, settings_dict
from tests.pg import pg_databases, pg_url, postgres_server  # noqa: F401  (fixtures)

ALICE, BOB = Actor("UALICE", "Alice Agent"), Actor("UBOB", "Bob Agent")
LOGO = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # the same signature logo in many mails


class Meeting:
    """Holds each caller until ``n`` have arrived, so that what they do next overlaps. A caller
    that would wait for a writer blocked behind its own transaction gives up after a while."""

    def __init__(self, n: int, *, patience: float = 3.0) -> None:
        self.n, self.patience, self.arrived = n, patience, 0
        self.everyone = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.n:
            self.everyone.set()
        try:
            await asyncio.wait_for(self.everyone.wait(), self.patience)
        except asyncio.TimeoutError:
            pass


def meet_before(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, n: int) -> Meeting:
    """Make the first ``n`` calls of ``owner.name`` wait for each other before they run."""
    meeting, original = Meeting(n), getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        await meeting.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return meeting


@contextmanager
def meet_before_statements(starting: str, n: int) -> Iterator[Meeting]:
    """Make the first ``n`` statements that start with ``starting``, on any connection, wait
    for each other: however the code gets there (a flush at commit, an explicit statement)."""
    meeting = Meeting(n)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(starting) and meeting.arrived < n:
            await_only(meeting.wait())  # we are inside the session's greenlet: waiting is allowed

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield meeting
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def settings_for(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings.model_validate(settings_dict(tmp_path, database={"url": url}, **overrides))


async def upgraded(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture
async def desks(pg_url: str, tmp_path: Path):  # noqa: F811
    """Three desks on one upgraded PostgreSQL database, each with engines of its own."""
    await upgraded(pg_url)
    settings = settings_for(pg_url, tmp_path)
    made = [Desk(db=Database(pg_url), settings=settings, clock=Clock()) for _ in range(3)]
    await groups.sync_groups(made[0].db, settings)
    for desk in made:  # connected already: no writer spends its turn connecting
        async with desk.db.reading() as s:
            await s.execute(select(1))
    yield made
    for desk in made:
        await desk.db.dispose()


def letter(*, sender: str = "Nina New <nina@example.net>", subject: str = "Help",
           attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, f"help@{DOMAIN}", subject
    msg["Message-ID"] = make_msgid(domain="example.net")
    msg.set_content("Something is broken.")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="image", subtype="png", filename="logo.png")
    return msg.as_bytes(policy=SMTP)


async def spooled(desk: Desk, raws: list[bytes]) -> list[Parsed]:
    """Spool the mails (each under a sender key of its own, as two doors or a forwarder that
    rewrites the envelope sender give them) and parse them as the intake worker does."""
    now = datetime.now(timezone.utc)
    await spool.record(desk.db, [spool.Arrival(
        channel="email", door="smtp", source_id=make_msgid(), data=raw, received_at=now,
        envelope_from=f"bounce-{i}@example.net", envelope_to=(f"help@{DOMAIN}",),
        sender_key=f"bounce-{i}@example.net") for i, raw in enumerate(raws)])
    worker = IntakeWorker(desk=desk)
    return [await worker._parse(e) for e in await spool.queued(desk.db, limit=len(raws))]


async def ingest_as_the_pipeline_does(desk: Desk, item: Parsed) -> IngestResult:
    """The pipeline's rule: a ``Rejected`` is held for a person (the test fails here), a
    ``Failed`` is tried again."""
    for _ in range(5):
        try:
            return (await intake.ingest(desk, [item]))[0]
        except Failed:
            await asyncio.sleep(0.05)
    raise AssertionError("still failing after 5 attempts")


async def first_try(desk: Desk, item: Parsed) -> IngestResult:
    [result] = await intake.ingest(desk, [item])
    return result


async def count(db: Database, query: Any) -> Any:
    async with db.reading() as s:
        return await s.scalar(query)


# ----- 1. start-up ---------------------------------------------------------------------------


async def test_processes_starting_at_once_all_prepare_the_groups(pg_url, tmp_path):  # noqa: F811
    await upgraded(pg_url)
    for channel in ("#support", "#help"):  # first start, then a start with the config changed
        settings = settings_for(pg_url, tmp_path, handler_groups=[
            {"name": "support", "slack_channel": channel, "email_addresses": [f"help@{DOMAIN}"]},
            {"name": "sales", "slack_channel": "#sales", "email_addresses": [f"sales@{DOMAIN}"]}])
        apps = [Deskbell(settings, clock=Clock()) for _ in range(4)]
        try:
            with meet_before_statements("INSERT INTO handler_groups", len(apps)):
                await asyncio.gather(*(app.prepare(auto_migrate=False) for app in apps))
        finally:
            for app in apps:
                await app.db.dispose()
        db = Database(pg_url)
        async with db.reading() as s:
            rows = (await s.execute(select(m.HandlerGroup.name, m.HandlerGroup.slack_channel)
                                    .order_by(m.HandlerGroup.name))).all()
        await db.dispose()
        assert [tuple(r) for r in rows] == [("sales", "#sales"), ("support", channel)]


# ----- 2, 3. intake --------------------------------------------------------------------------


async def test_two_mails_at_once_from_one_new_sender_both_become_tickets(desks, monkeypatch):
    a, b, _ = desks
    first, second = await spooled(a, [letter(subject="First"), letter(subject="Second")])
    meet_before(monkeypatch, intake.upsert, "contact", 2)
    # Both at the first try: the contact's upsert waits for the other writer, it never fails.
    results = await asyncio.gather(*(first_try(d, item) for d, item in ((a, first), (b, second))))
    assert sorted(r.outcome for r in results) == ["created", "created"]
    assert await count(a.db, select(func.count(m.Contact.id))) == 1
    assert await count(a.db, select(func.count(m.Quarantine.id))) == 0


async def test_two_mails_at_once_with_the_same_attachment_keep_it_once(desks, monkeypatch):
    a, b, _ = desks
    items = await spooled(a, [letter(sender=f"Customer {i} <c{i}@example.org>", attachment=LOGO)
                              for i in range(2)])
    meet_before(monkeypatch, intake.upsert, "blobs", 2)
    results = await asyncio.gather(*(first_try(d, item) for d, item in zip((a, b), items)))
    assert [r.outcome for r in results] == ["created", "created"]
    assert await count(a.db, select(func.count()).select_from(m.Blob)) == 1
    assert await count(a.db, select(func.count(m.AttachmentRow.id))) == 2
    assert await count(a.db, select(func.count(m.Quarantine.id))) == 0


async def test_ticket_numbers_of_concurrent_intake_are_sequential_and_unique(desks, monkeypatch):
    mails = [letter(sender=f"Customer {i} <c{i}@example.org>", subject=f"Mail {i}") for i in range(12)]
    items = await spooled(desks[0], mails)
    meet_before(monkeypatch, intake.lifecycle, "open_tickets", 3)
    batches = [items[0:4], items[4:8], items[8:12]]
    results = await asyncio.gather(*(intake.ingest(d, batch) for d, batch in zip(desks, batches)))
    numbers = sorted(r.ticket_number for batch in results for r in batch)
    assert numbers == list(range(1, 13))
    async with desks[0].db.reading() as s:
        assert sorted((await s.scalars(select(m.Ticket.id))).all()) == numbers


async def test_a_copy_of_a_message_taken_by_two_workers_at_once_is_a_duplicate(desks, monkeypatch):
    a, b, _ = desks
    raw = letter()
    items = await spooled(a, [raw, raw])  # one message through two doors (or an MTA's retry)
    meet_before(monkeypatch, intake.upsert, "contact", 2)
    results = await asyncio.gather(*(ingest_as_the_pipeline_does(d, item) for d, item in zip((a, b), items)))
    assert sorted(r.outcome for r in results) == ["created", "duplicate"]
    assert await count(a.db, select(func.count(m.Ticket.id))) == 1
    assert await count(a.db, select(func.count(m.Quarantine.id))) == 0


async def test_a_rolled_back_ingest_leaves_no_gap_in_ticket_numbers(desks, monkeypatch):
    a, b, _ = desks
    raw = letter()
    items = await spooled(a, [raw, raw])
    meet_before(monkeypatch, intake.upsert, "contact", 2)
    await asyncio.gather(*(ingest_as_the_pipeline_does(d, item) for d, item in zip((a, b), items)))
    [later] = await spooled(a, [letter(sender="Zoe <zoe@example.org>")])
    [result] = await intake.ingest(a, [later])
    assert result.ticket_number == 2


# ----- 4, 5, 6. staff actions ----------------------------------------------------------------


async def a_ticket(desk: Desk) -> int:
    [item] = await spooled(desk, [letter()])
    [result] = await intake.ingest(desk, [item])
    return result.ticket_number


async def events_of(db: Database, kind: str) -> list[m.Event]:
    async with db.reading() as s:
        return list((await s.scalars(select(m.Event).where(m.Event.kind == kind)
                                     .order_by(m.Event.id))).all())


async def test_two_staff_opening_reply_together_only_one_holds_the_lock(desks, monkeypatch):
    a, b, _ = desks
    number = await a_ticket(a)
    meet_before(monkeypatch, actions, "load_ticket", 2)
    alice, bob = await asyncio.gather(actions.take_lock(a, actor=ALICE, number=number),
                                      actions.take_lock(b, actor=BOB, number=number))
    winners = [who for who, state in (("Alice Agent", alice), ("Bob Agent", bob))
               if state.held_by_other is None]
    assert len(winners) == 1
    loser = bob if winners == ["Alice Agent"] else alice
    assert loser.held_by_other == winners[0] and loser.expires_at is not None
    assert len(await events_of(a.db, "lock")) == 1
    async with a.db.reading() as s:
        holder = await s.scalar(select(m.Staff.name).join(m.Ticket, m.Ticket.lock_staff_id == m.Staff.id))
    assert holder == winners[0]


async def test_two_priority_changes_at_once_are_both_recorded_truly(desks, monkeypatch):
    a, b, _ = desks
    number = await a_ticket(a)
    meet_before(monkeypatch, actions, "load_ticket", 2)
    await asyncio.gather(actions.set_priority(a, actor=ALICE, number=number, priority=1),
                         actions.set_priority(b, actor=BOB, number=number, priority=2))
    changes = [(e.data["from"], e.data["to"]) for e in await events_of(a.db, "priority")]
    assert len(changes) == 2 and changes[0][0] == 3 and changes[1][0] == changes[0][1]
    async with a.db.reading() as s:
        assert await s.scalar(select(m.Ticket.priority).where(m.Ticket.id == number)) == changes[1][1]


async def test_a_conflict_that_is_not_a_replay_is_tried_again_not_called_a_duplicate(desks, monkeypatch, caplog):
    a, b, _ = desks
    one, two = await a_ticket(a), await a_ticket(a)
    meet_before(monkeypatch, actions, "load_ticket", 2)
    caplog.set_level("INFO", logger="bot.core.actions")
    # Two people link the same pair from either end at once, each with a key of their own:
    # the second to write collides on the link's key, not on its own interaction's.
    results = await asyncio.gather(
        actions.link(a, actor=ALICE, number=one, other=two, key=actions.IdempotencyKey("action_ts", "1.1")),
        actions.link(b, actor=BOB, number=two, other=one, key=actions.IdempotencyKey("action_ts", "2.2")))
    assert [r.duplicate for r in results] == [False, False]
    assert sorted("already linked" in r.text for r in results) == [False, True]
    assert "running it again" in caplog.text
    assert len(await events_of(a.db, "link")) == 2  # one on each ticket, from the one that linked them
    async with a.db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(m.TicketLink)) == 2


async def test_a_twin_of_a_staff_action_is_a_duplicate(desks, monkeypatch):
    a, b, _ = desks
    number = await a_ticket(a)
    meet_before(monkeypatch, actions, "seen_before", 2)
    key = actions.IdempotencyKey("action_ts", "1712.0001")
    results = await asyncio.gather(actions.set_priority(a, actor=ALICE, number=number, priority=1, key=key),
                                   actions.set_priority(b, actor=ALICE, number=number, priority=1, key=key))
    assert sorted(r.duplicate for r in results) == [False, True]
    assert len(await events_of(a.db, "priority")) == 1


# ----- telling conflicts apart ---------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_only_a_conflict_on_the_key_itself_is_read_as_that_key(dialect, request, tmp_path):
    url = request.getfixturevalue("pg_url") if dialect == "postgresql" else \
        f"sqlite+aiosqlite:///{tmp_path / 'deskbell.db'}"
    await upgraded(url)
    db, now = Database(url), datetime.now(timezone.utc)

    async def failure(row: Any) -> DBAPIError:
        with pytest.raises(DBAPIError) as caught:
            async with db.transaction() as s:
                s.add(row)
        return caught.value

    try:
        async with db.transaction() as s:
            s.add(m.ProcessedKey(kind="action_ts", key="1.1", created_at=now))
            s.add(m.HandlerGroup(name="support", slack_channel="#support"))
        replay = await failure(m.ProcessedKey(kind="action_ts", key="1.1", created_at=now))
        other = await failure(m.HandlerGroup(name="support", slack_channel="#help"))
        assert upsert.violates(replay, actions.PROCESSED_KEY) and not upsert.violates(replay, intake.SPOOL_KEY)
        assert not upsert.violates(other, actions.PROCESSED_KEY) and upsert.contended(other)
        # A broken row is our bug, not another writer: it fails the same way every time.
        orphan = await failure(m.Ticket(subject="x", status="new", priority=3, group_id=999_999,
                                        requester_id=999_999, channel="email", reply_token="t" * 12,
                                        created_at=now, updated_at=now))
        assert not upsert.contended(orphan)
        if dialect == "postgresql":  # SQLite keeps strings of any length
            too_long = await failure(m.HandlerGroup(name="x" * 500, slack_channel=""))
            assert upsert.refused_value(too_long) and not upsert.contended(too_long)
    finally:
        await db.dispose()



async def test_a_customer_reply_and_a_status_change_at_once_each_record_the_truth(desks, monkeypatch):
    """The customer answers a ticket waiting on them just as staff put it on hold: whichever
    goes first, the other sees it, and the history's statuses chain (each "from" is the "to"
    before it)."""
    a, b, _ = desks
    number = await a_ticket(a)
    await actions.set_status(a, actor=ALICE, number=number, status="waiting")
    [reply] = await spooled(a, [letter(subject=f"Re: Help [#{number}]")])
    meeting = Meeting(2)
    # Both have read the ticket; then staff write first while the customer's message is still
    # being stored: without the row lock, intake goes on from the status it read before.
    for owner, name, lag in ((actions, "load_ticket", 0.0), (intake, "_store_messages", 0.5)):
        original = getattr(owner, name)

        def waiting(original: Any = original, lag: float = lag) -> Any:
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                await meeting.wait()
                await asyncio.sleep(lag)
                return await original(*args, **kwargs)
            return wrapper
        monkeypatch.setattr(owner, name, waiting())
    await asyncio.gather(ingest_as_the_pipeline_does(a, reply),
                         actions.set_status(b, actor=BOB, number=number, status="on_hold"))
    chain = [(e.data["from"], e.data["to"]) for e in await events_of(a.db, "status")]
    assert all(earlier[1] == later[0] for earlier, later in zip(chain, chain[1:])), chain


async def test_two_intake_workers_keep_each_senders_messages_in_order(desks):
    """DESIGN §2.1 with two workers draining one spool: each sender's three messages (each
    answering the one before by its Message-ID) end on one ticket, in the order they came."""
    a, b, _ = desks
    senders, now = 40, datetime.now(timezone.utc)
    arrivals = []
    # Each sender's messages side by side, and small batches: batch boundaries split senders,
    # so the two workers meet inside one sender's messages again and again.
    for n in range(senders):
        for step in range(3):
            msg = EmailMessage()
            msg["From"], msg["To"] = f"c{n}@example.net", f"help@{DOMAIN}"
            msg["Subject"] = f"Case {n}" if step == 0 else f"Re: Case {n}"
            msg["Message-ID"] = f"<c{n}.s{step}@example.net>"
            if step:
                msg["In-Reply-To"] = f"<c{n}.s{step - 1}@example.net>"
            msg.set_content(f"step {step}")
            arrivals.append(spool.Arrival(
                channel="email", door="smtp", source_id=make_msgid(), data=msg.as_bytes(policy=SMTP),
                received_at=now, envelope_from=f"c{n}@example.net", envelope_to=(f"help@{DOMAIN}",),
                sender_key=f"c{n}@example.net"))
    await spool.record(a.db, arrivals)
    await asyncio.gather(IntakeWorker(desk=a, batch=4).drain(timeout=60),
                         IntakeWorker(desk=b, batch=4).drain(timeout=60))
    async with a.db.reading() as s:
        rows = (await s.execute(select(m.Message.ticket_id, m.Message.body, m.Message.id)
                                .where(m.Message.kind == "inbound").order_by(m.Message.id))).all()
        tickets = await s.scalar(select(func.count(m.Ticket.id)))
    assert tickets == senders
    by_ticket: dict[int, list[str]] = {}
    for ticket_id, body, _ in rows:
        by_ticket.setdefault(ticket_id, []).append(body.strip())
    assert all(steps == ["step 0", "step 1", "step 2"] for steps in by_ticket.values()), by_ticket
