"""Manager digests leave as mail, once (issue acceptance 3, 4 and 5; DESIGN §3 and §5).

The digest goes through the outbox to a real SMTP relay on loopback; the schedule is checked
against hand-worked DST instants; "once per recipient, group and period" is checked across
two writers at the same instant, a restart and a crash in the middle of the write.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli import main
from bot.config.schema import Digest
from bot.core import deliveries, digest_delivery, intents, scheduler
from bot.core.desk import Desk
from bot.core.digest_schedule import latest_due, period_containing, period_starting
from bot.core.staff import Actor
from bot.outbound.compose import EmailComposer
from bot.outbound.email import EmailSender
from bot.outbox.dispatcher import Dispatcher
from bot.store import models as m
from bot.store.db import Database
from tests.conftest import DOMAIN, settings_dict
from tests.core.test_digest import RULES, arrive
from tests.core.test_rules import helpdesk, utc

UTC = timezone.utc
BOSSES = ["boss@example.com", "Deputy@Example.com"]


def digest_rules(**digest) -> dict:
    return {**RULES, "digests": [{"name": "daily", "at": "08:00", "timezone": "UTC", "recipients": BOSSES,
                                  "groups": ["support"], **digest}]}


async def mails_queued(db: Database) -> list[m.OutboxItem]:
    async with db.reading() as s:
        return list((await s.scalars(select(m.OutboxItem).where(m.OutboxItem.kind == intents.MAIL)
                                     .order_by(m.OutboxItem.id))).all())


# ----- 3. the mail ----------------------------------------------------------------------------


async def test_the_digest_reaches_the_relay_as_text_and_html_with_its_headers(tmp_path, relay):
    async with helpdesk(tmp_path, utc("2026-12-08 09:00"), relay_port=relay.port, **digest_rules()) as (desk, clock):
        await arrive(desk, "ann@example.net", subject="<b>Résumé</b> of a very long subject line that "
                                                     "goes on and on well past what one line of text holds")
        await actions_reply(desk)
        clock._at = utc("2026-12-09 08:00")
        outcome = await digest_delivery.send(desk, desk.settings.digests[0], "support",
                                             period_starting(desk.settings.digests[0], date(2026, 12, 8)),
                                             now=desk.clock.now())
        assert outcome.queued == ("boss@example.com", "deputy@example.com")
        await deliver_mail(desk)
        received = [mail for mail in await relay.wait_for(4) if mail["Message-ID"].startswith("<digest.")]

    assert sorted(str(mail["To"]) for mail in received) == ["Deputy@example.com", "boss@example.com"]
    mail = received[0]
    assert mail.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in mail.iter_parts()] == ["text/plain", "text/html"]
    assert parsedate_to_datetime(mail["Date"]) == utc("2026-12-09 08:00")
    assert re.fullmatch(rf"<digest\.[0-9a-f]{{16}}@{re.escape(DOMAIN)}>", mail["Message-ID"])
    assert mail["Auto-Submitted"] == "auto-generated" and mail["X-Auto-Response-Suppress"] == "All"
    assert mail["Subject"] == "[support] Daily digest, Tue 08 Dec 2026: 1 new, 0 resolved, 1 in the backlog"
    assert received[0]["Message-ID"] != received[1]["Message-ID"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert readable_at_72(text)
    assert "Résumé" in text and "New" in text and "First response" in text
    # Customer text is escaped in the HTML; nothing is fetched from elsewhere, no script runs.
    assert "&lt;b&gt;Résumé&lt;/b&gt;" in html and "<b>Résumé" not in html
    assert "<script" not in html.lower() and " src=" not in html and "url(" not in html
    # What mail clients render alike: inline styles on tables, no layout CSS they drop.
    assert "<link" not in html and not re.search(r"display:\s*(flex|grid)|position:|float:", html)
    assert 'id="digest" class="card" width="100%"' in html and "max-width:640px" in html
    assert 'id="chart"' in html and "http://" not in html


def readable_at_72(text: str) -> bool:
    """Every line fits 72 columns, except one that is a link alone (a URL is never broken)."""
    long = [line for line in text.splitlines()
            if len(line) > 72 and not re.fullmatch(r"\s*https://\S+", line)]
    assert not long, long
    return True


async def actions_reply(desk: Desk) -> None:
    from bot.core import actions

    await actions.reply(desk, actor=Actor("UBOB", "Bob Agent"), number=1, text="Hello", status_after="open")


async def deliver_mail(desk: Desk) -> None:
    s = desk.settings.email_out
    sender = EmailSender(composer=EmailComposer(from_address=s.from_address, from_name=s.from_name,
                                                loop_marker=s.reply_domain),
                         host=s.host, port=s.port, starttls=False, username="", password="", timeout=5)
    dispatcher = Dispatcher(db=desk.db, clock=desk.clock, senders={"email": sender}, policy=deliveries.RetryPolicy())
    await dispatcher.drain(timeout=20)
    await dispatcher.close()


def test_an_empty_period_renders_a_friendly_digest_not_a_broken_table(tmp_path):
    """Acceptance 5 through the command line: a desk with no ticket at all."""
    path = tmp_path / "deskbell.yaml"
    import yaml

    path.write_text(yaml.safe_dump(settings_dict(tmp_path, **digest_rules())))
    runner = CliRunner()
    html = runner.invoke(main, ["digest", "--group", "support", "--period", "2026-11-23", "--preview",
                                "--config", str(path)])
    assert html.exit_code == 0, html.output
    assert html.stdout.startswith("<!DOCTYPE html>")
    assert 'id="quiet"' in html.stdout and "Nothing happened in this period" in html.stdout
    assert "Heaviest open tickets" not in html.stdout  # no empty list under a heading
    text = runner.invoke(main, ["digest", "--group", "support", "--period", "2026-11-23", "--preview", "--text",
                                "--config", str(path)])
    assert "Nothing happened" in text.stdout and "Monday 23 November 2026" in text.stdout
    assert readable_at_72(text.stdout)
    sent = runner.invoke(main, ["digest", "--group", "support", "--period", "2026-11-23", "--send",
                                "--config", str(path)])
    assert sent.exit_code == 0 and "queued for boss@example.com, deputy@example.com" in sent.output
    again = runner.invoke(main, ["digest", "--group", "support", "--period", "2026-11-23", "--send",
                                 "--config", str(path)])
    assert "already sent to boss@example.com, deputy@example.com (--force" in again.output
    assert "queued" not in again.output
    forced = runner.invoke(main, ["digest", "--group", "support", "--period", "2026-11-23", "--force",
                                  "--config", str(path)])
    assert "queued for boss@example.com, deputy@example.com" in forced.output
    for bad, hint in ((["--group", "nope", "--preview"], "no handler group 'nope'"),
                      (["--group", "support", "--period", "23/11", "--preview"], "--period"),
                      (["--group", "support"], "give --preview, or --send")):
        refused = runner.invoke(main, ["digest", *bad, "--config", str(path)])
        assert refused.exit_code == 2 and hint in refused.output


# ----- 4. once per recipient and period ---------------------------------------------------------


async def test_two_workers_a_restart_and_a_crash_send_each_period_once(tmp_path, monkeypatch):
    async with helpdesk(tmp_path, utc("2026-12-09 08:00"), **digest_rules()) as (desk, clock):
        # Wednesday 08:00: Tuesday's digest, from two workers passing at the same instant.
        other = Database(desk.settings.database.url)  # a second worker process
        try:
            twin = Desk(db=other, settings=desk.settings, clock=desk.clock)
            done = await asyncio.gather(scheduler.run_pass(desk), scheduler.run_pass(twin))
        finally:
            await other.dispose()
        assert sorted(d["digests"] for d in done) == [0, 2]
        # A restart at send time: the same instant, a new connection pool.
        restarted = Database(desk.settings.database.url)
        try:
            assert (await scheduler.run_pass(Desk(db=restarted, settings=desk.settings, clock=desk.clock)))["digests"] == 0
        finally:
            await restarted.dispose()
        queued = await mails_queued(desk.db)
        assert sorted(item.payload["to"][0] for item in queued) == ["Deputy@example.com", "boss@example.com"]

        # A crash between claiming the row and queueing the mail loses nothing: the claim rolls back.
        clock._at = utc("2026-12-10 08:00")
        real = intents.mail
        calls = {"n": 0}

        def crash_once(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise ConnectionError("the database went away mid-write")
            return real(*args, **kwargs)

        monkeypatch.setattr(intents, "mail", crash_once)
        assert (await scheduler.run_pass(desk))["digests"] == 0  # logged; the next pass tries again
        monkeypatch.setattr(intents, "mail", real)
        assert (await scheduler.run_pass(desk))["digests"] == 2
        assert (await scheduler.run_pass(desk))["digests"] == 0
        async with desk.db.reading() as s:
            ledger = (await s.execute(select(m.DigestSend.period_start, func.count()).group_by(
                m.DigestSend.period_start).order_by(m.DigestSend.period_start))).all()
        assert [(start, n) for start, n in ledger] == [(utc("2026-12-08 00:00"), 2), (utc("2026-12-09 00:00"), 2)]
        assert len(await mails_queued(desk.db)) == 4


# ----- 4. the schedule in the recipient's time zone ---------------------------------------------

NEW_YORK = Digest(name="ny", at="08:00", timezone="America/New_York", recipients=["boss@example.com"])


@pytest.mark.parametrize("now, first_day, hours", [
    # Clocks go back on Sunday 1 November 2026 at 02:00 EDT: 08:00 is 12:00 UTC before, 13:00 after.
    ("2026-10-31 11:59", "2026-10-29", 24),
    ("2026-10-31 12:00", "2026-10-30", 24),
    ("2026-11-01 12:59", "2026-10-30", 24),  # 07:59 EST: Saturday's digest is not due yet
    ("2026-11-01 13:00", "2026-10-31", 24),
    ("2026-11-02 13:00", "2026-11-01", 25),  # the day of the change has 25 hours
    # Clocks go forward on Sunday 8 March 2026: that day has 23 hours; 08:00 EDT is 12:00 UTC.
    ("2026-03-09 11:59", "2026-03-07", 24),
    ("2026-03-09 12:00", "2026-03-08", 23),
])
def test_a_daily_digest_follows_the_wall_clock_across_dst(now, first_day, hours):
    period = latest_due(NEW_YORK, utc(now))
    assert period.first_day == date.fromisoformat(first_day)
    assert period.end - period.start == timedelta(hours=hours)
    assert period.send_at.astimezone(NEW_YORK.zone).strftime("%H:%M") == "08:00"
    assert period.start.astimezone(NEW_YORK.zone).strftime("%H:%M") == "00:00"


def test_a_weekly_digest_covers_the_seven_days_before_its_day():
    berlin = Digest(name="w", at="07:30", timezone="Europe/Berlin", recipients=["boss@example.com"],
                    period="weekly", day="mon")
    # Berlin leaves summer time on Sunday 25 October 2026: that week has 169 hours.
    week = period_containing(berlin, date(2026, 10, 21))
    assert (week.first_day, week.last_day) == (date(2026, 10, 19), date(2026, 10, 25))
    assert week.end - week.start == timedelta(hours=169)
    assert week.send_at == datetime(2026, 10, 26, 6, 30, tzinfo=UTC)  # 07:30 CET
    assert latest_due(berlin, datetime(2026, 10, 26, 6, 29, tzinfo=UTC)).first_day == date(2026, 10, 12)
    assert latest_due(berlin, week.send_at) == week


async def test_the_scheduler_sends_at_eight_new_york_time_across_the_change(tmp_path):
    rules = digest_rules(timezone="America/New_York", recipients=["boss@example.com"])
    async with helpdesk(tmp_path, utc("2026-10-31 12:30"), **rules) as (desk, clock):
        assert (await scheduler.run_pass(desk))["digests"] == 1  # Friday 30 October's
        for when, expected in (("2026-11-01 12:00", 0), ("2026-11-01 12:59", 0), ("2026-11-01 13:00", 1),
                               ("2026-11-02 12:30", 0), ("2026-11-02 13:00", 1)):
            clock._at = utc(when)
            assert (await scheduler.run_pass(desk))["digests"] == expected, when
        sent = [item.payload["mail"]["values"]["report"]["first_day"] for item in await mails_queued(desk.db)]
    assert sent == ["2026-10-30", "2026-10-31", "2026-11-01"]
