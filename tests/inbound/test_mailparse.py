"""Tests for ``bot.inbound.mailparse``: one per odd-mail scenario, plus the never-crash contract.

The mail comes from ``tests/mailfixtures.py``. These tests must not touch the network or a
database, and must not patch the email, inscriptis, mail-parser-reply or tnefparse libraries.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timezone

import pytest

from bot.core.errors import MailParseError
from bot.inbound import mailparse
from bot.inbound.mailparse import parse_email, render, replies
from bot.messages import InboundMessage
from tests import mailfixtures as mf
from tests.tnef_writer import TnefFile, tnef_stream

RECEIVED = datetime(2025, 3, 3, 10, 16, tzinfo=timezone.utc)


def parse(raw: bytes, **kwargs) -> InboundMessage:
    return parse_email(raw, received_at=RECEIVED, **kwargs)


def names(msg: InboundMessage) -> list[str]:
    return [a.name for a in msg.attachments]


def has_defect(msg: InboundMessage, *words: str) -> bool:
    return any(all(word in defect for word in words) for defect in msg.defects)


# --------------------------------------------------------------------------- basics


def test_plain_message_fields_and_pass_through():
    raw = mf.plain(
        from_addr="Alice Example <Alice@Example.NET>", message_id="<Abc.123@Mail.Example.NET>"
    )
    msg = parse(
        raw,
        envelope_sender="bounce-alice@example.net",
        recipients=("help@support.example.com",),
        door="imap:support",
    )
    assert msg.channel == "email"
    assert msg.raw == raw
    assert msg.received_at == RECEIVED
    assert msg.source_id == "Abc.123@Mail.Example.NET"  # case kept: ids are case-sensitive
    assert msg.message_id == "Abc.123@Mail.Example.NET"
    assert msg.sender_address == "alice@example.net"
    assert msg.sender_name == "Alice Example"
    assert msg.reply_to is None
    assert msg.subject == "Router down"
    assert msg.body.startswith("Hello,\n\nmy router has been down")
    assert msg.body.endswith("Alice")
    assert msg.quoted == ""
    assert msg.envelope_sender == "bounce-alice@example.net"
    assert msg.recipients == ("help@support.example.com",)
    assert msg.door == "imap:support"
    assert msg.auto_submitted is None and msg.bounce is None and msg.loop is False
    assert msg.attachments == () and msg.defects == ()


def test_reply_to_only_when_it_differs_from_from():
    same = parse(mf.plain(extra_headers={"Reply-To": "ALICE@example.net"}))
    other = parse(mf.plain(extra_headers={"Reply-To": "Accounts <Billing@Example.net>"}))
    assert same.reply_to is None
    assert other.reply_to == "billing@example.net"


def test_no_message_id_hashes_the_raw_bytes():
    raw = mf.no_message_id()
    msg = parse(raw)
    assert msg.message_id is None
    assert msg.source_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert has_defect(msg, "no Message-ID")
    assert parse(raw).source_id == msg.source_id  # a replay gets the same key (DESIGN §2.2)
    assert parse(mf.no_message_id(body="Other text")).source_id != msg.source_id


def test_message_id_without_at_sign_is_not_trusted():
    raw = mf.plain(message_id="<12345>")
    msg = parse(raw)
    assert msg.message_id is None
    assert msg.source_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_in_reply_to_and_references_tolerate_junk():
    raw = mf.plain(
        in_reply_to="<a.1@example.com> (Help Desk's message of Monday)",
        references="junk <a.0@example.com> FOLD <a.1@example.com>, <a.0@example.com>",
    )
    msg = parse(raw.replace(b" FOLD ", b"\r\n\t"))  # folded across lines (RFC 5322 §2.2.3)
    assert msg.in_reply_to == ("a.1@example.com",)
    assert msg.references == ("a.0@example.com", "a.1@example.com")


# --------------------------------------------------------------------------- charsets and headers


def test_wrong_charset_cp1252_declared_utf8():
    msg = parse(mf.wrong_charset())
    assert msg.body == "Grüße aus Köln – der Router blinkt rot."
    assert has_defect(msg, "'utf-8'", "cp1252")


def test_unknown_charset_in_body_and_encoded_word():
    msg = parse(mf.unknown_charset())
    assert msg.subject == "Café wifi"
    assert msg.body == "The café wifi drops every ten minutes."
    assert has_defect(msg, "x-unknown")


def test_utf7_under_its_old_alias():
    assert parse(mf.utf7_charset()).body == "Prix: 20 € par mois, merci."


def test_raw_8bit_headers():
    msg = parse(mf.raw_8bit_headers())
    assert msg.subject == "Störung: Internet fällt aus"
    assert msg.sender_name == "José García"
    assert msg.sender_address == "jose@example.es"
    assert has_defect(msg, "8-bit Subject", "utf-8")
    assert has_defect(msg, "8-bit From", "cp1252")


def test_encoded_words_split_across_folded_lines_join_up():
    # A long non-ASCII subject is cut into several encoded words mid-word (RFC 2047 §2, §6.2).
    subject = "Überweisungsbestätigungsformularänderungsantrag-" * 3 + " ok"
    assert parse(mf.plain(subject=subject)).subject == subject


def test_duplicate_headers_use_the_first():
    msg = parse(mf.duplicate_headers())
    assert msg.sender_address == "first@example.com"
    assert msg.subject == "First subject, folded over three lines"
    assert msg.message_id == "dup.1@example.com"
    assert has_defect(msg, "duplicate Subject")
    assert has_defect(msg, "duplicate Message-ID")


def test_missing_from_falls_back_to_sender():
    msg = parse(mf.sender_only(), envelope_sender="envelope@example.com")
    assert (msg.sender_address, msg.sender_name) == ("dana@example.com", "Dana Sender")


def test_missing_from_and_sender_falls_back_to_envelope():
    msg = parse(mf.no_sender_headers(), envelope_sender="Eve@Example.com")
    assert msg.sender_address == "eve@example.com"
    assert has_defect(msg, "From")


# --------------------------------------------------------------------------- MIME structure


def test_deeply_nested_multipart_finds_the_text():
    msg = parse(mf.deeply_nested_multipart(levels=60))
    assert msg.body == "The deepest text part."


def test_nesting_past_our_limit_is_skipped_with_a_defect():
    msg = parse(mf.deeply_nested_multipart(levels=mailparse.MAX_DEPTH + 20))
    assert msg.body == ""
    assert has_defect(msg, "deeper than")


def test_nesting_past_the_stdlib_limit_keeps_the_headers():
    raw = mf.deeply_nested_multipart(levels=1500)
    msg = parse(raw)
    assert msg.subject == "Nested"
    assert msg.body == ""
    assert msg.raw == raw
    assert has_defect(msg, "too deep to parse")


def test_missing_boundary_reads_the_body_as_text():
    msg = parse(mf.missing_boundary())
    assert msg.body == "My text without any MIME structure."
    assert has_defect(msg, "without usable boundary")


def test_boundary_that_never_appears():
    msg = parse(mf.absent_boundary())
    assert msg.body == "Text that was meant to be inside a part."
    assert has_defect(msg, "StartBoundaryNotFound")


def test_bad_base64_and_quoted_printable():
    msg = parse(mf.bad_transfer_encoding())
    assert "Please reset my password." in msg.body
    assert "number 12=34 and a soft break." in msg.body
    assert has_defect(msg, "mime: InvalidBase64")


def test_empty_body():
    msg = parse(mf.empty_body())
    assert (msg.subject, msg.body, msg.quoted) == ("Call me back please", "", "")


def test_long_lines_survive_intact():
    msg = parse(mf.long_lines(length=9000))
    line = msg.body.split("\n")[1]
    assert len(line) == 9000 and line.startswith("0123456789abcdef")


def test_format_flowed_with_delsp():
    msg = parse(mf.format_flowed())
    assert msg.body == "The connection drops when the microwave is on, every single time. Please help."


# --------------------------------------------------------------------------- HTML


def test_html_only_becomes_readable_text():
    msg = parse(mf.html_only())
    assert "Order #5531 never arrived & tracking shows nothing." in msg.body
    assert "Grace Buyer" in msg.body
    assert "<" not in msg.body and "color" not in msg.body and "track()" not in msg.body
    assert msg.reply_to == "grace@example.com"


def test_plain_stub_of_html_uses_the_html():
    msg = parse(mf.html_stub())
    assert "error code E-42" in msg.body
    assert "factory reset twice" in msg.body
    assert "browser" not in msg.body


def test_html_layout_cannot_blow_up_the_text():
    # Inscriptis pads each table row to the widest cell: 70 KB of this used to give 20 MB.
    rows = "<tr><td>b</td><td>c</td></tr>" * 2000
    html = f"<table><tr><td>{'a' * 10000}</td><td>z</td></tr>{rows}</table>"
    nested = '<div style="padding-left:100em">' * 200 + "<br>".join(["x"] * 2000) + "</div>" * 200
    raw = mf.plain(body="placeholder")
    for markup in (html, nested):
        msg = parse(raw.replace(b"Content-Type: text/plain", b"Content-Type: text/html").replace(
            b"placeholder", markup.encode()))
        assert len(msg.body) + len(msg.quoted) < 2 * len(markup)


# --------------------------------------------------------------------------- reply splitting


def test_outlook_reply_with_quoted_header_block():
    msg = parse(mf.outlook_reply_with_quote())
    assert msg.body == "Still down after the restart.\n\nJudy"
    assert "From: Help Desk <help@support.example.com>" in msg.quoted
    assert "Sent: Monday, March 3, 2025 9:02 AM" in msg.quoted
    assert msg.quoted.endswith("Please restart the router and tell us if the light turns green.")


def test_gmail_reply_with_attribution_and_quote_marks():
    msg = parse(mf.gmail_reply())
    assert msg.body == "Yes, it works now. Thank you!"
    assert msg.quoted.startswith("On Mon, Mar 3, 2025 at 9:05 AM Help Desk")
    assert "> Please restart the router." in msg.quoted
    assert msg.in_reply_to == (f"t42.2.bbbb@{mf.OUR_DOMAIN}",)
    assert msg.references == (f"t42.1.aaaa@{mf.OUR_DOMAIN}", f"t42.2.bbbb@{mf.OUR_DOMAIN}")


def test_signature_after_dash_dash_space_goes_to_quoted():
    msg = parse(mf.signature())
    assert msg.body == "The new modem works.\n- step one was enough"  # a list item is not a signature
    assert msg.quoted == "-- \nLiam Customer\nACME Ltd\n+1 555 0100"


def test_a_sentence_starting_with_thanks_is_not_a_signature():
    text = "Hi,\n\nThanks, the reset worked but now the wifi drops every hour.\nCan you check?\n"
    msg = parse(mf.plain(body=text))
    assert msg.body.endswith("Can you check?")
    assert msg.quoted == ""


def test_indentation_of_the_new_text_is_kept():
    text = (
        "My config:\n    ip route 0.0.0.0 0.0.0.0 10.0.0.1\nfails.\n\n"
        "On Mon, 3 Mar 2025, Help <h@x.example> wrote:\n> old\n"
    )
    msg = parse(mf.plain(body=text))
    assert msg.body == "My config:\n    ip route 0.0.0.0 0.0.0.0 10.0.0.1\nfails."
    assert msg.quoted.startswith("On Mon, 3 Mar 2025")


def test_only_the_first_100kb_go_through_the_reply_parser():
    lines = [f"line {i:05d} " + "x" * 60 for i in range(2500)]  # about 180 KB, no quote at all
    msg = parse(mf.plain(body="\n".join(lines)))
    assert len(msg.body) <= mailparse.MAX_REPLY_PARSE
    assert msg.body.startswith("line 00000") and msg.quoted.endswith("line 02499 " + "x" * 60)
    assert len(msg.body) + len(msg.quoted) >= len("\n".join(lines)) - 2


def test_lines_that_look_like_attributions_do_not_stall_the_parser():
    # "On " + 20,000 characters without "wrote:" costs the library's regex O(n²) (seconds).
    msg = parse(mf.plain(body="On " + "x " * 10000 + "\nstill down\n"))
    assert msg.body.endswith("still down")


def test_dash_dash_space_safety_net():
    # Used when the library's answer cannot be mapped back and the whole text is kept.
    assert replies._cut_sig_dash("Text\n-- \nSig") == ("Text", "-- \nSig")
    assert replies._cut_sig_dash("-- \nonly") == ("-- \nonly", "")
    assert replies._cut_sig_dash("a --\nb") == ("a --\nb", "")


def test_quoted_only_text_stays_in_the_body():
    msg = parse(mf.plain(body="-- \nonly a signature\n"))
    assert msg.body == "-- \nonly a signature"


# --------------------------------------------------------------------------- attachments


@pytest.fixture(scope="module")
def big_message() -> tuple[bytes, InboundMessage]:
    raw = mf.big_attachment_10mb()
    return raw, parse(raw)


def test_big_attachment_10mb(big_message):
    raw, msg = big_message
    [attachment] = msg.attachments
    assert attachment.name == "scan.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.size == mf.BIG_SIZE
    assert attachment.sha256 == hashlib.sha256(mf.big_attachment_bytes()).hexdigest()
    assert msg.body == "Scan attached."
    assert msg.raw == raw


def test_winmail_dat_is_expanded():
    msg = parse(mf.winmail_dat())
    [attachment] = msg.attachments
    assert attachment.name == mf.WINMAIL_INNER_NAME  # the long name, not the 8.3 title
    assert attachment.content_type == "application/pdf"
    assert attachment.size == mf.WINMAIL_INNER_SIZE
    assert attachment.sha256 == mf.WINMAIL_INNER_SHA256
    assert msg.body == "Please see the attached file."
    assert not has_defect(msg, "winmail.dat")


def test_winmail_dat_with_several_files_keeps_each_in_order():
    files = [
        TnefFile("notes.txt", b"Router serial: 4411-2\r\nFirmware: 7.2\r\n"),
        TnefFile("Screenshot 2025-03-03.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\0\0"),
        # No attAttachment (older clients): the TNEF title alone names the file.
        TnefFile("LEGACY.CSV", b"id;state\n1;down\n", mapi_props=False),
    ]
    msg = parse(mf.winmail_dat(files=files))
    assert names(msg) == ["notes.txt", "Screenshot 2025-03-03.png", "LEGACY.CSV"]
    assert [a.data for a in msg.attachments] == [f.data for f in files]  # trailing NULs kept
    assert [a.content_type for a in msg.attachments] == ["text/plain", "image/png", "text/csv"]
    assert not has_defect(msg, "winmail.dat")


def test_winmail_dat_keeps_long_unicode_file_names():
    name = "Angebot für Zürich – 北京办公室 2025 (final, signed by everyone involved).docx"
    too_long = "é" * 300 + ".pdf"
    files = [TnefFile(name, b"PK\x03\x04 docx"), TnefFile(too_long, b"%PDF-1.4")]
    first, second = parse(mf.winmail_dat(files=files)).attachments
    assert first.name == name
    assert len(second.name.encode("utf-8")) <= 255 and second.name.endswith(".pdf")
    assert (first.data, second.data) == (b"PK\x03\x04 docx", b"%PDF-1.4")


def test_winmail_dat_without_files_is_kept_as_is():
    empty = tnef_stream([])
    msg = parse(mf.winmail_dat(tnef=empty))
    [attachment] = msg.attachments
    assert (attachment.name, attachment.data) == ("winmail.dat", empty)
    assert has_defect(msg, "winmail.dat held no files")


def test_real_winmail_dat_from_shared_fixtures_is_expanded():
    """Optional: the same check on a winmail.dat written by Outlook itself."""
    raw = mf.shared_winmail_dat()
    if raw is None:
        pytest.skip(f"optional real sample {mf.SHARED_WINMAIL_PATH} is absent (never copied into "
                    "the project); the generated winmail.dat tests above cover the same code")
    [attachment] = parse(raw).attachments
    assert attachment.name == mf.SHARED_WINMAIL_INNER_NAME
    assert attachment.size == mf.SHARED_WINMAIL_INNER_SIZE
    assert attachment.sha256 == mf.SHARED_WINMAIL_INNER_SHA256


def test_corrupt_winmail_dat_is_kept_as_is():
    msg = parse(mf.winmail_dat_corrupt())
    [attachment] = msg.attachments
    assert attachment.name == "winmail.dat"
    assert attachment.data == b"this is not TNEF at all" * 4
    assert has_defect(msg, "winmail.dat")


def _with_huge_property_count(tnef: bytes) -> bytes:
    """The first attAttachment (0x9005) list claims 100,000 properties. tnefparse would loop
    (and log) once for each; 0xFFFFFFFF of them exhausts memory."""
    data = bytearray(tnef)
    offset = 6
    while offset + 12 < len(data):
        name = int.from_bytes(data[offset + 1 : offset + 3], "little")
        length = int.from_bytes(data[offset + 5 : offset + 9], "little")
        if name == 0x9005:
            data[offset + 9 : offset + 13] = (100_000).to_bytes(4, "little")
            return bytes(data)
        offset += length + 11
    raise AssertionError("no attAttachment attribute in the fixture")


def test_winmail_dat_with_hostile_counts_is_not_decoded():
    hostile = _with_huge_property_count(tnef_stream(mf.WINMAIL_FILES))
    msg = parse(mf.winmail_dat(tnef=hostile))
    assert names(msg) == ["winmail.dat"]
    assert msg.attachments[0].data == hostile
    assert has_defect(msg, "too costly")


def test_inline_image_and_odd_file_names():
    msg = parse(mf.inline_image_and_odd_names())
    assert msg.body == "See the error:"
    assert names(msg) == [
        "attachment-1.png",  # no name: default plus an extension from the type
        "Résumé.pdf",  # RFC 2231
        "Привет.txt",  # RFC 2047 inside a quoted name (Outlook)
        "evil.exe",  # path dropped
        "invoicefdp.exe",  # U+202E dropped
        "attachment-6.zip",
    ]
    assert [a.inline for a in msg.attachments] == [True, False, False, False, False, False]
    assert msg.attachments[0].content_type == "image/png"


def test_long_attachment_name_is_cut_but_keeps_its_extension():
    [attachment] = parse(mf.long_attachment_name(length=300)).attachments
    assert len(attachment.name.encode("utf-8")) <= 255
    assert attachment.name.endswith(".pdf") and attachment.name.startswith("ééé")


def test_attached_message_is_an_eml_attachment():
    msg = parse(mf.attached_message())
    assert msg.body == "Is this mail from you?"
    [attachment] = msg.attachments
    assert (attachment.name, attachment.content_type) == ("Verify your account.eml", "message/rfc822")
    assert b"Message-ID: <phish.1@bank.example>" in attachment.data
    assert msg.bounce is None


# --------------------------------------------------------------------------- loops and bounces


def test_dsn_bounce():
    msg = parse(mf.dsn_bounce(), our_message_id_domain=mf.OUR_DOMAIN)
    assert msg.auto_submitted == "bounce"
    assert msg.bounce is not None
    assert msg.bounce.original_message_id == f"t42.7.k3x9@{mf.OUR_DOMAIN}"
    assert msg.bounce.recipients == ("gone@example.org",)
    assert msg.bounce.status == "5.1.1"
    assert "Recipient address rejected" in msg.bounce.diagnostic
    assert "[#42] Your ticket.eml" in names(msg)


def test_dsn_prefers_a_message_id_of_our_domain():
    raw = mf.dsn_bounce(original_message_id="<relay.9@elsewhere.example>",
                        references=f"<t42.5.zz@{mf.OUR_DOMAIN}>")
    ours = parse(raw, our_message_id_domain=mf.OUR_DOMAIN)
    assert ours.bounce.original_message_id == f"t42.5.zz@{mf.OUR_DOMAIN}"
    assert parse(raw).bounce.original_message_id == "relay.9@elsewhere.example"


def test_delay_notice_is_automatic_but_not_a_bounce():
    msg = parse(mf.dsn_bounce(action="delayed", status="4.4.7"))
    assert msg.bounce is None
    assert msg.auto_submitted == "dsn:delayed"


def test_plain_text_bounce_from_mailer_daemon():
    msg = parse(mf.plain_bounce(), our_message_id_domain=mf.OUR_DOMAIN)
    assert msg.auto_submitted == "bounce"
    assert msg.bounce.original_message_id == f"t42.8.q1w2@{mf.OUR_DOMAIN}"
    assert msg.bounce.status == "5.1.1"


def test_prose_delay_warning_is_automatic_but_not_a_bounce():
    msg = parse(mf.delay_warning())
    assert msg.bounce is None
    assert msg.auto_submitted == "mailer-daemon:delay"


def test_out_of_office():
    msg = parse(mf.out_of_office())
    assert msg.auto_submitted == "auto-submitted:auto-replied"
    assert msg.bounce is None


def test_mailing_list():
    assert parse(mf.mailing_list()).auto_submitted == "list-id"


def test_our_loop_header():
    msg = parse(mf.loop_header())
    assert msg.loop is True


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Auto-Submitted": "no"}, None),
        ({"Auto-Submitted": "auto-generated; owner-email=x@example.com"}, "auto-submitted:auto-generated"),
        ({"X-Autoreply": "yes"}, "x-autoreply"),
        ({"X-Autorespond": "Out of office"}, "x-autorespond"),
        ({"X-Auto-Response-Suppress": "DR, OOF, AutoReply"}, "x-auto-response-suppress:autoreply"),
        ({"X-Auto-Response-Suppress": "RN, NRN"}, None),
        ({"Precedence": "bulk"}, "precedence:bulk"),
        ({"Precedence": "first-class"}, None),
        ({"List-Unsubscribe": "<mailto:leave@lists.example.com>"}, "list-unsubscribe"),
    ],
)
def test_automatic_mail_headers(headers, expected):
    assert parse(mf.plain(extra_headers=headers)).auto_submitted == expected


def test_null_envelope_sender_is_automatic():
    assert parse(mf.plain(), envelope_sender="").auto_submitted == "null-sender"
    assert parse(mf.plain(), envelope_sender="alice@example.net").auto_submitted is None


# --------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n  ", mf.garbage(), b"hello world\nthis is not mail\n"])
def test_not_an_email_raises_mail_parse_error(raw):
    with pytest.raises(MailParseError):
        parse(raw)


def test_garbage():
    with pytest.raises(MailParseError, match="not an email"):
        parse(mf.garbage())


def test_text_instead_of_bytes_is_refused():
    with pytest.raises(MailParseError):
        parse("From: a@example.com\r\n\r\nhi")  # type: ignore[arg-type]


def test_unexpected_bug_becomes_mail_parse_error(monkeypatch):
    def broken(*_args, **_kwargs):
        raise KeyError("boom")

    # parse_email looks it up on the render module at call time, so the patch takes effect there.
    monkeypatch.setattr(render, "_render_body", broken)
    with pytest.raises(MailParseError, match="KeyError"):
        parse(mf.plain())


@pytest.mark.parametrize("name", sorted(mf.ODD_MAIL))
def test_every_scenario_parses_or_raises_mail_parse_error(name, request):
    if name == "big_attachment_10mb":
        raw, msg = request.getfixturevalue("big_message")  # parsed once for the whole module
        assert isinstance(msg, InboundMessage) and msg.raw == raw
        return
    raw = mf.ODD_MAIL[name]()
    try:
        msg = parse(raw)
    except MailParseError:
        assert name == "garbage"
        return
    assert name != "garbage"
    assert isinstance(msg, InboundMessage) and msg.raw == raw


def _mutations(raw: bytes, rng: random.Random, count: int):
    """Truncations, flipped bytes and spliced MIME syntax: what relays and disks do to mail."""
    tokens = [b"\r\n", b"--", b"=?", b"?=", b"<", b"\x00", b"\xff", b";", b'"', b"\r\n\r\n",
              b"Content-Type: multipart/mixed; boundary=x\r\n", b"Content-Transfer-Encoding: base64\r\n",
              b"Content-Type: message/rfc822\r\n", b"filename*=", b"charset=x-unknown"]
    for _ in range(count):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 6)):
            position = rng.randrange(len(data) + 1)
            choice = rng.random()
            if choice < 0.35:
                data[position:position] = rng.choice(tokens)
            elif choice < 0.6:
                del data[position : position + rng.randint(1, 40)]
            elif choice < 0.85 and position < len(data):
                data[position] = rng.randrange(256)
            else:
                data = data[:position]
        yield bytes(data)


SLOW_TO_DAMAGE = {"big_attachment_10mb", "deeply_nested_multipart"}


@pytest.mark.parametrize("name", sorted(set(mf.ODD_MAIL) - SLOW_TO_DAMAGE))
def test_damaged_scenarios_never_raise_anything_else(name):
    raw = mf.ODD_MAIL[name]()
    rng = random.Random(name)  # deterministic per scenario
    for damaged in _mutations(raw, rng, 25):
        try:
            msg = parse(damaged)
        except MailParseError as exc:
            assert not str(exc).startswith("unexpected"), f"{name}: {exc}"
        else:
            assert msg.raw == damaged
