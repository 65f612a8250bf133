"""The fake Twilio itself (tests/faketwilio.py), driven by the official ``twilio`` library the way
the app drives it: ``Client`` + ``AsyncTwilioHttpClient`` with ``client.api.base_url`` pointed at
the fake. Also pins down what that library does by itself (retries, timeout, closing) and the
webhook helpers (forms and ``X-Twilio-Signature``)."""

from __future__ import annotations

import asyncio
import base64
import gc
import time
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.faketwilio import (FakeTwilio, SentMessage, inbound_sms_params, num_segments, status_params,
                              twilio_signature)

# twilio 9.13 hands aiohttp a BasicAuth object (``auth=``), which aiohttp 3.14 deprecates; not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

OURS = "+15550000000"
CUSTOMER = "+15551230001"
WEBHOOK = "https://helpdesk.example.com/twilio/sms"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    twilio = await FakeTwilio().start()
    yield twilio
    await twilio.stop()


MakeClient = Callable[..., Client]


@pytest.fixture
async def make_client(fake: FakeTwilio) -> AsyncIterator[MakeClient]:
    """Clients as the app builds them, aimed at the fake; their aiohttp sessions closed after."""
    made: list[AsyncTwilioHttpClient] = []

    def make(*, auth_token: str | None = None, **http_options: Any) -> Client:
        http = AsyncTwilioHttpClient(**http_options)
        made.append(http)
        client = Client(fake.account_sid, auth_token or fake.auth_token, http_client=http)
        client.api.base_url = fake.url  # what config twilio.api_url sets
        return client

    yield make
    for http in made:
        await http.close()


