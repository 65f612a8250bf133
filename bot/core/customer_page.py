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
import itertools
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import attachment_files, groups, intents, lifecycle, page_links, ratings
from bot.core.actions import IdempotencyKey, seen_before
from bot.core.desk import Desk
from bot.core.errors import TicketNotFound
from bot.core.spool import Arrival
from bot.core.tickets import load_ticket, ticket_view
from bot.core.views import RatingView
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
    can_rate: bool = False  # closed recently enough to be rated (core.ratings)
    rating: RatingView | None = None  # this closing's rating, when given
    rate_choice: int | None = None  # the score a rating link in the close mail chose


def _link(settings: Settings, token: str) -> page_links.PageToken | None:
    """What a token names, before its MAC is checked against the ticket; None when it names
    nothing or the page is off."""
    if not settings.customer_page.link_secret.get_secret_value():
        return None
    return page_links.parse(token)


def _secrets(settings: Settings) -> list[str]:
    page = settings.customer_page
    return [page.link_secret.get_secret_value(), *(s.get_secret_value() for s in page.previous_link_secrets)]


# The whole page in one statement, built once: the ticket with its group, assignee and this
# closing's rating, then one row per public message and file (the ticket's columns repeated).
# A customer's page is opened often and must cost little more than a static one (bench/customer_page.py).
_Assignee, _Author = aliased(m.Staff), aliased(m.Staff)
_T, _M, _A, _R = m.Ticket, m.Message, m.AttachmentRow, m.Rating
_PAGE = (select(_T.id, _T.subject, _T.status, _T.requester_id, _T.closed_at, _T.resolved_at,
                m.HandlerGroup.name, _Assignee.name, _R.score, _R.comment, _R.updated_at,
                _M.id, _M.kind, _M.created_at, _M.body, _Author.name,
                _A.id, _A.name, _A.size, _A.sha256, _A.withheld)
         .join(m.HandlerGroup, m.HandlerGroup.id == _T.group_id)
         .outerjoin(_Assignee, _Assignee.id == _T.assignee_id)
         .outerjoin(_R, and_(_R.ticket_id == _T.id, _R.closed_at == _T.closed_at))
         .outerjoin(_M, and_(_M.ticket_id == _T.id, or_(_M.kind == "inbound", _M.kind == "outbound")))
         .outerjoin(_Author, _Author.id == _M.staff_id)
         .outerjoin(_A, _A.message_id == _M.id)
         .where(_T.id == bindparam("ticket"))
         .order_by(_M.id, _A.id))


@dataclass(frozen=True)
class _Closing:
    """What ``_reopenable`` and ``ratings.open_for_rating`` read of a ticket."""

    status: str
    closed_at: datetime | None
    resolved_at: datetime | None


async def page(desk: Desk, token: str, *, rate: int | None = None) -> PageView | None:
    """The page a link opens, or None. ``rate``: the score of the close mail's rating link
    followed (the page offers it chosen; only the form's button records it, so a mail
    scanner that follows every link in a mail rates nothing)."""
    settings, now = desk.settings, desk.clock.now()
    link = _link(settings, token)
    if link is None:
        return None
    rows = await desk.db.read_rows(_PAGE, ticket=link.ticket_id)
    requester = rows[0][3] if rows else _UNKNOWN_REQUESTER
    if not page_links.valid(link, requester, secrets=_secrets(settings), now=now) or not rows:
        return None
    (number, subject, status, _, closed_at, resolved_at, group, assignee,
     score, comment, rated_at) = rows[0][:11]
    messages: list[PublicMessage] = []
    for message_id, talk in itertools.groupby((row[11:] for row in rows if row[11] is not None),
                                              key=lambda row: row[0]):
        first, *more = talk
        _, kind, at, body, author = first[:5]
        files = tuple(PublicFile(name, size, attachment_files.link_for(settings, file_id, now=now)
                                 if sha256 and not withheld else None)
                      for file_id, name, size, sha256, withheld in (row[5:] for row in (first, *more))
                      if file_id is not None)
        messages.append(PublicMessage(from_customer=kind == "inbound",
                                      author="You" if kind == "inbound" else _first_name(author) or group,
                                      at=at, body=body, files=files))
    closing = _Closing(status, closed_at, resolved_at)
    return PageView(number=number, subject=subject, status=status,
                    status_words=STATUS_WORDS.get(status, status),
                    handler=_first_name(assignee) or group, group=group,
                    messages=tuple(messages), logo_url=settings.customer_page.logo_url,
                    csrf=csrf_token(settings, token), nonce=secrets.token_urlsafe(12),
                    can_close=status != "closed", can_reopen=_reopenable(settings, closing, now),
                    can_rate=ratings.open_for_rating(settings, closing, now),
                    rating=RatingView(score, comment, rated_at) if score is not None else None,
                    rate_choice=rate if rate in ratings.SCORES else None)


