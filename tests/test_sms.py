"""Customers text us: Twilio's signed webhooks in, texts out through the official library to a
fake Twilio API on loopback, status callbacks, carrier keywords — all through the running app.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.core import reports
from bot.core.segments import sms_length
from bot.store import models as m
from tests.conftest import DOMAIN, database_value, running, wait_until
from tests.faketwilio import FakeTwilio, inbound_sms_params, status_params, twilio_signature
from tests.slack_client import SECRET, SlackSender

PUBLIC = "https://desk.example.com"
SMS_URL = f"{PUBLIC}/twilio/sms"
STATUS_URL = f"{PUBLIC}/twilio/status"
SUPPORT_NUMBER = "+15550000001"
CUSTOMER = "+15557654321"


@pytest.fixture
async def twilio():
    fake = await FakeTwilio(numbers={"+15550000000", SUPPORT_NUMBER}).start()
    yield fake
    await fake.stop()


@asynccontextmanager
async def sms_desk(app_settings, fake_slack, twilio, **overrides: Any):
    settings = app_settings(
        slack={"signing_secret": SECRET},
        web={"listen": "127.0.0.1:0", "public_url": PUBLIC, **overrides.pop("web", {})},
        twilio={"account_sid": twilio.account_sid, "auth_token": twilio.auth_token, "api_url": twilio.url,
                "from_number": "+15550000000", "webhook_url": SMS_URL},
        handler_groups=[
            {"name": "support", "slack_channel": "#support", "email_addresses": [f"help@{DOMAIN}"],
             "phone_numbers": [SUPPORT_NUMBER], "members": ["UALICE"]},
            {"name": "sales", "slack_channel": "#sales", "phone_numbers": ["+15550000002"]}],
        **overrides)
    async with running(settings) as app:
        host, port = app.listening.web
        app.test_url = f"http://{host}:{port}"  # type: ignore[attr-defined]
        yield app, SlackSender(f"{app.test_url}/slack/events", fake_slack.response_url())


async def post(app, path: str, params: dict[str, str], *, signature: str | None = "sign",
               signed_url: str | None = None) -> tuple[int, str, str]:
    """POST a form to the app as Twilio does; the signature over ``signed_url`` (default: the
    configured URL for ``path``)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature == "sign":
        signature = twilio_signature(app.settings.twilio.auth_token.get_secret_value(),
                                     signed_url or f"{PUBLIC}{path}", params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{app.test_url}{path}", data=urlencode(params).encode(),
                                headers=headers) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()


async def text_us(app, body: str, *, from_: str = CUSTOMER, to: str = SUPPORT_NUMBER,
                  sid: str | None = None, **kw: Any) -> tuple[int, str, str]:
    params = inbound_sms_params(account_sid=app.settings.twilio.account_sid, from_=from_, to=to,
                                body=body, sid=sid)
    return await post(app, "/twilio/sms", params, **kw)


async def ticket_messages(app, number: int) -> list[dict[str, Any]]:
    return (await reports.show_ticket(app.db, number, now=app.clock.now()))["messages"]


async def inbound_count(app, number: int) -> int:
    return len([x for x in await ticket_messages(app, number) if x["kind"] == "inbound"])


