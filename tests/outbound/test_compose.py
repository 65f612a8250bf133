"""Customer email rendering: headers we promise, and no header injection from customer text."""

from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_string, policy

from bot.core.views import ContactView, OutgoingEmail, TicketView
from bot.outbound.compose import EmailComposer

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=timezone.utc)


def ticket(subject: str) -> TicketView:
    return TicketView(number=7, subject=subject, status="new", priority=3, category=None, type=None,
                      group="support", assignee=None, requester=ContactView("Eve", "eve@example.net", None),
                      channel="email", unread=True, weight=0, created_at=NOW, updated_at=NOW,
                      last_customer_message_at=NOW, resolved_at=None, closed_at=None)


def render(subject: str, to_name: str, **kw) -> object:
    composer = EmailComposer(from_address="support@support.example.com", from_name="Example Support",
                             loop_marker="support.example.com")
    mail = OutgoingEmail(template="ticket_opened", ticket=ticket(subject), to_address="eve@example.net",
                         to_name=to_name, subject=f"Re: {subject} [#7]", message_id="t7.9.abc@support.example.com",
                         reply_to="support+tok123456@support.example.com", in_reply_to="orig@example.net",
                         references=("orig@example.net",), auto_submitted="auto-replied", date=NOW, **kw)
    return message_from_string(composer.customer_email(mail), policy=policy.default)


def test_headers_thread_and_mark_automatic_mail():
    msg = render("Router down", "Eve")
    assert msg["Message-ID"] == "<t7.9.abc@support.example.com>"
    assert (msg["In-Reply-To"], msg["References"]) == ("<orig@example.net>", "<orig@example.net>")
    assert msg["Auto-Submitted"] == "auto-replied" and msg["X-Deskbell-Loop"] == "support.example.com"
    assert msg.get_body(("html",)) is not None and msg.get_body(("plain",)) is not None


def test_customer_text_cannot_add_headers_or_html():
    msg = render("Hi\r\nBcc: victim@example.org", 'Eve\nBcc: victim2@example.org')
    assert msg["Bcc"] is None
    assert "victim@example.org" in msg["Subject"]  # kept, but on the one line it belongs to
    hostile = render("<script>alert(1)</script>", "Eve")
    html = hostile.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_every_header_line_fits_998_octets_whatever_the_subject_and_ids():
    """RFC 5322 §2.1.1: long subjects (with or without spaces, ASCII or not), long names and a
    customer's absurd Message-ID are folded or left out, never written as one long line."""
    from bot.outbound.compose import MAX_ID_IN_HEADER

    composer = EmailComposer(from_address="support@support.example.com", from_name="S" * 400,
                             loop_marker="support.example.com")
    huge_id = "x" * 950 + "@example.net"
    for subject in ("A" * 3000, "word " * 600, "ü" * 1500, "A" * 1200 + " ü"):
        for to in ("eve@example.net", "évé@example.net"):
            mail = OutgoingEmail(template="ticket_opened", ticket=ticket("s"), to_address=to, to_name="N" * 500,
                                 subject=subject, message_id="t7.9.abc@support.example.com",
                                 reply_to="support+tok123456@support.example.com", in_reply_to=huge_id,
                                 references=(huge_id, "ok@example.net"), auto_submitted=None, date=NOW)
            raw = composer.customer_email(mail)
            assert max(len(line.encode()) for line in raw.split("\r\n")) <= 998, (subject[:10], to)
            msg = message_from_string(raw, policy=policy.default)
            assert msg["Subject"] == subject and msg["References"] == "<ok@example.net>"
            assert msg["In-Reply-To"] is None and len(huge_id) > MAX_ID_IN_HEADER
