"""Mail from a hostile or broken internet (DESIGN §2.2, §2.4, §2.6, §3): backscatter, reused
Message-IDs, postmasters who are people, bounces that find their mail by its return path,
quarantine floods and oversized attachments. Mail comes in through the real SMTP door; what
leaves is read at the relay sink."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from sqlalchemy import event, func, select

from bot.clock import FrozenClock
from bot.core import reports, spool
from bot.core.intake import REUSED_MESSAGE_ID
from bot.core.threader import return_path, returned_message_id
from bot.store import models as m
from tests.conftest import DOMAIN, deliver, running, wait_until
from tests.store.test_query_plans import plan_problems, sqlite_plans

DATE = "Mon, 03 Mar 2025 10:15:00 +0000"


def letter(*, from_addr: str = "Alice Example <alice@example.net>", to: str = f"help@{DOMAIN}",
           subject: str = "Router down", body: str = "My router has no internet since this morning.\n",
           message_id: str | None = None, headers: dict[str, str] | None = None,
           files: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Date"] = from_addr, to, subject, DATE
    msg["Message-ID"] = message_id or f"<{hashlib.sha256((from_addr + subject + body).encode()).hexdigest()[:20]}@example.net>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes(policy=SMTP)


def delivery_report(*, to: str, recipient: str = "gone@example.org", quoting: str | None = None,
                    message_id: str = "<dsn.77@mx.example.org>") -> bytes:
    """An RFC 3464 failure report as an MTA writes it; ``quoting`` None leaves out the copy of
    the original (some MTAs send only the status), so nothing in it names the mail."""
    original = ["--b1", "Content-Type: text/rfc822-headers", "",
                f"Message-ID: <{quoting}>", "Subject: Re: Router down", ""] if quoting else []
    lines = ["From: Mail Delivery System <MAILER-DAEMON@mx.example.org>", f"To: {to}",
             "Subject: Undelivered Mail Returned to Sender", f"Date: {DATE}",
             f"Message-ID: {message_id}", "MIME-Version: 1.0",
             'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"', "",
             "--b1", "Content-Type: text/plain; charset=us-ascii", "",
             "Your message could not be delivered to one or more recipients.", "",
             "--b1", "Content-Type: message/delivery-status", "",
             "Reporting-MTA: dns; mx.example.org", "",
             f"Final-Recipient: rfc822; {recipient}", "Action: failed", "Status: 5.1.1",
             f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: mailbox unavailable", "",
             *original, "--b1--", ""]
    return "\r\n".join(lines).encode("ascii")


def not_mail(n: int) -> bytes:
    """Bytes that are no email at all (a misdirected upload), different for each ``n``."""
    return b"\x89PNG\r\n\x1a\n" + hashlib.sha256(b"upload %d" % n).digest() * 16


async def _count(app, model) -> int:
    async with app.db.reading() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


def _suppressed(ticket: dict) -> list[str]:
    return [e["data"]["reason"] for e in ticket["events"] if e["kind"] == "ack_suppressed"]


# ----- 1. backscatter -------------------------------------------------------------------------


async def test_an_auto_responder_answering_from_new_addresses_gets_at_most_the_domain_limit(
        app_settings, relay):
    settings = app_settings(email_out={"ack_rate_limit_per_hour": 5,
                                       "ack_rate_limit_per_domain_per_hour": 3})
    async with running(settings) as app:
        for n in range(1, 7):  # each answer from a new plus-address, as such a robot does
            address = f"bot+{n}@responder.example"
            await deliver(app, letter(from_addr=address, subject=f"Your request {n}"), mail_from=address)
        await relay.wait_for(3)
        await asyncio.sleep(0.5)
        last = await reports.show_ticket(app.db, 6, now=app.clock.now())
    assert [str(msg["To"]) for msg in relay.messages] == [f"bot+{n}@responder.example" for n in (1, 2, 3)]
    assert _suppressed(last) == ["domain rate limit"]


async def test_all_acknowledgements_together_are_capped(app_settings, relay):
    async with running(app_settings(email_out={"ack_rate_limit_total_per_hour": 2})) as app:
        for n in range(4):
            address = f"customer@shop{n}.example"
            await deliver(app, letter(from_addr=address, subject=f"Order {n}"), mail_from=address)
        await relay.wait_for(2)
        await asyncio.sleep(0.5)
        last = await reports.show_ticket(app.db, 4, now=app.clock.now())
    assert len(relay.messages) == 2
    assert _suppressed(last) == ["total rate limit"]


async def test_a_flood_from_one_domain_does_not_use_up_everyone_elses_acknowledgements(app_settings, relay):
    settings = app_settings(email_out={"ack_rate_limit_total_per_hour": 3,
                                       "ack_rate_limit_per_domain_per_hour": 2})
    async with running(settings) as app:
        for n in range(5):
            address = f"bot+{n}@flood.example"
            await deliver(app, letter(from_addr=address, subject=f"Auto {n}"), mail_from=address)
        await deliver(app, letter(from_addr="carol@shop.example", subject="Order"),
                      mail_from="carol@shop.example")
        await relay.wait_for(3)
        await asyncio.sleep(0.3)
    assert sorted(str(msg["To"]) for msg in relay.messages) == [
        "bot+0@flood.example", "bot+1@flood.example", "carol@shop.example"]


async def test_reply_to_in_another_domain_never_gets_the_acknowledgement(app_settings, relay):
    async with running(app_settings()) as app:
        await deliver(app, letter(subject="Invoice question", headers={"Reply-To": "victim@example.org"}))
        await deliver(app, letter(subject="Second question",
                                  headers={"Reply-To": "alice.home@example.net"}))
        await relay.wait_for(2)
        first = await reports.show_ticket(app.db, 1, now=app.clock.now())
    by_subject = {str(msg["Subject"]): str(msg["To"]) for msg in relay.messages}
    assert by_subject == {"Re: Invoice question [#1]": "Alice Example <alice@example.net>",
                          "Re: Second question [#2]": "Alice Example <alice.home@example.net>"}
    assert [e["data"]["to"] for e in first["events"] if e["kind"] == "acknowledged"] == ["alice@example.net"]


# ----- 2. a reused Message-ID loses nothing ---------------------------------------------------


async def test_a_different_message_reusing_a_message_id_is_ingested_and_flagged(app_settings, relay):
    first = letter(message_id="<same.1@example.net>", body="The router is down.\n")
    other = letter(message_id="<same.1@example.net>", subject="Billing", body="Please send my invoice.\n")
    async with running(app_settings()) as app:
        await deliver(app, first)
        await deliver(app, other)
        await deliver(app, other)  # its own replay
        await deliver(app, first)  # and the first one's
        tickets = await reports.list_tickets(app.db, now=app.clock.now())
        shown = [await reports.show_ticket(app.db, t["number"], now=app.clock.now()) for t in tickets]
        raws = await _count(app, m.RawMessage)
    assert sorted(t["subject"] for t in tickets) == ["Billing", "Router down"]
    defects = {t["subject"]: t["messages"][0]["defects"] for t in shown}
    assert REUSED_MESSAGE_ID in defects["Billing"]
    assert REUSED_MESSAGE_ID not in defects["Router down"]
    assert raws == 4  # every delivery kept, two of them as duplicates


async def test_a_copy_with_other_trace_headers_is_still_a_duplicate(app_settings, relay):
    original = letter(message_id="<copy.1@example.net>")
    head, _, body = original.partition(b"\r\n\r\n")
    # The same mail by another route: each hop prepends its own trace and authentication
    # fields; the header block is folded differently; the body arrives with LF line ends.
    trace = (b"Return-Path: <alice@example.net>\r\nDelivered-To: help@support.example.com\r\n"
             b"X-Original-To: sales@support.example.com\r\n"
             b"Received: from mx2.example.net by mx.support.example.com; " + DATE.encode() + b"\r\n"
             b"Authentication-Results: mx.support.example.com; spf=pass smtp.mailfrom=example.net\r\n"
             b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.net; s=arc; b=AAAA\r\n"
             b"DKIM-Signature: v=1; a=rsa-sha256; d=forwarder.example; s=k1; b=BBBB\r\n")
    copy = trace + head.replace(b"Subject: Router down", b"Subject:\r\n  Router   down") \
        + b"\r\n\r\n" + body.replace(b"\r\n", b"\n")
    async with running(app_settings()) as app:
        await deliver(app, original)
        await deliver(app, copy, rcpt=(f"sales@{DOMAIN}",))
        tickets = await reports.list_tickets(app.db, now=app.clock.now())
        shown = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert len(tickets) == 1 and len(shown["messages"]) == 2  # the message and its acknowledgement


async def test_reused_message_ids_in_one_batch(app_settings, relay):
    """Both arrive while intake is behind, so one ingest transaction meets them side by side."""
    first = letter(message_id="<batch.1@example.net>", body="First text.\n")
    other = letter(message_id="<batch.1@example.net>", subject="Other", body="Other text.\n")
    async with running(app_settings(), roles=("smtp",)) as door:
        for raw in (first, other, other, first):
            await deliver(door, raw)
        tickets = await reports.list_tickets(door.db, now=door.clock.now())
    assert sorted(t["subject"] for t in tickets) == ["Other", "Router down"]


def test_content_identity_ignores_transport_and_sees_content():
    mail = b"From: a@example.net\r\nTo: b@example.org\r\nSubject: Hi\r\n\r\nHello\r\n"
    same = (b"Received: by mx; " + DATE.encode() + b"\r\nFrom: a@example.net\nTo: b@example.org\n"
            b"Subject:\n Hi\n\nHello\n\n")
    assert spool.content_identity(mail) == spool.content_identity(same)
    for change in (b"From: c@example.net", b"Subject: Ho", b"Cc: d@example.org\r\nSubject: Hi"):
        name = change.split(b":")[0] if not change.startswith(b"Cc") else b"Subject"
        changed = b"\r\n".join(change if line.startswith(name + b":") else line
                               for line in mail.split(b"\r\n"))
        assert spool.content_identity(changed) != spool.content_identity(mail), change
    assert spool.content_identity(mail.replace(b"Hello", b"Hallo")) != spool.content_identity(mail)


# ----- 3. bounces are known by their structure ------------------------------------------------


async def test_a_person_writing_from_postmaster_gets_a_ticket(app_settings, relay):
    note = letter(from_addr="Pat Admin <postmaster@example.org>", subject="Your mail server",
                  body="Hello, your server greets with the wrong host name. Can you check?\n")
    async with running(app_settings()) as app:
        code, _ = await deliver(app, note, mail_from="postmaster@example.org")
        tickets = await reports.list_tickets(app.db, now=app.clock.now())
        held = await _count(app, m.Quarantine)
        [ack] = await relay.wait_for(1)
    assert code == 250 and [t["subject"] for t in tickets] == ["Your mail server"] and held == 0
    assert str(ack["To"]) == "Pat Admin <postmaster@example.org>"


async def test_reports_and_null_sender_prose_from_daemons_are_still_bounces(app_settings, fake_slack):
    prose = "\r\n".join([
        "From: MAILER-DAEMON@mail.example.org", f"To: help@{DOMAIN}", "Subject: failure notice",
        f"Date: {DATE}", "Message-ID: <bounce.9@mail.example.org>", "",
        "I'm afraid I wasn't able to deliver your message to the following addresses.", "",
        "<gone@example.org>:", "550 5.1.1 mailbox unavailable", ""]).encode()
    async with running(app_settings()) as app:
        # A report with structure is one even when a broken MTA gives it a sender.
        await deliver(app, delivery_report(to=f"help@{DOMAIN}"), mail_from="postmaster@mx.example.org")
        await deliver(app, prose, mail_from="")
        tickets = await reports.list_tickets(app.db, now=app.clock.now())
        async with app.db.reading() as s:
            reasons = list((await s.scalars(select(m.Quarantine.reason))).all())
    assert tickets == [] and reasons == ["bounce", "bounce"]


# ----- 4. the return path names the mail ------------------------------------------------------


def test_return_path_addresses_round_trip():
    assert return_path("t7.12.a1b2c3@support.example.com") == "bounces+t7.12.a1b2c3@support.example.com"
    assert returned_message_id("<Bounces+t7.12.a1b2c3@Support.Example.com>",
                               domain="support.example.com") == "t7.12.a1b2c3@support.example.com"
    assert returned_message_id("bounces+x@elsewhere.example", domain="support.example.com") is None
    assert returned_message_id("help@support.example.com", domain="support.example.com") is None
    assert return_path("odd id<>@x.example").startswith("bounces+odd-id--@")


async def test_outgoing_mail_leaves_with_a_return_path_naming_it(app_settings, relay):
    async with running(app_settings()) as app:
        await deliver(app, letter())
        [ack] = await relay.wait_for(1)
    local = str(ack["Message-ID"]).strip("<>").split("@")[0]
    assert relay.sink.received[0][0] == f"bounces+{local}@{DOMAIN}"
    assert str(ack["From"]) == f"Example Support <support@{DOMAIN}>"


async def _acknowledged(app, relay) -> tuple[str, str]:
    """Ticket 1 and its acknowledgement's (Message-ID, return path), once it was sent."""
    await deliver(app, letter())
    [ack] = await relay.wait_for(1)
    await asyncio.sleep(0.3)  # its delivery is recorded
    return str(ack["Message-ID"]).strip("<>"), relay.sink.received[0][0]


