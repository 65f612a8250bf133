"""Odd mail for the parser tests, one builder per real-world quirk.

Every message here is built from a description of what some client, MTA or gateway does (the
comment on each builder says which, and cites the RFC it bends); none is copied from another
project's test corpus. Builders return bytes and take keyword arguments so other tests can reuse
them. winmail.dat streams are written by ``tests/tnef_writer.py`` with our own file names and
bytes. This module must not touch the network or write files; the only thing it reads is the
real winmail.dat in the shared fixtures, for ``shared_winmail_dat`` alone, which returns None
when that file is absent.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from tests.tnef_writer import TnefFile, tnef_stream

# The file inside the default winmail.dat: a long name (the TNEF title holds only "SERVIC~1.PDF").
WINMAIL_INNER_NAME = "Service contract 2025.pdf"
WINMAIL_INNER_DATA = (
    b"%PDF-1.4\n"
    + b"".join(b"%d 0 obj << /Title (Deskbell test contract, page %d) >> endobj\n" % (n, n)
               for n in range(1, 9))
    + b"%%EOF\n"
)
WINMAIL_INNER_SIZE = len(WINMAIL_INNER_DATA)
WINMAIL_INNER_SHA256 = hashlib.sha256(WINMAIL_INNER_DATA).hexdigest()
WINMAIL_FILES = (TnefFile(WINMAIL_INNER_NAME, WINMAIL_INNER_DATA),)

# A real winmail.dat kept outside the project (LGPL-3.0; not to be copied in). Only one optional
# test reads it, and skips when it is absent.
SHARED_WINMAIL_PATH = Path(__file__).resolve().parents[2] / "shared/fixtures/winmail-one-file.dat"
SHARED_WINMAIL_INNER_NAME = "AUTHORS"
SHARED_WINMAIL_INNER_SIZE = 244
SHARED_WINMAIL_INNER_SHA256 = "36c47da7d11846caf0474a4b3df83bb4eba9ea01d2bca500c288fa108e123d28"

DATE = "Mon, 03 Mar 2025 10:15:00 +0000"
SUPPORT = "help@support.example.com"
OUR_DOMAIN = "reply.support.example.com"
BIG_SIZE = 10 * 1024 * 1024


def _msgid(message_id: str | None, *seed: str) -> str | None:
    """None → a stable id derived from the content; "" → no Message-ID header at all."""
    if message_id == "":
        return None
    if message_id is None:
        digest = hashlib.sha256("\0".join(seed).encode("utf-8")).hexdigest()[:16]
        return f"<{digest}@mail.example.net>"
    return message_id if message_id.startswith("<") else f"<{message_id}>"


def _lines(*lines: str | bytes) -> bytes:
    """Hand-built mail: CRLF line ends as on the wire (RFC 5322 §2.1)."""
    return b"\r\n".join(line if isinstance(line, bytes) else line.encode("ascii") for line in lines)


def _b64_lines(data: bytes) -> bytes:
    """Base64 wrapped at 76 characters (RFC 2045 §6.8)."""
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _envelope(
    msg: EmailMessage,
    *,
    from_addr: str,
    to_addr: str,
    subject: str,
    message_id: str | None,
    in_reply_to: str | None,
    references: str | None,
    extra_headers: dict[str, str] | None,
    seed: str,
) -> None:
    msg["From"] = from_addr
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Date"] = DATE
    mid = _msgid(message_id, from_addr, subject, seed)
    if mid:
        msg["Message-ID"] = mid
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (extra_headers or {}).items():
        msg[name] = value


def plain(
    *,
    from_addr: str = "Alice Example <alice@example.net>",
    to_addr: str = SUPPORT,
    subject: str = "Router down",
    body: str = "Hello,\n\nmy router has been down since this morning. The power light blinks red.\n\nAlice\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """An ordinary text/plain UTF-8 message as any modern client sends it."""
    msg = EmailMessage()
    _envelope(
        msg,
        from_addr=from_addr,
        to_addr=to_addr,
        subject=subject,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        extra_headers=extra_headers,
        seed=body,
    )
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP)


def no_message_id(**kwargs) -> bytes:
    """Some web forms and scripts (PHP mail() without a local MTA) send no Message-ID."""
    kwargs["message_id"] = ""
    return plain(**kwargs)


def wrong_charset(*, body: str = "Grüße aus Köln – der Router blinkt rot.") -> bytes:
    """Windows-1252 (Latin-1 plus “smart” punctuation) bytes declared as UTF-8: webmail and
    scripts that label everything utf-8 (RFC 2046 §4.1.2 says the label must match)."""
    return _lines(
        "From: Juergen Kunde <juergen@example.de>",
        "To: " + SUPPORT,
        "Subject: Stoerung",
        "Date: " + DATE,
        "Message-ID: <wrong-charset.1@example.de>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        body.encode("cp1252"),
        b"",
    )


def unknown_charset() -> bytes:
    """A charset label no decoder knows (homegrown mailers invent them), in the body and in an
    RFC 2047 encoded word of the Subject."""
    return _lines(
        "From: bob@example.org",
        "To: " + SUPPORT,
        "Subject: =?x-unknown?q?Caf=C3=A9_wifi?=",
        "Date: " + DATE,
        "Message-ID: <unknown-charset.1@example.org>",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="x-unknown"',
        "Content-Transfer-Encoding: 8bit",
        "",
        "The café wifi drops every ten minutes.".encode("utf-8"),
        b"",
    )


def utf7_charset() -> bytes:
    """UTF-7 under its old IANA alias (RFC 2152), still emitted by some Exchange connectors."""
    body = "Prix: 20 € par mois, merci."
    return _lines(
        "From: claire@example.fr",
        "To: " + SUPPORT,
        "Subject: Facture",
        "Date: " + DATE,
        "Message-ID: <utf7.1@example.fr>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=unicode-1-1-utf-7",
        "Content-Transfer-Encoding: 7bit",
        "",
        body.encode("utf-7"),
        b"",
    )


def raw_8bit_headers() -> bytes:
    """Undeclared 8-bit header bytes (forbidden by RFC 5322 §2.2, sent by old clients and
    scripts): UTF-8 in Subject, Latin-1 in the From display name."""
    return _lines(
        b"From: Jos\xe9 Garc\xeda <jose@example.es>",
        "To: " + SUPPORT,
        "Subject: Störung: Internet fällt aus".encode("utf-8"),
        "Date: " + DATE,
        "Message-ID: <raw8bit.1@example.es>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Seit gestern kein Internet.".encode("utf-8"),
        b"",
    )


def duplicate_headers() -> bytes:
    """Doubled singleton headers (RFC 5322 §3.6 allows one each) from a buggy list manager
    that prepends instead of replacing, plus a header folded across three lines."""
    return _lines(
        "From: First Sender <first@example.com>",
        "From: Second Sender <second@example.com>",
        "To: " + SUPPORT,
        "Subject: First subject,",
        "  folded over",
        "\tthree lines",
        "Subject: Second subject",
        "Message-ID: <dup.1@example.com>",
        "Message-ID: <dup.2@example.com>",
        "Date: " + DATE,
        "",
        "Body text.",
        "",
    )


def sender_only(*, envelope: bool = False) -> bytes:
    """No From at all, only Sender (RFC 5322 §3.6.2 requires From; some bulk tools omit it)."""
    return _lines(
        "Sender: Dana Sender <dana@example.com>",
        "To: " + SUPPORT,
        "Subject: No from header",
        "Message-ID: <sender-only.1@example.com>",
        "",
        "Where is my invoice?",
        "",
    )


def no_sender_headers() -> bytes:
    """Neither From nor Sender: the envelope sender is all there is."""
    return _lines(
        "To: " + SUPPORT,
        "Subject: Anonymous",
        "Message-ID: <no-sender.1@example.com>",
        "",
        "Hello?",
        "",
    )


def deeply_nested_multipart(*, levels: int = 60, body: str = "The deepest text part.") -> bytes:
    """multipart/mixed nested ``levels`` deep, each level with its own boundary: what a chain of
    forward-as-attachment gateways, or a fuzzer, produces (RFC 2046 §5.1 sets no limit)."""
    inner = _lines("Content-Type: text/plain; charset=us-ascii", "", body, "")
    for level in range(levels):
        boundary = f"nest-{level:03d}"
        inner = _lines(
            f'Content-Type: multipart/mixed; boundary="{boundary}"',
            "",
            f"--{boundary}",
            inner,
            f"--{boundary}--",
            "",
        )
    return _lines(
        "From: nest@example.com",
        "To: " + SUPPORT,
        "Subject: Nested",
        "Message-ID: <nested.1@example.com>",
        "MIME-Version: 1.0",
        inner,
    )


def _with_attachment(
    *, subject: str, text: str, attachment: bytes, attachment_headers: list[str], message_id: str
) -> bytes:
    return _lines(
        "From: Erin Office <erin@example.com>",
        "To: " + SUPPORT,
        "Subject: " + subject,
        "Date: " + DATE,
        f"Message-ID: <{message_id}>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_mixed"',
        "",
        "--=_mixed",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        text,
        "",
        "--=_mixed",
        *attachment_headers,
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(attachment),
        "--=_mixed--",
        "",
    )


def winmail_dat(
    *,
    files: Sequence[TnefFile] = WINMAIL_FILES,
    tnef: bytes | None = None,
    message_id: str = "winmail.1@example.com",
) -> bytes:
    """Outlook in Rich Text mode wraps attachments in application/ms-tnef "winmail.dat"
    (MS-OXTNEF). The stream holds ``files`` (one PDF by default), written by
    ``tests/tnef_writer.py``; ``tnef`` puts other bytes there instead (a damaged stream)."""
    return _with_attachment(
        subject="Contract attached",
        text="Please see the attached file.",
        attachment=tnef_stream(files) if tnef is None else tnef,
        attachment_headers=['Content-Type: application/ms-tnef; name="winmail.dat"',
                            'Content-Disposition: attachment; filename="winmail.dat"'],
        message_id=message_id,
    )


def shared_winmail_dat() -> bytes | None:
    """The same mail around the real winmail.dat of the shared fixtures; None when absent."""
    if not SHARED_WINMAIL_PATH.is_file():
        return None
    return winmail_dat(tnef=SHARED_WINMAIL_PATH.read_bytes(), message_id="winmail.3@example.com")


def winmail_dat_corrupt() -> bytes:
    """A winmail.dat cut short or mangled by a relay: no TNEF signature left."""
    return _with_attachment(
        subject="Broken winmail",
        text="See attachment.",
        attachment=b"this is not TNEF at all" * 4,
        attachment_headers=['Content-Type: application/ms-tnef; name="winmail.dat"'],
        message_id="winmail.2@example.com",
    )


def big_attachment_bytes() -> bytes:
    """10 MiB, deterministic, not compressible by accident of repetition in base64 lines."""
    block = hashlib.sha256(b"deskbell").digest() * 32  # 1 KiB
    return bytes(b ^ (i % 251) for i, b in enumerate(block)) * (BIG_SIZE // len(block))


def big_attachment_10mb() -> bytes:
    """A 10 MiB scan as a customer sends it (well within common 25 MB MTA limits)."""
    return _with_attachment(
        subject="Scan of the contract",
        text="Scan attached.",
        attachment=big_attachment_bytes(),
        attachment_headers=['Content-Type: application/pdf; name="scan.pdf"',
                            'Content-Disposition: attachment; filename="scan.pdf"'],
        message_id="big.1@example.com",
    )


def empty_body() -> bytes:
    """Subject-only mail ("see subject"), nothing after the header/body separator."""
    return _lines(
        "From: frank@example.com",
        "To: " + SUPPORT,
        "Subject: Call me back please",
        "Date: " + DATE,
        "Message-ID: <empty.1@example.com>",
        "",
        "",
    )


def html_only(*, from_addr: str = "noreply-form@shop.example.com") -> bytes:
    """HTML with no text/plain alternative: web contact forms and some mobile clients."""
    msg = EmailMessage()
    _envelope(
        msg,
        from_addr=from_addr,
        to_addr=SUPPORT,
        subject="Contact form",
        message_id="html-only.1@shop.example.com",
        in_reply_to=None,
        references=None,
        extra_headers={"Reply-To": "Grace Buyer <grace@example.com>"},
        seed="html",
    )
    msg.set_content(
        "<html><head><style>p { color: red; }</style></head><body>"
        "<p>Order <b>#5531</b> never arrived &amp; tracking shows nothing.</p>"
        "<table><tr><td>Name</td><td>Grace Buyer</td></tr></table>"
        "<script>track()</script></body></html>",
        subtype="html",
    )
    return msg.as_bytes(policy=SMTP)


def html_stub() -> bytes:
    """Newsletter-style multipart/alternative whose plain part only says to use a browser."""
    msg = EmailMessage()
    _envelope(
        msg,
        from_addr="Hal <hal@example.com>",
        to_addr=SUPPORT,
        subject="Newsletter reply",
        message_id="stub.1@example.com",
        in_reply_to=None,
        references=None,
        extra_headers=None,
        seed="stub",
    )
    msg.set_content("View this email in your browser.\n")
    msg.add_alternative(
        "<html><body><p>My modem shows the error code E-42 after the firmware update.</p>"
        "<p>I already tried a factory reset twice.</p></body></html>",
        subtype="html",
    )
    return msg.as_bytes(policy=SMTP)


def dsn_bounce(
    *,
    original_message_id: str = f"<t42.7.k3x9@{OUR_DOMAIN}>",
    recipient: str = "gone@example.org",
    status: str = "5.1.1",
    action: str = "failed",
    references: str | None = None,
) -> bytes:
    """RFC 3464 delivery status notification as Postfix sends it: multipart/report with a human
    part, message/delivery-status, and the original message as message/rfc822. ``references``
    adds the header some MTAs (Exchange) put on the DSN itself."""
    return _lines(
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)",
        "To: " + SUPPORT,
        "Subject: Undelivered Mail Returned to Sender",
        "Date: " + DATE,
        "Message-ID: <dsn.1@mx.example.org>",
        *([f"References: {references}"] if references else []),
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="=_dsn"',
        "",
        "--=_dsn",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "I'm sorry to have to inform you that your message could not be delivered.",
        "",
        "--=_dsn",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.org",
        "Arrival-Date: " + DATE,
        "",
        "Final-Recipient: rfc822; " + recipient,
        "Original-Recipient: rfc822; " + recipient,
        "Action: " + action,
        "Status: " + status,
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected",
        "",
        "--=_dsn",
        "Content-Type: message/rfc822",
        "",
        "From: Help Desk <" + SUPPORT + ">",
        "To: " + recipient,
        "Subject: [#42] Your ticket",
        "Message-ID: " + original_message_id,
        "",
        "We have received your request.",
        "",
        "--=_dsn--",
        "",
    )


def plain_bounce(*, original_message_id: str = f"<t42.8.q1w2@{OUR_DOMAIN}>") -> bytes:
    """A prose bounce with no multipart/report (qmail-send style): only the quoted original
    headers tell which message failed."""
    return _lines(
        "From: MAILER-DAEMON@mail.example.org",
        "To: " + SUPPORT,
        "Subject: failure notice",
        "Date: " + DATE,
        "Message-ID: <bounce.2@mail.example.org>",
        "",
        "Hi. This is the mail delivery program at mail.example.org.",
        "I'm afraid I wasn't able to deliver your message to the following addresses.",
        "",
        "<gone@example.org>:",
        "550 5.1.1 mailbox unavailable",
        "",
        "--- Below this line is a copy of the message.",
        "",
        "From: " + SUPPORT,
        "Message-ID: " + original_message_id,
        "Subject: [#42] Your ticket",
        "",
    )


def delay_warning() -> bytes:
    """A prose delay warning from a mailer daemon (Exim style): automatic, but not a failure.
    Not in ODD_MAIL: what the core does with it is its own business."""
    return _lines(
        "From: Mail Delivery System <Mailer-Daemon@mx.example.org>",
        "To: " + SUPPORT,
        "Subject: Warning: message 1aBcDe-000042-Xy delayed 24 hours",
        "Date: " + DATE,
        "Message-ID: <delay.1@mx.example.org>",
        "",
        "This is an automatic notice from the mail server.",
        "A message you sent has not yet been delivered to gone@example.org",
        "after 24 hours in the queue. Nothing needs to be done; delivery goes on.",
        "",
        f"Message-ID: <t42.9.w3e4@{OUR_DOMAIN}>",
        "",
    )


def out_of_office() -> bytes:
    """Exchange out-of-office reply: RFC 3834 Auto-Submitted plus Microsoft's
    X-Auto-Response-Suppress (MS-OXCMAIL §2.2.3.2.14)."""
    return plain(
        from_addr="Ivan Away <ivan@example.com>",
        subject="Automatic reply: Router down",
        body="I am out of the office until Monday.\n",
        message_id="oof.1@example.com",
        extra_headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )


def outlook_reply_with_quote(*, body: str = "Still down after the restart.") -> bytes:
    """Outlook (desktop, plain-text mode) reply: new text, then an underscore rule and a
    "From: … Sent: … To: … Subject:" block, then the previous message unquoted."""
    text = (
        f"{body}\r\n\r\nJudy\r\n\r\n"
        "________________________________\r\n"
        f"From: Help Desk <{SUPPORT}>\r\n"
        "Sent: Monday, March 3, 2025 9:02 AM\r\n"
        "To: Judy Customer <judy@example.com>\r\n"
        "Subject: RE: [#42] Router down\r\n"
        "\r\n"
        "Please restart the router and tell us if the light turns green.\r\n"
    )
    return plain(
        from_addr="Judy Customer <judy@example.com>",
        subject="RE: [#42] Router down",
        body=text.replace("\r\n", "\n"),
        message_id="outlook.1@example.com",
        in_reply_to=f"<t42.1.aaaa@{OUR_DOMAIN}>",
        references=f"<t42.1.aaaa@{OUR_DOMAIN}>",
    )


def gmail_reply(
    *,
    body: str = "Yes, it works now. Thank you!",
    in_reply_to: str = f"<t42.2.bbbb@{OUR_DOMAIN}>",
    references: str = f"<t42.1.aaaa@{OUR_DOMAIN}> <t42.2.bbbb@{OUR_DOMAIN}>",
) -> bytes:
    """Gmail reply: multipart/alternative, an attribution line "On <date>, X wrote:" and the
    previous message as "> " lines (plain) / a blockquote (HTML)."""
    attribution = f"On Mon, Mar 3, 2025 at 9:05 AM Help Desk <{SUPPORT}> wrote:"
    quote = "Please restart the router.\nDoes the light turn green?"
    msg = EmailMessage()
    _envelope(
        msg,
        from_addr="Ken Customer <ken@gmail.example.com>",
        to_addr=SUPPORT,
        subject="Re: [#42] Router down",
        message_id="CAgmail.1@mail.gmail.example.com",
        in_reply_to=in_reply_to,
        references=references,
        extra_headers=None,
        seed=body,
    )
    quoted_plain = "\n".join("> " + line for line in quote.split("\n"))
    msg.set_content(f"{body}\n\n{attribution}\n{quoted_plain}\n")
    msg.add_alternative(
        f'<div dir="ltr">{body}</div><br><div class="gmail_quote">'
        f'<div class="gmail_attr">{attribution.replace("<", "&lt;").replace(">", "&gt;")}</div>'
        f'<blockquote class="gmail_quote">{quote.replace(chr(10), "<br>")}</blockquote></div>',
        subtype="html",
    )
    return msg.as_bytes(policy=SMTP)


def signature() -> bytes:
    """RFC 3676 §4.3 signature block after a "-- " line."""
    return plain(
        from_addr="Liam Customer <liam@example.com>",
        subject="Thanks",
        body="The new modem works.\n- step one was enough\n\n-- \nLiam Customer\nACME Ltd\n+1 555 0100\n",
        message_id="sig.1@example.com",
    )


def format_flowed() -> bytes:
    """RFC 3676 format=flowed with DelSp=yes (Apple Mail, Thunderbird): soft breaks end in a
    space that the reader removes before joining."""
    return _lines(
        "From: mia@example.com",
        "To: " + SUPPORT,
        "Subject: Flowed",
        "Message-ID: <flowed.1@example.com>",
        "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes",
        "",
        "The connection drops when the micro ",
        "wave is on, every single time.  ",
        "Please help.",
        "",
    )


def long_lines(*, length: int = 9000) -> bytes:
    """One 9,000-byte line (RFC 5322 §2.1.1 caps lines at 998): a pasted log from a client that
    does not wrap and does not switch to quoted-printable."""
    line = ("0123456789abcdef" * (length // 16 + 1))[:length]
    return _lines(
        "From: nick@example.com",
        "To: " + SUPPORT,
        "Subject: Log attached inline",
        "Message-ID: <long.1@example.com>",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "Here is the log:",
        line,
        "",
    )


def mailing_list() -> bytes:
    """A post relayed by a list manager (RFC 2919 List-Id, RFC 2369 List-Unsubscribe)."""
    return plain(
        from_addr="Olga <olga@example.com>",
        subject="[users] Anyone else seeing outages?",
        body="Is it only me?\n",
        message_id="list.1@example.com",
        extra_headers={
            "List-Id": "Users <users.lists.example.com>",
            "List-Unsubscribe": "<mailto:users-leave@lists.example.com>",
        },
    )


def loop_header() -> bytes:
    """Our own outbound mail coming back to us (a customer's auto-forward, a misrouted alias)."""
    return plain(
        from_addr=SUPPORT,
        subject="[#42] Your ticket",
        message_id=f"t42.3.cccc@{OUR_DOMAIN}",
        extra_headers={"X-Deskbell-Loop": "support.example.com"},
    )


def bad_transfer_encoding() -> bytes:
    """Base64 with junk characters and no padding, and quoted-printable with invalid escapes:
    both seen from hand-rolled mailers (RFC 2045 §6.7, §6.8 say how it should look)."""
    good = base64.b64encode("Please reset my password.".encode("utf-8")).rstrip(b"=")
    return _lines(
        "From: pat@example.com",
        "To: " + SUPPORT,
        "Subject: Bad encodings",
        "Message-ID: <badcte.1@example.com>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        "",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        good[:12] + b"!!*" + good[12:],
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Account =ZZ number 12=3D34 and a soft=",
        " break.",
        "--b1--",
        "",
    )


def missing_boundary() -> bytes:
    """multipart/mixed without a boundary parameter (RFC 2046 §5.1.1 requires one)."""
    return _lines(
        "From: quinn@example.com",
        "To: " + SUPPORT,
        "Subject: No boundary",
        "Message-ID: <noboundary.1@example.com>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed",
        "",
        "My text without any MIME structure.",
        "",
    )


def absent_boundary() -> bytes:
    """A boundary that is declared but never appears in the body."""
    return _lines(
        "From: quinn@example.com",
        "To: " + SUPPORT,
        "Subject: Lost boundary",
        "Message-ID: <noboundary.2@example.com>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="never-used"',
        "",
        "Text that was meant to be inside a part.",
        "",
    )


def inline_image_and_odd_names() -> bytes:
    """multipart/related HTML with a Content-ID image (how Apple Mail and Outlook embed pasted
    screenshots), plus attachments whose names need cleaning: an RFC 2231 UTF-8 name, an
    RFC 2047 name in quotes (Outlook, not standard), a path, and a bidi override."""
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    return _lines(
        "From: rosa@example.com",
        "To: " + SUPPORT,
        "Subject: Screenshot",
        "Message-ID: <inline.1@example.com>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="outer"',
        "",
        "--outer",
        'Content-Type: multipart/related; boundary="rel"',
        "",
        "--rel",
        "Content-Type: text/html; charset=utf-8",
        "",
        '<p>See the error:</p><img src="cid:shot1@example.com">',
        "--rel",
        "Content-Type: image/png",
        "Content-ID: <shot1@example.com>",
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(png),
        "--rel--",
        "--outer",
        "Content-Type: application/pdf",
        "Content-Disposition: attachment; filename*=utf-8''R%C3%A9sum%C3%A9.pdf",
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(b"%PDF-1.4 a"),
        "--outer",
        'Content-Type: text/plain; name="=?utf-8?B?0J/RgNC40LLQtdGCLnR4dA==?="',
        "Content-Disposition: attachment",
        "",
        "attached text",
        "--outer",
        'Content-Type: application/octet-stream; name="..\\\\..\\\\windows\\\\evil.exe"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(b"MZ"),
        "--outer",
        "Content-Type: application/octet-stream",
        "Content-Disposition: attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe",
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(b"MZ2"),
        "--outer",
        "Content-Type: application/zip",
        "Content-Transfer-Encoding: base64",
        "",
        _b64_lines(b"PK\x03\x04"),
        "--outer--",
        "",
    )


def attached_message() -> bytes:
    """Forward-as-attachment (Thunderbird, Outlook "Forward as Attachment"): message/rfc822."""
    return _lines(
        "From: sam@example.com",
        "To: " + SUPPORT,
        "Subject: Fwd: Phishing?",
        "Message-ID: <fwd.1@example.com>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="fw"',
        "",
        "--fw",
        "Content-Type: text/plain",
        "",
        "Is this mail from you?",
        "--fw",
        "Content-Type: message/rfc822",
        "Content-Disposition: attachment",
        "",
        "From: Fake Bank <phish@bank.example>",
        "Subject: Verify your account",
        "Message-ID: <phish.1@bank.example>",
        "",
        "Click here.",
        "--fw--",
        "",
    )


def long_attachment_name(*, length: int = 300) -> bytes:
    """A file name longer than any file system allows (255 bytes), as some scanners produce."""
    msg = EmailMessage()
    _envelope(
        msg,
        from_addr="tom@example.com",
        to_addr=SUPPORT,
        subject="Scan",
        message_id="longname.1@example.com",
        in_reply_to=None,
        references=None,
        extra_headers=None,
        seed="longname",
    )
    msg.set_content("Scan attached.")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="é" * length + ".pdf")
    return msg.as_bytes(policy=SMTP)


