"""Plain, frozen views of stored rows that core hands to adapters and senders.

Adapters never see live ORM objects (they would lazy-load outside their session). Nothing
here queries the database: callers load rows and convert them. ``snapshot``/``restore`` turn
a view into JSON for an outbox intent and back, so a sender shows what was true when the
intent was recorded.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from bot.core.filetypes import is_executable
from bot.store import models as m


def snapshot(value: Any) -> Any:
    """A view (nested dataclasses, tuples, datetimes) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: snapshot(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return value


T = typing.TypeVar("T")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def restore(cls: type[T], data: Any) -> T:
    """The inverse of ``snapshot`` for a view class (fields added later take their defaults)."""
    return _restore(cls, data)


def _restore(hint: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _restore(inner[0], data) if len(inner) == 1 else data
    if origin is tuple:
        return tuple(_restore(typing.get_args(hint)[0], v) for v in data)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        return hint(**{f.name: _restore(hints[f.name], data[f.name])
                       for f in dataclasses.fields(hint) if f.name in data})
    return data


@dataclass(frozen=True)
class RatingView:
    """A customer's rating of a closing (core.ratings)."""

    score: int  # 1-5
    comment: str
    at: datetime  # when it was given, or last changed

    @classmethod
    def of(cls, row: m.Rating) -> "RatingView":
        return cls(score=row.score, comment=row.comment, at=row.updated_at)


def stars(score: int) -> str:
    """``★★★★☆`` for 4: the card's and the thread's picture of a score."""
    return "★" * score + "☆" * (5 - score)


@dataclass(frozen=True)
class ContactView:
    name: str
    email: str | None
    phone: str | None
    sms_opted_out: bool = False  # texted STOP: no SMS until START

    @classmethod
    def of(cls, c: m.Contact) -> "ContactView":
        return cls(name=c.name, email=c.email, phone=c.phone, sms_opted_out=bool(c.sms_opted_out))

    @property
    def label(self) -> str:
        address = self.email or self.phone or ""
        return f"{self.name} <{address}>" if self.name else address


@dataclass(frozen=True)
class AttachmentView:
    name: str
    type: str
    size: int
    sha256: str
    withheld: bool = False
    id: int | None = None  # the stored attachment (its download link names it)
    sniffed: str | None = None  # the type its bytes show
    inline: bool = False
    executable: bool = False  # a program or script: flagged, never previewed

    @classmethod
    def of(cls, row: m.AttachmentRow) -> "AttachmentView":
        return cls(name=row.name, type=row.content_type, size=row.size, sha256=row.sha256 or "",
                   withheld=row.withheld, id=row.id, sniffed=row.sniffed_type, inline=row.inline,
                   executable=is_executable(row.name, row.sniffed_type))


@dataclass(frozen=True)
class MessageView:
    id: int
    kind: str
    channel: str
    sender: str
    subject: str
    body: str
    quoted: str
    message_id: str | None
    remote_id: str | None
    delivery_status: str | None
    auto_submitted: str | None
    created_at: datetime
    attachments: tuple[AttachmentView, ...] = ()
    authentication: dict[str, str] | None = None  # sender checks that failed ({"dmarc": "fail"})
    recipient: str | None = None  # who an outgoing message is addressed to

    @classmethod
    def of(cls, msg: m.Message, attachments: tuple[AttachmentView, ...] = (),
           recipient: str | None = None) -> "MessageView":
        return cls(id=msg.id, kind=msg.kind, channel=msg.channel, sender=msg.sender,
                   subject=msg.subject, body=msg.body, quoted=msg.quoted,
                   message_id=msg.message_id, remote_id=msg.remote_id,
                   delivery_status=msg.delivery_status, auto_submitted=msg.auto_submitted,
                   created_at=msg.created_at, attachments=attachments,
                   authentication=msg.authentication, recipient=recipient)


@dataclass(frozen=True)
class TicketView:
    number: int
    subject: str
    status: str
    priority: int
    category: str | None
    type: str | None
    group: str
    assignee: str | None  # Slack user id
    requester: ContactView
    channel: str
    unread: bool
    weight: int
    created_at: datetime
    updated_at: datetime
    last_customer_message_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    locked_by: str | None = None  # name of who is writing a reply, while the lock holds
    lock_expires_at: datetime | None = None
    links: tuple[int, ...] = ()
    reply_to: str | None = None  # where replies go, when not the requester's own address
    proposed_reply_to: str | None = None  # asked for by a message staff have not accepted
    account: str | None = None  # the IMAP account its first message was read from
    # The rules, as of when the view was taken (core.sla, core.weighing).
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    first_response_breached: bool = False
    resolution_breached: bool = False
    sla_paused: bool = False
    first_responded_at: datetime | None = None
    idle_minutes: int | None = None
    idle: bool = False
    follow_up_at: datetime | None = None
    action_required_at: datetime | None = None
    business_timezone: str = "UTC"  # the group's business hours: where a date means a day
    rating: RatingView | None = None  # the customer's newest rating of a closing

    @classmethod
    def of(cls, t: m.Ticket, *, group: str, requester: m.Contact, assignee: str | None = None,
           locked_by: str | None = None, links: tuple[int, ...] = (), weight: int | None = None,
           **rules: Any) -> "TicketView":
        return cls(number=t.id, subject=t.subject, status=t.status, priority=t.priority,
                   category=t.category, type=t.type, group=group, assignee=assignee,
                   requester=ContactView.of(requester), channel=t.channel, unread=t.unread,
                   weight=t.weight if weight is None else weight, created_at=t.created_at, updated_at=t.updated_at,
                   last_customer_message_at=t.last_customer_message_at,
                   resolved_at=t.resolved_at, closed_at=t.closed_at, locked_by=locked_by,
                   lock_expires_at=t.lock_expires_at if locked_by else None, links=links,
                   reply_to=t.reply_to, proposed_reply_to=t.proposed_reply_to,
                   account=account_of(t.door), follow_up_at=t.follow_up_at,
                   action_required_at=t.action_required_at, **rules)


def account_of(door: str) -> str | None:
    """The IMAP account a door name ``imap:<account>`` stands for; None for other doors."""
    return door.removeprefix("imap:") if door.startswith("imap:") else None


@dataclass(frozen=True)
class CardView:
    """What a ticket's Slack card shows."""

    ticket: TicketView
    first_message: MessageView | None
    message_count: int = 1
    last_action: str = ""
    transferred_to: str | None = None  # set on the old card of a transferred ticket
    attachment_count: int = 0  # files the ticket's messages carry (the card's paperclip)


@dataclass(frozen=True)
class OutgoingEmail:
    """A customer email to render: which template, to whom, its threading headers and what
    the template shows. The email sender turns it into MIME."""

    template: str  # templates/email/customer/<template>.txt.j2 and .html.j2
    ticket: TicketView
    to_address: str
    to_name: str
    subject: str
    message_id: str
    reply_to: str | None  # None: answers go to From (an IMAP account's own address)
    in_reply_to: str | None
    references: tuple[str, ...]
    auto_submitted: str | None  # RFC 3834: "auto-replied", "auto-generated", or None (a person wrote it)
    date: datetime
    from_name: str | None = None  # None: email_out.from_name
    from_address: str | None = None  # None: email_out.from_address
    text: str = ""  # what staff wrote (replies)
    staff_name: str = ""
    group: str = ""
    history: tuple[MessageView, ...] = ()  # earlier messages, newest first, quoted below a reply
    first_message: MessageView | None = None  # what the customer wrote (acknowledgements)
    attachments: tuple[AttachmentView, ...] = ()  # files staff sent with it (bytes by sha256)
    page_url: str | None = None  # the ticket's signed page (customer_page), when it is on
    ask_rating: bool = False  # a close confirmation with rating links to the page (core.ratings)


@dataclass(frozen=True)
class OutgoingMail:
    """An email to someone who is not a ticket's customer (a manager's digest): the template
    pair ``templates/<template>.txt.j2`` and ``.html.j2`` rendered with ``values``. The email
    sender turns it into MIME without knowing what it is about."""

    template: str
    values: dict[str, Any]
    to_address: str
    subject: str
    message_id: str
    date: datetime
    auto_submitted: str | None = "auto-generated"  # RFC 3834: no person wrote it
    from_name: str | None = None  # None: email_out.from_name
    from_address: str | None = None  # None: email_out.from_address


@dataclass(frozen=True)
class QuarantineView:
    id: int
    reason: str
    detail: str
    status: str
    size: int
    envelope_from: str | None
    envelope_to: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class OutboxView:
    id: int
    channel: str
    kind: str
    ticket_number: int | None
    status: str
    attempts: int
    due_at: datetime
    last_error: str | None
    remote_id: str | None
    created_at: datetime
    sent_at: datetime | None
    payload: dict[str, Any]
    uncertain: bool = False  # a previous attempt may have gone through (lease expired mid-send)

    @classmethod
    def of(cls, row: m.OutboxItem, *, uncertain: bool = False) -> "OutboxView":
        return cls(id=row.id, channel=row.channel, kind=row.kind, ticket_number=row.ticket_id,
                   status=row.status, attempts=row.attempts, due_at=row.due_at,
                   last_error=row.last_error, remote_id=row.remote_id, created_at=row.created_at,
                   sent_at=row.sent_at, payload=row.payload, uncertain=uncertain)
