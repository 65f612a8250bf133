"""The IMAP door against a real Dovecot (tests/imapserver.py): support accounts' mail becomes
tickets exactly once, whatever other clients, the network or the server do meanwhile.

Each test makes its own Dovecot user (a fresh mailbox) and runs Deskbell's ``imap`` and
``worker`` roles on this event loop, with the Slack and relay fakes of conftest.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import pytest
import yaml

from bot.config import Settings
from bot.core import mailbox_ledger, reports
from bot.inbound import imap as imap_door
from bot.inbound.imapclient import ImapSession, LinkDead, LoginRefused, uid_set
from tests.conftest import DOMAIN, database_value, running, settings_dict, wait_until
from tests.imapserver import Dovecot, TcpProxy
from tests.pg import pg_databases, postgres_server  # noqa: F401  (fixtures)


def customer_mail(n: int, *, subject: str | None = None, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.net>"
    msg["To"] = f"help@{DOMAIN}"
    msg["Subject"] = subject or f"Router problem {n}"
    msg["Message-ID"] = make_msgid(idstring=f"imap{n}", domain="example.net")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"My router number {n} blinks red.\n")
    return msg.as_bytes(policy=SMTP)


def account(dovecot: Dovecot, user: str, password: str, **overrides: Any) -> dict[str, Any]:
    return {"name": "support", "host": dovecot.host, "port": dovecot.port, "tls": False,
            "username": user, "password": password, "handler_group": "support",
            "idle_refresh_seconds": 30, "response_timeout_seconds": 5, **overrides}


@pytest.fixture
def mailbox(dovecot: Dovecot):
    """(username, password, another client of that mailbox)."""
    user, password = dovecot.add_user()
    client = dovecot.client(user, password)
    yield user, password, client
    client.close()


@pytest.fixture
def imap_settings(tmp_path, fake_slack, relay):
    def make(*accounts: dict[str, Any], **overrides: Any) -> Settings:
        return Settings.model_validate(settings_dict(
            tmp_path, slack_url=fake_slack.url, relay_port=relay.port,
            imap_accounts=list(accounts), **overrides))
    return make


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(imap_door, "BACKOFF_FIRST", 0.1)
    monkeypatch.setattr(imap_door, "BACKOFF_MAX", 0.5)


async def tickets(app) -> list[dict[str, Any]]:
    return await reports.list_tickets(app.db, now=app.clock.now(), limit=10_000)


async def count_tickets(app, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        found = await tickets(app)
        return found if len(found) >= n else None
    found = await wait_until(enough, timeout=timeout, interval=0.1)
    assert len(found) == n
    return found


async def test_appended_mail_becomes_tickets_with_cards_and_a_reply_joins(
        dovecot, mailbox, imap_settings, fake_slack, relay):
    user, password, client = mailbox
    for n in range(3):
        await asyncio.to_thread(client.append, customer_mail(n))
    settings = imap_settings(account(dovecot, user, password, from_address=f"desk@{DOMAIN}"))
    async with running(settings, roles=("imap", "worker")) as app:
        found = await count_tickets(app, 3)
        assert {t["subject"] for t in found} == {f"Router problem {n}" for n in range(3)}
        await wait_until(lambda: len(fake_slack.cards()) == 3)
        assert {c.args["channel"] for c in fake_slack.cards()} == {"#support"}
        assert "support mailbox" in str(fake_slack.cards()[0].args["blocks"])
        # Taken: moved to the processed folder, after the spool commit.
        assert await asyncio.to_thread(client.count, "INBOX") == 0
        assert await asyncio.to_thread(client.count, "Deskbell/Processed") == 3

        # The acknowledgement leaves from the account's address; answering it threads.
        ack = await wait_until(lambda: relay.messages, timeout=20)
        first = ack[0]
        assert first["From"].endswith(f"<desk@{DOMAIN}>")
        assert first["Reply-To"] is None
        answer = EmailMessage()
        answer["From"] = first["To"]
        answer["To"] = f"desk@{DOMAIN}"
        answer["Subject"] = "Re: " + first["Subject"]
        answer["Message-ID"] = make_msgid(domain="example.net")
        answer["In-Reply-To"] = first["Message-ID"]
        answer.set_content("Still blinking.\n")
        await asyncio.to_thread(client.append, answer.as_bytes(policy=SMTP))
        number = int(first["X-Deskbell-Ticket"])

        async def joined() -> bool:
            shown = await reports.show_ticket(app.db, number, now=app.clock.now())
            return len([m for m in shown["messages"] if m["kind"] == "inbound"]) == 2
        await wait_until(joined, timeout=20, interval=0.1)
        assert len(await tickets(app)) == 3
        shown = await reports.show_ticket(app.db, number, now=app.clock.now())
        assert shown["account"] == "support"
        assert {(m["channel"], m["account"]) for m in shown["messages"] if m["kind"] == "inbound"} == {
            ("email", "support")}


async def test_a_message_read_by_someone_else_first_is_still_taken(
        dovecot, mailbox, imap_settings):
    """Correctness never rests on \\Seen; and we never set it (BODY.PEEK[])."""
    user, password, client = mailbox
    seen_uid = await asyncio.to_thread(client.append, customer_mail(1))
    await asyncio.to_thread(client.set_seen, seen_uid)
    unseen_uid = await asyncio.to_thread(client.append, customer_mail(2))
    settings = imap_settings(account(dovecot, user, password, processed_mailbox=""))
    async with running(settings, roles=("imap", "worker")) as app:
        await count_tickets(app, 2)
        # Left in place (no processed folder), flags as they were.
        assert await asyncio.to_thread(client.uids, "INBOX") == [seen_uid, unseen_uid]
        assert "\\Seen" not in await asyncio.to_thread(client.flags, unseen_uid)
        # The ledger, not a flag, keeps them from being taken again: a new one is the only news.
        await asyncio.to_thread(client.append, customer_mail(3))
        await count_tickets(app, 3)
        await asyncio.sleep(0.5)
        assert len(await tickets(app)) == 3


def test_uid_sets_are_compact():
    assert uid_set([9, 1, 2, 3, 7, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"


async def test_sigkill_during_a_batch_then_restart_makes_each_message_one_ticket(
        dovecot, mailbox, tmp_path, fake_slack, relay):
    """DESIGN §2.1 for the IMAP door: killed with -9 mid-backlog, nothing is lost or doubled."""
    from tests.test_process import BotProcess

    user, password, client = mailbox
    total = 300
    for n in range(total):
        await asyncio.to_thread(client.append, customer_mail(n))
    config = tmp_path / "deskbell.yaml"
    config.write_text(yaml.safe_dump(settings_dict(
        tmp_path, slack_url=fake_slack.url, relay_port=relay.port,
        imap_accounts=[account(dovecot, user, password)])))
    bot = await asyncio.to_thread(BotProcess(config, tmp_path).start)
    try:
        # Mid-batch: some messages spooled, most still on the server.
        await wait_until(lambda: 20 <= database_value(tmp_path, "SELECT count(*) FROM raw_messages"),
                         timeout=60, interval=0.005)
    finally:
        await asyncio.to_thread(bot.kill)
    spooled_at_kill = database_value(tmp_path, "SELECT count(*) FROM raw_messages")
    assert spooled_at_kill < total, "the kill came too late to prove anything"
    bot = await asyncio.to_thread(BotProcess(config, tmp_path).start)
    try:
        await wait_until(lambda: database_value(
            tmp_path, "SELECT count(*) FROM tickets") >= total and database_value(
            tmp_path, "SELECT count(*) FROM raw_messages WHERE state = 'queued'") == 0,
            timeout=120, interval=0.2)
        await asyncio.sleep(0.5)  # anything doubled would show by now
    finally:
        assert await asyncio.to_thread(bot.terminate) == 0
    assert database_value(tmp_path, "SELECT count(*) FROM tickets") == total
    assert database_value(tmp_path, "SELECT count(DISTINCT subject) FROM tickets") == total
    assert database_value(tmp_path, "SELECT count(*) FROM raw_messages") == total
    assert await asyncio.to_thread(client.count, "INBOX") == 0
    assert await asyncio.to_thread(client.count, "Deskbell/Processed") == total


async def test_a_connection_cut_mid_idle_is_reopened_and_mail_sent_meanwhile_is_taken(
        dovecot, mailbox, imap_settings):
    user, password, client = mailbox
    async with await TcpProxy.start(dovecot.host, dovecot.port) as proxy:
        settings = imap_settings(account(dovecot, user, password, port=proxy.port))
        async with running(settings, roles=("imap", "worker")) as app:
            poller = app.imap_pollers[0][0]
            await wait_until(poller.connected.is_set)
            await asyncio.sleep(0.3)  # in IDLE now
            assert proxy.cut() == 1
            await asyncio.to_thread(client.append, customer_mail(1))
            await count_tickets(app, 1)
            assert proxy.accepted >= 2
            assert poller.failures == 0  # a full pass since: the backoff starts afresh


async def test_a_server_that_stops_answering_is_noticed_and_mail_is_taken_after(
        dovecot, mailbox, imap_settings):
    user, password, client = mailbox
    async with await TcpProxy.start(dovecot.host, dovecot.port) as proxy:
        settings = imap_settings(account(dovecot, user, password, port=proxy.port,
                                         idle_refresh_seconds=0.5, response_timeout_seconds=1))
        async with running(settings, roles=("imap", "worker")) as app:
            poller = app.imap_pollers[0][0]
            await wait_until(poller.connected.is_set)
            proxy.freeze()
            await asyncio.to_thread(client.append, customer_mail(1))
            # The watchdog: the IDLE's DONE goes unanswered, so the link counts as dead.
            await wait_until(lambda: poller.failures >= 1, timeout=10)
            assert not await tickets(app)
            proxy.thaw()
            await count_tickets(app, 1)


async def test_a_new_uidvalidity_rereads_the_mailbox_without_duplicating(
        dovecot, mailbox, imap_settings, tmp_path):
    user, password, client = mailbox
    await asyncio.to_thread(client.create, "Support")
    mails = [customer_mail(n) for n in range(3)]
    for raw in mails:
        await asyncio.to_thread(client.append, raw, "Support")
    settings = imap_settings(account(dovecot, user, password, mailbox="Support", processed_mailbox="",
                                     idle_refresh_seconds=0.5, response_timeout_seconds=2))
    async with running(settings, roles=("imap", "worker")) as app:
        await count_tickets(app, 3)
        before = await asyncio.to_thread(client.uidvalidity, "Support")
        # The mailbox recreated with the same messages (a server migration, a restore).
        await asyncio.to_thread(client.delete, "Support")
        await asyncio.sleep(1.1)  # Dovecot's UIDVALIDITY is a clock reading
        await asyncio.to_thread(client.create, "Support")
        # New mail first: it gets UIDs the old mailbox had given already, so only a full
        # re-read finds it; the old messages come back and must not be ingested again.
        for raw in [customer_mail(8), customer_mail(9), *mails]:
            await asyncio.to_thread(client.append, raw, "Support")
        assert await asyncio.to_thread(client.uidvalidity, "Support") != before
        await count_tickets(app, 5)
        await wait_until(lambda: database_value(tmp_path, "SELECT count(*) FROM raw_messages") == 8,
                         timeout=20, interval=0.1)
        await asyncio.sleep(0.5)
        assert len(await tickets(app)) == 5
        assert database_value(tmp_path, "SELECT count(*) FROM messages WHERE kind = 'inbound'") == 5


async def test_a_wrong_password_is_reported_and_retried_and_the_other_account_works(
        dovecot, mailbox, imap_settings, caplog):
    user, password, client = mailbox
    other, other_password = dovecot.add_user()
    await asyncio.to_thread(client.append, customer_mail(1))
    good = account(dovecot, user, password)
    bad = account(dovecot, other, other_password + "-wrong", name="billing")
    settings = imap_settings(good, bad)
    caplog.set_level(logging.INFO, logger="bot.inbound.imap")
    async with running(settings, roles=("imap", "worker")) as app:
        await count_tickets(app, 1)
        poller = next(p for p, _ in app.imap_pollers if p.account.name == "billing")
        await wait_until(lambda: poller.failures >= 3, timeout=10)  # it keeps trying, backing off
        refused = [r for r in caplog.records if "login refused" in r.getMessage()]
        assert refused and refused[0].levelno == logging.ERROR
        assert other_password not in caplog.text
        states = {s.account: s for s in await mailbox_ledger.states(app.db)}
        assert "refused" in states["billing"].last_error
        # deskbell check names the broken account and passes the good one.
        from bot.checks import probe_imap
        probes = [await probe_imap(a, states.get(a.name)) for a in settings.imap_accounts]
        assert [p.ok for p in probes] == [True, False]
        assert "refused" in probes[1].detail and "INBOX has 0 message(s)" in probes[0].detail


async def test_tls_starttls_and_every_login_method(dovecot, mailbox):
    user, password, _ = mailbox
    context = dovecot.ssl_context()

    async def login(port: int, *, tls: bool = False, starttls: bool = False, **how: str) -> str:
        session = ImapSession(host="localhost", port=port, tls=tls, starttls=starttls, timeout=5,
                              ssl_context=context)
        async with session as imap:
            used = await imap.login(user, **how)
            assert (await imap.select("INBOX")).uidvalidity > 0
            return used

    assert await login(dovecot.tls_port, tls=True, password=password) == "plain"
    assert await login(dovecot.port, starttls=True, password=password, mechanism="login") == "login"
    assert await login(dovecot.port, password=password, mechanism="plain") == "plain"
    token = dovecot.oauth2_token(user)
    assert await login(dovecot.tls_port, tls=True, mechanism="xoauth2", oauth2_token=token) == "xoauth2"
    with pytest.raises(LoginRefused):  # an expired token: refused at once, no hang
        await asyncio.wait_for(login(dovecot.tls_port, tls=True, mechanism="xoauth2",
                                     oauth2_token=dovecot.oauth2_token(user, lifetime=-60)), 5)
    with pytest.raises(LoginRefused):
        await login(dovecot.port, password=password + "x")
    # A certificate nobody vouches for is refused.
    untrusted = ImapSession(host="localhost", port=dovecot.tls_port, tls=True, starttls=False, timeout=5)
    with pytest.raises(LinkDead, match="certificate"):
        await untrusted.connect()


async def test_oversize_mail_stays_in_the_mailbox_once_and_check_lists_it(
        dovecot, mailbox, imap_settings):
    user, password, client = mailbox
    big = customer_mail(1, subject="Huge scan")[:-2] + b"x" * 8000 + b"\r\n"
    big_uid = await asyncio.to_thread(client.append, big)
    await asyncio.to_thread(client.append, customer_mail(2))
    settings = imap_settings(account(dovecot, user, password, max_message_bytes=4096,
                                     idle_refresh_seconds=0.3))
    async with running(settings, roles=("imap", "worker")) as app:
        [ticket] = await count_tickets(app, 1)
        assert ticket["subject"] == "Router problem 2"
        await asyncio.sleep(1)  # several IDLE rounds: never fetched again, never taken
        assert await asyncio.to_thread(client.uids, "INBOX") == [big_uid]
        [state] = await mailbox_ledger.states(app.db)
        assert [x.uid for x in state.left_behind] == [big_uid]
        from bot.checks import probe_imap
        probe = await probe_imap(settings.imap_accounts[0], state)
        assert not probe.ok and "over max_message_bytes" in probe.detail


async def test_mail_intake_quarantines_follows_to_the_quarantine_folder(
        dovecot, mailbox, imap_settings, fake_slack, tmp_path):
    user, password, client = mailbox
    await asyncio.to_thread(client.append, b"no header block at all, just words\r\nand more\r\n")
    settings = imap_settings(account(dovecot, user, password, idle_refresh_seconds=0.3))
    async with running(settings, roles=("imap", "worker")):
        await wait_until(lambda: database_value(
            tmp_path, "SELECT count(*) FROM quarantine"), timeout=20, interval=0.1)
        await wait_until(lambda: asyncio.to_thread(client.count, "Deskbell/Quarantine"), timeout=20)
        assert await asyncio.to_thread(client.count, "Deskbell/Processed") == 0
        assert await asyncio.to_thread(client.count, "INBOX") == 0
        await wait_until(lambda: any("quarantine" in str(c.args).lower() for c in fake_slack.posts),
                         timeout=20)
        # Taken once: the quarantined message is not read again from any folder.
        await asyncio.sleep(1)
        assert database_value(tmp_path, "SELECT count(*) FROM raw_messages") == 1


async def test_several_imap_processes_on_postgresql_read_an_account_once(
        dovecot, mailbox, tmp_path, fake_slack, relay, pg_databases):  # noqa: F811
    """DESIGN §5: one poller per account across processes (an advisory lock); when its holder
    stops, another takes the account over."""
    user, password, client = mailbox
    url = pg_databases.create()
    try:
        async with await TcpProxy.start(dovecot.host, dovecot.port) as proxy:
            settings = Settings.model_validate(settings_dict(
                tmp_path, slack_url=fake_slack.url, relay_port=relay.port, database={"url": url},
                imap_accounts=[account(dovecot, user, password, port=proxy.port)]))
            async with running(settings, roles=("worker",)) as worker:
                async with running(settings, roles=("imap",)) as first:
                    async with running(settings, roles=("imap",)):
                        await wait_until(lambda: proxy.connections == 1)
                        await asyncio.sleep(1)
                        assert proxy.connections == 1 and proxy.accepted == 1
                        for n in range(5):
                            await asyncio.to_thread(client.append, customer_mail(n))
                        await count_tickets(worker, 5)
                        first.stop()  # the holder goes; the other takes over
                        await wait_until(lambda: proxy.accepted == 2, timeout=20)
                        await asyncio.to_thread(client.append, customer_mail(5))
                        await count_tickets(worker, 6)
    finally:
        pg_databases.drop(url)


async def test_moving_switched_on_later_moves_what_was_taken_without_taking_it_again(
        dovecot, mailbox, imap_settings, tmp_path):
    user, password, client = mailbox
    for n in range(2):
        await asyncio.to_thread(client.append, customer_mail(n))
    async with running(imap_settings(account(dovecot, user, password, processed_mailbox="")),
                       roles=("imap", "worker")) as app:
        await count_tickets(app, 2)
    assert await asyncio.to_thread(client.count, "INBOX") == 2
    async with running(imap_settings(account(dovecot, user, password)), roles=("imap", "worker")) as app:
        async def inbox_empty() -> bool:
            return await asyncio.to_thread(client.count, "INBOX") == 0
        await wait_until(inbox_empty, timeout=20)
        assert await asyncio.to_thread(client.count, "Deskbell/Processed") == 2
        assert database_value(tmp_path, "SELECT count(*) FROM raw_messages") == 2
        assert len(await tickets(app)) == 2
