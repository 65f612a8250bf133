"""Render HTML in a real headless Chromium for tests: HTML digest emails, later the customer page.

The ``browser`` fixture opens pages in Debian's Chromium (/usr/bin/chromium), driven by Playwright
for Python through ``executable_path`` (Playwright's own browser download is never used)::

    from tests.browser import browser  # noqa: F401  (the fixture)

    async def test_digest_fits_a_phone(browser):
        page = await browser.open(html, width=375)       # HTML text, or a Path to an .html file
        assert (await page.widths()).overflow == 0       # no horizontal scrolling at 375 px
        assert await page.count("table.tickets tr") == 3
        await page.screenshot("digest-375")              # → $DESKBELL_TEST_ARTIFACTS/<module>/digest-375.png
        assert await page.accessibility_violations() == []   # axe-core: nothing serious or critical

One Chromium serves the whole session (started on first use, stopped when pytest ends); each
``open()`` gets a fresh browser context (no shared cookies or cache), closed when the test ends.
Screenshots are kept under ``$DESKBELL_TEST_ARTIFACTS`` (default ``<repo>/test-artifacts/``,
git-ignored) so that a failing run can be looked at.

Chromium ends with Playwright's driver process, which ends with pytest, even on ``kill -9``.
Without Chromium (or Playwright) the fixture skips, except under CI, where that is a failure:
./scripts/test installs Debian's ``chromium`` when it is missing. The accessibility check runs
axe-core, whose script comes with the ``axe-playwright-python`` package of the test extra; without
it that check skips in the same way.

Must not: reach the network (every request other than file:, data:, about:, blob: and loopback
http(s) is aborted and listed in ``page.blocked``), download a browser, touch the user's Chromium
profile (each run gets a temporary one), or leave a Chromium process behind. Nor may the
accessibility check loosen what it checks: axe-core is evaluated from outside the page (the way
DevTools runs a snippet), so a page keeps its own Content-Security-Policy, ``script-src`` and all.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent

# Generous, but far below pytest's patience: a page that never loads fails the test, not the run.
TIMEOUT_MS = 15_000

T = TypeVar("T")


def chromium_binary() -> str | None:
    """Debian's Chromium (a launcher script that execs /usr/lib/chromium/chromium), if installed."""
    found = shutil.which("chromium")
    if found is None and os.access("/usr/bin/chromium", os.X_OK):
        found = "/usr/bin/chromium"
    return found


def artifacts_dir() -> Path:
    """Where tests keep what a person may want to look at after a run (git-ignored)."""
    return Path(os.environ.get("DESKBELL_TEST_ARTIFACTS") or REPO / "test-artifacts")


