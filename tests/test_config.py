"""Configuration loading: defaults, the example file, ${VAR} expansion and error reporting."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from bot.config import (
    BusinessHours,
    Category,
    ConfigError,
    Digest,
    HandlerGroup,
    ImapAccount,
    Settings,
    find_config_path,
    load_settings,
    parse_listen,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deskbell.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ or {})
    return info.value.problems


def paths_of(problems: list[str]) -> set[str]:
    return {p.split(": ", 1)[0] for p in problems}


# --- defaults and the example ---------------------------------------------------------------


def test_defaults_are_the_embedded_configuration() -> None:
    settings = Settings()
    assert settings.database.url == "sqlite+aiosqlite:///deskbell.db"
    assert settings.is_sqlite
    assert settings.smtp_in.listen == "127.0.0.1:2525"
    assert settings.smtp_in.domains == []
    assert settings.web.listen == "127.0.0.1:8080"
    assert [g.name for g in settings.handler_groups] == ["support"]
    assert settings.handler_groups[0].slack_channel == "#support"
    assert settings.fallback_group_name == "support"
    assert settings.group_by_name("support") is settings.handler_groups[0]
    assert settings.group_by_name("nope") is None
    assert load_settings(None) == settings


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "# only a comment\n"), environ={}) == Settings()


def test_example_file_validates_with_empty_environment() -> None:
    settings = load_settings(EXAMPLE, environ={})
    assert settings.smtp_in.domains == ["support.example.com"]
    assert settings.email_out.reply_domain in settings.smtp_in.domains
    assert settings.imap_accounts[0].handler_group == "support"
    assert settings.digests[0].at == "08:00"
    assert settings.slack.bot_token.get_secret_value() == ""


def test_example_file_takes_secrets_from_environment() -> None:
    settings = load_settings(EXAMPLE, environ={"SLACK_BOT_TOKEN": "xoxb-1", "IMAP_PASSWORD": "pw"})
    assert settings.slack.bot_token.get_secret_value() == "xoxb-1"
    assert settings.imap_accounts[0].password.get_secret_value() == "pw"


def test_example_file_sets_every_key_of_every_section() -> None:
    """An operator reading the example sees every key (extras included), none left out."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert set(data) == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        model = getattr(field.annotation, "model_fields", None)
        if model is not None:
            assert set(data[name]) == set(model), name
    items = {
        "imap_accounts": ImapAccount,
        "handler_groups": HandlerGroup,
        "categories": Category,
        "digests": Digest,
    }
    for name, model in items.items():
        assert set(data[name][0]) == set(model.model_fields), name
    assert set(data["business_hours"]["default"]) == set(BusinessHours.model_fields)


# --- ${VAR} expansion -----------------------------------------------------------------------


def test_variables_and_defaults_are_expanded(tmp_path: Path) -> None:
    path = write(tmp_path, """
        database: {url: "postgresql+asyncpg://desk:${PGPASS}@db/desk"}
        email_out:
          host: "${SMTP_HOST:-relay.local}"
          port: "${SMTP_PORT:-587}"
          password: "${SMTP_PASSWORD:-}"
        slack: {bot_token: "${EMPTY:-fallback}"}
        twilio: {help_text: "costs $${PRICE}"}
    """)
    settings = load_settings(path, environ={"PGPASS": "s3cr3t", "SMTP_HOST": "mx.example.com", "EMPTY": ""})
    assert settings.database.url == "postgresql+asyncpg://desk:s3cr3t@db/desk"
    assert not settings.is_sqlite
    assert settings.email_out.host == "mx.example.com"
    assert settings.email_out.port == 587  # the default, then coerced to int
    assert settings.email_out.password.get_secret_value() == ""
    assert settings.slack.bot_token.get_secret_value() == "fallback"  # ":-" also covers empty
    assert settings.twilio.help_text == "costs ${PRICE}"


def test_expanded_value_is_not_expanded_again(tmp_path: Path) -> None:
    path = write(tmp_path, 'slack: {signing_secret: "${SECRET}"}\n')
    settings = load_settings(path, environ={"SECRET": "a${B}c"})
    assert settings.slack.signing_secret.get_secret_value() == "a${B}c"


def test_unset_variable_names_key_path_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, """
        imap_accounts:
          - {name: a, host: imap.example.com, username: u, password: "${IMAP_PASSWORD}"}
        web: {listen: "${WEB_LISTEN}"}
    """)
    problems = problems_of(path)
    assert any(p.startswith("imap_accounts[0].password: ") and "IMAP_PASSWORD" in p for p in problems)
    # Reported once for the missing variable, not again for the empty value left in its place.
    assert [p for p in problems if p.startswith("web.listen: ")] == [
        next(p for p in problems if "WEB_LISTEN" in p)
    ]
    assert len(problems) == 2


def test_malformed_reference_is_reported(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, 'email_out: {username: "${oops-x}"}\n'))
    assert paths_of(problems) == {"email_out.username"}


# --- error reporting ------------------------------------------------------------------------


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, """
        smtp_in: {listen: localhost}
        tickets: {idle_time_based_on: sometimes}
        categories: [{name: Billing, handler_group: nosuch}]
        digests: [{name: d, at: "25:00", recipients: [boss@example.com]}]
    """)
    problems = problems_of(path)
    assert paths_of(problems) == {
        "smtp_in.listen",
        "tickets.idle_time_based_on",
        "categories[0].handler_group",
        "digests[0].at",
    }
    assert "smtp_in.listen: expected host:port, got 'localhost'" in problems
    assert any("'sometimes'" in p for p in problems)
    assert any("'nosuch'" in p for p in problems)


