"""Adapter: the SMTP door (aiosmtpd on the app's own event loop) → the spool.

A tiny protocol object, after aiosmtpd's own handlers and Mailman's LMTP runner: RCPT accepts
only our domains (never relay), DATA commits the raw bytes to the spool and ``250`` goes out
only after that commit. Our failure is ``451 4.3.0`` so the sending MTA retries; while
draining it answers ``421 4.3.2``. No parsing and no ticket logic here: the intake worker
does both after the sender has its answer.

The door faces the whole internet, so it must not:

- hold more than ``max_sessions`` connections, or ``max_sessions_per_client`` from one client:
  past that a connection hears ``421 4.7.0`` as its greeting and is closed at once;
- let a silent client keep its session past ``session_timeout_seconds`` (``421 4.4.2``);
- transfer more than ``max_data_sessions`` messages at once (``451 4.3.2``), or take more than
  ``max_recipients`` recipients for one message (``452 4.5.3``);
- hold a message in memory while it arrives: DATA streams to a temporary file;
- write a log line (let alone a traceback) per refused connection;
- tell the sender anything about tickets: every ``250`` looks the same.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import secrets
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, TLSSetupException, syntax

from bot.clock import Clock
from bot.core.spool import Arrival
from bot.inbound.smtp_data import ERR_451, ERR_552, DataReceiver, next_piece
from bot.fdlimit import open_file_limit

log = logging.getLogger(__name__)

# Status strings, named as in Mailman's LMTP runner.
OK_250 = "250 2.0.0 Ok: queued as {}"
ERR_421 = "421 4.3.2 Service shutting down, try again later"
ERR_421_BUSY = "421 4.7.0 Too many connections, try again later"
ERR_421_IDLE = "421 4.4.2 {} Error: timeout exceeded"
ERR_451_BUSY = "451 4.3.2 Too many messages in transfer, try again later"
ERR_452_RCPT = "452 4.5.3 Too many recipients"
ERR_550 = "550 5.1.1 <{}>: recipient address not accepted here (we do not relay)"
ERR_553 = "553 5.1.3 <{}>: bad recipient address syntax"

# aiosmtpd's own wording → enhanced status codes (RFC 3463) that MTAs log and act on.
_REWRITES = {
    "552 Error: Too much mail data": ERR_552,
    "552 Error: message size exceeds fixed maximum message size": ERR_552,
}

IN_MEMORY_BYTES = 1 << 20  # a message in transfer moves from RAM to a temporary file past this
# DATA with every transfer slot taken waits this long for one before answering 451 4.3.2. Most
# messages take well under a second to arrive, and a 4xx costs the sender minutes in its queue,
# so a short wait absorbs a burst; longer, the sender's own queue is the better place to wait
# (ours would only hold its connection). Far below RFC 5321's 2 minutes for the DATA reply.
DATA_SLOT_WAIT_SECONDS = 5.0
REFUSAL_LOG_SECONDS = 60.0  # at most one log line per client (and one for the overall cap)
BACKLOG = 100  # asyncio accepts up to this many connections per loop pass (its default)

SpoolFn = Callable[[Arrival], Awaitable[None]]


class DeskbellSMTP(SMTP):
    """aiosmtpd's SMTP with the limits and status codes Deskbell promises (DESIGN §5)."""

    # Real senders break RFC 5322's 998-octet limit; accept lines up to 10,000 bytes + CRLF.
    # (aiosmtpd sizes its stream reader with this too, so a longer line is never buffered whole.)
    line_length_limit = 10_002

    def __init__(self, handler: SmtpHandler, *, data_slots: asyncio.Semaphore, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.event_handler: SmtpHandler = handler
        self._data_slots = data_slots
        self.on_close: Callable[[], None] | None = None

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = _REWRITES.get(status, status)
        await super().push(status)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
            # After a failed STARTTLS handshake aiosmtpd passes its error on to the stream
            # protocol, whose future then logs a traceback when collected: one per hostile
            # client. It is the client's failure, already logged once: mark it seen.
            closed = getattr(self, "_closed", None)
            if closed is not None and closed.done() and not closed.cancelled():
                closed.exception()
        finally:
            on_close, self.on_close = self.on_close, None  # once, even after STARTTLS
            if on_close is not None:
                on_close()

    def _timeout_cb(self) -> None:
        # aiosmtpd only hangs up; say why first (RFC 5321 §3.8, §4.5.3.2: 421, then close).
        # The timer restarts at each command, not with each line of DATA: a whole message
        # must arrive within one timeout, so a client trickling bytes cannot keep a slot.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ERR_421_IDLE.format(self.hostname).encode("ascii", "replace") + b"\r\n")
        super()._timeout_cb()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA (its checks and answers, in its order), but streaming the message to
        a temporary file instead of a list of lines joined and copied at the end. Bytes only:
        the handler gets ``envelope.original_content`` (``decode_data`` is never used here)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        if self.event_handler.draining:
            await self.push(ERR_421)
            return
        if self._data_slots.locked():  # every slot taken: wait a little (wait_for costs a task)
            try:  # the envelope stays as it was: the sender may ask again in this session
                await asyncio.wait_for(self._data_slots.acquire(), DATA_SLOT_WAIT_SECONDS)
            except asyncio.TimeoutError:
                await self.push(ERR_451_BUSY)
                return
        else:
            await self._data_slots.acquire()  # free: returns at once
        try:
            with self.event_handler.in_flight():  # a drain waits for a message mid-transfer too
                await self._data()
        finally:
            self._data_slots.release()

    async def _data(self) -> None:
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES) as message:
            error = await self._receive(message)
            if error is None:
                try:
                    raw = await _read_back(message)
                except OSError as exc:
                    log.error("smtp cannot read back a message in transfer: %s", exc)
                    error = ERR_451
        assert self.envelope is not None
        if error is not None:
            self._set_post_data_state()
            await self.push(error)
            return
        # The one copy of the message in memory: the handler spools these very bytes.
        self.envelope.original_content = self.envelope.content = raw
        del raw
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _receive(self, message: IO[bytes]) -> str | None:
        """Copy the message into ``message`` up to the line ".", removing each line's
        transparent dot (RFC 5321 §4.5.2); return the error to answer, if any (see
        ``smtp_data``: a bare LF or CR is data, and past a limit the rest is read, then
        refused)."""
        receiver = DataReceiver(message, size_limit=self.data_size_limit or 0,
                                line_limit=self.line_length_limit)
        while True:
            try:
                piece = await next_piece(self._reader)
            except asyncio.CancelledError:  # connection lost or timed out, as in aiosmtpd
                log.debug("smtp connection lost during DATA peer=%s", self.session and self.session.peer)
                self._writer.close()
                raise
            if receiver.feed(piece):
                return receiver.error


