"""Ratings on close (issue 22, acceptance 4): from the close mail's link (through the page's
form) and from a digit texted in answer to the close text; once per closing, changeable for
``tickets.rating_change_days``; shown in the card's thread, on the card and in the JSON.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.core import actions, reports
from bot.core.customer_sms import fits
from bot.core.staff import Actor
from bot.store import models as m
from tests.conftest import deliver, running, wait_until
from tests.test_customer_page import SECRET, customer_mail, form_fields, get, page_settings, post
from tests.test_sms import CUSTOMER, sms_desk, text_us, twilio  # noqa: F401 (fixture)

ALICE = Actor("UALICE", "Alice Agent")


async def shown(app) -> dict:
    return await reports.show_ticket(app.db, 1, now=app.clock.now())


async def test_the_close_mails_link_rates_once_and_the_rating_can_change_for_a_week(tmp_path, relay, fake_slack):
    async with running(page_settings(tmp_path, relay, slack_url=fake_slack.url)) as app:
        await deliver(app, customer_mail())
        await wait_until(lambda: fake_slack.cards())
        await actions.close(app.desk, actor=ALICE, number=1)
        ack, closed = await relay.wait_for(2)
        text, html = closed.get_body(("plain",)).get_content(), closed.get_body(("html",)).get_content()
        four = re.search(r"4 - good: (\S+)", text).group(1)
        assert four.endswith("?rate=4") and f'href="{four}"' in html
        assert "rate=" not in ack.get_body(("plain",)).get_content()  # only the close mail asks

        status, _, page = await get(four)  # following the link alone records nothing
        assert status == 200 and (await shown(app))["rating"] is None
        assert re.search(r'<input[^>]*value="4"[^>]*checked', page), "the link's score is chosen"
        fields = {**form_fields(page), "action": "rate", "score": "4"}
        rated = await post(four, {**fields, "comment": "Quick,   and <b>kind</b>"})
        again = await post(four, {**fields, "comment": "Quick,   and <b>kind</b>"})
        changed = await post(four, {**fields, "score": "5"})
        none = await post(four, {**fields, "score": "9"})
        after = await shown(app)
        await wait_until(lambda: any("★★★★★ 5/5" in str(u.args) for u in fake_slack.updates()))
        await wait_until(lambda: any("changed from 4/5" in str(c.args) for c in fake_slack.thread_replies()))

        await _closed_days_ago(app, 8)
        late = await post(four, {**fields, "score": "1"})
        _, _, late_page = await get(four.split("?")[0])
        final = await shown(app)
    assert [r[1].rsplit("=", 1)[1] for r in (rated, again, changed, none, late)] == [
        "rated", "rating_unchanged", "rating_changed", "no_score", "rating_too_late"]
    assert after["rating"]["score"] == 5 and after["rating"]["comment"] == "Quick, and <b>kind</b>"
    assert after["rating"]["at"] is not None and after["status"] == "closed"
    assert [e["data"]["score"] for e in after["events"] if e["kind"] == "rated"] == [4, 5]
    assert final["rating"]["score"] == 5  # too late: unchanged
    assert 'name="score"' not in late_page
    thread = " ".join(str(c.args) for c in fake_slack.thread_replies())
    assert "The customer rated this ticket ★★★★☆ 4/5 (good):" in thread and "&lt;b&gt;kind" in thread


async def test_a_reopened_and_closed_again_ticket_is_rated_afresh(tmp_path, relay, fake_slack):
    async with running(page_settings(tmp_path, relay, slack_url=fake_slack.url)) as app:
        link, _ = await _link(app, relay)
        await actions.close(app.desk, actor=ALICE, number=1)
        _, _, page = await get(link)
        await post(link, {**form_fields(page), "action": "rate", "score": "2"})
        await actions.reopen(app.desk, actor=ALICE, number=1)
        await actions.close(app.desk, actor=ALICE, number=1)
        _, _, page = await get(link)
        second = await post(link, {**form_fields(page), "action": "rate", "score": "5"})
        result = await shown(app)
    assert second[1].endswith("?done=rated")  # a new closing: a new rating, not a change
    assert [e["data"]["before"] for e in result["events"] if e["kind"] == "rated"] == [None, None]
    assert result["rating"]["score"] == 5


async def _closed_days_ago(app, days: int) -> None:
    when = app.clock.now() - timedelta(days=days)
    async with app.db.transaction() as s:
        await s.execute(update(m.Ticket).where(m.Ticket.id == 1).values(closed_at=when))


async def _link(app, relay) -> tuple[str, str]:
    await deliver(app, customer_mail())
    [ack] = await relay.wait_for(1)
    link = re.search(r"https?://\S+/t/\S+", ack.get_body(("plain",)).get_content()).group(0)
    return link, (await get(link))[2]


async def test_a_digit_texted_after_the_close_text_is_the_rating(app_settings, fake_slack, relay, twilio):
    async with sms_desk(app_settings, fake_slack, twilio,
                        customer_page={"link_secret": SECRET}) as (app, _):
        await text_us(app, "No signal at home")
        await wait_until(lambda: fake_slack.cards())
        await actions.close(app.desk, actor=ALICE, number=1)
        await wait_until(lambda: twilio.messages)
        [closing] = twilio.messages
        await text_us(app, "4")
        await wait_until(lambda: any("4/5" in str(c.args) for c in fake_slack.thread_replies()))
        await text_us(app, "4.")  # the same answer again: recorded once
        await text_us(app, "4 stars and thanks")  # words: a message, which reopens the ticket
        await wait_until(lambda: _status(app, "open"))
        result = await shown(app)
    assert closing.to == CUSTOMER and "Your request #1 is closed." in closing.body
    assert "Reply with a number from 1 (poor) to 5 (great)." in closing.body
    assert result["rating"]["score"] == 4
    assert [e["data"]["via"] for e in result["events"] if e["kind"] == "rated"] == ["sms"]
    inbound = [x["body"] for x in result["messages"] if x["kind"] == "inbound"]
    assert inbound == ["No signal at home", "4 stars and thanks"]  # the digits were no messages


async def _status(app, status: str) -> bool:
    return (await shown(app))["status"] == status


async def test_a_digit_from_a_customer_with_an_open_ticket_is_a_message(app_settings, fake_slack, relay, twilio):
    async with sms_desk(app_settings, fake_slack, twilio) as (app, _):
        await text_us(app, "Which plan am I on? Answer 1 or 2")
        await wait_until(lambda: fake_slack.cards())
        await text_us(app, "2")
        await wait_until(lambda: _inbound(app, 2))
        result = await shown(app)
    assert result["rating"] is None


async def _inbound(app, n: int) -> bool:
    return len([x for x in (await shown(app))["messages"] if x["kind"] == "inbound"]) >= n


@pytest.mark.parametrize(("text", "fits_it"), [
    ("Please restart the router.", True),
    ("x" * 110, False),  # 110, a line break and the 57-character link pass 160: a second part
    ("Bitte starte den Router neu 🙂", False),  # UCS-2: 70 units a part, the link does not fit
])
def test_the_page_link_rides_along_only_when_it_costs_no_extra_part(text, fits_it):
    assert fits(text, "https://help.example.com/t/12.67a0b1c2.dGhpcyBpcyBhIG1hYw") is fits_it


async def test_an_sms_reply_carries_the_page_link_when_it_fits(app_settings, fake_slack, relay, twilio):
    async with sms_desk(app_settings, fake_slack, twilio, customer_page={"link_secret": SECRET}) as (app, slack):
        await text_us(app, "Router blinks red")
        await wait_until(lambda: fake_slack.cards())
        await actions.reply(app.desk, actor=ALICE, number=1, text="Please unplug it for 30 seconds.")
        await actions.reply(app.desk, actor=ALICE, number=1, text="y" * 150)
        await wait_until(lambda: len(twilio.messages) == 2)
    short, long = twilio.messages
    assert re.fullmatch(r"Please unplug it for 30 seconds\.\nhttps?://\S+/t/1\.\S+", short.body)
    assert long.body == "y" * 150
