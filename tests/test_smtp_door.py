"""The SMTP door's promises (DESIGN §2.1, §2.9, §5): who may send, sizes, codes, replays."""

from __future__ import annotations

import asyncio
import smtplib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select

from bot.core import reports
from bot.store import models as m
from tests import mailfixtures as fx
from tests.conftest import (
    DOMAIN,
    ON_POSTGRESQL,
    database_url,
    database_value,
    deliver,
    rename_table,
    running,
    send_mail,
    settle,
    wait_until,
)
from tests.pg import holding
from tests.test_foundation import mail


async def test_ehlo_advertises_size_8bitmime_smtputf8_pipelining(app_settings):
    async with running(app_settings(), roles=("smtp",)) as app:
        def ehlo() -> str:
            with smtplib.SMTP("127.0.0.1", app.listening.smtp[1], timeout=10) as c:
                return c.ehlo()[1].decode()
        features = await asyncio.to_thread(ehlo)
    for word in ("SIZE 26214400", "8BITMIME", "SMTPUTF8", "PIPELINING"):
        assert word in features


async def test_recipient_outside_our_domains_is_refused_never_relayed(app_settings):
    async with running(app_settings(), roles=("smtp",)) as app:
        code, reply = await asyncio.to_thread(send_mail, app.listening.smtp[1], mail(),
                                              rcpt=("victim@elsewhere.example.org",))
        assert (code, reply[:9]) == (550, b"5.1.1 <vi")
        await settle(app)
        assert await reports.list_tickets(app.db, now=app.clock.now()) == []


async def test_oversize_mail_gets_552_both_declared_and_streamed(app_settings):
    async with running(app_settings(smtp_in={"max_message_bytes": 20_000}), roles=("smtp",)) as app:
        port = app.listening.smtp[1]
        big = mail(body="x" * 60 + "\n" * 1 + ("y" * 70 + "\n") * 400)

        def declared() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                c.ehlo()
                return c.mail("alice@example.net", options=[f"SIZE={len(big)}"])

        def streamed() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                c.ehlo()
                c.mail("alice@example.net")
                c.rcpt(f"help@{DOMAIN}")
                return c.data(big)

        assert (await asyncio.to_thread(declared))[0] == 552
        code, reply = await asyncio.to_thread(streamed)
        assert code == 552 and reply.startswith(b"5.3.4"), reply
        await settle(app)
        assert await reports.list_tickets(app.db, now=app.clock.now()) == []


async def test_replayed_message_creates_nothing_new(app_settings):
    raw = mail(message_id="<same-id-1@example.net>")
    async with running(app_settings(), roles=("smtp",)) as app:
        first = await deliver(app, raw)
        second = await deliver(app, raw)  # an MTA that never heard our first 250
        assert first[0] == second[0] == 250
        assert len(await reports.list_tickets(app.db, now=app.clock.now())) == 1
        [ticket] = await reports.list_tickets(app.db, now=app.clock.now())
        shown = await reports.show_ticket(app.db, ticket["number"], now=app.clock.now())
        assert [m["kind"] for m in shown["messages"]].count("inbound") == 1
        async with app.db.reading() as s:
            states = (await s.execute(select(m.RawMessage.state, m.RawMessage.message_key)
                                      .order_by(m.RawMessage.id))).all()
    # Both deliveries are kept and both are finished with; only the first counts.
    assert states == [("done", "same-id-1@example.net"), ("done", None)]


async def test_an_unparseable_message_sent_twice_is_held_once(app_settings, fake_slack):
    async with running(app_settings()) as app:
        for _ in range(2):  # the MTA never heard our first 250
            code, _ = await deliver(app, fx.garbage())
            assert code == 250
        await wait_until(lambda: any("quarantine #1" in c.args.get("text", "") for c in fake_slack.posts))
        async with app.db.reading() as s:
            held = (await s.scalars(select(m.Quarantine.id))).all()
            states = (await s.scalars(select(m.RawMessage.state).order_by(m.RawMessage.id))).all()
    assert held == [1] and states == ["held", "done"]


async def test_lines_up_to_10000_bytes_are_accepted(app_settings):
    long_line = "word " * 1900  # ~9,500 bytes on one line, as some real senders do
    raw = (f"From: alice@example.net\r\nTo: help@{DOMAIN}\r\nSubject: long\r\n"
           f"Message-ID: <long-1@example.net>\r\n\r\n{long_line}\r\n").encode()
    async with running(app_settings(), roles=("smtp",)) as app:
        code, _ = await deliver(app, raw)
        assert code == 250
        [t] = await reports.list_tickets(app.db, now=app.clock.now())
        shown = await reports.show_ticket(app.db, t["number"], now=app.clock.now())
    assert "word word" in shown["messages"][0]["body"]


async def test_our_storage_failure_answers_451_and_sender_can_retry(app_settings, tmp_path):
    """A database we cannot write to is our fault: 451 4.3.0, so the MTA keeps the mail."""
    async with running(app_settings(), roles=("smtp",)) as app:
        port = app.listening.smtp[1]
        raw = mail(message_id="<retry-me@example.net>")
        await rename_table(tmp_path / "deskbell.db", "raw_messages", "raw_messages_away")
        code, reply = await asyncio.to_thread(send_mail, port, raw)
        assert code == 451 and reply.startswith(b"4.3.0"), reply
        await rename_table(tmp_path / "deskbell.db", "raw_messages_away", "raw_messages")
        code, _ = await deliver(app, raw)
        assert code == 250
        assert len(await reports.list_tickets(app.db, now=app.clock.now())) == 1


