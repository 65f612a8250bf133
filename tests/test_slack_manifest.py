"""The Slack app manifest we ship asks for what the code uses: every Web API method Deskbell
calls has its scope, every event it listens to is subscribed, and the slash command and
request URLs are the ones the web app serves."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "deploy" / "slack-app-manifest.yaml"

# Which bot scope a Web API method needs (https://api.slack.com/methods). A method missing here
# fails the test: add it, and its scope to the manifest.
SCOPES = {
    "chat.postMessage": {"chat:write"}, "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.getPermalink": set(),  # needs no scope of its own
    "files.uploadV2": {"files:write"},  # getUploadURLExternal + completeUploadExternal
    "url_private": {"files:read"},
    "conversations.history": {"channels:history", "groups:history"},
    "conversations.replies": {"channels:history", "groups:history"},
    "conversations.list": {"channels:read", "groups:read"},
    "users.info": {"users:read"}, "users.getPresence": {"users:read"},
    "views.open": set(), "views.update": set(), "views.publish": set(), "auth.test": set(),
}


def methods_called() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        text = path.read_text()
        found |= set(re.findall(r"\"((?:chat|conversations|users|views|files|auth)\.[a-zA-Z]+)\"", text))
        found |= {f"{a}.{b[0]}{''.join(w.title() for w in b[1:])}"
                  for a, *b in (m.split("_") for m in re.findall(
                      r"client\.((?:chat|conversations|users|views|files|auth)_[a-zA-Z0-9_]+)\(", text))}
        if "url_private" in text:  # files people shared, fetched with the bot token
            found.add("url_private")
    return found


def test_manifest_grants_every_scope_the_code_needs():
    manifest = yaml.safe_load(MANIFEST.read_text())
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    called = methods_called()
    assert {"chat.postMessage", "conversations.history", "users.info"} <= called  # the scan works
    unknown = called - SCOPES.keys()
    assert not unknown, f"add the scopes of {sorted(unknown)} to SCOPES and to the manifest"
    for method in sorted(called):
        assert SCOPES[method] <= granted, f"{method} needs {SCOPES[method] - granted}"
    assert "commands" in granted and "im:write" in granted


def test_manifest_subscribes_to_what_the_app_listens_for_at_the_urls_it_serves():
    manifest = yaml.safe_load(MANIFEST.read_text())
    settings = manifest["settings"]
    assert {"message.channels", "message.groups", "app_home_opened"} <= set(
        settings["event_subscriptions"]["bot_events"])
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == Settings().slack.command
    urls = {settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"],
            command["url"]}
    assert all(url.endswith("/slack/events") for url in urls)
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
