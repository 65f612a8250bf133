"""Adapter: the IMAP door — support accounts' mailboxes → the spool.

One ``AccountPoller`` per ``imap_accounts`` entry (the composition root runs each under an
advisory lock, so one process of many reads an account). It is a spool writer and no more:

1. ``UID SEARCH UID n+1:*`` above the ledger's position (never ``UNSEEN``: a message a person
   read first is still ours), ``BODY.PEEK[]`` a few messages at a time within a byte budget
   (\\Seen stays as it was; memory stays bounded), committed to the spool together before
   anything else happens to them;
2. then, a batch at a time, moved to ``processed_mailbox`` (or left where it is when none is
   set) and the ledger advanced. A crash between the two fetches a message again; the spool's
   unique source id ``imap:<account>:<mailbox>:<uidvalidity>:<uid>`` makes that a no-op;
3. a new UIDVALIDITY starts the mailbox over; intake recognises the copies already ingested
   by their Message-ID (or bytes), so nothing is ingested twice;
4. then IDLE (re-issued every ``idle_refresh_seconds``; an unanswered DONE is a dead link), or
   a NOOP every ``poll_seconds`` without IDLE. Any failure: reconnect after a pause that
   doubles up to ``BACKOFF_MAX`` with jitter. One account's trouble is only its own.

Mail that intake quarantines follows to ``quarantine_mailbox`` on a later pass. Must not
parse mail, decide anything about tickets, or acknowledge (move) a message before its spool
commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable

from bot.clock import Clock
from bot.config import ImapAccount
from bot.core import mailbox_ledger as ledger
from bot.core.mailbox_ledger import LeftBehind, Placement
from bot.core.spool import Arrival
from bot.inbound.imapclient import ImapError, ImapSession, LinkDead, LoginRefused, Selected
from bot.store.db import Database

log = logging.getLogger(__name__)

BATCH = 100  # messages spooled before they are moved and the ledger advances
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 300.0
PROGRESS_SECONDS = 10.0
FETCH_REFUSALS = 3  # a message the server refuses this often is left behind, not asked again
FETCH_MESSAGES = 50  # messages fetched (and committed) together at most …
FETCH_BYTES = 4 * 1024 * 1024  # … and their size at most: what a backlog holds in memory

SpoolFn = Callable[[Arrival], Awaitable[None]]


class AccountPoller:
    """Reads one account's mailbox into the spool until ``stop()``."""

    def __init__(self, account: ImapAccount, *, db: Database, clock: Clock, spool: SpoolFn,
                 ssl_context: ssl.SSLContext | None = None, batch: int | None = None,
                 backoff_first: float | None = None, backoff_max: float | None = None) -> None:
        self.account, self.db, self.clock, self.spool = account, db, clock, spool
        self.ssl_context = ssl_context
        self.batch = batch or BATCH
        self.backoff_first = backoff_first or BACKOFF_FIRST
        self.backoff_max = backoff_max or BACKOFF_MAX
        self.door = f"imap:{account.name}"
        # The folders as the server names them (see _learn_folders).
        self.mailbox, self.processed, self.quarantine = account.mailbox, account.processed_mailbox, ""
        self.failures = 0  # consecutive failed sessions (for tests and the log)
        self.connected = asyncio.Event()  # set while a session is logged in and selected
        self._stopping = asyncio.Event()
        self._refusals: dict[tuple[int, int], int] = {}  # (uidvalidity, uid) → FETCH refusals
        self._leftovers_moved = False

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            session = asyncio.ensure_future(self._session())
            stopping = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not session.done():
                    session.cancel()
                    await asyncio.gather(session, return_exceptions=True)
            if self._stopping.is_set():
                return
            error = session.exception()
            self.connected.clear()
            self.failures += 1
            delay = min(self.backoff_max, self.backoff_first * 2 ** (self.failures - 1))
            delay *= random.uniform(0.5, 1.0)  # accounts on one server must not retry in step
            await self._report(error, delay)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _report(self, error: BaseException | None, delay: float) -> None:
        a = self.account
        where = f"{a.username}@{a.host}:{a.port}"
        if isinstance(error, LoginRefused):
            text = f"login refused for {where}: {error}"
            log.error("imap %s: %s — check imap_accounts %r username and password (or token); "
                      "retrying in %.1f s", a.name, text, a.name, delay)
        elif isinstance(error, (ImapError, OSError, ssl.SSLError)):
            text = f"{where}: {error}"
            log.warning("imap %s: %s; reconnecting in %.1f s", a.name, text, delay)
        else:
            text = f"{where}: {type(error).__name__}: {error}"
            log.error("imap %s: unexpected failure; reconnecting in %.1f s", a.name, delay,
                      exc_info=error)
        try:
            await ledger.note_error(self.db, a.name, a.mailbox, text, now=self.clock.now())
        except Exception as exc:  # the database may be the trouble; the log has said it
            log.warning("imap %s: cannot record the error: %s", a.name, exc)

    def _connection(self) -> ImapSession:
        a = self.account
        return ImapSession(host=a.host, port=a.port, tls=a.tls, starttls=a.starttls,
                           timeout=a.response_timeout_seconds, ssl_context=self.ssl_context)

    async def _session(self) -> None:
        a = self.account
        async with self._connection() as imap:
            await _login(imap, a)
            await self._learn_folders(imap)
            self._leftovers_moved = False  # once per session: see _move_leftovers
            for folder in (self.processed, self.quarantine):
                if folder:
                    await imap.create(folder)
            selected = await imap.select(self.mailbox)
            log.info("imap %s: logged in to %s, %s has %s message(s)%s", a.name, a.host, a.mailbox,
                     selected.exists, "" if imap.can_idle else f"; no IDLE, polling every {a.poll_seconds:.0f} s")
            self.connected.set()
            while True:
                await self.drain(imap, selected)
                self.failures = 0  # a full pass: the next failure starts the backoff afresh
                if self.processed:
                    selected = await self._file_quarantined(imap, selected)
                if imap.can_idle:
                    await imap.idle(a.idle_refresh_seconds)
                else:
                    await asyncio.sleep(a.poll_seconds)
                    await imap.noop()

    async def _learn_folders(self, imap: ImapSession) -> None:
        """Folder names in the config use "/" between levels; the server may use another
        separator (Courier and many older servers: "."): translate them."""
        a = self.account
        separator = await imap.separator()
        self.mailbox = _on_server(a.mailbox, separator)
        self.processed = _on_server(a.processed_mailbox, separator)
        self.quarantine = _on_server(a.quarantine_mailbox, separator) if a.processed_mailbox else ""

    # ----- taking messages -----------------------------------------------------------------

    async def drain(self, imap: ImapSession, selected: Selected) -> int:
        """Spool every message above the ledger's position; returns how many were spooled."""
        a = self.account
        position = await ledger.position(self.db, a.name, a.mailbox)
        if position is None or position.uidvalidity != selected.uidvalidity:
            if position is not None and position.uidvalidity:
                log.warning("imap %s: %s has a new UIDVALIDITY (%s, was %s): reading it all again; "
                            "messages ingested before are recognised and not ingested twice",
                            a.name, a.mailbox, selected.uidvalidity, position.uidvalidity)
            await ledger.start_over(self.db, a.name, a.mailbox, uidvalidity=selected.uidvalidity,
                                    now=self.clock.now())
            position = ledger.Position(selected.uidvalidity, 0)
        left_behind = {x.uid: x for x in position.left_behind}
        if self.processed and position.last_uid and not self._leftovers_moved:
            await self._move_leftovers(imap, position, set(left_behind))
        self._leftovers_moved = True
        uids = await imap.uids_from(position.last_uid + 1)
        if not uids:
            return 0
        total, spooled, started = len(uids), 0, self.clock.monotonic()
        last_report = started
        if total > self.batch:
            log.info("imap %s: %s message(s) waiting in %s; taking them %s at a time",
                     a.name, total, a.mailbox, self.batch)
        for start in range(0, total, self.batch):
            chunk = uids[start:start + self.batch]
            taken = await self._spool_batch(imap, selected, chunk, left_behind)
            placements: list[Placement] = []
            if self.processed and taken:
                moved = await imap.move(taken, self.processed)
                placements = [Placement(ledger.source_id(a.name, a.mailbox, selected.uidvalidity, uid),
                                        self.processed, moved.uidvalidity, new_uid)
                              for uid, new_uid in moved.uids.items()]
            done = start + len(chunk)
            await ledger.advance(self.db, a.name, a.mailbox, uidvalidity=selected.uidvalidity,
                                 last_uid=chunk[-1], waiting=total - done,
                                 left_behind=tuple(left_behind.values()), placements=placements,
                                 now=self.clock.now(), drained=done == total)
            spooled += len(taken)
            now = self.clock.monotonic()
            if total > self.batch and (now - last_report >= PROGRESS_SECONDS or done == total):
                last_report = now
                log.info("imap %s: %s of %s taken from %s (%.0f/s)", a.name, done, total, a.mailbox,
                         done / max(now - started, 1e-6))
        return spooled

    async def _spool_batch(self, imap: ImapSession, selected: Selected, uids: list[int],
                           left_behind: dict[int, LeftBehind]) -> list[int]:
        """Fetch and spool these messages; returns the UIDs now in the spool.

        Messages are fetched a few at a time — at most ``FETCH_MESSAGES`` or ``FETCH_BYTES``
        in one command, a bigger one alone — and those of one fetch are spooled in one commit:
        memory stays bounded by that budget, however long the backlog, and neither a round
        trip nor a disk flush is paid per message."""
        a = self.account
        sizes = await imap.sizes(uids)
        taken: list[int] = []
        group: list[int] = []
        group_bytes = 0
        for uid in uids:
            size = sizes.get(uid)
            if size is None:
                continue  # expunged by someone else meanwhile
            if size > a.max_message_bytes:
                if uid not in left_behind:
                    log.warning("imap %s: UID %s in %s is %s bytes, over max_message_bytes (%s): "
                                "left in the mailbox", a.name, uid, a.mailbox, size, a.max_message_bytes)
                    left_behind[uid] = LeftBehind(uid, f"{size} bytes, over max_message_bytes")
                continue
            if group and (len(group) >= FETCH_MESSAGES or group_bytes + size > FETCH_BYTES):
                taken += await self._spool_group(imap, selected, group, left_behind)
                group, group_bytes = [], 0
            group.append(uid)
            group_bytes += size
        if group:
            taken += await self._spool_group(imap, selected, group, left_behind)
        return taken

    async def _spool_group(self, imap: ImapSession, selected: Selected, uids: list[int],
                           left_behind: dict[int, LeftBehind]) -> list[int]:
        try:
            fetched = await imap.fetch(uids)
        except LinkDead:
            raise
        except ImapError:
            if len(uids) == 1:
                fetched = await self._fetch_alone(imap, selected, uids[0], left_behind)
            else:  # find the one the server refuses: the others go on
                fetched = {}
                for uid in uids:
                    fetched.update(await self._fetch_alone(imap, selected, uid, left_behind))
        a = self.account
        now = self.clock.now()
        # Spooled together, so the writer commits them in one transaction.
        await asyncio.gather(*(self.spool(Arrival(
            channel="email", door=self.door, data=data, received_at=now,
            source_id=ledger.source_id(a.name, a.mailbox, selected.uidvalidity, uid),
            # One account's messages are ingested in the order the mailbox holds them.
            sender_key=self.door)) for uid, data in sorted(fetched.items())))
        return sorted(fetched)

    async def _fetch_alone(self, imap: ImapSession, selected: Selected, uid: int,
                           left_behind: dict[int, LeftBehind]) -> dict[int, bytes]:
        try:
            return await imap.fetch([uid])
        except LinkDead:
            raise
        except ImapError as exc:
            # Some servers refuse one broken message every time: never ask in a loop.
            key = (selected.uidvalidity, uid)
            self._refusals[key] = self._refusals.get(key, 0) + 1
            if self._refusals[key] < FETCH_REFUSALS:
                raise
            log.error("imap %s: the server refused UID %s in %s %s times (%s): left in the mailbox",
                      self.account.name, uid, self.account.mailbox, FETCH_REFUSALS, exc)
            left_behind[uid] = LeftBehind(uid, f"the server refuses to return it: {exc}"[:300])
            return {}

    async def _move_leftovers(self, imap: ImapSession, position: ledger.Position,
                              left_behind: set[int]) -> None:
        """Messages already spooled but still in the mailbox (moving was switched on later):
        move them now, without fetching them again."""
        leftovers = [u for u in await imap.uids_from(1) if u <= position.last_uid and u not in left_behind]
        if leftovers:
            log.info("imap %s: moving %s message(s) taken earlier to %s", self.account.name,
                     len(leftovers), self.processed)
            await imap.move(leftovers, self.processed)

    async def _file_quarantined(self, imap: ImapSession, selected: Selected) -> Selected:
        """Move messages that intake quarantined from the processed folder to the quarantine
        folder; returns the mailbox selected afterwards (the watched one)."""
        a = self.account
        waiting = await ledger.quarantined(self.db, a.name, self.processed)
        if not waiting:
            return selected
        processed = await imap.select(self.processed)
        here = [p for p in waiting if p.uidvalidity == processed.uidvalidity]
        if here:
            await imap.move([p.uid for p in here], self.quarantine)
            log.info("imap %s: %s quarantined message(s) moved to %s", a.name, len(here),
                     self.quarantine)
        # Those under an older UIDVALIDITY cannot be found any more: stop looking for them.
        await ledger.filed(self.db, [p.source_id for p in waiting], now=self.clock.now())
        return await imap.select(self.mailbox)


