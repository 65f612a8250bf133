"""Adapter: the ``deskbell`` command line (click).

Parses arguments, loads the config once, calls the composition root or one core function,
prints. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config. No domain logic here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timezone
from typing import Any, TypeVar

import click

from bot import __version__
from bot.clock import Clock
from bot.config import ConfigError, Settings, find_config_path, load_settings
from bot.core import deliveries, digest_schedule, reports
from bot.core.errors import DeskbellError
from bot.logsetup import configure_logging

T = TypeVar("T")
CONFIG_OPTION = click.option("--config", "config_path", metavar="FILE", envvar="DESKBELL_CONFIG",
                             help="YAML config (default: $DESKBELL_CONFIG, ./deskbell.yaml, "
                                  "else embedded defaults).")


def _settings(config_path: str | None) -> Settings:
    path = find_config_path(config_path, os.environ)
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        where = str(path) if path else "embedded defaults"
        click.echo(f"deskbell: {where}: {len(exc.problems)} problem(s) in the config:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(2) from None
    except OSError as exc:
        click.echo(f"deskbell: cannot read config {path}: {exc.strerror or exc}", err=True)
        raise SystemExit(2) from None
    secrets = tuple(x.get_secret_value() for x in (
        settings.slack.bot_token, settings.slack.app_token, settings.slack.signing_secret,
        settings.email_out.password, settings.twilio.auth_token,
        *(a.password for a in settings.imap_accounts), *(a.oauth2_token for a in settings.imap_accounts)))
    configure_logging(settings.log.level, extra_secrets=secrets)
    return settings


def _clock() -> Clock:
    try:
        return Clock.from_environ(dict(os.environ))
    except ValueError as exc:
        click.echo(f"deskbell: DESKBELL_NOW: {exc}", err=True)
        raise SystemExit(2) from None


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(coro_fn())
    except DeskbellError as exc:
        click.echo(f"deskbell: {exc}", err=True)
        raise SystemExit(1) from None


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deskbell")
def main() -> None:
    """Deskbell: customers write by email, staff answer from Slack."""


def _serve(config_path: str | None, roles: tuple[str, ...]) -> None:
    from bot.app import (
        Deskbell,  # the composition root: heavy imports only when serving
    )

    settings = _settings(config_path)
    app = Deskbell(settings, clock=_clock())
    try:
        asyncio.run(app.serve(roles))
    except KeyboardInterrupt:
        pass
    except (OSError, RuntimeError) as exc:
        click.echo(f"deskbell: cannot start: {exc}", err=True)
        raise SystemExit(1) from None


@main.command()
@CONFIG_OPTION
def run(config_path: str | None) -> None:
    """Run everything in one process: SMTP door, IMAP accounts, web app and worker.

    With no config file it uses the embedded defaults: SQLite file deskbell.db here,
    SMTP on 127.0.0.1:2525 for any domain, web on 127.0.0.1:8080, one group "support".
    """
    _serve(config_path, ("smtp", "imap", "web", "worker"))


@main.command()
@CONFIG_OPTION
def smtp(config_path: str | None) -> None:
    """Run only the SMTP door (Procfile role)."""
    _serve(config_path, ("smtp",))


@main.command()
@CONFIG_OPTION
def imap(config_path: str | None) -> None:
    """Run only the IMAP door: read every imap_accounts mailbox into the spool (Procfile
    role). With several processes on PostgreSQL, each account is read by one of them."""
    _serve(config_path, ("imap",))


@main.command()
@CONFIG_OPTION
def web(config_path: str | None) -> None:
    """Run only the web app: /healthz, /readyz, /metrics (Procfile role)."""
    _serve(config_path, ("web",))


@main.command()
@CONFIG_OPTION
def worker(config_path: str | None) -> None:
    """Run only the worker: intake of the spool and the outbox that delivers Slack cards
    and email (Procfile role)."""
    _serve(config_path, ("worker",))


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@CONFIG_OPTION
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def db_upgrade(config_path: str | None, revision: str) -> None:
    """Apply pending migrations (safe to run again: it does nothing when up to date)."""
    from bot.store import migrate
    from bot.store.db import Database

    settings = _settings(config_path)

    async def go() -> tuple[str | None, str | None]:
        database = Database(settings.database.url, **settings.database.engine_options)
        try:
            return await migrate.upgrade(database, revision)
        finally:
            await database.dispose()

    try:
        before, after = asyncio.run(go())
    except Exception as exc:  # process boundary: say what failed, exit 1
        click.echo(f"deskbell: migration failed on {settings.database.redacted_url}: "
                   f"{type(exc).__name__}: {exc}", err=True)
        raise SystemExit(1) from None
    if before == after:
        click.echo(f"Database {settings.database.redacted_url} already at {after}.")
    else:
        click.echo(f"Database {settings.database.redacted_url} upgraded {before or 'empty'} → {after}.")


@main.command()
@CONFIG_OPTION
def check(config_path: str | None) -> None:
    """Validate the config (every problem at once), then probe the database, the SMTP relay,
    Slack and each IMAP account (login, mailbox, how far it has been read)."""
    from bot.checks import run_probes

    settings = _settings(config_path)
    click.echo("Config: ok")
    probes = asyncio.run(run_probes(settings))
    for probe in probes:
        click.echo(f"  {'ok  ' if probe.ok else 'FAIL'} {probe.name}: {probe.detail}")
    failed = [p.name for p in probes if not p.ok]
    if failed:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        raise SystemExit(1)
    click.echo("All checks passed.")


def _with_app(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(app)`` on a prepared ``Deskbell`` (schema up to date, groups mirrored), no roles
    running; the database is let go afterwards."""
    from bot.app import Deskbell  # the composition root: only commands that need it load it

    async def go() -> T:
        app = Deskbell(settings, clock=_clock())
        try:
            await app.prepare()
            return await work(app)
        finally:
            await app.db.dispose()

    return _run(go)


