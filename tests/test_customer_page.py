"""The customer's signed ticket page (issue 22, acceptance 1, 3 and 5 for viewing).

A real mail goes through the SMTP door; its acknowledgement, caught by a loopback relay, carries
the link; the page is fetched over HTTP from the app's web server and rendered in headless
Chromium. No internal note, event or Slack id may reach it.
"""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from email.message import EmailMessage

import aiohttp

from bot.config import Settings
from bot.core import actions, page_links, reports
from bot.core.staff import Actor
from tests.browser import Browser, browser  # noqa: F401  (the fixture)
from tests.conftest import DOMAIN, deliver, running, settings_dict, wait_until

SECRET, OLD_SECRET = "page-secret-now", "page-secret-before"
NOTE = "Internal: this customer owes us 3 invoices, be firm."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_settings(tmp_path, relay, **overrides) -> Settings:
    port = free_port()
    return Settings.model_validate(settings_dict(
        tmp_path, relay_port=relay.port, web={"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"},
        customer_page={"link_secret": SECRET, "previous_link_secrets": [OLD_SECRET], "requests_per_minute": 40,
                       **overrides.pop("customer_page", {})}, **overrides))


def customer_mail(n: int = 1, subject: str = "Router <b>down</b> since Monday",
                  body: str = "No internet since 8am. <script>alert(1)</script>") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Ann Customer <ann{n}@example.net>"
    msg["To"] = f"help@{DOMAIN}"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<page.{n}@example.net>"
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


async def get(url: str) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, allow_redirects=False) as answer:
            return answer.status, dict(answer.headers), await answer.text()


async def test_the_acknowledgements_link_opens_the_ticket_without_internal_notes(tmp_path, relay, browser: Browser):
    async with running(page_settings(tmp_path, relay)) as app:
        await deliver(app, customer_mail())
        await actions.note(app.desk, actor=Actor("UALICE", "Alice Agent"), number=1, text=NOTE)
        [ack] = await relay.wait_for(1)
        link = re.search(r"https?://\S+/t/\S+", ack.get_body(("plain",)).get_content()).group(0)
        assert f'href="{link}"' in ack.get_body(("html",)).get_content()
        status, headers, html = await get(link)
        for width in (375, 1280):
            page = await browser.open(html, width=width)
            await page.screenshot(f"ticket-page-{width}")
            assert (await page.widths()).overflow == 0, width
            assert await page.texts("h1") == ["Request #1: Router <b>down</b> since Monday"]
    assert status == 200
    assert "No internet since 8am. &lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "Received, waiting for our team" in html
    assert NOTE not in html and "UALICE" not in html and "Alice Agent" not in html
    assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store" and "default-src 'none'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]  # no script of any origin runs


async def test_a_link_opens_only_its_own_ticket_and_every_bad_link_is_the_same_404(tmp_path, relay):
    async with running(page_settings(tmp_path, relay)) as app:
        await deliver(app, customer_mail(1))
        await deliver(app, customer_mail(2, subject="Second customer's problem"))
        now = app.clock.now()
        base = app.settings.web.public_url
        a = page_links.token(1, 1, secret=SECRET, now=now, ttl=timedelta(days=1))
        number, expires, mac = a.split(".")
        wrong = {
            "another ticket": f"2.{expires}.{mac}",
            "tampered": f"{number}.{expires}.{mac[:-2]}AA",
            "stretched": f"{number}.{int(expires, 16) + 3600:x}.{mac}",
            "expired": page_links.token(1, 1, secret=SECRET, now=now, ttl=timedelta(days=-1)),
            "rotated out": page_links.token(1, 1, secret="a-secret-no-longer-kept", now=now, ttl=timedelta(days=1)),
            "someone else's": page_links.token(1, 2, secret=SECRET, now=now, ttl=timedelta(days=1)),
            "no ticket": page_links.token(99, 1, secret=SECRET, now=now, ttl=timedelta(days=1)),
            "garbage": "not-a-token",
        }
        ok = await get(f"{base}/t/{a}")
        old = await get(f"{base}/t/{page_links.token(1, 1, secret=OLD_SECRET, now=now, ttl=timedelta(days=1))}")
        answers = {why: await get(f"{base}/t/{token}") for why, token in wrong.items()}
    assert ok[0] == 200 and "Router &lt;b&gt;down&lt;/b&gt;" in ok[2] and "Second customer" not in ok[2]
    assert old[0] == 200  # a link signed before the key was rotated still opens
    bodies = {(status, body) for status, _, body in answers.values()}
    assert len(bodies) == 1 and next(iter(bodies))[0] == 404, {k: v[0] for k, v in answers.items()}


async def test_one_address_asking_too_often_is_slowed_down(tmp_path, relay):
    async with running(page_settings(tmp_path, relay, customer_page={"requests_per_minute": 5})) as app:
        base = app.settings.web.public_url
        statuses = [(await get(f"{base}/t/1.0.guess{n}"))[0] for n in range(7)]
    assert statuses == [404] * 5 + [429, 429]


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


async def post(url: str, data: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=data, allow_redirects=False) as answer:
            return answer.status, answer.headers.get("Location", "")


async def test_close_and_reopen_from_the_page_once_each_and_only_with_its_form(tmp_path, relay, fake_slack):
    settings = page_settings(tmp_path, relay, slack_url=fake_slack.url)
    async with running(settings) as app:
        await deliver(app, customer_mail())
        [ack] = await relay.wait_for(1)
        link = re.search(r"https?://\S+/t/\S+", ack.get_body(("plain",)).get_content()).group(0)
        _, _, html = await get(link)
        fields = form_fields(html)
        assert 'value="close"' in html and 'value="reopen"' not in html
        refused = await post(link, {"action": "close", "nonce": fields["nonce"]})  # no CSRF token
        forged = await post(link, {"action": "close", "nonce": "n1", "csrf": "0" * 32})
        done = await post(link, {**fields, "action": "close"})
        again = await post(link, {**fields, "action": "close"})  # the same form, posted twice
        shown = await reports.show_ticket(app.db, 1, now=app.clock.now())
        _, _, after = await get(link.split("?")[0] + "?done=closed")
        reopen = await post(link, {**form_fields(after), "action": "reopen"})
        reopened = await reports.show_ticket(app.db, 1, now=app.clock.now())
        await wait_until(lambda: any("from their page" in str(c.args) for c in fake_slack.thread_replies()))
    assert refused[0] == 403 and forged[0] == 403
    assert done[0] == 303 and done[1].endswith("?done=closed") and again[0] == 303
    assert shown["status"] == "closed"
    closings = [e for e in shown["events"] if e["kind"] == "status" and e["data"]["to"] == "closed"]
    assert len(closings) == 1 and closings[0]["actor"] == "customer:ann1@example.net"
    assert "Thank you: your request is closed." in after and 'value="reopen"' in after
    assert reopen[0] == 303 and reopened["status"] == "open"