def garbage() -> bytes:
    """Not an email: a PNG header followed by binary noise (a misdirected upload)."""
    noise = hashlib.sha256(b"garbage").digest() * 64
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + noise


ODD_MAIL: dict[str, Callable[[], bytes]] = {
    "plain": plain,
    "no_message_id": no_message_id,
    "wrong_charset": wrong_charset,
    "unknown_charset": unknown_charset,
    "utf7_charset": utf7_charset,
    "raw_8bit_headers": raw_8bit_headers,
    "duplicate_headers": duplicate_headers,
    "sender_only": sender_only,
    "no_sender_headers": no_sender_headers,
    "deeply_nested_multipart": deeply_nested_multipart,
    "winmail_dat": winmail_dat,
    "winmail_dat_corrupt": winmail_dat_corrupt,
    "big_attachment_10mb": big_attachment_10mb,
    "empty_body": empty_body,
    "html_only": html_only,
    "html_stub": html_stub,
    "dsn_bounce": dsn_bounce,
    "plain_bounce": plain_bounce,
    "out_of_office": out_of_office,
    "outlook_reply_with_quote": outlook_reply_with_quote,
    "gmail_reply": gmail_reply,
    "signature": signature,
    "format_flowed": format_flowed,
    "long_lines": long_lines,
    "mailing_list": mailing_list,
    "loop_header": loop_header,
    "bad_transfer_encoding": bad_transfer_encoding,
    "missing_boundary": missing_boundary,
    "absent_boundary": absent_boundary,
    "inline_image_and_odd_names": inline_image_and_odd_names,
    "attached_message": attached_message,
    "long_attachment_name": long_attachment_name,
    "garbage": garbage,
}