async def test_a_text_opens_a_ticket_the_next_joins_it_and_after_the_window_a_new_one(
        app_settings, fake_slack, relay, twilio):
    async with sms_desk(app_settings, fake_slack, twilio) as (app, _):
        status, kind, body = await text_us(app, "My internet is down since this morning")
        assert status == 200 and kind.startswith("text/xml") and body.endswith("<Response/>")
        await wait_until(lambda: fake_slack.cards())
        card = fake_slack.cards()[0]
        assert card.args["channel"] == "#support"  # routed by the number texted
        assert "My internet is down" in str(card.args["blocks"]) and "via sms" in str(card.args["blocks"])
        [ticket] = await reports.list_tickets(app.db, now=app.clock.now())
        assert ticket["channel"] == "sms" and ticket["requester"]["phone"] == CUSTOMER

        await text_us(app, "Still down")
        await wait_until(lambda: inbound_count(app, 1), timeout=10)
        await wait_until(lambda: _has(inbound_count(app, 1), 2))
        # Closed a day ago: within sms_reopen_window_days (7), a text reopens it.
        await _close(app, 1, days_ago=1)
        await text_us(app, "It broke again")
        await wait_until(lambda: _has(inbound_count(app, 1), 3))
        assert (await reports.show_ticket(app.db, 1, now=app.clock.now()))["status"] == "open"
        # Closed eight days ago: past the window, a text opens a new ticket.
        await _close(app, 1, days_ago=8)
        await text_us(app, "New problem: no TV")
        await wait_until(lambda: len(fake_slack.cards()) == 2)
        assert len(await reports.list_tickets(app.db, now=app.clock.now())) == 2
        assert (await reports.show_ticket(app.db, 1, now=app.clock.now()))["status"] == "closed"
        # A text to another group's number goes to that group.
        await text_us(app, "Upgrade my plan", from_="+15551112222", to="+15550000002")
        await wait_until(lambda: len(fake_slack.cards()) == 3)
        assert fake_slack.cards()[-1].args["channel"] == "#sales"
        assert not relay.messages  # nobody is mailed about a text


async def _has(awaitable, n: int) -> bool:
    return await awaitable >= n


async def _close(app, number: int, *, days_ago: int) -> None:
    when = app.clock.now() - timedelta(days=days_ago)
    async with app.db.transaction() as s:
        await s.execute(update(m.Ticket).where(m.Ticket.id == number)
                        .values(status="closed", closed_at=when, updated_at=when))


async def test_unsigned_forged_or_misaddressed_posts_are_refused_and_a_replay_is_one_message(
        app_settings, fake_slack, relay, twilio, tmp_path):
    async with sms_desk(app_settings, fake_slack, twilio) as (app, _):
        assert (await text_us(app, "no signature", signature=None))[0] == 403
        assert (await text_us(app, "bad signature", signature="bm90IGEgc2lnbmF0dXJl"))[0] == 403
        assert (await text_us(app, "signed for another URL",
                              signed_url="https://evil.example/twilio/sms"))[0] == 403
        params = inbound_sms_params(account_sid="AC" + "f" * 32, from_=CUSTOMER, to=SUPPORT_NUMBER,
                                    body="another account")
        assert (await post(app, "/twilio/sms", params))[0] == 403
        assert database_value(tmp_path, "SELECT count(*) FROM raw_messages") == 0
        # The same MessageSid twice (Twilio never retries, but a proxy or a person may replay).
        assert (await text_us(app, "hello", sid="SM" + "a" * 32))[0] == 200
        assert (await text_us(app, "hello", sid="SM" + "a" * 32))[0] == 200
        await wait_until(lambda: fake_slack.cards())
        await asyncio.sleep(0.3)
        assert database_value(tmp_path, "SELECT count(*) FROM raw_messages") == 1
        assert database_value(tmp_path, "SELECT count(*) FROM messages") == 1
        # Status callbacks are signed too.
        forged = status_params(account_sid=twilio.account_sid, sid="SM1", status="delivered",
                               to=CUSTOMER, from_=SUPPORT_NUMBER)
        assert (await post(app, "/twilio/status", forged, signature=None))[0] == 403


async def test_a_staff_reply_from_slack_is_texted_once_through_rate_limits_and_outages(
        app_settings, fake_slack, relay, twilio):
    async with sms_desk(app_settings, fake_slack, twilio) as (app, slack):
        await text_us(app, "Router blinks red")
        await wait_until(lambda: fake_slack.cards())
        twilio.fail_next(1, status=429, retry_after=1)
        twilio.fail_next(1, status=500)
        status, _ = await slack.command("reply 1 Please unplug it for 30 seconds.", user="UALICE")
        assert status == 200
        await wait_until(lambda: twilio.messages, timeout=20)
        [sent] = twilio.messages
        assert (sent.to, sent.from_, sent.body) == (CUSTOMER, SUPPORT_NUMBER, "Please unplug it for 30 seconds.")
        assert sent.status_callback == STATUS_URL
        assert [r.status for r in twilio.requests if r.path == twilio.messages_path] == [429, 500, 201]
        await asyncio.sleep(0.5)
        assert len(twilio.messages) == 1  # sent once
        out = [x for x in await ticket_messages(app, 1) if x["kind"] == "outbound"]
        assert [(x["channel"], x["remote_id"]) for x in out] == [("sms", sent.sid)]
        await wait_until(lambda: any("Text sent to the carrier" in str(u.args) for u in fake_slack.updates()))
        assert not relay.messages


