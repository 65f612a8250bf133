"""DESIGN §1: adapters → core → store; core imports no adapter, SDK or socket; only app.py wires."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"
ADAPTERS = {"inbound", "outbound", "slack", "outbox", "cli", "web", "checks"}
SDKS = {"aiosmtpd", "aiosmtplib", "aiohttp", "aioimaplib", "slack_sdk", "slack_bolt", "twilio",
        "starlette", "uvicorn", "socket", "ssl", "httpx", "requests", "smtplib", "imaplib",
        "asyncpg", "aiosqlite"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # "from bot.store import models" imports bot.store.models just the same.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(root: Path = BOT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        module = ".".join(rel.parts)
        layer = _layer(module)
        for imported in _imports(path):
            top = imported.split(".")[0]
            target = _layer(imported) if top == "bot" else None
            if top == "bot" and target == "app" and module not in ("bot.cli",):
                found.append(f"{module} imports the composition root {imported}")
            if layer == "store" and top == "bot" and target not in ("store",):
                found.append(f"{module} (store) imports {imported}")
            if layer == "core":
                if top == "bot" and target in ADAPTERS | {"app"}:
                    found.append(f"{module} (core) imports adapter {imported}")
                if top in SDKS:
                    found.append(f"{module} (core) imports SDK/socket {imported}")
            if layer in ADAPTERS and top == "bot" and target in ADAPTERS and target != layer:
                # One adapter may not reach into another; app.py wires them together.
                if not (layer == "cli" and target == "checks") and not (layer == "checks" and target in ("slack", "inbound")):
                    found.append(f"{module} ({layer}) imports another adapter {imported}")
            # Adapters may hold the Database handle they are given, never query tables themselves.
            if layer in ADAPTERS and imported.startswith("bot.store.models"):
                found.append(f"{module} ({layer}) imports the store's tables {imported}")
    return found


def test_import_direction_follows_design():
    assert violations() == []


def test_checker_catches_a_breach(tmp_path):
    """The rule above must be able to fail: plant a core module that imports an adapter."""
    fake = tmp_path / "bot"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("from bot.slack.sender import SlackSender\nimport aiohttp\n")
    (fake / "store").mkdir()
    (fake / "store" / "bad.py").write_text("from bot.core import intake\n")
    (fake / "slack").mkdir()
    (fake / "slack" / "bad.py").write_text("from bot.store.models import Ticket\nfrom bot.inbound import smtp\n")
    (fake / "slack" / "sly.py").write_text("from bot.store import models\n")
    found = violations(fake)
    assert any("core) imports adapter bot.slack.sender" in v for v in found)
    assert any("SDK/socket aiohttp" in v for v in found)
    assert any("(store) imports bot.core" in v for v in found)
    assert any("(slack) imports the store's tables" in v for v in found)
    assert any(v.startswith("bot.slack.sly (slack) imports the store's tables") for v in found)
    assert any("(slack) imports another adapter bot.inbound" in v for v in found)
