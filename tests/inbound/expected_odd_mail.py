"""What a person reading each odd-mail fixture (``tests/mailfixtures.py``) expects Deskbell to
show: written by reading the fixtures, not by running the parser.

Keys, each optional: ``outcome`` ("ticket", the default, or "quarantined:<reason>"),
``subject``, ``requester_name``, ``requester_email``, ``body_contains`` and ``body_lacks``
(strings), ``attachments`` (exact names, in order) or ``attachments_include`` (names among
them) and ``attachment_count``.
"""

from __future__ import annotations

from typing import Any

ALICE = {"requester_name": "Alice Example", "requester_email": "alice@example.net"}
ROUTER = "my router has been down since this morning. The power light blinks red."

EXPECTED: dict[str, dict[str, Any]] = {
    "plain": {"subject": "Router down", **ALICE, "body_contains": [ROUTER], "attachments": []},
    "no_message_id": {"subject": "Router down", **ALICE, "body_contains": [ROUTER]},
    "wrong_charset": {"subject": "Stoerung", "requester_name": "Juergen Kunde",
                      "requester_email": "juergen@example.de",
                      "body_contains": ["Grüße aus Köln – der Router blinkt rot."]},
    "unknown_charset": {"subject": "Café wifi", "requester_email": "bob@example.org",
                        "body_contains": ["The café wifi drops every ten minutes."]},
    "utf7_charset": {"subject": "Facture", "requester_email": "claire@example.fr",
                     "body_contains": ["Prix: 20 € par mois, merci."]},
    "raw_8bit_headers": {"subject": "Störung: Internet fällt aus", "requester_name": "José García",
                         "requester_email": "jose@example.es",
                         "body_contains": ["Seit gestern kein Internet."]},
    # Two From and two Subject fields: the first of each is what the sender's client wrote.
    "duplicate_headers": {"subject": "First subject, folded over three lines",
                          "requester_name": "First Sender", "requester_email": "first@example.com",
                          "body_contains": ["Body text."]},
    "sender_only": {"subject": "No from header", "requester_name": "Dana Sender",
                    "requester_email": "dana@example.com", "body_contains": ["Where is my invoice?"]},
    # No From, no Sender: the envelope sender the corpus test uses is all there is.
    "no_sender_headers": {"subject": "Anonymous", "requester_email": "customer@example.net",
                          "body_contains": ["Hello?"]},
    "deeply_nested_multipart": {"subject": "Nested", "requester_email": "nest@example.com",
                                "body_contains": ["The deepest text part."]},
    "winmail_dat": {"subject": "Contract attached", "requester_name": "Erin Office",
                    "requester_email": "erin@example.com",
                    "body_contains": ["Please see the attached file."],
                    "attachments": ["Service contract 2025.pdf"]},
    "winmail_dat_corrupt": {"subject": "Broken winmail", "requester_email": "erin@example.com",
                            "body_contains": ["See attachment."], "attachments": ["winmail.dat"]},
    "big_attachment_10mb": {"subject": "Scan of the contract", "requester_email": "erin@example.com",
                            "body_contains": ["Scan attached."], "attachments": ["scan.pdf"]},
    "empty_body": {"subject": "Call me back please", "requester_email": "frank@example.com"},
    # A contact form: From is the form's robot address (replies go to Reply-To).
    "html_only": {"subject": "Contact form", "requester_email": "noreply-form@shop.example.com",
                  "body_contains": ["Order #5531 never arrived & tracking shows nothing.",
                                    "Grace Buyer"],
                  "body_lacks": ["track()", "color: red", "<"]},
    "html_stub": {"subject": "Newsletter reply", "requester_name": "Hal",
                  "requester_email": "hal@example.com",
                  "body_contains": ["My modem shows the error code E-42 after the firmware update.",
                                    "I already tried a factory reset twice."],
                  "body_lacks": ["View this email in your browser"]},
    "dsn_bounce": {"outcome": "quarantined:bounce"},  # about mail we never sent
    "plain_bounce": {"outcome": "quarantined:bounce"},
    "out_of_office": {"subject": "Automatic reply: Router down", "requester_name": "Ivan Away",
                      "requester_email": "ivan@example.com",
                      "body_contains": ["I am out of the office until Monday."]},
    # Our own tag "[#42]" is dropped from a new ticket's subject; #42 does not exist here.
    "outlook_reply_with_quote": {"subject": "RE: Router down", "requester_name": "Judy Customer",
                                 "requester_email": "judy@example.com",
                                 "body_contains": ["Still down after the restart."],
                                 "body_lacks": ["Please restart the router and tell us"]},
    "gmail_reply": {"subject": "Re: Router down", "requester_name": "Ken Customer",
                    "requester_email": "ken@gmail.example.com",
                    "body_contains": ["Yes, it works now. Thank you!"],
                    "body_lacks": ["Does the light turn green?"]},
    "signature": {"subject": "Thanks", "requester_name": "Liam Customer",
                  "requester_email": "liam@example.com",
                  "body_contains": ["The new modem works.", "- step one was enough"],
                  "body_lacks": ["ACME Ltd", "+1 555 0100"]},
    "format_flowed": {"subject": "Flowed", "requester_email": "mia@example.com",
                      "body_contains": ["The connection drops when the microwave is on, every "
                                        "single time."]},
    "long_lines": {"subject": "Log attached inline", "requester_email": "nick@example.com",
                   "body_contains": ["Here is the log:", "0123456789abcdef0123456789abcdef"]},
    "mailing_list": {"subject": "[users] Anyone else seeing outages?", "requester_name": "Olga",
                     "requester_email": "olga@example.com", "body_contains": ["Is it only me?"]},
    "loop_header": {"subject": "Your ticket", "requester_email": "help@support.example.com",
                    "body_contains": [ROUTER]},
    "bad_transfer_encoding": {"subject": "Bad encodings", "requester_email": "pat@example.com",
                              "body_contains": ["Please reset my password.", "12=34",
                                                "and a soft break."]},
    "missing_boundary": {"subject": "No boundary", "requester_email": "quinn@example.com",
                         "body_contains": ["My text without any MIME structure."]},
    "absent_boundary": {"subject": "Lost boundary", "requester_email": "quinn@example.com",
                        "body_contains": ["Text that was meant to be inside a part."]},
    # Names cleaned for people: no paths, no right-to-left override that hides ".exe".
    "inline_image_and_odd_names": {"subject": "Screenshot", "requester_email": "rosa@example.com",
                                   "body_contains": ["See the error:"],
                                   "attachments_include": ["Résumé.pdf", "Привет.txt", "evil.exe"],
                                   "attachment_count": 6},
    "attached_message": {"subject": "Fwd: Phishing?", "requester_email": "sam@example.com",
                         "body_contains": ["Is this mail from you?"], "attachment_count": 1},
    "long_attachment_name": {"subject": "Scan", "requester_email": "tom@example.com",
                             "body_contains": ["Scan attached."], "attachment_count": 1},
    "garbage": {"outcome": "quarantined:unparseable"},  # no header block at all
}

# The only fixtures allowed to end as "unparseable": they have no header block at all.
NO_HEADER_BLOCK = {"garbage"}
