"""A real PostgreSQL for tests: a throw-away cluster on loopback, and a database per test.

``DESKBELL_TEST_POSTGRES`` (``postgresql://user@host:port/db``) names a server to use instead.
Otherwise the first test that asks starts a cluster of its own with the PostgreSQL binaries of
this machine (``initdb``/``pg_ctl`` on PATH or under /usr/lib/postgresql/*/bin), in a temporary
directory, on a free loopback port, and stops it when the session ends. Without either, tests
that need it are skipped — except under ``CI=true``, where that is a failure: ./scripts/test
installs PostgreSQL when it is missing.

A test's database is a copy of a template migrated once per session (``CREATE DATABASE …
TEMPLATE``: a file copy, far quicker than running the migrations again), made and dropped over
one connection kept on a thread of its own, so synchronous code (fixtures, ``settings_dict``
inside a running test) can ask for one; the next copy is made while the test before runs. Must
not touch databases it did not create.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as the owner of the data directory instead.
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command] if shutil.which("runuser") else command


class Cluster:
    """A throw-away cluster: initdb, pg_ctl start, and stop at the end."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="deskbell-pg-"))
        self.port = _free_port()
        self.data = self.dir / "data"

    def start(self) -> str:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise FileNotFoundError("initdb/pg_ctl not found")
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", str(self.dir)], check=True)
        subprocess.run(_as_user([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust",
                                 "--no-sync", "-E", "UTF8", "--locale=C"]),
                       check=True, capture_output=True)
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        subprocess.run(_as_user([pg_ctl, "-D", str(self.data), "-o", options, "-w", "-t", "60",
                                 "-l", str(self.dir / "log"), "start"]), check=True, capture_output=True)
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        pg_ctl = _binary("pg_ctl")
        if pg_ctl and self.data.exists():
            subprocess.run(_as_user([pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]),
                           capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class _Shared:
    """The session's server and database maker, one per test process whichever module asks:
    test modules import these fixtures, and pytest would otherwise give each importing module
    a session fixture (and a cluster) of its own."""

    server: str | None = None
    cluster: Cluster | None = None
    failure: str | None = None
    databases: Databases | None = None


def shutdown() -> None:
    """End of the test session: drop the template, stop the cluster (idempotent)."""
    databases, cluster = _Shared.databases, _Shared.cluster
    _Shared.databases = _Shared.cluster = _Shared.server = None
    try:
        if databases is not None:
            databases.close()
    finally:
        if cluster is not None:
            cluster.stop()


def _server() -> str:
    if os.environ.get("DESKBELL_TEST_SKIP_POSTGRES"):
        # ./scripts/test runs these tests in its PostgreSQL pass, not twice.
        pytest.skip("PostgreSQL tests run in the PostgreSQL pass (DESKBELL_TEST_SKIP_POSTGRES)")
    given = os.environ.get("DESKBELL_TEST_POSTGRES")
    if given:
        return given
    if _Shared.server is None and _Shared.failure is None:
        cluster = Cluster()
        try:
            _Shared.server = cluster.start()
            _Shared.cluster = cluster
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(cluster.dir, ignore_errors=True)
            _Shared.failure = f"no PostgreSQL on this machine ({exc}); ./scripts/test installs it"
    if _Shared.server is None:
        _unavailable(_Shared.failure or "PostgreSQL could not be started")
    return _Shared.server


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """``postgresql://…/postgres`` of a server the tests may create databases on."""
    return _server()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed in CI and could not be used: {reason}")
    pytest.skip(reason)


def with_database(url: str, name: str, *, driver: str = "") -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0] + (f"+{driver}" if driver else "")
    return urlunsplit(parts._replace(scheme=scheme, path=f"/{name}"))