async def test_a_send_reaches_the_versioned_path_and_is_recorded(fake: FakeTwilio, make_client: MakeClient) -> None:
    client = make_client()
    sent = await client.messages.create_async(
        to=CUSTOMER, from_=OURS, body="Your ticket #42 is answered.",
        status_callback="https://helpdesk.example.com/twilio/status",
        media_url=["https://helpdesk.example.com/files/a.png", "https://helpdesk.example.com/files/b.pdf"])

    assert [r.path for r in fake.requests] == [f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"]
    assert fake.requests[0].auth == (fake.account_sid, fake.auth_token)
    assert fake.requests[0].status == 201
    [message] = fake.messages
    assert message == SentMessage(
        to=CUSTOMER, from_=OURS, body="Your ticket #42 is answered.",
        status_callback="https://helpdesk.example.com/twilio/status",
        media_urls=["https://helpdesk.example.com/files/a.png", "https://helpdesk.example.com/files/b.pdf"],
        sid=message.sid, at=message.at, result=message.result)
    # The library parsed the fake's answer into a MessageInstance, fields and dates included.
    assert sent.sid == message.sid and sent.sid.startswith("MM") and len(sent.sid) == 34
    assert (sent.status, sent.to, sent.from_, sent.num_segments, sent.num_media) == (
        "queued", CUSTOMER, OURS, "1", "2")
    assert sent.account_sid == fake.account_sid and sent.direction == "outbound-api"
    assert isinstance(sent.date_created, datetime)
    assert abs((datetime.now(timezone.utc) - sent.date_created).total_seconds()) < 5
    assert sent.uri == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{sent.sid}.json"

    text_only = await client.api.account.messages.create_async(to=CUSTOMER, from_=OURS, body="x" * 161)
    assert text_only.sid.startswith("SM") and text_only.num_segments == "2"
    assert fake.messages[1].media_urls == [] and fake.messages[1].status_callback is None


async def test_wrong_credentials_are_refused_with_401(fake: FakeTwilio, make_client: MakeClient) -> None:
    client = make_client(auth_token="not-the-token")
    with pytest.raises(TwilioRestException) as caught:
        await client.messages.create_async(to=CUSTOMER, from_=OURS, body="hello")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert "Authenticate" in caught.value.msg
    assert fake.messages == []
    assert [(r.status, r.code, r.auth) for r in fake.requests] == [
        (401, 20003, (fake.account_sid, "not-the-token"))]


async def test_an_unsubscribed_recipient_is_refused_with_21610(fake: FakeTwilio, make_client: MakeClient) -> None:
    fake.unsubscribed.add(CUSTOMER)
    client = make_client()
    with pytest.raises(TwilioRestException) as caught:
        await client.messages.create_async(to=CUSTOMER, from_=OURS, body="Are you still there?")
    assert (caught.value.status, caught.value.code) == (400, 21610)
    assert fake.messages == [] and len(fake.refused()) == 1

    fake.unsubscribed.discard(CUSTOMER)  # they texted START
    await client.messages.create_async(to=CUSTOMER, from_=OURS, body="Welcome back")
    assert [m.to for m in fake.messages] == [CUSTOMER]


@pytest.mark.parametrize(("fields", "code", "says"), [
    ({"to": "5551230001"}, 21211, "The 'To' number 5551230001 is not a valid phone number."),
    ({"from_": "+15559999999"}, 21606, "The From phone number +15559999999 is not a valid, SMS-capable"),
    ({"from_": None}, 21603, "A 'From' phone number is required."),
    ({"body": ""}, 21602, "Message body is required."),
    ({"body": "x" * 1601}, 21617, "exceeds the 1600 character limit"),
    ({"status_callback": "/twilio/status"}, 21609, "StatusCallback"),
])
async def test_what_twilio_refuses_the_fake_refuses(fake: FakeTwilio, make_client: MakeClient,
                                                    fields: dict[str, Any], code: int, says: str) -> None:
    arguments = {"to": CUSTOMER, "from_": OURS, "body": "hello", **fields}
    with pytest.raises(TwilioRestException) as caught:
        await make_client().messages.create_async(**{k: v for k, v in arguments.items() if v is not None})
    assert (caught.value.status, caught.value.code) == (400, code)
    assert says in caught.value.msg
    assert fake.messages == []


async def test_1600_characters_and_media_without_a_body_are_accepted(fake: FakeTwilio,
                                                                     make_client: MakeClient) -> None:
    client = make_client()
    await client.messages.create_async(to=CUSTOMER, from_=OURS, body="x" * 1600)
    await client.messages.create_async(to=CUSTOMER, from_=OURS, media_url=["https://example.com/a.png"])
    assert [len(m.body) for m in fake.messages] == [1600, 0]


async def test_a_429_is_raised_once_and_not_retried(fake: FakeTwilio, make_client: MakeClient) -> None:
    client = make_client()
    fake.fail_next(1, status=429, retry_after=2)
    with pytest.raises(TwilioRestException) as caught:
        await client.messages.create_async(to=CUSTOMER, from_=OURS, body="hello")
    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert "Too Many Requests" in caught.value.msg
    assert len(fake.requests) == 1 and fake.messages == []
    # The exception carries no headers: Retry-After is only on the http client's last response.
    assert client.http_client._test_only_last_response.headers["Retry-After"] == "2"

    await client.messages.create_async(to=CUSTOMER, from_=OURS, body="hello")  # the failure was used up
    assert len(fake.messages) == 1


@pytest.mark.parametrize(("max_retries", "requests", "outcome"), [
    (None, 1, 500),  # the default: a plain ClientSession, each call is one request
    (1, 1, 500),     # "attempts" in aiohttp_retry: 1 = one try, no retry
    (2, 2, 500),     # retries a POST on 5xx: a second SMS if the first 500 had been sent
    (0, 3, 201),     # no limit at all: retried until Twilio stops failing
])
async def test_what_max_retries_does(fake: FakeTwilio, make_client: MakeClient, max_retries: int | None,
                                     requests: int, outcome: int) -> None:
    client = make_client(max_retries=max_retries)
    fake.fail_next(2, status=500)
    try:
        await client.messages.create_async(to=CUSTOMER, from_=OURS, body="hello")
        status = 201
    except TwilioRestException as exc:
        status = exc.status
        assert exc.code == 20500
    assert (len(fake.requests), status) == (requests, outcome)


async def test_no_retry_on_429_even_with_max_retries(fake: FakeTwilio, make_client: MakeClient) -> None:
    fake.fail_next(1, status=429)
    with pytest.raises(TwilioRestException) as caught:
        await make_client(max_retries=3).messages.create_async(to=CUSTOMER, from_=OURS, body="hello")
    assert caught.value.status == 429 and len(fake.requests) == 1


async def test_down_answers_503_to_everything(fake: FakeTwilio, make_client: MakeClient) -> None:
    url = fake.add_media(b"GIF89a", "image/gif")
    fake.down = True
    with pytest.raises(TwilioRestException) as caught:
        await make_client().messages.create_async(to=CUSTOMER, from_=OURS, body="hello")
    assert (caught.value.status, caught.value.code) == (503, 20503)
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=_basic(fake.account_sid, fake.auth_token)) as response:
            assert response.status == 503
    fake.down = False
    await make_client().messages.create_async(to=CUSTOMER, from_=OURS, body="hello")
    assert [r.status for r in fake.requests] == [503, 503, 201]


