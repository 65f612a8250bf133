"""Database tables (SQLAlchemy 2 typed models).

Schema only: no queries with business meaning, no sessions, no engine. Every timestamp is
stored as UTC. Changing a table needs an Alembic migration in ``store/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names so Alembic migrations behave the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out.

    PostgreSQL stores ``timestamp with time zone`` (an instant, whatever the session's
    TimeZone); SQLite keeps no offset, so there the value is stored as naive UTC.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use the injected clock")
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# ``jsonb`` on PostgreSQL (indexable, compared by value); SQLite's JSON elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONDocument, list[Any]: JSONDocument}


class Contact(Base):
    """A customer: one row per email address or phone number."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    rating: Mapped[str | None] = mapped_column(String(8))  # "good" | "bad" | None
    # Texted STOP (or a carrier said so, Twilio error 21610): no SMS until START.
    sms_opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]


class Staff(Base):
    """A Slack user who works tickets."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # Assignment skips whoever said ``/ticket away`` (until ``/ticket back``), and whoever
    # Slack last showed as away; ties go to the one assigned longest ago.
    away: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    slack_away: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_assigned_at: Mapped[datetime | None]


class HandlerGroup(Base):
    """A handler group as last read from the config (kept so tickets can reference it)."""

    __tablename__ = "handler_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    slack_channel: Mapped[str] = mapped_column(String(100), default="")


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # The scheduler's sweeps: each reads only the tickets whose moment has come.
        Index("ix_tickets_status_resolved", "status", "resolved_at"),
        Index("ix_tickets_follow_up", "follow_up_reminded_at", "follow_up_at"),
        Index("ix_tickets_action_required", "action_required_reminded_at", "action_required_at"),
        Index("ix_tickets_lock_expiry", "lock_expires_at"),
        # Digests: what was created, answered or fell due in a period.
        Index("ix_tickets_group_created", "group_id", "created_at"),
        Index("ix_tickets_first_response", "first_response_at"),
        Index("ix_tickets_first_response_due", "first_response_due_at"),
        Index("ix_tickets_resolution_due", "resolution_due_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)  # shown to people as #N
    subject: Mapped[str] = mapped_column(String(998), default="")
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    priority: Mapped[int] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(100))
    type: Mapped[str | None] = mapped_column(String(100))
    group_id: Mapped[int] = mapped_column(ForeignKey("handler_groups.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # channel of entry: email | sms | slack
    reply_token: Mapped[str] = mapped_column(String(32), unique=True)
    # Where staff replies go (email): fixed when the ticket opens; changed only by staff or by
    # a message threaded through strong evidence (our reply token or our Message-ID).
    reply_to: Mapped[str | None] = mapped_column(String(320))
    # A different Reply-To that a message joining by weaker evidence asked for, for staff to
    # accept or ignore on the card.
    proposed_reply_to: Mapped[str | None] = mapped_column(String(320))
    via_email: Mapped[bool] = mapped_column(Boolean, default=False)
    unread: Mapped[bool] = mapped_column(Boolean, default=True)
    weight: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_customer_message_at: Mapped[datetime | None]
    last_staff_reply_at: Mapped[datetime | None]
    last_action_at: Mapped[datetime | None]
    follow_up_at: Mapped[datetime | None]
    action_required_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Soft reply lock (BILLmanager: "blocked while an administrator writes the answer").
    lock_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    lock_expires_at: Mapped[datetime | None]
    # The door its first message came through (smtp, imap:<account>, twilio): an IMAP
    # account's tickets are answered from that account's address. (A server default: the
    # previous release, running during an upgrade, inserts tickets without it.)
    door: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # The rules (core.sla, core.rules). When a reply last passed either way, and since when
    # the customer has waited for staff (None: staff spoke last): idle time and weight.
    last_reply_at: Mapped[datetime | None]
    awaiting_staff_since: Mapped[datetime | None]
    # When the ticket turns idle unless something happens first (None: resolved, closed or
    # flagged already), and when the sweep flagged it.
    idle_at: Mapped[datetime | None] = mapped_column(index=True)
    idle_flagged_at: Mapped[datetime | None]
    # SLA clocks: the due instants, the business minutes each target's clock has spent paused
    # (a pause that begins after a target was missed does not count for it), when each breach
    # was announced and escalated (once per target), and the next instant the sweep must look
    # at this ticket (None: nothing pending).
    first_response_at: Mapped[datetime | None]
    first_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    sla_paused_at: Mapped[datetime | None]
    first_response_paused_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    resolution_paused_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sla_check_at: Mapped[datetime | None] = mapped_column(index=True)
    first_response_alerted_at: Mapped[datetime | None]
    resolution_alerted_at: Mapped[datetime | None]
    first_response_escalated_at: Mapped[datetime | None]
    resolution_escalated_at: Mapped[datetime | None]
    follow_up_reminded_at: Mapped[datetime | None]
    action_required_reminded_at: Mapped[datetime | None]


class TicketLink(Base):
    """Two related tickets; stored once per direction so either side finds the other."""

    __tablename__ = "ticket_links"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    created_at: Mapped[datetime]


class RawMessage(Base):
    """The spool: the exact bytes a door received, committed before the door said yes.

    ``state`` moves ``queued → done`` (ingested, in the same transaction as its ticket) or
    ``queued → held`` (quarantined). ``source_id`` is the door's own id (SMTP queue id, IMAP
    ``account:uidvalidity:uid``, Twilio ``MessageSid``); ``message_key`` is the message's
    idempotency key found by parsing (email Message-ID or a hash of the bytes), unique per
    channel so a message that arrives twice, by any door, is ingested once.
    """

    __tablename__ = "raw_messages"
    __table_args__ = (
        UniqueConstraint("channel", "source_id", name="uq_raw_messages_source"),
        UniqueConstraint("channel", "message_key", name="uq_raw_messages_message_key"),
        Index("ix_raw_messages_queue", "state", "id"),
        Index("ix_raw_messages_sender", "sender_key", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    source_id: Mapped[str] = mapped_column(String(998))
    message_key: Mapped[str | None] = mapped_column(String(998))
    state: Mapped[str] = mapped_column(String(8), default="queued")  # queued | done | held
    # Messages of one sender are ingested in arrival order (envelope sender, phone number).
    sender_key: Mapped[str] = mapped_column(String(400), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed ingest attempts
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    door: Mapped[str] = mapped_column(String(100), default="")
    envelope_from: Mapped[str | None] = mapped_column(String(998))
    envelope_to: Mapped[list[Any]] = mapped_column(default=list)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime]


class Message(Base):
    """One entry of a ticket's conversation; never edited after it is written."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # inbound | outbound | note | automatic
    channel: Mapped[str] = mapped_column(String(8))  # email | sms | slack
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    sender: Mapped[str] = mapped_column(String(400), default="")
    reply_to: Mapped[str | None] = mapped_column(String(320))  # where answers go (email Reply-To)
    subject: Mapped[str] = mapped_column(String(998), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    quoted: Mapped[str] = mapped_column(Text, default="")
    # Header Message-ID (ours for outbound mail); threading looks replies up by it.
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    raw_message_id: Mapped[int | None] = mapped_column(ForeignKey("raw_messages.id"))
    # The delivering service's id (a Twilio message SID; status callbacks find the message by it).
    remote_id: Mapped[str | None] = mapped_column(String(200), index=True)
    # queued | sent | failed (email); queued | sent | delivered | undelivered | failed (SMS)
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    auto_submitted: Mapped[str | None] = mapped_column(String(100))
    # What the parser had to repair or could not read (bad charset, broken header), for staff.
    defects: Mapped[list[Any] | None] = mapped_column(JSONDocument)
    # Failing sender checks our upstream MTA recorded (Authentication-Results), e.g.
    # {"dmarc": "fail", "spf": "softfail"}; None when nothing failed or nothing was checked.
    authentication: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime]


