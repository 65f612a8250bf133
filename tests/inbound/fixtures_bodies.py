"""Mail whose body text is hard to read right: HTML quirks and reply layouts of real clients.

Each builder makes one complete message (From, To, Subject, Message-ID, Date) with Python's
``email`` package or by hand, reproducing a quirk from its description (the docstring says which
client or gateway does it); none is copied from another project's test mail. ``EXPECTED`` says,
per fixture, what a person reading the message expects staff to see: ``body_contains`` must be in
the body, ``body_lacks`` must not. It was written from the text composed here, not by running the
parser. This module must not touch the network, a database or the file system.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP

DATE = "Tue, 04 Mar 2025 08:30:00 +0000"
SUPPORT = "help@support.example.com"
ATTRIBUTION = "On Mon, 3 Mar 2025 at 16:05, Deskbell Support <help@support.example.com> wrote:"


def _message(
    name: str, address: str, subject: str, message_id: str, *, plain: str | None = None,
    html: str | None = None,
) -> bytes:
    """A message with a text/plain part, a text/html part, or both (multipart/alternative,
    plain first as RFC 2046 §5.1.4 asks)."""
    msg = EmailMessage()
    msg["From"] = f"{name} <{address}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = DATE
    msg["Message-ID"] = f"<{message_id}>"
    if plain is not None:
        msg.set_content(plain)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(html or "", subtype="html")
    return msg.as_bytes(policy=SMTP)


# --------------------------------------------------------------------------- HTML to text


def html_text_after_closing_html() -> bytes:
    """A phone client that forwards by pasting the original HTML document first and appending
    the customer's own words after its ``</html>``, as some Android mail apps and disclaimer
    gateways do (they concatenate documents). Browsers show everything; so must we."""
    html = (
        "<html><head><title>Order 88123</title></head><body>"
        "<p>Your order 88123 has been shipped.</p></body></html>\r\n"
        "<div>The parcel for order 88123 never arrived, the tracking page says delivered.</div>"
        "<div>Please send a replacement to my office address.</div>"
    )
    return _message("Priya Raman", "priya@example.org", "Fwd: Your order 88123",
                    "b1.after-html@phone.example.org", html=html)


def html_text_after_closing_body() -> bytes:
    """A webmail that appends its "sent with" line after ``</body>`` (before ``</html>``), with
    the customer's last sentence pasted after it by an editor plug-in."""
    html = (
        "<html><body><p>The invoice PDF for March is empty.</p></body>"
        "<p>Could you resend it as an attachment?</p></html>"
    )
    return _message("Tomas Berg", "tomas@example.se", "Empty invoice",
                    "b2.after-body@webmail.example.se", html=html)


def html_words_split_by_inline_tags() -> bytes:
    """Word/Outlook HTML: spell-check and language spans split words into runs
    (``Hel<span lang=EN-GB>l</span>o``), and bold or links cover part of a word
    (``<b>Mon</b>day``). Only block elements separate words."""
    html = (
        '<html><body><div class="WordSection1">'
        '<p class="MsoNormal">Hel<span lang="EN-GB">l</span>o,<o:p></o:p></p>'
        '<p class="MsoNormal">&nbsp;<o:p></o:p></p>'
        '<p class="MsoNormal">Since <b>Mon</b>day the scanner is <span style="color:red">'
        'off</span>line. I <span lang="EN-GB">re</span><span lang="EN-GB">installed</span> the '
        '<a href="https://vendor.example.com/driver">dri</a>ver twice.<o:p></o:p></p>'
        "</div></body></html>"
    )
    return _message("Ingrid Holm", "ingrid@example.no", "Scanner offline",
                    "b3.word-runs@outlook.example.no", html=html)


def html_lists_table_and_breaks() -> bytes:
    """An HTML-only mail from a rich-text webmail: a numbered list of what was tried, a bullet
    list, an order table and <br> line breaks, all of which must stay readable as plain text."""
    html = (
        "<html><body>"
        "<div>Hello,<br>my printer still jams.<br>What I did:</div>"
        "<ol><li>Unplug the printer</li><li>Wait ten seconds</li><li>Plug it back in</li></ol>"
        "<p>It happens with:</p>"
        "<ul><li>thick paper</li><li>envelopes</li></ul>"
        "<table><tr><th>Item</th><th>Qty</th></tr>"
        "<tr><td>LaserJet 220</td><td>2</td></tr>"
        "<tr><td>Toner black</td><td>5</td></tr></table>"
        "<p>Regards<br>Noor</p>"
        "</body></html>"
    )
    return _message("Noor Haddad", "noor@example.net", "Printer jams",
                    "b4.lists@webmail.example.net", html=html)


