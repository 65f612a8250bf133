"""Shared fixtures: a fake Slack, a relay sink, and a whole Deskbell running on loopback port 0.

``DESKBELL_TEST_DATABASE`` picks the database every test's settings get: ``sqlite`` (default, a
file in the test's tmp_path) or ``postgresql`` (a fresh database per test, already migrated to
head, as ``deskbell db upgrade`` leaves it: the app does not migrate PostgreSQL by itself).
Tests about SQLite itself are marked ``only_on_sqlite``; they are skipped on PostgreSQL. Tests
about PostgreSQL itself (``pg_url``, ``postgres_server``) run in either pass, except where
``DESKBELL_TEST_SKIP_POSTGRES`` is set: ./scripts/test sets it for its SQLite pass.
"""

from __future__ import annotations

import asyncio
import io
import os
import smtplib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import pytest

from bot.app import Deskbell
from bot.clock import Clock
from bot.config import Settings
from bot.core import spool
from tests.fakes import FakeSlack, RelaySink
from tests.imapserver import Dovecot, dovecot_binary
from tests import pg
from tests.pg import Databases, pg_databases, pg_url, postgres_server, psql  # noqa: F401  (fixtures)

DOMAIN = "support.example.com"

TEST_DATABASE = os.environ.get("DESKBELL_TEST_DATABASE", "sqlite")
if TEST_DATABASE not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"DESKBELL_TEST_DATABASE must be sqlite or postgresql, not {TEST_DATABASE!r}")
ON_POSTGRESQL = TEST_DATABASE == "postgresql"


