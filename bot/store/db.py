"""Engines, sessions and the unit of work.

``Database.transaction()`` is the only way to write: one transaction per unit of work, and
the dispatcher is woken after a commit that enqueued outbox rows. Must not hold module-level
engines or sessions (``app.py`` makes one ``Database`` and passes it down), and must not know
what a ticket is.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.request import pathname2url

from sqlalchemy import Select, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.store.notify import OUTBOX, notify
from bot.store.sqlite_driver import one_hop_url, run_on_connection

log = logging.getLogger(__name__)

OUTBOX_FLAG = "outbox_enqueued"
# PostgreSQL defaults (config: database.pool_size, database.statement_timeout_seconds).
POOL_SIZE = 10
STATEMENT_TIMEOUT = 30.0
HOT_READ_POOL_SIZE = 2  # connections kept for ``read_rows`` (a customer's page), beside POOL_SIZE
# Readiness waits this long for SQLite's write lock, not the writers' 10 s busy_timeout.
WRITE_PROBE_TIMEOUT = 2.0


class DatabaseUnavailable(Exception):
    """``ping()`` found the database not fit for work; ``state`` says how:
    ``read-only`` (reads work, writes cannot), ``locked`` (the write lock stayed taken) or
    ``unreachable`` (it cannot be opened or read)."""

    def __init__(self, state: str, detail: str = "") -> None:
        super().__init__(f"database {state}" + (f" ({detail})" if detail else ""))
        self.state = state


def _sqlite_pragmas(engine: AsyncEngine, *, immediate: bool) -> None:
    """WAL so readers never block the writer; FULL sync so a commit survives power loss too."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions get in the way).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # A writer takes the write lock up front: a deferred transaction that later upgrades
        # to a writer fails at once with SQLITE_BUSY when another process committed meanwhile.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _server_pool(*, pool_size: int, statement_timeout: float) -> dict[str, Any]:
    """Engine options for a database server (PostgreSQL through asyncpg)."""
    return {
        # A connection that died with a server restart is found and replaced before use.
        "pool_pre_ping": True,
        "pool_size": pool_size,
        # A burst may open as many again (a unit of work can read on a second connection while
        # its transaction is open); they are closed when returned.
        "max_overflow": pool_size,
        # Sent at connection start, so every statement of every session has the limit: a
        # statement stuck behind a lock fails instead of holding its connection for ever.
        "connect_args": {"server_settings": {
            "statement_timeout": str(int(statement_timeout * 1000))}},
    }


class _Dropped(Exception):
    """The server had closed the pooled connection a read was sent on."""


