"""The scheduler's pass: the sweeps that act when a moment comes rather than when someone writes.

Jobs, in order: reply locks that expired leave their cards; SLA targets missed are announced
(the group channel, the assignee, the card) and escalated a while later; idle tickets are
flagged; resolved tickets close themselves after ``tickets.auto_close_resolved_after_days``
with a notice to the customer; follow-up and action-required dates remind in the thread;
managers' digests whose time has come are queued (``core.digest_delivery``, once per
recipient, group and period).

Each job reads only the tickets whose moment has come (an indexed instant on the ticket), a
batch per transaction, and marks what it did in that same transaction as its outbox intents:
a pass repeated for the same instant, or a restart in the middle of one, sends nothing twice
and skips nothing. Each job's last run is recorded (``scheduler_jobs``). On PostgreSQL one
process of many makes the pass (the caller holds a ``Leadership``); rows a staff action has
locked are skipped and taken by the next pass.

Must not read a clock (``now`` is given: ``deskbell tick --now`` replays any instant), nor
render anything or talk to Slack (intents only).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import digest_delivery, groups, intents, lifecycle, sla
from bot.core.customer_mail import send_to_customer
from bot.core.customer_sms import text_closing
from bot.core.desk import Desk
from bot.core.tickets import ticket_view
from bot.store import models as m
from bot.store import upsert
from bot.store.db import Database

log = logging.getLogger(__name__)

BATCH = 200  # tickets per transaction
SYSTEM = "system"

Handle = Callable[[Desk, AsyncSession, m.Ticket, datetime], Awaitable[str]]


async def run_pass(desk: Desk, *, now: datetime | None = None) -> dict[str, int]:
    """One pass of every job as of ``now``: how many tickets each acted on."""
    now = now or desk.clock.now()
    done = {ADOPT: await _adopt_once(desk, now)} if not await _adopted(desk) else {}
    for name, (due, handle) in JOBS.items():
        done[name] = await _sweep(desk, now, due(desk, now), handle)
    done[DIGESTS] = await digest_delivery.send_due(desk, now=now)
    await _record(desk, done, now)
    if any(done.values()):
        log.info("scheduler pass at %s: %s", now.isoformat(),
                 ", ".join(f"{k} {v}" for k, v in done.items() if v))
    return done


ADOPT = "adopt_open_tickets"
DIGESTS = "digests"


async def _adopted(desk: Desk) -> bool:
    async with desk.db.reading() as s:
        return await s.get(m.SchedulerJob, ADOPT) is not None


async def _adopt_once(desk: Desk, now: datetime) -> int:
    """The first pass ever (after the upgrade that brought the rules) gives every ticket that
    was open before them its clocks (``lifecycle.adopt``); its ledger row says it is done."""
    adopted, after = 0, 0
    while True:
        async with desk.db.transaction() as s:
            tickets = (await s.scalars(select(m.Ticket).where(
                m.Ticket.id > after, m.Ticket.status.in_(lifecycle.OPEN_STATUSES),
                m.Ticket.sla_check_at.is_(None), m.Ticket.idle_at.is_(None))
                .order_by(m.Ticket.id).limit(BATCH))).all()
            for ticket in tickets:
                await lifecycle.adopt(s, ticket, settings=desk.settings, now=now)
        adopted += len(tickets)
        if len(tickets) < BATCH:
            return adopted
        after = tickets[-1].id


async def last_runs(db: Database) -> dict[str, datetime]:
    """Each job's last pass (``deskbell check`` shows the latest)."""
    async with db.reading() as s:
        return {row.name: row.last_run_at for row in (await s.scalars(select(m.SchedulerJob))).all()}


async def _record(desk: Desk, done: dict[str, int], now: datetime) -> None:
    """Each job's last run, in one transaction (one disk flush a pass)."""
    async with desk.db.transaction() as s:
        insert = upsert.insert_for(s, m.SchedulerJob).values(
            [{"name": name, "last_run_at": now, "detail": f"{count} {'mail' if name == DIGESTS else 'ticket'}(s)"}
             for name, count in done.items()])
        await s.execute(insert.on_conflict_do_update(
            index_elements=["name"], set_={"last_run_at": insert.excluded.last_run_at,
                                           "detail": insert.excluded.detail}))


