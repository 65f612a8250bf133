"""Outbox intents: what core asks the outside world to do, in no vendor's terms.

Core records an intent (post this ticket's card, update it, post in its thread, send this
customer a message by email or SMS, tell people something) with a snapshot of the views to
show, in the caller's transaction; the dispatcher hands it to the sender of its channel,
which alone knows Slack's methods, MIME or Twilio's parameters and how a delivered item is
identified. Every intent of one ticket on one channel shares an ordering key, so they go out
in the order recorded. No rendering and no network I/O here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.views import (
    AttachmentView,
    CardView,
    MessageView,
    OutgoingEmail,
    OutgoingMail,
    QuarantineView,
    TicketView,
    snapshot,
)
from bot.messages import InboundMessage
from bot.store import models as m
from bot.store.db import mark_outbox_enqueued

# Staff-facing intents (the "slack" channel's sender shows them).
CARD = "ticket.card"  # payload: destination, card
CARD_UPDATE = "ticket.card_update"  # payload: card, transferred_to?; refs: card, new_card?
THREAD_MESSAGE = "ticket.thread"  # payload: ticket, message; refs: card
THREAD_NOTICE = "ticket.thread_notice"  # payload: text; refs: card
THREAD_UPDATE = "ticket.thread_update"  # payload: ticket, message; refs: post (a THREAD_MESSAGE)
FILE = "ticket.file"  # payload: file (an AttachmentView), ticket number; refs: card
NOTICE = "notice"  # payload: destination (a channel or a person), text
QUARANTINE_NOTICE = "quarantine.notice"  # payload: destination, item
# Customer-facing intents (the channel says how: "email" or "sms").
CUSTOMER_MESSAGE = "customer.message"  # email payload: from, to, mail; sms payload: from, to, body
# Mail to people who are not a ticket's customer (managers' digests).
MAIL = "mail"  # payload: from, to, mail (an OutgoingMail)


def enqueue(s: AsyncSession, *, channel: str, kind: str, payload: dict[str, Any], now: datetime,
            ticket_id: int | None = None, message_id: int | None = None,
            ordering_key: str | None = None, refs: dict[str, int] | None = None) -> m.OutboxItem:
    """Add one intent to the caller's transaction (delivered after it commits). ``refs`` name
    other intents whose delivered ids the sender needs (the card a thread post belongs to)."""
    if refs:
        payload = {**payload, "refs": refs}
    item = m.OutboxItem(channel=channel, kind=kind, payload=payload, ticket_id=ticket_id,
                        message_id=message_id, ordering_key=ordering_key, status="pending",
                        attempts=0, due_at=now, created_at=now)
    s.add(item)
    mark_outbox_enqueued(s)
    return item


def staff_ordering_key(ticket_id: int) -> str:
    return f"slack:t{ticket_id}"


def attachment_views(msg: InboundMessage) -> tuple[AttachmentView, ...]:
    return tuple(AttachmentView(name=a.name, type=a.content_type, size=a.size, sha256=a.sha256 or "",
                                withheld=a.withheld) for a in msg.attachments)


# ----- the ticket's card and its thread -------------------------------------------------------


def post_card(s: AsyncSession, *, ticket_id: int, card: CardView, destination: str,
              now: datetime) -> m.OutboxItem:
    return enqueue(s, channel="slack", kind=CARD, ticket_id=ticket_id, now=now,
                   ordering_key=staff_ordering_key(ticket_id),
                   payload={"destination": destination, "card": snapshot(card)})


async def card_item(s: AsyncSession, ticket_id: int) -> m.OutboxItem | None:
    """The intent that posted the ticket's current card (the newest one that is not dead)."""
    return await s.scalar(select(m.OutboxItem).where(
        m.OutboxItem.ticket_id == ticket_id, m.OutboxItem.kind == CARD,
        m.OutboxItem.status != "dead").order_by(m.OutboxItem.id.desc()).limit(1))


async def post_thread_message(s: AsyncSession, *, ticket_id: int, ticket: TicketView,
                              message: MessageView, now: datetime,
                              card: m.OutboxItem | None = None, follows_delivery: bool = False) -> None:
    """``follows_delivery``: the post shows the message's delivery and is updated when the
    customer message is sent or given up (``show_delivery``)."""
    item = await _in_thread(s, ticket_id, THREAD_MESSAGE, {"ticket": snapshot(ticket),
                                                           "message": snapshot(message)}, now=now, card=card)
    if item is not None and follows_delivery:
        item.message_id = message.id


