"""Mail with header quirks seen in real mail, and what a person reading each one expects.

Four kinds: header blocks that are not quite RFC 5322 (``block_*``), a From without a usable
address (``requester_*``), a From whose display name breaks the grammar (``name_*``) and
Message-IDs without "@" (``msgid_*``). Every message is written here by hand from a description
of what the sending software does (each builder's docstring says which, and the RFC it bends);
none is copied from another project's test mail.

``EXPECTED`` was written by reading each message, not by running the parser: keys ``subject``,
``requester_name``, ``requester_email``, ``body_contains`` and, where it matters,
``message_id``. ``ENVELOPE_FROM`` gives the SMTP envelope sender a fixture needs (the
``requester_*`` ones); the others may use any. This module must not touch the network, read or
write files, or import the code under test.
"""

from __future__ import annotations

from collections.abc import Callable

SUPPORT = "help@support.example.com"
DATE = "Date: Mon, 03 Mar 2025 09:12:44 +0100"
PLAIN = ("MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii",
         "Content-Transfer-Encoding: 7bit")


def _mail(*header_lines: str, body: str) -> bytes:
    """Hand-built mail with CRLF line ends as on the wire (RFC 5322 §2.1), written verbatim so
    that each quirk survives exactly as the sender produced it."""
    lines = [*header_lines, "", *body.split("\n")]
    return "\r\n".join(lines).encode("ascii")


# --------------------------------------------------------------------------- 1. header blocks


def block_orphan_subject_line() -> bytes:
    """A web-form script that "folds" a long Subject by inserting a bare CRLF, without the
    whitespace RFC 5322 §2.2.3 requires at the start of a continuation line. Strict parsers
    take the orphan line as the start of the body and lose every header after it."""
    return _mail(
        DATE,
        "Subject: Invoice 2025-0117 charges the March fee",
        "twice, please refund one of them",
        "From: Carla Mendes <carla.mendes@example.org>",
        "To: " + SUPPORT,
        "Message-ID: <inv0117.7731@mail.example.org>",
        *PLAIN,
        body="Hello,\n\nthe March fee appears twice on invoice 2025-0117.\n\nCarla\n",
    )


def block_orphan_recipient_lines() -> bytes:
    """A CRM export that writes one recipient per line under To without indenting them (RFC
    5322 §2.2.3 again); the Subject and Message-ID come after the broken list."""
    return _mail(
        'From: "Okafor, Ngozi" <ngozi.okafor@example.com>',
        "To: " + SUPPORT + ",",
        "accounts@support.example.com,",
        "sales@support.example.com",
        "Subject: Contract renewal questions",
        DATE,
        "Message-ID: <renewal.20250303.1@crm.example.com>",
        *PLAIN,
        body="Good morning,\n\nour contract ends in April; can we renew for two years?\n\nNgozi\n",
    )


def block_separator_line() -> bytes:
    """A line of dashes before the header section, as written by scripts that concatenate saved
    messages into one file and then resend each chunk. RFC 5322 §2.1 starts a message with its
    header fields, so a strict parser finds no header section at all."""
    return _mail(
        "----------------------------------------",
        "From: Lars Berg <lars.berg@example.se>",
        "To: " + SUPPORT,
        "Subject: Modem keeps rebooting",
        DATE,
        "Message-ID: <modem.reboot.42@example.se>",
        *PLAIN,
        body="Hi,\n\nthe modem reboots every hour since the update.\n\nLars\n",
    )


def block_forwarded_banner() -> bytes:
    """Apple Mail's inline-forward banner, "Begin forwarded message:" and a blank line, before
    the forwarded header block: what a mail rule that forwards as text and then redirects the
    result hands over. The message the customer meant is the one under the banner."""
    return _mail(
        "Begin forwarded message:",
        "",
        "From: Tomas Ruiz <tomas.ruiz@example.es>",
        "Subject: Wrong address on my contract",
        DATE,
        "To: " + SUPPORT,
        "Message-ID: <contract.addr.7@example.es>",
        *PLAIN,
        body="Hello,\n\nmy contract lists my old street address.\n\nTomas\n",
    )


