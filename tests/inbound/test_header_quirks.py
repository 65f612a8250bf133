"""Header quirks of real mail, one test per kind, against ``parse_email`` directly.

The mail and what a reader expects of it come from ``tests/inbound/fixtures_headers.py``.
These tests must not touch the network or a database, and must not patch the email library.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.core.errors import MailParseError
from bot.inbound.mailparse import parse_email
from bot.messages import InboundMessage
from tests.inbound.fixtures_headers import ENVELOPE_FROM, EXPECTED, FIXTURES, SUPPORT

RECEIVED = datetime(2025, 3, 3, 10, 16, tzinfo=timezone.utc)
DEFAULT_ENVELOPE = "customer@example.net"


def parse(name: str) -> InboundMessage:
    return parse_email(
        FIXTURES[name](),
        received_at=RECEIVED,
        envelope_sender=ENVELOPE_FROM.get(name, DEFAULT_ENVELOPE),
        recipients=(SUPPORT,),
    )


def assert_as_expected(name: str, msg: InboundMessage) -> None:
    """What a person reading the mail expects: subject, requester, body, id."""
    expected = EXPECTED[name]
    seen = {
        "subject": msg.subject,
        "requester_name": msg.sender_name,
        "requester_email": msg.sender_address,
        "message_id": msg.message_id,
    }
    for key, value in expected.items():
        if key == "body_contains":
            assert value in msg.body, (name, msg.body)
        else:
            assert seen[key] == value, (name, key, seen[key])


def named(prefix: str) -> list[str]:
    return sorted(name for name in FIXTURES if name.startswith(prefix))


def test_every_fixture_has_its_expectations():
    assert set(EXPECTED) == set(FIXTURES)
    assert set(ENVELOPE_FROM) <= set(FIXTURES)
    keys = {"subject", "requester_name", "requester_email", "body_contains", "message_id"}
    assert all(set(expected) <= keys for expected in EXPECTED.values())


# --------------------------------------------------------------------------- 1. header blocks


@pytest.mark.parametrize("name", named("block_"))
def test_broken_header_block_is_repaired_not_quarantined(name):
    msg = parse(name)
    assert_as_expected(name, msg)
    assert msg.raw == FIXTURES[name]()  # the repair is for parsing only
    assert any("header section" in defect or "header line" in defect for defect in msg.defects)


@pytest.mark.parametrize(
    "raw",
    [
        b"----------\r\nBegin forwarded message:\r\n\r\njust some text, no header at all\r\n",
        b"hello world\r\nthis is not mail: really\r\n",
    ],
)
def test_text_without_any_header_block_is_still_refused(raw):
    with pytest.raises(MailParseError, match="not an email"):
        parse_email(raw, received_at=RECEIVED)


# --------------------------------------------------------------------------- 5. requester


@pytest.mark.parametrize("name", named("requester_"))
def test_requester_falls_back_past_bounce_addresses(name):
    msg = parse(name)
    assert_as_expected(name, msg)
    assert msg.sender_address  # never empty while any header or the envelope has an address
    assert msg.envelope_sender == ENVELOPE_FROM[name]


# --------------------------------------------------------------------------- 6. display names


@pytest.mark.parametrize("name", named("name_"))
def test_malformed_from_keeps_name_and_address(name):
    assert_as_expected(name, parse(name))


# --------------------------------------------------------------------------- 8. Message-IDs


@pytest.mark.parametrize("name", named("msgid_"))
def test_message_id_without_at_sign_is_kept(name):
    msg = parse(name)
    assert_as_expected(name, msg)
    assert msg.source_id == EXPECTED[name]["message_id"]  # the idempotency key (DESIGN §2.2)


def test_reply_ids_without_at_sign_still_thread():
    msg = parse("msgid_reply_without_at")
    assert msg.in_reply_to == ("1741000364.8C41F09A2B",)
    assert msg.references == ("1741000364.8C41F09A2B",)
    original = parse("msgid_without_at")
    assert original.message_id in msg.in_reply_to  # threading compares the stored string
