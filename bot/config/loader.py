"""Loading a configuration: read one YAML file, expand ``${VAR}`` / ``${VAR:-default}``, validate
it into ``Settings``, and report *every* problem with its key path (``smtp_in.listen: …``,
``handler_groups[1].name: …``) in one ``ConfigError``. ``find_config_path`` decides which file.

This module must not do I/O beyond reading that one file and the environment passed in (no
network, no database, no probing of credentials: that is ``deskbell check``), must not keep
configuration in globals (the composition root loads ``Settings`` once and passes it down), and
must not decide what is valid: that is ``bot.config.schema`` and ``bot.config.relations``.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, TypeAdapter, ValidationError

from bot.config.relations import relation_problems
# _Model: the base of every section model, for the lists of known keys and of secret keys below.
from bot.config.schema import Settings, _Model

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
    "ConfigError",
    "find_config_path",
    "load_settings",
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
    problems.extend(relation_problems(sections))
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