def csrf_token(settings: Settings, token: str) -> str:
    """A form's proof that it came from this link's page (a page elsewhere cannot know it)."""
    secret = settings.customer_page.link_secret.get_secret_value().encode()
    return hmac.new(secret, f"csrf:{token}".encode(), hashlib.sha256).hexdigest()[:32]


def _reopenable(settings: Settings, ticket: m.Ticket | _Closing, now: datetime) -> bool:
    finished = ticket.closed_at or ticket.resolved_at
    return (ticket.status in ("resolved", "closed") and finished is not None
            and now - finished <= timedelta(days=settings.tickets.reopen_window_days))


class Forbidden(Exception):
    """A form without this page's CSRF token."""


STATUS_ACTIONS = {"close": "closed", "reopen": "open"}
MAX_MESSAGE_CHARS = 10_000


# What the page says after a button (codes, so a link cannot make the page say anything else).
OUTCOMES = {"closed": "Thank you: your request is closed.", "reopened": "Your request is open again.",
            "too_late": "This request can no longer be reopened here: write to us and we will open a new one.",
            "sent": "Thank you: your message is on its way to us. It appears below in a moment.",
            "empty": "There was nothing to send: write your message, then press Send.",
            "too_long": f"That message is too long for this page ({MAX_MESSAGE_CHARS:,} characters at most): "
                        "please shorten it, or send it by email.",
            "rated": "Thank you for your rating.", "rating_changed": "Your rating has been changed.",
            "rating_unchanged": "Thank you for your rating.",
            "rating_too_late": "This request can no longer be rated.",
            "no_score": "Choose a rating from 1 to 5, then press Send rating.",
            "unknown": "That is not something this page can do."}
_RATING_OUTCOMES = {"rated": "rated", "changed": "rating_changed", "unchanged": "rating_unchanged",
                    "too_late": "rating_too_late", "bad_score": "no_score"}


async def _proved(s: AsyncSession, desk: Desk, token: str, csrf: str, *, lock: bool = True) -> m.Ticket | None:
    """The ticket a link opens (``lock``: for the caller's write transaction); None when it
    opens nothing (404). Raises ``Forbidden`` when the form lacks this page's CSRF token."""
    settings = desk.settings
    link = _link(settings, token)
    if link is None:
        return None
    try:
        ticket: m.Ticket | None = await load_ticket(s, link.ticket_id, for_update=lock)
    except TicketNotFound:
        ticket = None
    requester = ticket.requester_id if ticket is not None else _UNKNOWN_REQUESTER
    if not page_links.valid(link, requester, secrets=_secrets(settings), now=desk.clock.now()) or ticket is None:
        return None
    if not hmac.compare_digest(csrf_token(settings, token), csrf):
        raise Forbidden("this form did not come from the request's page")
    return ticket


def _nonce(form: Mapping[str, str]) -> str | None:
    nonce = form.get("nonce", "")
    return nonce if nonce and len(nonce) <= 64 else None


