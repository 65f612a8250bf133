"""The SMTP door against a hostile internet: connection caps, idle timeout, DATA concurrency,
memory per message in flight, recipient cap, and an answer that says nothing about tickets.

Every test speaks real SMTP over loopback. 127.0.0.1 and 127.0.0.2 are both loopback on Linux,
so two "clients" can be told apart by address.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import re
import shutil
import smtplib
import ssl
import subprocess
import struct
import termios
import threading
import tracemalloc
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress

import pytest

from bot.clock import Clock
from bot.core import reports, spool
from bot.inbound import smtp as door
from tests.conftest import DOMAIN, running, send_mail, settle, wait_until
from tests.test_foundation import mail

TOO_MANY = b"421 4.7.0 Too many connections, try again later\r\n"
QUEUED = re.compile(rb"2\.0\.0 Ok: queued as [0-9a-f]{16}")


class Client:
    """A raw SMTP client on asyncio streams: exactly the bytes written reach the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def reply(self) -> bytes:
        """One whole reply (all lines of a multi-line one); b"" when the server hung up."""
        lines = b""
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 10)
            lines += line
            if not line or line[3:4] != b"-":
                return lines

    async def cmd(self, line: bytes) -> bytes:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 10) == b""

    async def open_transaction(self, rcpt: str = f"help@{DOMAIN}") -> None:
        """EHLO, MAIL, RCPT, DATA: leaves the session waiting for the message."""
        assert (await self.cmd(b"EHLO client.example.net")).startswith(b"250")
        assert (await self.cmd(b"MAIL FROM:<alice@example.net>")).startswith(b"250")
        assert (await self.cmd(f"RCPT TO:<{rcpt}>".encode())).startswith(b"250")
        assert (await self.cmd(b"DATA")).startswith(b"354")

    def close(self) -> None:
        self.writer.close()


@asynccontextmanager
async def clients(port: int) -> AsyncIterator:  # noqa: ANN201
    """``connect(source)`` opens a session from that loopback address; all are closed after."""
    opened: list[Client] = []

    async def connect(source: str = "127.0.0.1") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        opened.append(Client(reader, writer))
        return opened[-1]

    try:
        yield connect
    finally:
        for client in opened:
            client.close()
        for client in opened:
            with suppress(Exception):
                await client.writer.wait_closed()


