"""Configuration: YAML + ${VAR} expansion, validated once with pydantic.

``load_settings`` reads one YAML file, expands ``${VAR}`` / ``${VAR:-default}`` from the
environment mapping it is given, and validates the result into a ``Settings`` object; an invalid
file raises ``ConfigError`` listing *every* problem with its key path (``smtp_in.listen: …``,
``handler_groups[1].name: …``). Key names are the contract of DESIGN §4.

The package is split by concern: ``schema`` says what a valid configuration is (the models and
their value checks), ``relations`` checks values against each other, and ``loader`` reads the
file, expands variables and reports the problems. This module only re-exports the public names;
the rest of the code imports from ``bot.config``, never from the submodules, and nothing may be
defined here.

Nothing in this package may do I/O beyond reading that one file and the environment passed in
(no network, no database, no probing of credentials: that is ``deskbell check``), nor keep
configuration in globals: the composition root loads ``Settings`` once and passes it down.
"""

from __future__ import annotations

from bot.config.loader import CONFIG_ENV_VAR, DEFAULT_CONFIG_FILE, ConfigError, find_config_path, load_settings
from bot.config.schema import (
    AttachmentsConfig,
    BusinessHours,
    CannedResponse,
    Category,
    DatabaseConfig,
    Digest,
    EmailOutConfig,
    HandlerGroup,
    ImapAccount,
    LogConfig,
    OutboxConfig,
    SchedulerConfig,
    Settings,
    SlaConfig,
    SlackConfig,
    SmtpInConfig,
    TicketsConfig,
    TicketType,
    TwilioConfig,
    WebConfig,
    WeightConfig,
    parse_listen,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
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
