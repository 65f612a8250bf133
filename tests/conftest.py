"""Shared fixtures: a fake Slack, a relay sink, and a whole Deskbell running on loopback port 0.

``DESKBELL_TEST_DATABASE`` picks the database every test's settings get: ``sqlite`` (default, a
file in the test's tmp_path) or ``postgresql`` (a fresh database per test). Either starts at
head, a copy of one the session migrated, as ``deskbell db upgrade`` leaves it: the app does not
migrate PostgreSQL by itself, and migrating a new SQLite file from scratch for every test would
be much of the suite's time (``settings_dict(..., migrated=False)`` leaves that to the app).
Tests about SQLite itself are marked ``only_on_sqlite``; they are skipped on PostgreSQL. Tests
about PostgreSQL itself (``pg_url``, ``postgres_server``) run in either pass, except where
``DESKBELL_TEST_SKIP_POSTGRES`` is set: ./scripts/test sets it for its SQLite pass.

The PostgreSQL pass runs only the tests that reach the test database; the others (config,
mail parsing, rendering, the CLI's help...) run the same code in both passes, so they are left
to the SQLite pass (see ``uses_database``: found by itself, ``pytest.mark.database`` where not).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import io
import os
import shutil
import smtplib
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from bot.app import Deskbell
from bot.clock import Clock
from bot.config import Settings
from bot.core import spool
from bot.store import migrate
from bot.store.db import Database
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    try:
        pg.shutdown()
    finally:
        _SQLiteTemplate.remove()
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and _Sorting.left_out:
        # Every test chosen runs in the SQLite pass only (./scripts/test tests/test_config.py):
        # nothing to do here is no failure.
        session.exitstatus = pytest.ExitCode.OK


# ----- which tests the PostgreSQL pass runs ------------------------------------------------------

# A test reaches the test database through one of these fixtures, or through one of these helpers
# (named by the test, its fixtures, or the suite's functions and classes they name in turn).
DATABASE_FIXTURES = frozenset({"app_settings", "pg_url", "pg_databases", "postgres_server"})
DATABASE_HELPERS = frozenset({"database_url", "settings_dict", "database_value", "rename_table"})
_EVERYONES = frozenset({"_postgresql_for_each_test"})  # autouse; names pg_databases for every test
_USES_DATABASE = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "database: the test reaches the test database in a way tests/conftest.py cannot "
                   "see (uses_database), so the PostgreSQL pass runs it too")


def uses_database(item: pytest.Item) -> bool:
    """Whether ``item`` reaches the test database: it asks for a database fixture, or it, its
    fixtures or its parameters name a database helper or fixture (directly or through the suite's
    own functions and classes), or it is marked ``database``. The SQLite pass checks the answer:
    a test said not to that makes a database fails there (``database_url``)."""
    if _USES_DATABASE not in item.stash:
        item.stash[_USES_DATABASE] = _uses_database(item)
    return item.stash[_USES_DATABASE]


def _uses_database(item: pytest.Item) -> bool:
    if item.get_closest_marker("database") or not isinstance(item, pytest.Function):
        return True
    if DATABASE_FIXTURES & set(item.fixturenames):
        return True
    code: list[Any] = [item.function]
    code += [d.func for name, defs in item._fixtureinfo.name2fixturedefs.items()
             if name not in _EVERYONES for d in defs]
    code += [value for value in getattr(getattr(item, "callspec", None), "params", {}).values()
             if _of_the_suite(value)]
    return _reaches_database(code)


def _of_the_suite(obj: Any) -> bool:
    return ((inspect.isfunction(obj) or inspect.isclass(obj))
            and getattr(obj, "__module__", "").partition(".")[0] == "tests")


def _suite_module(obj: Any) -> bool:
    return inspect.ismodule(obj) and obj.__name__.partition(".")[0] == "tests"


def _names(code: CodeType) -> tuple[set[str], set[str]]:
    """The global and attribute names ``code`` uses, and its string constants (a fixture asked
    for by name), nested functions included."""
    names, strings = set(code.co_names), set()
    for const in code.co_consts:
        if isinstance(const, str):
            strings.add(const)
        elif isinstance(const, CodeType):
            inner_names, inner_strings = _names(const)
            names |= inner_names
            strings |= inner_strings
    return names, strings


def _reaches_database(start: list[Any]) -> bool:
    seen: set[int] = set()
    todo = [inspect.unwrap(f) for f in start]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if inspect.isclass(obj):
            for member in vars(obj).values():
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    todo.append(inspect.unwrap(member))
            continue
        if not inspect.isfunction(obj):
            continue
        names, strings = _names(obj.__code__)
        if names & (DATABASE_HELPERS | DATABASE_FIXTURES) or strings & DATABASE_FIXTURES:
            return True
        for name in names:
            found = obj.__globals__.get(name)
            # A module of the suite (helpers.make_settings(...)): what the code names in it.
            candidates = [getattr(found, n, None) for n in names] if _suite_module(found) else [found]
            todo += [inspect.unwrap(c) for c in candidates if _of_the_suite(c)]
    return False


class _Sorting:
    left_out = 0  # tests the PostgreSQL pass leaves to the SQLite one
    database_free = False  # the running test is said not to reach the database


@pytest.hookimpl(trylast=True)  # after -k and -m: what is left of what was asked for
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ON_POSTGRESQL:
        return
    kept = [item for item in items if uses_database(item)]
    if len(kept) < len(items):
        left = [item for item in items if not uses_database(item)]
        config.hook.pytest_deselected(items=left)
        items[:] = kept
        _Sorting.left_out = len(left)


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    if _Sorting.left_out:
        return (f"PostgreSQL pass: {_Sorting.left_out} tests that never reach the database are left "
                "to the SQLite pass")
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _Sorting.database_free = not uses_database(item)
    try:
        return (yield)
    finally:
        _Sorting.database_free = False


_WRONGLY_SORTED = (
    "this test reaches the test database, yet conftest.py's uses_database found none of "
    f"{', '.join(sorted(DATABASE_FIXTURES | DATABASE_HELPERS))} in its code or its fixtures' code, "
    "so the PostgreSQL pass would leave it out: mark it @pytest.mark.database")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # Skipped for wanting PostgreSQL in the SQLite pass (tests/pg.py), by a test the PostgreSQL
    # pass would leave out: it would never run at all.
    if (report.skipped and isinstance(report.longrepr, tuple)
            and "DESKBELL_TEST_SKIP_POSTGRES" in report.longrepr[2] and not uses_database(item)):
        report.outcome = "failed"
        report.longrepr = _WRONGLY_SORTED
    return report


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


class _SQLiteTemplate:
    """A SQLite file the session migrated to head once; a test's ``deskbell.db`` is a copy."""

    path: Path | None = None

    @classmethod
    def copy_to(cls, target: Path) -> None:
        if cls.path is None:
            path = Path(tempfile.mkdtemp(prefix="deskbell-sqlite-")) / "template.db"

            async def upgrade() -> None:
                db = Database(f"sqlite+aiosqlite:///{path}")
                try:
                    await migrate.upgrade(db)
                finally:
                    await db.dispose()

            # On a loop of its own: the caller may be a coroutine, inside the test's loop.
            with concurrent.futures.ThreadPoolExecutor(1) as thread:
                thread.submit(asyncio.run, upgrade()).result()
            with closing(sqlite3.connect(path)) as con:  # all of it in the one file
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cls.path = path
        shutil.copyfile(cls.path, target)

    @classmethod
    def remove(cls) -> None:
        if cls.path is not None:
            shutil.rmtree(cls.path.parent, ignore_errors=True)
            cls.path = None


