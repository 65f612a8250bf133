"""The HTML digest in a real browser (issue acceptance 2): a seeded day's digest, with a
customer's hostile subject among its tickets, fits 640 px (and a phone's 375 px), draws its
bar chart, fetches nothing, and leaves a screenshot under test-artifacts/ to look at."""

from __future__ import annotations

from bot.core.digest_delivery import TEMPLATE
from bot.core.views import snapshot
from bot.outbound.compose import EmailComposer
from tests.browser import Browser, browser  # noqa: F401  (the fixture)
from bot.core import actions
from tests.core.test_digest import BOB, RULES, TUESDAY, arrive, at, digest_of, post_cards, seed
from tests.core.test_rules import helpdesk, utc

UNBROKEN = "x" * 300  # a subject with nowhere to wrap


async def test_the_digest_fits_640_pixels_and_draws_its_chart(tmp_path, fake_slack, browser: Browser):
    async with helpdesk(tmp_path, utc("2026-12-07 09:00"), slack_url=fake_slack.url, **RULES) as (desk, clock):
        await seed(desk, clock)
        await at(desk, clock, "2026-12-08 23:00")  # a late ticket: still Tuesday's, still open
        await arrive(desk, "mallory@example.net", subject=f'<img src="https://tracker.example/p.gif">{UNBROKEN}')
        await actions.set_priority(desk, actor=BOB, number=9, priority=1)  # among the heaviest
        await post_cards(desk, fake_slack)
        await at(desk, clock, "2026-12-09 08:00")
        report = await digest_of(desk, TUESDAY)
    _, html = EmailComposer(from_address="support@example.com", from_name="Support",
                            loop_marker="x").render(TEMPLATE, {"report": snapshot(report)})
    assert any(t.subject.endswith(UNBROKEN) for t in report.heaviest)

    for width in (640, 375):
        page = await browser.open(html, width=width)
        widths = await page.widths()
        await page.screenshot(f"digest-{width}")
        assert widths.overflow == 0, f"{widths.scroll_width} px wide at a {width} px viewport"
        assert await page.count("#chart tr.bar-row") == 7
        # Bars only where there is volume: Monday 3 new + 1 resolved, Tuesday 5 new + 2 resolved.
        assert await page.count("#chart td.bar") == 4
        bar_widths = await page.evaluate(
            "[...document.querySelectorAll('#chart td.bar')].map(td => td.getBoundingClientRect().width)")
        assert all(w > 0 for w in bar_widths) and max(bar_widths) > 2 * min(bar_widths)
        assert await page.count("#chart table.sla-bar") == 2  # the days with an SLA verdict
        assert await page.count("img") == 0  # the customer's image tag is text
        assert page.blocked == []
