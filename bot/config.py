"""Configuration: YAML + ${VAR} expansion, validated once with pydantic.

``load_settings`` reads one YAML file, expands ``${VAR}`` / ``${VAR:-default}`` from the
environment mapping it is given, and validates the result into a ``Settings`` object; an invalid
file raises ``ConfigError`` listing *every* problem with its key path (``smtp_in.listen: …``,
``handler_groups[1].name: …``). Key names are the contract of DESIGN §4.

This module must not do I/O beyond reading that one file and the environment passed in (no
network, no database, no probing of credentials: that is ``deskbell check``), and must not keep
configuration in globals: the composition root loads ``Settings`` once and passes it down.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "AttachmentsConfig",
    "BusinessHours",
    "CannedResponse",
    "Category",
    "ConfigError",
    "DatabaseConfig",
    "Digest",
    "EmailOutConfig",
    "HandlerGroup",
    "ImapAccount",
    "LogConfig",
    "OutboxConfig",
    "SchedulerConfig",
    "Settings",
    "SlaConfig",
    "SlackConfig",
    "SmtpInConfig",
    "TicketType",
    "TicketsConfig",
    "TwilioConfig",
    "WebConfig",
    "WeightConfig",
    "find_config_path",
    "load_settings",
    "parse_listen",
]

CONFIG_ENV_VAR = "DESKBELL_CONFIG"
DEFAULT_CONFIG_FILE = "deskbell.yaml"


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` holds one ``key.path: message`` per mistake."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(self.problems)


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

    def __repr_args__(self) -> Iterator[tuple[str, Any]]:
        # The URL may carry a password (postgresql+asyncpg://user:pw@host/db).
        yield "url", self.redacted_url


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
    ack_rate_limit_per_hour: int = Field(5, ge=0)
    timeout_seconds: float = Field(30.0, gt=0)


class ImapAccount(_Model):
    """One mailbox in ``imap_accounts``, watched with IDLE."""

    name: Name
    host: str = Field(min_length=1)
    port: int = Field(993, ge=1, le=65535)
    tls: bool = True
    username: str
    password: SecretStr
    mailbox: str = Field("INBOX", min_length=1)
    processed_mailbox: str = "Deskbell/Processed"  # "" = leave the message, only mark it \Seen
    handler_group: str | None = None  # None = the fallback group
    poll_seconds: float = Field(60.0, gt=0)
    # RFC 2177: a client should re-issue IDLE at least every 29 minutes.
    idle_refresh_seconds: float = Field(300.0, gt=0, le=1740)


class SlackConfig(_Model):
    """``slack``: the workspace staff work in."""

    bot_token: SecretStr = SecretStr("")
    app_token: SecretStr = SecretStr("")  # set = Socket Mode instead of /slack/events
    signing_secret: SecretStr = SecretStr("")
    api_url: str = "https://slack.com/api/"
    command: str = "/ticket"
    fallback_channel: Channel = "#helpdesk"
    max_upload_bytes: int = Field(20971520, ge=1)
    admins: list[SlackUser] = Field(default_factory=list)  # may act on any ticket, lift reply locks

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


class TicketsConfig(_Model):
    """``tickets``: the operator's ticket settings."""

    priorities: int = Field(5, ge=1, le=9)
    default_priority: int = Field(3, ge=1, le=9)
    auto_close_resolved_after_days: int = Field(3, ge=0)  # 0 = never
    all_users_can_close: bool = True
    idle_time_based_on: Literal["replies", "actions"] = "replies"
    idle_after_minutes: int = Field(240, ge=0)  # 0 = never flag idle
    auto_reassign_on_update: bool = False
    include_history_in_email: bool = True
    mobile_response_via: Literal["sms", "email", "both"] = "sms"
    sms_reopen_window_days: int = Field(7, ge=0)
    reply_lock_minutes: int = Field(10, ge=1)


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


class Digest(_Model):
    """One of ``digests``: a summary email sent at ``at`` in ``timezone``."""

    name: Name
    at: HHMM
    timezone: TimeZoneName = "UTC"
    recipients: list[Email] = Field(min_length=1)
    groups: list[str] = Field(default_factory=list)  # [] = every handler group
    period: Literal["daily", "weekly"] = "daily"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SchedulerConfig(_Model):
    """``scheduler``: how often the worker makes a pass (deskbell tick)."""

    interval_seconds: float = Field(30.0, gt=0)


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
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    canned_responses: list[CannedResponse] = Field(default_factory=list)

    @model_validator(mode="after")
    def _relations(self) -> Settings:
        problems = _relation_problems({name: getattr(self, name) for name in type(self).model_fields})
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


# ---------------------------------------------------------------------------------------------
# Checks that relate several values. They take each section as validated, or None when that
# section had errors of its own, so they can run (and be reported) next to the field errors.


