"""Tickets staff open on a customer's behalf (``/ticket new email|sms``): the first message
goes to the customer by email or SMS, the card to the group's channel.

One transaction each, idempotent like every staff action (``core.actions``' frame). Must not
talk to Slack, SMTP or Twilio: the message is an outbox intent like any other.
"""

from __future__ import annotations

from bot.core import groups, intents, lifecycle
from bot.core.actions import (
    ActionResult,
    IdempotencyKey,
    actor_tag,
    phone_number,
    run_once,
    seen_before,
    staff_label,
)
from bot.core.customer_mail import send_to_customer
from bot.core.customer_sms import send_sms, subject_of
from bot.core.desk import Desk
from bot.core.errors import BadRequest
from bot.core.staff import Actor, check_allowed, staff_row
from bot.core.tickets import ticket_view
from bot.core.views import CardView, MessageView
from bot.store import upsert


async def open_ticket_for_customer(desk: Desk, *, actor: Actor, subject: str, body: str,
                                   email: str | None = None, phone: str | None = None,
                                   group: str | None = None,
                                   key: IdempotencyKey | None = None) -> ActionResult:
    """A ticket staff open on a customer's behalf; the body goes to the customer as email, or
    as a text when a phone number is given (the subject is then the text's first words)."""
    subject, body = subject.strip(), body.strip()
    if phone is not None:
        phone = phone_number(phone)
        if not body:
            raise BadRequest("a new SMS ticket needs the text to send: new sms +15551234567 text")
        subject = subject or subject_of(body)
    else:
        email = (email or "").strip().lower()
        if "@" not in email or " " in email:
            raise BadRequest(f"{email!r} is not an email address")
        if not subject or not body:
            raise BadRequest("a new ticket needs a subject and a body: new email ADDRESS subject | body")
    group = group or desk.settings.fallback_group_name
    if desk.settings.group_by_name(group) is None:
        raise BadRequest(f"unknown group {group!r}")
    check_allowed(desk.settings, actor, group=group, action="open tickets for")
    return await run_once(key, None, lambda: _open_for_customer(
        desk, actor=actor, email=email, phone=phone, subject=subject, body=body, group=group, key=key))


async def _open_for_customer(desk: Desk, *, actor: Actor, email: str | None, phone: str | None,
                             subject: str, body: str, group: str,
                             key: IdempotencyKey | None) -> ActionResult:
    now = desk.clock.now()
    async with desk.db.transaction() as s:
        if key is not None and await seen_before(s, key, now=now):
            return ActionResult(None, "Already done.", duplicate=True)
        staff = await staff_row(s, actor, now=now)
        contact = await (upsert.contact(s, phone=phone, now=now) if phone else upsert.contact(s, email=email, now=now))
        group_row = await groups.row(s, desk.settings, group)
        ticket = await lifecycle.open_ticket(s, lifecycle.NewTicket(
            subject=subject, group=group_row, requester_id=contact.id, channel="sms" if phone else "email",
            priority=desk.settings.tickets.default_priority, actor=actor_tag(staff),
            status="open", staff_id=staff.id, assignee_id=staff.id, by_staff=True),
            settings=desk.settings, now=now)
        view = await ticket_view(s, ticket, settings=desk.settings, now=now, new=True)
        if phone:
            out = await send_sms(s, desk.settings, ticket=ticket, contact=contact, group=group_row,
                                 body=body, kind="outbound", now=now, staff_id=staff.id,
                                 sender=staff_label(staff))
        else:
            out = await send_to_customer(s, desk, ticket=ticket, view=view, template="staff_reply",
                                         kind="outbound", now=now, body=body, staff_id=staff.id,
                                         sender=staff_label(staff),
                                         from_name=f"{staff_label(staff)} ({group})",
                                         staff_name=staff_label(staff), group=group)
        channel = groups.card_channel(group_row, desk.settings)
        intents.post_card(s, ticket_id=ticket.id, destination=channel, now=now,
                          card=CardView(ticket=view, first_message=MessageView.of(out) if out else None,
                                        message_count=0, last_action=f"Opened by {staff_label(staff)}"))
        return ActionResult(ticket.id, f"Ticket #{ticket.id} opened for {phone or email}; the message is on its way.")
