"""What a valid configuration is: the pydantic models (``Settings`` and its sections) and the
checks of single values they use.

Attribute names are the YAML keys of DESIGN §4; ``extra="forbid"`` turns a typo into an error.
Every value check raises ValueError with a message that reads well after ``key.path: ``.
``Settings`` runs the checks between sections (``bot.config.relations``) too, so a ``Settings``
built in code is held to the same rules as one loaded from a file.

This module must not read files or the environment, expand ``${VAR}``, or turn validation errors
into messages for the operator: that is ``bot.config.loader``. It must not check one section
against another itself: that belongs in ``bot.config.relations``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from bot.config.relations import relation_problems

# ---------------------------------------------------------------------------------------------
# Value checks shared by the models. Each raises ValueError with a message that makes sense after
# "key.path: ", which is how every problem is finally shown.

# "127.0.0.1:2525", "[::1]:8080", "mail.example.com:25", "0.0.0.0:0" (port 0 = any free port)
_LISTEN_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]+)):(?P<port>\d{1,5})$")
# "help@support.example.com", "ops@localhost"; deliberately loose on the local part
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"  # "support", "my-host"
_EMAIL_RE = re.compile(rf"^[^@\s<>\"(),;:]+@{_LABEL}(?:\.{_LABEL})*$")
# "support.example.com", "localhost"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
# "08:00", "23:59"
_HHMM_RE = re.compile(r"^(?P<h>[01]\d|2[0-3]):(?P<m>[0-5]\d)$")
# "09:00-17:00", "00:00-24:00" (24:00 only as an end: "until midnight")
_SPAN_RE = re.compile(
    r"^(?P<start>[01]\d|2[0-3]):(?P<sm>[0-5]\d)-(?:(?P<end>[01]\d|2[0-3]):(?P<em>[0-5]\d)|24:00)$"
)
# "+15550000001" (E.164)
_PHONE_RE = re.compile(r"^\+[1-9]\d{1,14}$")
# "#support", "#help-desk_2" or a channel id "C0123ABCD" / private "G0123ABCD"
_CHANNEL_RE = re.compile(r"^(?:#[^\s#,]{1,80}|[CG][A-Z0-9]{2,})$")
# "U012ABC", "W012ABC" (Enterprise Grid)
_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
# "https://slack.com/api/", "http://127.0.0.1:8080"
_URL_RE = re.compile(r"^https?://[^\s/]+(?:/\S*)?$")

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DATABASE_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:8080"`` for IPv6) into ``(host, port)``; port 0 = any free."""
    match = _LISTEN_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected host:port, got {value!r}")
    port = int(match["port"])
    if port > 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    return match["v6"] or match["host"], port


def _check_listen(value: str) -> str:
    parse_listen(value)
    return value


def _check_email(value: str) -> str:
    if not _EMAIL_RE.match(value):
        raise ValueError(f"expected an email address like name@example.com, got {value!r}")
    local, _, domain = value.rpartition("@")
    # Domains are case-insensitive; lower-casing here lets routing compare with ==.
    return f"{local}@{domain.lower()}"


def _check_routing_email(value: str) -> str:
    # Addresses we route on are matched case-insensitively, so store them folded.
    return _check_email(value).lower()


def _check_domain(value: str) -> str:
    value = value.rstrip(".").lower()
    if not _DOMAIN_RE.match(value):
        raise ValueError(f"expected a domain like support.example.com, got {value!r}")
    return value


def _check_hhmm(value: object) -> str:
    if not isinstance(value, str) or not _HHMM_RE.match(value):
        raise ValueError(f"expected a time HH:MM (quoted, e.g. \"08:00\"), got {value!r}")
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name like UTC or Europe/Berlin)") from None
    return value


def _check_phone(value: str) -> str:
    if not _PHONE_RE.match(value):
        raise ValueError(f"expected a phone number in E.164 form like +15550000001, got {value!r}")
    return value


def _check_channel(value: str) -> str:
    if not _CHANNEL_RE.match(value):
        raise ValueError(f"expected a Slack channel like '#support' or an id like C0123ABCD, got {value!r}")
    return value