async def test_status_callbacks_out_of_order_end_in_the_final_state(app_settings, fake_slack, relay, twilio):
    async with sms_desk(app_settings, fake_slack, twilio) as (app, slack):
        await text_us(app, "Router blinks red")
        await wait_until(lambda: fake_slack.cards())
        await slack.command("reply 1 Unplug it.", user="UALICE")
        await wait_until(lambda: twilio.messages)
        sid = twilio.messages[0].sid

        async def callback(status: str, **kw: str) -> int:
            params = status_params(account_sid=twilio.account_sid, sid=sid, status=status, to=CUSTOMER,
                                   from_=SUPPORT_NUMBER, **kw)
            return (await post(app, "/twilio/status", params))[0]

        async def shown() -> str | None:
            out = [x for x in await ticket_messages(app, 1) if x["kind"] == "outbound"]
            return out[0]["delivery_status"]

        await wait_until(lambda: _equals(shown(), "sent"))
        for status in ("delivered", "sent", "queued", "sending"):  # the last three come late
            assert await callback(status) == 204
        assert await shown() == "delivered"
        assert await callback("undelivered", error_code="30003") == 204  # final stays final
        assert await shown() == "delivered"
        await wait_until(lambda: any("Text delivered to" in str(u.args) for u in fake_slack.updates()))


async def _equals(awaitable, value: Any) -> bool:
    return await awaitable == value


async def test_stop_opts_out_until_start_and_help_is_answered(app_settings, fake_slack, relay, twilio):
    async with sms_desk(app_settings, fake_slack, twilio) as (app, slack):
        await text_us(app, "Router blinks red")
        await wait_until(lambda: fake_slack.cards())
        await text_us(app, "STOP")
        await wait_until(lambda: any("opted out of texts" in str(u.args) for u in fake_slack.updates()))
        assert (await reports.show_ticket(app.db, 1, now=app.clock.now()))["status"] == "new"  # not reopened
        status, body = await slack.command("reply 1 Are you there?", user="UALICE")
        assert status == 200
        await wait_until(lambda: any("opted out of texts" in str(r) for r in fake_slack.responses))
        assert not twilio.messages
        # HELP is answered by the configured text, not a ticket; nothing for a STOP-ed number.
        await text_us(app, "help", from_="+15553334444")
        await wait_until(lambda: twilio.messages)
        assert twilio.messages[0].body == app.settings.twilio.help_text
        assert twilio.messages[0].to == "+15553334444"
        await text_us(app, "START")
        await wait_until(lambda: _opted_in(app))
        await slack.command("reply 1 Welcome back.", user="UALICE")
        await wait_until(lambda: len(twilio.messages) == 2)
        assert twilio.messages[1].body == "Welcome back."
        assert len(await reports.list_tickets(app.db, now=app.clock.now())) == 1


async def _opted_in(app) -> bool:
    async with app.db.reading() as s:
        return await s.scalar(select(m.Contact.sms_opted_out).where(m.Contact.phone == CUSTOMER)) is False


async def test_twilio_error_21610_marks_the_customer_opted_out(app_settings, fake_slack, relay, twilio):
    twilio.unsubscribed.add(CUSTOMER)
    async with sms_desk(app_settings, fake_slack, twilio) as (app, slack):
        await text_us(app, "Router blinks red")
        await wait_until(lambda: fake_slack.cards())
        await slack.command("reply 1 Unplug it.", user="UALICE")
        await wait_until(lambda: any("opted out of texts" in str(c.args) for c in fake_slack.thread_replies()),
                         timeout=20)
        assert not twilio.messages and [r.code for r in twilio.refused()] == [21610]
        await wait_until(lambda: _opted_out(app))


async def _opted_out(app) -> bool:
    async with app.db.reading() as s:
        return await s.scalar(select(m.Contact.sms_opted_out).where(m.Contact.phone == CUSTOMER)) is True


