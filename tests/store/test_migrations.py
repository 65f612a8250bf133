"""The Alembic migrations build exactly the schema the models describe, on SQLite and on
PostgreSQL; an upgrade may be started by several processes at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime, timezone

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from bot.store import migrate
from bot.store.db import Database
from bot.store.models import Base
from tests.pg import psql

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


async def _schema_diff(db: Database) -> list:
    async with db.write_engine.connect() as conn:
        return await conn.run_sync(lambda c: compare_metadata(
            MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata))


async def test_migrated_schema_matches_the_models(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    before, after = await migrate.upgrade(db)
    assert (before, after) == (None, migrate.head_revision())
    diff = await _schema_diff(db)
    await db.dispose()
    assert diff == [], "models changed without a migration: " + repr(diff[:5])


async def test_upgrade_twice_is_harmless(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await migrate.upgrade(db)
    assert await migrate.upgrade(db) == (migrate.head_revision(), migrate.head_revision())
    await db.dispose()


async def test_migrated_schema_matches_the_models_on_postgresql(pg_url):
    db = Database(pg_url)
    before, after = await migrate.upgrade(db)
    assert (before, after) == (None, migrate.head_revision())
    diff = await _schema_diff(db)
    types = await _column_types(db)
    await db.dispose()
    assert diff == [], "models changed without a migration: " + repr(diff[:5])
    assert types[("tickets", "created_at")] == "timestamp with time zone"
    assert types[("outbox", "payload")] == "jsonb"
    assert not {t for t in types.values() if t in ("timestamp without time zone", "json")}


async def test_upgrades_started_together_on_postgresql_all_succeed(pg_url):
    """Several processes starting at once each run ``deskbell db upgrade``: they take turns."""
    dbs = [Database(pg_url) for _ in range(6)]
    try:
        results = await asyncio.gather(*(migrate.upgrade(db) for db in dbs), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        head = migrate.head_revision()
        assert all(after == head for _, after in results)
        # Exactly one of them found the database empty; the others found it done.
        assert sorted(before or "" for before, _ in results) == [""] + [head] * 5
        assert await migrate.current_revision(dbs[0]) == head
        assert await _schema_diff(dbs[0]) == []
        async with dbs[0].write_engine.connect() as conn:  # the lock was given back
            assert (await conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))).scalar() == 0
    finally:
        for db in dbs:
            await db.dispose()


def test_db_upgrade_commands_started_together_on_postgresql_all_succeed(pg_url, tmp_path):
    """The same through ``deskbell db upgrade``, one process each, as a deployment does it."""
    config = tmp_path / "deskbell.yaml"
    config.write_text(f"database:\n  url: {pg_url}\n", encoding="utf-8")
    # Each process loads the program first, then all start upgrading at the same instant:
    # process start-up times alone would spread them out and hide the race.
    start = time.time() + 3
    command = ("import sys, time; from bot.cli import main; "
               f"time.sleep(max(0, {start} - time.time())); "
               f"main(['db', 'upgrade', '--config', {str(config)!r}])")
    procs = [subprocess.Popen([sys.executable, "-c", command], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in outcomes] == [0] * 4, outcomes
    said = sorted(out.split(" ", 2)[2].strip() for _, out, _ in outcomes)
    head = migrate.head_revision()
    assert said == [f"already at {head}."] * 3 + [f"upgraded empty → {head}."], said


async def test_0004_converts_an_existing_postgresql_database(pg_url):
    """A database made by the code before 0004 (naive UTC timestamps, ``json``) keeps every
    instant and document; the session's TimeZone plays no part in the conversion."""
    db = Database(pg_url)
    await migrate.upgrade(db)
    async with db.write_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO contacts (email, name, created_at) VALUES ('a@example.net', '', :at)"), {"at": AT})
        await conn.execute(text(
            "INSERT INTO outbox (channel, kind, payload, status, attempts, due_at, created_at) "
            "VALUES ('email', 'notice', CAST(:p AS jsonb), 'pending', 0, :at, :at)"),
            {"p": '{"b": 1, "a": [1, "x"]}', "at": AT})
        await conn.run_sync(lambda c: command.downgrade(migrate.alembic_config(c), "0003"))
    types = await _column_types(db)
    assert types[("contacts", "created_at")] == "timestamp without time zone"
    assert types[("outbox", "payload")] == "json"
    async with db.write_engine.connect() as conn:
        assert (await conn.execute(text("SELECT created_at::text FROM contacts"))).scalar() \
            == "2026-01-02 03:04:05.678"  # naive UTC, as the code before 0004 stored it
    await db.dispose()

    name = pg_url.rsplit("/", 1)[1]
    server = pg_url.replace("+asyncpg", "").rsplit("/", 1)[0] + "/postgres"
    psql(server, f"ALTER DATABASE {name} SET timezone = 'Asia/Kolkata'")
    db = Database(pg_url)
    try:
        assert await migrate.upgrade(db) == ("0003", migrate.head_revision())
        assert await _schema_diff(db) == []
        async with db.write_engine.connect() as conn:
            assert (await conn.execute(text("SHOW timezone"))).scalar() == "Asia/Kolkata"
            created = (await conn.execute(text("SELECT created_at FROM contacts"))).scalar()
            payload = (await conn.execute(text("SELECT payload::text FROM outbox"))).scalar()
        assert created == AT
        assert payload == '{"a": [1, "x"], "b": 1}'  # jsonb: a document, stored by value
    finally:
        await db.dispose()


async def _column_types(db: Database) -> dict[tuple[str, str], str]:
    async with db.write_engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema()"))
        return {(table, column): data_type for table, column, data_type in rows}
