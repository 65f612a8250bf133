"""Outbox sender for the ``email`` channel: composes the intent's mail (MIME, through
``compose``: a customer's ticket mail, or any other mail made from a template) and hands it to
the configured relay (aiosmtplib), with the mail's own return path as envelope sender
(``envelope_sender``).

Returns the relay's queue id when it names one. 4xx and network trouble → ``DeliveryFailed``
(retry); 5xx → ``DeliveryRejected``. Must not choose recipients, decide what a mail says or
touch the database.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable

import aiosmtplib

from bot.core import intents
from bot.core.threader import return_path
from bot.core.errors import DeliveryFailed, DeliveryRejected
from bot.core.views import OutboxView, OutgoingEmail, OutgoingMail, restore
from bot.outbound.compose import EmailComposer

# "2.0.0 Ok: queued as 4Xk2Lq0Vz3z9" (Postfix) / "OK id=1rXyZ-000123-4A" (Exim) → the id
QUEUE_ID_RE = re.compile(r"(?:queued as|id=)\s*([A-Za-z0-9._-]+)", re.I)


IDLE_SECONDS = 30.0  # relays drop idle sessions; ours are closed before that


def envelope_sender(payload: dict) -> str:
    """MAIL FROM for an intent's mail: the return path that names it (VERP, in reply_domain,
    the domain of our Message-IDs), so its bounces come back to us and say which mail they are
    about. The From header stays the intent's sender."""
    message_id = (payload.get("mail") or {}).get("message_id")
    return return_path(message_id) if message_id else payload["from"]


class EmailSender:
    """Delivers over a few reused SMTP sessions to the relay (saves a handshake per mail)."""

    channel = "email"

    def __init__(self, *, composer: EmailComposer, host: str, port: int, starttls: bool,
                 username: str, password: str, timeout: float = 30,
                 max_message_bytes: int = 26214400, pool_size: int = 4,
                 read: Callable[[str], Awaitable[bytes | None]] | None = None) -> None:
        self.composer = composer
        self.read = read  # attachments' bytes by SHA-256
        self.host, self.port, self.starttls = host, port, starttls
        self.username, self.password = username or None, password or None
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self.pool_size = pool_size
        self._idle: list[tuple[float, aiosmtplib.SMTP]] = []

    async def send(self, item: OutboxView, refs: dict[str, str]) -> str | None:
        payload = item.payload
        if item.kind == intents.CUSTOMER_MESSAGE:
            mail = restore(OutgoingEmail, payload["mail"])
            message = self.composer.customer_email(mail, await self._files(mail))
        elif item.kind == intents.MAIL:
            message = self.composer.mail(restore(OutgoingMail, payload["mail"]))
        else:
            raise DeliveryRejected(f"the email sender cannot deliver a {item.kind!r} intent")
        if len(message) > self.max_message_bytes:
            raise DeliveryRejected(f"message of {len(message)} bytes exceeds email_out.max_message_bytes")
        data = message.encode("utf-8")
        sender = envelope_sender(payload)
        # RFC 6531: a non-ASCII address can only travel over SMTPUTF8 (and then the headers may
        # carry it as raw UTF-8, RFC 6532); a relay without it cannot deliver there at all.
        utf8 = not (sender.isascii() and all(to.isascii() for to in payload["to"]))
        options = ["SMTPUTF8"] if utf8 else []
        try:
            try:
                errors, response = await self._transaction(sender, payload["to"], data, options, reuse=True)
            except aiosmtplib.SMTPServerDisconnected:
                # A reused session the relay had closed: nothing was accepted, try a fresh one.
                errors, response = await self._transaction(sender, payload["to"], data, options,
                                                           reuse=False)
        except aiosmtplib.SMTPNotSupported as exc:
            raise DeliveryRejected("the relay cannot deliver to a non-ASCII address: it does not "
                                   "offer SMTPUTF8") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(code >= 500 for code in codes):
                raise DeliveryRejected(f"relay refused every recipient: {exc}") from exc
            raise DeliveryFailed(f"relay deferred recipients: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise DeliveryRejected(f"relay said {exc.code} {exc.message}") from exc
            raise DeliveryFailed(f"relay said {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            raise DeliveryFailed(f"relay unreachable: {type(exc).__name__}: {exc}") from exc
        if errors:
            refused = ", ".join(f"{addr} ({resp.code})" for addr, resp in errors.items())
            raise DeliveryRejected(f"relay refused {refused}")
        match = QUEUE_ID_RE.search(response or "")
        return match.group(1) if match else (response or "")[:200] or None

    async def _files(self, mail: OutgoingEmail) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for attachment in mail.attachments:
            data = await self.read(attachment.sha256) if self.read else None
            if data is None:
                raise DeliveryRejected(f"the bytes of {attachment.name!r} are no longer stored")
            files[attachment.sha256] = data
        return files

    async def _transaction(self, sender: str, recipients: list[str], data: bytes, options: list[str],
                           *, reuse: bool) -> tuple[dict, str]:
        client = self._take() if reuse else None
        if client is None:
            client = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout,
                                     start_tls=self.starttls or None, use_tls=False)
            await client.connect()
            if self.username:
                await client.login(self.username, self.password or "")
        try:
            result = await client.sendmail(sender, recipients, data, mail_options=options)
        except BaseException:
            client.close()  # its state is unknown after an error: never reuse it
            raise
        self._give_back(client)
        return result

    def _take(self) -> aiosmtplib.SMTP | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            since, client = self._idle.pop()
            if now - since < IDLE_SECONDS and client.is_connected:
                return client
            client.close()
        return None

    def _give_back(self, client: aiosmtplib.SMTP) -> None:
        if len(self._idle) < self.pool_size and client.is_connected:
            self._idle.append((asyncio.get_running_loop().time(), client))
        else:
            client.close()

    async def close(self) -> None:
        for _, client in self._idle:
            client.close()
        self._idle.clear()
