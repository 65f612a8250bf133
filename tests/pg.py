"""A real PostgreSQL for tests that are about PostgreSQL: a throw-away cluster on loopback.

``DESKBELL_TEST_POSTGRES`` (``postgresql://user@host:port/db``) names a server to use instead.
Otherwise the first test that asks starts a cluster of its own with the PostgreSQL binaries of
this machine (``initdb``/``pg_ctl`` on PATH or under /usr/lib/postgresql/*/bin), in a temporary
directory, on a free loopback port, and stops it when the session ends. Without either, tests
that need it are skipped — except under ``CI=true``, where that is a failure: ./scripts/test
installs PostgreSQL when it is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``postgresql://…/postgres`` of a server the tests may create databases on."""
    given = os.environ.get("DESKBELL_TEST_POSTGRES")
    if given:
        yield given
        return
    cluster = Cluster()
    try:
        url = cluster.start()
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(cluster.dir, ignore_errors=True)
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is needed in CI and could not be started: {exc}")
        pytest.skip(f"no PostgreSQL on this machine ({exc}); ./scripts/test installs it")
    try:
        yield url
    finally:
        cluster.stop()


def with_database(url: str, name: str, *, driver: str = "") -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0] + (f"+{driver}" if driver else "")
    return urlunsplit(parts._replace(scheme=scheme, path=f"/{name}"))


def psql(url: str, sql: str) -> str:
    """Run SQL with the ``psql`` client (no event loop needed in a sync fixture)."""
    client = _binary("psql")
    if client is None:
        raise FileNotFoundError("psql not found")
    done = subprocess.run([client, url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True,
                          capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, as a ``postgresql+asyncpg://`` URL; dropped after."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    psql(postgres_server, f"CREATE DATABASE {name}")
    try:
        yield with_database(postgres_server, name, driver="asyncpg")
    finally:
        psql(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