async def show_delivery(s: AsyncSession, message_ids: dict[int, tuple[str, str | None]], *,
                        now: datetime) -> None:
    """Re-render the thread posts that follow these messages' delivery ({message id:
    (delivery status, remote id)}), so staff see "sent" or "not delivered" where they wrote."""
    if not message_ids:
        return
    posts = (await s.execute(select(m.OutboxItem.id, m.OutboxItem.ticket_id, m.OutboxItem.message_id,
                                    m.OutboxItem.payload).where(
        m.OutboxItem.message_id.in_(message_ids), m.OutboxItem.kind == THREAD_MESSAGE))).all()
    for post in posts:
        status, remote = message_ids[post.message_id]
        message = {**post.payload["message"], "delivery_status": status, "remote_id": remote}
        enqueue(s, channel="slack", kind=THREAD_UPDATE, ticket_id=post.ticket_id, now=now,
                ordering_key=staff_ordering_key(post.ticket_id),
                payload={"ticket": post.payload["ticket"], "message": message}, refs={"post": post.id})


async def post_files(s: AsyncSession, *, ticket_id: int, files: list[m.AttachmentRow], now: datetime,
                     card: m.OutboxItem | None = None) -> None:
    """Each file a customer sent, into the card's thread: one intent per file, so each is
    retried (and delivered once) on its own. Files whose bytes we do not have (withheld, or
    still to be fetched) are listed with their message instead."""
    for row in files:
        if row.withheld or row.sha256 is None:
            continue
        await _in_thread(s, ticket_id, FILE, {"file": snapshot(AttachmentView.of(row)), "ticket": ticket_id},
                         now=now, card=card)


async def post_notice_in_thread(s: AsyncSession, *, ticket_id: int, text: str, now: datetime) -> None:
    await _in_thread(s, ticket_id, THREAD_NOTICE, {"text": text}, now=now)


async def _in_thread(s: AsyncSession, ticket_id: int, kind: str, payload: dict[str, Any], *,
                     now: datetime, card: m.OutboxItem | None = None) -> m.OutboxItem | None:
    card = card or await card_item(s, ticket_id)
    if card is None:
        return None
    return enqueue(s, channel="slack", kind=kind, ticket_id=ticket_id, now=now, payload=payload,
                   ordering_key=staff_ordering_key(ticket_id), refs={"card": card.id})


async def first_message(s: AsyncSession, ticket_id: int) -> MessageView | None:
    """What the card shows: the customer's first message (or, for a ticket staff opened, the
    first mail sent)."""
    for kinds in (("inbound",), ("outbound",)):
        row = await s.scalar(select(m.Message).where(
            m.Message.ticket_id == ticket_id, m.Message.kind.in_(kinds)).order_by(m.Message.id).limit(1))
        if row is not None:
            return MessageView.of(row)
    return None


async def update_card(s: AsyncSession, *, ticket_id: int, ticket: TicketView, now: datetime,
                      last_action: str = "", transferred_to: str | None = None,
                      card: m.OutboxItem | None = None, new_card: m.OutboxItem | None = None,
                      repost_to: str | None = None) -> None:
    """Re-render a card in place: the ticket's current one, or ``card``. With ``new_card`` the
    card links to that one (the sender makes the link once both are delivered). A ticket
    whose card never went out (it was given up on) gets a new one in ``repost_to``."""
    card = card or await card_item(s, ticket_id)
    if card is None and repost_to is None:
        return
    count = await s.scalar(select(func.count(m.Message.id)).where(
        m.Message.ticket_id == ticket_id, m.Message.kind == "inbound"))
    files = await s.scalar(select(func.count(m.AttachmentRow.id)).join(
        m.Message, m.Message.id == m.AttachmentRow.message_id).where(m.Message.ticket_id == ticket_id))
    view = CardView(ticket=ticket, first_message=await first_message(s, ticket_id),
                    message_count=count or 0, last_action=last_action, transferred_to=transferred_to,
                    attachment_count=files or 0)
    if card is None:
        post_card(s, ticket_id=ticket_id, card=view, destination=repost_to or "", now=now)
        return
    payload = {"card": snapshot(view)}
    if new_card is None and transferred_to is None and await _coalesced(s, ticket_id, card.id, payload):
        return
    enqueue(s, channel="slack", kind=CARD_UPDATE, ticket_id=ticket_id, now=now,
            ordering_key=staff_ordering_key(ticket_id), payload=payload,
            refs={"card": card.id, **({"new_card": new_card.id} if new_card else {})})