async def _login(imap: ImapSession, account: ImapAccount) -> str:
    return await imap.login(account.username, password=account.password.get_secret_value(),
                            mechanism=account.auth, oauth2_token=account.oauth2_token.get_secret_value())


def _on_server(name: str, separator: str) -> str:
    """A folder name of the config ("/" between levels) as the server writes it."""
    return name.replace("/", separator) if separator and separator != "/" else name


async def probe(account: ImapAccount, *, ssl_context: ssl.SSLContext | None = None,
                timeout: float = 10.0) -> str:
    """Log in and look at the mailbox read-only (``deskbell check``): a line describing it.
    Raises ImapError (LoginRefused, LinkDead) when it cannot."""
    session = ImapSession(host=account.host, port=account.port, tls=account.tls,
                          starttls=account.starttls, timeout=min(timeout, account.response_timeout_seconds),
                          ssl_context=ssl_context)
    async with session as imap:
        how = await _login(imap, account)
        selected = await imap.select(_on_server(account.mailbox, await imap.separator()), readonly=True)
        idle = "IDLE" if imap.can_idle else f"no IDLE (polls every {account.poll_seconds:.0f} s)"
        return (f"login ok ({how.upper()}) at {account.host}:{account.port}; {account.mailbox} has "
                f"{selected.exists} message(s); {idle}")