async def test_media_is_served_only_with_basic_auth(fake: FakeTwilio) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    url = fake.add_media(picture, "image/png")
    assert url.startswith(f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages/MM")
    assert "/Media/ME" in url
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 401
            assert (await response.json())["code"] == 20003
        async with session.get(url, headers=_basic(fake.account_sid, "wrong")) as response:
            assert response.status == 401
        assert fake.media_at(url).fetches == 0
        # As Twilio: the authenticated URL redirects to a short-lived one that needs no auth.
        async with session.get(url, headers=_basic(fake.account_sid, fake.auth_token),
                               allow_redirects=False) as response:
            assert response.status == 307
            short_lived = response.headers["Location"]
        async with session.get(short_lived) as response:
            assert response.status == 200 and await response.read() == picture
        async with session.get(url, headers=_basic(fake.account_sid, fake.auth_token)) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
            assert await response.read() == picture
        fake.media_redirect = False
        async with session.get(url, headers=_basic(fake.account_sid, fake.auth_token),
                               allow_redirects=False) as response:
            assert response.status == 200 and await response.read() == picture
    assert fake.media_at(url).fetches == 3


async def test_a_computed_signature_validates(fake: FakeTwilio) -> None:
    params = inbound_sms_params(account_sid=fake.account_sid, from_=CUSTOMER, to=OURS, body="Printer on fire",
                                media=[(fake.add_media(b"x", "image/jpeg"), "image/jpeg")])
    signature = twilio_signature(fake.auth_token, WEBHOOK, params)
    validator = RequestValidator(fake.auth_token)
    assert validator.validate(WEBHOOK, params, signature)
    assert not validator.validate(WEBHOOK, {**params, "Body": "Printer fine"}, signature)
    assert not validator.validate(WEBHOOK + "?x=1", params, signature)
    assert not RequestValidator("another-token").validate(WEBHOOK, params, signature)


def test_inbound_sms_params_are_the_fields_twilio_posts() -> None:
    account = "AC" + "ab" * 16
    sms = inbound_sms_params(account_sid=account, from_=CUSTOMER, to=OURS, body="Hi")
    assert set(sms) == {
        "MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "From", "To", "Body", "NumMedia",
        "NumSegments", "SmsStatus", "ApiVersion", "FromCity", "FromState", "FromZip", "FromCountry",
        "ToCity", "ToState", "ToZip", "ToCountry"}
    assert sms["MessageSid"] == sms["SmsSid"] == sms["SmsMessageSid"]
    assert sms["MessageSid"].startswith("SM") and len(sms["MessageSid"]) == 34
    assert (sms["AccountSid"], sms["From"], sms["To"], sms["Body"]) == (account, CUSTOMER, OURS, "Hi")
    assert (sms["NumMedia"], sms["NumSegments"], sms["SmsStatus"], sms["ApiVersion"]) == (
        "0", "1", "received", "2010-04-01")
    assert (sms["FromCountry"], sms["ToCountry"]) == ("US", "US")
    assert all(isinstance(v, str) for v in sms.values())

    mms = inbound_sms_params(account_sid=account, from_=CUSTOMER, to=OURS, body="", sid="MM" + "1" * 32,
                             media=[("https://m.example/0", "image/jpeg"), ("https://m.example/1", "video/mp4")])
    assert mms["MessageSid"] == "MM" + "1" * 32 and mms["NumMedia"] == "2" and mms["Body"] == ""
    assert [(mms[f"MediaUrl{i}"], mms[f"MediaContentType{i}"]) for i in range(2)] == [
        ("https://m.example/0", "image/jpeg"), ("https://m.example/1", "video/mp4")]
    assert "MediaUrl2" not in mms and "MessagingServiceSid" not in mms
    assert inbound_sms_params(account_sid=account, from_=CUSTOMER, to=OURS, body="",
                              media=[("https://m.example/0", "image/jpeg")])["MessageSid"].startswith("MM")
    # What the webhook receives is the urlencoded form of exactly these fields.
    assert "MediaUrl1=https%3A%2F%2Fm.example%2F1" in urlencode(mms)


def test_status_params_are_the_fields_of_a_status_callback() -> None:
    account, sid = "AC" + "ab" * 16, "SM" + "c" * 32
    delivered = status_params(account_sid=account, sid=sid, status="delivered", to=CUSTOMER, from_=OURS)
    assert delivered == {"MessageSid": sid, "SmsSid": sid, "MessageStatus": "delivered", "SmsStatus": "delivered",
                         "AccountSid": account, "To": CUSTOMER, "From": OURS, "ApiVersion": "2010-04-01"}
    failed = status_params(account_sid=account, sid=sid, status="undelivered", to=CUSTOMER, from_=OURS,
                           error_code=30005)
    assert failed["ErrorCode"] == "30005" and failed["MessageStatus"] == "undelivered"


def test_segments_count_as_twilio_bills_them() -> None:
    assert [num_segments("a" * n) for n in (0, 160, 161, 306, 307)] == [1, 1, 2, 2, 3]
    assert num_segments("€" * 80) == 1 and num_segments("€" * 81) == 2  # two septets each
    assert [num_segments("é" * 160), num_segments("ł" * 70), num_segments("ł" * 71)] == [1, 1, 2]
    assert num_segments("😀" * 35) == 1 and num_segments("😀" * 36) == 2  # two UTF-16 units each


async def test_closing_the_http_client_closes_its_session() -> None:
    for options in ({}, {"max_retries": 2}):
        http = AsyncTwilioHttpClient(**options)
        await http.close()
        session = getattr(http.session, "_client", http.session)  # RetryClient wraps a ClientSession
        assert session.closed
    async with AsyncTwilioHttpClient() as http:
        session = http.session
    assert session.closed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del http, session
        gc.collect()
    assert not [w for w in caught if "Unclosed client session" in str(w.message)]


async def test_the_http_client_ignores_its_own_timeout(fake: FakeTwilio, make_client: MakeClient) -> None:
    """``AsyncTwilioHttpClient(timeout=…)`` is stored but never handed to aiohttp, and each request
    passes ``timeout=None``, which aiohttp reads as no limit at all: bound the call yourself."""
    fake.delay = 0.3
    client = make_client(timeout=0.05)
    started = time.monotonic()
    await client.messages.create_async(to=CUSTOMER, from_=OURS, body="slow")
    assert time.monotonic() - started >= 0.3
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await client.messages.create_async(to=CUSTOMER, from_=OURS, body="slow")


def test_an_edge_or_region_mangles_the_fake_url() -> None:
    """TWILIO_EDGE / TWILIO_REGION (or edge=, region=) rewrite the host of every URL."""
    url = "http://127.0.0.1:8999/2010-04-01/Accounts/AC/Messages.json"
    client = Client("AC" + "0" * 32, "token", edge="sydney")
    assert client.get_hostname(url) != url
    client.edge = client.region = None
    assert client.get_hostname(url) == url
