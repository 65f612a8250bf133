"""Mail to the customer, threaded: one outbound message row plus one ``email`` outbox row.

Every customer email (acknowledgement, staff reply, close confirmation) goes through
``send_to_customer`` so they all carry our Message-ID ``t{ticket}.{msg}.{rand}@reply_domain``,
In-Reply-To the customer's last message, References to the ticket's conversation, the
``[#N]`` subject tag and the reply-token Reply-To (DESIGN §2.6). Rendering happens here, at
enqueue time, through the injected renderers. No I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.desk import Desk
from bot.core.outbox import enqueue
from bot.core.threading import new_message_id, reply_address
from bot.core.views import OutgoingEmail, TicketView
from bot.store import models as m

MAX_REFERENCES = 10  # enough for every client to thread; keeps the header short


def reply_subject(subject: str, number: int) -> str:
    """``Re: <subject> [#N]`` — the tag lets a customer's new mail find its ticket."""
    lowered = subject.lower()
    prefix = "" if lowered.startswith(("re:", "aw:", "sv:", "antw:")) else "Re: "
    return f"{prefix}{subject} [#{number}]"


async def _conversation(s: AsyncSession, ticket: m.Ticket) -> tuple[str | None, str | None, list[str]]:
    """(where answers go, the customer's last Message-ID, the ticket's Message-IDs in order),
    from one query over the ticket's mail."""
    rows = (await s.execute(select(m.Message.kind, m.Message.message_id, m.Message.reply_to,
                                   m.Message.contact_id, m.Message.auto_submitted)
                            .where(m.Message.ticket_id == ticket.id,
                                   m.Message.kind.in_(("inbound", "outbound", "automatic")))
                            .order_by(m.Message.id))).all()
    ids = [r.message_id for r in rows if r.message_id]
    inbound = [r for r in rows if r.kind == "inbound"]
    last_inbound = next((r.message_id for r in reversed(inbound) if r.message_id), None)
    # Only the requester's own, human mail may redirect answers: anyone can send a message
    # that threads into the ticket, and must not thereby receive the staff's replies.
    reply_to = next((r.reply_to for r in reversed(inbound) if r.reply_to and
                     r.contact_id == ticket.requester_id and r.auto_submitted is None), None)
    return reply_to, last_inbound, ids


async def send_to_customer(s: AsyncSession, desk: Desk, *, ticket: m.Ticket, view: TicketView,
                           template: str, kind: str, now: datetime, body: str = "",
                           staff_id: int | None = None, sender: str = "system",
                           auto_submitted: str | None = None, from_name: str | None = None,
                           context: dict[str, Any] | None = None) -> m.Message | None:
    """Record and enqueue one email to the ticket's customer; None if they have no address."""
    settings = desk.settings
    contact = await s.get_one(m.Contact, ticket.requester_id)  # loaded already: no query
    reply_to, last_inbound, ids = await _conversation(s, ticket)
    to_address, to_name = reply_to or contact.email, contact.name
    if not to_address:
        return None

    subject = reply_subject(view.subject, view.number)
    out = m.Message(ticket_id=ticket.id, kind=kind, channel="email", staff_id=staff_id,
                    sender=sender, subject=subject, body=body, delivery_status="queued",
                    created_at=now)
    s.add(out)
    await s.flush()
    out.message_id = new_message_id(ticket=ticket.id, message=out.id,
                                    domain=settings.email_out.reply_domain)
    mail = OutgoingEmail(
        template=template, ticket=view, to_address=to_address, to_name=to_name, subject=subject,
        message_id=out.message_id,
        reply_to=reply_address(from_address=settings.email_out.from_address,
                               token=ticket.reply_token, reply_domain=settings.email_out.reply_domain),
        in_reply_to=last_inbound or (ids[-1] if ids else None),
        references=tuple(ids[-MAX_REFERENCES:]), auto_submitted=auto_submitted, date=now,
        from_name=from_name, context=context or {})
    enqueue(s, channel="email", kind=f"email.{template}", ticket_id=ticket.id, message_id=out.id,
            ordering_key=f"email:t{ticket.id}", now=now,
            payload={"from": settings.email_out.from_address, "to": [to_address],
                     "message": desk.renderers.customer_email(mail)})
    return out