async def healthz(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def test_connections_past_the_caps_get_421_and_are_closed_at_once(app_settings, caplog):
    caplog.set_level(logging.INFO)
    settings = app_settings(smtp_in={"max_sessions": 10, "max_sessions_per_client": 4})
    async with running(settings, roles=("smtp", "web")) as app, clients(app.listening.smtp[1]) as connect:
        web = app.listening.web[1]
        first = []
        for _ in range(4):
            first.append(await connect("127.0.0.1"))
            assert (await first[-1].reply()).startswith(b"220 ")
        # One of them is in the middle of a message: the caps must not disturb it.
        await first[0].open_transaction()
        await first[0].send(mail(subject="Sent while the door was full")[:200])

        for _ in range(15):  # the same client again: refused, and hung up on at once
            refused = await connect("127.0.0.1")
            assert await refused.reply() == TOO_MANY
            assert await refused.closed_by_server()
        assert (await healthz(web)).startswith(b"HTTP/1.1 200")

        for _ in range(4):  # another client still gets in: the cap was per client
            assert (await (await connect("127.0.0.2")).reply()).startswith(b"220 ")
        assert await (await connect("127.0.0.2")).reply() == TOO_MANY
        for _ in range(2):  # ten in all now
            assert (await (await connect("127.0.0.3")).reply()).startswith(b"220 ")
        for source in ("127.0.0.3", "127.0.0.4", "127.0.0.4"):  # the overall cap
            late = await connect(source)
            assert await late.reply() == TOO_MANY
            assert await late.closed_by_server()
        assert (await healthz(web)).startswith(b"HTTP/1.1 200")

        # The session in DATA finishes as if nothing happened; the others still answer.
        rest = mail(subject="Sent while the door was full")[200:]
        await first[0].send(rest + b".\r\n")
        assert QUEUED.fullmatch((await first[0].reply())[4:].rstrip()), "message refused"
        assert (await first[1].cmd(b"NOOP")).startswith(b"250")

        # A session that ends frees its place for the next connection.
        assert (await first[1].cmd(b"QUIT")).startswith(b"221")

        async def admitted() -> bool:
            again = await connect("127.0.0.1")
            return (await again.reply()).startswith(b"220 ")
        await wait_until(admitted, timeout=5, interval=0.05)

    refusals = [r for r in caplog.records if r.name == "bot.inbound.smtp" and "refus" in r.getMessage()]
    # One line per client (and one for the overall cap) per minute, never one per connection.
    assert 1 <= len(refusals) <= 3, [r.getMessage() for r in refusals]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_silent_client_is_dropped_after_the_session_timeout(app_settings):
    async with running(app_settings(smtp_in={"session_timeout_seconds": 0.5}), roles=("smtp",)) as app, \
            clients(app.listening.smtp[1]) as connect:
        busy, silent = await connect(), await connect()
        assert (await busy.reply()).startswith(b"220 ")
        assert (await silent.reply()).startswith(b"220 ")
        for _ in range(6):  # a client that keeps talking outlives the timeout several times over
            await asyncio.sleep(0.25)
            assert (await busy.cmd(b"NOOP")).startswith(b"250")
        assert (await silent.reply()).startswith(b"421 4.4.2")
        assert await silent.closed_by_server()


async def test_data_past_the_cap_waits_briefly_then_gets_451(app_settings, monkeypatch):
    monkeypatch.setattr(door, "DATA_SLOT_WAIT_SECONDS", 1.0, raising=False)
    async with running(app_settings(smtp_in={"max_data_sessions": 2}), roles=("smtp",)) as app, \
            clients(app.listening.smtp[1]) as connect:
        raw = [mail(subject=f"In transfer {n}") for n in range(3)]
        a, b, c = await connect(), await connect(), await connect()
        for n, client in enumerate((a, b)):
            await client.reply()
            await client.open_transaction()
            await client.send(raw[n][:100])  # both mid-message
        await c.reply()
        for command in (b"EHLO client.example.net", b"MAIL FROM:<bob@example.net>",
                        f"RCPT TO:<help@{DOMAIN}>".encode()):
            assert (await c.cmd(command)).startswith(b"250")
        assert await c.cmd(b"DATA") == b"451 4.3.2 Too many messages in transfer, try again later\r\n"

        # Asked again while full, it waits; a slot freed meanwhile lets it in.
        c.writer.write(b"DATA\r\n")
        await asyncio.sleep(0.1)
        await a.send(raw[0][100:] + b".\r\n")
        assert (await a.reply()).startswith(b"250 ")
        assert (await c.reply()).startswith(b"354")
        await c.send(raw[2] + b".\r\n")
        assert (await c.reply()).startswith(b"250 ")
        await b.send(raw[1][100:] + b".\r\n")
        assert (await b.reply()).startswith(b"250 ")
        assert len(await spool.queued(app.db, limit=10)) == 3


def _unsent(sock) -> int:  # noqa: ANN001
    """Bytes this socket has not yet handed to the peer's kernel (Linux TIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def _unread(sock) -> int:  # noqa: ANN001
    """Bytes waiting in this socket's receive queue (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


async def test_messages_in_transfer_are_streamed_to_disk_not_held_in_memory(app_settings):
    """Ten sessions parked mid-DATA with 3 MB each: the server holds far less than 30 MB."""
    sessions, line = 10, b"z" * 998 + b"\r\n"
    body = (line * 1500 + b"..a stuffed dot\r\n") * 2  # ~3 MB each, as on the wire
    wire = [f"Subject: big {n}\r\nMessage-ID: <big-{n}@example.net>\r\n\r\n".encode() + body
            for n in range(sessions)]
    sent = [threading.Event() for _ in range(sessions)]
    finish = threading.Event()

    def session(port: int, n: int) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo("client.example.net")
            client.mail("alice@example.net")
            client.rcpt(f"help@{DOMAIN}")
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.sock.sendall(wire[n])
            while _unsent(client.sock):
                finish.wait(0.01)
            sent[n].set()
            finish.wait(60)
            client.sock.sendall(b".\r\n")
            return client.getreply()

    async with running(app_settings(), roles=("smtp",)) as app:
        port = app.listening.smtp[1]
        loop = asyncio.get_running_loop()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            # One thread each (asyncio's default pool has fewer threads than sessions on 2 cores).
            pool = ThreadPoolExecutor(max_workers=sessions)
            tasks = [loop.run_in_executor(pool, session, port, n) for n in range(sessions)]
            try:
                # Parked: every byte sent has left the kernel's queues and been read by the server.
                await wait_until(lambda: all(e.is_set() for e in sent), timeout=60)
                await wait_until(lambda: all(_unread(s.transport.get_extra_info("socket")) == 0
                                             for s in app.smtp_server._sessions), timeout=30)
                await asyncio.sleep(0.2)
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                finish.set()
                answers = await asyncio.gather(*tasks)
                pool.shutdown()
        finally:
            tracemalloc.stop()
        assert held < 8_000_000, f"{held:,} bytes held for {sessions} messages of {len(body):,} bytes"
        assert [code for code, _ in answers] == [250] * sessions, answers
        stored = {e.data for e in await spool.queued(app.db, limit=50)}
    assert stored == {w.replace(b"\r\n..a stuffed", b"\r\n.a stuffed") for w in wire}


async def test_dot_stuffing_line_endings_and_long_lines_come_through_byte_identical(app_settings):
    lines = [
        b"From: alice@example.net", f"To: help@{DOMAIN}".encode(), b"Subject: edges",
        b"Message-ID: <edges-1@example.net>", b"",
        b"..a line that starts with a dot",
        b"..",  # a lone dot inside the message
        b"...two dots",
        b"bare\nLF, bare\rCR and a fake end \n.\n inside one line",
        b"x" * 10_000,  # the longest line we accept
        b".." + b"y" * 9_999,  # as long, not counting its transparent dot (RFC 5321 4.5.3.1.6)
        "caf\u00e9 \u2603".encode() + b" and 8-bit \xe9\xff\x00 bytes",
        b"ends with a dot: .",
    ]
    wire = b"\r\n".join(lines) + b"\r\n"
    expected = (wire.replace(b"\r\n..a line", b"\r\n.a line").replace(b"\r\n..\r\n", b"\r\n.\r\n")
                .replace(b"\r\n...two", b"\r\n..two").replace(b"\r\n.." + b"y", b"\r\n.y"))
    async with running(app_settings(), roles=("smtp",)) as app, clients(app.listening.smtp[1]) as connect:
        client = await connect()
        await client.reply()
        assert (await client.cmd(b"EHLO client.example.net")).startswith(b"250")
        assert (await client.cmd(b"MAIL FROM:<alice@example.net> BODY=8BITMIME SMTPUTF8")).startswith(b"250")
        assert (await client.cmd(f"RCPT TO:<help@{DOMAIN}>".encode())).startswith(b"250")
        assert (await client.cmd(b"DATA")).startswith(b"354")
        await client.send(wire + b".\r\n")
        assert (await client.reply()).startswith(b"250 ")

        # One byte longer: refused once the whole message has been read, and the session goes on.
        assert (await client.cmd(b"MAIL FROM:<alice@example.net>")).startswith(b"250")
        assert (await client.cmd(f"RCPT TO:<help@{DOMAIN}>".encode())).startswith(b"250")
        assert (await client.cmd(b"DATA")).startswith(b"354")
        await client.send(b"Subject: too long\r\n\r\n" + b"w" * 10_001 + b"\r\n.\r\n")
        assert (await client.reply()).startswith(b"500 5.5.2")
        assert (await client.cmd(b"NOOP")).startswith(b"250")
        [entry] = await spool.queued(app.db, limit=10)
    assert entry.data == expected


async def test_oversize_streamed_mail_is_read_to_the_end_then_refused(app_settings):
    async with running(app_settings(smtp_in={"max_message_bytes": 20_000}), roles=("smtp",)) as app, \
            clients(app.listening.smtp[1]) as connect:
        client = await connect()
        await client.reply()
        assert (await client.cmd(b"EHLO client.example.net")).startswith(b"250")
        await client.open_transaction()
        await client.send(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 400 + b".\r\n")
        assert (await client.reply()).startswith(b"552 5.3.4")
        assert (await client.cmd(b"NOOP")).startswith(b"250")
        assert await spool.queued(app.db, limit=10) == []


async def test_recipients_past_the_limit_get_452_and_the_earlier_ones_get_the_message(app_settings):
    async with running(app_settings(smtp_in={"max_recipients": 3}), roles=("smtp",)) as app, \
            clients(app.listening.smtp[1]) as connect:
        client = await connect()
        await client.reply()
        assert (await client.cmd(b"EHLO client.example.net")).startswith(b"250")
        assert (await client.cmd(b"MAIL FROM:<alice@example.net>")).startswith(b"250")
        answers = [await client.cmd(f"RCPT TO:<user{n}@{DOMAIN}>".encode()) for n in range(5)]
        assert [a[:3] for a in answers] == [b"250"] * 3 + [b"452"] * 2
        assert answers[3] == b"452 4.5.3 Too many recipients\r\n"
        assert (await client.cmd(b"DATA")).startswith(b"354")
        await client.send(mail() + b".\r\n")
        assert (await client.reply()).startswith(b"250 ")
        [entry] = await spool.queued(app.db, limit=10)
    assert entry.envelope_to == tuple(f"user{n}@{DOMAIN}" for n in range(3))


async def test_queued_answer_is_the_same_whether_the_mail_opens_or_joins_a_ticket(app_settings):
    """250 must not be an oracle about tickets: never a number, always the same shape."""
    async with running(app_settings(), roles=("smtp", "worker")) as app:
        port = app.listening.smtp[1]
        answers = []
        for raw, sender in ((mail(), "alice@example.net"),  # opens ticket 1
                            (mail(subject="Re: Router down [#1]", body="Still down"),  # joins it
                             "alice@example.net"),
                            (mail(subject="Re: Router down [#1]", body="Let me in",  # not hers: new
                                  from_addr="mallory@example.org"), "mallory@example.org")):
            code, reply = await asyncio.to_thread(send_mail, port, raw, mail_from=sender)
            answers.append((code, reply))
            await settle(app)
        first = await reports.show_ticket(app.db, 1, now=app.clock.now())
        assert [m["kind"] for m in first["messages"]].count("inbound") == 2
        assert len(await reports.list_tickets(app.db, now=app.clock.now())) == 2
    for code, reply in answers:
        assert code == 250 and QUEUED.fullmatch(reply), reply


async def test_a_starttls_session_counts_once_and_frees_its_place(app_settings, tmp_path, caplog):
    """STARTTLS hands the connection to a TLS layer and aiosmtpd greets it again: the session
    must still count once towards the caps, and leave them when it ends; a client whose
    handshake fails costs no error and no traceback in the log."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    settings = app_settings(smtp_in={"tls_cert": str(cert), "tls_key": str(key),
                                     "max_sessions_per_client": 2})
    async with running(settings, roles=("smtp",)) as app, clients(app.listening.smtp[1]) as connect:
        port = app.listening.smtp[1]

        def over_tls() -> smtplib.SMTP:
            client = smtplib.SMTP("127.0.0.1", port, timeout=10)
            client.ehlo("client.example.net")
            client.starttls(context=ssl._create_unverified_context())
            client.ehlo("client.example.net")
            client.sendmail("alice@example.net", [f"help@{DOMAIN}"], mail())
            return client

        tls = await asyncio.to_thread(over_tls)
        try:
            plain = await connect()
            assert (await plain.reply()).startswith(b"220 ")
            assert await (await connect()).reply() == TOO_MANY  # two sessions: the TLS one and this
        finally:
            await asyncio.to_thread(tls.quit)
        assert (await plain.cmd(b"QUIT")).startswith(b"221")
        await wait_until(lambda: not app.smtp_server._sessions, timeout=5)
        for _ in range(2):
            assert (await (await connect()).reply()).startswith(b"220 ")
        assert len(await spool.queued(app.db, limit=10)) == 1

        caplog.set_level(logging.INFO)
        for _ in range(3):
            broken = await connect("127.0.0.2")
            await broken.reply()
            assert (await broken.cmd(b"EHLO client.example.net")).startswith(b"250")
            assert (await broken.cmd(b"STARTTLS")).startswith(b"220")
            await broken.send(b"\x16\x03\x01\x00\x05not a handshake\r\n" * 3)
            assert await broken.closed_by_server()
        await wait_until(lambda: len(app.smtp_server._sessions) == 2, timeout=5)
        gc.collect()  # a future nobody looked at may log its traceback when collected
        await asyncio.sleep(0)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_clients_are_counted_by_ipv4_address_or_ipv6_64():
    assert door.client_of(("192.0.2.7", 25)) == "192.0.2.7"
    assert door.client_of(("::ffff:192.0.2.7", 25, 0, 0)) == "192.0.2.7"
    one = door.client_of(("2001:db8:1:2::1", 25, 0, 0))
    assert one == door.client_of(("2001:db8:1:2:ffff::9", 25, 0, 0)) == "2001:db8:1:2::/64"
    assert door.client_of(("2001:db8:1:3::1", 25, 0, 0)) != one
    assert door.client_of(None) == "None"


async def test_caps_the_open_file_limit_cannot_hold_are_reported_at_start(monkeypatch, caplog):
    """Past the open-file limit asyncio's accept loop meets EMFILE (and stops accepting for a
    second at a time): a configuration that allows it is named once, at start-up."""
    async def nowhere(arrival) -> None:  # noqa: ANN001
        raise AssertionError("no mail in this test")

    for limit, warned in ((1024, False), (512, True)):
        monkeypatch.setattr(door, "open_file_limit", lambda: limit)  # noqa: B023
        caplog.clear()
        handler = door.SmtpHandler(spool=nowhere, clock=Clock(), domains=[DOMAIN])
        server = door.SmtpServer(handler, host="127.0.0.1", port=0, hostname=DOMAIN,
                                 max_message_bytes=1 << 20, max_sessions=200, max_data_sessions=20)
        await server.start()
        await server.stop(timeout=1)
        assert any("open-file limit" in r.getMessage() for r in caplog.records) is warned
