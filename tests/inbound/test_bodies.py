"""Tests for what ``parse_email`` puts in ``body`` (what staff see) and ``quoted``: HTML read as a
browser shows it, the better alternative part chosen, and replies split by what the customer
wrote. The mail comes from ``tests/inbound/fixtures_bodies.py``; smaller cases are built inline.
These tests must not touch the network or a database, and must not patch any library.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from selectolax.lexbor import LexborHTMLParser

from bot.inbound.mailparse import parse_email
from bot.inbound.mailparse.htmltext import _SELECT_TAG, MAX_HTML_DEPTH, _html_to_text
from bot.inbound.mailparse.parts import _Walk
from bot.inbound.mailparse.render import _is_stub
from bot.inbound.mailparse.replies import _split_reply
from bot.messages import InboundMessage
from tests.inbound import fixtures_bodies as fb

RECEIVED = datetime(2025, 3, 4, 8, 31, tzinfo=timezone.utc)


def parse(raw: bytes) -> InboundMessage:
    return parse_email(raw, received_at=RECEIVED)


def fixture(name: str) -> InboundMessage:
    return parse(fb.FIXTURES[name]())


def html(markup: str) -> str:
    return _html_to_text(markup, _Walk())


# --------------------------------------------------------------------------- every fixture


@pytest.mark.parametrize("name", sorted(fb.FIXTURES))
def test_fixture_reads_as_expected(name):
    msg = fixture(name)
    expected = fb.EXPECTED[name]
    assert msg.subject == expected["subject"]
    assert msg.sender_name == expected["requester_name"]
    assert msg.sender_address == expected["requester_email"]
    for text in expected.get("body_contains", []):
        assert text in msg.body, (text, msg.body)
    for text in expected.get("body_lacks", []):
        assert text not in msg.body, (text, msg.body)


def test_every_fixture_has_its_expectations():
    assert set(fb.FIXTURES) == set(fb.EXPECTED)
    for raw in (build() for build in fb.FIXTURES.values()):
        for header in (b"From:", b"To:", b"Subject:", b"Message-ID:"):
            assert header in raw


# --------------------------------------------------------------------------- HTML to text


def test_text_after_a_premature_closing_html_tag_is_kept():
    assert html("<html><body><p>Hello</p></body></html><p>After</p>") == "Hello\n\nAfter"
    assert html("<p>Hello</p></html> tail") == "Hello\n\ntail"
    assert html("<p>Hello</p></body><p>After body</p></html>") == "Hello\n\nAfter body"


def test_inline_elements_never_split_words():
    assert html("<p>Hel<span>l</span>o <b>Mon</b>day</p>") == "Hello Monday"
    assert html('<p>re<span style="color:red">in</span><a href="x">stall</a>ed</p>') == "reinstalled"
    assert html("<p>two <i>words</i> here</p>") == "two words here"


def test_lists_tables_and_line_breaks_stay_readable():
    body = fixture("html_lists_table_and_breaks").body
    lines = body.split("\n")
    assert lines[:3] == ["Hello,", "my printer still jams.", "What I did:"]
    assert ["1. Unplug the printer", "2. Wait ten seconds", "3. Plug it back in"] == [
        line for line in lines if line[:1].isdigit()]
    assert "• thick paper\n• envelopes" in body
    assert "Item | Qty\nLaserJet 220 | 2\nToner black | 5" in body


def test_nested_lists_and_numbering():
    text = html('<ol start="3"><li>three<ul><li>sub</li></ul></li><li>four</li></ol>')
    assert text == "3. three\n  ◦ sub\n4. four"


def test_paragraphs_breaks_and_outlook_spacing():
    assert html("a<br>b<br><br>c<p>d</p><p>e</p>") == "a\nb\n\nc\n\nd\n\ne"
    # Outlook's p.MsoNormal has no margin; its blank lines are &nbsp; paragraphs.
    outlook = ('<p class=MsoNormal>Hi,</p><p class=MsoNormal>&nbsp;</p>'
               '<p class=MsoNormal>line one</p><p class=MsoNormal>line two</p>')
    assert html(outlook) == "Hi,\n\nline one\nline two"
    assert html('<div>Hi</div><div><br></div><div>there</div>') == "Hi\n\nthere"


def test_hidden_and_invisible_content_is_not_shown():
    markup = (
        '<head><title>T</title><style>p{color:red}</style></head>'
        '<div style="display: none">preheader</div><span hidden>secret</span>'
        '<script>track()</script><p>Visible\u200c\u00ad text<img src="x.gif" alt="pixel"></p>'
        "<!-- a comment -->"
    )
    assert html(markup) == "Visible text"


def test_blockquote_and_pre():
    assert html("<p>new</p><blockquote><p>old</p><p>older</p></blockquote>") == (
        "new\n\n> old\n>\n> older")
    assert html("<pre>ip route\n    0.0.0.0   gw</pre>") == "ip route\n    0.0.0.0   gw"
    assert html("<div style='white-space:pre-wrap'>a\n  b</div>") == "a\n  b"


def test_no_markup_ever_reaches_the_text():
    assert html("<p>1 &lt; 2 &amp;&amp; 3 &gt; 2</p>") == "1 < 2 && 3 > 2"
    assert html("") == "" and html("<html></html>") == ""
    assert html('<?xml version="1.0" encoding="utf-8"?><p>x</p>') == "x"


def _tree_depth(markup: str) -> int:
    """How deep the parser really nests ``markup`` (elements under <body>)."""
    tree = LexborHTMLParser(_SELECT_TAG.sub(r"<\\1x-select", markup))
    deepest, stack = 0, [(tree.body, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        child = node.child
        while child is not None:
            if child.is_element_node:
                stack.append((child, depth + 1))
            child = child.next
    return deepest


# Each nests one level deeper per repetition in a browser, some only through the HTML5 rules
# the depth scan must follow: tags a list or a table ignores, end tags outside their scope,
# formatting elements reopened after a block closed them, <svg> left by an HTML element.
DEEPENING = (
    "<div>", "<ul><li>", "<blockquote>x", "<span><div></span>", "<div><object></div></object>",
    "</u><i a=q x><u><a id=1>", "<b id=1/><p color=red><hr class=q>",
    "<caption class=q/><div id=1></caption>", "<form><h2></form>", "<h2><b color=red></h2></br>",
    "<p><svg id=1/><title>", "<select><div>", "<table><tr><td><div>",
)
# Sloppy but shallow: what old editors write, which must not be cut.
SHALLOW = (
    "<p><b>bold<p><font face=Arial>x</p>", "<li>item", "<table><tr><td>a<td>b</table>",
    "<a href=x>one<a href=y>two", "<option>o", "<p>para", "<div><b>x</div>",
)


@pytest.mark.parametrize("unit", DEEPENING)
def test_deep_nesting_is_cut_before_the_parser_sees_it(unit):
    markup = unit * 9000
    assert _tree_depth(unit * 300) > MAX_HTML_DEPTH  # what the scan guards against
    walk = _Walk()
    started = time.perf_counter()
    text = _html_to_text(markup, walk)
    assert time.perf_counter() - started < 2
    assert any(f"deeper than {MAX_HTML_DEPTH}" in d for d in walk.defects)
    assert len(text) < 40 * MAX_HTML_DEPTH


@pytest.mark.parametrize("unit", SHALLOW)
def test_large_sloppy_but_shallow_html_is_rendered_whole(unit):
    walk = _Walk()
    text = _html_to_text(unit * 3000 + "<p>THE END", walk)
    assert walk.defects == []
    assert text.endswith("THE END")


def test_html_output_stays_linear_in_the_input():
    markup = "<blockquote>" * 50 + "x<br>" * 50_000
    assert len(html(markup)) <= 2 * len(markup) + 1000


# --------------------------------------------------------------------------- plain vs HTML


def test_plain_part_lacking_much_of_the_html_loses():
    msg = fixture("plain_part_missing_the_details")
    assert "W-20931" in msg.body and "grinding noise" in msg.body


def test_faithful_plain_part_wins():
    msg = fixture("plain_part_faithful_rendering")
    assert "here: https://files.example.net/export-0412.csv" in msg.body


def test_lacking_measure_both_directions():
    html_text = ("The router reboots every night at three. I replaced the power supply and the "
                 "cable, and moved it away from the microwave, but it still happens.")
    assert not _is_stub(html_text, html_text)
    faithful = html_text.replace("router", "router (https://x.example/r)").replace(". ", ".\n")
    assert not _is_stub(faithful, html_text)
    assert _is_stub("The router reboots every night at three.", html_text)
    # A richer plain part is never a stub, and a few differing words never decide.
    assert not _is_stub(html_text + " " + html_text.upper(), "The router reboots.")
    assert not _is_stub("Hello there friend", "Hi, the order 5 is late")


# --------------------------------------------------------------------------- reply splitting


def test_outlook_rule_lines_go_to_quoted():
    msg = fixture("outlook_dash_rule_above_header")
    assert msg.body == "The new password works, you can close the ticket.\n\nKofi"
    assert msg.quoted.startswith("-----")
    msg = fixture("outlook_rule_at_the_end")
    assert msg.body == "Still no confirmation e-mail after signing up twice."
    assert msg.quoted.endswith("\n________________________________")


def test_dash_signoffs_are_signature_but_dash_lists_are_not():
    msg = fixture("dash_signoff")
    assert msg.body == "The tablet will not charge with the new cable either.\n\nThanks"
    assert msg.quoted == "-Anna"
    assert fixture("dash_space_signoff_after_blank_line").quoted == "- Marco Rossi"
    msg = fixture("dash_list_in_the_body")
    assert msg.body.endswith("- reset the handset\n- Waited") and msg.quoted == ""
    assert _split_reply("Steps:\n\n- Reboot") == ("Steps:\n\n- Reboot", "")
    assert _split_reply("Try:\n- step one\n- step two") == ("Try:\n- step one\n- step two", "")


def test_mailing_list_footers_are_signature():
    msg = fixture("group_footer_after_blank_line")
    assert msg.body.endswith("Lucia")
    assert msg.quoted.startswith("You received this message because")
    msg = fixture("mailman_footer_under_rule")
    assert msg.body.endswith("Marta") and "listinfo" in msg.quoted
    assert fixture("customer_writes_about_unsubscribing").quoted == ""


def test_bottom_posted_answer_is_the_body():
    msg = fixture("bottom_post_below_the_quote")
    assert msg.body == "Sure, it is SN-7781-X."
    assert "> Could you send us the serial number" in msg.quoted
    assert "Ben Carter" in msg.quoted
    msg = fixture("greeting_then_bottom_post")
    assert msg.body == "Hello again,\n\nIt shows 4.2.17, updated last week."


def test_inline_answers_keep_their_questions():
    body = fixture("inline_answers_between_quotes").body
    assert body == (
        "> Which model do you have?\nThe X200 with the black front.\n\n"
        "> When did you buy it?\nIn January, from your web shop.\n\n"
        "> Is the status light green?\nNo, it blinks red twice."
    )


def test_unmarked_outlook_history_is_not_mined_for_answers():
    text = (
        "Fixed, thanks.\n\nFrom: Support <help@support.example.com>\nSent: Monday\nTo: me\n"
        "Subject: x\n\nOld text\n> an old quote\nolder text\n"
    )
    body, quoted = _split_reply(text)
    assert body == "Fixed, thanks." and "older text" in quoted


def test_an_older_message_below_the_quote_is_history():
    text = (
        f"{fb.ATTRIBUTION}\n> question\n\nanswer\n\n"
        "On Sun, 2 Mar 2025 at 10:00, Someone <s@example.org> wrote:\nvery old text\n"
    )
    body, quoted = _split_reply(text)
    assert body == "answer" and "very old text" in quoted
    forwarded = f"{fb.ATTRIBUTION}\n> q\n\nmine\n\n---------- Forwarded message ---------\nold\n"
    assert _split_reply(forwarded)[0] == "mine"


def test_many_answer_stretches_stay_cheap():
    text = fb.ATTRIBUTION + "\n" + "> q: x\nanswer: y\n" * 5000
    started = time.perf_counter()
    body, quoted = _split_reply(text)
    assert time.perf_counter() - started < 2
    assert body.startswith("> q: x\nanswer: y") and quoted.startswith("On Mon")