def _with_database(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(database)`` on a fresh connection pool, closed afterwards."""
    from sqlalchemy.exc import DBAPIError

    from bot.store.db import Database

    async def go() -> T:
        database = Database(settings.database.url, **settings.database.engine_options)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return _run(go)
    except DBAPIError as exc:
        click.echo(f"deskbell: database {settings.database.redacted_url}: {exc.orig}. "
                   "Is it migrated? Run `deskbell db upgrade` (or start `deskbell run` once).", err=True)
        raise SystemExit(1) from None


@main.group()
def tickets() -> None:
    """List and show tickets."""


@tickets.command("list")
@CONFIG_OPTION
@click.option("--status", help="new, open, waiting, on_hold, resolved, closed, or 'open' for all unresolved.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tickets_list(config_path: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List tickets, newest first."""
    settings, clock = _settings(config_path), _clock()

    rows = _with_database(settings, lambda db: reports.list_tickets(
        db, now=clock.now(), status=status, limit=limit, settings=settings))
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("No tickets.")
        return
    click.echo(f"{'#':>6}  {'STATUS':<9} {'P':<2} {'GROUP':<12} {'REQUESTER':<30} SUBJECT")
    for t in rows:
        requester = t["requester"]["email"] or t["requester"]["phone"] or ""
        click.echo(f"{t['number']:>6}  {t['status']:<9} {t['priority']:<2} {t['group'][:12]:<12} "
                   f"{requester[:30]:<30} {t['subject'][:60]}")


@tickets.command("show")
@CONFIG_OPTION
@click.argument("number", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tickets_show(config_path: str | None, number: int, as_json: bool) -> None:
    """Show one ticket with its messages and history."""
    settings, clock = _settings(config_path), _clock()

    t = _with_database(settings, lambda db: reports.show_ticket(db, number, now=clock.now(), settings=settings))
    if as_json:
        _print_json(t)
        return
    r = t["requester"]
    click.echo(f"#{t['number']} {t['subject']}")
    click.echo(f"  status {t['status']} · priority {t['priority']} · group {t['group']} · "
               f"assignee {t['assignee'] or 'none'}")
    click.echo(f"  requester {r['name']} <{r['email'] or r['phone']}> · via {t['channel']} · "
               f"created {t['created_at']}")
    for msg in t["messages"]:
        click.echo(f"\n--- {msg['kind']} {msg['channel']} {msg['created_at']} {msg['sender']}"
                   + (f" [{msg['delivery_status']}]" if msg["delivery_status"] else ""))
        if msg["body"]:
            click.echo(msg["body"])
        for a in msg["attachments"]:
            click.echo(f"  📎 {a['name']} ({a['type']}, {a['size']} bytes)")


@main.group()
def outbox() -> None:
    """Inspect and retry outgoing items (Slack cards, email)."""


@outbox.command("list")
@CONFIG_OPTION
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "dead"]))
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def outbox_list(config_path: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List outbox items, newest first."""
    settings = _settings(config_path)

    items = _with_database(settings, lambda db: deliveries.list_items(db, status=status, limit=limit))
    if as_json:
        _print_json([{k: v for k, v in vars(i).items() if k != "payload"} for i in items])
        return
    if not items:
        click.echo("Outbox is empty.")
        return
    click.echo(f"{'ID':>6}  {'CHANNEL':<7} {'KIND':<18} {'TICKET':>6}  {'STATUS':<8} {'TRIES':>5}  DETAIL")
    for i in items:
        detail = i.last_error or i.remote_id or ""
        click.echo(f"{i.id:>6}  {i.channel:<7} {i.kind:<18} {i.ticket_number or '':>6}  "
                   f"{i.status:<8} {i.attempts:>5}  {detail[:70]}")


@outbox.command("retry")
@CONFIG_OPTION
@click.argument("ids", nargs=-1, type=int)
def outbox_retry(config_path: str | None, ids: tuple[int, ...]) -> None:
    """Queue dead items again (all of them, or the given IDS); a running worker sends them."""
    settings, clock = _settings(config_path), _clock()

    n = _with_database(settings, lambda db: deliveries.retry(db, now=clock.now(),
                                                               item_ids=list(ids) or None))
    click.echo(f"{n} item(s) queued again." if n else "No dead items matched.")


@main.command("tick")
@CONFIG_OPTION
@click.option("--now", "at", metavar="ISO-8601",
              help="Make the pass as of this instant, with its UTC offset (2026-12-01T09:30:00+01:00); "
                   "default: now.")
def tick_command(config_path: str | None, at: str | None) -> None:
    """Make one scheduler pass and exit: reply locks that expired, SLA breaches and escalations,
    idle tickets, resolved tickets due to close, follow-up and action-required reminders,
    managers' digests whose time has come.

    A pass repeated for the same instant sends nothing twice. A running worker sends the
    Slack posts and emails it queues.
    """
    settings = _settings(config_path)
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter(f"{at!r} is not an ISO-8601 instant", param_hint="--now") from None
        if when.tzinfo is None:
            raise click.BadParameter("give the instant's UTC offset, e.g. 2026-12-01T09:30:00+00:00",
                                     param_hint="--now")
        when = when.astimezone(timezone.utc)

    async def tick(app: Any) -> tuple[datetime, dict[str, int]]:
        instant = when or app.clock.now()
        return instant, await app.tick(instant)

    instant, done = _with_app(settings, tick)
    click.echo(f"Scheduler pass as of {instant.isoformat()}: "
               + ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in done.items()))


@main.command("digest")
@CONFIG_OPTION
@click.option("--group", "group", required=True, metavar="GROUP", help="The handler group to report on.")
@click.option("--digest", "digest_name", metavar="NAME",
              help="Which configured digest (default: the one whose groups include GROUP).")
@click.option("--period", "day", metavar="YYYY-MM-DD",
              help="Any day of the period, in the digest's time zone (default: the latest period due).")
@click.option("--preview", is_flag=True, help="Print the digest's HTML to stdout; send nothing.")
@click.option("--text", "as_text", is_flag=True, help="With --preview: print the plain-text part instead.")
@click.option("--send", is_flag=True, help="Queue the email to each recipient who has not had this period.")
@click.option("--force", is_flag=True, help="Send to every recipient again, even those who had it.")
def digest_command(config_path: str | None, group: str, digest_name: str | None, day: str | None,
                   preview: bool, as_text: bool, send: bool, force: bool) -> None:
    """Build a manager digest for one handler group: preview it, or send it.

    A daily digest covers one calendar day in its time zone, a weekly one the 7 days from its
    send day. Each recipient gets a period once: --send again (or the scheduler) sends nothing
    new, --force sends again. A running worker delivers what --send queues.
    """
    if preview == (send or force):
        raise click.UsageError("give --preview, or --send (with --force to send again)")
    settings = _settings(config_path)
    digest = _digest_for(settings, group, digest_name, preview=preview)
    first_day = None
    if day:
        try:
            first_day = date.fromisoformat(day)
        except ValueError:
            raise click.BadParameter(f"{day!r} is not a date like 2026-11-23", param_hint="--period") from None

    async def work(app: Any) -> Any:
        period = (digest_schedule.period_containing(digest, first_day) if first_day
                  else digest_schedule.latest_due(digest, app.clock.now()))
        if preview:
            return await app.digest_preview(digest, group, period, text=as_text)
        return await app.digest_send(digest, group, period, force=force)

    result = _with_app(settings, work)
    if preview:
        click.echo(result, nl=False)
        return
    what = f"{digest.name} digest for {group}, {result.period.first_day.isoformat()}"
    if result.queued:
        click.echo(f"{what}: queued for {', '.join(result.queued)}. A running worker sends it.")
    if result.already:
        click.echo(f"{what}: already sent to {', '.join(result.already)} (--force sends it again).")


def _digest_for(settings: Settings, group: str, name: str | None, *, preview: bool) -> Any:
    """The configured digest that reports on ``group`` (or the one named); for a preview
    without one, a daily digest in the group's business-hours time zone."""
    from bot.config.schema import Digest
    from bot.core.sla import calendar_hours

    if settings.group_by_name(group) is None:
        known = ", ".join(g.name for g in settings.handler_groups)
        raise click.BadParameter(f"no handler group {group!r} (configured: {known})", param_hint="--group")
    covering = [d for d in settings.digests if name in (None, d.name)
                and group in digest_schedule.group_names(settings, d)]
    if name is not None and not covering:
        raise click.BadParameter(f"no digest {name!r} reports on {group!r}", param_hint="--digest")
    if covering:
        return covering[0]
    if not preview:
        raise click.UsageError(f"no digest in the config reports on {group!r}: add one under `digests` "
                               "(name, at, timezone, recipients, groups) to send it")
    return Digest(name="preview", at="08:00", timezone=calendar_hours(settings, group).timezone,
                  recipients=[settings.email_out.from_address])


@main.command("reprocess")
@CONFIG_OPTION
@click.argument("quarantine_id", required=False, type=int)
def reprocess_command(config_path: str | None, quarantine_id: int | None) -> None:
    """Run mail held in quarantine through intake again (all of it, or QUARANTINE_ID).

    Mail that still cannot be read stays held; the rest becomes tickets as if just received.
    A running worker sends the cards and acknowledgements this causes.
    """
    outcomes = _with_app(_settings(config_path), lambda app: app.reprocess(quarantine_id))
    if not outcomes:
        click.echo("Nothing held in quarantine" + (f" as #{quarantine_id}." if quarantine_id else "."))
        return
    for item_id, what in outcomes:
        click.echo(f"quarantine #{item_id}: {what}")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
