"""Get-or-create, each as one insert-or-select that several writers may run at once, and
what a failed write collided with.

An ``INSERT … ON CONFLICT DO NOTHING`` either makes the row or leaves the one another writer
made a moment before; a select then reads whichever exists. No commits here (the caller's
transaction decides) and no business rules: callers say what the row holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Constraint, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m


def insert_for(s: AsyncSession, table: Any):
    """An INSERT that knows ``ON CONFLICT`` in the session's dialect (SQLite or PostgreSQL)."""
    dialect = s.bind.dialect.name if s.bind is not None else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def _insert_or_select(s: AsyncSession, model: Any, *, match: dict[str, Any],
                            values: dict[str, Any]) -> Any:
    query = select(model).filter_by(**match)
    row = await s.scalar(query)
    if row is not None:
        return row
    await s.execute(insert_for(s, model).values(**match, **values).on_conflict_do_nothing())
    return await s.scalar(query)


async def contact(s: AsyncSession, *, email: str | None = None, phone: str | None = None,
                  name: str = "", now: datetime) -> m.Contact:
    """The contact with this email address (or phone number), made on first sight; one
    statement either way (an upsert that returns the row, new or old)."""
    column = "email" if email is not None else "phone"
    insert = insert_for(s, m.Contact).values(**{column: email if email is not None else phone},
                                          name=name[:200], created_at=now)
    upsert = insert.on_conflict_do_update(index_elements=[column],
                                          set_={column: getattr(insert.excluded, column)})
    return await s.scalar(upsert.returning(m.Contact),
                          execution_options={"populate_existing": True})


async def group(s: AsyncSession, *, name: str, slack_channel: str) -> m.HandlerGroup:
    return await _insert_or_select(s, m.HandlerGroup, match={"name": name},
                                   values={"slack_channel": slack_channel})


async def groups(s: AsyncSession, channels: dict[str, str]) -> None:
    """One row per group name with its Slack channel, made or brought up to date in one
    statement: processes starting at once each leave the same rows, none fails. Rows go in
    name order, so two writers never wait for each other's rows crosswise (a deadlock)."""
    if not channels:
        return
    insert = insert_for(s, m.HandlerGroup).values([{"name": name, "slack_channel": channel}
                                                   for name, channel in sorted(channels.items())])
    await s.execute(insert.on_conflict_do_update(
        index_elements=["name"], set_={"slack_channel": insert.excluded.slack_channel},
        where=m.HandlerGroup.slack_channel != insert.excluded.slack_channel))


async def replace(s: AsyncSession, model: Any, *, keys: dict[str, Any], values: dict[str, Any]) -> None:
    """The row with these key columns holds ``values`` afterwards, whether it existed or not."""
    insert = insert_for(s, model).values(**keys, **values)
    await s.execute(insert.on_conflict_do_update(index_elements=list(keys),
                                                 set_={k: getattr(insert.excluded, k) for k in values}))


async def staff(s: AsyncSession, *, slack_user_id: str, name: str, email: str | None,
                now: datetime) -> m.Staff:
    return await _insert_or_select(s, m.Staff, match={"slack_user_id": slack_user_id},
                                   values={"name": name[:200], "email": email, "created_at": now})


async def staff_rows(s: AsyncSession, slack_user_ids: list[str], *, now: datetime) -> list[m.Staff]:
    """The staff rows of these Slack users (made, nameless, for those not seen yet), in order."""
    wanted = list(dict.fromkeys(slack_user_ids))
    if not wanted:
        return []
    query = select(m.Staff).where(m.Staff.slack_user_id.in_(wanted))
    found = {row.slack_user_id: row for row in (await s.scalars(query)).all()}
    missing = [u for u in wanted if u not in found]
    if missing:
        await s.execute(insert_for(s, m.Staff).values([
            {"slack_user_id": u, "name": "", "email": None, "created_at": now, "is_admin": False}
            for u in missing]).on_conflict_do_nothing())
        found = {row.slack_user_id: row for row in (await s.scalars(query)).all()}
    return [found[u] for u in wanted]