def test_config_error_lists_problems_one_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, "smtp_in: {listen: localhost}\nweb: {listen: nohost}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value).splitlines() == info.value.problems
    assert len(info.value.problems) == 2


def test_unknown_keys_are_rejected_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, """
        slak: {}
        handler_groups: [{name: support, slak_channel: "#support", slack_channel: "#s"}]
    """)
    problems = problems_of(path)
    assert paths_of(problems) == {"slak", "handler_groups[0].slak_channel"}
    assert any("did you mean 'slack'" in p for p in problems)
    assert any("did you mean 'slack_channel'" in p for p in problems)


def test_relations_between_sections(tmp_path: Path) -> None:
    path = write(tmp_path, """
        smtp_in: {domains: [mail.example.com], fallback_group: ghosts}
        email_out: {reply_domain: support.example.com}
        handler_groups:
          - {name: support, slack_channel: "#support", email_addresses: [a@mail.example.com]}
          - name: support
            slack_channel: "#other"
            email_addresses: [A@Mail.Example.com]
            business_hours: night
        digests: [{name: d, at: "08:00", recipients: [x@example.com], groups: [support, nobody]}]
        tickets: {priorities: 3, default_priority: 4}
    """)
    assert paths_of(problems_of(path)) == {
        "smtp_in.fallback_group",
        "email_out.reply_domain",
        "handler_groups[1].name",
        "handler_groups[1].email_addresses[0]",
        "handler_groups[1].business_hours",
        "digests[0].groups[1]",
        "tickets.default_priority",
    }


def test_field_values_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, """
        database: {url: "mysql://u:topsecret@h/db"}
        smtp_in: {listen: "127.0.0.1:70000"}
        tickets: {priorities: 12}
        business_hours: {default: {timezone: Mars/Olympus, days: {mon-fri: "17:00-09:00"}}}
        digests: [{name: d, at: "08:00", recipients: [not-an-address]}]
        handler_groups:
          - {name: support, slack_channel: support, members: ["@alice"], phone_numbers: ["555-1234"]}
    """)
    problems = problems_of(path)
    assert paths_of(problems) == {
        "database.url",
        "smtp_in.listen",
        "tickets.priorities",
        "business_hours.default.timezone",
        "business_hours.default.days",
        "digests[0].recipients[0]",
        "handler_groups[0].slack_channel",
        "handler_groups[0].members[0]",
        "handler_groups[0].phone_numbers[0]",
    }
    assert not any("topsecret" in p for p in problems)


def test_unquoted_time_is_not_read_as_a_number(tmp_path: Path) -> None:
    # YAML 1.1 would read 10:30 as 630 (base 60).
    path = write(tmp_path, "digests: [{name: d, at: 10:30, recipients: [boss@example.com]}]\n")
    assert load_settings(path, environ={}).digests[0].at == "10:30"


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "smtp_in:\n  listen: [unclosed\nweb: {}\n")
    (problem,) = problems_of(path)
    assert "YAML syntax error" in problem and "line " in problem and "column " in problem


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "web: {}\nweb: {listen: '0.0.0.0:80'}\n"))
    assert "duplicate key 'web'" in problem and "line 2" in problem


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "- a\n- b\n"))
    assert "mapping" in problem


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "absent.yaml")
    assert "absent.yaml" in problem


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="duplicate group name"):
        Settings(handler_groups=[{"name": "a", "slack_channel": "#a"}, {"name": "a", "slack_channel": "#b"}])


# --- secrets --------------------------------------------------------------------------------


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    path = write(tmp_path, """
        database: {url: "postgresql+asyncpg://desk:${PGPASS}@db/desk"}
        email_out: {password: "${SMTP_PASSWORD}"}
        slack: {bot_token: "${TOKEN}", signing_secret: "${TOKEN}", app_token: "${TOKEN}"}
        twilio: {auth_token: "${TOKEN}"}
        attachments: {link_secret: "${TOKEN}"}
        imap_accounts: [{name: a, host: h, username: u, password: "${TOKEN}"}]
    """)
    environ = {"PGPASS": "pg-hunter2", "SMTP_PASSWORD": "smtp-hunter2", "TOKEN": "xoxb-hunter2"}
    settings = load_settings(path, environ=environ)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)
    assert settings.database.redacted_url == "postgresql+asyncpg://desk:***@db/desk"


def test_wrongly_typed_secret_is_not_echoed(tmp_path: Path) -> None:
    # A number where a string is expected would be echoed back for an ordinary key.
    problems = problems_of(write(tmp_path, "email_out: {password: 98765432}\n"))
    assert paths_of(problems) == {"email_out.password"}
    assert "98765432" not in "\n".join(problems)


# --- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:2525", ("127.0.0.1", 2525)), ("[::1]:8080", ("::1", 8080)), ("0.0.0.0:0", ("0.0.0.0", 0))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["localhost", "host:", ":25", "host:99999", "a b:25"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


def test_business_hours_spans() -> None:
    days = {"mon-thu": "09:00-12:00,13:00-17:00", "fri": "09:00-24:00"}
    hours = Settings.model_validate({"business_hours": {"default": {"days": days}}}).business_hours["default"]
    week = hours.minutes_by_weekday()
    assert week[0] == [(540, 720), (780, 1020)]
    assert week[4] == [(540, 1440)]
    assert week[6] == []


def test_find_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config_path(None, {}) is None
    (tmp_path / "deskbell.yaml").write_text("")
    assert find_config_path(None, {}) == Path("deskbell.yaml")
    assert find_config_path(None, {"DESKBELL_CONFIG": "/etc/d.yaml"}) == Path("/etc/d.yaml")
    assert find_config_path("x.yaml", {"DESKBELL_CONFIG": "/etc/d.yaml"}) == Path("x.yaml")
