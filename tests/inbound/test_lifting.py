"""Big base64 bodies decoded outside the stdlib parser give the very message the parser gives.

Every mail here is parsed twice: as Deskbell does, and with lifting switched off (the limit
raised past any size), and the two ``InboundMessage`` values must be equal, attachments'
bytes included. The mails are built here with the ``email`` package or by hand: the shapes a
lift could get wrong (a body that only looks like one, an attached message holding a big file,
broken base64, line endings, a field given twice) beside the corpus's odd mail.
"""

from __future__ import annotations

import base64
import functools
import os
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from bot.core.errors import MailParseError
from bot.inbound.mailparse import lifting, parse_email
from tests import corpus

RECEIVED = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
BIG = os.urandom(300_000)


def b64_lines(data: bytes, width: int = 76) -> bytes:
    text = base64.b64encode(data)
    return b"\r\n".join(text[i:i + width] for i in range(0, len(text), width))


def with_pdf(data: bytes = BIG, name: str = "invoice.pdf") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Ana <ana@example.net>", "help@example.com", "Invoice"
    msg["Message-ID"] = "<lift-1@example.net>"
    msg.set_content("The invoice is attached.\n")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg


def by_hand(*parts: bytes, boundary: bytes = b"b0und") -> bytes:
    head = (b"From: ana@example.net\r\nTo: help@example.com\r\nSubject: hand made\r\n"
            b"Message-ID: <hand@example.net>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\npreamble\r\n")
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return head + body + b"--" + boundary + b"--\r\n"


TEXT_PART = b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee the file.\r\n"
PDF_HEAD = (b"Content-Type: application/pdf; name=\"a.pdf\"\r\n"
            b"Content-Disposition: attachment; filename=\"a.pdf\"\r\n")


def built() -> dict[str, bytes]:
    attached = EmailMessage()
    attached["From"], attached["Subject"] = "bob@example.org", "Forwarded with its file"
    attached.set_content("inner text\n")
    attached.add_attachment(BIG, maintype="image", subtype="png", filename="inner.png")
    outer = with_pdf(b"%PDF small", "small.pdf")
    outer.add_attachment(attached)  # message/rfc822 holding a big base64 body

    single = EmailMessage()
    single["From"], single["Subject"] = "ana@example.net", "just the file"
    single.set_content(BIG, maintype="application", subtype="octet-stream", filename="blob.bin")

    text_b64 = EmailMessage()
    text_b64["From"], text_b64["Subject"] = "ana@example.net", "long text in base64"
    text_b64.set_content("Zeile mit Umlauten: äöü. " * 8000, cte="base64")

    encoded = b64_lines(BIG)
    quoted_in_text = (b"Content-Type: text/plain\r\n\r\nHere is what the other system sent me:\r\n"
                      b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded)
    return {
        "a pdf": with_pdf().as_bytes(policy=SMTP),
        "attached message with a big file": outer.as_bytes(policy=SMTP),
        "single part": single.as_bytes(policy=SMTP),
        "text part in base64": text_b64.as_bytes(policy=SMTP),
        "bare LF line endings": with_pdf().as_bytes(policy=SMTP).replace(b"\r\n", b"\n"),
        "base64 with spaces": by_hand(TEXT_PART, PDF_HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n"
                                      + encoded.replace(b"\r\n", b" \r\n")),
        "bad padding": by_hand(TEXT_PART, PDF_HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded[:-1]),
        "padding in the middle": by_hand(TEXT_PART, PDF_HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n"
                                         + b64_lines(b"ab") + b"\r\n" + encoded),
        "invalid characters": by_hand(TEXT_PART, PDF_HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n"
                                      + encoded[:1000] + b"!*" + encoded[1000:]),
        "headers quoted in a text body": by_hand(quoted_in_text, PDF_HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n"
                                                 + encoded),
        "encoding given twice": by_hand(TEXT_PART, PDF_HEAD + b"Content-Transfer-Encoding: 7bit\r\n"
                                        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded),
        "base64 on the multipart itself": (
            b"From: ana@example.net\r\nSubject: odd\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + encoded + b"\r\n--x\r\n" + TEXT_PART
            + b"--x--\r\n"),
        "no closing delimiter": by_hand(TEXT_PART, PDF_HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n"
                                        + encoded)[:-len(b"--b0und--\r\n")],
        "blank lines inside the body": by_hand(TEXT_PART, PDF_HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n"
                                               + encoded.replace(b"\r\n", b"\r\n\r\n", 3)),
        "quoted value": by_hand(TEXT_PART, PDF_HEAD + b'Content-Transfer-Encoding: "BASE64"\r\n\r\n' + encoded),
    }


def parse(raw: bytes):
    """The message, or the error refusing it (some corpus mail is not mail at all)."""
    try:
        return parse_email(raw, received_at=RECEIVED, recipients=("help@example.com",))
    except MailParseError as exc:
        return repr(exc)


@functools.cache
def cases() -> dict[str, bytes]:
    return {**built(), **{f"corpus: {name}": make() for name, make in corpus.fixtures().items()}}


@pytest.mark.parametrize("name", list(cases()))
def test_lifting_changes_nothing_in_the_parsed_message(name, monkeypatch):
    raw = cases()[name]
    lifted = parse(raw)
    monkeypatch.setattr(lifting, "MIN_LIFT_BYTES", 1 << 62)
    assert lifted == parse(raw)


def test_big_bodies_are_lifted_and_nothing_else():
    lifted_counts = {}
    for name, raw in built().items():
        bodies = lifting.Lifted()
        data = lifting.lift(raw, bodies)
        lifted_counts[name] = len(bodies.bodies)
        assert bodies.restore_bytes(data) == raw  # every byte outside the bodies as it was
    assert lifted_counts == {
        "a pdf": 1, "attached message with a big file": 1, "single part": 1, "text part in base64": 1,
        "bare LF line endings": 1, "base64 with spaces": 0, "bad padding": 0, "padding in the middle": 0,
        "invalid characters": 0, "headers quoted in a text body": 2, "encoding given twice": 1,
        "base64 on the multipart itself": 0, "no closing delimiter": 1, "blank lines inside the body": 1,
        "quoted value": 1,
    }
