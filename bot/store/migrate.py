"""Alembic migrations, run from inside the program (``deskbell db upgrade``, ``deskbell run``).

Must not create tables any other way: the schema of a deployed database is whatever the
migrations in ``migrations/versions`` say. Must not let two upgrades run at once on one
database: on PostgreSQL an upgrade holds an advisory lock (several processes may be started
together, each running ``deskbell db upgrade``); SQLite's write lock serialises them there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Fixed key of the PostgreSQL advisory lock held while migrating: b"deskbell" as a bigint.
UPGRADE_LOCK_KEY = int.from_bytes(b"deskbell", "big")


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _revision(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.write_engine.connect() as conn:
        return await conn.run_sync(_revision)


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns (before, after) revisions, both read under the lock."""

    def _run(connection: Any) -> tuple[str | None, str | None]:
        before = _revision(connection)
        command.upgrade(alembic_config(connection), revision)
        return before, _revision(connection)

    async with db.write_engine.connect() as conn:
        locked = await _lock(conn)
        try:
            async with conn.begin():
                return await conn.run_sync(_run)
        finally:
            if locked:
                await _unlock(conn)


async def _lock(conn: AsyncConnection) -> bool:
    """Wait for the upgrade lock (PostgreSQL only). A session lock, not a transaction's: it is
    taken before the upgrade's transaction begins, so the revision that transaction reads is
    the one the previous holder committed."""
    if conn.dialect.name != "postgresql":
        return False
    # Waiting for another upgrade, or rewriting a large table, may take longer than the
    # statement timeout meant for the application's own statements.
    await conn.execute(text("SET statement_timeout = 0"))
    await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
    await conn.commit()
    return True


async def _unlock(conn: AsyncConnection) -> None:
    try:
        if conn.in_transaction():
            await conn.rollback()
        await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": UPGRADE_LOCK_KEY})
        await conn.execute(text("RESET statement_timeout"))
        await conn.commit()
    except Exception:
        # The server drops a session's locks with the session: closing it releases the lock,
        # and what the upgrade did (or the error it raised) is what the caller needs to hear.
        await conn.invalidate()