class Blob(Base):
    """Attachment bytes, stored once per content hash."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AttachmentRow(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    # None when the file was withheld (over attachments.max_bytes_per_file): its bytes were not kept.
    sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    withheld: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the bytes still wait (an MMS picture on Twilio) until they are fetched.
    source_url: Mapped[str | None] = mapped_column(String(2000))
    # The type the bytes themselves show (a PNG signature, HTML markup), whatever was declared;
    # and the Content-ID an HTML body refers to an inline image by (cid:).
    sniffed_type: Mapped[str | None] = mapped_column(String(255))
    content_id: Mapped[str | None] = mapped_column(String(998))


class Event(Base):
    """The audit log: every change to a ticket, with who made it."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_kind_created", "kind", "created_at"),)  # digests' periods
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(400))  # "customer:<addr>", "staff:<slack id>", "system"
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class OutboxItem(Base):
    """Something to send: an intent with a snapshot of its content; the dispatcher hands it to
    the sender of its channel."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "due_at"),
        Index("ix_outbox_ordering", "ordering_key", "status"),
        Index("ix_outbox_remote", "remote_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # email | sms | slack: which sender delivers it
    # The intent, in no vendor's terms: ticket.card, ticket.card_update, ticket.thread,
    # customer.message, notice, quarantine.notice. The sender renders it.
    kind: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The customer message a customer.message item sends, or a thread post follows.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    # Items with the same key go out one at a time, in id order (a card before its thread).
    ordering_key: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]  # a snapshot of what to say, taken when it was enqueued
    status: Mapped[str] = mapped_column(String(8), default="pending")  # pending|sending|sent|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The sender's id for what it delivered (a Slack message, a relay queue id, a Twilio SID),
    # in a format only that sender reads.
    remote_id: Mapped[str | None] = mapped_column(String(200))
    # Where people can open what was delivered (a Slack card's permalink), when the sender says.
    remote_link: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Quarantine(Base):
    """Mail we could not parse or route, kept with its raw bytes for ``deskbell reprocess``."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(primary_key=True)
    raw_message_id: Mapped[int] = mapped_column(ForeignKey("raw_messages.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # unparseable | bounce | unroutable | error
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="held")  # held | reprocessed | duplicate
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class RateCounter(Base):
    """How often something happened per fixed window (acknowledgements per destination per
    hour): one row per key and window, so a limit check never scans history."""

    __tablename__ = "rate_counters"
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Counter(Base):
    """A named number handed out in commit order: ticket numbers on PostgreSQL, whose sequences
    never give back a number a rolled-back transaction took (operators expect #N without gaps).
    The row stays locked until its transaction ends, which is what makes it gap-free."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ImapMailbox(Base):
    """The IMAP door's ledger for one watched mailbox: every message with a UID up to
    ``last_uid`` under ``uidvalidity`` is in the spool. Correctness rests on it, never on the
    server's \\Seen flag; a new UIDVALIDITY starts the mailbox over."""

    __tablename__ = "imap_mailboxes"
    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(400), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    waiting: Mapped[int] = mapped_column(Integer, default=0)  # above last_uid at the last look
    # Messages left in the mailbox, never to be fetched again: {uid, reason} (too large, or
    # refused by the server every time it was asked for).
    left_behind: Mapped[list[Any]] = mapped_column(default=list)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]  # the last time the mailbox was drained to the end
    updated_at: Mapped[datetime]


