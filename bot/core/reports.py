"""Read models for people and scripts: ticket lists, one ticket in full, counts for /metrics.

Shapes follow the CLI contract of DESIGN §5 (``deskbell tickets show --json``); keys of
features not built yet are present as ``null``. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from bot.config import Settings
from bot.core import intents, sla, spool, weighing
from bot.core.desk import Desk
from bot.core.errors import TicketNotFound
from bot.core.lifecycle import OPEN_STATUSES
from bot.core.tickets import load_ticket, rating_of, ticket_view
from bot.core.views import MessageView, TicketView, account_of
from bot.store import models as m
from bot.store.db import Database


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None



def _ticket_rows():
    """(ticket, group name, requester, assignee's Slack id) rows, as lists and JSON show them."""
    return (select(m.Ticket, m.HandlerGroup.name, m.Contact, m.Staff.slack_user_id)
            .join(m.HandlerGroup, m.HandlerGroup.id == m.Ticket.group_id)
            .join(m.Contact, m.Contact.id == m.Ticket.requester_id)
            .outerjoin(m.Staff, m.Staff.id == m.Ticket.assignee_id))


async def list_tickets(db: Database, *, now: datetime, status: str | None = None, limit: int = 100,
                       assignee: str | None = None, groups: list[str] | None = None,
                       customer: str | None = None, queue_order: bool = False, overdue: bool = False,
                       settings: Settings | None = None) -> list[dict[str, Any]]:
    """Tickets, newest first (or, with ``queue_order``, heaviest first: the weight as of
    ``now``, then the oldest).

    ``status="open"`` means every unresolved status; ``assignee`` is a Slack user id;
    ``customer`` an email address or phone number; ``overdue``: only open tickets past an SLA
    target or idle. ``settings``: the rules to weigh by (the embedded defaults if not given).
    """
    settings = settings or Settings()
    async with db.reading() as s:
        query = _ticket_rows()
        # Weight grows with the time waited, so a queue is ordered after reading all of it.
        whole = queue_order or overdue
        query = query.order_by(m.Ticket.id.desc()) if not whole else query.order_by(m.Ticket.id)
        if not whole:
            query = query.limit(limit)
        if status == "open" or overdue:
            query = query.where(m.Ticket.status.in_(OPEN_STATUSES))
        elif status:
            query = query.where(m.Ticket.status == status)
        if assignee:
            query = query.where(m.Staff.slack_user_id == assignee)
        if groups is not None:
            query = query.where(m.HandlerGroup.name.in_(groups))
        if customer:
            query = query.where(or_(m.Contact.email == customer.lower(), m.Contact.phone == customer))
        rows = [_ticket_dict(t, group, contact, who, now=now, settings=settings)
                for t, group, contact, who in (await s.execute(query)).all()]
    if overdue:
        rows = [r for r in rows if r["sla"]["breached"] or r["idle"]]
    if whole:
        rows.sort(key=lambda r: (-r["weight"], r["created_at"], r["number"]))
        rows = rows[:limit]
    return rows


async def describe(desk: Desk, number: int) -> tuple[TicketView, MessageView | None]:
    """A ticket and the customer's latest message (what the Reply modal shows)."""
    async with desk.db.reading() as s:
        ticket = await load_ticket(s, number)
        last = await s.scalar(select(m.Message).where(
            m.Message.ticket_id == number, m.Message.kind == "inbound").order_by(m.Message.id.desc()).limit(1))
        view = await ticket_view(s, ticket, settings=desk.settings, now=desk.clock.now())
        return view, MessageView.of(last) if last else None


async def ticket_for_card(db: Database, *, remote_id: str) -> int | None:
    """The ticket whose card was delivered as ``remote_id`` (the staff sender's own id for it),
    e.g. to file a message written in the card's thread."""
    async with db.reading() as s:
        return await s.scalar(select(m.OutboxItem.ticket_id).where(
            m.OutboxItem.remote_id == remote_id, m.OutboxItem.kind == intents.CARD).limit(1))


async def show_ticket(db: Database, number: int, *, now: datetime,
                      settings: Settings | None = None) -> dict[str, Any]:
    """One ticket in full (DESIGN §5); ``settings`` as for ``list_tickets``."""
    async with db.reading() as s:
        row = (await s.execute(_ticket_rows().where(m.Ticket.id == number))).first()
        if row is None:
            raise TicketNotFound(f"there is no ticket #{number}")
        t, group, contact, assignee = row
        result = _ticket_dict(t, group, contact, assignee, now=now, settings=settings or Settings())
        messages = (await s.scalars(select(m.Message).where(m.Message.ticket_id == t.id)
                                    .order_by(m.Message.id))).all()
        doors = dict((await s.execute(select(m.RawMessage.id, m.RawMessage.door).where(
            m.RawMessage.id.in_({x.raw_message_id for x in messages if x.raw_message_id})))).all())
        attachments: dict[int, list[m.AttachmentRow]] = {}
        for a in (await s.scalars(select(m.AttachmentRow).where(
                m.AttachmentRow.message_id.in_([x.id for x in messages])))).all():
            attachments.setdefault(a.message_id, []).append(a)
        result["messages"] = [{
            "kind": x.kind, "channel": x.channel, "account": account_of(doors.get(x.raw_message_id, "")),
            "sender": x.sender, "subject": x.subject,
            "body": x.body, "quoted": x.quoted, "message_id": x.message_id,
            "remote_id": x.remote_id, "delivery_status": x.delivery_status,
            "auto_submitted": x.auto_submitted, "defects": list(x.defects or []),
            "created_at": _iso(x.created_at),
            "attachments": [{"name": a.name, "type": a.content_type, "size": a.size,
                             "sha256": a.sha256, "withheld": a.withheld, "sniffed_type": a.sniffed_type,
                             "inline": a.inline}
                            for a in attachments.get(x.id, [])],
        } for x in messages]
        rating = await rating_of(s, t)
        result["rating"] = ({"score": rating.score, "comment": rating.comment, "at": _iso(rating.at)}
                            if rating is not None else None)
        events = (await s.scalars(select(m.Event).where(m.Event.ticket_id == t.id)
                                  .order_by(m.Event.id))).all()
        result["events"] = [{"kind": e.kind, "actor": e.actor, "data": e.data,
                             "created_at": _iso(e.created_at)} for e in events]
        return result


def _ticket_dict(t: m.Ticket, group: str, contact: m.Contact, assignee: str | None, *,
                 now: datetime, settings: Settings) -> dict[str, Any]:
    clocks = sla.state(t, now=now)
    return {
        "number": t.id, "subject": t.subject, "status": t.status, "priority": t.priority,
        "category": t.category, "type": t.type, "group": group, "assignee": assignee,
        "requester": {"name": contact.name, "email": contact.email, "phone": contact.phone},
        "channel": t.channel, "account": account_of(t.door), "created_at": _iso(t.created_at), "updated_at": _iso(t.updated_at),
        "resolved_at": _iso(t.resolved_at), "closed_at": _iso(t.closed_at),
        "weight": weighing.live_weight(t, sla.calendar(settings, group), now=now),
        "idle_minutes": weighing.idle_minutes(settings, t, now=now),
        "idle": weighing.is_idle(settings, t, now=now), "unread": t.unread,
        "follow_up_at": _iso(t.follow_up_at), "action_required_at": _iso(t.action_required_at),
        "sla": {"first_response_due": _iso(clocks.first_response_due),
                "resolution_due": _iso(clocks.resolution_due), "breached": clocks.breached,
                "first_response_breached": clocks.first_response_breached,
                "resolution_breached": clocks.resolution_breached,
                "first_response_at": _iso(clocks.first_response_met_at), "paused": clocks.paused},
    }


async def counts(db: Database) -> dict[str, dict[str, int]]:
    """Tickets by status, outbox rows by channel+status, held quarantine and messages waiting
    in the spool for intake (for /metrics)."""
    async with db.reading() as s:
        tickets = dict((await s.execute(select(m.Ticket.status, func.count())
                                        .group_by(m.Ticket.status))).all())
        outbox = {f"{c}:{st}": n for c, st, n in (await s.execute(
            select(m.OutboxItem.channel, m.OutboxItem.status, func.count())
            .group_by(m.OutboxItem.channel, m.OutboxItem.status))).all()}
        held = await s.scalar(select(func.count(m.Quarantine.id)).where(m.Quarantine.status == "held"))
        queued = await spool.queued_count(s)
    return {"tickets": tickets, "outbox": outbox, "quarantine": {"held": held or 0},
            "spool": {"queued": queued}}


@dataclass(frozen=True)
class QuarantineOutcome:
    id: int
    outcome: str  # what became of it, for people: "reprocessed ticket #12", "still held: …"


async def quarantine_outcomes(db: Database, ids: list[int]) -> list[QuarantineOutcome]:
    """Where held mail stands now (after ``deskbell reprocess``)."""
    async with db.reading() as s:
        rows = (await s.scalars(select(m.Quarantine).where(m.Quarantine.id.in_(ids))
                                .order_by(m.Quarantine.id))).all()
    return [QuarantineOutcome(q.id, _outcome(q)) for q in rows]


def _outcome(q: m.Quarantine) -> str:
    if q.status == "reprocessed":
        return f"reprocessed ticket #{q.ticket_id}" if q.ticket_id else "reprocessed"
    if q.status == "duplicate":
        return "a copy of mail already ingested; nothing more to do"
    return f"still held: {q.reason} {q.detail}".strip()