def database_url(tmp_path: Path, *, migrated: bool = True) -> str:
    """The database a test's settings point at: SQLite's ``deskbell.db`` in ``tmp_path``, or on
    PostgreSQL a fresh database (the same one for the same ``tmp_path`` in one test, as the
    file would be); at head, except a SQLite file asked for with ``migrated=False``, which is
    left for the app to make."""
    if _Sorting.database_free:
        pytest.fail(_WRONGLY_SORTED, pytrace=False)
    if not ON_POSTGRESQL:
        path = tmp_path / "deskbell.db"
        if migrated and not path.exists():
            _SQLiteTemplate.copy_to(path)
        return f"sqlite+aiosqlite:///{path}"
    if _TestDatabases.maker is None:
        raise RuntimeError("a PostgreSQL test database is only made while a test runs")
    if tmp_path not in _TestDatabases.made:
        _TestDatabases.made[tmp_path] = _TestDatabases.maker.create()
    return _TestDatabases.made[tmp_path]


def settings_dict(tmp_path: Path, *, slack_url: str | None = None, relay_port: int = 9,
                  slack_token: str | None = "xoxb-test-token", migrated: bool = True,
                  **overrides: Any) -> dict[str, Any]:
    given = overrides.get("database")
    data: dict[str, Any] = {
        # Not made when the test names its own database (a PostgreSQL one would be wasted).
        "database": {} if isinstance(given, dict) and "url" in given else {
            "url": database_url(tmp_path, migrated=migrated)},
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