async def test_staff_start_a_conversation_by_text(app_settings, fake_slack, relay, twilio):
    async with sms_desk(app_settings, fake_slack, twilio) as (app, slack):
        status, _ = await slack.command("new sms +1 555 222 3333 Your new router ships today.", user="UALICE")
        assert status == 200
        await wait_until(lambda: twilio.messages)
        assert (twilio.messages[0].to, twilio.messages[0].from_) == ("+15552223333", SUPPORT_NUMBER)
        [ticket] = await reports.list_tickets(app.db, now=app.clock.now())
        assert ticket["channel"] == "sms" and ticket["subject"] == "Your new router ships today."
        await slack.command("new sms 12345 hi", user="UALICE")
        await wait_until(lambda: any("not a phone number" in str(r) for r in fake_slack.responses))


def test_an_emoji_makes_a_reply_ucs2():
    plain, emoji = sms_length("Your router is fixed"), sms_length("Your router is fixed 🎉")
    assert (plain.encoding, plain.units, plain.segments) == ("GSM-7", 20, 1)
    assert (emoji.encoding, emoji.units, emoji.segments) == ("UCS-2", 23, 1)
    assert sms_length("Fixed 🎉 " * 9).segments == 2  # 90 UCS-2 units: two parts of 67


async def test_mms_media_is_listed_on_the_card_and_fetched_with_the_account_credentials(
        app_settings, fake_slack, relay, twilio):
    picture = b"\x89PNG\r\n\x1a\n" + b"router-lights" * 100
    url = twilio.add_media(picture, "image/png")
    async with sms_desk(app_settings, fake_slack, twilio) as (app, _):
        params = inbound_sms_params(account_sid=twilio.account_sid, from_=CUSTOMER, to=SUPPORT_NUMBER,
                                    body="See the lights", media=[(url, "image/png")])
        assert (await post(app, "/twilio/sms", params))[0] == 200
        await wait_until(lambda: fake_slack.cards())
        assert "mms-1.png" in str(fake_slack.cards()[0].args["blocks"])

        async def kept() -> bool:
            [message] = await ticket_messages(app, 1)
            return message["attachments"][0]["sha256"] is not None
        await wait_until(kept, timeout=15)
        [message] = await ticket_messages(app, 1)
        [attachment] = message["attachments"]
        assert (attachment["name"], attachment["type"], attachment["size"]) == ("mms-1.png", "image/png", len(picture))
        assert twilio.media_at(url).fetches == 1
        unauthenticated = [r for r in twilio.requests if "/Media/" in r.path and r.auth is None]
        assert not unauthenticated
        # Once its bytes are in, the picture is uploaded into the card's thread like any file.
        [card] = fake_slack.cards()
        await wait_until(lambda: fake_slack.shared_files(card), timeout=15)
        [shared] = fake_slack.shared_files(card)
        assert (shared["name"], shared["data"]) == ("mms-1.png", picture)


async def test_linking_an_email_merges_contacts_and_mobile_response_via_both_uses_each_way(
        app_settings, fake_slack, relay, twilio):
    from tests.conftest import send_mail
    from tests.test_foundation import mail

    async with sms_desk(app_settings, fake_slack, twilio, tickets={"mobile_response_via": "both"}) as (app, slack):
        await asyncio.to_thread(send_mail, app.listening.smtp[1], mail(subject="Invoice"),
                                mail_from="alice@example.net")
        await wait_until(lambda: fake_slack.cards())
        await relay.wait_for(1)  # the acknowledgement of the mail
        await text_us(app, "Router blinks red")
        await wait_until(lambda: len(fake_slack.cards()) == 2)
        status, _ = await slack.command("contact 2 email alice@example.net", user="UALICE")
        assert status == 200
        await wait_until(lambda: any("merged" in str(r) for r in fake_slack.responses))
        tickets = await reports.list_tickets(app.db, now=app.clock.now())
        assert {t["requester"]["phone"] for t in tickets} == {CUSTOMER}
        assert {t["requester"]["email"] for t in tickets} == {"alice@example.net"}
        await slack.command("reply 2 Unplug it for 30 seconds.", user="UALICE")
        await wait_until(lambda: twilio.messages)
        [ack, answer] = await relay.wait_for(2)
        assert twilio.messages[0].body == "Unplug it for 30 seconds."
        assert answer["To"].addresses[0].addr_spec == "alice@example.net"
        assert "Unplug it for 30 seconds." in answer.get_body(("plain",)).get_content()


