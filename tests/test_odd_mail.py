"""Odd real-world mail through the real SMTP door: a ticket, a recognised bounce/auto-reply,
or quarantine with the raw bytes — never a crash, never a 5xx for our own bug."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.core import reports
from bot.store import models as m
from tests import mailfixtures as fx
from tests.conftest import DOMAIN, deliver, running, wait_until

NO_ACK = {"out_of_office", "mailing_list", "loop_header"}
# A bounce about mail we never sent is held as "bounce", not made a ticket (DESIGN §2.6).
HELD = {"garbage": "unparseable", "dsn_bounce": "bounce", "plain_bounce": "bounce"}


async def _counts(app) -> tuple[int, int, list[str]]:
    async with app.db.reading() as s:
        tickets = await s.scalar(select(func.count(m.Ticket.id)))
        raws = await s.scalar(select(func.count(m.RawMessage.id)))
        held = list((await s.scalars(select(m.Quarantine.reason))).all())
    return tickets or 0, raws or 0, held


@pytest.mark.parametrize("scenario", sorted(fx.ODD_MAIL))
async def test_odd_mail_is_kept_and_never_5xx(scenario, app_settings, relay, fake_slack):
    raw = fx.ODD_MAIL[scenario]()
    if raw is None:
        pytest.skip("../shared/fixtures/winmail-one-file.dat is not present")
    envelope_from = "" if scenario in ("dsn_bounce", "plain_bounce") else "customer@example.net"
    async with running(app_settings()) as app:
        code, reply = await deliver(app, raw, mail_from=envelope_from, rcpt=(f"help@{DOMAIN}",))
        assert code == 250, (code, reply)
        tickets, raws, held = await _counts(app)
        assert raws == 1, "the exact bytes are always stored"
        async with app.db.reading() as s:
            stored = await s.scalar(select(m.RawMessage.data))
        # smtplib ends DATA with CRLF when the bytes do not (RFC 5321 §4.1.1.4).
        assert stored in (raw, raw + b"\r\n")
        if scenario in HELD:
            assert (tickets, held) == (0, [HELD[scenario]])
            await wait_until(lambda: any("quarantine" in c.args.get("text", "") for c in fake_slack.posts))
            return
        assert tickets == 1 and held == []
        await wait_until(lambda: len(fake_slack.cards()) == 1)
        # Whether it was acknowledged is recorded with the ticket, before its card goes out.
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        acked = any(e["kind"] == "acknowledged" for e in t["events"])
        assert acked == (scenario not in NO_ACK), t["events"]
        if acked:
            await relay.wait_for(1)
    if scenario == "winmail_dat":
        [attachment] = t["messages"][0]["attachments"]
        assert (attachment["name"], attachment["size"], attachment["sha256"]) == (
            fx.WINMAIL_INNER_NAME, fx.WINMAIL_INNER_SIZE, fx.WINMAIL_INNER_SHA256)
    if scenario == "big_attachment_10mb":
        assert [a["size"] for a in t["messages"][0]["attachments"]] == [fx.BIG_SIZE]
    if scenario == "html_only":
        assert t["messages"][0]["body"] and "<" not in t["messages"][0]["body"]


async def test_bounce_of_our_acknowledgement_marks_it_failed_not_a_ticket(app_settings, relay, fake_slack):
    async with running(app_settings()) as app:
        await deliver(app, fx.plain(to_addr=f"help@{DOMAIN}"))
        [ack] = await relay.wait_for(1)
        dsn = fx.dsn_bounce(original_message_id=ack["Message-ID"])
        code, _ = await deliver(app, dsn, mail_from="", rcpt=(f"support@{DOMAIN}",))
        assert code == 250
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        await wait_until(lambda: any("bounced" in c.args.get("text", "") for c in fake_slack.thread_replies()))
        tickets, _, held = await _counts(app)
    assert tickets == 1 and held == []
    assert [msg["delivery_status"] for msg in t["messages"] if msg["kind"] == "automatic"] == ["failed"]
    assert any(e["kind"] == "bounce" for e in t["events"])


async def test_reprocess_turns_held_mail_into_a_ticket_once(app_settings, fake_slack, monkeypatch):
    """Invariant 4 and the door pipeline: a message that breaks the parser is held with its
    bytes and announced; once the parser is fixed, `reprocess` makes it a ticket, once."""
    from bot.inbound import pipeline

    raw = fx.plain(subject="Held by a parser bug")
    fixed_parser = pipeline.parse_email

    def broken_parser(data: bytes, **kwargs):  # noqa: ANN003, ANN202
        if b"parser bug" in data:
            raise UnicodeDecodeError("utf-8", data, 0, 1, "an injected parser fault")
        return fixed_parser(data, **kwargs)

    async with running(app_settings()) as app:
        monkeypatch.setattr(pipeline, "parse_email", broken_parser)
        code, _ = await deliver(app, raw)
        assert code == 250
        await wait_until(lambda: any("quarantine #1" in c.args.get("text", "") for c in fake_slack.posts))
        tickets, raws, held = await _counts(app)
        assert (tickets, raws, held) == (0, 1, ["unparseable"])
        async with app.db.reading() as s:
            assert await s.scalar(select(m.RawMessage.data)) in (raw, raw + b"\r\n")
        assert await app.reprocess() == [(1, "still held: unparseable the parser failed: "
                                             "UnicodeDecodeError: 'utf-8' codec can't decode byte "
                                             "0x46 in position 0: an injected parser fault")]
        monkeypatch.setattr(pipeline, "parse_email", fixed_parser)  # the fix is deployed
        assert await app.reprocess() == [(1, "reprocessed ticket #1")]
        assert await app.reprocess() == []
        await wait_until(lambda: [c.args["blocks"][0]["type"] for c in fake_slack.cards()] == ["section", "header"])
        t = await reports.show_ticket(app.db, 1, now=app.clock.now())
        await deliver(app, fx.garbage())
        [(item, what)] = await app.reprocess()
        assert item == 2 and what.startswith("still held")
        quarantine_notices = [c for c in fake_slack.posts if "quarantine" in c.args.get("text", "")]
    assert t["subject"] == "Held by a parser bug"
    assert len(quarantine_notices) == 2, "held mail is announced once, not again on each reprocess"