async def test_draining_server_answers_421_not_5xx(app_settings, tmp_path):
    """SIGTERM while a message is being committed: that message still gets its 250, and a
    session that starts a new one meanwhile hears a real 421 (never a 5xx, never a hang-up)."""
    async with running(app_settings(), roles=("smtp",)) as app:
        port = app.listening.smtp[1]
        idle = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", port, timeout=10)
        await asyncio.to_thread(idle.ehlo)
        with hold_write_lock(tmp_path / "deskbell.db") as release:
            # The spool commit waits for the lock, so this message is in flight during the drain.
            in_flight = asyncio.create_task(asyncio.to_thread(send_mail, port, mail()))
            await wait_until(lambda: app_handler(app).inflight == 1)
            app.stop()  # the SIGTERM path
            await wait_until(lambda: app_handler(app).draining)
            code, reply = await asyncio.to_thread(idle.mail, "alice@example.net")
            assert (code, reply[:5]) == (421, b"4.3.2"), reply
            release()
            assert (await in_flight)[0] == 250
    assert database_value(tmp_path, "SELECT count(*) FROM raw_messages WHERE state = 'queued'") == 1


async def test_drain_lets_a_message_mid_transfer_finish(app_settings, tmp_path):
    """SIGTERM while a client is still sending DATA: the drain waits for the end of the
    message and answers it 250, rather than cutting it off."""
    async with running(app_settings(), roles=("smtp",)) as app:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.listening.smtp[1])

        async def say(line: bytes) -> bytes:
            writer.write(line)
            await writer.drain()
            return await reader.readline()

        await reader.readline()
        writer.write(b"EHLO client.example\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        assert (await say(b"MAIL FROM:<alice@example.net>\r\n")).startswith(b"250")
        assert (await say(f"RCPT TO:<help@{DOMAIN}>\r\n".encode())).startswith(b"250")
        assert (await say(b"DATA\r\n")).startswith(b"354")
        raw = mail().replace(b"\n", b"\r\n") if b"\r\n" not in mail() else mail()
        writer.write(raw[:200])
        await writer.drain()
        await wait_until(lambda: app_handler(app).inflight == 1)
        app.stop()
        await wait_until(lambda: app_handler(app).draining)
        await asyncio.sleep(0.2)
        answer = await say(raw[200:] + b".\r\n")
        writer.close()
    assert answer.startswith(b"250 2.0.0"), answer
    assert database_value(tmp_path, "SELECT count(*) FROM raw_messages") == 1


def app_handler(app):  # noqa: ANN001, ANN201
    return app.smtp_server.handler


@contextmanager
def hold_write_lock(database: Path) -> Iterator[Callable[[], None]]:
    """Another process holding SQLite's write lock: our commits wait until ``release()``. On
    PostgreSQL, another session holding a lock on the spool that keeps its writers waiting."""
    if ON_POSTGRESQL:
        with holding(database_url(database.parent), "LOCK TABLE raw_messages IN EXCLUSIVE MODE") as release:
            yield release
        return
    locked, released = threading.Event(), threading.Event()

    def hold() -> None:
        con = sqlite3.connect(database, timeout=30, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        locked.set()
        released.wait(30)
        con.execute("ROLLBACK")
        con.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    locked.wait(10)
    try:
        yield released.set
    finally:
        released.set()
        holder.join(10)


async def test_sender_quoting_tag_of_someone_elses_ticket_gets_a_new_ticket(app_settings, fake_slack):
    async with running(app_settings()) as app:
        await deliver(app, mail())
        intruder = mail(subject="Re: Router down [#1]", body="Let me in",
                        from_addr="mallory@example.org")
        code, _ = await deliver(app, intruder, mail_from="mallory@example.org")
        assert code == 250
        own = mail(subject="Re: Router down [#1]", body="Me again")
        await deliver(app, own)
        await wait_until(lambda: len(fake_slack.cards()) == 2)
        first = await reports.show_ticket(app.db, 1, now=app.clock.now())
        second = await reports.show_ticket(app.db, 2, now=app.clock.now())
    assert [m["body"] for m in first["messages"] if m["kind"] == "inbound"] == ["My router has no internet since this morning.", "Me again"]
    assert second["requester"]["email"] == "mallory@example.org"


async def test_unknown_local_part_goes_to_fallback_group_and_address_picks_group(app_settings, fake_slack):
    async with running(app_settings()) as app:
        port = app.listening.smtp[1]
        await asyncio.to_thread(send_mail, port, mail(to=f"sales@{DOMAIN}"), rcpt=(f"sales@{DOMAIN}",))
        await asyncio.to_thread(send_mail, port, mail(to=f"nobody@{DOMAIN}"), rcpt=(f"nobody@{DOMAIN}",))
        await wait_until(lambda: len(fake_slack.cards()) == 2)
        tickets = {t["number"]: t["group"] for t in await reports.list_tickets(app.db, now=app.clock.now())}
    assert tickets == {1: "sales", 2: "support"}
    assert sorted(c.args["channel"] for c in fake_slack.cards()) == ["#sales", "#support"]