def _allowed(url: str) -> bool:
    """Local documents and loopback servers only: a test must not depend on, or leak to, the
    network (a digest's external images are exactly what a test may want to notice)."""
    parts = urlsplit(url)
    if parts.scheme in ("file", "data", "about", "blob"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Widths:
    """The document's width against the viewport's, in CSS pixels."""

    scroll_width: int
    viewport_width: int

    @property
    def overflow(self) -> int:
        """How far the page scrolls sideways: 0 when it fits."""
        return max(0, self.scroll_width - self.viewport_width)


class Violation(NamedTuple):
    """One axe-core rule a page breaks, and where."""

    rule: str                  # axe's rule id: "color-contrast", "image-alt", "label", …
    impact: str                # "minor", "moderate", "serious" or "critical"
    help: str                  # what the rule asks for, in a sentence
    targets: tuple[str, ...]   # a CSS selector for each element that breaks it


SERIOUS = ("serious", "critical")


@functools.cache
def _axe_source() -> str:
    """axe-core's script, as the ``axe-playwright-python`` package ships it (read once)."""
    try:
        from importlib.resources import files

        return files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")
    except (ImportError, OSError) as e:
        missing = f"axe-core is not available ({e}): pip install -e '.[test]' brings axe-playwright-python"
    if _in_ci():
        pytest.fail(f"the accessibility checks need axe-core in CI: {missing}")
    pytest.skip(missing)


# axe.run() over the whole document, violations only (passes and "incomplete" would fill the
# result with thousands of nodes to ship back for nothing).
_AXE_RUN = """async impacts => {
    const results = await axe.run(document, {resultTypes: ["violations"]});
    return results.violations
        .filter(v => impacts === null || impacts.includes(v.impact))
        .map(v => [v.id, v.impact, v.help, v.nodes.map(n => n.target.flat().join(" >>> "))]);
}"""


class Chromium:
    """One headless Chromium, driven by Playwright on an event loop and thread of its own.

    Its own loop because pytest-asyncio gives every test a new loop and Playwright's objects
    belong to the loop that made them: this way one browser (about half a second to start)
    serves every test of the session, whatever loop the test runs on.
    """

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chromium", daemon=True)
        self._playwright: Any = None
        self._browser: Any = None
        # Chromium keeps crash reports under $XDG_CONFIG_HOME/chromium and GTK a dconf file under
        # $XDG_CACHE_HOME, whatever --user-data-dir says: both go here, not into the user's home.
        self._home = tempfile.mkdtemp(prefix="deskbell-chromium-")

    def start(self) -> Chromium:
        self._thread.start()
        try:
            self.run_sync(self._start(), timeout=60)
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=self.executable,
            headless=True,
            # Root in a container has no user namespaces for Chromium's sandbox; the pages are
            # our own test HTML.
            chromium_sandbox=False,
            # Docker's /dev/shm is 64 MB, too small for Chromium; Debian's launcher means to add
            # this flag then, but its check fails where /dev/shm is mounted twice.
            args=["--disable-dev-shm-usage"],
            env={**os.environ, "XDG_CONFIG_HOME": f"{self._home}/config", "XDG_CACHE_HOME": f"{self._home}/cache"},
            timeout=TIMEOUT_MS,
        )

    def stop(self) -> None:
        """Close the browser and Playwright's driver (both processes end), then the loop."""
        if self._thread.is_alive():
            try:
                self.run_sync(self._stop(), timeout=30)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()
            shutil.rmtree(self._home, ignore_errors=True)

    async def _stop(self) -> None:
        try:
            if self._browser is not None:
                await self._browser.close()
        finally:
            if self._playwright is not None:
                await self._playwright.stop()

    def run_sync(self, coro: Awaitable[T], timeout: float = TIMEOUT_MS / 1000 * 2) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    async def run(self, coro: Awaitable[T]) -> T:
        """Run ``coro`` on the browser's loop and wait for it from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))  # type: ignore[arg-type]

    async def new_context(self, width: int, height: int) -> Any:
        context = await self._browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=1,  # a screenshot's pixels are CSS pixels
        )
        context.set_default_timeout(TIMEOUT_MS)
        return context


class Page:
    """An open page. Every method is a coroutine run on the browser's own loop."""

    def __init__(self, chromium: Chromium, context: Any, page: Any, artifacts: Path,
                 blocked: list[str]) -> None:
        self._chromium = chromium
        self._context = context
        self._page = page
        self._artifacts = artifacts
        self.blocked = blocked  # URLs the page tried to fetch and was refused (not local)

    async def evaluate(self, js: str, arg: Any = None) -> Any:
        """The value of a JavaScript expression, or of a function called with ``arg``."""
        return await self._chromium.run(self._page.evaluate(js, arg))

    async def widths(self) -> Widths:
        """The document's scrollWidth (the widest of <html> and <body>, so that an
        ``overflow: hidden`` on one does not hide the other's) against the viewport's width."""
        scroll, viewport = await self.evaluate(
            "[Math.max(document.documentElement.scrollWidth, document.body ? document.body.scrollWidth : 0),"
            " document.documentElement.clientWidth]"
        )
        return Widths(scroll, viewport)

    async def count(self, selector: str) -> int:
        """How many elements match a CSS selector."""
        return await self.evaluate("s => document.querySelectorAll(s).length", selector)

    async def texts(self, selector: str) -> list[str]:
        """The rendered text (innerText) of every element matching a CSS selector."""
        return await self.evaluate("s => [...document.querySelectorAll(s)].map(e => e.innerText)", selector)

    async def screenshot(self, name: str) -> Path:
        """Save the whole page (not just the viewport) as ``<artifacts>/<name>.png``; its path."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "page"
        path = self._artifacts / f"{safe}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await self._chromium.run(
            self._page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        )
        return path

    async def accessibility_violations(self, impact: tuple[str, ...] | None = SERIOUS) -> list[Violation]:
        """What axe-core finds wrong with the page: its violations of the impacts given (serious
        and critical ones by default; ``None`` for every impact), in the order axe reports them.

        axe-core's default rule set runs: WCAG 2.x A and AA (text contrast below 4.5:1, an image
        without ``alt``, a field without a label, no ``lang``, …) and axe's best practices; its
        AAA and experimental rules stay off, as they do by default.
        The script is evaluated through the DevTools protocol, not added as a ``<script>``, so it
        runs under the page's own CSP (``default-src 'none'`` included) and leaves no trace in
        the document for the rules to see; evaluating it again on the same page is harmless.
        """
        source = _axe_source()
        found = await self.evaluate("() => typeof window.axe === 'object'")
        if not found:
            await self.evaluate(source)
        rows = await self.evaluate(_AXE_RUN, None if impact is None else list(impact))
        return [Violation(rule, level, text, tuple(targets)) for rule, level, text, targets in rows]

    async def call(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """For what the methods above do not offer: ``await fn(playwright_page)`` on the browser's
        loop (Playwright's objects must not be used from the test's own loop)."""
        return await self._chromium.run(fn(self._page))

    async def close(self) -> None:
        await self._chromium.run(self._context.close())


class Browser:
    """What the ``browser`` fixture gives a test: opens pages; closes them when the test ends."""

    def __init__(self, chromium: Chromium, artifacts: Path) -> None:
        self.chromium = chromium
        self.artifacts = artifacts
        self._contexts: list[Any] = []

    async def open(self, document: str | os.PathLike[str], *, width: int = 640, height: int = 800) -> Page:
        """Render HTML text, or the .html file at a path, in a viewport ``width`` × ``height``."""
        if isinstance(document, os.PathLike):
            url = Path(document).resolve().as_uri()  # relative images and stylesheets then resolve
            return await self.chromium.run(self._open(url, None, width, height))
        return await self.chromium.run(self._open(None, document, width, height))

    async def open_url(self, url: str, *, width: int = 640, height: int = 800) -> Page:
        """Load a page from a server on loopback (a Deskbell the test runs)."""
        if not _allowed(url):
            raise ValueError(f"only local and loopback pages are opened in tests, not {url}")
        return await self.chromium.run(self._open(url, None, width, height))

    async def _open(self, url: str | None, html: str | None, width: int, height: int) -> Page:
        context = await self.chromium.new_context(width, height)
        self._contexts.append(context)
        blocked: list[str] = []

        async def refuse(route: Any) -> None:
            blocked.append(route.request.url)
            await route.abort("blockedbyclient")

        await context.route(lambda u: not _allowed(u), refuse)
        page = await context.new_page()
        if html is not None:
            await page.set_content(html, wait_until="load")
        else:
            await page.goto(url, wait_until="load")
        # Measurements need the final layout: web fonts change text widths once they load.
        await page.evaluate("document.fonts.ready.then(() => null)")
        return Page(self.chromium, context, page, self.artifacts, blocked)

    def close_all(self) -> None:
        contexts, self._contexts = self._contexts, []
        errors = []
        for context in contexts:  # every one, even after one fails to close
            try:
                self.chromium.run_sync(context.close())
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


_SESSION_CHROMIUM = pytest.StashKey["Chromium | BaseException"]()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def _session_chromium(config: pytest.Config) -> Chromium:
    """The session's Chromium, started on first use and stopped when pytest ends."""
    found = config.stash.get(_SESSION_CHROMIUM, None)
    if found is None:
        executable = chromium_binary()
        try:
            import playwright  # noqa: F401
        except ImportError:
            executable = None
            missing = "Playwright for Python is not installed (pip install -e '.[test]')"
        else:
            missing = "Chromium is not installed (Debian: apt-get install chromium); ./scripts/test installs it"
        if executable is None:
            if _in_ci():
                pytest.fail(f"the browser tests need Chromium and Playwright in CI: {missing}")
            pytest.skip(missing)
        try:
            found = Chromium(executable).start()
        except Exception as e:
            found = e
        else:
            config.add_cleanup(found.stop)
        # A Chromium that cannot start is remembered, so later tests fail at once, not one by one.
        config.stash[_SESSION_CHROMIUM] = found
    if isinstance(found, BaseException):
        pytest.fail(f"Chromium ({chromium_binary()}) did not start: {found}")
    return found


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Opens pages in the session's headless Chromium; screenshots go to
    ``<artifacts>/<test module>/``. Skips without Chromium, except under CI (then it fails)."""
    chromium = _session_chromium(request.config)
    handle = Browser(chromium, artifacts_dir() / request.module.__name__.rpartition(".")[2])
    try:
        yield handle
    finally:
        handle.close_all()
