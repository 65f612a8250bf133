"""The command line contract (DESIGN §5): help everywhere, config problems all at once, exit codes."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.config import Settings
from tests import mailfixtures as fx
from tests.conftest import deliver, running, settings_dict
from tests.test_foundation import mail
from tests.test_process import cli

COMMANDS = [[], ["run"], ["smtp"], ["web"], ["worker"], ["check"], ["db"], ["db", "upgrade"],
            ["tickets"], ["tickets", "list"], ["tickets", "show"], ["outbox"], ["outbox", "list"],
            ["outbox", "retry"], ["reprocess"], ["tick"], ["imap"], ["digest"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "deskbell")
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_bad_config_lists_every_problem_and_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({
        "smtp_in": {"listen": "localhost", "domains": ["support.example.com"]},
        "tickets": {"priorities": 5, "default_priority": 9},
        "handler_groups": [{"name": "support", "slack_channel": "#s"}, {"name": "support", "slack_chanel": "#x"}],
        "slack": {"bot_token": "${NOT_SET_ANYWHERE}"},
    }))
    result = CliRunner().invoke(main, ["check", "--config", str(path)])
    assert result.exit_code == 2
    text = result.output
    for key in ("smtp_in.listen", "tickets.default_priority", "handler_groups[1]", "slack.bot_token"):
        assert key in text, text


async def test_check_probes_relay_and_slack(tmp_path, fake_slack, relay):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(settings_dict(tmp_path, slack_url=fake_slack.url, relay_port=relay.port)))
    ok = await asyncio.to_thread(cli, "check", "--config", str(path), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "auth.test ok" in ok.stdout and "relay 127.0.0.1" in ok.stdout
    assert "download links off (attachments.link_secret is empty)" in ok.stdout  # said, not a failure
    await relay.stop()
    failed = await asyncio.to_thread(cli, "check", "--config", str(path), cwd=tmp_path)
    assert failed.returncode == 1 and "FAIL email_out" in failed.stdout


async def test_tickets_show_json_follows_the_contract(tmp_path, app_settings, fake_slack, relay):
    settings = app_settings()
    path = tmp_path / "deskbell.yaml"
    path.write_text(yaml.safe_dump(settings_dict(tmp_path, slack_url=fake_slack.url, relay_port=relay.port)))
    async with running(settings) as app:
        await deliver(app, mail(body="New text here.\n\nOn Mon, 3 Mar 2025, Bob wrote:\n> old quoted text\n"))
        await deliver(app, fx.wrong_charset())
    shown = await asyncio.to_thread(cli, "tickets", "show", "1", "--json", "--config", str(path), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    t = json.loads(shown.stdout)
    for key in ("number subject status priority category type group assignee requester channel created_at "
                "updated_at resolved_at closed_at weight idle_minutes sla messages").split():
        assert key in t
    assert {"first_response_due", "resolution_due", "breached"} <= set(t["sla"])
    assert t["sla"]["first_response_due"] and t["sla"]["breached"] is False
    assert isinstance(t["weight"], int) and isinstance(t["idle_minutes"], int)
    assert t["requester"] == {"name": "Alice Example", "email": "alice@example.net", "phone": None}
    first = t["messages"][0]
    for key in "kind channel sender body quoted remote_id delivery_status created_at attachments".split():
        assert key in first
    assert first["body"] == "New text here." and "old quoted text" in first["quoted"]
    assert first["defects"] == []
    # What the parser had to repair is kept with the message, for staff to see.
    odd = json.loads((await asyncio.to_thread(cli, "tickets", "show", "2", "--json", "--config", str(path),
                                              cwd=tmp_path)).stdout)
    assert odd["messages"][0]["defects"] == ["text/plain: charset 'utf-8' failed; decoded as cp1252"]
    assert t["created_at"].endswith("Z")
    missing = await asyncio.to_thread(cli, "tickets", "show", "99", "--config", str(path), cwd=tmp_path)
    assert missing.returncode == 1 and "no ticket #99" in missing.stderr


async def test_tick_makes_one_pass_as_of_the_given_instant(tmp_path, fake_slack, relay):
    path = tmp_path / "deskbell.yaml"
    data = settings_dict(tmp_path, slack_url=fake_slack.url, relay_port=relay.port,
                         tickets={"idle_after_minutes": 60},
                         # Due an hour from now: the running app sends the one before, the pass
                         # two hours later this one.
                         digests=[{"name": "daily", "recipients": ["boss@example.com"],
                                   "at": (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%H:%M")}])
    path.write_text(yaml.safe_dump(data))
    async with running(Settings.model_validate(data)) as app:
        await deliver(app, mail())
        opened = app.clock.now()
    later = (opened.replace(microsecond=0) + timedelta(hours=2)).isoformat()
    done = await asyncio.to_thread(cli, "tick", "--now", later, "--config", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # The digest that fell due in between, one per group (support, sales), to its one recipient.
    assert f"as of {later}" in done.stdout and "idle 1" in done.stdout and "digests 2" in done.stdout
    again = await asyncio.to_thread(cli, "tick", "--now", later, "--config", str(path), cwd=tmp_path)
    assert "idle 0" in again.stdout and "digests 0" in again.stdout  # the same instant again: nothing twice
    shown = await asyncio.to_thread(cli, "tickets", "show", "1", "--json", "--config", str(path), cwd=tmp_path)
    assert [e["kind"] for e in json.loads(shown.stdout)["events"]].count("idle") == 1
    for bad in ("yesterday", "2026-12-01T09:00:00"):
        refused = await asyncio.to_thread(cli, "tick", "--now", bad, "--config", str(path), cwd=tmp_path)
        assert refused.returncode == 2 and "--now" in refused.stderr

