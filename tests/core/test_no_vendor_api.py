"""DESIGN §1: core records intents and knows no vendor's API. Only the sender of a channel
knows Slack's method and argument names or Twilio's parameters."""

from __future__ import annotations

import re
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "bot" / "core"

# Slack Web API methods ("chat.postMessage") and the argument names only Slack uses.
SLACK = re.compile(
    r"\b(?:chat\.(?:postMessage|update|delete|postEphemeral|getPermalink|scheduleMessage)"
    r"|conversations\.(?:history|replies|list|open|info|join|members)"
    r"|views\.(?:open|publish|update|push)"
    r"|files\.(?:upload|uploadV2|getUploadURLExternal|completeUploadExternal|info)"
    r"|users\.(?:info|lookupByEmail|list)|auth\.test|reactions\.add"
    r"|thread_ts|unfurl_links|unfurl_media|include_all_metadata|response_url)\b")
# Twilio's REST and webhook parameters (PascalCase, unlike anything of ours).
TWILIO = re.compile(
    r"\b(?:MessageSid|SmsSid|SmsMessageSid|AccountSid|MessagingServiceSid|StatusCallback"
    r"|MediaUrl\d*|NumMedia|MediaContentType\d*|SmsStatus|MessageStatus|ErrorCode|OptOutType)\b"
    r"|[\"']Body[\"']")


def vendor_words(root: Path = CORE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in (*SLACK.finditer(line), *TWILIO.finditer(line)):
                found.append(f"{path.relative_to(root.parent)}:{number}: {match.group(0)}")
    return found


def test_core_names_no_slack_method_or_twilio_parameter():
    assert vendor_words() == []


def test_the_check_can_fail(tmp_path):
    core = tmp_path / "core"
    core.mkdir()
    (core / "bad.py").write_text('payload = {"method": "chat.postMessage", "thread_ts": ts}\n'
                                 'sms = {"Body": text, "MediaUrl0": url, "StatusCallback": hook}\n')
    found = " ".join(vendor_words(core))
    for word in ("chat.postMessage", "thread_ts", '"Body"', "MediaUrl0", "StatusCallback"):
        assert word in found
