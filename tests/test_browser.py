"""The headless-Chromium harness (tests/browser.py) measures and captures what it renders."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from tests.browser import Browser, browser  # noqa: F401  (the fixture)

FITS = """<!doctype html><html><body style="margin:0">
<div style="width:640px;height:50px;background:#36c"></div></body></html>"""

WIDE_TABLE = """<!doctype html><html><body style="margin:0">
<table style="width:900px;border-collapse:collapse"><tr><td>#1</td><td>Printer on fire</td></tr></table>
</body></html>"""


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


async def test_a_page_as_wide_as_the_viewport_does_not_overflow(browser: Browser) -> None:
    page = await browser.open(FITS, width=640)
    widths = await page.widths()
    assert (widths.scroll_width, widths.viewport_width, widths.overflow) == (640, 640, 0)


async def test_a_wider_table_overflows_by_its_excess(browser: Browser) -> None:
    page = await browser.open(WIDE_TABLE, width=640)
    widths = await page.widths()
    assert widths.viewport_width == 640
    assert widths.overflow == 260


async def test_the_screenshot_is_a_png_of_the_whole_page(browser: Browser) -> None:
    page = await browser.open(
        '<body style="margin:0"><div style="width:100%;height:1500px;background:#eee"></div></body>',
        width=480, height=600,
    )
    path = await page.screenshot("screenshot 480/tall")
    assert path.parent == browser.artifacts and path.name == "screenshot-480-tall.png"
    assert png_size(path) == (480, 1500)  # full page, not the 600 px viewport


async def test_elements_are_found_by_css_selector(browser: Browser) -> None:
    page = await browser.open(
        "<ul class=tickets><li>#1 Printer</li><li class=urgent>#2 <b>Server down</b></li></ul><p>No more</p>"
    )
    assert await page.count("ul.tickets li") == 2
    assert await page.count("table") == 0
    assert await page.texts("li.urgent") == ["#2 Server down"]
    assert await page.evaluate("document.querySelector('p').getBoundingClientRect().width") > 0


async def test_a_file_loads_with_its_relative_stylesheet(browser: Browser, tmp_path: Path) -> None:
    (tmp_path / "wide.css").write_text("body { margin: 0 } .box { width: 700px; height: 10px }")
    (tmp_path / "digest.html").write_text('<link rel=stylesheet href="wide.css"><div class=box></div>')
    page = await browser.open(tmp_path / "digest.html", width=600)
    assert (await page.widths()).overflow == 100


async def test_requests_off_this_machine_are_refused_and_listed(browser: Browser) -> None:
    page = await browser.open(
        '<img src="https://images.example.com/logo.png"><p>Digest</p>'
        '<script>fetch("http://198.51.100.7/track").catch(() => {})</script>'
    )
    await page.evaluate("new Promise(r => setTimeout(r, 50))")  # let the fetch be tried
    assert sorted(page.blocked) == ["http://198.51.100.7/track", "https://images.example.com/logo.png"]
    assert await page.texts("p") == ["Digest"]


@contextlib.asynccontextmanager
async def serving(answer: web.Response) -> AsyncIterator[str]:
    """``answer`` to every GET / on a loopback port; yields the page's URL."""
    async def page(request: web.Request) -> web.Response:
        return answer

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def test_a_page_served_on_loopback_opens(browser: Browser) -> None:
    async with serving(web.Response(text="<h1>Your ticket #7</h1>", content_type="text/html")) as url:
        page = await browser.open_url(url, width=375)
        assert await page.texts("h1") == ["Your ticket #7"]
        assert page.blocked == []


# Text at 1.5:1 on white, a picture with no text alternative, a field nobody can name.
INACCESSIBLE = """<!doctype html><html lang="en"><head><title>Your request</title></head><body><main>
<h1>Your request</h1>
<p style="color:#c6c6c6;background:#fff">Status: being worked on</p>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="40" height="40">
<form><input type="text" name="reply"></form>
</main></body></html>"""

ACCESSIBLE = """<!doctype html><html lang="en"><head><title>Your request</title></head><body><main>
<h1>Your request</h1>
<p style="color:#1f2328;background:#fff">Status: being worked on</p>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="40" height="40" alt="Example Support">
<form><label>Your reply <input type="text" name="reply"></label></form>
</main></body></html>"""


async def test_axe_names_each_serious_violation_and_where_it_is(browser: Browser) -> None:
    page = await browser.open(INACCESSIBLE, width=375)
    found = {v.rule: v for v in await page.accessibility_violations()}
    assert set(found) == {"color-contrast", "image-alt", "label"}, found
    assert found["color-contrast"].impact == "serious" and found["color-contrast"].targets == ("p",)
    assert found["image-alt"].impact == "critical" and found["image-alt"].targets == ("img",)
    assert found["label"].impact == "critical" and found["label"].targets == ("input",)
    assert all(v.help for v in found.values())


async def test_axe_finds_nothing_serious_on_a_page_that_has_it_right(browser: Browser) -> None:
    page = await browser.open(ACCESSIBLE, width=375)
    assert await page.accessibility_violations() == []
    everything = await page.accessibility_violations(impact=None)  # minor and moderate ones too
    assert all(v.impact in ("minor", "moderate") for v in everything), everything


async def test_axe_runs_on_a_page_whose_csp_forbids_every_script(browser: Browser) -> None:
    strict = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"}
    async with serving(web.Response(text=INACCESSIBLE, content_type="text/html", headers=strict)) as url:
        page = await browser.open_url(url, width=375)
        assert await page.evaluate("document.querySelectorAll('script').length") == 0
        rules = sorted(v.rule for v in await page.accessibility_violations())
        # The page's CSP still holds: a script tag it is given does not run.
        ran = await page.evaluate("""() => new Promise(done => {
            const s = document.createElement('script');
            s.textContent = 'window.ran = true';
            document.head.append(s);
            setTimeout(() => done(window.ran === true), 50);
        })""")
    assert rules == ["color-contrast", "image-alt", "label"]
    assert ran is False