def plain_part_missing_the_details() -> bytes:
    """A web shop's contact form that writes only its introduction to the text/plain part and
    the customer's details (a table of what was ordered and the message) only to the HTML part.
    The plain part is not a stub and not short (a third of the HTML text), but it lacks most of
    what the HTML says."""
    plain = (
        "New contact form message from Lena Vogel (lena@example.de), sent from the page\n"
        "Support > Contact us on 4 March 2025 at 08:29. Reply to this e-mail to answer her.\n"
    )
    html = (
        "<html><body><p>New contact form message from Lena Vogel (lena@example.de), sent from "
        "the page Support &gt; Contact us on 4 March 2025 at 08:29. Reply to this e-mail to "
        "answer her.</p>"
        "<table><tr><td>Order</td><td>W-20931</td></tr>"
        "<tr><td>Product</td><td>Standing desk frame, oak top</td></tr>"
        "<tr><td>Message</td><td>The left leg motor makes a grinding noise and stops halfway up."
        " I already checked that the cable is plugged in firmly on both ends.</td></tr></table>"
        "</body></html>"
    )
    return _message("Lena Vogel", "lena@example.de", "Contact form: desk motor",
                    "b5.form@shop.example.de", plain=plain, html=html)


def plain_part_faithful_rendering() -> bytes:
    """Gmail-like alternative parts: the plain part is a faithful rendering of the HTML (same
    words, link targets written out in <…>), the HTML adds a hidden preheader and a tracking
    pixel. The plain part must win: it is the better text and shows the link target."""
    plain = (
        "Hi,\n\n"
        "the export to CSV stops at 1000 rows. I attached a screenshot of the settings page\n"
        "and uploaded the full export here: https://files.example.net/export-0412.csv\n\n"
        "The same happens in Firefox and in Chrome, on two different laptops.\n\n"
        "Thanks,\nOmar\n"
    )
    html = (
        '<div dir="ltr"><div style="display:none">Preview: CSV export limit</div>'
        "<div>Hi,</div><div><br></div>"
        "<div>the export to CSV stops at 1000 rows. I attached a screenshot of the settings page "
        'and uploaded the full export <a href="https://files.example.net/export-0412.csv">here'
        "</a>.</div><div><br></div>"
        "<div>The same happens in Firefox and in Chrome, on two different laptops.</div>"
        "<div><br></div><div>Thanks,</div><div>Omar</div>"
        '<img src="https://t.example.net/open.gif" width="1" height="1" alt=""></div>'
    )
    return _message("Omar Said", "omar@example.com", "CSV export stops at 1000 rows",
                    "b6.faithful@mail.example.com", plain=plain, html=html)


def html_only_reply_with_blockquote() -> bytes:
    """An HTML-only reply from a webmail that quotes the previous message in
    ``<blockquote type="cite">`` under an "On … wrote:" line, as Apple Mail and Thunderbird do
    in HTML mode. The quoted support text is history, not the customer's new words."""
    html = (
        "<html><body><div>Yes, the green light is on now. Thank you!</div><div><br></div>"
        f"<div>{ATTRIBUTION.replace('<', '&lt;').replace('>', '&gt;')}</div>"
        '<blockquote type="cite"><div>Please hold the reset button for ten seconds.</div>'
        "<div>Deskbell Support</div></blockquote></body></html>"
    )
    return _message("Chen Wei", "chen@example.cn", "Re: Router light",
                    "b7.blockquote@webmail.example.cn", html=html)


# --------------------------------------------------------------------------- reply splitting


def outlook_dash_rule_above_header() -> bytes:
    """Outlook in plain-text mode (and Outlook for Mac) puts a rule of dashes or underscores
    on its own line above the quoted "From: … Sent: …" block. The rule is part of the quote."""
    plain = (
        "The new password works, you can close the ticket.\n\n"
        "Kofi\n\n"
        "-----\n"
        f"From: Deskbell Support <{SUPPORT}>\n"
        "Sent: Monday, March 3, 2025 4:05 PM\n"
        "To: Kofi Mensah <kofi@example.gh>\n"
        "Subject: RE: Locked out\n\n"
        "We have reset your password.\n"
    )
    return _message("Kofi Mensah", "kofi@example.gh", "RE: Locked out",
                    "b8.dash-rule@outlook.example.gh", plain=plain)