async def _sweep(desk: Desk, now: datetime, due: ColumnElement[bool] | None, handle: Handle) -> int:
    if due is None:  # the job is switched off in the config
        return 0
    seen: set[int] = set()
    while True:
        async with desk.db.transaction() as s:
            query = select(m.Ticket).where(due).limit(BATCH)  # no ORDER BY: SQLite would walk the ids
            if s.bind.dialect.name == "postgresql":
                # A ticket a staff action holds right now is taken by the next pass.
                query = query.with_for_update(skip_locked=True, key_share=True)
            tickets = [t for t in (await s.scalars(query)).all() if t.id not in seen]
            s.info["preloaded"] = await _preload(s, tickets)  # held: a session keeps rows weakly
            for ticket in tickets:
                summary = await handle(desk, s, ticket, now)
                await _refresh_card(desk, s, ticket, now, summary)
        seen.update(t.id for t in tickets)
        if not tickets:
            # A handler left a ticket due (a bug): taking it again would loop, not help.
            return len(seen)
        if len(tickets) < BATCH:
            return len(seen)


async def _preload(s: AsyncSession, tickets: list[m.Ticket]) -> list[object]:
    """The batch's customers, staff and groups in three queries, not three per ticket: the
    handlers and the card find them in the session while the caller holds the list."""
    rows: list[object] = []
    for model, ids in ((m.Contact, {t.requester_id for t in tickets}),
                       (m.Staff, {i for t in tickets for i in (t.assignee_id, t.lock_staff_id) if i}),
                       (m.HandlerGroup, {t.group_id for t in tickets})):
        if ids:
            rows += (await s.scalars(select(model).where(model.id.in_(ids)))).all()
    return rows


async def _refresh_card(desk: Desk, s: AsyncSession, ticket: m.Ticket, now: datetime, summary: str) -> None:
    group = await s.get_one(m.HandlerGroup, ticket.group_id)
    await intents.update_card(s, ticket_id=ticket.id, now=now, last_action=summary,
                              ticket=await ticket_view(s, ticket, settings=desk.settings, now=now),
                              repost_to=groups.card_channel(group, desk.settings))


async def _assignee(s: AsyncSession, ticket: m.Ticket) -> m.Staff | None:
    return await s.get(m.Staff, ticket.assignee_id) if ticket.assignee_id else None


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


# ----- reply locks ----------------------------------------------------------------------------


def _locks_due(desk: Desk, now: datetime) -> ColumnElement[bool]:
    return m.Ticket.lock_expires_at <= now


async def _expire_lock(desk: Desk, s: AsyncSession, ticket: m.Ticket, now: datetime) -> str:
    ticket.lock_staff_id = ticket.lock_expires_at = None
    lifecycle.record_event(s, ticket.id, "lock", actor=SYSTEM, now=now, released="expired")
    return "The reply lock expired"


# ----- SLA ------------------------------------------------------------------------------------

TARGET_WORDS = {sla.FIRST_RESPONSE: "first response", sla.RESOLUTION: "resolution"}


def _sla_due(desk: Desk, now: datetime) -> ColumnElement[bool]:
    return m.Ticket.sla_check_at <= now


async def _announce_sla(desk: Desk, s: AsyncSession, ticket: m.Ticket, now: datetime) -> str:
    settings = desk.settings
    group = await s.get_one(m.HandlerGroup, ticket.group_id)
    channel = groups.card_channel(group, settings)
    assignee = await _assignee(s, ticket)
    lines = []
    for alert in sla.due_alerts(ticket, settings, now=now):
        words = TARGET_WORDS[alert.target]
        lifecycle.record_event(s, ticket.id, f"sla_{alert.kind}", actor=SYSTEM, now=now,
                               target=alert.target, due=alert.due.isoformat())
        if alert.kind == "breach":
            text = (f"SLA missed: ticket #{ticket.id} is past its {words} target "
                    f"(due {_when(alert.due)}): {ticket.subject}")
            intents.notice(s, destination=channel, text=text, now=now, ticket_id=ticket.id)
            if assignee is not None:
                intents.notice(s, destination=assignee.slack_user_id, text=text, now=now, ticket_id=ticket.id)
        else:
            text = (f"Escalation: ticket #{ticket.id} is still past its {words} target "
                    f"{settings.sla.escalate_after_minutes} min after it was due "
                    f"({_when(alert.due)}); assignee: "
                    f"{assignee.name or assignee.slack_user_id if assignee else 'nobody'}: {ticket.subject}")
            intents.notice(s, destination=settings.sla.escalate_to or channel, text=text, now=now,
                           ticket_id=ticket.id)
        lines.append(f"{words} target {'missed' if alert.kind == 'breach' else 'escalated'}")
    return "SLA: " + ", ".join(lines) if lines else ""


