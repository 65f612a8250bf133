"""Alembic migrations, run from inside the program (``deskbell db upgrade``, ``deskbell run``).

Must not create tables any other way: the schema of a deployed database is whatever the
migrations in ``migrations/versions`` say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.store.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    async with db.write_engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns (before, after) revisions."""
    before = await current_revision(db)

    def _run(connection: Any) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with db.write_engine.begin() as conn:
        await conn.run_sync(_run)
    return before, await current_revision(db)
