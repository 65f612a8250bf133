"""Nothing on the ingest, delivery or staff-action path scans a table that grows with
history: every statement they run, reads and writes, is answered through an index (SQLite's
own query plans say so)."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.core import actions
from bot.core.staff import Actor
from tests import mailfixtures as fx
from tests.conftest import deliver, only_on_sqlite, running, wait_until
from tests.test_foundation import mail

# The check reads SQLite's own plans. PostgreSQL's planner picks sequential scans on tables
# this small whatever the indexes, so its plans would say nothing here.
sqlite_plans = only_on_sqlite("it reads SQLite's EXPLAIN QUERY PLAN")

# Tables that stay small whatever the history (configuration mirrors).
SMALL = {"handler_groups", "alembic_version"}


def scans(plan_rows: list[Any]) -> list[str]:
    """Full passes ("SCAN outbox", also "SCAN … USING [COVERING] INDEX": every entry of the
    index) over a table that grows; "SEARCH … USING INDEX (x=?)" is bounded."""
    found = []
    for row in plan_rows:
        detail = row[-1]
        if detail.startswith("SCAN ") and "CONSTANT ROW" not in detail:
            table = detail.split()[1]
            if table not in SMALL:
                found.append(detail)
    return found


@sqlite_plans
async def test_ingest_and_actions_use_indexes_only(app_settings, fake_slack, relay, tmp_path):
    statements: list[tuple[str, Any]] = []
    async with running(app_settings()) as app:
        engines = {app.db.write_engine.sync_engine, app.db.read_engine.sync_engine}

        def keep(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
                many = executemany and parameters and isinstance(parameters[0], (tuple, list, dict))
                statements.append((statement, parameters[0] if many else parameters))

        for engine in engines:
            event.listen(engine, "before_cursor_execute", keep)

        await deliver(app, mail(message_id="<first@example.net>"))
        await deliver(app, mail(subject="Re: Router down", in_reply_to="<first@example.net>"))
        await deliver(app, fx.dsn_bounce(original_message_id="<t1.2.abc@support.example.com>"),
                      mail_from="")
        await wait_until(lambda: len(fake_slack.cards()) >= 1 and relay.sink.received)
        actor = Actor("UALICE", "Alice Agent")
        await actions.assign(app.desk, actor=actor, number=1, assignee=actor)
        await actions.reply(app.desk, actor=actor, number=1, text="On it.")
        await actions.close(app.desk, actor=actor, number=1)
        await asyncio.sleep(0.3)  # their deliveries are recorded too
        for engine in engines:
            event.remove(engine, "before_cursor_execute", keep)
    problems = await asyncio.to_thread(plan_problems, tmp_path / "deskbell.db", statements)
    assert len(statements) > 20
    assert problems == {}


def plan_problems(database: Path, statements: list[tuple[str, Any]]) -> dict[str, list[str]]:
    problems = {}
    with closing(sqlite3.connect(database)) as con:
        for statement, parameters in statements:
            bound = parameters if isinstance(parameters, dict) else tuple(parameters or ())
            found = scans(con.execute("EXPLAIN QUERY PLAN " + statement, bound).fetchall())
            if found:
                problems[statement[:120]] = found
    return problems


def test_the_plan_check_sees_a_full_scan():
    assert scans([(0, 0, 0, "SCAN events")]) == ["SCAN events"]
    assert scans([(0, 0, 0, "SCAN raw_messages USING COVERING INDEX uq_raw_messages_message_key")])
    assert scans([(0, 0, 0, "SCAN handler_groups")]) == []
    assert scans([(0, 0, 0, "SEARCH outbox USING INDEX ix_outbox_due (status=?)")]) == []