def block_mbox_from_line() -> bytes:
    """An mbox "From " envelope line (RFC 4155) left on a message that a mailbox-archiving tool
    resends as is; it is not a header field (no colon after the name)."""
    return _mail(
        "From priya.nair@example.in Mon Mar  3 09:12:44 2025",
        "Return-Path: <priya.nair@example.in>",
        "From: Priya Nair <priya.nair@example.in>",
        "To: " + SUPPORT,
        "Subject: Static IP request",
        DATE,
        "Message-ID: <static-ip.5150@example.in>",
        *PLAIN,
        body="Hello,\n\nplease assign a static IP to my business line.\n\nPriya\n",
    )


# --------------------------------------------------------------------------- 5. requester


def requester_name_only_from() -> bytes:
    """A website contact form that puts the visitor's name alone in From and their address in
    Reply-To (RFC 5322 §3.6.2 wants a mailbox in From); its mailer's bounce address is the
    envelope sender."""
    return _mail(
        "From: Jane Doe",
        "Reply-To: jane.doe@example.com",
        "To: " + SUPPORT,
        "Subject: Contact form: cancel my subscription",
        DATE,
        "Message-ID: <form.8812.1@web.example.com>",
        *PLAIN,
        body="Name: Jane Doe\nMessage: please cancel my subscription at the end of the month.\n",
    )


def requester_empty_from_verp_sender() -> bytes:
    """A bulk-mail service whose template left the From address empty (``"Acme Billing" <>``)
    and that names its VERP bounce address in Sender (RFC 5322 §3.6.2); the real address is in
    Reply-To."""
    return _mail(
        'From: "Acme Billing" <>',
        "Sender: bounces+8812-ab12-billing=acme.example@mailer.example",
        "Reply-To: Acme Billing <billing@acme.example>",
        "To: " + SUPPORT,
        "Subject: Disputed charge on account 55102",
        DATE,
        "Message-ID: <dispute.55102@acme.example>",
        *PLAIN,
        body="Hello,\n\nwe dispute the charge of 19.90 on account 55102.\n\nAcme Billing\n",
    )


def requester_group_from_with_sender() -> bytes:
    """From as an empty group, ``undisclosed-recipients:;`` (RFC 5322 §3.4 group syntax, seen
    from hotel booking systems); the person who sent it is in Sender."""
    return _mail(
        "From: undisclosed-recipients:;",
        "Sender: Front Desk <frontdesk@hotel.example>",
        "To: " + SUPPORT,
        "Subject: Guest wifi voucher printer offline",
        DATE,
        "Message-ID: <voucher.printer.3@hotel.example>",
        *PLAIN,
        body="Hi,\n\nthe voucher printer in the lobby is offline again.\n\nFront Desk\n",
    )


def requester_name_only_envelope() -> bytes:
    """A name alone in From, no Sender and no Reply-To: a scanner's scan-to-mail feature. Only
    the SMTP envelope sender (RFC 5321 §4.1.1.2) carries the address."""
    return _mail(
        "From: Mario Rossi",
        "To: " + SUPPORT,
        "Subject: Scanned meter reading",
        DATE,
        "Message-ID: <scan.0042@printer.example.it>",
        *PLAIN,
        body="Meter reading for March attached as text: 004521 kWh.\n",
    )


def requester_portal_without_domain() -> bytes:
    """A support portal that writes a local part without a domain in From (``<noreply>``, no
    "@": not an addr-spec, RFC 5322 §3.4.1) and the customer in Reply-To; its mail passed a
    forwarder that rewrote the envelope sender with SRS."""
    return _mail(
        "From: Support Portal <noreply>",
        "Reply-To: Kenji Sato <kenji.sato@example.jp>",
        "To: " + SUPPORT,
        "Subject: Portal: password reset link expired",
        DATE,
        "Message-ID: <portal.reset.991@portal.example.jp>",
        *PLAIN,
        body="Request from Kenji Sato:\nthe password reset link expired before I could use it.\n",
    )