def outlook_rule_at_the_end() -> bytes:
    """Outlook for iOS with the quoted history trimmed by the sender: the reply ends with the
    underscore rule that used to introduce it, which is not the customer's text."""
    plain = (
        "Still no confirmation e-mail after signing up twice.\n\n"
        "Get Outlook for iOS\n"
        "________________________________\n"
    )
    return _message("Ana Lima", "ana@example.br", "Re: Sign-up",
                    "b9.rule-end@outlook.example.br", plain=plain)


def dash_signoff() -> bytes:
    """People typing on a phone sign with a dash and their name ("-Anna"), no "-- " line."""
    plain = "The tablet will not charge with the new cable either.\n\nThanks\n-Anna\n"
    return _message("Anna Kowalska", "anna@example.pl", "Tablet not charging",
                    "b10.dash-sign@phone.example.pl", plain=plain)


def dash_space_signoff_after_blank_line() -> bytes:
    """A sign-off with a dash, a space and a full name under a blank line ("- Marco Rossi")."""
    plain = (
        "Our shop's card terminal shows error 51 on every payment since this morning.\n"
        "We are losing sales, please call me.\n\n"
        "- Marco Rossi\n"
    )
    return _message("Marco Rossi", "marco@example.it", "Card terminal error 51",
                    "b11.dash-space@mail.example.it", plain=plain)


def dash_list_in_the_body() -> bytes:
    """A customer's own list made with dashes, ending the message: every item is body text,
    even the capitalised last one that looks like "- Name"."""
    plain = (
        "I did what the help page says:\n"
        "- unplugged the base station\n"
        "- reset the handset\n"
        "- Waited\n"
    )
    return _message("Sven Olsen", "sven@example.dk", "Handset not registering",
                    "b12.dash-list@mail.example.dk", plain=plain)


def group_footer_after_blank_line() -> bytes:
    """A message posted to a Google-Groups-style list that copies the helpdesk: the list server
    appends its "You received this message because …" footer after a blank line."""
    plain = (
        "The staging server has been returning 502 errors since the deploy at 10:00.\n\n"
        "Lucia\n\n"
        "You received this message because you are subscribed to the Ops group.\n"
        "To unsubscribe from this group and stop receiving emails from it, send an email to "
        "ops+unsubscribe@lists.example.org.\n"
    )
    return _message("Lucia Fernandez", "lucia@example.es", "502 on staging",
                    "b13.group-footer@example.es", plain=plain)


def mailman_footer_under_rule() -> bytes:
    """A Mailman list copying the helpdesk: its footer sits under a rule of underscores after a
    blank line (list name, address, listinfo URL)."""
    plain = (
        "Nightly backup job failed again, exit code 3.\n\n"
        "Marta\n\n"
        "_______________________________________________\n"
        "ops mailing list\n"
        "ops@lists.example.org\n"
        "https://lists.example.org/mailman/listinfo/ops\n"
    )
    return _message("Marta Nowak", "marta@example.pl", "Backup failed",
                    "b14.mailman@lists.example.org", plain=plain)


def customer_writes_about_unsubscribing() -> bytes:
    """A customer's own last paragraph that talks about unsubscribing is not a list footer."""
    plain = (
        "Hello,\n\nI keep getting your newsletter.\n\n"
        "To unsubscribe I clicked the link at the bottom three times, nothing changed.\n"
    )
    return _message("Greta Lind", "greta@example.se", "Newsletter",
                    "b15.unsubscribe@mail.example.se", plain=plain)


def bottom_post_below_the_quote() -> bytes:
    """Mutt and Thunderbird users who bottom-post: the attribution and quote first, the answer
    underneath, then a "-- " signature."""
    plain = (
        f"{ATTRIBUTION}\n"
        "> Could you send us the serial number printed under the device?\n\n"
        "Sure, it is SN-7781-X.\n\n"
        "-- \nBen Carter\n"
    )
    return _message("Ben Carter", "ben@example.co.uk", "Re: Serial number",
                    "b16.bottom@mutt.example.co.uk", plain=plain)


