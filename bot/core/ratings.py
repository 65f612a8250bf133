"""Customers' ratings of a closed ticket: 1 to 5 and an optional comment, one per closing.

The close confirmation asks for it (links to the ticket's page in the mail, a digit in answer
to the text). Given within ``tickets.rating_change_days`` of the closing, and changeable until
then: a second rating of the same closing replaces the first; the same rating again changes
nothing (a form posted twice, a text the carrier delivered twice). A ticket reopened and
closed again is rated afresh. Staff see each rating in the card's thread and on the card.

Must not decide how the customer was asked or answered (the page and the SMS intake do), nor
render anything. No I/O besides the database.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import groups, intents
from bot.core.tickets import ticket_view
from bot.core.views import stars
from bot.store import models as m

SCORES = range(1, 6)
MAX_COMMENT = 1000
WORDS = {1: "very poor", 2: "poor", 3: "okay", 4: "good", 5: "great"}


def open_for_rating(settings: Settings, ticket: m.Ticket | Any, now: datetime) -> bool:
    """A closed ticket, closed recently enough to be rated (or its rating changed); never
    when ratings are off (``tickets.rating_change_days: 0``)."""
    return (settings.tickets.rating_change_days > 0 and ticket.status == "closed" and ticket.closed_at is not None
            and now - ticket.closed_at <= timedelta(days=settings.tickets.rating_change_days))


async def current(s: AsyncSession, ticket: m.Ticket) -> m.Rating | None:
    """The rating of the ticket's present closing, if given."""
    if ticket.closed_at is None:
        return None
    return await s.scalar(select(m.Rating).where(m.Rating.ticket_id == ticket.id,
                                                 m.Rating.closed_at == ticket.closed_at))


async def rate(s: AsyncSession, settings: Settings, ticket: m.Ticket, *, score: int, comment: str = "",
               via: str, now: datetime) -> str:
    """Record the customer's rating of the ticket's closing, inside the caller's transaction
    (the ticket row locked by the caller where the database has row locks). Returns
    ``rated``, ``changed``, ``unchanged``, ``too_late`` (not closed, or closed too long ago)
    or ``bad_score``."""
    if score not in SCORES:
        return "bad_score"
    if not open_for_rating(settings, ticket, now):
        return "too_late"
    comment = " ".join(comment.split())[:MAX_COMMENT] if comment.strip() else ""
    row = await current(s, ticket)
    if row is not None and row.score == score and (row.comment == comment or not comment):
        return "unchanged"
    before = row.score if row is not None else None
    if row is None:
        row = m.Rating(ticket_id=ticket.id, closed_at=ticket.closed_at, score=score, comment=comment,
                       via=via, created_at=now, updated_at=now)
        s.add(row)
    else:
        row.score, row.via, row.updated_at = score, via, now
        row.comment = comment or row.comment
    s.add(m.Event(ticket_id=ticket.id, kind="rated", actor="customer", created_at=now,
                  data={"score": score, "before": before, "via": via, "comment": bool(row.comment)}))
    await s.flush()
    said = (f"The customer rated this ticket {stars(score)} {score}/5 ({WORDS[score]})"
            + (f", changed from {before}/5" if before is not None else "") + ("." if not row.comment else ":"))
    await intents.post_notice_in_thread(s, ticket_id=ticket.id, now=now,
                                        text=said + (f" “{row.comment}”" if row.comment else ""))
    group = await s.get_one(m.HandlerGroup, ticket.group_id)
    await intents.update_card(s, ticket_id=ticket.id, now=now,
                              ticket=await ticket_view(s, ticket, settings=settings, now=now),
                              last_action=f"The customer rated it {score}/5",
                              repost_to=groups.card_channel(group, settings))
    return "rated" if before is None else "changed"