# ----- idle -----------------------------------------------------------------------------------


def _idle_due(desk: Desk, now: datetime) -> ColumnElement[bool]:
    return m.Ticket.idle_at <= now


async def _flag_idle(desk: Desk, s: AsyncSession, ticket: m.Ticket, now: datetime) -> str:
    ticket.idle_at, ticket.idle_flagged_at = None, now
    minutes = desk.settings.tickets.idle_after_minutes
    lifecycle.record_event(s, ticket.id, "idle", actor=SYSTEM, now=now, after_minutes=minutes)
    return f"Idle for {minutes} min"


# ----- auto-close -----------------------------------------------------------------------------


def _auto_close_due(desk: Desk, now: datetime) -> ColumnElement[bool] | None:
    days = desk.settings.tickets.auto_close_resolved_after_days
    if not days:
        return None
    return (m.Ticket.status == "resolved") & (m.Ticket.resolved_at <= now - timedelta(days=days))


async def _auto_close(desk: Desk, s: AsyncSession, ticket: m.Ticket, now: datetime) -> str:
    days = desk.settings.tickets.auto_close_resolved_after_days
    await lifecycle.change_status(s, ticket, "closed", settings=desk.settings, actor=SYSTEM, now=now,
                                  reason=f"resolved for {days} days")
    contact = await s.get_one(m.Contact, ticket.requester_id)
    told = "the customer was told"
    if ticket.channel == "sms" and contact.phone:
        group = await s.get_one(m.HandlerGroup, ticket.group_id)
        why_not = await text_closing(s, desk.settings, ticket=ticket, contact=contact, group=group, now=now,
                                     said=f"Your request #{ticket.id} was resolved {days} days ago and is now "
                                          f"closed. Text us again if you still need help.")
        if why_not:  # opted out, or no number to text from: close all the same
            told = f"the customer was not texted: {why_not}"
    elif await send_to_customer(s, desk, ticket=ticket, template="ticket_auto_closed", kind="automatic",
                                view=await ticket_view(s, ticket, settings=desk.settings, now=now),
                                now=now, auto_submitted="auto-generated") is None:
        told = "the customer has no address to tell"
    await intents.post_notice_in_thread(s, ticket_id=ticket.id, now=now,
                                        text=f"Closed automatically: resolved for {days} days; {told}.")
    return f"Closed automatically after {days} days resolved"


# ----- reminders ------------------------------------------------------------------------------


def _follow_up_due(desk: Desk, now: datetime) -> ColumnElement[bool]:
    return m.Ticket.follow_up_reminded_at.is_(None) & (m.Ticket.follow_up_at <= now)


def _action_required_due(desk: Desk, now: datetime) -> ColumnElement[bool]:
    return m.Ticket.action_required_reminded_at.is_(None) & (m.Ticket.action_required_at <= now)


def _reminder(what: str, field: str) -> Handle:
    async def remind(desk: Desk, s: AsyncSession, ticket: m.Ticket, now: datetime) -> str:
        setattr(ticket, f"{field}_reminded_at", now)
        when = getattr(ticket, f"{field}_at")
        lifecycle.record_event(s, ticket.id, "reminder", actor=SYSTEM, now=now, what=field,
                               due=when.isoformat())
        assignee = await _assignee(s, ticket)
        await intents.post_notice_in_thread(s, ticket_id=ticket.id, now=now,
                                            text=f"Reminder: {what} was due {_when(when)}.")
        if assignee is not None:
            intents.notice(s, destination=assignee.slack_user_id, now=now, ticket_id=ticket.id,
                           text=f"Reminder: {what} on ticket #{ticket.id} was due {_when(when)}: {ticket.subject}")
        return f"Reminder: {what} due"
    return remind


JOBS: dict[str, tuple[Callable[[Desk, datetime], ColumnElement[bool] | None], Handle]] = {
    "reply_locks": (_locks_due, _expire_lock),
    "sla": (_sla_due, _announce_sla),
    "idle": (_idle_due, _flag_idle),
    "auto_close": (_auto_close_due, _auto_close),
    "follow_up": (_follow_up_due, _reminder("a follow-up", "follow_up")),
    "action_required": (_action_required_due, _reminder("an action", "action_required")),
}