def greeting_then_bottom_post() -> bytes:
    """A bottom-poster who types a greeting above the quote too: the answer is still under it."""
    plain = (
        "Hello again,\n\n"
        f"{ATTRIBUTION}\n"
        "> Which firmware version does the settings page show?\n\n"
        "It shows 4.2.17, updated last week.\n"
    )
    return _message("Hana Sato", "hana@example.jp", "Re: Firmware",
                    "b17.greeting-bottom@example.jp", plain=plain)


def inline_answers_between_quotes() -> bytes:
    """Answers typed between the quoted questions (interleaved posting), common with
    Thunderbird, mutt and technical customers; the quote ends with more history."""
    plain = (
        f"{ATTRIBUTION}\n"
        "> Which model do you have?\n\n"
        "The X200 with the black front.\n\n"
        "> When did you buy it?\n\n"
        "In January, from your web shop.\n\n"
        "> Is the status light green?\n\n"
        "No, it blinks red twice.\n\n"
        "> Kind regards,\n"
        "> Deskbell Support\n"
    )
    return _message("Felix Wagner", "felix@example.at", "Re: Your device",
                    "b18.inline@thunderbird.example.at", plain=plain)


FIXTURES: dict[str, Callable[[], bytes]] = {
    "html_text_after_closing_html": html_text_after_closing_html,
    "html_text_after_closing_body": html_text_after_closing_body,
    "html_words_split_by_inline_tags": html_words_split_by_inline_tags,
    "html_lists_table_and_breaks": html_lists_table_and_breaks,
    "plain_part_missing_the_details": plain_part_missing_the_details,
    "plain_part_faithful_rendering": plain_part_faithful_rendering,
    "html_only_reply_with_blockquote": html_only_reply_with_blockquote,
    "outlook_dash_rule_above_header": outlook_dash_rule_above_header,
    "outlook_rule_at_the_end": outlook_rule_at_the_end,
    "dash_signoff": dash_signoff,
    "dash_space_signoff_after_blank_line": dash_space_signoff_after_blank_line,
    "dash_list_in_the_body": dash_list_in_the_body,
    "group_footer_after_blank_line": group_footer_after_blank_line,
    "mailman_footer_under_rule": mailman_footer_under_rule,
    "customer_writes_about_unsubscribing": customer_writes_about_unsubscribing,
    "bottom_post_below_the_quote": bottom_post_below_the_quote,
    "greeting_then_bottom_post": greeting_then_bottom_post,
    "inline_answers_between_quotes": inline_answers_between_quotes,
}

