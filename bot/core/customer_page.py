"""What a customer sees on their ticket's page: the subject, the status in words, who is on it
(a first name, or the group), and the public conversation — their messages and staff's replies,
never internal notes, events, other customers or staff's Slack ids.

A link that is not valid for the ticket it names (bad, tampered, expired, rotated out, another
ticket's) gives None, the same None as a ticket that does not exist: the page answers one
generic "not found" for all of them. Reads only; no rendering, no HTTP, no clock (``now`` is
given).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.config import Settings
from bot.core import attachment_files, page_links
from bot.core.desk import Desk
from bot.store import models as m

STATUS_WORDS = {"new": "Received, waiting for our team", "open": "Being worked on",
                "waiting": "Waiting for your reply", "on_hold": "On hold",
                "resolved": "Resolved", "closed": "Closed"}
_UNKNOWN_REQUESTER = -1  # a MAC is still computed for a ticket that does not exist (no oracle)


@dataclass(frozen=True)
class PublicFile:
    name: str
    size: int
    link: str | None  # a signed download link, when attachments.link_secret is set


@dataclass(frozen=True)
class PublicMessage:
    from_customer: bool
    author: str  # "You", a staff member's first name, or the group
    at: datetime
    body: str
    files: tuple[PublicFile, ...] = ()


@dataclass(frozen=True)
class PageView:
    number: int
    subject: str
    status: str
    status_words: str
    handler: str
    group: str
    messages: tuple[PublicMessage, ...]
    logo_url: str = ""


def link_for(settings: Settings, ticket_id: int, requester_id: int, *, now: datetime) -> str | None:
    """The page's signed link for this ticket's requester; None when the page is off."""
    page = settings.customer_page
    secret = page.link_secret.get_secret_value()
    if not secret:
        return None
    signed = page_links.token(ticket_id, requester_id, secret=secret, now=now,
                              ttl=timedelta(days=page.link_ttl_days))
    return f"{settings.web.public_url.rstrip('/')}/t/{signed}"


def _secrets(settings: Settings) -> list[str]:
    page = settings.customer_page
    return [page.link_secret.get_secret_value(), *(s.get_secret_value() for s in page.previous_link_secrets)]


async def page(desk: Desk, token: str) -> PageView | None:
    settings, now = desk.settings, desk.clock.now()
    link = page_links.parse(token)
    if link is None or not settings.customer_page.link_secret.get_secret_value():
        return None
    async with desk.db.reading() as s:
        ticket = await s.get(m.Ticket, link.ticket_id)
        requester = ticket.requester_id if ticket is not None else _UNKNOWN_REQUESTER
        if not page_links.valid(link, requester, secrets=_secrets(settings), now=now) or ticket is None:
            return None
        group = await s.get_one(m.HandlerGroup, ticket.group_id)
        assignee = await s.get(m.Staff, ticket.assignee_id) if ticket.assignee_id else None
        rows = (await s.execute(select(m.Message, m.Staff.name).outerjoin(m.Staff, m.Staff.id == m.Message.staff_id)
                                .where(m.Message.ticket_id == ticket.id, m.Message.kind.in_(("inbound", "outbound")))
                                .order_by(m.Message.id))).all()
        files: dict[int, list[m.AttachmentRow]] = {}
        for row in (await s.scalars(select(m.AttachmentRow).where(
                m.AttachmentRow.message_id.in_([message.id for message, _ in rows])).order_by(m.AttachmentRow.id))).all():
            files.setdefault(row.message_id, []).append(row)
    messages = tuple(PublicMessage(
        from_customer=message.kind == "inbound",
        author="You" if message.kind == "inbound" else _first_name(staff_name) or group.name,
        at=message.created_at, body=message.body,
        files=tuple(PublicFile(f.name, f.size, attachment_files.link_for(settings, f.id, now=now)
                               if f.sha256 and not f.withheld else None) for f in files.get(message.id, [])))
        for message, staff_name in rows)
    return PageView(number=ticket.id, subject=ticket.subject, status=ticket.status,
                    status_words=STATUS_WORDS.get(ticket.status, ticket.status),
                    handler=_first_name(assignee.name if assignee else "") or group.name, group=group.name,
                    messages=messages, logo_url=settings.customer_page.logo_url)


def _first_name(name: str | None) -> str:
    """The first word of a staff member's name: customers see who helps them, not their full name."""
    return (name or "").split()[0] if (name or "").split() else ""