# --------------------------------------------------------------------------- 6. display names


def name_unquoted_comma() -> bytes:
    """"Last, First" written without the quotes RFC 5322 §3.4 requires for a phrase holding a
    comma: older gateways that copy a directory name straight into From."""
    return _mail(
        "From: Smith, John <john.smith@example.com>",
        "To: " + SUPPORT,
        "Subject: Router lights all off",
        DATE,
        "Message-ID: <lights.off.1@example.com>",
        *PLAIN,
        body="Hello,\n\nall the lights on my router are off.\n\nJohn\n",
    )


def name_inner_quotes() -> bytes:
    """A nickname in quotes inside an otherwise unquoted name. RFC 5322 §3.2.5 reads it as
    three words; a person reads it as a nickname and expects the quotes kept."""
    return _mail(
        'From: John "Johnny" Smith <johnny@example.com>',
        "To: " + SUPPORT,
        "Subject: Speed test results",
        DATE,
        "Message-ID: <speedtest.77@example.com>",
        *PLAIN,
        body="Hi,\n\nthe speed test shows 12 Mbit/s instead of 100.\n\nJohnny\n",
    )


def name_quoted_local_part() -> bytes:
    """A quoted local part holding a space (RFC 5322 §3.4.1 quoted-string local part), as
    host-based mail gateways of old mainframe systems still write them; no display name."""
    return _mail(
        'From: "john brown"@example.com',
        "To: " + SUPPORT,
        "Subject: Mainframe account locked",
        DATE,
        "Message-ID: <locked.2025.3@example.com>",
        *PLAIN,
        body="Our mainframe account was locked this morning.\n",
    )


def name_with_quoted_local_part() -> bytes:
    """A display name before a quoted local part holding a space (RFC 5322 §3.4.1)."""
    return _mail(
        'From: Ana Silva <"ana silva"@example.pt>',
        "To: " + SUPPORT,
        "Subject: Two bills this month",
        DATE,
        "Message-ID: <two.bills.12@example.pt>",
        *PLAIN,
        body="Ola,\n\nI received two bills this month.\n\nAna\n",
    )


def name_missing_closing_bracket() -> bytes:
    """An unquoted "Last, First" name and an angle-addr whose closing ">" is missing (RFC 5322
    §3.4 angle-addr): a signature-tool template with a typo."""
    return _mail(
        "From: Lopez, Maria <maria.lopez@example.com",
        "To: " + SUPPORT,
        "Subject: Change of billing address",
        DATE,
        "Message-ID: <billing.addr.5@example.com>",
        *PLAIN,
        body="Hello,\n\nplease send the bills to my new address from April.\n\nMaria\n",
    )


def name_address_then_comment() -> bytes:
    """A name, the address, then a comment naming the department (RFC 5322 §3.2.2 comments
    may follow an angle-addr); the comment is not part of the name."""
    return _mail(
        "From: Peter Brown <peter.brown@example.com> (Sales, EMEA)",
        "To: " + SUPPORT,
        "Subject: Quote for 40 office lines",
        DATE,
        "Message-ID: <quote.40.lines@example.com>",
        *PLAIN,
        body="Hello,\n\nplease send a quote for 40 office lines.\n\nPeter\n",
    )


def name_in_comment_after_angle_addr() -> bytes:
    """No phrase, an angle-addr and the name in a trailing comment: the RFC 822 habit of naming
    the person in a comment (RFC 5322 §3.4 keeps comments legal there), from old Unix mailers."""
    return _mail(
        "From: <olga.ivanova@example.net> (Olga Ivanova)",
        "To: " + SUPPORT,
        "Subject: No dial tone",
        DATE,
        "Message-ID: <dial.tone.19@example.net>",
        *PLAIN,
        body="There is no dial tone on my landline since yesterday.\n",
    )


# --------------------------------------------------------------------------- 8. Message-IDs