def _check_user(value: str) -> str:
    if not _USER_RE.match(value):
        raise ValueError(f"expected a Slack user id like U012ABC, got {value!r}")
    return value


def _check_url(value: str) -> str:
    if not _URL_RE.match(value):
        raise ValueError(f"expected an http(s):// URL, got {value!r}")
    return value


def _check_name(value: str) -> str:
    if not value.strip() or value != value.strip():
        raise ValueError(f"expected a non-empty name without surrounding spaces, got {value!r}")
    return value


def _check_priority_keys(value: dict[int, int]) -> dict[int, int]:
    bad = sorted(k for k in value if not 1 <= k <= 9)
    if bad:
        raise ValueError(f"priority levels are 1..9, got {bad}")
    return value


Listen = Annotated[str, AfterValidator(_check_listen)]
Email = Annotated[str, AfterValidator(_check_email)]
RoutingEmail = Annotated[str, AfterValidator(_check_routing_email)]
Domain = Annotated[str, AfterValidator(_check_domain)]
HHMM = Annotated[str, BeforeValidator(_check_hhmm)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
Phone = Annotated[str, AfterValidator(_check_phone)]
Channel = Annotated[str, AfterValidator(_check_channel)]
SlackUser = Annotated[str, AfterValidator(_check_user)]
Name = Annotated[str, AfterValidator(_check_name)]
PriorityPoints = Annotated[dict[int, int], AfterValidator(_check_priority_keys)]


# ---------------------------------------------------------------------------------------------
# Models. Attribute names are the YAML keys of DESIGN §4; extra="forbid" turns a typo into an error.


class _Model(BaseModel):
    # hide_input_in_errors: a ValidationError printed by a caller must not echo a secret.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class DatabaseConfig(_Model):
    """``database``: where tickets live."""

    url: str = "sqlite+aiosqlite:///deskbell.db"
    # PostgreSQL only: connections each process keeps open (a burst may open as many again).
    pool_size: int = Field(10, ge=1)
    # PostgreSQL only: a statement running longer is cancelled (0 = no limit).
    statement_timeout_seconds: float = Field(30.0, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(_DATABASE_SCHEMES):
            raise ValueError(
                f"must start with {' or '.join(_DATABASE_SCHEMES)}, got {_redact_url(value)!r}"
            )
        return value

    @property
    def redacted_url(self) -> str:
        """The URL with any password replaced by ``***`` (for logs and repr)."""
        return _redact_url(self.url)

    @property
    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments for ``bot.store.db.Database`` besides the URL."""
        return {"pool_size": self.pool_size, "statement_timeout": self.statement_timeout_seconds}

    def __repr_args__(self) -> Iterator[tuple[str, Any]]:
        # The URL may carry a password (postgresql+asyncpg://user:pw@host/db).
        yield "url", self.redacted_url
        yield "pool_size", self.pool_size
        yield "statement_timeout_seconds", self.statement_timeout_seconds


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class SmtpInConfig(_Model):
    """``smtp_in``: the SMTP listener that receives customer mail."""

    listen: Listen = "127.0.0.1:2525"
    domains: list[Domain] = Field(default_factory=list)  # [] = accept any domain
    max_message_bytes: int = Field(26214400, ge=1024)
    fallback_group: str | None = None  # None = the first handler group
    tls_cert: str | None = None
    tls_key: str | None = None
    # Resource limits against a hostile or broken internet (see README "Security").
    max_sessions: int = Field(200, ge=1)  # concurrent SMTP connections; more get 421 4.7.0
    max_sessions_per_client: int = Field(20, ge=1)  # per client IP address
    max_data_sessions: int = Field(20, ge=1)  # messages being transferred (DATA) at once
    max_recipients: int = Field(100, ge=1)  # RCPT commands per message; more get 452 4.5.3
    session_timeout_seconds: float = Field(300.0, gt=0)  # idle time between commands (RFC 5321: 5 min)
    # authserv-ids (RFC 8601) of the MTAs in front of us whose Authentication-Results we trust;
    # [] = only the topmost Authentication-Results header (the one our nearest MTA added).
    authserv_ids: list[str] = Field(default_factory=list)


class EmailOutConfig(_Model):
    """``email_out``: the SMTP relay replies and digests leave through."""

    host: str = Field("localhost", min_length=1)
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    tls: bool = False  # implicit TLS from the first byte (usually port 465)
    username: str = ""
    password: SecretStr = SecretStr("")
    from_address: Email = "support@example.com"
    from_name: str = "Support"
    reply_domain: Domain = "support.example.com"
    max_message_bytes: int = Field(26214400, ge=1024)
    ack_rate_limit_per_hour: int = Field(5, ge=0)  # per recipient address
    ack_rate_limit_per_domain_per_hour: int = Field(20, ge=0)  # per recipient domain; 0 = none
    ack_rate_limit_total_per_hour: int = Field(500, ge=0)  # all acknowledgements; 0 = none
    timeout_seconds: float = Field(30.0, gt=0)


class ImapAccount(_Model):
    """One mailbox in ``imap_accounts``, watched with IDLE."""

    name: Name
    host: str = Field(min_length=1)
    port: int = Field(993, ge=1, le=65535)
    tls: bool = True  # TLS from the first byte (port 993)
    starttls: bool = False  # plain connection upgraded with STARTTLS (port 143); refused without it
    username: str
    password: SecretStr = SecretStr("")
    # How to log in: auto = AUTHENTICATE PLAIN when offered, else LOGIN; xoauth2 = Gmail and
    # Microsoft 365 with ``oauth2_token`` (an access token kept fresh in the environment).
    auth: Literal["auto", "login", "plain", "xoauth2"] = "auto"
    oauth2_token: SecretStr = SecretStr("")
    mailbox: str = Field("INBOX", min_length=1)
    processed_mailbox: str = "Deskbell/Processed"  # "" = leave the message where it is
    quarantine_mailbox: str = "Deskbell/Quarantine"  # where mail we could not take is moved
    handler_group: str | None = None  # None = by address, else the fallback group
    from_address: Email | None = None  # replies to its tickets leave from this address
    poll_seconds: float = Field(60.0, gt=0)
    # RFC 2177: a client should re-issue IDLE at least every 29 minutes.
    idle_refresh_seconds: float = Field(300.0, gt=0, le=1740)
    response_timeout_seconds: float = Field(30.0, gt=0)  # an unanswered command = a dead link
    max_message_bytes: int = Field(26214400, ge=1024)  # larger mail stays in the mailbox

    @model_validator(mode="after")
    def _login_and_tls(self) -> "ImapAccount":
        problems = []
        if self.tls and self.starttls:
            problems.append("tls and starttls: choose one (tls for port 993, starttls for 143)")
        if self.processed_mailbox and self.processed_mailbox == self.mailbox:
            problems.append("processed_mailbox: must differ from mailbox")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SlackConfig(_Model):
    """``slack``: the workspace staff work in."""

    bot_token: SecretStr = SecretStr("")
    app_token: SecretStr = SecretStr("")  # set = Socket Mode instead of /slack/events
    signing_secret: SecretStr = SecretStr("")
    api_url: str = "https://slack.com/api/"
    command: str = "/ticket"
    fallback_channel: Channel = "#helpdesk"
    max_upload_bytes: int = Field(20971520, ge=1)
    upload_files: bool = True  # false: customers' files appear as signed download links only
    admins: list[SlackUser] = Field(default_factory=list)  # may act on any ticket, lift reply locks
    quarantine_notices_per_hour: int = Field(20, ge=0)  # more are counted, not posted; 0 = none

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        # slack_sdk joins method names onto this; without the slash "…/api" + "chat.postMessage"
        # would resolve to "…/chat.postMessage".
        value = _check_url(value)
        return value if value.endswith("/") else value + "/"

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        if not re.match(r"^/[a-z0-9_-]+$", value):  # "/ticket"
            raise ValueError(f"expected a slash command like /ticket, got {value!r}")
        return value


class CannedResponse(_Model):
    """``canned_responses[]``: a ready answer staff can pick in the Reply modal."""

    name: str = Field(min_length=1, max_length=75)
    text: str = Field(min_length=1, max_length=3000)


class TwilioConfig(_Model):
    """``twilio``: SMS in and out."""

    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    from_number: str = ""  # "" = no default sender: SMS replies only from a group's number
    api_url: str = "https://api.twilio.com"
    # Kept byte-for-byte: Twilio signs the exact URL it posted to.
    webhook_url: str = ""
    help_text: str = "Reply with your question and we will get back to you. Reply STOP to opt out."

    @field_validator("from_number")
    @classmethod
    def _from_number(cls, value: str) -> str:
        return _check_phone(value) if value else value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str) -> str:
        return _check_url(value) if value else value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return _check_url(value).rstrip("/")


class WebConfig(_Model):
    """``web``: the HTTP listener (Slack events, Twilio webhooks, files, health)."""

    listen: Listen = "127.0.0.1:8080"
    public_url: str = "http://127.0.0.1:8080"  # how the outside world reaches `listen`
    max_body_bytes: int = Field(1048576, ge=1024)  # largest POST body (Slack's are small); 413
    max_connections: int = Field(500, ge=1)  # concurrent HTTP connections; more get 503
    header_timeout_seconds: float = Field(10.0, gt=0)  # to send a request's headers, else closed
    keepalive_timeout_seconds: float = Field(5.0, gt=0)  # idle keep-alive connections are closed
    # Bearer token for GET /metrics; "" = /metrics answers only direct loopback clients.
    metrics_token: SecretStr = SecretStr("")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        # Paths are appended to it ("/files/…"), so keep exactly one slash between them.
        return _check_url(value).rstrip("/")


class HandlerGroup(_Model):
    """One of ``handler_groups``: a door (addresses, numbers) + a Slack channel + its staff."""

    name: Name
    slack_channel: Channel
    members: list[SlackUser] = Field(default_factory=list)
    email_addresses: list[RoutingEmail] = Field(default_factory=list)
    phone_numbers: list[Phone] = Field(default_factory=list)
    business_hours: str = "default"  # a key of the business_hours section


class TicketType(_Model):
    """A type: child of a category (Refund under Billing)."""

    name: Name
    points: int = 0


class Category(_Model):
    """One of ``categories``: which department a ticket belongs to."""

    name: Name
    handler_group: str
    points: int = 0
    types: list[TicketType] = Field(default_factory=list)
    # SLA targets of this category's tickets, per priority, in business minutes; a priority
    # not listed here takes the sla section's target.
    first_response_minutes: PriorityPoints = Field(default_factory=dict)
    resolution_minutes: PriorityPoints = Field(default_factory=dict)


class TicketsConfig(_Model):
    """``tickets``: the operator's ticket settings."""

    priorities: int = Field(5, ge=1, le=9)
    default_priority: int = Field(3, ge=1, le=9)
    auto_close_resolved_after_days: int = Field(3, ge=0)  # 0 = never
    all_users_can_close: bool = True
    # "actions" is the earlier spelling of "any_action".
    idle_time_based_on: Literal["replies", "any_action", "actions"] = "replies"
    idle_after_minutes: int = Field(240, ge=0)  # 0 = never flag idle
    auto_reassign_on_update: bool = False
    include_history_in_email: bool = True
    mobile_response_via: Literal["sms", "email", "both"] = "sms"
    sms_reopen_window_days: int = Field(7, ge=0)
    reply_lock_minutes: int = Field(10, ge=1)
    reopen_window_days: int = Field(14, ge=0)  # a customer may reopen from their page this long after
    rating_change_days: int = Field(7, ge=0)  # a closing may be rated, and the rating changed, this long after


class BusinessHours(_Model):
    """One entry of ``business_hours``: when the SLA clocks run."""

    timezone: TimeZoneName = "UTC"
    # "mon-fri": "09:00-17:00"; keys are days, ranges or lists ("sat", "mon-fri", "mon,wed");
    # values one or more spans ("09:00-12:00,13:00-17:00"). Days not listed are closed.
    days: dict[str, str] = Field(default_factory=lambda: {"mon-fri": "09:00-17:00"})
    holidays: list[date] = Field(default_factory=list)

    @field_validator("days")
    @classmethod
    def _days(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("no open hours at all: SLA targets could never be met; list at least one "
                             "day, e.g. {mon-fri: \"09:00-17:00\"}")
        seen: set[int] = set()
        for spec, spans in value.items():
            for day in _parse_days(spec):
                if day in seen:
                    raise ValueError(f"{_DAYS[day]} is covered by more than one key (at {spec!r})")
                seen.add(day)
            _parse_spans(spans)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def minutes_by_weekday(self) -> dict[int, list[tuple[int, int]]]:
        """Open spans per weekday (0 = Monday) as ``(start, end)`` minutes after midnight, end ≤ 1440."""
        week: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
        for spec, spans in self.days.items():
            for day in _parse_days(spec):
                week[day] = _parse_spans(spans)
        return week


def _parse_days(spec: str) -> list[int]:
    """``"mon-fri"`` → [0..4], ``"sat,sun"`` → [5, 6]."""
    days: list[int] = []
    for item in spec.lower().split(","):
        first, _, last = item.strip().partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValueError(f"expected days like mon-fri, sat or mon,wed, got {spec!r}")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        if b < a:
            raise ValueError(f"day range {item.strip()!r} runs backwards (write sun,mon-tue for sun-tue)")
        days.extend(range(a, b + 1))
    return days


def _parse_spans(text: str) -> list[tuple[int, int]]:
    """``"09:00-12:00,13:00-17:00"`` → [(540, 720), (780, 1020)]."""
    spans: list[tuple[int, int]] = []
    for item in str(text).split(","):
        match = _SPAN_RE.match(item.strip())
        if match is None:
            raise ValueError(f"expected opening hours like 09:00-17:00, got {text!r}")
        start = int(match["start"]) * 60 + int(match["sm"])
        end = int(match["end"]) * 60 + int(match["em"]) if match["end"] else 1440
        if end <= start or (spans and start < spans[-1][1]):
            raise ValueError(f"spans must run forwards without overlapping, got {text!r}")
        spans.append((start, end))
    return spans


class SlaConfig(_Model):
    """``sla``: response targets per priority, in business minutes."""

    first_response_minutes: PriorityPoints = Field(
        default_factory=lambda: {1: 30, 2: 60, 3: 240, 4: 480, 5: 1440}
    )
    resolution_minutes: PriorityPoints = Field(
        default_factory=lambda: {1: 240, 2: 480, 3: 1440, 4: 2880, 5: 7200}
    )
    escalate_after_minutes: int = Field(60, ge=0)  # 0 = never escalate
    escalate_to: str = ""  # a channel or user id; "" = the group's channel

    @field_validator("first_response_minutes", "resolution_minutes")
    @classmethod
    def _positive(cls, value: dict[int, int]) -> dict[int, int]:
        bad = {k: v for k, v in value.items() if v <= 0}
        if bad:
            raise ValueError(f"targets must be positive minutes, got {bad}")
        return value

    @field_validator("escalate_to")
    @classmethod
    def _escalate_to(cls, value: str) -> str:
        if value and not (_CHANNEL_RE.match(value) or _USER_RE.match(value)):
            raise ValueError(f"expected a channel like '#leads' or a user id like U012ABC, got {value!r}")
        return value


class WeightConfig(_Model):
    """``weight``: how queues are sorted (higher first)."""

    priority_points: PriorityPoints = Field(default_factory=lambda: {1: 40, 2: 30, 3: 20, 4: 10, 5: 0})
    good_contact_points: int = 20
    bad_contact_points: int = -10


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Digest(_Model):
    """One of ``digests``: a summary email per handler group, sent at ``at`` in ``timezone``.
    A daily digest covers the previous calendar day there; a weekly one is sent on ``day`` and
    covers the 7 days before it."""

    name: Name
    at: HHMM
    timezone: TimeZoneName = "UTC"
    recipients: list[Email] = Field(min_length=1)
    groups: list[str] = Field(default_factory=list)  # [] = every handler group
    period: Literal["daily", "weekly"] = "daily"
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"  # weekly: the day it is sent
    top: int = Field(5, ge=1, le=50)  # tickets in each "heaviest"/"oldest"/"waiting" list

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SchedulerConfig(_Model):
    """``scheduler``: how often the worker makes a pass (deskbell tick)."""

    interval_seconds: float = Field(30.0, gt=0)


class CustomerPageConfig(_Model):
    """``customer_page``: the signed page where a customer follows their ticket (GET /t/<token>)."""

    link_secret: SecretStr = SecretStr("")  # empty: no page, no links in mail
    # Secrets used before: links signed with them still open (rotate without breaking mail sent).
    previous_link_secrets: list[SecretStr] = Field(default_factory=list)
    link_ttl_days: int = Field(90, ge=1)
    logo_url: str = ""  # an https image shown at the top of the page
    requests_per_minute: int = Field(30, ge=1)  # per client address, on /t/


class AttachmentsConfig(_Model):
    """``attachments``: where file contents are kept and how download links are signed."""

    store: Literal["database", "directory"] = "database"
    directory: str = "attachments/"
    max_bytes_per_file: int = Field(26214400, ge=1)
    max_bytes_per_message: int = Field(52428800, ge=1)
    link_secret: SecretStr = SecretStr("")
    link_ttl_hours: int = Field(72, ge=1)
    mms_link_ttl_minutes: int = Field(60, ge=1)


class OutboxConfig(_Model):
    """``outbox``: delivery retries of everything that leaves the system."""

    max_attempts: int = Field(10, ge=1)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(900.0, gt=0)
    concurrency: int = Field(8, ge=1)
    lease_seconds: float = Field(60.0, gt=0)  # a claimed row is retried by others after this


class LogConfig(_Model):
    """``log``: what the process writes to stderr."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def _default_groups() -> list[HandlerGroup]:
    return [HandlerGroup(name="support", slack_channel="#support")]


class Settings(_Model):
    """The whole configuration. ``Settings()`` alone is valid: the embedded defaults."""

    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    smtp_in: SmtpInConfig = Field(default_factory=SmtpInConfig)
    email_out: EmailOutConfig = Field(default_factory=EmailOutConfig)
    imap_accounts: list[ImapAccount] = Field(default_factory=list)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    twilio: TwilioConfig = Field(default_factory=TwilioConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    handler_groups: list[HandlerGroup] = Field(default_factory=_default_groups)
    categories: list[Category] = Field(default_factory=list)
    tickets: TicketsConfig = Field(default_factory=TicketsConfig)
    business_hours: dict[str, BusinessHours] = Field(default_factory=lambda: {"default": BusinessHours()})
    sla: SlaConfig = Field(default_factory=SlaConfig)
    weight: WeightConfig = Field(default_factory=WeightConfig)
    digests: list[Digest] = Field(default_factory=list)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    attachments: AttachmentsConfig = Field(default_factory=AttachmentsConfig)
    customer_page: CustomerPageConfig = Field(default_factory=CustomerPageConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    canned_responses: list[CannedResponse] = Field(default_factory=list)

    @model_validator(mode="after")
    def _relations(self) -> Settings:
        problems = relation_problems({name: getattr(self, name) for name in type(self).model_fields})
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def group_by_name(self, name: str) -> HandlerGroup | None:
        """The handler group called ``name``, or None."""
        return next((g for g in self.handler_groups if g.name == name), None)

    @property
    def fallback_group_name(self) -> str:
        """Where mail that matches no address goes: ``smtp_in.fallback_group`` or the first group."""
        return self.smtp_in.fallback_group or self.handler_groups[0].name

    @property
    def is_sqlite(self) -> bool:
        return self.database.url.startswith("sqlite")
