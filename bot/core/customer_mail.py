"""Mail to the customer, threaded: one outbound message row plus one ``customer.message``
intent on the ``email`` channel.

Every customer email (acknowledgement, staff reply, close confirmation) goes through
``send_to_customer`` so they all carry our Message-ID ``t{ticket}.{msg}.{rand}@reply_domain``,
In-Reply-To the customer's last message, References to the ticket's conversation, the
``[#N]`` subject tag and the reply-token Reply-To (DESIGN §2.6). What the mail says is fixed
here, at enqueue time; the email sender turns it into MIME. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import filetypes, groups, intents, page_links
from bot.core.desk import Desk
from bot.core.threader import new_message_id, reply_address
from bot.core.views import AttachmentView, MessageView, OutgoingEmail, TicketView
from bot.messages import Attachment
from bot.store import models as m

MAX_REFERENCES = 10  # enough for every client to thread; keeps the header short
CLOSE_CONFIRMATIONS = ("ticket_closed", "ticket_auto_closed")  # they ask for a rating


@dataclass(frozen=True)
class Conversation:
    """Where answers go (None: the requester's address), the customer's last Message-ID and
    the ticket's Message-IDs in order."""

    reply_to: str | None
    last_inbound: str | None
    message_ids: tuple[str, ...]


def reply_subject(subject: str, number: int) -> str:
    """``Re: <subject> [#N]`` — the tag lets a customer's new mail find its ticket."""
    lowered = subject.lower()
    prefix = "" if lowered.startswith(("re:", "aw:", "sv:", "antw:")) else "Re: "
    return f"{prefix}{subject} [#{number}]"


async def conversation(s: AsyncSession, ticket: m.Ticket) -> Conversation:
    """The ticket's mail so far, from one query bounded by the ticket."""
    rows = (await s.execute(select(m.Message.kind, m.Message.message_id)
                            .where(m.Message.ticket_id == ticket.id,
                                   m.Message.kind.in_(("inbound", "outbound", "automatic")))
                            .order_by(m.Message.id))).all()
    ids = tuple(r.message_id for r in rows if r.message_id)
    last_inbound = next((r.message_id for r in reversed(rows) if r.kind == "inbound" and r.message_id), None)
    # Where answers go is the ticket's, not the latest message's: anyone can send a message
    # that threads into the ticket, and must not thereby receive the staff's replies.
    return Conversation(reply_to=ticket.reply_to, last_inbound=last_inbound, message_ids=ids)


def recipient(ticket: m.Ticket, requester: m.Contact) -> str | None:
    """The address staff replies go to."""
    return ticket.reply_to or requester.email


@dataclass(frozen=True)
class Draft:
    """One customer email to record: what it says and how it is marked."""

    ticket: m.Ticket
    view: TicketView
    template: str
    kind: str  # outbound (a person wrote it) | automatic
    body: str = ""
    staff_id: int | None = None
    sender: str = "system"
    auto_submitted: str | None = None
    from_name: str | None = None
    staff_name: str = ""
    group: str = ""
    history: tuple[MessageView, ...] = ()
    first_message: MessageView | None = None
    known: Conversation | None = None  # the conversation, when the caller has it already
    files: tuple[Attachment, ...] = ()  # sent with it (kept by the caller in the blob store)


async def send_to_customer(s: AsyncSession, desk: Desk, *, now: datetime, **draft: Any) -> m.Message | None:
    """Record and enqueue one email to the ticket's customer; None if they have no address."""
    return (await send_all(s, desk, [Draft(**draft)], now=now))[0]


async def send_all(s: AsyncSession, desk: Desk, drafts: list[Draft], *,
                   now: datetime) -> list[m.Message | None]:
    """Record and enqueue several customer emails; their rows are written in one statement."""
    settings = desk.settings
    outgoing: list[tuple[Draft, m.Contact, Conversation, str, m.Message] | None] = []
    for d in drafts:
        contact = await s.get_one(m.Contact, d.ticket.requester_id)  # loaded already: no query
        talk = d.known or await conversation(s, d.ticket)
        to_address = talk.reply_to or contact.email
        if not to_address:
            outgoing.append(None)
            continue
        out = m.Message(ticket_id=d.ticket.id, kind=d.kind, channel="email", staff_id=d.staff_id,
                        sender=d.sender, subject=reply_subject(d.view.subject, d.view.number),
                        body=d.body, delivery_status="queued", created_at=now)
        outgoing.append((d, contact, talk, to_address, out))
    s.add_all(o[4] for o in outgoing if o is not None)
    await s.flush()
    for o in outgoing:
        if o is None:
            continue
        d, contact, talk, to_address, out = o
        out.message_id = new_message_id(ticket=d.ticket.id, message=out.id,
                                        domain=settings.email_out.reply_domain)
        ids = talk.message_ids
        account = groups.imap_account(settings, d.ticket.door)
        if account is not None and account.from_address:
            # The account's own mailbox takes the answers: the customer wrote to it, and a
            # reply-token address on reply_domain might not reach it. Our Message-IDs in
            # In-Reply-To/References thread the answer.
            from_address, reply_to = account.from_address, None
        else:
            from_address = None
            reply_to = reply_address(from_address=settings.email_out.from_address,
                                     token=d.ticket.reply_token,
                                     reply_domain=settings.email_out.reply_domain)
        mail = OutgoingEmail(
            template=d.template, ticket=d.view, to_address=to_address, to_name=contact.name,
            subject=out.subject, message_id=out.message_id, reply_to=reply_to,
            from_address=from_address,
            in_reply_to=talk.last_inbound or (ids[-1] if ids else None),
            references=ids[-MAX_REFERENCES:], auto_submitted=d.auto_submitted, date=now,
            from_name=d.from_name, text=d.body, staff_name=d.staff_name, group=d.group,
            history=d.history, first_message=d.first_message,
            attachments=tuple(AttachmentView.of(row) for row in outgoing_files(s, out, d.files)),
            page_url=page_links.link_for(settings, d.ticket.id, d.ticket.requester_id, now=now),
            ask_rating=d.template in CLOSE_CONFIRMATIONS and settings.tickets.rating_change_days > 0)
        intents.customer_email(s, ticket_id=d.ticket.id, message_id=out.id,
                               sender=settings.email_out.from_address, mail=mail, now=now)
    return [o[4] if o is not None else None for o in outgoing]


def outgoing_files(s: AsyncSession, message: m.Message, files: tuple[Attachment, ...]) -> list[m.AttachmentRow]:
    """The files a message we send carries, as its attachment rows (their bytes are kept by
    content hash already)."""
    rows = [m.AttachmentRow(message_id=message.id, name=f.name[:255], content_type=f.content_type[:255],
                            size=f.size, sha256=f.sha256, inline=False, withheld=False,
                            sniffed_type=filetypes.sniff(f.data)) for f in files]
    s.add_all(rows)
    return rows
