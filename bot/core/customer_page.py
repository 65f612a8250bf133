"""What a customer sees on their ticket's page: the subject, the status in words, who is on it
(a first name, or the group), and the public conversation — their messages and staff's replies,
never internal notes, events, other customers or staff's Slack ids.

A link that is not valid for the ticket it names (bad, tampered, expired, rotated out, another
ticket's) gives None, the same None as a ticket that does not exist: the page answers one
generic "not found" for all of them. Reads only; no rendering, no HTTP, no clock (``now`` is
given).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.config import Settings
from bot.core import attachment_files, groups, intents, lifecycle, page_links
from bot.core.actions import IdempotencyKey, seen_before
from bot.core.desk import Desk
from bot.core.errors import TicketNotFound
from bot.core.tickets import load_ticket, ticket_view
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
    csrf: str = ""  # proves a form came from this page (bound to the link)
    nonce: str = ""  # names this rendering's forms: the same form posted twice acts once
    can_close: bool = False
    can_reopen: bool = False


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
                    messages=messages, logo_url=settings.customer_page.logo_url,
                    csrf=csrf_token(settings, token), nonce=secrets.token_urlsafe(12),
                    can_close=ticket.status != "closed", can_reopen=_reopenable(settings, ticket, now))


def csrf_token(settings: Settings, token: str) -> str:
    """A form's proof that it came from this link's page (a page elsewhere cannot know it)."""
    secret = settings.customer_page.link_secret.get_secret_value().encode()
    return hmac.new(secret, f"csrf:{token}".encode(), hashlib.sha256).hexdigest()[:32]


def _reopenable(settings: Settings, ticket: m.Ticket, now: datetime) -> bool:
    finished = ticket.closed_at or ticket.resolved_at
    return (ticket.status in ("resolved", "closed") and finished is not None
            and now - finished <= timedelta(days=settings.tickets.reopen_window_days))


class Forbidden(Exception):
    """A form without this page's CSRF token."""


ACTIONS = {"close": "closed", "reopen": "open"}


# What the page says after a button (codes, so a link cannot make the page say anything else).
OUTCOMES = {"closed": "Thank you: your request is closed.", "reopened": "Your request is open again.",
            "too_late": "This request can no longer be reopened here: write to us and we will open a new one.",
            "unknown": "That is not something this page can do."}


async def act(desk: Desk, token: str, *, action: str, csrf: str, nonce: str) -> str | None:
    """A button pressed on the page: ``close`` ("my problem is solved") or ``reopen``. Returns
    an ``OUTCOMES`` code, None when the link opens nothing (404); raises ``Forbidden`` without
    the page's CSRF token. Posting the same form again changes nothing."""
    settings, now = desk.settings, desk.clock.now()
    link = page_links.parse(token)
    if link is None or not settings.customer_page.link_secret.get_secret_value():
        return None
    async with desk.db.transaction() as s:
        try:
            ticket: m.Ticket | None = await load_ticket(s, link.ticket_id, for_update=True)
        except TicketNotFound:
            ticket = None
        requester = ticket.requester_id if ticket is not None else _UNKNOWN_REQUESTER
        if not page_links.valid(link, requester, secrets=_secrets(settings), now=now) or ticket is None:
            return None
        if not hmac.compare_digest(csrf_token(settings, token), csrf):
            raise Forbidden("this form did not come from the request's page")
        if action not in ACTIONS or not nonce or len(nonce) > 64:
            return "unknown"
        if await seen_before(s, IdempotencyKey("page", f"{ticket.id}:{action}:{nonce}"), now=now):
            return _done(action)
        if action == "reopen" and not _reopenable(settings, ticket, now):
            return "too_late"
        contact = await s.get_one(m.Contact, ticket.requester_id)
        actor = f"customer:{contact.email or contact.phone or ''}"
        if await lifecycle.change_status(s, ticket, ACTIONS[action], settings=settings, actor=actor, now=now,
                                         reason="from the customer's page"):
            said = "closed it (the problem is solved)" if action == "close" else "reopened it"
            await intents.post_notice_in_thread(s, ticket_id=ticket.id, now=now,
                                                text=f"The customer {said} from their page.")
            group = await s.get_one(m.HandlerGroup, ticket.group_id)
            await intents.update_card(s, ticket_id=ticket.id, now=now,
                                      ticket=await ticket_view(s, ticket, settings=settings, now=now),
                                      last_action=f"The customer {said} from their page",
                                      repost_to=groups.card_channel(group, settings))
    return _done(action)


def _done(action: str) -> str:
    return "closed" if action == "close" else "reopened"


def _first_name(name: str | None) -> str:
    """The first word of a staff member's name: customers see who helps them, not their full name."""
    return (name or "").split()[0] if (name or "").split() else ""
