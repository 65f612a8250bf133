"""The PostgreSQL engine follows the config: pool size, statement timeout; an upgrade is not
held to that timeout while it waits for another one."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.config import Settings
from bot.store import migrate
from bot.store.db import Database
from tests.pg import holding


def configured(url: str, **database: object) -> Database:
    settings = Settings.model_validate({"database": {"url": url, **database}})
    return Database(settings.database.url, **settings.database.engine_options)


async def test_pool_size_and_statement_timeout_come_from_the_config(pg_url):
    db = configured(pg_url, pool_size=3, statement_timeout_seconds=0.3)
    try:
        assert db.write_engine.pool.size() == 3
        async with db.reading() as s:
            assert (await s.execute(text("SHOW statement_timeout"))).scalar() == "300ms"
        with pytest.raises(DBAPIError, match="statement timeout"):
            async with db.transaction() as s:
                await s.execute(text("SELECT pg_sleep(2)"))
    finally:
        await db.dispose()


async def test_the_defaults_are_ten_connections_and_thirty_seconds(pg_url):
    db = configured(pg_url)
    try:
        assert db.write_engine.pool.size() == 10
        async with db.reading() as s:
            assert (await s.execute(text("SHOW statement_timeout"))).scalar() == "30s"
    finally:
        await db.dispose()


async def test_an_upgrade_waits_for_another_longer_than_the_statement_timeout(pg_url):
    db = configured(pg_url, statement_timeout_seconds=0.2)
    try:
        with holding(pg_url, f"SELECT pg_advisory_lock({migrate.UPGRADE_LOCK_KEY})") as release:
            upgrade = asyncio.create_task(migrate.upgrade(db))
            await asyncio.sleep(1)  # five statement timeouts
            assert not upgrade.done()
            release()
            assert await asyncio.wait_for(upgrade, 30) == (None, migrate.head_revision())
        # The connection went back to the pool with the configured timeout again.
        async with db.reading() as s:
            assert (await s.execute(text("SHOW statement_timeout"))).scalar() == "200ms"
    finally:
        await db.dispose()