def _relation_problems(s: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    groups: list[HandlerGroup] | None = s.get("handler_groups")
    names = {g.name for g in groups} if groups is not None else None

    def unknown_group(path: str, name: str) -> None:
        if names is not None and name not in names:
            defined = ", ".join(sorted(names)) or "none"
            problems.append(f"{path}: unknown handler group {name!r} (defined: {defined})")

    if groups is not None:
        if not groups:
            problems.append("handler_groups: at least one handler group is required")
        seen: set[str] = set()
        owner: dict[str, int] = {}  # address or number → index of the group that lists it
        hours: dict[str, BusinessHours] | None = s.get("business_hours")
        for i, group in enumerate(groups):
            if group.name in seen:
                problems.append(f"handler_groups[{i}].name: duplicate group name {group.name!r}")
            seen.add(group.name)
            # One address or number routing to two groups would make routing depend on list order.
            for field in ("email_addresses", "phone_numbers"):
                for j, value in enumerate(getattr(group, field)):
                    first = owner.setdefault(value, i)
                    if first != i:
                        problems.append(
                            f"handler_groups[{i}].{field}[{j}]: {value!r} already belongs to"
                            f" handler_groups[{first}] ({groups[first].name!r})"
                        )
            if hours is not None and group.business_hours not in hours:
                problems.append(
                    f"handler_groups[{i}].business_hours: unknown business_hours {group.business_hours!r}"
                    f" (defined: {', '.join(sorted(hours)) or 'none'})"
                )

    if (categories := s.get("categories")) is not None:
        seen = set()
        for i, category in enumerate(categories):
            if category.name in seen:
                problems.append(f"categories[{i}].name: duplicate category name {category.name!r}")
            seen.add(category.name)
            unknown_group(f"categories[{i}].handler_group", category.handler_group)
            type_names: set[str] = set()
            for j, ticket_type in enumerate(category.types):
                if ticket_type.name in type_names:
                    problems.append(
                        f"categories[{i}].types[{j}].name: duplicate type name {ticket_type.name!r}"
                    )
                type_names.add(ticket_type.name)

    if (accounts := s.get("imap_accounts")) is not None:
        seen = set()
        for i, account in enumerate(accounts):
            if account.name in seen:
                problems.append(f"imap_accounts[{i}].name: duplicate account name {account.name!r}")
            seen.add(account.name)
            if account.handler_group is not None:
                unknown_group(f"imap_accounts[{i}].handler_group", account.handler_group)

    if (digests := s.get("digests")) is not None:
        seen = set()
        for i, digest in enumerate(digests):
            if digest.name in seen:
                problems.append(f"digests[{i}].name: duplicate digest name {digest.name!r}")
            seen.add(digest.name)
            for j, group_name in enumerate(digest.groups):
                unknown_group(f"digests[{i}].groups[{j}]", group_name)

    smtp_in: SmtpInConfig | None = s.get("smtp_in")
    email_out: EmailOutConfig | None = s.get("email_out")
    if smtp_in is not None:
        if smtp_in.fallback_group is not None:
            unknown_group("smtp_in.fallback_group", smtp_in.fallback_group)
        if (smtp_in.tls_cert is None) != (smtp_in.tls_key is None):
            problems.append("smtp_in.tls_key: tls_cert and tls_key must be set together")
    if email_out is not None:
        if email_out.tls and email_out.starttls:
            problems.append("email_out.starttls: choose tls (implicit, port 465) or starttls, not both")
        if smtp_in is not None and smtp_in.domains and email_out.reply_domain not in smtp_in.domains:
            problems.append(
                f"email_out.reply_domain: {email_out.reply_domain!r} is not in smtp_in.domains"
                f" {smtp_in.domains}: replies to support+token@{email_out.reply_domain} would be refused"
            )

    if (tickets := s.get("tickets")) is not None and tickets.default_priority > tickets.priorities:
        problems.append(
            f"tickets.default_priority: must be within 1..{tickets.priorities} (tickets.priorities),"
            f" got {tickets.default_priority}"
        )

    if (attachments := s.get("attachments")) is not None:
        if attachments.max_bytes_per_file > attachments.max_bytes_per_message:
            problems.append(
                "attachments.max_bytes_per_file: must not exceed attachments.max_bytes_per_message"
            )
        if attachments.store == "directory" and not attachments.directory.strip():
            problems.append("attachments.directory: required when attachments.store is 'directory'")

    if (outbox := s.get("outbox")) is not None and outbox.backoff_max_seconds < outbox.backoff_base_seconds:
        problems.append("outbox.backoff_max_seconds: must not be below outbox.backoff_base_seconds")
    return problems


# ---------------------------------------------------------------------------------------------
# ${VAR} expansion.

# "${SLACK_BOT_TOKEN}", "${SMTP_PASSWORD:-}", "${PORT:-2525}"; "$${X}" is a literal "${X}";
# a "${" that fits neither form is reported rather than passed through as text.
_VAR_RE = re.compile(
    r"\$\$\{"  # escaped
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<has_default>:-(?P<default>[^}]*))?\}"  # reference
    r"|\$\{"  # malformed
)