async def test_a_report_to_the_return_path_marks_that_mail_failed(app_settings, relay, fake_slack):
    async with running(app_settings()) as app:
        _, bounces = await _acknowledged(app, relay)
        code, _ = await deliver(app, delivery_report(to=bounces, recipient="alice@example.net"),
                                mail_from="", rcpt=(bounces,))
        await wait_until(lambda: any("bounced" in c.args.get("text", "") for c in fake_slack.thread_replies()))
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        tickets, held = await _count(app, m.Ticket), await _count(app, m.Quarantine)
    assert code == 250 and tickets == 1 and held == 0
    assert [x["delivery_status"] for x in t["messages"] if x["kind"] == "automatic"] == ["failed"]
    assert [e["data"]["recipients"] for e in t["events"] if e["kind"] == "bounce"] == [["alice@example.net"]]


async def test_a_report_forwarded_to_us_finds_the_mail_by_its_to_header(app_settings, relay, fake_slack):
    async with running(app_settings()) as app:
        _, bounces = await _acknowledged(app, relay)
        await deliver(app, delivery_report(to=bounces), mail_from="", rcpt=(f"help@{DOMAIN}",))
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
    assert [x["delivery_status"] for x in t["messages"] if x["kind"] == "automatic"] == ["failed"]


async def test_a_return_path_naming_nothing_is_held_as_a_bounce(app_settings, relay, fake_slack):
    async with running(app_settings()) as app:
        code, _ = await deliver(app, delivery_report(to=f"bounces+t9.9.abc@{DOMAIN}"), mail_from="",
                                rcpt=(f"bounces+t9.9.abc@{DOMAIN}",))
        tickets = await _count(app, m.Ticket)
        async with app.db.reading() as s:
            reasons = list((await s.scalars(select(m.Quarantine.reason))).all())
    assert code == 250 and tickets == 0 and reasons == ["bounce"]