async def test_the_sms_sender_makes_one_request_per_attempt_and_gives_up_on_a_silent_twilio(twilio):
    """The outbox owns retries: the library must not repeat a POST itself (a text sent twice),
    and a Twilio that does not answer must not hold a send forever."""
    from datetime import datetime, timezone

    from bot.core.errors import DeliveryFailed
    from bot.core.views import OutboxView
    from bot.outbound.sms import SmsSender

    now = datetime.now(timezone.utc)
    item = OutboxView(id=1, channel="sms", kind="customer.message", ticket_number=1, status="sending",
                      attempts=1, due_at=now, last_error=None, remote_id=None, created_at=now,
                      sent_at=None, payload={"from": "+15550000000", "to": CUSTOMER, "template": "help",
                                                          "values": {"help_text": "hi"}})
    sender = SmsSender(account_sid=twilio.account_sid, auth_token=twilio.auth_token, api_url=twilio.url,
                       status_url=STATUS_URL, timeout=0.5)
    try:
        twilio.fail_next(1, status=500)
        with pytest.raises(DeliveryFailed):
            await sender.send(item, {})
        assert len(twilio.requests) == 1
        twilio.delay = 2
        started = asyncio.get_running_loop().time()
        with pytest.raises(DeliveryFailed):
            await sender.send(item, {})
        assert asyncio.get_running_loop().time() - started < 2
        twilio.delay = 0
        assert (await sender.send(item, {})).startswith("SM")
    finally:
        await sender.close()


async def test_check_reads_the_twilio_account_and_names_wrong_credentials(app_settings, twilio):
    from bot.checks import probe_twilio

    settings = app_settings(twilio={"account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                                    "api_url": twilio.url, "webhook_url": SMS_URL})
    probe = await probe_twilio(settings)
    assert probe.ok and "Example Support" in probe.detail
    wrong = app_settings(twilio={"account_sid": twilio.account_sid, "auth_token": "wrong",
                                 "api_url": twilio.url, "webhook_url": SMS_URL})
    probe = await probe_twilio(wrong)
    assert not probe.ok and "refused" in probe.detail
    assert twilio.messages == []


async def test_two_texts_of_a_new_customer_ingested_together_make_one_ticket(
        app_settings, fake_slack, relay, twilio):
    from tests.conftest import settle

    settings = app_settings(
        web={"listen": "127.0.0.1:0", "public_url": PUBLIC},
        twilio={"account_sid": twilio.account_sid, "auth_token": twilio.auth_token, "api_url": twilio.url,
                "webhook_url": SMS_URL},
        handler_groups=[{"name": "support", "slack_channel": "#support", "phone_numbers": [SUPPORT_NUMBER]}])
    async with running(settings, roles=("web",)) as app:  # no worker: both wait in the spool
        host, port = app.listening.web
        app.test_url = f"http://{host}:{port}"
        await text_us(app, "My router")
        await text_us(app, "is blinking red")
        await settle(app)  # one intake pass takes both
        [ticket] = await reports.list_tickets(app.db, now=app.clock.now())
        assert await inbound_count(app, ticket["number"]) == 2


def test_the_form_is_read_as_parse_qsl_reads_it():
    from urllib.parse import parse_qsl

    from bot.inbound.smsparse import form_fields

    params = inbound_sms_params(account_sid="AC" + "0" * 32, from_=CUSTOMER, to=SUPPORT_NUMBER,
                                body="Ça marche? 100% + a&b=c ünïcödé 🎉\nline two")
    data = urlencode(params).encode() + b"&Empty=&Bare&Plus=a+b&Pct=%41%2b"
    assert form_fields(data) == dict(parse_qsl(data.decode(), keep_blank_values=True))
    assert form_fields(data)["Body"] == params["Body"]
