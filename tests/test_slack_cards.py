"""Slack cards: valid Block Kit, escaped customer text, delivery through Slack outages."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.conftest import deliver, running, send_mail, wait_until
from tests.fakes import FakeSlack
from tests.test_foundation import mail

HOSTILE = "<!channel> <@U0ADMIN> *bold* _it_ ~strike~ & <script>alert(1)</script> <http://evil.example|click>"


def block_kit_problems(payload: dict[str, Any]) -> list[str]:
    """Slack's documented limits for a message's blocks (a checker, so tests can fail)."""
    problems = []
    blocks = payload.get("blocks", [])
    if not 0 < len(blocks) <= 50:
        problems.append(f"{len(blocks)} blocks")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            if block["text"]["type"] != "plain_text" or len(block["text"]["text"]) > 150:
                problems.append(f"block {i}: bad header")
        elif kind == "section":
            if "text" in block and not 0 < len(block["text"]["text"]) <= 3000:
                problems.append(f"block {i}: section text of {len(block['text']['text'])}")
            for f in block.get("fields", []):
                if len(f["text"]) > 2000:
                    problems.append(f"block {i}: field too long")
            if len(block.get("fields", [])) > 10:
                problems.append(f"block {i}: more than 10 fields")
        elif kind == "actions":
            if not 0 < len(block["elements"]) <= 25:
                problems.append(f"block {i}: actions elements")
            for element in block["elements"]:
                if element["type"] == "overflow" and not 2 <= len(element["options"]) <= 5:
                    problems.append(f"block {i}: overflow with {len(element['options'])} options")
                if element["type"] == "button" and len(element["text"]["text"]) > 75:
                    problems.append(f"block {i}: button text too long")
        elif kind == "context":
            if not 0 < len(block["elements"]) <= 10:
                problems.append(f"block {i}: context elements")
        else:
            problems.append(f"block {i}: unexpected type {kind}")
    if len(payload.get("text", "")) > 40000:
        problems.append("text too long")
    return problems


def customer_strings(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(object type, text) of every text object in the payload."""
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("plain_text", "mrkdwn") and "text" in node:
                found.append((node["type"], node["text"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload.get("blocks", []))
    return found


def assert_no_injection(payload: dict[str, Any]) -> None:
    for kind, text in customer_strings(payload):
        if kind == "mrkdwn":
            # Our own date tokens are the only "<!" a card may carry; customer text is escaped.
            ours = re.sub(r"<!date\^\d+\^[^|<>]*\|[^<>]*>", "", text)
            assert "<!" not in ours and "<@U0ADMIN" not in text and "<http" not in text, text
    assert "<!channel>" not in payload["text"] and "<script>" not in payload["text"]


async def test_card_is_valid_block_kit_and_customer_text_is_literal(app_settings, fake_slack):
    huge = "\n".join(f"line {i} " + "z" * 90 for i in range(400))  # ~40 kB body
    async with running(app_settings()) as app:
        port = app.listening.smtp[1]
        await asyncio.to_thread(send_mail, port, mail(
            subject=HOSTILE, from_addr=f'"{HOSTILE[:40]}" <alice@example.net>',
            body=HOSTILE + "\n\n" + huge))
        await wait_until(lambda: len(fake_slack.cards()) == 1)
        await asyncio.to_thread(send_mail, port, mail(subject="Re: x [#1]", body=HOSTILE))
        await wait_until(lambda: fake_slack.thread_replies() and fake_slack.updates())
    card = fake_slack.cards()[0].args
    assert block_kit_problems(card) == []
    assert_no_injection(card)
    plain_texts = [t for k, t in customer_strings(card) if k == "plain_text"]
    assert any(HOSTILE in t for t in plain_texts), "customer text must appear literally"
    assert card["blocks"][0]["text"]["text"].startswith("#1 <!channel>")
    assert any("more characters not shown" in t for t in plain_texts)
    for payload in (fake_slack.thread_replies()[0].args, fake_slack.updates()[0].args):
        assert block_kit_problems(payload) == []
        assert_no_injection(payload)


async def test_cards_survive_slack_500_then_429_and_none_is_posted_twice(app_settings, fake_slack: FakeSlack):
    fake_slack.failures = ([(500, {}, "upstream broke")] * 4
                           + [(429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"})] * 3
                           + [(503, {}, {"ok": False, "error": "service_unavailable"})] * 2)
    async with running(app_settings()) as app:
        port = app.listening.smtp[1]
        for n in range(5):
            code, _ = await asyncio.to_thread(send_mail, port, mail(subject=f"Outage {n}"))
            assert code == 250  # Slack being down never blocks mail intake
        await wait_until(lambda: len(fake_slack.cards()) == 5, timeout=30)
        await asyncio.sleep(0.3)
    headers = sorted(c.args["blocks"][0]["text"]["text"] for c in fake_slack.cards())
    assert headers == [f"#{n + 1} Outage {n}" for n in range(5)]
    failed = [c for c in fake_slack.calls if not c.ok]
    assert len(failed) == 9
    # After a 429 the whole channel waits Retry-After (1 s) before its next call.
    # (Calls already in flight when the 429 arrived may land just after it.)
    posts = [c for c in fake_slack.calls if c.method == "chat.postMessage"]
    first_429 = posts[4].at
    assert not [c for c in posts if first_429 + 0.2 < c.at < first_429 + 0.95]


async def test_dead_card_is_reported_and_retry_command_requeues(app_settings, fake_slack: FakeSlack):
    fake_slack.failures = [(200, {}, {"ok": False, "error": "invalid_blocks"})]
    async with running(app_settings()) as app:
        await asyncio.to_thread(send_mail, app.listening.smtp[1], mail())
        # A permanent refusal: the card goes dead at once and a notice says so.
        await wait_until(lambda: any("Gave up delivering ticket.card" in c.args.get("text", "")
                                     for c in fake_slack.posts))
        from bot.core import deliveries as outbox
        dead = await outbox.list_items(app.db, status="dead")
        assert [d.kind for d in dead] == ["ticket.card"]
        assert await outbox.retry(app.db, now=app.clock.now()) == 1
        await wait_until(lambda: len(fake_slack.cards()) == 2)  # the notice + the card
    assert any(c.args["blocks"][0]["type"] == "header" for c in fake_slack.cards())


async def test_a_ticket_whose_card_was_given_up_gets_one_with_its_next_message(app_settings, fake_slack):
    """Staff must see the ticket somewhere: when the customer writes again, a new card goes out."""
    fake_slack.failures = [(200, {}, {"ok": False, "error": "invalid_blocks"})]
    async with running(app_settings()) as app:
        await deliver(app, mail(message_id="<lost-card@example.net>"))
        await wait_until(lambda: any("Gave up delivering ticket.card" in c.args.get("text", "")
                                     for c in fake_slack.posts))
        await deliver(app, mail(subject="Re: Router down", body="Anyone there?",
                                in_reply_to="<lost-card@example.net>"))
        await wait_until(lambda: [c for c in fake_slack.cards() if c.args["blocks"][0]["type"] == "header"])
    [card] = [c for c in fake_slack.cards() if c.args["blocks"][0]["type"] == "header"]
    assert card.args["blocks"][0]["text"]["text"] == "#1 Router down"
    assert "2 customer messages" in str(card.args["blocks"])