async def test_mail_to_the_return_path_is_never_a_ticket_nor_answered(app_settings, relay):
    async with running(app_settings()) as app:
        message_id, bounces = await _acknowledged(app, relay)
        # A responder that answers the return path (RFC 3834 §4) without marking its answer.
        answer = letter(from_addr="desk@partner.example", to=bounces, subject="Re: Router down [#1]",
                        body="Thank you, we received your message.\n")
        await deliver(app, answer, mail_from="desk@partner.example", rcpt=(bounces,))
        # And one to a return path that names nothing.
        stray = letter(from_addr="desk@partner.example", to=f"bounces+zz@{DOMAIN}", subject="Hello")
        await deliver(app, stray, mail_from="desk@partner.example", rcpt=(f"bounces+zz@{DOMAIN}",))
        await asyncio.sleep(0.5)
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        tickets = await _count(app, m.Ticket)
    assert tickets == 1 and len(relay.messages) == 1
    assert [(x["sender"], x["auto_submitted"]) for x in t["messages"] if x["kind"] == "inbound"][-1] == (
        "desk@partner.example", "return-path")
    assert t["status"] == "new"


# ----- 5. quarantine notices are throttled ----------------------------------------------------


async def test_quarantine_notices_are_throttled_per_hour(app_settings, fake_slack):
    clock = FrozenClock(datetime(2026, 3, 3, 10, 30, tzinfo=timezone.utc))

    def notices() -> list[str]:
        return [c.args.get("text", "") for c in fake_slack.posts if c.args.get("channel") == "#helpdesk"]

    async with running(app_settings(slack={"quarantine_notices_per_hour": 3}), clock=clock) as app:
        for n in range(6):
            assert (await deliver(app, not_mail(n)))[0] == 250
        await wait_until(lambda: len(notices()) == 3)
        await asyncio.sleep(0.5)
        assert len(notices()) == 3  # the summary waits for the end of the hour
        assert (await reports.counts(app.db))["quarantine"]["held"] == 6
        clock.advance(minutes=30, seconds=1)
        await deliver(app, not_mail(99))  # a new hour: announced again
        await wait_until(lambda: len(notices()) == 5)
        await asyncio.sleep(0.3)
        async with app.db.reading() as s:
            kept = list((await s.scalars(select(m.RawMessage.size))).all())
    summary = [text for text in notices() if "more held" in text]
    assert summary == ["Quarantine: 3 more held this hour (10:00–11:00 UTC) without a notice each;"
                       " see deskbell reprocess"]
    assert len(notices()) == 5 and len(kept) == 7 and all(kept)


