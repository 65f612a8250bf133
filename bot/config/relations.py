"""Checks that relate several configuration values: a category or digest naming an unknown
handler group, one address listed by two groups, ``tls`` and ``starttls`` both on, a default
priority above the number of priorities, and the like.

``relation_problems`` takes each section as validated, or None when that section had errors of
its own, so that these checks run (and are reported) next to the field errors. It returns
``key.path: message`` lines. It must not raise, read anything, or check a single value on its
own: single values are checked where they are declared, in ``bot.config.schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: schema imports this module
    from bot.config.schema import BusinessHours, EmailOutConfig, HandlerGroup, SmtpInConfig

__all__ = ["relation_problems"]


def relation_problems(s: Mapping[str, Any]) -> list[str]:
    """One ``key.path: message`` per broken relation between the sections in ``s``."""
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