def psql(url: str, sql: str) -> str:
    """Run SQL with the ``psql`` client (no event loop needed in a sync fixture)."""
    client = _binary("psql")
    if client is None:
        raise FileNotFoundError("psql not found")
    url = url.replace("+asyncpg", "", 1)
    done = subprocess.run([client, url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True,
                          capture_output=True, text=True)
    return done.stdout


@contextmanager
def holding(url: str, statements: str) -> Iterator[Callable[[], None]]:
    """Another session that runs ``statements`` in a transaction (taking a lock, say) and keeps
    it open until ``release()`` or the end of the block, when it rolls back and ends (so
    session-level advisory locks go too)."""
    client = _binary("psql")
    if client is None:
        raise FileNotFoundError("psql not found")
    proc = subprocess.Popen([client, url.replace("+asyncpg", "", 1), "-qAt", "-v", "ON_ERROR_STOP=1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"BEGIN;\n{statements};\nSELECT 'held';\n")
    proc.stdin.flush()
    for line in proc.stdout:  # what the statements print comes first
        if line.strip() == "held":
            break
    else:
        proc.kill()
        raise RuntimeError(f"psql could not run {statements!r}")

    def release() -> None:
        if proc.poll() is None:
            proc.communicate("ROLLBACK;\n", timeout=30)

    try:
        yield release
    finally:
        release()


T = TypeVar("T")


class Databases:
    """Makes and drops databases on one server, from synchronous code."""

    def __init__(self, server: str) -> None:
        import asyncpg  # the "postgres" extra; imported here so SQLite-only runs need not have it

        self.server = server
        self.template: str | None = None
        self._asyncpg = asyncpg
        self._dsn = server.replace("+asyncpg", "", 1)
        self._conn: Any = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-admin", daemon=True)
        self._thread.start()
        self._lock = asyncio.Lock()
        self._pending: list[Any] = []
        self._spare: concurrent.futures.Future[str] | None = None  # the next copy, being made
        self._strategy = ""

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)

    async def _execute(self, sql: str) -> None:
        lost = (self._asyncpg.InterfaceError, self._asyncpg.PostgresConnectionError,
                self._asyncpg.exceptions.OperatorInterventionError, OSError)
        async with self._lock:  # one connection: one statement at a time
            for attempt in range(20):
                try:
                    if self._conn is None or self._conn.is_closed():
                        self._conn = await self._asyncpg.connect(self._dsn)
                    await self._conn.execute(sql)
                    return
                except lost:
                    # A test may restart the server (an outage drill): connect again.
                    self._conn = None
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.25)

    def create(self, *, template: bool = True) -> str:
        """A new database (a copy of the migrated template, or empty): its asyncpg URL. A copy
        is the one made in the background since the last was asked for (or, if that failed, a
        new one); the next is started at once."""
        if not (template and self.template):
            return self._call(self._create(copy=False))
        spare, self._spare = self._spare, None
        url = None
        if spare is not None:
            try:
                url = spare.result(timeout=120)
            except Exception:  # noqa: BLE001 — the server restarted meanwhile (an outage drill)
                url = None
        if url is None:
            url = self._call(self._create(copy=True))
        self._spare = asyncio.run_coroutine_threadsafe(self._create(copy=True), self._loop)
        return url

    async def _create(self, *, copy: bool) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        source = f" TEMPLATE {self.template}{self._strategy}" if copy else ""
        await self._execute(f"CREATE DATABASE {name}{source}")
        return with_database(self.server, name, driver="asyncpg")

    def drop(self, url: str) -> None:
        """Drop it in the background (nothing waits for that); connections left are cut."""
        name = urlsplit(url).path.lstrip("/")
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(asyncio.run_coroutine_threadsafe(
            self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"), self._loop))

    def make_template(self) -> None:
        """Migrate a database to head once; every ``create()`` after this copies it."""
        from bot.store import migrate
        from bot.store.db import Database

        url = self.create(template=False)

        async def upgrade() -> None:
            db = Database(url)
            try:
                await migrate.upgrade(db)
            finally:
                await db.dispose()  # no session may stay on a template that is copied

        self._call(upgrade())
        self.template = urlsplit(url).path.lstrip("/")
        # PostgreSQL 15 copies through the WAL by default; copying the files of a database this
        # small is about twice as fast.
        if self._conn.get_server_version().major >= 15:
            self._strategy = " STRATEGY FILE_COPY"

    def close(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                self.drop(spare.result(timeout=120))
            except Exception:  # noqa: BLE001 — never made: nothing to drop
                pass
        for pending in self._pending:
            try:
                pending.result(timeout=120)
            except Exception:  # noqa: BLE001 — a leftover in a throw-away cluster is harmless
                pass
        try:
            if self.template:
                self._call(self._execute(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)"))
        finally:
            if self._conn is not None:
                self._call(self._conn.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="session")
def pg_databases(postgres_server: str) -> Databases:
    """The session's database maker, with its template migrated to head."""
    if _Shared.databases is None:
        try:
            databases = Databases(postgres_server)
        except ImportError as exc:
            _unavailable(f"asyncpg is not installed ({exc}); ./scripts/test installs it")
        try:
            databases.make_template()
        except BaseException:
            databases.close()
            raise
        _Shared.databases = databases
    return _Shared.databases


@pytest.fixture
def pg_url(pg_databases: Databases) -> Iterator[str]:
    """A fresh, empty database for one test, as a ``postgresql+asyncpg://`` URL; dropped after."""
    url = pg_databases.create(template=False)
    try:
        yield url
    finally:
        pg_databases.drop(url)
