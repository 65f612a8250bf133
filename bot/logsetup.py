"""Logging set-up: key=value lines on stderr, secrets and reply tokens redacted.

Must not decide what to log (modules do, with ``logging.getLogger(__name__)``); it only
formats and scrubs.
"""

from __future__ import annotations

import logging
import re
import sys

# xoxb-123-456-abc (Slack bot), xapp-1-A… (app-level), xoxp-… → "xox?-[redacted]"
SLACK_TOKEN_RE = re.compile(r"\b(xox[abpors]|xapp)-[A-Za-z0-9-]+")
# support+k7f2m9qx4t@support.example.com → support+[token]@support.example.com
REPLY_TOKEN_RE = re.compile(r"(?<=\+)[a-z0-9]{8,32}(?=@)", re.I)
# password=hunter2 / "auth_token": "abc" → password=[redacted]
SECRET_FIELD_RE = re.compile(r"(?i)\b(password|passwd|secret|auth_token|token|signing_secret)(\s*[=:]\s*\"?)[^\s\",]+")


def redact(text: str) -> str:
    text = SLACK_TOKEN_RE.sub(lambda m: m.group(1) + "-[redacted]", text)
    text = REPLY_TOKEN_RE.sub("[token]", text)
    return SECRET_FIELD_RE.sub(lambda m: m.group(1) + m.group(2) + "[redacted]", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", *, extra_secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = RedactingFormatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    if extra_secrets:
        secrets = [s for s in extra_secrets if len(s) >= 6]
        base = formatter.format

        def format_scrubbed(record: logging.LogRecord) -> str:
            text = base(record)
            for secret in secrets:
                text = text.replace(secret, "[redacted]")
            return text

        formatter.format = format_scrubbed  # type: ignore[method-assign]
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aioimaplib logs every byte it receives at DEBUG (customers' mail), and every untagged
    # answer it does not use (new-mail notices during a fetch) at INFO.
    for noisy in ("aiosqlite", "sqlalchemy.engine", "uvicorn.access", "slack_sdk", "aioimaplib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiosmtpd warns of every unknown command a client sends: a stranger's to write into our
    # log at will. The door logs what matters (refusals, failures) itself.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
