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

from bot.config import Settings
from bot.core import mailbox_ledger, reports
from bot.inbound import imap as imap_door
from bot.inbound.imapclient import ImapSession, LoginRefused, uid_set
from tests.conftest import DOMAIN, running, settings_dict, wait_until
from tests.imapserver import Dovecot, TcpProxy


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
