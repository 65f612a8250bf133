"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.store import migrate
from bot.store.db import Database
from bot.store.models import Base


async def test_migrated_schema_matches_the_models(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    before, after = await migrate.upgrade(db)
    assert (before, after) == (None, migrate.head_revision())
    async with db.write_engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(
            MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata))
    await db.dispose()
    assert diff == [], "models changed without a migration: " + repr(diff[:5])


async def test_upgrade_twice_is_harmless(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await migrate.upgrade(db)
    assert await migrate.upgrade(db) == (migrate.head_revision(), migrate.head_revision())
    await db.dispose()
