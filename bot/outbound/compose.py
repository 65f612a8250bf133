"""Email: jinja2 templates → one RFC 5322 message (text + HTML alternative).

Pure rendering, called by the email sender (and ``deskbell digest --preview``): no SMTP, no
clock, no database. What a mail says and its headers come ready-made in ``OutgoingEmail`` (a
ticket's customer mail, with its threading) or ``OutgoingMail`` (any other mail: a template
and its values); core decided them when the intent was recorded. This module only writes
them as MIME.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from email import charset
from email.header import Header
from email import encoders
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email import policy
from email.policy import compat32
from email.utils import format_datetime, formataddr
from datetime import datetime
from pathlib import Path

import jinja2

from bot.core.views import AttachmentView, OutgoingEmail, OutgoingMail
from bot.outbound.filters import FILTERS

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SMTP_LEGACY = compat32.clone(linesep="\r\n")
SMTP_UTF8 = policy.SMTPUTF8
# UTF-8 bodies as quoted-printable: readable in raw form, safe for 7-bit relays.
_UTF8_QP = charset.Charset("utf-8")
_UTF8_QP.body_encoding = charset.QP


def template_environment(directory: Path = TEMPLATES) -> jinja2.Environment:
    # Autoescape only the HTML templates: customer text is escaped there, kept as is in text.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


def one_line(value: str) -> str:
    """Header values come partly from customers and staff: a CR or LF in them would let
    someone add headers of their own ("x\r\nBcc: victim@…"), so they become spaces."""
    return " ".join(value.splitlines()).replace("\r", " ").replace("\n", " ")


def _address(name: str, address: str) -> str:
    """``Name <address>``; the name RFC 2047-encoded when it is not ASCII. ``formataddr``
    refuses a non-ASCII address (RFC 6531), which is written as it is instead."""
    if address.isascii():
        return formataddr((name, address), charset="utf-8")
    shown = formataddr((name, "x@x.invalid"), charset="utf-8").rsplit("<", 1)[0].strip() if name else ""
    return f"{shown} <{address}>" if shown else f"<{address}>"


# RFC 5322 §2.1.1: a line is at most 998 octets. A Message-ID longer than this cannot be
# written on one folded line, and one that long threads nothing anyway.
MAX_ID_IN_HEADER = 900
_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}")  # RFC 2045 type and subtype


def _subject(subject: str) -> str | Header:
    """ASCII subjects fold at spaces; one with a word too long to fold (or not ASCII) is
    RFC 2047-encoded, which splits into as many encoded words as it needs."""
    if subject.isascii() and all(len(word) < 900 for word in subject.split()):
        return subject
    return Header(subject, "utf-8")


class EmailComposer:
    def __init__(self, *, from_address: str, from_name: str, loop_marker: str,
                 env: jinja2.Environment | None = None, max_message_bytes: int | None = None) -> None:
        self.from_address = from_address
        self.from_name = from_name
        self.loop_marker = loop_marker
        self.env = env or template_environment()
        self.max_message_bytes = max_message_bytes

    def customer_email(self, mail: OutgoingEmail, files: Mapping[str, bytes] | None = None) -> str:
        """The mail as text, with ``files`` (bytes by SHA-256) for its attachments; with
        ``max_message_bytes``, quoted history is dropped, oldest first, until the mail fits
        (what staff wrote and sent is never cut)."""
        message = self._compose(mail, files or {})
        history = mail.history
        while history and self.max_message_bytes and len(message.encode()) > self.max_message_bytes:
            history = history[:-1]  # newest first: the oldest goes
            message = self._compose(dataclasses.replace(mail, history=history), files or {})
        return message

    def _compose(self, mail: OutgoingEmail, files: Mapping[str, bytes]) -> str:
        context = {"ticket": mail.ticket, "mail": mail, "from_name": mail.from_name or self.from_name,
                   "text": mail.text, "staff_name": mail.staff_name, "group": mail.group,
                   "history": mail.history, "first_message": mail.first_message}
        text, html = self.render(f"email/customer/{mail.template}", context)
        msg = self._multipart(text, html, to_name=mail.to_name, to_address=mail.to_address,
                              from_name=mail.from_name, from_address=mail.from_address,
                              subject=mail.subject, date=mail.date, message_id=mail.message_id,
                              auto_submitted=mail.auto_submitted)
        if mail.reply_to:
            msg["Reply-To"] = mail.reply_to
        if mail.in_reply_to and len(mail.in_reply_to) <= MAX_ID_IN_HEADER:
            msg["In-Reply-To"] = f"<{mail.in_reply_to}>"
        references = [r for r in mail.references if len(r) <= MAX_ID_IN_HEADER]
        if references:
            # One id per folded line keeps long chains under the 998-octet line limit.
            msg["References"] = "\r\n ".join(f"<{r}>" for r in references)
        msg["X-Deskbell-Ticket"] = str(mail.ticket.number)
        if mail.attachments:
            msg = _with_files(msg, [(a, files[a.sha256]) for a in mail.attachments])
        return self._written(msg, mail.to_address)

    def mail(self, mail: OutgoingMail) -> str:
        """Any other mail (a digest): its template pair rendered with its values."""
        text, html = self.render(mail.template, mail.values)
        msg = self._multipart(text, html, to_name="", to_address=mail.to_address,
                              from_name=mail.from_name, from_address=mail.from_address,
                              subject=mail.subject, date=mail.date, message_id=mail.message_id,
                              auto_submitted=mail.auto_submitted)
        return self._written(msg, mail.to_address)

    def render(self, template: str, context: dict) -> tuple[str, str]:
        """The text and HTML of ``templates/<template>.txt.j2`` and ``.html.j2``."""
        return (self.env.get_template(f"{template}.txt.j2").render(context),
                self.env.get_template(f"{template}.html.j2").render(context))

    def _multipart(self, text: str, html: str, *, to_name: str, to_address: str, from_name: str | None,
                   from_address: str | None, subject: str, date: datetime, message_id: str,
                   auto_submitted: str | None) -> MIMEMultipart:
        # The legacy (compat32) API builds the same message several times faster than the
        # header-registry policy; every customer mail passes through here.
        msg = MIMEMultipart("alternative")
        msg["From"] = formataddr((one_line(from_name or self.from_name), from_address or self.from_address),
                                 charset="utf-8")
        msg["To"] = _address(one_line(to_name), one_line(to_address))
        subject = one_line(subject)
        # RFC 6532: a non-ASCII address stays raw UTF-8 in the header (sent over SMTPUTF8),
        # whose policy folds the subject itself.
        msg["Subject"] = subject if not to_address.isascii() else _subject(subject)
        msg["Date"] = format_datetime(date)
        msg["Message-ID"] = f"<{message_id}>"
        if auto_submitted:
            # RFC 3834 §5: mark automatic mail so other robots don't answer it.
            msg["Auto-Submitted"] = auto_submitted
            # Exchange/Outlook: don't send us out-of-office notices about this mail.
            msg["X-Auto-Response-Suppress"] = "All"
        msg["X-Deskbell-Loop"] = self.loop_marker
        msg.attach(MIMEText(text, "plain", _UTF8_QP))
        msg.attach(MIMEText(html, "html", _UTF8_QP))
        return msg

    @staticmethod
    def _written(msg: MIMEMultipart, to_address: str) -> str:
        # as_string() would not fold at all (its maxheaderlen defaults to 0): fold at 78.
        international = not to_address.isascii()
        return msg.as_string(policy=SMTP_UTF8 if international else SMTP_LEGACY, maxheaderlen=78)


def _with_files(body: MIMEMultipart, files: list[tuple[AttachmentView, bytes]]) -> MIMEMultipart:
    """multipart/mixed: the text and HTML alternative first, then each file as an attachment
    (base64; a non-ASCII name per RFC 2231). The headers move to the outer part."""
    outer = MIMEMultipart("mixed")
    for name, value in body.items():
        if name.lower() not in ("content-type", "mime-version", "content-transfer-encoding"):
            outer[name] = value
    for name in list(body.keys()):
        if name.lower() not in ("content-type", "mime-version", "content-transfer-encoding"):
            del body[name]
    del body["MIME-Version"]
    outer.attach(body)
    for file, data in files:
        maintype, _, subtype = file.type.partition("/")
        if not (maintype and subtype and _TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype.split(";")[0])):
            maintype, subtype = "application", "octet-stream"
        part = MIMEBase(maintype, subtype.split(";")[0])
        part.set_payload(data)
        encoders.encode_base64(part)
        name = one_line(file.name)
        part.add_header("Content-Disposition", "attachment",
                        filename=name if name.isascii() else ("utf-8", "", name))
        outer.attach(part)
    return outer