async def _read_back(message: IO[bytes]) -> bytes:
    """The whole message as bytes; a big one (on disk by now) is read off the event loop."""
    size = message.tell()
    message.seek(0)
    if size > IN_MEMORY_BYTES:
        return await asyncio.to_thread(message.read)
    return message.read()


class SmtpHandler:
    """aiosmtpd handler hooks. ``domains`` empty means any domain (embedded defaults)."""

    def __init__(self, *, spool: SpoolFn, clock: Clock, domains: list[str],
                 max_recipients: int = 100) -> None:
        self._spool, self.clock = spool, clock
        self.domains = {d.lower() for d in domains}
        self.max_recipients = max_recipients
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
        if len(envelope.rcpt_tos) >= self.max_recipients:
            # RFC 5321 §4.5.3.1.10: a transient refusal; the recipients so far keep the message
            # and the sender sends the rest in another transaction.
            return ERR_452_RCPT
        local, at, domain = address.rpartition("@")
        if not at or not local:
            return ERR_553.format(address)
        if self.domains and domain.lower() not in self.domains:
            log.info("smtp rcpt refused domain=%s peer=%s", domain, session.peer)
            return ERR_550.format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self._accept(envelope)

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """A message between DATA and its answer: ``stop()`` lets it finish."""
        self.inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._idle.set()

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # the client's handshake, not our failure
            # str(): a log record kept by a handler must not keep the handshake's frames alive
            log.info("smtp STARTTLS handshake failed: %s", str(error.__cause__))
            return ERR_451  # not sent: aiosmtpd hangs up
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
        # Our queue id, as MTAs print it: 16 hex digits, unique enough never to collide. The
        # answer names nothing else (no ticket): it must be the same for every message.
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


