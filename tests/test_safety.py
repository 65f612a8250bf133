"""Loop safety and secrets (DESIGN §2.6, §2.8): per-sender ack limit, redacted logs."""

from __future__ import annotations

import asyncio
import logging

from bot.logsetup import RedactingFormatter, redact
from tests.conftest import running, send_mail
from tests.test_foundation import mail


async def test_acknowledgements_are_rate_limited_per_sender(app_settings, relay):
    async with running(app_settings(email_out={"ack_rate_limit_per_hour": 3})) as app:
        for n in range(5):
            await asyncio.to_thread(send_mail, app.listening.smtp[1], mail(subject=f"Flood {n}"))
        await asyncio.to_thread(send_mail, app.listening.smtp[1],
                                mail(subject="Other", from_addr="bob@example.org"), mail_from="bob@example.org")
        await relay.wait_for(4)
        await asyncio.sleep(0.3)
    assert sorted(a["To"] for a in relay.messages) == ["Alice Example <alice@example.net>"] * 3 + ["bob@example.org"]


def test_logs_never_show_tokens_or_reply_addresses():
    line = ("posting with xoxb-1234-5678-abcdefABCDEF and xapp-1-A0-99-zz; reply to "
            "support+k7f2m9qx4tab@support.example.com password=hunter2 token: s3cr3t")
    clean = redact(line)
    for secret in ("1234-5678-abcdef", "xapp-1-A0", "k7f2m9qx4tab", "hunter2", "s3cr3t"):
        assert secret not in clean
    assert "support+[token]@support.example.com" in clean
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", ("xoxb-9-9-abc",), None)
    assert "xoxb-9-9-abc" not in RedactingFormatter("%(message)s").format(record)