def _expand(node: Any, environ: Mapping[str, str], path: str, problems: list[str]) -> Any:
    """Expand every string scalar below ``node`` (single pass: values from the environment are
    not expanded again, so a secret containing "${" stays intact)."""
    if isinstance(node, dict):
        return {k: _expand(v, environ, _join(path, k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, environ, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$${":
            return "${"
        name = match["name"]
        if name is None:
            problems.append(f"{path}: malformed ${{...}} reference (use ${{VAR}} or ${{VAR:-default}})")
            return text
        value = environ.get(name)
        if match["has_default"] is not None:
            # As in the shell: ":-" also replaces a variable that is set but empty.
            return value if value else match["default"]
        if value is None:
            problems.append(
                f"{path}: environment variable {name} is not set"
                f" (write ${{{name}:-}} to allow it to be unset)"
            )
            return ""
        return value

    return _VAR_RE.sub(replace, node)


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


# ---------------------------------------------------------------------------------------------
# YAML reading.


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads 10:30 as text, not YAML 1.1's 630."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# "42", "-7", "1_000", "0x1F" — but not base-60 "10:30" (a time in this file).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError([f"{path}: YAML syntax error at {where}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: YAML syntax error: {exc}"]) from None


# ---------------------------------------------------------------------------------------------
# Validation error → "key.path: message".

_SECRET_KEYS = frozenset(
    name
    for model in _Model.__subclasses__()
    for name, field in model.model_fields.items()
    if field.annotation is SecretStr
)
_ALL_KEYS = sorted(
    {name for model in (_Model.__subclasses__() + [Settings]) for name in model.model_fields}
)


@functools.cache
def _section_adapter(name: str) -> TypeAdapter[Any]:
    return TypeAdapter(Settings.model_fields[name].annotation)


def _loc_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if part == "[key]":  # pydantic's marker for "the key itself is invalid"
            path += " (key)"
        else:
            path = _join(path, part)
    return path


def _problems_from(exc: ValidationError, prefix: str) -> list[str]:
    problems = []
    for error in exc.errors():
        path = _loc_path(prefix, error["loc"])
        kind, value = error["type"], error.get("input")
        if kind == "extra_forbidden":
            key = str(error["loc"][-1])
            close = difflib.get_close_matches(key, _ALL_KEYS, n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif kind == "missing":
            message = "required key is missing"
        elif kind in ("value_error", "assertion_error"):
            message = str(error["ctx"]["error"])
        else:
            message = error["msg"]
            # Never echo what was given for a secret, even a wrongly typed one.
            secret = bool(error["loc"]) and error["loc"][-1] in _SECRET_KEYS
            if isinstance(value, str | int | float | bool) and not secret:
                message += f", got {value!r}"
        # A relation error from Settings' own validator holds several lines, each with its path.
        problems.extend(message.splitlines() if not error["loc"] and not prefix else [f"{path}: {message}"])
    return problems


def _validate(data: dict[Any, Any]) -> Settings:
    """Validate section by section so that every field error and every relation error between
    the sections that are themselves valid is reported in one go."""
    problems: list[str] = []
    sections: dict[str, Any] = {}
    fields = Settings.model_fields
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            problems.append(f"{key}: unknown section" + (f" (did you mean {close[0]!r}?)" if close else ""))
    for name, field in fields.items():
        if data.get(name) is None:  # absent, or an empty "section:" line = the defaults
            sections[name] = field.get_default(call_default_factory=True)
            continue
        try:
            sections[name] = _section_adapter(name).validate_python(data[name])
        except ValidationError as exc:
            problems.extend(_problems_from(exc, name))
            sections[name] = None
    problems.extend(_relation_problems(sections))
    if problems:
        raise ConfigError(problems)
    try:
        return Settings.model_validate(sections)
    except ValidationError as exc:  # pragma: no cover - the checks above already ran
        raise ConfigError(_problems_from(exc, "")) from None


def load_settings(path: str | Path | None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, expand and validate ``path``; None = the embedded defaults. Raises ConfigError."""
    if path is None:
        return Settings()
    path = Path(path)
    data = _read_yaml(path)
    if data is None:  # an empty file (or only comments)
        return Settings()
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError([f"{path}: the top level must be a mapping of sections, got a {kind}"])
    problems: list[str] = []
    data = _expand(data, os.environ if environ is None else environ, "", problems)
    try:
        settings = _validate(data)
    except ConfigError as exc:
        # A key whose variable is missing is reported once, not again for the "" left in its place.
        reported = {p.split(": ", 1)[0] for p in problems}
        problems.extend(p for p in exc.problems if p.split(": ", 1)[0] not in reported)
    if problems:
        raise ConfigError(problems)
    return settings


def find_config_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """``--config`` if given, else ``$DESKBELL_CONFIG``, else ``./deskbell.yaml`` if it exists."""
    if explicit:
        return Path(explicit)
    environ = os.environ if environ is None else environ
    if environ.get(CONFIG_ENV_VAR):
        return Path(environ[CONFIG_ENV_VAR])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None