def client_of(peername: Any) -> str:
    """Who counts as one client: an IPv4 address, or an IPv6 /64 (one host may hold all of
    a /64, so counting single IPv6 addresses would let it open sessions without end)."""
    try:
        ip = ipaddress.ip_address(peername[0])
    except (TypeError, ValueError, IndexError):
        return str(peername)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class _Refusals:
    """One warning per refusal burst: a line when a key is first refused, then nothing for
    ``REFUSAL_LOG_SECONDS`` but a count, reported with the next line. A flood of refused
    connections costs a dictionary update each, never a log line each."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[float, int]] = {}  # key → (last line, refused since)

    def note(self, key: str, why: str, client: str) -> None:
        now = asyncio.get_running_loop().time()
        last, count = self._since.get(key, (None, 0))
        if last is not None and now - last < REFUSAL_LOG_SECONDS:
            self._since[key] = (last, count + 1)
            return
        if len(self._since) > 1000:  # forget clients that have gone quiet
            self._since = {k: v for k, v in self._since.items() if now - v[0] < REFUSAL_LOG_SECONDS}
        self._since[key] = (now, 0)
        log.warning("smtp refused a connection from %s: %s (%s refused since the previous "
                    "such line; at most one a minute)", client, why, count + 1)


class _Admission(asyncio.Protocol):
    """Each connection's first protocol: its server admits it into a session or refuses it
    before anything is built for it (an SMTP session object is costly under a flood)."""

    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._server._admit(transport)  # type: ignore[arg-type]


class SmtpServer:
    """Listens on the app's event loop; ``stop()`` drains in-flight messages first."""

    def __init__(self, handler: SmtpHandler, *, host: str, port: int, hostname: str,
                 max_message_bytes: int, tls_context: ssl.SSLContext | None = None,
                 max_sessions: int = 200, max_sessions_per_client: int = 20,
                 max_data_sessions: int = 20, timeout: float = 300) -> None:
        self.handler, self.host, self.port = handler, host, port
        self.hostname, self.max_message_bytes = hostname, max_message_bytes
        self.tls_context = tls_context
        self.max_sessions, self.max_sessions_per_client = max_sessions, max_sessions_per_client
        self.max_data_sessions, self.timeout = max_data_sessions, timeout
        self._data_slots = asyncio.Semaphore(max_data_sessions)
        self._server: asyncio.Server | None = None
        self._sessions: set[DeskbellSMTP] = set()
        self._per_client: collections.Counter[str] = collections.Counter()
        self._refusals = _Refusals()

    def _admit(self, transport: asyncio.Transport) -> None:
        client = client_of(transport.get_extra_info("peername"))
        if len(self._sessions) >= self.max_sessions:
            refused = ("*", f"all {self.max_sessions} sessions (smtp_in.max_sessions) in use")
        elif self._per_client[client] >= self.max_sessions_per_client:
            refused = (client, f"{client} has {self.max_sessions_per_client} sessions "
                               "(smtp_in.max_sessions_per_client)")
        else:
            refused = None
        if refused is not None:
            # The greeting says why and the socket closes now: a refused connection holds no
            # file descriptor beyond this loop pass and no memory.
            transport.write(ERR_421_BUSY.encode() + b"\r\n")
            transport.close()
            self._refusals.note(*refused, client)
            return
        session = DeskbellSMTP(self.handler, data_slots=self._data_slots,
                               data_size_limit=self.max_message_bytes, enable_SMTPUTF8=True,
                               decode_data=False, hostname=self.hostname, ident="Deskbell ESMTP",
                               tls_context=self.tls_context, timeout=self.timeout,
                               loop=asyncio.get_running_loop())
        self._sessions.add(session)
        self._per_client[client] += 1

        def closed() -> None:
            self._sessions.discard(session)
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]

        session.on_close = closed
        transport.set_protocol(session)
        session.connection_made(transport)

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Admission(self), host=self.host,
                                                port=self.port, backlog=BACKLOG)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.port = port
        # asyncio's accept loop meets EMFILE only past the open-file limit, and then logs one
        # error and stops accepting for a second (selector_events._accept_connection): no storm,
        # but no mail either. The caps bound what the door holds: its sessions, a temporary file
        # per message in transfer, and connections accepted only to be refused (at most one
        # accept batch, each closed on the next loop pass); with the limit raised at start-up
        # (bot.fdlimit) that is far below it. Say so when it is not (half the limit: the web
        # role and the database may share this process).
        needed = self.max_sessions + self.max_data_sessions + BACKLOG
        limit = open_file_limit()
        if limit is not None and needed > limit // 2:
            log.warning("smtp caps allow %s open files, the open-file limit is %s: lower "
                        "smtp_in.max_sessions or raise the limit (ulimit -n)", needed, limit)
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
