"""Read models for people and scripts: ticket lists, one ticket in full, counts for /metrics.

Shapes follow the CLI contract of DESIGN §5 (``deskbell tickets show --json``); keys of
features not built yet are present as ``null``. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select

from bot.core import intents, spool
from bot.core.errors import TicketNotFound
from bot.core.lifecycle import OPEN_STATUSES
from bot.core.tickets import load_ticket, ticket_view
from bot.core.views import MessageView, TicketView, account_of
from bot.store import models as m
from bot.store.db import Database


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _idle_minutes(t: m.Ticket, now: datetime) -> int | None:
    if t.status in ("resolved", "closed"):
        return None
    since = t.last_staff_reply_at or t.created_at
    return max(0, int((now - since).total_seconds() // 60))


STATUS_ORDER = case({s: i for i, s in enumerate(("new", "open", "waiting", "on_hold", "resolved", "closed"))},
                    value=m.Ticket.status)


def _ticket_rows():
    """(ticket, group name, requester, assignee's Slack id) rows, as lists and JSON show them."""
    return (select(m.Ticket, m.HandlerGroup.name, m.Contact, m.Staff.slack_user_id)
            .join(m.HandlerGroup, m.HandlerGroup.id == m.Ticket.group_id)
            .join(m.Contact, m.Contact.id == m.Ticket.requester_id)
            .outerjoin(m.Staff, m.Staff.id == m.Ticket.assignee_id))


async def list_tickets(db: Database, *, now: datetime, status: str | None = None, limit: int = 100,
                       assignee: str | None = None, groups: list[str] | None = None,
                       customer: str | None = None, queue_order: bool = False) -> list[dict[str, Any]]:
    """Tickets, newest first (or, with ``queue_order``, by status then oldest first).

    ``status="open"`` means every unresolved status; ``assignee`` is a Slack user id;
    ``customer`` an email address or phone number.
    """
    async with db.reading() as s:
        query = _ticket_rows().limit(limit)
        query = query.order_by(STATUS_ORDER, m.Ticket.created_at) if queue_order \
            else query.order_by(m.Ticket.id.desc())
        if status == "open":
            query = query.where(m.Ticket.status.in_(OPEN_STATUSES))
        elif status:
            query = query.where(m.Ticket.status == status)
        if assignee:
            query = query.where(m.Staff.slack_user_id == assignee)
        if groups is not None:
            query = query.where(m.HandlerGroup.name.in_(groups))
        if customer:
            query = query.where(or_(m.Contact.email == customer.lower(), m.Contact.phone == customer))
        rows = (await s.execute(query)).all()
        return [_ticket_dict(t, group, contact, who, now=now) for t, group, contact, who in rows]


async def describe(db: Database, number: int) -> tuple[TicketView, MessageView | None]:
    """A ticket and the customer's latest message (what the Reply modal shows)."""
    async with db.reading() as s:
        ticket = await load_ticket(s, number)
        last = await s.scalar(select(m.Message).where(
            m.Message.ticket_id == number, m.Message.kind == "inbound").order_by(m.Message.id.desc()).limit(1))
        return await ticket_view(s, ticket), MessageView.of(last) if last else None


async def ticket_for_card(db: Database, *, remote_id: str) -> int | None:
    """The ticket whose card was delivered as ``remote_id`` (the staff sender's own id for it),
    e.g. to file a message written in the card's thread."""
    async with db.reading() as s:
        return await s.scalar(select(m.OutboxItem.ticket_id).where(
            m.OutboxItem.remote_id == remote_id, m.OutboxItem.kind == intents.CARD).limit(1))


async def show_ticket(db: Database, number: int, *, now: datetime) -> dict[str, Any]:
    async with db.reading() as s:
        row = (await s.execute(_ticket_rows().where(m.Ticket.id == number))).first()
        if row is None:
            raise TicketNotFound(f"there is no ticket #{number}")
        t, group, contact, assignee = row
        result = _ticket_dict(t, group, contact, assignee, now=now)
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
                             "sha256": a.sha256, "withheld": a.withheld}
                            for a in attachments.get(x.id, [])],
        } for x in messages]
        events = (await s.scalars(select(m.Event).where(m.Event.ticket_id == t.id)
                                  .order_by(m.Event.id))).all()
        result["events"] = [{"kind": e.kind, "actor": e.actor, "data": e.data,
                             "created_at": _iso(e.created_at)} for e in events]
        return result


def _ticket_dict(t: m.Ticket, group: str, contact: m.Contact, assignee: str | None, *,
                 now: datetime) -> dict[str, Any]:
    return {
        "number": t.id, "subject": t.subject, "status": t.status, "priority": t.priority,
        "category": t.category, "type": t.type, "group": group, "assignee": assignee,
        "requester": {"name": contact.name, "email": contact.email, "phone": contact.phone},
        "channel": t.channel, "account": account_of(t.door), "created_at": _iso(t.created_at), "updated_at": _iso(t.updated_at),
        "resolved_at": _iso(t.resolved_at), "closed_at": _iso(t.closed_at), "weight": t.weight,
        "idle_minutes": _idle_minutes(t, now), "unread": t.unread,
        "sla": {"first_response_due": None, "resolution_due": None, "breached": None},
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
