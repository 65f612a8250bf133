"""Every mail fixture of the suite through the real SMTP door: each ends as a ticket (or a
deliberate quarantine) showing what a person reading the mail expects — subject, requester,
body and attachment names, as written down beside the fixtures (``tests/corpus.py``)."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from sqlalchemy import select

from bot.core import reports
from bot.store import models as m
from tests import corpus
from tests.conftest import DOMAIN, deliver, running

FIXTURES = corpus.fixtures()
EXPECTED = corpus.expected()
ENVELOPE_FROM = corpus.envelope_from()


def test_every_fixture_has_a_checked_expectation():
    assert sorted(set(FIXTURES) - set(EXPECTED)) == []


def _problems(shown: dict[str, Any], want: dict[str, Any]) -> list[str]:
    first = next(msg for msg in shown["messages"] if msg["kind"] == "inbound")
    names = [a["name"] for a in first["attachments"]]
    found = []
    for key, got in (("subject", shown["subject"]), ("requester_name", shown["requester"]["name"]),
                     ("requester_email", shown["requester"]["email"]), ("attachments", names),
                     ("attachment_count", len(names))):
        if key in want and want[key] != got:
            found.append(f"{key}: expected {want[key]!r}, got {got!r}")
    body = " ".join(first["body"].split())
    for text in want.get("body_contains", []):
        if " ".join(text.split()) not in body:
            found.append(f"body lacks {text!r}: {first['body'][:300]!r}")
    for text in want.get("body_lacks", []):
        if text in first["body"]:
            found.append(f"body shows {text!r}")
    for name in want.get("attachments_include", []):
        if name not in names:
            found.append(f"no attachment named {name!r} among {names}")
    for name in names:  # whatever the mail said, a name is safe to show and to save
        if "/" in name or "\\" in name or any(unicodedata.category(c) == "Cf" for c in name):
            found.append(f"unsafe attachment name {name!r}")
    return found


@pytest.mark.parametrize("name", sorted(FIXTURES))
async def test_fixture_through_the_door(name, app_settings):
    raw = FIXTURES[name]()
    if raw is None:
        pytest.skip("an optional shared sample is absent")
    want = EXPECTED.get(name, {})
    async with running(app_settings(), roles=("smtp",)) as app:
        code, reply = await deliver(app, raw, mail_from=ENVELOPE_FROM.get(name, "customer@example.net"),
                                    rcpt=(f"help@{DOMAIN}",))
        assert code == 250, reply
        async with app.db.reading() as s:
            held = (await s.scalars(select(m.Quarantine.reason))).all()
        outcome = f"quarantined:{held[0]}" if held else "ticket"
        if outcome == "quarantined:unparseable":
            assert name in corpus.no_header_block(), "only bytes with no header block may be refused"
        assert outcome == want.get("outcome", "ticket")
        if outcome == "ticket":
            shown = await reports.show_ticket(app.db, 1, now=app.clock.now())
            assert _problems(shown, want) == []