async def _coalesced(s: AsyncSession, ticket_id: int, card_id: int, payload: dict[str, Any]) -> bool:
    """Fold a card update into one still waiting for the same card: the card is rendered once
    with the newest content (Slack takes about one update a second per channel, and a sweep or
    a busy ticket would otherwise queue several). Only an item nobody has claimed yet is
    changed: the UPDATE re-checks its status, so one a dispatcher took meanwhile is left alone
    and a new item is queued instead."""
    waiting = (await s.execute(select(m.OutboxItem.id, m.OutboxItem.payload).where(
        m.OutboxItem.ticket_id == ticket_id, m.OutboxItem.kind == CARD_UPDATE,
        m.OutboxItem.status == "pending", m.OutboxItem.attempts == 0)
        .order_by(m.OutboxItem.id.desc()).limit(1))).first()
    refs = {"card": card_id}
    if waiting is None or waiting.payload.get("refs") != refs or waiting.payload.get("transferred_to"):
        return False
    folded = await s.execute(update(m.OutboxItem).where(
        m.OutboxItem.id == waiting.id, m.OutboxItem.status == "pending")
        .values(payload={**payload, "refs": refs}).execution_options(synchronize_session=False))
    return folded.rowcount == 1



# ----- notices --------------------------------------------------------------------------------


def notice(s: AsyncSession, *, destination: str, text: str, now: datetime,
           ticket_id: int | None = None) -> m.OutboxItem:
    """A short line of our own text for a channel or a person (e.g. an item that gave up)."""
    return enqueue(s, channel="slack", kind=NOTICE, now=now, ticket_id=ticket_id,
                   payload={"destination": destination, "text": text})


def assigned_notice(s: AsyncSession, ticket: m.Ticket, assignee: m.Staff, *, now: datetime,
                    why: str = "") -> m.OutboxItem:
    """Tell a staff member (a direct message) that a ticket is now theirs."""
    text = f"Ticket #{ticket.id} is now yours: {ticket.subject}" + (f" ({why})" if why else "")
    return notice(s, destination=assignee.slack_user_id, text=text, now=now, ticket_id=ticket.id)


def quarantine_notice(s: AsyncSession, *, destination: str, item: QuarantineView,
                      now: datetime) -> m.OutboxItem:
    return enqueue(s, channel="slack", kind=QUARANTINE_NOTICE, now=now,
                   payload={"destination": destination, "item": snapshot(item)})


# ----- customers ------------------------------------------------------------------------------


def customer_sms(s: AsyncSession, *, ticket_id: int | None, message_id: int | None, to: str,
                 from_: str, template: str, values: dict[str, Any], now: datetime,
                 media: list[int] | None = None) -> m.OutboxItem:
    """Send a text to the customer's phone from our number ``from_`` (the one they texted):
    templates/sms/<template>.txt.j2 with ``values``, rendered by the sender; ``media``: stored
    attachments to send with it (MMS)."""
    return enqueue(s, channel="sms", kind=CUSTOMER_MESSAGE, ticket_id=ticket_id,
                   message_id=message_id, ordering_key=f"sms:{to}", now=now,
                   payload={"from": from_, "to": to, "template": template, "values": values,
                            **({"media": media} if media else {})})


def customer_email(s: AsyncSession, *, ticket_id: int, message_id: int, sender: str,
                   mail: OutgoingEmail, now: datetime) -> m.OutboxItem:
    return enqueue(s, channel="email", kind=CUSTOMER_MESSAGE, ticket_id=ticket_id,
                   message_id=message_id, ordering_key=f"email:t{ticket_id}", now=now,
                   payload={"from": sender, "to": [mail.to_address], "mail": snapshot(mail)})


def mail(s: AsyncSession, *, mail: OutgoingMail, sender: str, now: datetime) -> m.OutboxItem:
    """Send ``mail`` by email; ``sender`` is the address its bounces are about (From stays
    the mail's own)."""
    return enqueue(s, channel="email", kind=MAIL, now=now,
                   payload={"from": sender, "to": [mail.to_address], "mail": snapshot(mail)})