async def blobs(s: AsyncSession, files: Iterable[tuple[str, bytes]], *,
                sizes: dict[str, int] | None = None) -> None:
    """Store each (sha256, bytes) once; the same file in many messages is kept once. With
    ``sizes`` the bytes live elsewhere (a directory) and the rows hold only their size."""
    rows = {digest: data for digest, data in files}
    if not rows:
        return
    await s.execute(insert_for(s, m.Blob).values([
        {"sha256": d, "size": sizes[d] if sizes else len(b), "data": b} for d, b in rows.items()])
        .on_conflict_do_nothing())


async def bump_counters(s: AsyncSession, keys: list[str], *, window_start: datetime) -> list[int]:
    """Count one occurrence of each key (a key may repeat) in this window, in one statement;
    returns, for each occurrence in order, the count it brought its key to."""
    adds: dict[str, int] = {}
    for key in keys:
        adds[key[:400]] = adds.get(key[:400], 0) + 1
    if not adds:
        return []
    # Key order, so that two transactions counting the same keys lock their rows in the same
    # order and wait for each other instead of deadlocking.
    insert = insert_for(s, m.RateCounter).values([{"key": k, "window_start": window_start, "count": n}
                                               for k, n in sorted(adds.items())])
    totals = dict((await s.execute(insert.on_conflict_do_update(
        index_elements=["key", "window_start"],
        set_={"count": m.RateCounter.count + insert.excluded.count})
        .returning(m.RateCounter.key, m.RateCounter.count))).all())
    counts: list[int] = []
    seen: dict[str, int] = {}
    for key in keys:  # the n-th occurrence of a key brought it to total - adds + n
        k = key[:400]
        seen[k] = seen.get(k, 0) + 1
        counts.append(totals[k] - adds[k] + seen[k])
    return counts


# ----- what a failed write collided with ----------------------------------------------------

# PostgreSQL's serialization failure, deadlock and lock-not-available: another writer was at the
# same rows; the same work run again goes through.
CONTENTION_STATES = {"40001", "40P01", "55P03"}


def _driver_error(exc: DBAPIError) -> BaseException:
    """The driver's own exception: asyncpg's sits one level under SQLAlchemy's adapter."""
    error = exc.orig
    return getattr(error, "orig", None) or error


def violates(exc: IntegrityError, constraint: Constraint) -> bool:
    """Did the write fail on this unique key (or primary key)? PostgreSQL names the
    constraint; SQLite names its columns ("UNIQUE constraint failed: t.a, t.b")."""
    driver = _driver_error(exc)
    name = getattr(driver, "constraint_name", None)
    if name is not None:
        return name == constraint.name
    columns = ", ".join(f"{constraint.table.name}.{column.name}" for column in constraint.columns)
    return str(driver) == f"UNIQUE constraint failed: {columns}"


def sqlstate(exc: DBAPIError) -> str:
    """PostgreSQL's SQLSTATE of the failure ("" on SQLite)."""
    return getattr(exc.orig, "sqlstate", None) or getattr(_driver_error(exc), "sqlstate", None) or ""


def contended(exc: DBAPIError) -> bool:
    """Another writer got in the way: a unique key it took a moment before, or a deadlock or
    serialization failure. Running the same transaction again settles it. Other integrity
    errors (NOT NULL, foreign key, CHECK) are our bugs: they fail the same way every time."""
    unique = sqlstate(exc) == "23505" or "UNIQUE constraint failed" in str(exc.orig)
    return (isinstance(exc, IntegrityError) and unique) or sqlstate(exc) in CONTENTION_STATES


def refused_value(exc: DBAPIError) -> bool:
    """The database refused a value itself (too long, a NUL in text, out of range): SQLSTATE
    class 22 on PostgreSQL (asyncpg's errors do not arrive as ``DataError``)."""
    return isinstance(exc, DataError) or sqlstate(exc).startswith("22")


async def take_numbers(s: AsyncSession, counter: str, count: int) -> list[int] | None:
    """``count`` consecutive numbers from ``counter``, in commit order, gap-free: the counter's
    row stays locked until the caller's transaction ends, and a rollback gives the numbers
    back. None on SQLite, where the single writer and rowid reuse give the same for free (so
    the hot path there costs no extra statement)."""
    if s.bind.dialect.name == "sqlite" or count <= 0:
        return None
    last = await s.scalar(update(m.Counter).where(m.Counter.name == counter)
                          .values(value=m.Counter.value + count).returning(m.Counter.value))
    if last is None:
        raise LookupError(f"no counter {counter!r}: run `deskbell db upgrade`")
    return list(range(last - count + 1, last + 1))