class Database:
    """One database: a write path and a read path (the same pool on PostgreSQL)."""

    def __init__(self, url: str, *, echo: bool = False,
                 write_probe_timeout: float = WRITE_PROBE_TIMEOUT,
                 pool_size: int = POOL_SIZE, statement_timeout: float = STATEMENT_TIMEOUT) -> None:
        """``pool_size`` and ``statement_timeout`` (seconds, 0 = none) apply to PostgreSQL."""
        self.url = url
        self.write_probe_timeout = write_probe_timeout
        self.is_sqlite = url.startswith("sqlite")
        self._on_outbox: list[Callable[[], None]] = []
        self._sqlite_inserts: dict[tuple[str, tuple[str, ...]], tuple[str, list[tuple[str, Any]]]] = {}
        self._selects: dict[Select[Any], tuple[str, Callable[[dict[str, Any]], tuple], list[Any]]] = {}
        if self.is_sqlite:
            url = one_hop_url(url)
            # SQLite has one writer; a one-connection write pool queues our own writers in
            # order instead of letting them fight over the file lock.
            self.write_engine = create_async_engine(url, echo=echo, pool_size=1, max_overflow=0,
                                                    pool_timeout=60)
            self.read_engine = create_async_engine(url, echo=echo)
            _sqlite_pragmas(self.write_engine, immediate=True)
            _sqlite_pragmas(self.read_engine, immediate=False)
        else:
            self.write_engine = create_async_engine(url, echo=echo, **_server_pool(
                pool_size=pool_size, statement_timeout=statement_timeout))
            self.read_engine = self.write_engine
            # Hot one-statement reads (``read_rows``) skip the pool's ping, a round trip as
            # long as the read itself; a connection the server dropped is retried instead.
            self._hot_read_engine = create_async_engine(url, echo=echo, **{**_server_pool(
                pool_size=HOT_READ_POOL_SIZE, statement_timeout=statement_timeout), "pool_pre_ping": False})
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    def on_outbox_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each commit that enqueued outbox rows (wakes the dispatcher)."""
        self._on_outbox.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self._writer() as session:
            async with session.begin():
                yield session
                if session.info.get(OUTBOX_FLAG) and not self.is_sqlite:
                    await notify(session, OUTBOX)  # workers of other processes: at commit
            enqueued = session.info.pop(OUTBOX_FLAG, False)
        if enqueued:
            for callback in self._on_outbox:
                callback()

    async def append(self, table: Table, rows: list[dict[str, Any]], *, wake: str | None = None) -> None:
        """Insert ``rows`` (each with the same keys) in one transaction of their own; a row that
        collides with a unique key already there is left out. ``wake``: the channel to notify
        at commit (PostgreSQL; see ``store.notify``).

        For the doors, which call it per batch of arrivals while senders wait: on SQLite the
        whole transaction (BEGIN IMMEDIATE, the INSERT, COMMIT) is one call on the write
        connection's thread, where a session would cross threads for each step and wait for
        the event loop every time."""
        if not rows:
            return
        if not self.is_sqlite:
            async with self.transaction() as s:
                await s.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
                if wake:
                    await notify(s, wake)
            return
        names = tuple(rows[0])
        sql, processors = self._sqlite_inserts.get((table.name, names)) or self._sqlite_insert(table, names)
        values = [tuple(row[name] if process is None else process(row[name])
                        for name, process in processors) for row in rows]
        await run_on_connection(self.write_engine, _commit_many, sql, values)

    def _sqlite_insert(self, table: Table, names: tuple[str, ...]) -> tuple[str, list[tuple[str, Any]]]:
        """The INSERT's SQL and, in its parameter order, each column's bind conversion."""
        dialect = self.write_engine.dialect
        compiled = sqlite.insert(table).on_conflict_do_nothing().compile(dialect=dialect,
                                                                           column_keys=list(names))
        processors = [(name, table.c[name].type.bind_processor(dialect)) for name in compiled.positiontup]
        self._sqlite_inserts[(table.name, names)] = compiled.string, processors
        return compiled.string, processors

    async def read_rows(self, statement: Select[Any], **params: Any) -> list[tuple]:
        """The rows of one SELECT, each column converted by its type as a session would, read
        in one call on one pooled connection: no session, no transaction of SQLAlchemy's (its
        BEGIN and ROLLBACK are round trips of their own) and no ORM objects. For a hot read
        that one statement answers (a customer's page); on SQLite it is one hop to the
        connection's thread, where a session crosses threads once per step. Use it with
        statements built once: each one's SQL is compiled once and kept. One statement is one
        snapshot on both databases."""
        sql, values, processors = self._selects.get(statement) or self._compile_select(statement)
        if self.is_sqlite:
            rows = await run_on_connection(self.read_engine, _fetch_all, sql, values(params))
        else:
            rows = await self._fetch(sql, values(params))
        return [tuple(value if convert is None else convert(value) for value, convert in zip(row, processors))
                for row in rows]

    async def _fetch(self, sql: str, values: tuple) -> list[Any]:
        """One statement on a pooled PostgreSQL connection, once more on a fresh one when the
        server had dropped the first (a restart, a terminated backend): the pool does not ping
        these connections before handing them out."""
        try:
            return await self._fetch_once(sql, values)
        except _Dropped:
            return await self._fetch_once(sql, values)

    async def _fetch_once(self, sql: str, values: tuple) -> list[Any]:
        async with self._hot_read_engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            try:
                return await driver.fetch(sql, *values)
            except Exception as exc:
                if not driver.is_closed():
                    raise  # the statement's own failure
                await conn.invalidate()  # never handed out again
                raise _Dropped from exc

    def _compile_select(self, statement: Select[Any]) -> tuple[str, Callable[[dict[str, Any]], tuple], list[Any]]:
        dialect = self.read_engine.dialect
        compiled = statement.compile(dialect=dialect)  # no expanding IN lists: they compile per call
        names = compiled.positiontup or []  # in the order of the placeholders (? or $n)

        def values(params: dict[str, Any]) -> tuple:
            given = compiled.construct_params(params)
            return tuple(given[name] for name in names)

        processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                      for column in statement.selected_columns]
        self._selects[statement] = compiled.string, values, processors
        return self._selects[statement]

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; loaded rows stay usable after the block ends."""
        async with self._reader() as session:
            async with session.begin():
                yield session

    async def ping(self) -> None:
        """Readiness: the database answers a read and would take a write right now.

        Raises ``DatabaseUnavailable`` (or the driver's own error when it cannot even read).
        Must not write anything (the write probe is rolled back) nor wait on SQLite's lock for
        longer than ``write_probe_timeout``.
        """
        if not self.is_sqlite:
            async with self.write_engine.connect() as conn:
                recovering, read_only = (await conn.execute(text(
                    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"))).one()
            if recovering or read_only == "on":  # a standby, or default_transaction_read_only
                raise DatabaseUnavailable("read-only", "standby" if recovering else "transaction_read_only")
            return
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        target = self._sqlite_probe_target()
        if target is not None:
            await asyncio.to_thread(_probe_sqlite_write, target, self.write_probe_timeout)

    def _sqlite_probe_target(self) -> str | None:
        """The file as a URI that never creates it (``mode=rw``, unless configured ``ro``): a
        file deleted under the running process is reported, not replaced by an empty one. (A
        first ping on a new install still creates it, through the read engine, as before.)"""
        args, kwargs = self.write_engine.dialect.create_connect_args(self.write_engine.url)
        filename = str(args[0])
        if not kwargs.get("uri"):
            return None if filename == ":memory:" else f"file:{pathname2url(filename)}?mode=rw"
        if "mode=memory" in filename or filename.startswith("file::memory:"):
            return None
        if "mode=" in filename:
            return filename
        return filename + ("&" if "?" in filename else "?") + "mode=rw"

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
        if not self.is_sqlite:
            await self._hot_read_engine.dispose()


def _fetch_all(conn: sqlite3.Connection, sql: str, values: tuple) -> list[tuple]:
    """On a read connection's thread: one SELECT (one snapshot: it is a statement of its own)."""
    return conn.execute(sql, values).fetchall()


def _commit_many(conn: sqlite3.Connection, sql: str, values: list[tuple]) -> None:
    """On the write connection's thread: one write transaction, committed or rolled back."""
    conn.execute("BEGIN IMMEDIATE")  # the write lock first, as every writer here takes it
    try:
        conn.executemany(sql, values)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _probe_sqlite_write(target: str, timeout: float) -> None:
    """On a thread, own connection: take the write lock, write into the page cache, roll back.

    BEGIN IMMEDIATE alone succeeds on a read-only file; the write inside is what fails there.
    Nothing reaches the disk (the transaction never commits).
    """
    try:
        con = sqlite3.connect(target, uri=True, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable("unreachable", _sqlite_error_name(exc)) from None
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE main.deskbell_write_probe (x)")
        con.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(_sqlite_state(exc), _sqlite_error_name(exc)) from None
    finally:
        con.close()


def _sqlite_state(exc: sqlite3.Error) -> str:
    primary = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return "locked"
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_PERM):
        return "read-only"
    return "unreachable"


def _sqlite_error_name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", None) or type(exc).__name__


def mark_outbox_enqueued(session: AsyncSession) -> None:
    session.info[OUTBOX_FLAG] = True