# ----- 6. attachments past the limits are withheld, never dropped -----------------------------


async def test_attachments_past_the_limits_are_kept_as_withheld_rows(app_settings, relay):
    files = (("notes.txt", b"n" * 600), ("disk.img", b"d" * 2000), ("scan.pdf", b"s" * 1000),
             ("log.txt", b"l" * 100))
    settings = app_settings(attachments={"max_bytes_per_file": 1000, "max_bytes_per_message": 1500})
    async with running(settings) as app:
        await deliver(app, letter(files=files))
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        blobs = await _count(app, m.Blob)
    [message] = [x for x in t["messages"] if x["kind"] == "inbound"]
    shown = [(a["name"], a["size"], a["withheld"], a["sha256"] is None) for a in message["attachments"]]
    assert shown == [("notes.txt", 600, False, False), ("disk.img", 2000, True, True),
                     ("scan.pdf", 1000, True, True), ("log.txt", 100, False, False)]
    assert blobs == 2
    assert [d for d in message["defects"] if "withheld" in d] == [
        "attachment 'disk.img' (2000 bytes) withheld: over attachments.max_bytes_per_file",
        "attachment 'scan.pdf' (1000 bytes) withheld: over attachments.max_bytes_per_message"]


# ----- none of it scans a table that grows ----------------------------------------------------


