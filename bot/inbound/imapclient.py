"""Adapter: one IMAP connection, as the IMAP door needs it, over aioimaplib.

``ImapSession`` connects (TLS, or STARTTLS), logs in (LOGIN, AUTHENTICATE PLAIN or XOAUTH2),
selects a mailbox and offers the few commands the door uses, each answered or failed within
``timeout``: a lost connection fails every command at once (aioimaplib alone would leave it
waiting), and a server that stops answering fails it after ``timeout``. Errors are
``ImapError`` (the server refused), ``LoginRefused`` (credentials) or ``LinkDead``.

Must not know about the spool, tickets or the ledger: it only speaks IMAP.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import aioimaplib

T = TypeVar("T")

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.I)
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]", re.I)
_EXISTS = re.compile(rb"^(\d+) EXISTS$", re.I)
_FETCH_UID = re.compile(rb"\bUID (\d+)", re.I)
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.I)
_FETCH_START = re.compile(rb"^\d+ FETCH \(", re.I)
_COPYUID = re.compile(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", re.I)
_LIST_DELIMITER = re.compile(rb'^LIST \([^)]*\) ("(?:\\.|[^"])"|NIL)', re.I)
_CAPABILITY = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.I)
# UIDs per command: keeps each line far below servers' limits, and each answer (a line per
# message) within what aioimaplib parses, one recursion level per line, in one go.
UID_SET_LIMIT = 200


class ImapError(Exception):
    """The server refused a command, or said something we cannot use."""


class LoginRefused(ImapError):
    """Wrong credentials (or a login method the server does not allow)."""


class LinkDead(ImapError):
    """The connection closed, or the server stopped answering."""


@dataclass(frozen=True)
class Selected:
    mailbox: str
    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass
class Moved:
    """Where moved messages went: the target's UIDVALIDITY and old UID → new UID (empty when
    the server does not say: no UIDPLUS)."""

    uidvalidity: int
    uids: dict[int, int]


class _Protocol(aioimaplib.IMAP4ClientProtocol):
    """aioimaplib's protocol, answering SASL challenges: the first with our response (so
    AUTHENTICATE works without SASL-IR), any further one with an empty line, which is how a
    client acknowledges an XOAUTH2 error before the server's NO (RFC 7628 §3.2.3)."""

    sasl_response: bytes | None = None

    def _continuation(self, line: bytes) -> None:
        command = self.pending_sync_command
        if command is not None and command.name == "AUTHENTICATE" and self.transport is not None:
            response, self.sasl_response = self.sasl_response or b"", None
            self.transport.write(response + b"\r\n")
            return
        super()._continuation(line)


