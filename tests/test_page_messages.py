"""Messages customers write on their ticket's page (issue 22, acceptance 2 and 3 for replies).

The page's form goes to the spool like every door's arrivals, then through intake: a post under
the card, the message in ``tickets show --json``, a resolved or closed ticket reopened as a mail
would reopen it. The form's nonce names the message: posting it twice writes one.
"""

from __future__ import annotations

import re

from bot.core import actions, reports, spool
from bot.core.staff import Actor
from tests.conftest import deliver, running, wait_until
from tests.test_customer_page import customer_mail, form_fields, get, page_settings, post

ALICE = Actor("UALICE", "Alice Agent")


async def page_of(app, relay) -> tuple[str, str]:
    """The link in the acknowledgement of ticket #1 and the page it opens."""
    await deliver(app, customer_mail())
    [ack] = await relay.wait_for(1)
    link = re.search(r"https?://\S+/t/\S+", ack.get_body(("plain",)).get_content()).group(0)
    return link, (await get(link))[2]


async def inbound(app) -> list[dict]:
    shown = await reports.show_ticket(app.db, 1, now=app.clock.now())
    return [x for x in shown["messages"] if x["kind"] == "inbound"]


async def test_a_message_from_the_page_joins_the_ticket_once_and_reopens_it(tmp_path, relay, fake_slack):
    async with running(page_settings(tmp_path, relay, slack_url=fake_slack.url)) as app:
        link, html = await page_of(app, relay)
        await wait_until(lambda: fake_slack.cards())
        await actions.set_status(app.desk, actor=ALICE, number=1, status="resolved")
        fields = {**form_fields(html), "action": "message"}
        text = "Still down after the restart. <b>Help</b> *please*"
        sent = await post(link, {**fields, "message": text})
        again = await post(link, {**fields, "message": text})  # the same form, posted twice
        await wait_until(lambda: any("Still down after the restart" in str(c.args) for c in fake_slack.thread_replies()))
        empty = await post(link, {**form_fields(html), "action": "message", "message": "  \r\n "})
        no_csrf = await post(link, {"action": "message", "nonce": "n-1", "message": "forged"})
        await wait_until(lambda: _count(app, 2))
        shown = await reports.show_ticket(app.db, 1, now=app.clock.now())
        _, _, after = await get(link)
    assert sent[0] == 303 and sent[1].endswith("?done=sent")
    assert again[0] == 303 and empty[1].endswith("?done=empty") and no_csrf[0] == 403
    messages = [x for x in shown["messages"] if x["kind"] == "inbound"]
    assert [(x["channel"], x["body"]) for x in messages] == [
        ("email", messages[0]["body"]), ("web", text)]  # once, though posted twice
    assert shown["status"] == "open"  # the message reopened the resolved ticket
    reopening = [e for e in shown["events"] if e["kind"] == "status" and e["data"]["to"] == "open"]
    assert reopening and reopening[-1]["actor"] == "customer:ann1@example.net"
    assert "Still down after the restart. &lt;b&gt;Help&lt;/b&gt;" in after  # shown, escaped


async def _count(app, n: int) -> bool:
    return len(await inbound(app)) >= n


async def test_a_page_message_is_spooled_before_the_page_says_sent(tmp_path, relay):
    """The door's promise (DESIGN §2.1): "sent" only once the message is committed, even with
    no intake running to take it (the web role alone)."""
    async with running(page_settings(tmp_path, relay)) as app:
        link, html = await page_of(app, relay)
        app.intake.stop()  # nothing takes the spool from here on
        status, where = await post(link, {**form_fields(html), "action": "message", "message": "Are you there?"})
        queued = await spool.queued(app.db, limit=10)
    assert status == 303 and where.endswith("?done=sent")
    assert [(e.channel, e.door) for e in queued] == [("web", "page")]
    assert b"Are you there?" in queued[0].data