def msgid_without_at() -> bytes:
    """A Message-ID with no "@" and no domain (RFC 5322 §3.6.4 wants id-left "@" id-right): a
    PHP mailer that writes the clock and a random hex string and leaves the host out."""
    return _mail(
        "From: Wei Chen <wei.chen@example.cn>",
        "To: " + SUPPORT,
        "Subject: Billing portal shows an error",
        DATE,
        "Message-ID: <1741000364.8C41F09A2B>",
        *PLAIN,
        body="Hello,\n\nthe billing portal shows error 500 after login.\n\nWei\n",
    )


def msgid_reply_without_at() -> bytes:
    """The same mailer replying: its own id and the ids it refers to, all without "@"
    (RFC 5322 §3.6.4 In-Reply-To and References)."""
    return _mail(
        "From: Wei Chen <wei.chen@example.cn>",
        "To: " + SUPPORT,
        "Subject: Re: Billing portal shows an error",
        "Date: Tue, 04 Mar 2025 08:01:02 +0800",
        "Message-ID: <1741086062.3D92E7A0C4>",
        "In-Reply-To: <1741000364.8C41F09A2B>",
        "References: <1741000364.8C41F09A2B>",
        *PLAIN,
        body="Still broken this morning.\n\nWei\n",
    )


FIXTURES: dict[str, Callable[[], bytes]] = {
    "block_orphan_subject_line": block_orphan_subject_line,
    "block_orphan_recipient_lines": block_orphan_recipient_lines,
    "block_separator_line": block_separator_line,
    "block_forwarded_banner": block_forwarded_banner,
    "block_mbox_from_line": block_mbox_from_line,
    "requester_name_only_from": requester_name_only_from,
    "requester_empty_from_verp_sender": requester_empty_from_verp_sender,
    "requester_group_from_with_sender": requester_group_from_with_sender,
    "requester_name_only_envelope": requester_name_only_envelope,
    "requester_portal_without_domain": requester_portal_without_domain,
    "name_unquoted_comma": name_unquoted_comma,
    "name_inner_quotes": name_inner_quotes,
    "name_quoted_local_part": name_quoted_local_part,
    "name_with_quoted_local_part": name_with_quoted_local_part,
    "name_missing_closing_bracket": name_missing_closing_bracket,
    "name_address_then_comment": name_address_then_comment,
    "name_in_comment_after_angle_addr": name_in_comment_after_angle_addr,
    "msgid_without_at": msgid_without_at,
    "msgid_reply_without_at": msgid_reply_without_at,
}

# SMTP envelope senders (MAIL FROM) the requester fixtures are delivered with: bulk mailers'
# bounce addresses (plain, VERP, SRS) and, for the scanner, the only real address there is.
ENVELOPE_FROM: dict[str, str] = {
    "requester_name_only_from": "bounce-4821@mailer.example",
    "requester_empty_from_verp_sender": "bounces+8812-ab12-billing=acme.example@mailer.example",
    "requester_group_from_with_sender": "bounce-77310@hotelmail.example",
    "requester_name_only_envelope": "mario.rossi@example.it",
    "requester_portal_without_domain": "SRS0=hG4k=VB=portal.example.jp=noreply@forwarder.example",
}

