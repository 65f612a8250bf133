"""Staff actions: each is one function, one transaction, and the same outbox rows whatever
the entry point (button, modal, slash command, thread message, CLI) — DESIGN §2.7.

Every action checks permission, records an event with the acting staff member, clears the
unread flag, updates the card in place and echoes what happened in the card's thread; replies
and closes also mail the customer. A replayed interaction (same idempotency key) changes
nothing. Must not talk to Slack or SMTP: adapters resolve who the actor is and render answers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import groups, intents, lifecycle
from bot.core.customer_mail import recipient, send_to_customer
from bot.core.customer_sms import send_sms, text_closing
from bot.core.desk import Desk
from bot.core.errors import BadRequest, Contended, Rejected
from bot.core.lifecycle import STATUSES
from bot.core.staff import Actor, check_allowed, is_admin, staff_row
from bot.core.tickets import load_ticket, ticket_view
from bot.core.views import CardView, MessageView
from bot.messages import Attachment
from bot.store import models as m
from bot.store import upsert

log = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"^[^@\s<>,;]{1,64}@[^@\s<>,;]{1,255}\.[^@\s<>,;.]{2,63}$")
# Headers, the HTML frame and the signature around a reply's text, generously counted.
REPLY_OVERHEAD_BYTES = 8 * 1024
# Runs of an action that keeps colliding with other writers before the actor is told to retry.
ATTEMPTS = 3
# A conflict on this key, and only this one, means the interaction was handled before.
PROCESSED_KEY = m.ProcessedKey.__table__.primary_key


class Conflict(Rejected):
    """Someone else got there first (assignment race, reply lock)."""


@dataclass(frozen=True)
class IdempotencyKey:
    kind: str  # action_ts | view | trigger_id | event_id
    key: str


@dataclass(frozen=True)
class ActionResult:
    ticket_number: int | None
    text: str  # what to tell the actor
    duplicate: bool = False


@dataclass(frozen=True)
class LockState:
    held_by_other: str | None  # name of the other writer, None when the actor holds it now
    expires_at: datetime | None


Work = Callable[[AsyncSession, m.Ticket, m.Staff], Awaitable[tuple[str, str]]]


async def _act(desk: Desk, *, actor: Actor, number: int, action: str,
               key: IdempotencyKey | None, work: Work, echo: bool = True,
               refresh_card: bool = True) -> ActionResult:
    """The frame of every action: one transaction, idempotent, checked, logged, shown."""
    now = desk.clock.now()
    return await run_once(key, number, lambda: _in_transaction(
        desk, actor=actor, number=number, action=action, key=key, work=work, echo=echo,
        refresh_card=refresh_card, now=now))


async def run_once(key: IdempotencyKey | None, number: int | None,
                run: Callable[[], Awaitable[ActionResult]]) -> ActionResult:
    """Run an action once. A twin of a keyed action delivered at the same moment (a double
    click, Slack's retry) loses the race to record the key — a conflict on the processed-keys
    primary key, its transaction rolled back — and is reported as a duplicate. Any other
    collision (a row another writer made a moment before, a deadlock) is no replay: the whole
    transaction runs again on the rows as they are now."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await run()
        except DBAPIError as exc:
            if key is not None and isinstance(exc, IntegrityError) and upsert.violates(exc, PROCESSED_KEY):
                return ActionResult(number, "Already done.", duplicate=True)
            if not upsert.contended(exc):
                raise
            if attempt == ATTEMPTS:
                raise Contended("someone else changed the same thing at the same moment; "
                                "please try again") from exc
            log.info("staff action collided with another writer, running it again: %s", exc.orig)
    raise AssertionError("unreachable")


async def _in_transaction(desk: Desk, *, actor: Actor, number: int, action: str,
                          key: IdempotencyKey | None, work: Work, echo: bool, refresh_card: bool,
                          now: datetime) -> ActionResult:
    async with desk.db.transaction() as s:
        if key is not None and await seen_before(s, key, now=now):
            return ActionResult(number, "Already done.", duplicate=True)
        # The row lock: a concurrent action on this ticket waits for this one to commit, so
        # each reads what the one before wrote and records what it really changed.
        ticket = await load_ticket(s, number, for_update=True)
        group = await s.get_one(m.HandlerGroup, ticket.group_id)
        check_allowed(desk.settings, actor, group=group.name, action=action)
        staff = await staff_row(s, actor, now=now)
        text, echo_text = await work(s, ticket, staff)
        await lifecycle.acted(s, ticket, settings=desk.settings, now=now)
        ticket.unread = False
        if echo and echo_text:
            await intents.post_notice_in_thread(s, ticket_id=ticket.id, text=echo_text, now=now)
        if refresh_card:
            await intents.update_card(s, ticket_id=ticket.id,
                                      ticket=await ticket_view(s, ticket, settings=desk.settings, now=now), now=now,
                                      last_action=echo_text,
                                      repost_to=groups.card_channel(group, desk.settings))
        log.info("staff action ticket=%s action=%s staff=%s", ticket.id, action, actor.slack_user_id)
        return ActionResult(ticket.id, text)


async def seen_before(s: AsyncSession, key: IdempotencyKey, *, now: datetime) -> bool:
    """True when this interaction was handled before; otherwise records it (same transaction)."""
    stored = key.key[-255:]  # the tail keeps what differs (timestamps, view hashes)
    if await s.get(m.ProcessedKey, (key.kind, stored)) is not None:
        return True
    s.add(m.ProcessedKey(kind=key.kind, key=stored, created_at=now))
    await s.flush()
    return False


def _event(s: AsyncSession, ticket: m.Ticket, staff: m.Staff, kind: str, now: datetime,
           **data: object) -> None:
    lifecycle.record_event(s, ticket.id, kind, actor=actor_tag(staff), staff_id=staff.id, now=now, **data)


def actor_tag(staff: m.Staff) -> str:
    return f"staff:{staff.slack_user_id}"


async def _set_status(desk: Desk, s: AsyncSession, ticket: m.Ticket, staff: m.Staff, status: str,
                      now: datetime) -> None:
    await lifecycle.change_status(s, ticket, status, settings=desk.settings, actor=actor_tag(staff),
                                  staff_id=staff.id, now=now)


async def _slack_id(s: AsyncSession, staff_id: int | None) -> str | None:
    return await s.scalar(select(m.Staff.slack_user_id).where(m.Staff.id == staff_id)) if staff_id else None


async def _auto_reassign(desk: Desk, s: AsyncSession, ticket: m.Ticket, staff: m.Staff, now: datetime) -> None:
    """Powercode's "Auto Reassign Ticket on Update": whoever replies, notes or transfers owns it."""
    if desk.settings.tickets.auto_reassign_on_update and ticket.assignee_id != staff.id:
        lifecycle.assign(s, ticket, staff, previous=await _slack_id(s, ticket.assignee_id),
                         actor=actor_tag(staff), staff_id=staff.id, now=now,
                         reason="auto_reassign_on_update")


def _release_lock(ticket: m.Ticket, staff: m.Staff) -> None:
    if ticket.lock_staff_id == staff.id:
        ticket.lock_staff_id = ticket.lock_expires_at = None


def staff_label(staff: m.Staff) -> str:
    return staff.name or staff.slack_user_id


# ----- conversation ---------------------------------------------------------------------------


async def reply(desk: Desk, *, actor: Actor, number: int, text: str, key: IdempotencyKey | None = None,
                channel: str = "auto", status_after: str | None = "waiting",
                files: Sequence[Attachment] = ()) -> ActionResult:
    """Answer the customer: an outbound message by email, SMS or both (``auto``: how they
    wrote; one who texted gets ``tickets.mobile_response_via``), the card updated. ``files``
    go with it: attached to the mail, as MMS media on a text."""
    text = text.strip()
    files = tuple(files)
    if not text and not files:
        raise BadRequest("the reply is empty")
    if channel not in ("auto", "email", "sms", "both"):
        raise BadRequest(f"cannot reply by {channel!r}: choose email, sms or both")
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        group = await s.get_one(m.HandlerGroup, ticket.group_id)
        view = await ticket_view(s, ticket, settings=desk.settings, now=now)
        contact = await s.get_one(m.Contact, ticket.requester_id)
        how = _reply_channels(desk, ticket, contact, channel)
        sent: list[tuple[m.Message, str]] = []
        if files:
            await desk.files.put(s, ((f.sha256, f.data) for f in files if f.sha256))
        if "sms" in how:
            out = await send_sms(s, desk.settings, ticket=ticket, contact=contact, group=group, body=text,
                                 kind="outbound", now=now, staff_id=staff.id, sender=staff_label(staff),
                                 files=files)
            sent.append((out, contact.phone or ""))
        if "email" in how:
            _check_email_size(desk, text, files)
            to = recipient(ticket, contact)
            history = await _history(s, ticket) if desk.settings.tickets.include_history_in_email else ()
            out = await send_to_customer(
                s, desk, ticket=ticket, view=view, template="staff_reply", kind="outbound", now=now,
                body=text, staff_id=staff.id, sender=staff_label(staff),
                from_name=f"{staff_label(staff)} ({group.name})", staff_name=staff_label(staff),
                group=group.name, history=history, files=files)
            if out is None:
                raise BadRequest(f"ticket #{ticket.id} has no customer email address to reply to")
            sent.append((out, to or ""))
        await lifecycle.staff_replied(s, ticket, settings=desk.settings, now=now)
        for out, _ in sent:
            _event(s, ticket, staff, "reply", now, message=out.id, channel=out.channel)
        _release_lock(ticket, staff)
        await _auto_reassign(desk, s, ticket, staff, now)
        if status_after and ticket.status not in ("closed",):
            await _set_status(desk, s, ticket, staff, status_after, now)
        # The thread shows the reply as queued; the outbox updates it when the relay or the SMS provider
        # takes it (or gives up), so nobody reads "sent" for a message that never left.
        for out, to in sent:
            await intents.post_thread_message(s, ticket_id=ticket.id, ticket=view, follows_delivery=True,
                                              message=MessageView.of(out, recipient=to), now=now)
        what = " and ".join(f"{'text' if out.channel == 'sms' else 'reply'} to {to}" for out, to in sent)
        return (f"{what[0].upper()}{what[1:]} queued on ticket #{ticket.id}; its thread shows when "
                f"it has left.", f"{staff_label(staff)} replied by {' and '.join(how)}")

    return await _act(desk, actor=actor, number=number, action="reply", key=key, work=work, echo=False)


def _reply_channels(desk: Desk, ticket: m.Ticket, contact: m.Contact, asked: str) -> tuple[str, ...]:
    if asked == "auto":
        if ticket.channel != "sms":
            asked = "email"
        else:
            asked = desk.settings.tickets.mobile_response_via
            # What the customer has decides what is possible: a phone-only customer is texted.
            if not contact.email:
                asked = "sms"
            elif contact.sms_opted_out or not contact.phone:
                asked = "email"
    return ("sms", "email") if asked == "both" else (asked,)


def _check_email_size(desk: Desk, text: str, files: Sequence[Attachment] = ()) -> None:
    # Said now, not after the mail dies in the outbox: the history is trimmed to fit, the
    # text and the files cannot be.
    limit = desk.settings.email_out.max_message_bytes
    size = len(text.encode()) * 2 + REPLY_OVERHEAD_BYTES  # text and HTML parts, encoded
    if size > limit:
        raise BadRequest(f"the reply is too long to send by email ({len(text.encode()):,} bytes of text; "
                         f"the mail limit is {limit:,} bytes with both its parts): shorten it")
    total = size + mail_size(files)
    if files and total > limit:
        biggest = max(files, key=lambda f: f.size)
        raise BadRequest(f"{biggest.name} ({biggest.size:,} bytes) makes the mail {total:,} bytes, "
                         f"over email_out.max_message_bytes ({limit:,}): send it without that file")


def mail_size(files: Sequence[Attachment]) -> int:
    """What files add to a mail: base64 (4 bytes per 3, and line breaks) plus their headers."""
    return sum((f.size + 2) // 3 * 4 * 78 // 76 + 300 for f in files)


async def note(desk: Desk, *, actor: Actor, number: int, text: str, key: IdempotencyKey | None = None,
               from_thread: bool = False) -> ActionResult:
    """An internal note: never sent to the customer."""
    text = text.strip()
    if not text:
        raise BadRequest("the note is empty")
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        message = m.Message(ticket_id=ticket.id, kind="note", channel="slack", staff_id=staff.id,
                            sender=staff_label(staff), body=text, created_at=now)
        s.add(message)
        await s.flush()
        _event(s, ticket, staff, "note", now, message=message.id, from_thread=from_thread)
        await _auto_reassign(desk, s, ticket, staff, now)
        if not from_thread:  # a thread message is already there for everyone to read
            view = await ticket_view(s, ticket, settings=desk.settings, now=now)
            await intents.post_thread_message(s, ticket_id=ticket.id, ticket=view,
                                              message=MessageView.of(message), now=now)
        return f"Note added to ticket #{ticket.id}.", f"{staff_label(staff)} added a note"

    return await _act(desk, actor=actor, number=number, action="note", key=key, work=work, echo=False)


async def use_reply_to(desk: Desk, *, actor: Actor, number: int, address: str,
                       key: IdempotencyKey | None = None) -> ActionResult:
    """Accept the reply address a message on the ticket asked for (the card's button)."""
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        if (ticket.proposed_reply_to or "").lower() != address.lower():
            raise Conflict(f"{address} is no longer proposed for #{ticket.id}; see the card")
        lifecycle.redirect_replies(s, ticket, ticket.proposed_reply_to, actor=actor_tag(staff),
                                   staff_id=staff.id, now=now, reason="accepted by staff")
        return (f"Replies on #{ticket.id} now go to {address}.",
                f"{staff_label(staff)} sent replies to {address}")

    return await _act(desk, actor=actor, number=number, action="reply_to", key=key, work=work)


async def keep_reply_to(desk: Desk, *, actor: Actor, number: int,
                        key: IdempotencyKey | None = None) -> ActionResult:
    """Turn down a proposed reply address: replies keep going where they went."""
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        proposed = ticket.proposed_reply_to
        if proposed is None:
            return f"#{ticket.id} has no other reply address proposed.", ""
        ticket.proposed_reply_to = None
        _event(s, ticket, staff, "reply_to_declined", now, address=proposed)
        to = recipient(ticket, await s.get_one(m.Contact, ticket.requester_id))
        return (f"Replies on #{ticket.id} keep going to {to}.",
                f"{staff_label(staff)} kept replies going to {to}, not {proposed}")

    return await _act(desk, actor=actor, number=number, action="reply_to", key=key, work=work)


async def set_reply_to(desk: Desk, *, actor: Actor, number: int, address: str | None,
                       key: IdempotencyKey | None = None) -> ActionResult:
    """Send the ticket's replies to ``address`` (None: back to the requester's own address)."""
    if address is not None and not EMAIL_RE.match(address):
        raise BadRequest(f"{address!r} is not an email address")
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        lifecycle.redirect_replies(s, ticket, address, actor=actor_tag(staff), staff_id=staff.id,
                                   now=now, reason="set by staff")
        to = recipient(ticket, await s.get_one(m.Contact, ticket.requester_id))
        return f"Replies on #{ticket.id} go to {to}.", f"{staff_label(staff)} sent replies to {to}"

    return await _act(desk, actor=actor, number=number, action="reply_to", key=key, work=work)


PHONE_RE = re.compile(r"^\+[1-9]\d{6,14}$")  # E.164


def phone_number(written: str) -> str:
    """E.164 from how staff write it ("+1 (555) 222-3333"); BadRequest when it is not one."""
    phone = re.sub(r"[\s().-]", "", written)
    if not PHONE_RE.match(phone):
        raise BadRequest(f"{phone!r} is not a phone number in international form (+15551234567)")
    return phone


async def link_contact(desk: Desk, *, actor: Actor, number: int, email: str | None = None,
                       phone: str | None = None, key: IdempotencyKey | None = None) -> ActionResult:
    """Give the ticket's customer an email address or phone number; when another contact has
    it already (the same person writing both ways), the two become one: that contact's tickets
    and messages move to this one, and an opt-out of texts by either stays."""
    if email is not None:
        email = email.strip().lower()
        if not EMAIL_RE.match(email):
            raise BadRequest(f"{email!r} is not an email address")
    if phone is not None:
        phone = phone_number(phone)
    if (email is None) == (phone is None):
        raise BadRequest("give the customer an email address or a phone number")
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        contact = await s.get_one(m.Contact, ticket.requester_id)
        column = m.Contact.email if email is not None else m.Contact.phone
        value = email if email is not None else phone
        other = await s.scalar(select(m.Contact).where(column == value, m.Contact.id != contact.id))
        merged = ""
        if other is not None:
            for field in ("email", "phone"):
                mine, theirs = getattr(contact, field), getattr(other, field)
                if mine and theirs and mine != theirs:
                    raise BadRequest(f"{value} belongs to {other.name or theirs}, who has another {field} "
                                     f"({theirs}) than this customer ({mine}): not the same person?")
            await s.execute(update(m.Ticket).where(m.Ticket.requester_id == other.id)
                            .values(requester_id=contact.id))
            await s.execute(update(m.Message).where(m.Message.contact_id == other.id)
                            .values(contact_id=contact.id))
            taken = {"email": other.email, "phone": other.phone}
            contact.name = contact.name or other.name
            contact.rating = contact.rating or other.rating
            contact.sms_opted_out = bool(contact.sms_opted_out or other.sms_opted_out)
            await s.delete(other)
            await s.flush()  # the unique address is free before this contact takes it
            for field, taken_value in taken.items():
                if taken_value and not getattr(contact, field):
                    setattr(contact, field, taken_value)
            merged = " (merged with the contact who had it)"
        setattr(contact, "email" if email is not None else "phone", value)
        _event(s, ticket, staff, "contact_linked", now, email=email, phone=phone, merged=bool(merged))
        return (f"#{ticket.id}'s customer can be reached at {value}{merged}.",
                f"{staff_label(staff)} added {value} to the customer{merged}")

    return await _act(desk, actor=actor, number=number, action="contact", key=key, work=work)


async def _history(s: AsyncSession, ticket: m.Ticket, limit: int = 5) -> tuple[MessageView, ...]:
    rows = (await s.scalars(select(m.Message).where(
        m.Message.ticket_id == ticket.id, m.Message.kind.in_(("inbound", "outbound")))
        .order_by(m.Message.id.desc()).limit(limit))).all()
    return tuple(MessageView.of(r) for r in rows)


# ----- ownership ------------------------------------------------------------------------------


async def assign(desk: Desk, *, actor: Actor, number: int, assignee: Actor,
                 key: IdempotencyKey | None = None, only_if_unassigned: bool = False) -> ActionResult:
    """Give the ticket to ``assignee``. With ``only_if_unassigned`` ("Assign to me") the first
    of two simultaneous presses wins and the other is told who has it."""
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        target = staff if assignee.slack_user_id == actor.slack_user_id else await staff_row(s, assignee, now=now)
        if ticket.assignee_id == target.id:
            return f"#{ticket.id} is already assigned to {staff_label(target)}.", ""
        previous = await _slack_id(s, ticket.assignee_id)
        query = update(m.Ticket).where(m.Ticket.id == ticket.id)
        if only_if_unassigned:
            # Compare-and-set in the database: the loser of a race sees rowcount 0.
            query = query.where(m.Ticket.assignee_id.is_(None))
        result = await s.execute(query.values(assignee_id=target.id).execution_options(
            synchronize_session=False))
        if result.rowcount == 0:
            await s.refresh(ticket)
            holder = await s.get(m.Staff, ticket.assignee_id) if ticket.assignee_id else None
            raise Conflict(f"#{ticket.id} is already assigned to "
                           f"{staff_label(holder) if holder else 'someone else'}")
        await s.refresh(ticket)
        target.last_assigned_at = now
        if ticket.status == "new":
            await _set_status(desk, s, ticket, staff, "open", now)
        lifecycle.record_event(s, ticket.id, "assignee", actor=actor_tag(staff), staff_id=staff.id,
                               now=now, **{"from": previous, "to": target.slack_user_id})
        who = "themselves" if target.id == staff.id else staff_label(target)
        return f"#{ticket.id} is now assigned to {staff_label(target)}.", \
            f"{staff_label(staff)} assigned the ticket to {who}"

    return await _act(desk, actor=actor, number=number, action="assign", key=key, work=work)


async def transfer(desk: Desk, *, actor: Actor, number: int, group: str, note_text: str,
                   assignee: Actor | None = None, category: str | None = None,
                   type_: str | None = None, key: IdempotencyKey | None = None) -> ActionResult:
    """Hand the ticket to another group (and/or person) with a required internal note; the
    new group gets a card in its channel and the old card says where the ticket went."""
    note_text = note_text.strip()
    if not note_text:
        raise BadRequest("a transfer needs a note saying why")
    target_config = desk.settings.group_by_name(group)
    if target_config is None:
        names = ", ".join(g.name for g in desk.settings.handler_groups)
        raise BadRequest(f"unknown group {group!r}: use one of {names}")
    _check_category(desk, category, type_)
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        old_group = await s.get_one(m.HandlerGroup, ticket.group_id)
        new_group = await groups.row(s, desk.settings, group)
        message = m.Message(ticket_id=ticket.id, kind="note", channel="slack", staff_id=staff.id,
                            sender=staff_label(staff), body=note_text, created_at=now)
        s.add(message)
        await s.flush()
        _event(s, ticket, staff, "transfer", now, **{"from": old_group.name, "to": group,
                                                      "note": message.id})
        if category is not None and (category, type_) != (ticket.category, ticket.type):
            _event(s, ticket, staff, "category", now, **{"from": [ticket.category, ticket.type],
                                                          "to": [category, type_]})
            ticket.category, ticket.type = category, type_
        if assignee is not None:
            target = await staff_row(s, assignee, now=now)
            if ticket.assignee_id != target.id:
                lifecycle.assign(s, ticket, target, previous=await _slack_id(s, ticket.assignee_id),
                                 actor=actor_tag(staff), staff_id=staff.id, now=now)
        else:
            await _auto_reassign(desk, s, ticket, staff, now)
        moved = new_group.id != old_group.id
        ticket.group_id = new_group.id
        summary = (f"{staff_label(staff)} transferred the ticket to {group}"
                   if moved else f"{staff_label(staff)} updated the ticket's handling")
        view = await ticket_view(s, ticket, settings=desk.settings, now=now)
        await intents.post_thread_message(s, ticket_id=ticket.id, ticket=view,
                                          message=MessageView.of(message), now=now)
        if moved:
            channel = groups.card_channel(new_group, desk.settings)
            old_card = await intents.card_item(s, ticket.id)
            first = await intents.first_message(s, ticket.id)
            new_card = intents.post_card(s, ticket_id=ticket.id, destination=channel, now=now,
                                         card=CardView(ticket=view, first_message=first,
                                                       last_action=summary))
            await s.flush()
            if old_card is not None:
                # Sent after the new card (same ordering key), so it can link to it.
                await intents.update_card(s, ticket_id=ticket.id, ticket=view, now=now,
                                          last_action=summary, transferred_to=f"{group} ({channel})",
                                          card=old_card, new_card=new_card)
        else:
            await intents.update_card(s, ticket_id=ticket.id, ticket=view, now=now,
                                      last_action=summary)
        return f"#{ticket.id} transferred to {group}.", summary

    return await _act(desk, actor=actor, number=number, action="transfer", key=key, work=work,
                      echo=False, refresh_card=False)


# ----- fields ---------------------------------------------------------------------------------


async def set_priority(desk: Desk, *, actor: Actor, number: int, priority: int,
                       key: IdempotencyKey | None = None) -> ActionResult:
    levels = desk.settings.tickets.priorities
    if not 1 <= priority <= levels:
        raise BadRequest(f"priority must be 1 (highest) to {levels}, got {priority}")
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        if ticket.priority == priority:
            return f"#{ticket.id} already has priority {priority}.", ""
        _event(s, ticket, staff, "priority", now, **{"from": ticket.priority, "to": priority})
        ticket.priority = priority
        return f"#{ticket.id} priority set to P{priority}.", \
            f"{staff_label(staff)} set priority to P{priority}"

    return await _act(desk, actor=actor, number=number, action="set_priority", key=key, work=work)


async def set_status(desk: Desk, *, actor: Actor, number: int, status: str,
                     key: IdempotencyKey | None = None) -> ActionResult:
    if status == "closed":
        return await close(desk, actor=actor, number=number, key=key)
    if status not in STATUSES:
        raise BadRequest(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        if ticket.status == status:
            return f"#{ticket.id} is already {status}.", ""
        await _set_status(desk, s, ticket, staff, status, now)
        return f"#{ticket.id} is now {status}.", f"{staff_label(staff)} set status to {status}"

    return await _act(desk, actor=actor, number=number, action="set_status", key=key, work=work)


def _check_category(desk: Desk, category: str | None, type_: str | None) -> None:
    if category is None:
        if type_ is not None:
            raise BadRequest("a type needs its category")
        return
    config = next((c for c in desk.settings.categories if c.name == category), None)
    if config is None:
        names = ", ".join(c.name for c in desk.settings.categories) or "none are configured"
        raise BadRequest(f"unknown category {category!r} ({names})")
    if type_ is not None and type_ not in {t.name for t in config.types}:
        names = ", ".join(t.name for t in config.types) or "it has none"
        raise BadRequest(f"unknown type {type_!r} for category {category} ({names})")


async def set_category(desk: Desk, *, actor: Actor, number: int, category: str | None,
                       type_: str | None, key: IdempotencyKey | None = None) -> ActionResult:
    _check_category(desk, category, type_)
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        label = " / ".join(x for x in (category, type_) if x) or "none"
        _event(s, ticket, staff, "category", now, **{"from": [ticket.category, ticket.type],
                                                      "to": [category, type_]})
        ticket.category, ticket.type = category, type_
        return f"#{ticket.id} category set to {label}.", f"{staff_label(staff)} set category to {label}"

    return await _act(desk, actor=actor, number=number, action="set_category", key=key, work=work)


CONTACT_FLAGS = ("good", "bad")


async def flag_contact(desk: Desk, *, actor: Actor, number: int, flag: str | None,
                       key: IdempotencyKey | None = None) -> ActionResult:
    """Mark the ticket's customer as a good or bad customer (None: neither), as BILLmanager
    does; the flag's weight points count on every open ticket of theirs."""
    if flag is not None and flag not in CONTACT_FLAGS:
        raise BadRequest(f"a customer is flagged good or bad (or clear), not {flag!r}")
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        contact = await s.get_one(m.Contact, ticket.requester_id)
        if contact.rating == flag:
            return f"The customer of #{ticket.id} is already {flag or 'unflagged'}.", ""
        _event(s, ticket, staff, "contact_flag", now, **{"from": contact.rating, "to": flag})
        contact.rating = flag
        others = (await s.scalars(select(m.Ticket).where(
            m.Ticket.requester_id == contact.id, m.Ticket.id != ticket.id,
            m.Ticket.status.in_(lifecycle.OPEN_STATUSES)))).all()
        for other in others:  # their weight changes too; this ticket's is redone by the frame
            await lifecycle.rules_changed(s, other, settings=desk.settings)
        label = f"a {flag} customer" if flag else "unflagged"
        return f"The customer of #{ticket.id} is now {label}.", f"{staff_label(staff)} marked the customer {label}"

    return await _act(desk, actor=actor, number=number, action="flag_contact", key=key, work=work)


async def link(desk: Desk, *, actor: Actor, number: int, other: int,
               key: IdempotencyKey | None = None) -> ActionResult:
    if other == number:
        raise BadRequest("a ticket cannot be linked to itself")
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        # A link changes both tickets' history and cards: the actor must be allowed on both.
        other_ticket = await load_ticket(s, other)
        other_group = await s.get_one(m.HandlerGroup, other_ticket.group_id)
        check_allowed(desk.settings, actor, group=other_group.name, action="link")
        if await s.get(m.TicketLink, (ticket.id, other)) is not None:
            return f"#{ticket.id} and #{other} are already linked.", ""
        # The pair in one order from either end: two people linking it from both tickets at
        # once collide on the first row (the one run again finds it linked) rather than each
        # waiting for the other's second row (a deadlock).
        low, high = sorted((ticket.id, other))
        s.add_all([m.TicketLink(ticket_id=low, other_id=high, created_at=now),
                   m.TicketLink(ticket_id=high, other_id=low, created_at=now)])
        _event(s, ticket, staff, "link", now, other=other)
        s.add(m.Event(ticket_id=other, kind="link", actor=f"staff:{staff.slack_user_id}",
                      staff_id=staff.id, data={"other": ticket.id}, created_at=now))
        return f"#{ticket.id} linked to #{other}.", f"{staff_label(staff)} linked #{other}"

    return await _act(desk, actor=actor, number=number, action="link", key=key, work=work)


# ----- lifecycle ------------------------------------------------------------------------------


async def close(desk: Desk, *, actor: Actor, number: int, key: IdempotencyKey | None = None,
                notify_customer: bool = True) -> ActionResult:
    """Close, and send the customer a confirmation (operators' docs: "the customer receives
    confirmation")."""
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        if ticket.status == "closed":
            return f"#{ticket.id} is already closed.", ""
        await _set_status(desk, s, ticket, staff, "closed", now)
        if not notify_customer or await _opened_by_robot(s, ticket):
            return f"#{ticket.id} closed.", f"{staff_label(staff)} closed the ticket"
        if ticket.via_email:
            await send_to_customer(s, desk, ticket=ticket, view=await ticket_view(s, ticket, settings=desk.settings, now=now),
                                   template="ticket_closed", kind="automatic", now=now,
                                   auto_submitted="auto-generated")
        elif ticket.channel == "sms":
            contact = await s.get_one(m.Contact, ticket.requester_id)
            why_not = await text_closing(s, desk.settings, ticket=ticket, contact=contact, now=now,
                                         group=await s.get_one(m.HandlerGroup, ticket.group_id),
                                         said=f"Your request #{ticket.id} is closed.")
            if why_not:
                return f"#{ticket.id} closed; the customer was not texted: {why_not}", \
                    f"{staff_label(staff)} closed the ticket"
        return f"#{ticket.id} closed.", f"{staff_label(staff)} closed the ticket"

    return await _act(desk, actor=actor, number=number, action="close", key=key, work=work)


async def _opened_by_robot(s: AsyncSession, ticket: m.Ticket) -> bool:
    """The ticket began with automatic mail (a list, an auto-responder): nobody to confirm to."""
    first = await s.scalar(select(m.Message.auto_submitted).where(
        m.Message.ticket_id == ticket.id, m.Message.kind == "inbound").order_by(m.Message.id).limit(1))
    return first is not None


async def reopen(desk: Desk, *, actor: Actor, number: int, key: IdempotencyKey | None = None) -> ActionResult:
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        if ticket.status not in ("resolved", "closed"):
            return f"#{ticket.id} is not closed (it is {ticket.status}).", ""
        await _set_status(desk, s, ticket, staff, "open", now)
        return f"#{ticket.id} reopened.", f"{staff_label(staff)} reopened the ticket"

    return await _act(desk, actor=actor, number=number, action="reopen", key=key, work=work)


# ----- reminders ------------------------------------------------------------------------------

REMINDERS = {"follow_up": "follow-up", "action_required": "action required"}


async def set_reminder(desk: Desk, *, actor: Actor, number: int, which: str, at: datetime | None,
                       key: IdempotencyKey | None = None) -> ActionResult:
    """Set (or, with None, clear) the ticket's follow-up or action-required date; the
    scheduler reminds in the thread and the assignee when it comes."""
    if which not in REMINDERS:
        raise BadRequest(f"unknown reminder {which!r}: use follow_up or action_required")
    if at is not None and at.tzinfo is None:
        raise BadRequest("a reminder needs its time zone")
    words = REMINDERS[which]
    now = desk.clock.now()

    async def work(s: AsyncSession, ticket: m.Ticket, staff: m.Staff) -> tuple[str, str]:
        old = getattr(ticket, f"{which}_at")
        if old == at:
            return f"#{ticket.id} {words} is already {_day(at)}.", ""
        setattr(ticket, f"{which}_at", at)
        setattr(ticket, f"{which}_reminded_at", None)  # a new date is reminded again
        _event(s, ticket, staff, "reminder_set", now, what=which,
               **{"from": old.isoformat() if old else None, "to": at.isoformat() if at else None})
        if at is None:
            return f"#{ticket.id} {words} cleared.", f"{staff_label(staff)} cleared the {words} date"
        return f"#{ticket.id} {words} set to {_day(at)}.", f"{staff_label(staff)} set {words} for {_day(at)}"

    return await _act(desk, actor=actor, number=number, action="set_reminder", key=key, work=work)


def _day(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "not set"


# ----- reply lock -----------------------------------------------------------------------------


async def take_lock(desk: Desk, *, actor: Actor, number: int, force: bool = False) -> LockState:
    """Start writing a reply: a soft lock for ``tickets.reply_lock_minutes``, shown on the card.
    Another writer's live lock is reported (not broken) unless ``force`` ("reply anyway")."""
    now = desk.clock.now()
    minutes = desk.settings.tickets.reply_lock_minutes
    async with desk.db.transaction() as s:
        ticket = await load_ticket(s, number)
        group = await s.get_one(m.HandlerGroup, ticket.group_id)
        check_allowed(desk.settings, actor, group=group.name, action="reply")
        staff = await staff_row(s, actor, now=now)
        renewing = ticket.lock_staff_id == staff.id and ticket.lock_expires_at is not None \
            and ticket.lock_expires_at > now
        # Compare-and-set in the database: of two people opening Reply at once, both may have
        # read the lock free; only the first UPDATE still finds it so, the other's waits for
        # that one to commit and then matches nothing.
        take = update(m.Ticket).where(m.Ticket.id == ticket.id)
        if not force:
            take = take.where(or_(m.Ticket.lock_staff_id.is_(None), m.Ticket.lock_staff_id == staff.id,
                                  m.Ticket.lock_expires_at.is_(None), m.Ticket.lock_expires_at <= now))
        taken = await s.scalar(take.values(lock_staff_id=staff.id,
                                           lock_expires_at=now + timedelta(minutes=minutes))
                               .returning(m.Ticket.id).execution_options(synchronize_session=False))
        await s.refresh(ticket)
        if taken is None:
            holder = await s.get(m.Staff, ticket.lock_staff_id) if ticket.lock_staff_id else None
            return LockState(held_by_other=staff_label(holder) if holder else "someone else",
                             expires_at=ticket.lock_expires_at)
        if not renewing:
            _event(s, ticket, staff, "lock", now, until=ticket.lock_expires_at.isoformat(), forced=force)
            await intents.update_card(s, ticket_id=ticket.id,
                                      ticket=await ticket_view(s, ticket, settings=desk.settings, now=now), now=now,
                                      last_action=f"{staff_label(staff)} is replying")
        return LockState(held_by_other=None, expires_at=ticket.lock_expires_at)


async def release_lock(desk: Desk, *, actor: Actor, number: int, admin_unlock: bool = False) -> ActionResult:
    """Stop writing (modal closed) or, for admins, lift someone else's lock."""
    now = desk.clock.now()
    async with desk.db.transaction() as s:
        ticket = await load_ticket(s, number, for_update=True)  # not someone's lock taken meanwhile
        staff = await staff_row(s, actor, now=now)
        if ticket.lock_staff_id is None:
            return ActionResult(ticket.id, f"#{ticket.id} is not locked.")
        if ticket.lock_staff_id != staff.id:
            if not (admin_unlock and is_admin(desk.settings, actor.slack_user_id)):
                raise Conflict(f"#{ticket.id} is locked by someone else; only an admin can unlock it")
        ticket.lock_staff_id = ticket.lock_expires_at = None
        _event(s, ticket, staff, "unlock", now, admin=admin_unlock)
        await intents.update_card(s, ticket_id=ticket.id,
                                  ticket=await ticket_view(s, ticket, settings=desk.settings, now=now), now=now)
        return ActionResult(ticket.id, f"#{ticket.id} unlocked.")