EXPECTED: dict[str, dict] = {
    "html_text_after_closing_html": {
        "subject": "Fwd: Your order 88123",
        "requester_name": "Priya Raman",
        "requester_email": "priya@example.org",
        "body_contains": [
            "The parcel for order 88123 never arrived, the tracking page says delivered.",
            "Please send a replacement to my office address.",
        ],
        "body_lacks": ["<div>", "</html>"],
    },
    "html_text_after_closing_body": {
        "subject": "Empty invoice",
        "requester_name": "Tomas Berg",
        "requester_email": "tomas@example.se",
        "body_contains": ["The invoice PDF for March is empty.",
                          "Could you resend it as an attachment?"],
        "body_lacks": ["<p>"],
    },
    "html_words_split_by_inline_tags": {
        "subject": "Scanner offline",
        "requester_name": "Ingrid Holm",
        "requester_email": "ingrid@example.no",
        "body_contains": ["Hello,", "Since Monday the scanner is offline.",
                          "I reinstalled the driver twice."],
        "body_lacks": ["Hel l", "Mon day", "off line", "re installed", "dri ver", "<o:p>"],
    },
    "html_lists_table_and_breaks": {
        "subject": "Printer jams",
        "requester_name": "Noor Haddad",
        "requester_email": "noor@example.net",
        "body_contains": ["Hello,\nmy printer still jams.\nWhat I did:", "1. Unplug the printer",
                          "2. Wait ten seconds", "3. Plug it back in", "thick paper",
                          "envelopes", "LaserJet 220", "Toner black", "Regards\nNoor"],
        "body_lacks": ["printerWait", "secondsPlug", "paperenvelopes", "ItemQty", "2202",
                       "black5", "<li>", "<td>"],
    },
    "plain_part_missing_the_details": {
        "subject": "Contact form: desk motor",
        "requester_name": "Lena Vogel",
        "requester_email": "lena@example.de",
        "body_contains": ["W-20931", "Standing desk frame, oak top",
                          "The left leg motor makes a grinding noise and stops halfway up."],
        "body_lacks": ["<td>"],
    },
    "plain_part_faithful_rendering": {
        "subject": "CSV export stops at 1000 rows",
        "requester_name": "Omar Said",
        "requester_email": "omar@example.com",
        "body_contains": ["the export to CSV stops at 1000 rows.",
                          "https://files.example.net/export-0412.csv",
                          "The same happens in Firefox and in Chrome, on two different laptops."],
        "body_lacks": ["Preview: CSV export limit", "open.gif"],
    },
    "html_only_reply_with_blockquote": {
        "subject": "Re: Router light",
        "requester_name": "Chen Wei",
        "requester_email": "chen@example.cn",
        "body_contains": ["Yes, the green light is on now. Thank you!"],
        "body_lacks": ["Please hold the reset button for ten seconds."],
    },
    "outlook_dash_rule_above_header": {
        "subject": "RE: Locked out",
        "requester_name": "Kofi Mensah",
        "requester_email": "kofi@example.gh",
        "body_contains": ["The new password works, you can close the ticket.", "Kofi"],
        "body_lacks": ["-----", "From: Deskbell Support", "We have reset your password."],
    },
    "outlook_rule_at_the_end": {
        "subject": "Re: Sign-up",
        "requester_name": "Ana Lima",
        "requester_email": "ana@example.br",
        "body_contains": ["Still no confirmation e-mail after signing up twice."],
        "body_lacks": ["_____"],
    },
    "dash_signoff": {
        "subject": "Tablet not charging",
        "requester_name": "Anna Kowalska",
        "requester_email": "anna@example.pl",
        "body_contains": ["The tablet will not charge with the new cable either."],
        "body_lacks": ["-Anna"],
    },
    "dash_space_signoff_after_blank_line": {
        "subject": "Card terminal error 51",
        "requester_name": "Marco Rossi",
        "requester_email": "marco@example.it",
        "body_contains": ["shows error 51 on every payment", "We are losing sales, please call me."],
        "body_lacks": ["- Marco Rossi"],
    },
    "dash_list_in_the_body": {
        "subject": "Handset not registering",
        "requester_name": "Sven Olsen",
        "requester_email": "sven@example.dk",
        "body_contains": ["- unplugged the base station\n- reset the handset\n- Waited"],
    },
    "group_footer_after_blank_line": {
        "subject": "502 on staging",
        "requester_name": "Lucia Fernandez",
        "requester_email": "lucia@example.es",
        "body_contains": ["returning 502 errors since the deploy at 10:00.", "Lucia"],
        "body_lacks": ["You received this message because", "To unsubscribe"],
    },
    "mailman_footer_under_rule": {
        "subject": "Backup failed",
        "requester_name": "Marta Nowak",
        "requester_email": "marta@example.pl",
        "body_contains": ["Nightly backup job failed again, exit code 3.", "Marta"],
        "body_lacks": ["_____", "ops mailing list", "listinfo"],
    },
    "customer_writes_about_unsubscribing": {
        "subject": "Newsletter",
        "requester_name": "Greta Lind",
        "requester_email": "greta@example.se",
        "body_contains": ["I keep getting your newsletter.",
                          "To unsubscribe I clicked the link at the bottom three times"],
    },
    "bottom_post_below_the_quote": {
        "subject": "Re: Serial number",
        "requester_name": "Ben Carter",
        "requester_email": "ben@example.co.uk",
        "body_contains": ["Sure, it is SN-7781-X."],
        "body_lacks": ["Could you send us the serial number", "wrote:"],
    },
    "greeting_then_bottom_post": {
        "subject": "Re: Firmware",
        "requester_name": "Hana Sato",
        "requester_email": "hana@example.jp",
        "body_contains": ["Hello again,", "It shows 4.2.17, updated last week."],
        "body_lacks": ["wrote:"],
    },
    "inline_answers_between_quotes": {
        "subject": "Re: Your device",
        "requester_name": "Felix Wagner",
        "requester_email": "felix@example.at",
        "body_contains": ["The X200 with the black front.", "In January, from your web shop.",
                          "No, it blinks red twice."],
        "body_lacks": ["wrote:", "Kind regards"],
    },
}