EXPECTED: dict[str, dict] = {
    "block_orphan_subject_line": {
        "subject": "Invoice 2025-0117 charges the March fee twice, please refund one of them",
        "requester_name": "Carla Mendes",
        "requester_email": "carla.mendes@example.org",
        "body_contains": "the March fee appears twice on invoice 2025-0117.",
        "message_id": "inv0117.7731@mail.example.org",
    },
    "block_orphan_recipient_lines": {
        "subject": "Contract renewal questions",
        "requester_name": "Okafor, Ngozi",
        "requester_email": "ngozi.okafor@example.com",
        "body_contains": "our contract ends in April; can we renew for two years?",
        "message_id": "renewal.20250303.1@crm.example.com",
    },
    "block_separator_line": {
        "subject": "Modem keeps rebooting",
        "requester_name": "Lars Berg",
        "requester_email": "lars.berg@example.se",
        "body_contains": "the modem reboots every hour since the update.",
        "message_id": "modem.reboot.42@example.se",
    },
    "block_forwarded_banner": {
        "subject": "Wrong address on my contract",
        "requester_name": "Tomas Ruiz",
        "requester_email": "tomas.ruiz@example.es",
        "body_contains": "my contract lists my old street address.",
        "message_id": "contract.addr.7@example.es",
    },
    "block_mbox_from_line": {
        "subject": "Static IP request",
        "requester_name": "Priya Nair",
        "requester_email": "priya.nair@example.in",
        "body_contains": "please assign a static IP to my business line.",
        "message_id": "static-ip.5150@example.in",
    },
    "requester_name_only_from": {
        "subject": "Contact form: cancel my subscription",
        "requester_name": "Jane Doe",
        "requester_email": "jane.doe@example.com",
        "body_contains": "please cancel my subscription at the end of the month.",
    },
    "requester_empty_from_verp_sender": {
        "subject": "Disputed charge on account 55102",
        "requester_name": "Acme Billing",
        "requester_email": "billing@acme.example",
        "body_contains": "we dispute the charge of 19.90 on account 55102.",
    },
    "requester_group_from_with_sender": {
        "subject": "Guest wifi voucher printer offline",
        "requester_name": "Front Desk",
        "requester_email": "frontdesk@hotel.example",
        "body_contains": "the voucher printer in the lobby is offline again.",
    },
    "requester_name_only_envelope": {
        "subject": "Scanned meter reading",
        "requester_name": "Mario Rossi",
        "requester_email": "mario.rossi@example.it",
        "body_contains": "Meter reading for March attached as text: 004521 kWh.",
    },
    "requester_portal_without_domain": {
        "subject": "Portal: password reset link expired",
        "requester_name": "Kenji Sato",
        "requester_email": "kenji.sato@example.jp",
        "body_contains": "the password reset link expired before I could use it.",
    },
    "name_unquoted_comma": {
        "subject": "Router lights all off",
        "requester_name": "Smith, John",
        "requester_email": "john.smith@example.com",
        "body_contains": "all the lights on my router are off.",
    },
    "name_inner_quotes": {
        "subject": "Speed test results",
        "requester_name": 'John "Johnny" Smith',
        "requester_email": "johnny@example.com",
        "body_contains": "the speed test shows 12 Mbit/s instead of 100.",
    },
    "name_quoted_local_part": {
        "subject": "Mainframe account locked",
        "requester_name": "",
        "requester_email": '"john brown"@example.com',
        "body_contains": "Our mainframe account was locked this morning.",
    },
    "name_with_quoted_local_part": {
        "subject": "Two bills this month",
        "requester_name": "Ana Silva",
        "requester_email": '"ana silva"@example.pt',
        "body_contains": "I received two bills this month.",
    },
    "name_missing_closing_bracket": {
        "subject": "Change of billing address",
        "requester_name": "Lopez, Maria",
        "requester_email": "maria.lopez@example.com",
        "body_contains": "please send the bills to my new address from April.",
    },
    "name_address_then_comment": {
        "subject": "Quote for 40 office lines",
        "requester_name": "Peter Brown",
        "requester_email": "peter.brown@example.com",
        "body_contains": "please send a quote for 40 office lines.",
    },
    "name_in_comment_after_angle_addr": {
        "subject": "No dial tone",
        "requester_name": "Olga Ivanova",
        "requester_email": "olga.ivanova@example.net",
        "body_contains": "There is no dial tone on my landline since yesterday.",
    },
    "msgid_without_at": {
        "subject": "Billing portal shows an error",
        "requester_name": "Wei Chen",
        "requester_email": "wei.chen@example.cn",
        "body_contains": "the billing portal shows error 500 after login.",
        "message_id": "1741000364.8C41F09A2B",
    },
    "msgid_reply_without_at": {
        "subject": "Re: Billing portal shows an error",
        "requester_name": "Wei Chen",
        "requester_email": "wei.chen@example.cn",
        "body_contains": "Still broken this morning.",
        "message_id": "1741086062.3D92E7A0C4",
    },
}