async def act(desk: Desk, token: str, form: Mapping[str, str]) -> str | None:
    """A button pressed on the page: ``close`` ("my problem is solved"), ``reopen``, or
    ``rate`` (``score`` 1–5, ``comment``). Returns an ``OUTCOMES`` code, None when the link
    opens nothing (404); raises ``Forbidden`` without the page's CSRF token. Posting the same
    form again changes nothing."""
    settings, now = desk.settings, desk.clock.now()
    action, nonce = form.get("action", ""), _nonce(form)
    async with desk.db.transaction() as s:
        ticket = await _proved(s, desk, token, form.get("csrf", ""))
        if ticket is None:
            return None
        if action == "rate":  # rating the same closing again replaces it: no nonce needed
            score = form.get("score", "")
            outcome = await ratings.rate(s, settings, ticket, score=int(score) if score.isdigit() else 0,
                                         comment=form.get("comment", "")[:ratings.MAX_COMMENT * 2],
                                         via="page", now=now)
            return _RATING_OUTCOMES[outcome]
        if action not in STATUS_ACTIONS or nonce is None:
            return "unknown"
        if await seen_before(s, IdempotencyKey("page", f"{ticket.id}:{action}:{nonce}"), now=now):
            return _done(action)
        if action == "reopen" and not _reopenable(settings, ticket, now):
            return "too_late"
        contact = await s.get_one(m.Contact, ticket.requester_id)
        actor = f"customer:{contact.email or contact.phone or ''}"
        if await lifecycle.change_status(s, ticket, STATUS_ACTIONS[action], settings=settings, actor=actor,
                                         now=now, reason="from the customer's page"):
            said = "closed it (the problem is solved)" if action == "close" else "reopened it"
            await intents.post_notice_in_thread(s, ticket_id=ticket.id, now=now,
                                                text=f"The customer {said} from their page.")
            group = await s.get_one(m.HandlerGroup, ticket.group_id)
            await intents.update_card(s, ticket_id=ticket.id, now=now,
                                      ticket=await ticket_view(s, ticket, settings=settings, now=now),
                                      last_action=f"The customer {said} from their page",
                                      repost_to=groups.card_channel(group, settings))
    return _done(action)


async def message_arrival(desk: Desk, token: str, form: Mapping[str, str]) -> Arrival | str | None:
    """A message written on the page, proved (link and form) and made into what the page's
    door spools (``channel`` web, the ticket and requester inside): from there it goes the way
    of every customer message, through intake, reopening the ticket as a mail would. Returns
    the ``Arrival``, or an ``OUTCOMES`` code when there is nothing to send, or None (404);
    raises ``Forbidden`` without the page's CSRF token. The form's nonce names the message, so
    posting it twice spools it once."""
    text = form.get("message", "").replace("\r\n", "\n").strip()
    nonce = _nonce(form)
    async with desk.db.reading() as s:
        ticket = await _proved(s, desk, token, form.get("csrf", ""), lock=False)
        if ticket is None:
            return None
        contact = await s.get_one(m.Contact, ticket.requester_id)
    if nonce is None:
        return "unknown"
    if not text:
        return "empty"
    if len(text) > MAX_MESSAGE_CHARS:
        return "too_long"
    address = contact.email or contact.phone or ""
    document = {"ticket": ticket.id, "address": address, "name": contact.name or "", "body": text}
    return Arrival(channel="web", door="page", source_id=f"t{ticket.id}:{nonce}",
                   data=json.dumps(document, ensure_ascii=False).encode("utf-8"),
                   received_at=desk.clock.now(), sender_key=address)


def _done(action: str) -> str:
    return "closed" if action == "close" else "reopened"


def _first_name(name: str | None) -> str:
    """The first word of a staff member's name: customers see who helps them, not their full name."""
    return (name or "").split()[0] if (name or "").split() else ""
