"""Adapter: the SMTP door (aiosmtpd on the app's own event loop) → the spool.

A tiny protocol object, after aiosmtpd's own handlers and Mailman's LMTP runner: RCPT accepts
only our domains (never relay), DATA commits the raw bytes to the spool and ``250`` goes out
only after that commit. Our failure is ``451 4.3.0`` so the sending MTA retries; while
draining it answers ``421 4.3.2``. No parsing and no ticket logic here: the intake worker
does both after the sender has its answer.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.clock import Clock
from bot.core.spool import Arrival

log = logging.getLogger(__name__)

# Status strings, named as in Mailman's LMTP runner.
OK_250 = "250 2.0.0 Ok: queued as {}"
ERR_421 = "421 4.3.2 Service shutting down, try again later"
ERR_451 = "451 4.3.0 Temporary failure storing your message, please retry"
ERR_550 = "550 5.1.1 <{}>: recipient address not accepted here (we do not relay)"
ERR_552 = "552 5.3.4 Message size exceeds fixed maximum message size"
ERR_553 = "553 5.1.3 <{}>: bad recipient address syntax"

# aiosmtpd's own wording → enhanced status codes (RFC 3463) that MTAs log and act on.
_REWRITES = {
    "552 Error: Too much mail data": ERR_552,
    "552 Error: message size exceeds fixed maximum message size": ERR_552,
}

SpoolFn = Callable[[Arrival], Awaitable[None]]


class DeskbellSMTP(SMTP):
    """aiosmtpd's SMTP with the limits and status codes Deskbell promises (DESIGN §5)."""

    # Real senders break RFC 5322's 998-octet limit; accept lines up to 10,000 bytes.
    line_length_limit = 10_002

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = _REWRITES.get(status, status)
        await super().push(status)


class SmtpHandler:
    """aiosmtpd handler hooks. ``domains`` empty means any domain (embedded defaults)."""

    def __init__(self, *, spool: SpoolFn, clock: Clock, domains: list[str],
                 max_recipients: int = 100) -> None:
        self._spool, self.clock = spool, clock
        self.domains = {d.lower() for d in domains}
        self.draining = False
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        # aiosmtpd reads commands one by one from a buffered stream, so pipelined commands
        # (RFC 2920) are already handled correctly; say so.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.draining:
            return ERR_421
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.draining:
            return ERR_421
        local, at, domain = address.rpartition("@")
        if not at or not local:
            return ERR_553.format(address)
        if self.domains and domain.lower() not in self.domains:
            log.info("smtp rcpt refused domain=%s peer=%s", domain, session.peer)
            return ERR_550.format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.inflight += 1
        self._idle.clear()
        try:
            return await self._accept(envelope)
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._idle.set()

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp session error: %s: %s", type(error).__name__, error)
        return ERR_451

    async def wait_idle(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("smtp drain timed out with %s message(s) in flight", self.inflight)

    async def _accept(self, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        sender = envelope.mail_from or ""
        sender = "" if sender in ("<>", "") else sender
        # Our queue id, as MTAs print it: 16 hex digits, unique enough never to collide.
        queue_id = secrets.token_hex(8)
        arrival = Arrival(channel="email", door="smtp", source_id=f"smtp:{queue_id}", data=raw,
                          received_at=self.clock.now(), envelope_from=sender,
                          envelope_to=tuple(envelope.rcpt_tos), sender_key=sender.lower())
        try:
            await self._spool(arrival)
        except Exception:  # process boundary: the sender keeps the mail and retries
            log.exception("smtp spool write failed size=%s", len(raw))
            return ERR_451
        log.debug("smtp accepted queue_id=%s size=%s", queue_id, len(raw))
        return OK_250.format(queue_id)


class SmtpServer:
    """Listens on the app's event loop; ``stop()`` drains in-flight messages first."""

    def __init__(self, handler: SmtpHandler, *, host: str, port: int, hostname: str,
                 max_message_bytes: int, tls_context: ssl.SSLContext | None = None,
                 max_sessions: int = 200, max_sessions_per_client: int = 20,
                 max_data_sessions: int = 20, timeout: float = 300) -> None:
        self.handler, self.host, self.port = handler, host, port
        self.hostname, self.max_message_bytes = hostname, max_message_bytes
        self.tls_context = tls_context
        self._server: asyncio.Server | None = None
        self._sessions: set[DeskbellSMTP] = set()

    def _protocol(self) -> DeskbellSMTP:
        proto = DeskbellSMTP(self.handler, data_size_limit=self.max_message_bytes,
                             enable_SMTPUTF8=True, decode_data=False, hostname=self.hostname,
                             ident="Deskbell ESMTP", tls_context=self.tls_context,
                             timeout=300, loop=asyncio.get_running_loop())
        self._sessions.add(proto)
        original = proto.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            self._sessions.discard(proto)
            original(exc)

        proto.connection_lost = connection_lost  # type: ignore[method-assign]
        return proto

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host=self.host, port=self.port)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.port = port
        return host, port

    async def stop(self, timeout: float = 8.0) -> None:
        """Stop accepting, let in-flight DATA finish, then close every session."""
        self.handler.draining = True
        if self._server is not None:
            self._server.close()
        await self.handler.wait_idle(timeout)
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1)
            except asyncio.TimeoutError:
                pass
