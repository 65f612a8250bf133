"""The customer's ticket page in a real browser (issue 22, acceptance: phone and desktop
screenshots, no horizontal overflow, readable text, no serious accessibility violation).

The page is the one a customer opens: a ticket made from a mail through the SMTP door, answered
by staff, with an internal note beside it; its link is the one the acknowledgement carries, and
Chromium loads it from the app's own web server, so the page is checked under its real headers
(its CSP forbids every script: axe-core is evaluated from outside, see tests/browser.py).
Screenshots stay under test-artifacts/test_customer_page_browser/ to be looked at.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

from bot.core import actions
from bot.core.staff import Actor
from tests.browser import Browser, Page, browser  # noqa: F401  (the fixture)
from tests.conftest import DOMAIN, deliver, running
from tests.test_customer_page import NOTE, customer_mail, page_settings

WIDTHS = (375, 1280)  # a small phone, a laptop
BOB = Actor("UBOB", "Bob Agent")
REPLY = "Hello Ann,\n\nWe restarted the line card at your exchange. Is the router's light green now?"

# Every piece of text on the page, with its computed font size: ``[size in px, the text]``.
TEXT_SIZES = """() => {
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const text = node.textContent.trim();
        if (!text || !node.parentElement.checkVisibility()) continue;
        found.push([parseFloat(getComputedStyle(node.parentElement).fontSize), text.slice(0, 40)]);
    }
    return found;
}"""

# What sticks out past the viewport's right edge: boxes, and text that spills out of its box (a
# box's own rectangle does not grow with an unbroken word that overflows it, nor does the
# document's scrollWidth see text cut off by an ``overflow: hidden``). ``[tag.class, text]``.
STICKING_OUT = """() => {
    const right = document.documentElement.clientWidth + 0.5, found = [];
    const name = e => e.tagName.toLowerCase() + (e.className ? '.' + e.className.replace(/ /g, '.') : '');
    for (const e of document.body.querySelectorAll('*'))
        if (e.getBoundingClientRect().right > right) found.push([name(e), '']);
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(node);
        if ([...range.getClientRects()].some(r => r.right > right))
            found.push([name(node.parentElement), node.textContent.trim().slice(0, 40)]);
    }
    return found;
}"""


async def page_link(relay) -> str:
    """The page's link, from the acknowledgement (the only mail the relay has caught yet)."""
    [ack] = await relay.wait_for(1)
    return re.search(r"https?://\S+/t/\S+", ack.get_body(("plain",)).get_content()).group(0)


async def check_readable(page: Page, width: int, *, body_px: float = 16, least_px: float = 14) -> None:
    """Fits the width, nothing cut off, no text below ``least_px`` and the conversation (or, on
    a page without one, its paragraphs) at ``body_px`` or more; no serious axe violation."""
    assert await page.evaluate(STICKING_OUT) == [], width  # first: it names the culprit
    widths = await page.widths()
    assert widths.overflow == 0, f"{widths.scroll_width} px wide at a {width} px viewport"
    sizes = await page.evaluate(TEXT_SIZES)
    assert sizes and min(size for size, _ in sizes) >= least_px, sorted(sizes)[:5]
    main_text = await page.evaluate(
        "[...document.querySelectorAll('.body, main > p')].map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert main_text and min(main_text) >= body_px, main_text
    assert await page.accessibility_violations() == []
    assert page.blocked == []  # nothing fetched from elsewhere


async def test_the_ticket_page_reads_well_on_a_phone_and_a_laptop(tmp_path, relay, browser: Browser):
    async with running(page_settings(tmp_path, relay)) as app:
        await deliver(app, customer_mail())
        link = await page_link(relay)  # before the reply, whose mail the relay would catch too
        await actions.reply(app.desk, actor=BOB, number=1, text=REPLY)
        await actions.note(app.desk, actor=BOB, number=1, text=NOTE)
        pages = {width: await browser.open_url(link, width=width, height=800) for width in WIDTHS}
        for width, page in pages.items():
            await page.screenshot(f"customer-page-{width}")
            await check_readable(page, width)
            assert await page.count("li.message") == 2  # the customer's mail and Bob's reply
            authors = [t.split(" · ")[0] for t in await page.texts(".meta")]
            assert authors == ["You", "Bob"]
            assert NOTE not in await page.evaluate("document.body.innerText")
            assert await page.texts(".status") == ["Waiting for your reply"]
            assert await page.count("main") == 1 and await page.count("h1") == 1
        # The phone gets one column: every message as wide as the page allows.
        phone = pages[375]
        box = await phone.evaluate("document.querySelector('li.message').getBoundingClientRect().width")
        assert 375 - 40 <= box <= 375

        # Its button, pressed as a customer would: the page that answers (a notice, another
        # status colour, the reopen button) must read as well.
        async def press_close(page) -> None:
            async with page.expect_navigation(wait_until="load"):
                await page.click("button[value=close]")

        await phone.call(press_close)
        await phone.screenshot("customer-page-closed-375")
        assert await phone.texts(".said") == ["Thank you: your request is closed."]
        assert await phone.texts(".status") == ["Closed"] and await phone.count("button[value=reopen]") == 1
        await check_readable(phone, 375)


async def test_the_not_found_page_reads_well_on_a_phone(tmp_path, relay, browser: Browser):
    async with running(page_settings(tmp_path, relay)) as app:
        page = await browser.open_url(f"{app.settings.web.public_url}/t/1.0.not-a-real-link", width=375)
        await page.screenshot("customer-page-not-found-375")
        assert await page.texts("h1") == ["This link does not open a request"]
        await check_readable(page, 375)


LONG_SUBJECT = ("Refund for order " + "#A1B2C3D4E5F6G7H8" * 8 + " " + "please " * 30)[:300]
LONG_URL = "https://shop.example.net/orders/track?id=" + "9f86d081884c7d659a2feaa0c55ad015" * 6
LONG_FILE = "scan-of-the-receipt-" + "page" * 40 + ".pdf"
LONG_NAMED = Actor("UKEA", "Keaweaheulu-Kalanimoku-Kahekili-Kamehameha-Kaumualii Smith")  # a 52-character first name


def long_mail() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ann Customer <ann1@example.net>"
    msg["To"] = f"help@{DOMAIN}"
    msg["Subject"] = LONG_SUBJECT
    msg["Message-ID"] = "<page.long@example.net>"
    msg.set_content(f"The tracking page says nothing:\n{LONG_URL}\nand the code was "
                    f"{'Z' * 120} (copied as it is).")
    msg.add_attachment(b"%PDF-1.4\n%%EOF\n", maintype="application", subtype="pdf", filename=LONG_FILE)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


async def test_a_long_subject_and_an_unbroken_url_still_fit_a_phone(tmp_path, relay, browser: Browser):
    assert len(LONG_SUBJECT) == 300
    async with running(page_settings(tmp_path, relay)) as app:
        await deliver(app, long_mail())
        link = await page_link(relay)
        await actions.reply(app.desk, actor=LONG_NAMED, number=1, text=f"That link, {LONG_URL}, is now fixed.")
        page = await browser.open_url(link, width=375)
        await page.screenshot("customer-page-long-375")
        assert await page.texts("h1") == [f"Request #1: {LONG_SUBJECT}"]
        body = await page.evaluate("document.body.innerText")
        assert LONG_URL in body and LONG_FILE in body and "Z" * 120 in body
        assert LONG_NAMED.name.split()[0] in body
        await check_readable(page, 375)