@sqlite_plans
async def test_these_paths_use_indexes_only(app_settings, relay, fake_slack, tmp_path):
    statements: list[tuple[str, Any]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            many = executemany and parameters and isinstance(parameters[0], (tuple, list, dict))
            statements.append((statement, parameters[0] if many else parameters))

    settings = app_settings(slack={"quarantine_notices_per_hour": 1},
                            attachments={"max_bytes_per_file": 1000, "max_bytes_per_message": 1500})
    async with running(settings) as app:
        engines = {app.db.write_engine.sync_engine, app.db.read_engine.sync_engine}
        for engine in engines:
            event.listen(engine, "before_cursor_execute", keep)
        _, bounces = await _acknowledged(app, relay)
        await deliver(app, letter(message_id="<plan.1@example.net>", files=(("big.bin", b"b" * 2000),)))
        await deliver(app, letter(message_id="<plan.1@example.net>", subject="Other", body="Other.\n"))
        await deliver(app, delivery_report(to=bounces), mail_from="", rcpt=(bounces,))
        await deliver(app, letter(from_addr="desk@partner.example", to=bounces, subject="Thanks"),
                      mail_from="desk@partner.example", rcpt=(bounces,))
        for n in range(3):
            await deliver(app, not_mail(n))
        await asyncio.sleep(0.3)
        for engine in engines:
            event.remove(engine, "before_cursor_execute", keep)
    problems = await asyncio.to_thread(plan_problems, tmp_path / "deskbell.db", statements)
    assert len(statements) > 20
    assert problems == {}
