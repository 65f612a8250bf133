"""Canned responses: saved and removed with /ticket canned, listed beside the config's, offered
in the Reply modal with the ticket's placeholders filled in, and shown without letting their
text reach Slack's mrkdwn."""

from __future__ import annotations

import asyncio

from tests.conftest import wait_until
from tests.slack.test_interactions import _assert_literal, customer_ticket, desk
from tests.slack.test_rules_surface import answer

REFUND = "Hi {customer_name},\n\nthe refund for #{ticket_number} is on its way.\n{assignee}"
HOSTILE = "<!channel> *pwned* <@U0ADMIN> & {nope} {0} {a.__class__} {{customer_name}} {"


def slack_escaped(text: str) -> str:
    """How Slack sends "&", "<" and ">" typed in a slash command."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def canned_options(modal) -> list[tuple[str, str]]:
    [select] = [e for b in modal["blocks"] if b.get("block_id") == "canned" for e in b["elements"]]
    return [(o["text"]["text"], o["value"]) for o in select["options"]]


def reply_text(modal) -> str:
    block = next(b for b in modal["blocks"] if b.get("block_id", "").startswith("text."))
    return block["element"].get("initial_value", "")


async def test_canned_responses_are_added_listed_and_removed(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        said = await answer(fake_slack, slack, f"canned add Refund done | {REFUND}")
        assert said.startswith("✅") and "*Refund done*" in said
        script = {
            "canned add refund DONE | again": "already a canned response called 'Refund done'",
            "canned add restart | Turn it off and on": "'restart' is the name of a canned response in the config file",
            "canned add Nameless": "separate the name from the text with |",
            "canned add  | text only": "a canned response needs a name",
            f"canned add {'x' * 76} | long": "at most 75 characters",
            f"canned add Long | {'y' * 3001}": "at most 3,000 characters",
            "canned add Empty |  ": "a canned response needs its text",
            "canned remove Restart": "'Restart' is defined in the config file",
            "canned remove Nothing here": "there is no canned response called 'Nothing here'",
            "canned frobnicate": "usage: canned list",
        }
        for text, expected in script.items():
            said = await answer(fake_slack, slack, text)
            assert said.startswith("⚠️") and expected in said, (text, said)
        assert "*Bye*" in await answer(fake_slack, slack, "canned add Bye | Goodbye, {customer_name}!", user="UBOB")
        listed = await answer(fake_slack, slack, "canned list")
        assert listed.splitlines() == [
            "*Canned responses* (3)",
            "• *Restart* (from the config file): Please restart the router.",
            "• *Bye* (added by <@UBOB>): Goodbye, {customer_name}!",
            ("• *Refund done* (added by <@UALICE>): Hi {customer_name}, the refund for #{ticket_number} is on its "
             "way. {assignee}")]
        assert "removed" in await answer(fake_slack, slack, "canned remove refund done")
        listed = await answer(fake_slack, slack, "canned")
    assert "Refund done" not in listed and "*Bye*" in listed and "*Restart*" in listed


async def test_reply_modal_offers_both_kinds_and_fills_in_the_ticket(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack) as (app, slack):
        await answer(fake_slack, slack, f"canned add Refund done | {REFUND}")
        await customer_ticket(app, fake_slack)
        await slack.button("ticket.reply", 1, user="UBOB")
        await wait_for_views(fake_slack, 1)
        modal = fake_slack.views_opened[-1]
        assert canned_options(modal) == [("Restart", "0"), ("Refund done", "db:1")]
        await slack.button("reply.canned", 1, user="UBOB", option="db:1", view=modal)
        await wait_for_views(fake_slack, 2)
        modal = fake_slack.views_opened[-1]
        # The ticket is Alice's (the group's first member): {assignee} is who owns it.
        assert reply_text(modal) == "Hi Alice Example,\n\nthe refund for #1 is on its way.\nAlice Agent"
        assert canned_options(modal) == [("Restart", "0"), ("Refund done", "db:1")]
        await slack.button("reply.canned", 1, user="UBOB", option="0", view=modal)
        await wait_for_views(fake_slack, 3)
        assert reply_text(fake_slack.views_opened[-1]) == "Please restart the router."
        await answer(fake_slack, slack, "canned remove Refund done")
        # A modal opened before the removal still lists it: picking it says what happened.
        await slack.button("reply.canned", 1, user="UBOB", option="db:1", view=modal)
        await asyncio.sleep(0.3)
    assert len(fake_slack.views_opened) == 3
    [note] = fake_slack.ephemerals
    assert note["user"] == "UBOB" and note["text"].startswith("⚠️ that canned response no longer exists")


async def test_canned_text_never_becomes_slack_markup(app_settings, fake_slack):
    async with desk(app_settings, fake_slack) as (app, slack):
        said = await answer(fake_slack, slack, f"canned add {slack_escaped('<!here> & co')} | {slack_escaped(HOSTILE)}")
        assert "&lt;!here&gt; &amp; co" in said and "<!here>" not in said
        listed = await answer(fake_slack, slack, "canned list")
        assert "&lt;!channel&gt; *pwned* &lt;@U0ADMIN&gt; &amp;" in listed
        assert "<!channel>" not in listed and "<@U0ADMIN>" not in listed
        await customer_ticket(app, fake_slack)
        await slack.button("ticket.reply", 1, user="UALICE")
        await wait_for_views(fake_slack, 1)
        modal = fake_slack.views_opened[-1]
        assert ("<!here> & co", "db:1") in canned_options(modal)  # plain_text: shown as typed
        await slack.button("reply.canned", 1, user="UALICE", option="db:1", view=modal)
        await wait_for_views(fake_slack, 2)
    # Unknown placeholders and stray braces stay as typed (no str.format: "{0}" and
    # "{a.__class__}" are text); the reply is a plain_text input, shown literally.
    assert reply_text(fake_slack.views_opened[-1]) == (
        "<!channel> *pwned* <@U0ADMIN> & {nope} {0} {a.__class__} {Alice Example} {")
    for view in fake_slack.views_opened:
        _assert_literal(view)


async def wait_for_views(fake_slack, count: int) -> None:
    await wait_until(lambda: len(fake_slack.views_opened) >= count)
