"""Adapter: ``deskbell check`` probes — can we reach what the config names?

Each probe returns a ``Probe`` (name, ok, detail) and never raises; the CLI prints them all.
Must not change anything it probes (no mail sent, no message posted, no migration run).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path
from dataclasses import dataclass

import aiohttp
import aiosmtplib

from bot.config import ImapAccount, Settings
from bot.core import mailbox_ledger, scheduler
from bot.inbound import imap
from bot.slack.sender import make_client
from bot.store import migrate
from bot.store.db import Database


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str


async def probe_database(settings: Settings) -> Probe:
    db = Database(settings.database.url, **settings.database.engine_options)
    try:
        await asyncio.wait_for(db.ping(), 10)
        current, head = await migrate.current_revision(db), migrate.head_revision()
        if current != head:
            hint = "run `deskbell db upgrade`" if not db.is_sqlite else "`deskbell run` migrates it"
            return Probe("database", db.is_sqlite,
                         f"reachable; schema at {current or 'nothing'}, code needs {head} ({hint})")
        return Probe("database", True, f"reachable, schema {current}; {await _scheduler_state(db, settings)}")
    except Exception as exc:
        return Probe("database", False, f"{settings.database.redacted_url}: {type(exc).__name__}: {exc}")
    finally:
        await db.dispose()


async def _scheduler_state(db: Database, settings: Settings) -> str:
    """When the scheduler last made a pass: a worker that stopped making them shows here."""
    runs = await scheduler.last_runs(db)
    if not runs:
        return f"no scheduler pass yet (a worker makes one every {settings.scheduler.interval_seconds:g} s)"
    return f"last scheduler pass {max(runs.values()).isoformat()}"


async def probe_smtp_relay(settings: Settings) -> Probe:
    out = settings.email_out
    where = f"{out.host}:{out.port}"
    client = aiosmtplib.SMTP(hostname=out.host, port=out.port, start_tls=out.starttls or None,
                             timeout=10)
    try:
        await client.connect()
        if out.username:
            await client.login(out.username, out.password.get_secret_value())
        await client.quit()
        return Probe("email_out", True, f"relay {where} answers" + (" (login ok)" if out.username else ""))
    except Exception as exc:
        return Probe("email_out", False, f"relay {where}: {type(exc).__name__}: {exc}")


async def probe_slack(settings: Settings) -> Probe:
    token = settings.slack.bot_token.get_secret_value()
    if not token:
        return Probe("slack", True, "off (no slack.bot_token): cards will wait in the outbox")
    async with aiohttp.ClientSession() as session:
        client = make_client(token=token, base_url=settings.slack.api_url, session=session, timeout=10)
        try:
            response = await client.auth_test()
            return Probe("slack", True, f"auth.test ok as {response.get('user')} in {response.get('team')}")
        except Exception as exc:
            return Probe("slack", False, f"auth.test failed: {type(exc).__name__}: {exc}")


async def probe_twilio(settings: Settings) -> Probe:
    """Read our Twilio account with the configured credentials (nothing is sent)."""
    t = settings.twilio
    token = t.auth_token.get_secret_value()
    if not (t.account_sid and token):
        return Probe("twilio", True, "off (no twilio.account_sid / auth_token): no texts in or out")
    url = f"{t.api_url}/2010-04-01/Accounts/{t.account_sid}.json"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(url, headers={"Authorization": "Basic " + base64.b64encode(
                    f"{t.account_sid}:{token}".encode()).decode()}) as response:
                if response.status == 401:
                    return Probe("twilio", False, f"{t.api_url}: twilio.account_sid / auth_token refused (401)")
                response.raise_for_status()
                account = await response.json()
        if not (t.webhook_url or settings.web.public_url.startswith("https://")):
            return Probe("twilio", False, "credentials ok, but Twilio cannot reach us: set twilio.webhook_url "
                                          "(or an https web.public_url) to the URL Twilio posts texts to")
        return Probe("twilio", True, f"account {account.get('friendly_name', t.account_sid)} "
                                     f"({account.get('status', '?')}); texts arrive at the webhook URL")
    except Exception as exc:
        return Probe("twilio", False, f"{t.api_url}: {type(exc).__name__}: {exc}")


async def probe_imap(account: ImapAccount, progress: mailbox_ledger.MailboxState | None,
                     *, ssl_context: ssl.SSLContext | None = None) -> Probe:
    """Log in and look at the mailbox read-only, and say how far the door has read it."""
    name = f"imap {account.name}"
    try:
        detail = await imap.probe(account, ssl_context=ssl_context)
        ok = True
    except Exception as exc:
        detail, ok = f"{account.username}@{account.host}:{account.port}: {exc}", False
    if progress is not None and progress.uidvalidity:
        detail += f"; read up to UID {progress.last_uid}"
        if progress.waiting:
            detail += f", {progress.waiting} message(s) still to take"
        if progress.left_behind:
            ok = False
            first = progress.left_behind[0]
            detail += (f"; {len(progress.left_behind)} message(s) left in the mailbox, "
                       f"e.g. UID {first.uid}: {first.reason}")
    return Probe(name, ok, detail)


async def _mailbox_progress(settings: Settings) -> dict[tuple[str, str], mailbox_ledger.MailboxState]:
    if not settings.imap_accounts:
        return {}
    db = Database(settings.database.url, **settings.database.engine_options)
    try:
        return {(x.account, x.mailbox): x for x in await mailbox_ledger.states(db)}
    except Exception:  # no schema yet, or no database: the database probe says so
        return {}
    finally:
        await db.dispose()


async def probe_attachments(settings: Settings) -> Probe:
    """Where files are kept, and whether download links can be made (never a failure: without
    a link secret, files that cannot be uploaded to Slack are only listed)."""
    a = settings.attachments
    where = f"directory {a.directory}" if a.store == "directory" else "the database"
    if a.store == "directory":
        try:
            Path(a.directory).mkdir(parents=True, exist_ok=True)
            probe = Path(a.directory) / ".deskbell-check"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return Probe("attachments", False, f"cannot write to {a.directory}: {exc.strerror or exc}")
    if not a.link_secret.get_secret_value():
        return Probe("attachments", True, f"kept in {where}; download links off (attachments.link_secret is "
                                          "empty): large files, programs and MMS replies cannot be linked")
    return Probe("attachments", True, f"kept in {where}; download links on ({a.link_ttl_hours} h)")


async def run_probes(settings: Settings, *, imap_ssl_context: ssl.SSLContext | None = None) -> list[Probe]:
    progress = await _mailbox_progress(settings)
    return list(await asyncio.gather(
        probe_database(settings), probe_smtp_relay(settings), probe_slack(settings), probe_twilio(settings),
        probe_attachments(settings),
        *(probe_imap(a, progress.get((a.name, a.mailbox)), ssl_context=imap_ssl_context)
          for a in settings.imap_accounts)))
