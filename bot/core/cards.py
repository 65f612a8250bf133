"""Slack card bookkeeping: which outbox rows post, thread under, or update a ticket's card.

A card is the ``slack.card`` outbox row of its ticket; thread replies and updates refer to
that row and get its channel and ``ts`` when sent (``refs``). All items of one ticket share an
ordering key so Slack sees them in the order they were enqueued. No rendering here (the
``Renderers`` do that) and no network I/O.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.outbox import enqueue
from bot.core.ports import Renderers
from bot.core.views import AttachmentView, CardView, MessageView, TicketView

__all__ = ["CardView", "attachment_views", "card_item", "first_message", "ordering_key", "post_card",
           "post_notice_in_thread", "post_thread_message", "update_card"]
from bot.messages import InboundMessage
from bot.store import models as m

# Placeholder a card update may carry for the permalink of another card (resolved when sent).
NEW_CARD_LINK = "@@new_card_link@@"


def ordering_key(ticket_id: int) -> str:
    return f"slack:t{ticket_id}"


def attachment_views(msg: InboundMessage) -> tuple[AttachmentView, ...]:
    return tuple(AttachmentView(name=a.name, type=a.content_type, size=a.size, sha256=a.sha256)
                 for a in msg.attachments)


def post_card(s: AsyncSession, renderers: Renderers, *, ticket_id: int, card: CardView,
              channel: str, now: datetime) -> m.OutboxItem:
    return enqueue(s, channel="slack", kind="slack.card", ticket_id=ticket_id,
                   ordering_key=ordering_key(ticket_id), now=now,
                   payload={"method": "chat.postMessage",
                            "args": {"channel": channel, **renderers.ticket_card(card)}})


async def card_item(s: AsyncSession, ticket_id: int) -> m.OutboxItem | None:
    """The outbox row of the ticket's current card (the newest one that is not dead)."""
    return await s.scalar(select(m.OutboxItem).where(
        m.OutboxItem.ticket_id == ticket_id, m.OutboxItem.kind == "slack.card",
        m.OutboxItem.status != "dead").order_by(m.OutboxItem.id.desc()).limit(1))


async def post_thread_message(s: AsyncSession, renderers: Renderers, *, ticket_id: int,
                              ticket: TicketView, message: MessageView, now: datetime) -> None:
    await _in_thread(s, ticket_id, renderers.thread_message(ticket, message), now=now)


async def post_notice_in_thread(s: AsyncSession, renderers: Renderers, *, ticket_id: int,
                                text: str, now: datetime) -> None:
    await _in_thread(s, ticket_id, renderers.notice(text), now=now)


async def _in_thread(s: AsyncSession, ticket_id: int, content: dict, *, now: datetime) -> None:
    card = await card_item(s, ticket_id)
    if card is None:
        return
    enqueue(s, channel="slack", kind="slack.thread", ticket_id=ticket_id,
            ordering_key=ordering_key(ticket_id), now=now,
            payload={"method": "chat.postMessage", "args": content,
                     "refs": {"channel": card.id, "thread_ts": card.id}})


async def first_message(s: AsyncSession, ticket_id: int) -> MessageView | None:
    """What the card shows: the customer's first message (or, for a ticket staff opened, the
    first mail sent)."""
    for kinds in (("inbound",), ("outbound",)):
        row = await s.scalar(select(m.Message).where(
            m.Message.ticket_id == ticket_id, m.Message.kind.in_(kinds)).order_by(m.Message.id).limit(1))
        if row is not None:
            return MessageView.of(row)
    return None


async def update_card(s: AsyncSession, renderers: Renderers, *, ticket_id: int,
                      ticket: TicketView, now: datetime, last_action: str = "",
                      transferred_to: str | None = None, card: m.OutboxItem | None = None,
                      new_card: m.OutboxItem | None = None) -> None:
    """Re-render a card in place: the ticket's current one, or ``card``. With ``new_card`` the
    card links to it (``NEW_CARD_LINK`` becomes its permalink when sent)."""
    card = card or await card_item(s, ticket_id)
    if card is None:
        return
    count = await s.scalar(select(func.count(m.Message.id)).where(
        m.Message.ticket_id == ticket_id, m.Message.kind == "inbound"))
    view = CardView(ticket=ticket, first_message=await first_message(s, ticket_id),
                    message_count=count or 0, last_action=last_action, transferred_to=transferred_to)
    enqueue(s, channel="slack", kind="slack.card_update", ticket_id=ticket_id,
            ordering_key=ordering_key(ticket_id), now=now,
            payload={"method": "chat.update", "args": renderers.ticket_card(view),
                     "refs": {"channel": card.id, "ts": card.id,
                              **({f"link:{NEW_CARD_LINK}": new_card.id} if new_card else {})}})