class _Client(aioimaplib.IMAP4):
    def __init__(self, *, server_hostname: str | None, **kwargs: Any) -> None:
        self._server_hostname = server_hostname
        super().__init__(**kwargs)

    def create_client(self, host: str, port: int, loop: Any, conn_lost_cb: Any = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        self.protocol = _Protocol(loop, conn_lost_cb)
        self._client_task = loop.create_task(loop.create_connection(
            lambda: self.protocol, host, port, ssl=ssl_context,
            server_hostname=self._server_hostname if ssl_context is not None else None))


def uid_set(uids: Iterable[int]) -> str:
    """``1:3,7,9:10`` for [1, 2, 3, 7, 9, 10]."""
    ordered = sorted(set(uids))
    runs: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(runs)


def _expand(uid_set_text: bytes) -> list[int]:
    uids: list[int] = []
    for part in uid_set_text.decode().split(","):
        first, _, last = part.partition(":")
        lo, hi = int(first), int(last or first)
        uids.extend(range(min(lo, hi), max(lo, hi) + 1))
    return uids


def _quote(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string (modified UTF-7 for non-ASCII names is the
    operator's to write in the config, as other IMAP clients' settings ask too)."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(response: Any) -> str:
    lines = [line for line in response.lines if isinstance(line, bytes)]
    return (lines[-1] if lines else b"").decode("utf-8", "replace").strip()


class ImapSession:
    """One connection; use ``async with`` (it logs out, or just closes a dead link)."""

    def __init__(self, *, host: str, port: int, tls: bool, starttls: bool, timeout: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.tls, self.starttls = host, port, tls, starttls
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._lost: asyncio.Future[None] | None = None
        self._client: _Client | None = None

    # ----- connection ----------------------------------------------------------------------

    async def __aenter__(self) -> "ImapSession":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost = loop.create_future()

        def lost(exc: Exception | None) -> None:
            if not self._lost.done():  # type: ignore[union-attr]
                self._lost.set_result(None)  # type: ignore[union-attr]

        context = self._context() if self.tls else None
        self._client = _Client(host=self.host, port=self.port, timeout=self.timeout,
                               conn_lost_cb=lost, ssl_context=context,
                               server_hostname=self.host)
        try:
            await self._guard(self._client.wait_hello_from_server())
        except (OSError, ssl.SSLError) as exc:
            raise LinkDead(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        if self.starttls:
            await self._start_tls()

    async def _start_tls(self) -> None:
        protocol = self.protocol
        if "STARTTLS" not in protocol.capabilities:
            # Never fall back to plain text: the password would cross the network in clear.
            raise ImapError(f"{self.host} does not offer STARTTLS")
        response = await self._guard(protocol.execute(
            aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)))
        if response.result != "OK":
            raise ImapError(f"STARTTLS refused: {_text(response)}")
        loop = asyncio.get_running_loop()
        try:
            transport = await self._guard(loop.start_tls(protocol.transport, protocol, self._context(),
                                                         server_hostname=self.host))
        except (OSError, ssl.SSLError) as exc:
            raise LinkDead(f"TLS handshake with {self.host} failed: {exc}") from exc
        protocol.transport = transport
        # RFC 3501 §6.2.1: what the server offered before TLS is forgotten; ask again.
        await self._guard(protocol.capability())

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self.alive and client.protocol.state != aioimaplib.LOGOUT:
            if client.has_pending_idle():
                # Stopped mid-IDLE: a server reads no command until DONE (RFC 2177), so a bare
                # LOGOUT would only wait out the timeout.
                client.idle_done()
            try:
                await asyncio.wait_for(self._guard(client.logout()), min(self.timeout, 5))
            except Exception:  # noqa: BLE001 — leaving anyway; the server cleans up
                pass
        if client.protocol.transport is not None:
            client.protocol.transport.close()
        for task in (*client.tasks, *client.protocol.tasks):
            task.cancel()

    @property
    def protocol(self) -> _Protocol:
        assert self._client is not None, "not connected"
        return self._client.protocol  # type: ignore[return-value]

    @property
    def alive(self) -> bool:
        return self._lost is not None and not self._lost.done()

    @property
    def capabilities(self) -> set[str]:
        return {c.upper() for c in self.protocol.capabilities}

    async def _guard(self, awaitable: Awaitable[T], *, whole: bool = True) -> T:
        """``awaitable``'s result, or LinkDead once the connection is lost or ``timeout``
        passes without an answer (``whole=False``: the command times itself out when the
        server falls silent, however long the whole answer takes — a big message)."""
        task = asyncio.ensure_future(awaitable)
        assert self._lost is not None
        done, _ = await asyncio.wait({task, self._lost}, timeout=self.timeout if whole else None,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            try:
                return task.result()
            except aioimaplib.CommandTimeout as exc:
                raise LinkDead(f"{self.host} stopped answering") from exc
            except asyncio.TimeoutError as exc:
                raise LinkDead(f"{self.host} did not answer within {self.timeout:.0f} s") from exc
            except aioimaplib.Abort as exc:
                raise ImapError(str(exc)) from exc
        task.cancel()
        if self._lost.done():
            raise LinkDead(f"{self.host} closed the connection")
        raise LinkDead(f"{self.host} did not answer within {self.timeout:.0f} s")

    async def _ok(self, awaitable: Awaitable[Any], what: str, *, whole: bool = True) -> Any:
        response = await self._guard(awaitable, whole=whole)
        if response.result != "OK":
            if response.result == "BYE" or not self.alive:
                raise LinkDead(f"{what}: {_text(response)}")
            raise ImapError(f"{what} refused: {response.result} {_text(response)}")
        return response

    # ----- login ---------------------------------------------------------------------------

    async def login(self, username: str, *, password: str = "", mechanism: str = "auto",
                    oauth2_token: str = "") -> str:
        """Log in; returns the mechanism used. LoginRefused when the server says no."""
        offered = self.capabilities
        if mechanism == "auto":
            mechanism = "plain" if "AUTH=PLAIN" in offered else "login"
        if mechanism == "login":
            if "LOGINDISABLED" in offered:
                raise LoginRefused(f"{self.host} refuses LOGIN here (LOGINDISABLED): use tls or starttls")
            response = await self._guard(self._client.login(username, password))  # type: ignore[union-attr]
        else:
            if mechanism == "plain":
                payload = f"\0{username}\0{password}".encode()
                name = "PLAIN"
            else:
                payload = f"user={username}\1auth=Bearer {oauth2_token}\1\1".encode()
                name = "XOAUTH2"
            protocol = self.protocol
            protocol.sasl_response = base64.b64encode(payload)
            response = await self._guard(protocol.execute(
                aioimaplib.Command("AUTHENTICATE", protocol.new_tag(), name, loop=protocol.loop)))
            protocol.sasl_response = None
            if response.result == "OK":
                protocol.state = aioimaplib.AUTH
        if response.result != "OK":
            raise LoginRefused(f"login as {username} refused: {_text(response)}")
        # The login answer often carries new capabilities; ask only when it does not.
        answered = b" ".join(line for line in response.lines if isinstance(line, bytes))
        if (found := _CAPABILITY.search(answered)) is not None:
            self.protocol.capabilities = set(found.group(1).decode().split())
        else:
            await self._guard(self.protocol.capability())
        return mechanism

    # ----- mailboxes -----------------------------------------------------------------------

    async def select(self, mailbox: str, *, readonly: bool = False) -> Selected:
        command = "EXAMINE" if readonly else "SELECT"
        protocol = self.protocol
        response = await self._ok(protocol.execute(
            aioimaplib.Command(command, protocol.new_tag(), _quote(mailbox), loop=protocol.loop)),
            f"{command} {mailbox}")
        protocol.state = aioimaplib.SELECTED
        lines = [line for line in response.lines if isinstance(line, bytes)]
        validity = next((int(f.group(1)) for line in lines if (f := _UIDVALIDITY.search(line))), None)
        if validity is None:
            raise ImapError(f"{mailbox}: the server gave no UIDVALIDITY")
        uidnext = next((int(f.group(1)) for line in lines if (f := _UIDNEXT.search(line))), None)
        exists = next((int(f.group(1)) for line in lines if (f := _EXISTS.match(line))), 0)
        return Selected(mailbox, validity, uidnext, exists)

    async def separator(self) -> str:
        """The server's hierarchy separator ("/" or "." mostly; "" when it has no hierarchy),
        from ``LIST "" ""`` (RFC 3501 §6.3.8)."""
        response = await self._ok(self._client.list('""', '""'), "LIST")  # type: ignore[union-attr]
        for line in response.lines:
            if isinstance(line, bytes) and (found := _LIST_DELIMITER.match(line)):
                return "" if found.group(1).upper() == b"NIL" else found.group(1).strip(b'"').decode()
        return "/"

    async def create(self, mailbox: str) -> None:
        """Make ``mailbox`` unless it exists already."""
        response = await self._guard(self._client.create(_quote(mailbox)))  # type: ignore[union-attr]
        if response.result != "OK" and "ALREADYEXISTS" not in _text(response).upper():
            listed = await self._guard(self._client.list('""', _quote(mailbox)))  # type: ignore[union-attr]
            if not any(isinstance(line, bytes) and line.startswith(b"LIST") for line in listed.lines):
                raise ImapError(f"cannot create {mailbox}: {_text(response)}")

    # ----- messages ------------------------------------------------------------------------

    async def uids_from(self, first: int) -> list[int]:
        """UIDs of the selected mailbox from ``first`` on, ascending. (``n:*`` always matches
        the last message even when its UID is below n, RFC 3501 §6.4.8: filtered out here.)"""
        response = await self._ok(self._client.uid_search(f"UID {first}:*", charset=None),  # type: ignore[union-attr]
                                  "UID SEARCH")
        uids: set[int] = set()
        for line in response.lines:
            # aioimaplib hands the untagged "* SEARCH 4 5 6" over as "4 5 6" (an empty result
            # as ""); only the tagged line's text has words in it.
            words = line.split() if isinstance(line, bytes) else []
            if words and words[0].upper() == b"SEARCH":
                words = words[1:]
            if words and all(w.isdigit() for w in words):
                uids.update(int(w) for w in words)
        return sorted(u for u in uids if u >= first)

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each of these messages still in the mailbox."""
        found: dict[int, int] = {}
        for start in range(0, len(uids), UID_SET_LIMIT):
            chunk = uids[start:start + UID_SET_LIMIT]
            response = await self._ok(self._client.uid("fetch", uid_set(chunk), "(UID RFC822.SIZE)"),  # type: ignore[union-attr]
                                      "UID FETCH RFC822.SIZE")
            for line in response.lines:
                if isinstance(line, bytes) and (uid := _FETCH_UID.search(line)) and (size := _FETCH_SIZE.search(line)):
                    found[int(uid.group(1))] = int(size.group(1))
        return found

    async def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """These messages' bytes, as stored, in one command (``BODY.PEEK[]``: \\Seen is left
        as it was); a message expunged by another client meanwhile is simply missing."""
        response = await self._ok(self._client.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])"),  # type: ignore[union-attr]
                                  f"UID FETCH {uid_set(uids)}", whole=False)
        # Each message's answer is a header line ending "{size}", the literal, then the rest
        # of the line (the UID may come before or after the literal). Other clients' flag
        # changes may be mixed in; so may messages we did not ask for (never trusted).
        wanted, found = set(uids), {}
        lines = response.lines
        for i, line in enumerate(lines):
            if not (isinstance(line, bytes) and _FETCH_START.match(line) and line.endswith(b"}")):
                continue
            if i + 1 >= len(lines) or isinstance(lines[i + 1], bytes):
                continue
            tail = lines[i + 2] if i + 2 < len(lines) and isinstance(lines[i + 2], bytes) else b""
            uid = _FETCH_UID.search(line) or _FETCH_UID.search(tail)
            if uid is not None and int(uid.group(1)) in wanted:
                found[int(uid.group(1))] = bytes(lines[i + 1])
        return found

    async def move(self, uids: list[int], mailbox: str) -> Moved:
        """Move messages to ``mailbox`` (MOVE, else COPY + \\Deleted + UID EXPUNGE); returns
        where they are now, as far as the server says (UIDPLUS COPYUID)."""
        moved = Moved(0, {})
        for start in range(0, len(uids), UID_SET_LIMIT):
            chunk = uid_set(uids[start:start + UID_SET_LIMIT])
            if "MOVE" in self.capabilities:
                response = await self._ok(self._client.uid("move", chunk, _quote(mailbox)),  # type: ignore[union-attr]
                                          f"UID MOVE to {mailbox}")
            else:
                response = await self._ok(self._client.uid("copy", chunk, _quote(mailbox)),  # type: ignore[union-attr]
                                          f"UID COPY to {mailbox}")
                await self._ok(self._client.uid("store", chunk, "+FLAGS.SILENT", r"(\Deleted)"),  # type: ignore[union-attr]
                               "UID STORE \\Deleted")
                if "UIDPLUS" in self.capabilities:
                    await self._ok(self._client.uid("expunge", chunk), "UID EXPUNGE")  # type: ignore[union-attr]
                # Without UIDPLUS, a plain EXPUNGE would also remove messages another client
                # marked \Deleted: leave ours marked, as other clients do (CLOSE expunges).
            for line in response.lines:
                if isinstance(line, bytes) and (found := _COPYUID.search(line)):
                    moved.uidvalidity = int(found.group(1))
                    moved.uids.update(zip(_expand(found.group(2)), _expand(found.group(3))))
        return moved

    # ----- waiting -------------------------------------------------------------------------

    @property
    def can_idle(self) -> bool:
        return "IDLE" in self.capabilities

    async def idle(self, seconds: float) -> bool:
        """IDLE until the server says something (True) or ``seconds`` pass (False), then end
        it (DONE). An unanswered DONE means a dead link (the watchdog)."""
        client = self._client
        assert client is not None and self._lost is not None
        queue = client.protocol.idle_queue
        while not queue.empty():  # pushes from an earlier round are stale
            queue.get_nowait()
        idle = await self._guard(client.idle_start(timeout=aioimaplib.TWENTY_NINE_MINUTES))
        push = asyncio.ensure_future(queue.get())
        try:
            done, _ = await asyncio.wait({push, self._lost}, timeout=seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            push.cancel()
        if self._lost.done():
            idle.cancel()
            raise LinkDead(f"{self.host} closed the connection during IDLE")
        pushed = push in done and not push.cancelled()
        client.idle_done()
        await self._ok(idle, "IDLE")
        return pushed

    async def noop(self) -> None:
        await self._ok(self._client.noop(), "NOOP")  # type: ignore[union-attr]
