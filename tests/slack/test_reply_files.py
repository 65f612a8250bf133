"""Staff send files with a reply from Slack's Reply modal (issue 21, acceptance 3).

The modal's file input hands over Slack file objects; Deskbell fetches each from the fake
Slack's ``url_private`` with the bot token (the fake serves it to no one else), then mails the
files to the customer as attachments, or texts an image as MMS media through a signed link
that the fake Twilio fetches back from our web server.
"""

from __future__ import annotations

import hashlib
import socket

from tests.conftest import DOMAIN, wait_until
from tests.slack.test_interactions import customer_ticket, desk
from tests.test_sms import CUSTOMER, SUPPORT_NUMBER, sms_desk, text_us, twilio  # noqa: F401 (fixture)

PDF = b"%PDF-1.4 receipt " + bytes(range(256)) * 20
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(500)
SECRET = "links-for-reply-files"


async def reply_modal(slack, fake_slack) -> dict:
    status, _ = await slack.button("ticket.reply", 1, user="UALICE")
    assert status == 200
    await wait_until(lambda: fake_slack.views_opened)
    return fake_slack.views_opened[-1]


def text_block(modal: dict) -> str:
    return next(b["block_id"] for b in modal["blocks"] if b.get("block_id", "").startswith("text."))


async def test_two_files_from_the_reply_modal_reach_the_customer_as_attachments(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack, email_out={"port": relay.port}) as (app, slack):
        original = await customer_ticket(app, fake_slack)
        await relay.wait_for(1)  # the acknowledgement
        modal = await reply_modal(slack, fake_slack)
        assert any(b.get("element", {}).get("type") == "file_input" for b in modal["blocks"])
        files = [fake_slack.staff_upload("receipt.pdf", PDF, "application/pdf"),
                 fake_slack.staff_upload("Квитанция май.png", PNG, "image/png")]
        status, _ = await slack.submit(modal, {text_block(modal): "Here is your receipt.",
                                               "status_after": {"option": "waiting"}, "files": {"files": files}},
                                       user="UALICE")
        assert status == 200
        [_, answer] = await relay.wait_for(2)

    assert answer["In-Reply-To"] == original and answer["Subject"] == "Re: Router down [#1]"
    assert "Here is your receipt." in answer.get_body(("plain",)).get_content()
    sent = [(part.get_filename(), part.get_content_type(), part.get_content()) for part in answer.iter_attachments()]
    assert sent == [("receipt.pdf", "application/pdf", PDF), ("Квитанция май.png", "image/png", PNG)]
    # RFC 2231 (filename*=utf-8''%D0%9A…), never raw UTF-8 in the header.
    raw = relay.sink.received[1][2]
    assert raw.isascii() and b"filename*=utf-8''%D0%9A%D0%B2" in raw


async def test_a_file_too_big_for_the_mail_is_named_and_nothing_is_sent(app_settings, fake_slack, relay):
    async with desk(app_settings, fake_slack, email_out={"port": relay.port, "max_message_bytes": 200_000}) as (app, slack):
        await customer_ticket(app, fake_slack)
        await relay.wait_for(1)
        modal = await reply_modal(slack, fake_slack)
        files = [fake_slack.staff_upload("small.txt", b"ok", "text/plain"),
                 fake_slack.staff_upload("scan.tiff", bytes(300_000), "image/tiff")]
        status, text = await slack.submit(modal, {text_block(modal): "Scan attached.", "files": {"files": files}},
                                          user="UALICE")
    assert status == 200 and '"response_action":"errors"' in text.replace(" ", "")
    assert "scan.tiff" in text and "small.txt" not in text
    assert len(relay.messages) == 1  # only the acknowledgement
    assert not [c for c in fake_slack.calls if c.method.startswith("files.")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_image_sent_by_text_goes_as_mms_through_a_signed_link(app_settings, fake_slack, relay, twilio):
    port = free_port()
    async with sms_desk(app_settings, fake_slack, twilio, attachments={"link_secret": SECRET},
                        web={"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"}) as (app, slack):
        await text_us(app, "My router shows this light")
        await wait_until(lambda: fake_slack.cards())
        modal = await reply_modal(slack, fake_slack)
        image = fake_slack.staff_upload("how-it-should-look.png", PNG, "image/png")
        await slack.submit(modal, {text_block(modal): "It should look like this.", "files": {"files": [image]}},
                           user="UALICE")
        await wait_until(lambda: twilio.messages, timeout=20)
    [sent] = twilio.messages
    assert (sent.to, sent.from_, sent.body) == (CUSTOMER, SUPPORT_NUMBER, "It should look like this.")
    [url] = sent.media_urls
    assert url.startswith(f"http://127.0.0.1:{port}/files/") and "sig=" in url
    [(status, content_type, data)] = sent.fetched
    assert status == 200 and hashlib.sha256(data).digest() == hashlib.sha256(PNG).digest()
    assert content_type.startswith("image/png")  # declared and seen: an inert image
    assert DOMAIN  # the email side is untouched: the customer texted
    assert not relay.messages
