"""The composition root: the only module that wires config, clock, database, doors and senders.

Everything made here (engine, clients, clock) is passed down; nothing below keeps globals.
``Deskbell.serve(roles)`` runs any mix of the SMTP door, the web app and the worker (intake of
the spool and the outbox dispatcher) on one event loop and stops cleanly on SIGTERM. No domain
logic here.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp
import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import __version__
from bot.clock import Clock
from bot.config import Settings, parse_listen
from bot.config.schema import Digest
from bot.core import attachment_files, availability, customer_page, deliveries, digest_delivery, groups, reports, scheduler, spool
from bot.core.desk import Desk
from bot.core.digest_schedule import Period
from bot.core.views import snapshot
from bot.fdlimit import raise_open_file_limit
from bot.inbound.imap import AccountPoller
from bot.inbound.mms import MediaFetcher
from bot.inbound.pipeline import IntakeWorker, SpoolWriter
from bot.inbound.sms import TwilioWebhooks
from bot.inbound.smtp import SmtpHandler, SmtpServer
from bot.outbound.compose import EmailComposer
from bot.outbound.email import EmailSender
from bot.outbound.sms import SmsSender
from bot.outbox.dispatcher import Dispatcher, Sender
from bot.slack.listeners import AckFirst, build_bolt_app
from bot.slack.presence import PresencePoller
from bot.slack.sender import Files, SlackSender, make_client
from bot.store import migrate, notify
from bot.store.blobstore import BlobStore
from bot.store.db import Database
from bot.store.leader import Leadership
from bot.store.notify import Listener
from bot.web import build_web_app
from bot.webpages import WebPages
from bot.webguard import header_deadline_protocol

log = logging.getLogger(__name__)

ROLES = ("smtp", "imap", "web", "worker")


@dataclass
class Listening:
    """Where a running instance can be reached (ports resolved when 0 was asked for)."""

    smtp: tuple[str, int] | None = None
    web: tuple[str, int] | None = None


class Deskbell:
    def __init__(self, settings: Settings, *, clock: Clock, environ: Mapping[str, str] | None = None) -> None:
        self.settings, self.clock = settings, clock
        self.db = Database(settings.database.url, **settings.database.engine_options)
        self.desk = Desk(db=self.db, settings=settings, clock=clock,
                         files=BlobStore(settings.attachments.store, settings.attachments.directory))
        self.listening = Listening()
        self.pages = WebPages()
        self.ack_first = AckFirst()
        self._stop = asyncio.Event()
        self.dispatcher: Dispatcher | None = None
        self.intake: IntakeWorker | None = None
        self._page_door: SpoolWriter | None = None
        self.smtp_server: SmtpServer | None = None
        self.imap_pollers: list[tuple[AccountPoller, Leadership]] = []
        self.imap_ssl_context: ssl.SSLContext | None = None  # None: the system's trusted CAs

    # ----- set-up -------------------------------------------------------------------------

    async def prepare(self, *, auto_migrate: bool | None = None) -> None:
        """Bring the schema up to date (SQLite: always) and mirror the handler groups."""
        if auto_migrate is None:
            auto_migrate = self.db.is_sqlite
        if auto_migrate:
            await migrate.upgrade(self.db)
        else:
            current, head = await migrate.current_revision(self.db), migrate.head_revision()
            if current != head:
                raise RuntimeError(f"database schema is at {current or 'nothing'}, the code needs "
                                   f"{head}: run `deskbell db upgrade` first")
        await groups.sync_groups(self.db, self.settings)

    def slack_client(self, session: aiohttp.ClientSession) -> AsyncWebClient | None:
        token = self.settings.slack.bot_token.get_secret_value()
        if not token:
            return None
        return make_client(token=token, base_url=self.settings.slack.api_url, session=session)

    def composer(self) -> EmailComposer:
        s = self.settings
        return EmailComposer(from_address=s.email_out.from_address, from_name=s.email_out.from_name,
                             loop_marker=s.email_out.reply_domain,
                             max_message_bytes=s.email_out.max_message_bytes)

    def senders(self, slack: AsyncWebClient | None) -> dict[str, Sender]:
        s = self.settings
        senders: dict[str, Sender] = {"email": EmailSender(
            composer=self.composer(), host=s.email_out.host, port=s.email_out.port, starttls=s.email_out.starttls,
            username=s.email_out.username, password=s.email_out.password.get_secret_value(),
            timeout=s.email_out.timeout_seconds, max_message_bytes=s.email_out.max_message_bytes,
            read=lambda sha256: attachment_files.read_bytes(self.desk, sha256))}
        if slack is not None:
            senders["slack"] = SlackSender(slack, files=Files(
                read=lambda sha256: attachment_files.read_bytes(self.desk, sha256),
                link=lambda attachment_id: attachment_files.link_for(s, attachment_id, now=self.clock.now()),
                max_upload_bytes=s.slack.max_upload_bytes, upload=s.slack.upload_files))
        if s.twilio.account_sid and s.twilio.auth_token.get_secret_value():
            mms_ttl = timedelta(minutes=s.attachments.mms_link_ttl_minutes)
            senders["sms"] = SmsSender(account_sid=s.twilio.account_sid,
                                       auth_token=s.twilio.auth_token.get_secret_value(),
                                       api_url=s.twilio.api_url, status_url=self.twilio_status_url,
                                       media_link=lambda attachment_id: attachment_files.link_for(
                                           s, attachment_id, now=self.clock.now(), ttl=mms_ttl))
        return senders

    @property
    def twilio_sms_url(self) -> str:
        """The URL Twilio signs incoming texts for (it must be byte-for-byte what it posts to)."""
        return self.settings.twilio.webhook_url or self.settings.web.public_url.rstrip("/") + "/twilio/sms"

    @property
    def twilio_status_url(self) -> str:
        return self.settings.web.public_url.rstrip("/") + "/twilio/status"

    def _media_fetcher(self) -> MediaFetcher | None:
        t = self.settings.twilio
        if not (t.account_sid and t.auth_token.get_secret_value()):
            return None
        return MediaFetcher(db=self.db, clock=self.clock, account_sid=t.account_sid,
                            auth_token=t.auth_token.get_secret_value(),
                            max_bytes=self.settings.attachments.max_bytes_per_file, files=self.desk.files)

    def _twilio_webhooks(self) -> TwilioWebhooks | None:
        token = self.settings.twilio.auth_token.get_secret_value()
        if not token:
            return None
        return TwilioWebhooks(auth_token=token, account_sid=self.settings.twilio.account_sid,
                              sms_url=self.twilio_sms_url, status_url=self.twilio_status_url,
                              spool=self._spool_writer().write, db=self.db, clock=self.clock)

    def make_dispatcher(self, slack: AsyncWebClient | None) -> Dispatcher:
        s = self.settings
        dispatcher = Dispatcher(
            db=self.db, clock=self.clock, senders=self.senders(slack),
            policy=deliveries.RetryPolicy(max_attempts=s.outbox.max_attempts,
                                          base_seconds=s.outbox.backoff_base_seconds,
                                          max_seconds=s.outbox.backoff_max_seconds),
            concurrency=s.outbox.concurrency, lease_seconds=s.outbox.lease_seconds,
            notice_channel=s.slack.fallback_channel)
        self.db.on_outbox_commit(dispatcher.wake)
        return dispatcher

    def make_intake(self) -> IntakeWorker:
        return IntakeWorker(desk=self.desk, our_domain=self.settings.email_out.reply_domain)

    async def reprocess(self, quarantine_id: int | None = None) -> list[tuple[int, str]]:
        """Put held mail back in the spool and run it through the intake pipeline again;
        returns (quarantine id, what happened) for each."""
        requeued = await spool.requeue_held(self.db, quarantine_id=quarantine_id)
        if not requeued:
            return []
        await self.make_intake().drain()
        return [(q.id, q.outcome) for q in await reports.quarantine_outcomes(self.db, requeued)]

    # ----- running ------------------------------------------------------------------------

    async def serve(self, roles: Iterable[str] = ROLES, *, out: TextIO = sys.stdout,
                    on_ready: Callable[[Listening], None] | None = None) -> None:
        """Run the given roles until SIGTERM/SIGINT or ``stop()``; then drain and return."""
        roles = set(roles)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        raise_open_file_limit()
        await self.prepare()
        http = aiohttp.ClientSession()
        slack = self.slack_client(http)
        tasks: list[asyncio.Task[Any]] = []
        web_server: uvicorn.Server | None = None
        socket_mode = None
        listener: Listener | None = None
        media_fetcher: MediaFetcher | None = None
        leaderships: list[Leadership] = []
        try:
            if "worker" in roles:
                self.intake = self.make_intake()
                tasks.append(asyncio.create_task(self.intake.run(), name="intake"))
                self.dispatcher = self.make_dispatcher(slack)
                self.dispatcher.give_way = self.intake.busy
                tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
                media_fetcher = self._media_fetcher()
                if media_fetcher is not None:
                    tasks.append(asyncio.create_task(media_fetcher.run(), name="mms"))
                if slack is not None and availability.members_to_watch(self.settings):
                    # Slack's presence steers assignment (core.availability): one worker of many asks.
                    watcher = Leadership(self.settings.database.url, "presence")
                    leaderships.append(watcher)
                    tasks.append(asyncio.create_task(watcher.run(PresencePoller(self.desk, slack).run),
                                                     name="presence"))
                # One scheduler of all the worker processes makes each pass (PostgreSQL).
                scheduler = Leadership(self.settings.database.url, "scheduler")
                leaderships.append(scheduler)
                tasks.append(asyncio.create_task(scheduler.run(self._schedule), name="scheduler"))
                if not self.db.is_sqlite:  # other processes' doors and actions wake us at once
                    listener = Listener(self.settings.database.url, {
                        notify.SPOOL: self.intake.wake, notify.OUTBOX: self.dispatcher.wake})
                    tasks.append(asyncio.create_task(listener.run(), name="listen"))
            bolt = self._bolt_app(slack) if "web" in roles else None
            if bolt is not None and self.settings.slack.app_token.get_secret_value():
                from slack_bolt.adapter.socket_mode.async_handler import (
                    AsyncSocketModeHandler,
                )

                socket_mode = AsyncSocketModeHandler(bolt, self.settings.slack.app_token.get_secret_value(),
                                                     web_client=slack)
                await socket_mode.connect_async()
            if "web" in roles:
                web_server, sock = self._web_server(bolt)
                self.listening.web = sock.getsockname()[:2]
                tasks.append(asyncio.create_task(web_server.serve(sockets=[sock]), name="web"))
            if "smtp" in roles:
                self.smtp_server = self._smtp_server()
                self.listening.smtp = await self.smtp_server.start()
            if "imap" in roles:
                tasks += self._imap_pollers()
            # Everything built at start-up lives for the whole run: keep it out of the cyclic
            # GC's full passes, which otherwise stall the loop (and Slack acks) for tens of ms.
            gc.collect()
            gc.freeze()
            self._print_summary(roles, out)
            if on_ready is not None:
                on_ready(self.listening)
            await self._stop.wait()
        finally:
            log.info("stopping roles=%s", ",".join(sorted(roles)))
            # DESIGN §5: out within 10 s of SIGTERM — 4 s for mail in flight, 2 for acknowledged
            # Slack actions, 3 for the rest.
            if self.smtp_server is not None:
                await self.smtp_server.stop(timeout=4)
            for poller, lock in self.imap_pollers:
                lock.stop()
                poller.stop()
            if socket_mode is not None:
                await socket_mode.close_async()
            if web_server is not None:
                web_server.should_exit = True
            await self.ack_first.drain(timeout=2)
            if self.intake is not None:
                self.intake.stop()
            if self.dispatcher is not None:
                self.dispatcher.stop()
            if media_fetcher is not None:
                media_fetcher.stop()
            if listener is not None:
                listener.stop()
            for leadership in leaderships:
                leadership.stop()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=3)
                for task in pending:
                    task.cancel()
            if self.dispatcher is not None:
                await self.dispatcher.close()
            await http.close()
            await self.db.dispose()

    def stop(self) -> None:
        self._stop.set()

    async def tick(self, now: datetime | None = None) -> dict[str, int]:
        """One scheduler pass as of ``now`` (default: the clock's now)."""
        return await scheduler.run_pass(self.desk, now=now)

    async def digest_preview(self, digest: Digest, group: str, period: Period, *, text: bool = False) -> str:
        """The digest as it would be mailed now (HTML, or its plain text), without sending it."""
        report = await digest_delivery.report_for(self.desk, digest, group, period, now=self.clock.now())
        plain, html = self.composer().render(digest_delivery.TEMPLATE, {"report": snapshot(report)})
        return plain if text else html

    async def digest_send(self, digest: Digest, group: str, period: Period, *,
                          force: bool = False) -> digest_delivery.Outcome:
        return await digest_delivery.send(self.desk, digest, group, period, now=self.clock.now(), force=force)

    async def _schedule(self) -> None:
        """A scheduler pass every ``scheduler.interval_seconds`` while this process leads."""
        interval = self.settings.scheduler.interval_seconds
        while True:
            try:
                await self.tick()
            except Exception:  # process boundary: the database may be back by the next pass
                log.exception("scheduler pass failed; the next one is in %.0f s", interval)
            await asyncio.sleep(interval)

    def _spool_writer(self) -> SpoolWriter:
        writer = SpoolWriter(self.db)
        if self.intake is not None:  # the same process: no need to wait for its next poll
            writer.on_commit(self.intake.wake)
        return writer

    def _imap_pollers(self) -> list[asyncio.Task[Any]]:
        """One poller per account, each run only while this process holds the account's lock
        (PostgreSQL: one process of many reads an account; SQLite: always this one)."""
        writer = self._spool_writer()
        tasks = []
        for account in self.settings.imap_accounts:
            poller = AccountPoller(account, db=self.db, clock=self.clock, spool=writer.write,
                                   ssl_context=self.imap_ssl_context)
            lock = Leadership(self.settings.database.url, f"imap:{account.name}")
            self.imap_pollers.append((poller, lock))
            tasks.append(asyncio.create_task(lock.run(poller.run), name=f"imap:{account.name}"))
        return tasks

    def _smtp_server(self) -> SmtpServer:
        s = self.settings.smtp_in
        host, port = parse_listen(s.listen)
        writer = self._spool_writer()
        handler = SmtpHandler(spool=writer.write, clock=self.clock, domains=s.domains,
                              max_recipients=s.max_recipients)
        tls = None
        if s.tls_cert and s.tls_key:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(s.tls_cert, s.tls_key)
        return SmtpServer(handler, host=host, port=port, hostname=self.settings.email_out.reply_domain,
                          max_message_bytes=s.max_message_bytes, tls_context=tls,
                          max_sessions=s.max_sessions, max_sessions_per_client=s.max_sessions_per_client,
                          max_data_sessions=s.max_data_sessions, timeout=s.session_timeout_seconds)

    def _bolt_app(self, slack: AsyncWebClient | None) -> AsyncApp | None:
        """Slack interactivity, when there is a token and a way to verify Slack's requests."""
        secret = self.settings.slack.signing_secret.get_secret_value()
        if slack is None or not (secret or self.settings.slack.app_token.get_secret_value()):
            return None
        return build_bolt_app(self.desk, client=slack, signing_secret=secret, gate=self.ack_first)

    def _web_server(self, bolt: AsyncApp | None) -> tuple[uvicorn.Server, socket.socket]:
        w = self.settings.web
        host, port = parse_listen(w.listen)
        secret = self.settings.slack.signing_secret.get_secret_value()
        slack_handler = None
        if bolt is not None and secret:
            slack_handler = self.ack_first.wrap(AsyncSlackRequestHandler(bolt).handle)
        twilio = self._twilio_webhooks()
        self._page_door = self._spool_writer()  # messages customers write on their pages
        app = build_web_app(ping=self.db.ping, metrics=self.metrics_text, slack_handler=slack_handler,
                            # Slack stamps requests with real time: verify against real time
                            # even when DESKBELL_NOW shifts our clock (as bolt does).
                            slack_signing_secret=secret,
                            max_body_bytes=w.max_body_bytes,
                            metrics_token=w.metrics_token.get_secret_value(),
                            twilio_sms=twilio.sms if twilio else None,
                            twilio_status=twilio.status if twilio else None,
                            files=lambda *link: attachment_files.download(self.desk, *link),
                            customer_page=self._customer_page, page_action=self._page_action,
                            page_requests_per_minute=self.settings.customer_page.requests_per_minute,
                            page_logo_origin=_origin(self.settings.customer_page.logo_url))
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False,
                                limit_concurrency=w.max_connections,
                                timeout_keep_alive=w.keepalive_timeout_seconds,
                                http=header_deadline_protocol(w.header_timeout_seconds))
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours stop it
        # IPPROTO_TCP named explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets
        # whose proto says TCP, and with Nagle on, a response's body waits up to 40 ms for
        # the client's delayed ACK of its headers.
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                             socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
        return server, sock

    async def _customer_page(self, token: str, said: str = "", rate: int | None = None) -> str | None:
        view = await customer_page.page(self.desk, token, rate=rate)
        return None if view is None else self.pages.render("ticket", page=view,
                                                            said=customer_page.OUTCOMES.get(said, ""))

    async def _page_action(self, token: str, form: dict[str, str]) -> str | int:
        """A form posted on a customer's page: a message goes to the spool (the page's door),
        any other action to core at once. An HTTP status when it opens nothing or is forged."""
        try:
            if form.get("action") != "message":
                said = await customer_page.act(self.desk, token, form)
            else:
                arrival = await customer_page.message_arrival(self.desk, token, form)
                if isinstance(arrival, spool.Arrival):
                    assert self._page_door is not None
                    await self._page_door.write(arrival)  # committed before the page says "sent"
                    arrival = "sent"
                said = arrival
        except customer_page.Forbidden:
            return 403
        return 404 if said is None else said

    async def metrics_text(self) -> str:
        c = await reports.counts(self.db)
        lines = ["# TYPE deskbell_tickets gauge"]
        lines += [f'deskbell_tickets{{status="{k}"}} {v}' for k, v in sorted(c["tickets"].items())]
        lines.append("# TYPE deskbell_outbox gauge")
        for key, v in sorted(c["outbox"].items()):
            channel, status = key.split(":")
            lines.append(f'deskbell_outbox{{channel="{channel}",status="{status}"}} {v}')
        lines += ["# TYPE deskbell_quarantine_held gauge", f"deskbell_quarantine_held {c['quarantine']['held']}",
                  "# TYPE deskbell_spool_queued gauge", f"deskbell_spool_queued {c['spool']['queued']}"]
        return "\n".join(lines) + "\n"

    def _print_summary(self, roles: set[str], out: TextIO) -> None:
        s = self.settings
        lines = [f"Deskbell {__version__} running ({', '.join(r for r in ROLES if r in roles)})"]
        if self.listening.smtp:
            host, port = self.listening.smtp
            domains = ", ".join(s.smtp_in.domains) or "any domain"
            lines.append(f"  SMTP      listening on {host}:{port} for {domains}")
        if self.listening.web:
            host, port = self.listening.web
            lines.append(f"  Web       listening on http://{host}:{port} (/healthz, /readyz, /metrics)")
        if "imap" in roles and s.imap_accounts:
            accounts = ", ".join(f"{a.name} ({a.username}@{a.host} {a.mailbox})" for a in s.imap_accounts)
            lines.append(f"  IMAP      reading {accounts}")
        lines.append(f"  Database  {s.database.redacted_url}")
        if "worker" in roles:
            if s.slack.bot_token.get_secret_value():
                how = ("Socket Mode" if s.slack.app_token.get_secret_value() else
                       "POST /slack/events" if s.slack.signing_secret.get_secret_value() else
                       "no slack.signing_secret, so buttons and /ticket are off")
                lines.append(f"  Slack     on — cards go to {s.slack.api_url}; staff actions via {how}")
            else:
                lines.append("  Slack     off — no slack.bot_token; cards are queued until one is set")
            lines.append(f"  Email out relay {s.email_out.host}:{s.email_out.port}, "
                         f"from {s.email_out.from_address}")
        lines.append("  Stop with Ctrl-C (SIGTERM drains in-flight mail first)")
        out.write("\n".join(lines) + "\n")
        out.flush()


def _origin(url: str) -> str:
    """``https://cdn.example.com`` of a logo's URL (the page's CSP allows images from there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