class ImapPlacement(Base):
    """Where the IMAP door moved a spooled message (the processed folder, from the server's
    COPYUID answer), so one that intake later quarantines can follow to the quarantine folder."""

    __tablename__ = "imap_placements"
    source_id: Mapped[str] = mapped_column(String(998), primary_key=True)  # the spool's
    account: Mapped[str] = mapped_column(String(100), index=True)
    mailbox: Mapped[str] = mapped_column(String(400))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    filed_at: Mapped[datetime | None]  # moved on to the quarantine folder
    created_at: Mapped[datetime]


class ProcessedKey(Base):
    """Idempotency keys of interactions already handled (Slack event_id, action_ts, …)."""

    __tablename__ = "processed_keys"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime]


class CannedResponse(Base):
    """A ready answer staff saved from Slack (``/ticket canned add``), beside the config's."""

    __tablename__ = "canned_responses"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(75), unique=True)
    text: Mapped[str] = mapped_column(Text)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]


class DigestSend(Base):
    """One digest email recorded for one recipient, group and period: the row is written in the
    transaction that queues the mail, so a period is sent once however often it is asked for
    (``--force`` sends it again and counts it)."""

    __tablename__ = "digest_sends"
    digest: Mapped[str] = mapped_column(String(100), primary_key=True)
    group: Mapped[str] = mapped_column(String(100), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), primary_key=True)
    times: Mapped[int] = mapped_column(Integer, default=1)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))  # the latest mail
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Rating(Base):
    """A customer's rating of one closing of their ticket (1–5 and an optional comment). A
    ticket closed again after a reopening is rated afresh; within ``tickets.rating_change_days``
    of its closing the customer may change their rating, which updates this row."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("ticket_id", "closed_at", name="uq_ratings_closing"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    closed_at: Mapped[datetime]  # the closing rated (the ticket's closed_at then)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    via: Mapped[str] = mapped_column(String(16))  # page | sms
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SchedulerJob(Base):
    """When each scheduler job last made a pass, and up to which instant it looked."""

    __tablename__ = "scheduler_jobs"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_run_at: Mapped[datetime]
    detail: Mapped[str] = mapped_column(Text, default="")