def only_on_sqlite(reason: str) -> pytest.MarkDecorator:
    """For a test about SQLite itself (its file, its locks, its query planner)."""
    return pytest.mark.skipif(ON_POSTGRESQL, reason=f"about SQLite itself: {reason}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    pg.shutdown()


class _TestDatabases:
    """The PostgreSQL databases the running test was given, by the tmp_path they stand for."""

    maker: Databases | None = None
    made: dict[Path, str] = {}


@pytest.fixture(autouse=True)
def _postgresql_for_each_test(request: pytest.FixtureRequest) -> Any:
    if not ON_POSTGRESQL:
        yield
        return
    _TestDatabases.maker = request.getfixturevalue("pg_databases")
    try:
        yield
    finally:
        for url in _TestDatabases.made.values():
            _TestDatabases.maker.drop(url)
        _TestDatabases.made.clear()
        _TestDatabases.maker = None


def database_url(tmp_path: Path) -> str:
    """The database a test's settings point at: SQLite's ``deskbell.db`` in ``tmp_path``, or on
    PostgreSQL a fresh database at head (the same one for the same ``tmp_path`` in one test,
    as the file would be)."""
    if not ON_POSTGRESQL:
        return f"sqlite+aiosqlite:///{tmp_path / 'deskbell.db'}"
    if _TestDatabases.maker is None:
        raise RuntimeError("a PostgreSQL test database is only made while a test runs")
    if tmp_path not in _TestDatabases.made:
        _TestDatabases.made[tmp_path] = _TestDatabases.maker.create()
    return _TestDatabases.made[tmp_path]


def settings_dict(tmp_path: Path, *, slack_url: str | None = None, relay_port: int = 9,
                  slack_token: str | None = "xoxb-test-token", **overrides: Any) -> dict[str, Any]:
    given = overrides.get("database")
    data: dict[str, Any] = {
        # Not made when the test names its own database (a PostgreSQL one would be wasted).
        "database": {} if isinstance(given, dict) and "url" in given else {"url": database_url(tmp_path)},
        "smtp_in": {"listen": "127.0.0.1:0", "domains": [DOMAIN]},
        "web": {"listen": "127.0.0.1:0"},
        "email_out": {"host": "127.0.0.1", "port": relay_port, "from_address": f"support@{DOMAIN}",
                      "reply_domain": DOMAIN, "from_name": "Example Support", "timeout_seconds": 5},
        "slack": {"bot_token": slack_token if slack_url and slack_token else "",
                  "api_url": slack_url or "https://slack.invalid/api/",
                  "fallback_channel": "#helpdesk"},
        "handler_groups": [
            {"name": "support", "slack_channel": "#support", "email_addresses": [f"help@{DOMAIN}"]},
            {"name": "sales", "slack_channel": "#sales", "email_addresses": [f"sales@{DOMAIN}"]},
        ],
        "outbox": {"backoff_base_seconds": 0.05, "backoff_max_seconds": 0.4, "max_attempts": 30,
                   "lease_seconds": 5},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack().start()
    yield slack
    await slack.stop()


@pytest.fixture
async def relay() -> AsyncIterator[RelaySink]:
    sink = await RelaySink().start()
    yield sink
    await sink.stop()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A real IMAP server for the session (tests/imapserver.py): Dovecot on loopback, in a
    temporary directory. Each test makes its own users (``dovecot.add_user()``), so tests do not
    see each other's mail. Without Dovecot the test is skipped, except under CI, where that is a
    failure: ./scripts/test installs it."""
    if dovecot_binary() is None:
        reason = "Dovecot is not installed (Debian: apt-get install dovecot-imapd); ./scripts/test installs it"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"the IMAP tests need Dovecot in CI: {reason}")
        pytest.skip(reason)
    server = Dovecot().start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def running(settings: Settings, *, roles: tuple[str, ...] = ("smtp", "web", "worker"),
                  clock: Clock | None = None) -> AsyncIterator[Deskbell]:
    """Run a whole Deskbell on this event loop until the block ends."""
    app = Deskbell(settings, clock=clock or Clock())
    ready = asyncio.Event()
    task = asyncio.create_task(app.serve(roles, out=io.StringIO(), on_ready=lambda _: ready.set()))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises what went wrong at start-up
    try:
        yield app
    finally:
        app.stop()
        await asyncio.wait_for(task, 15)


@pytest.fixture
def app_settings(tmp_path: Path, fake_slack: FakeSlack, relay: RelaySink) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings.model_validate(settings_dict(tmp_path, slack_url=fake_slack.url,
                                                     relay_port=relay.port, **overrides))
    return make


def send_mail(port: int, raw: bytes, *, mail_from: str = "alice@example.net",
              rcpt: tuple[str, ...] = (f"help@{DOMAIN}",)) -> tuple[int, bytes]:
    """Speak SMTP with the stdlib client (blocking: call through ``asyncio.to_thread``)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example.net")
        code, reply = client.mail(mail_from)
        if code != 250:
            return code, reply
        for r in rcpt:
            code, reply = client.rcpt(r)
            if code != 250:
                return code, reply
        return client.data(raw)


async def settle(app: Deskbell, timeout: float = 15.0) -> None:
    """Wait until everything the doors accepted has been ingested (the spool is empty). A
    door-only app has no intake worker: then ingest here, as a worker process would."""
    if app.intake is None:
        await app.make_intake().drain(timeout=timeout)
        return
    await wait_until(lambda: _spool_empty(app), timeout=timeout)


async def _spool_empty(app: Deskbell) -> bool:
    return await spool.pending_count(app.db) == 0


async def deliver(app: Deskbell, raw: bytes, **kwargs: Any) -> tuple[int, bytes]:
    """Send one message to the app's SMTP door and wait until it has been ingested."""
    answer = await asyncio.to_thread(send_mail, app.listening.smtp[1], raw, **kwargs)
    await settle(app)
    return answer


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def database_value(tmp_path: Path, sql: str) -> Any:
    """The first column of the first row ``sql`` gives, read from outside the app (sqlite3 on
    the test's file, or psql on its PostgreSQL database); whole numbers come back as ``int``."""
    if ON_POSTGRESQL:
        out = psql(database_url(tmp_path), sql).strip()
        return int(out) if out.lstrip("-").isdigit() else out
    with closing(sqlite3.connect(tmp_path / "deskbell.db")) as con:
        return con.execute(sql).fetchone()[0]


async def rename_table(database: Path, old: str, new: str) -> None:
    """Break (or mend) the running app's database from outside, as an operator's mistake would.

    ``database`` is the test's SQLite file (``tmp_path / "deskbell.db"``); on PostgreSQL, the
    database made for that ``tmp_path``. Runs in a thread: a blocking call on the event loop
    would wait for a lock that the app, stalled on that same loop, could never release.
    """
    if ON_POSTGRESQL:
        url = database_url(database.parent)
        await asyncio.to_thread(psql, url, f"ALTER TABLE {old} RENAME TO {new}")
        return

    def rename() -> None:
        with closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as con:
            con.execute(f"ALTER TABLE {old} RENAME TO {new}")

    await asyncio.to_thread(rename)
