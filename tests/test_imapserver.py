"""The test IMAP server itself (tests/imapserver.py): logins plain, over TLS and STARTTLS, with
XOAUTH2; the other mail client; the Deskbell/Processed hierarchy and UID MOVE; and the proxy
that freezes and cuts connections."""

from __future__ import annotations

import asyncio
import imaplib
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.imapserver import Dovecot, DovecotError, TcpProxy

MESSAGE = (b"From: alice@example.net\r\nTo: help@support.example.com\r\nSubject: Printer\r\n"
           b"Message-ID: <printer-1@example.net>\r\n\r\nIt is on fire.\r\n")


def _xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def test_plain_login_and_capabilities(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    imap = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=5)
    try:
        assert {"STARTTLS", "SASL-IR", "AUTH=PLAIN", "AUTH=LOGIN"} <= set(imap.capabilities)
        assert imap.login(user, password)[0] == "OK"
        typ, data = imap.capability()
        assert typ == "OK"
        assert {"IDLE", "MOVE", "UIDPLUS"} <= set(data[0].decode().split())
        assert imap.select("INBOX") == ("OK", [b"0"])
    finally:
        imap.logout()


def test_implicit_tls_is_verified_with_ca_file(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    with pytest.raises(ssl.SSLCertVerificationError):  # not trusted by default: ca_file matters
        imaplib.IMAP4_SSL(dovecot.host, dovecot.tls_port, ssl_context=ssl.create_default_context(),
                          timeout=5)
    context = ssl.create_default_context(cafile=dovecot.ca_file)
    imap = imaplib.IMAP4_SSL(dovecot.host, dovecot.tls_port, ssl_context=context, timeout=5)
    try:
        assert imap.login(user, password)[0] == "OK"
        assert imap.sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        imap.logout()


def test_starttls(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    imap = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=5)
    try:
        assert imap.starttls(ssl_context=dovecot.ssl_context())[0] == "OK"
        assert isinstance(imap.sock, ssl.SSLSocket)
        assert imap.login(user, password)[0] == "OK"
    finally:
        imap.logout()


def _refused(dovecot: Dovecot, attempts: list[Callable[[imaplib.IMAP4], object]]) -> list[str]:
    """Run each attempt on a connection of its own, all at once (Dovecot answers failures only
    every half second); what each was refused with."""
    def attempt(login: Callable[[imaplib.IMAP4], object]) -> str:
        imap = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=5)
        try:
            login(imap)
        except imaplib.IMAP4.error as exc:
            return str(exc)
        finally:
            imap.shutdown()
        return "accepted"

    with ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(attempt, attempts))


def test_a_wrong_password_or_user_is_refused_without_slowing_later_logins(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    other, _ = dovecot.add_user()
    started = time.monotonic()
    answers = _refused(dovecot, [lambda imap: imap.login(user, "wrong"),
                                 lambda imap: imap.login(other, password),
                                 lambda imap: imap.login("nobody-such", password)])
    assert all("AUTHENTICATIONFAILED" in answer for answer in answers), answers
    answers = _refused(dovecot, [lambda imap: imap.login(user, "wrong again")])
    assert "AUTHENTICATIONFAILED" in answers[0]
    with dovecot.client(user, password) as client:
        assert client.count() == 0
    # Dovecot answers failures within 0.5 s here; by default it would wait 2 s, then 2, 4…
    # more for each failure from the same address.
    assert time.monotonic() - started < 2


def test_users_are_fresh_and_separate(dovecot: Dovecot) -> None:
    first, first_password = dovecot.add_user()
    second, second_password = dovecot.add_user()
    assert first != second
    named, _ = dovecot.add_user("help@support.example.com")
    assert named == "help@support.example.com"
    with pytest.raises(ValueError):
        dovecot.add_user("help@support.example.com")
    with dovecot.client(first, first_password) as client:
        client.append(MESSAGE)
    with dovecot.client(second, second_password) as client:
        assert client.uids() == []


def test_client_append_uids_flags_fetch(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    with dovecot.client(user, password) as client:
        validity = client.uidvalidity("INBOX")
        assert validity > 0
        first = client.append(MESSAGE)
        second = client.append(MESSAGE.replace(b"printer-1", b"printer-2"), flags=r"\Flagged")
        assert second > first
        assert client.uids() == [first, second]
        assert client.count() == 2
        assert r"\Seen" not in client.flags(first)
        assert r"\Flagged" in client.flags(second)
        assert client.fetch(first) == MESSAGE
        assert r"\Seen" not in client.flags(first)  # BODY.PEEK[] leaves it unseen
        client.set_seen(first)
        assert r"\Seen" in client.flags(first)
        assert r"\Seen" not in client.flags(second)
        assert client.uidvalidity("INBOX") == validity
    with dovecot.client(user, password) as again:  # what the first client did is on the server
        assert again.uids() == [first, second]
        assert r"\Seen" in again.flags(first)


def test_processed_mailbox_and_uid_move(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    with dovecot.client(user, password) as client:
        uid = client.append(MESSAGE)
        client.create("Deskbell/Processed")
        assert {"Deskbell", "Deskbell/Processed"} <= set(client.list_mailboxes())  # "/" separates
        typ, data = client.imap.list('""', "Deskbell/%")
        assert typ == "OK" and data == [b'(\\HasNoChildren) "/" Deskbell/Processed'], data
        imap = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=5)
        try:
            imap.login(user, password)
            imap.select("INBOX")
            typ, data = imap.uid("MOVE", str(uid), "Deskbell/Processed")
            assert typ == "OK", data
        finally:
            imap.logout()
        assert client.uids("INBOX") == []
        assert client.count("Deskbell/Processed") == 1
        [moved] = client.uids("Deskbell/Processed")
        assert client.fetch(moved, "Deskbell/Processed") == MESSAGE
        assert client.uidvalidity("Deskbell/Processed") > 0


def test_mailbox_names_are_quoted_and_encoded(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    names = ["Deskbell/Needs review", 'Say "hi"', "Archivé/Ünïcode & more"]
    with dovecot.client(user, password) as client:
        for name in names:
            client.create(name)
            uid = client.append(MESSAGE, name)
            assert client.uids(name) == [uid]
        listed = client.list_mailboxes()
        assert set(names) <= set(listed)
        client.delete(names[0])
        assert names[0] not in client.list_mailboxes()


def test_xoauth2_with_a_local_jwt(dovecot: Dovecot) -> None:
    user, _ = dovecot.add_user()
    other, _ = dovecot.add_user()
    token = dovecot.oauth2_token(user)
    imap = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=5)
    try:
        assert "AUTH=XOAUTH2" in imap.capabilities
        assert imap.authenticate("XOAUTH2", lambda _: _xoauth2(user, token))[0] == "OK"
        assert imap.select("INBOX")[0] == "OK"
    finally:
        imap.logout()
    header, claims, signature = token.split(".")
    tampered = f"{header}.{claims}.{signature[:-4]}AAAA"
    expired = dovecot.oauth2_token(user, lifetime=-60)
    answers = _refused(dovecot, [
        lambda imap: imap.authenticate("XOAUTH2", lambda _: _xoauth2(user, expired)),
        lambda imap: imap.authenticate("XOAUTH2", lambda _: _xoauth2(other, token)),  # not theirs
        lambda imap: imap.authenticate("XOAUTH2", lambda _: _xoauth2(user, tampered)),
    ])
    assert all("AUTHENTICATIONFAILED" in answer for answer in answers), answers


def test_stop_leaves_no_process_and_extra_config_applies() -> None:
    with Dovecot(extra_config="login_greeting = Deskbell test IMAP") as server:
        with socket.create_connection((server.host, server.port), timeout=5) as conn:
            assert b"Deskbell test IMAP" in conn.makefile("rb").readline()
        assert server._process is not None
        group = server._process.pid
        directory = server.dir
        assert directory is not None and directory.exists()
    assert not directory.exists()
    assert _members(group) == []


def test_a_bad_config_is_reported_with_the_log() -> None:
    server = Dovecot(extra_config="no_such_setting_here = 1")
    with pytest.raises(DovecotError, match="no_such_setting_here"):
        server.start()
    assert server.dir is None  # cleaned up


def _members(group: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == group:
                members.append(int(entry.name))
    return members


# --- the proxy


def _raw(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=1)  # a 1 s socket timeout


def _line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


async def test_proxy_forwards_and_freezes_and_thaws(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    async with await TcpProxy.start(dovecot.host, dovecot.port) as proxy:
        conn = await asyncio.to_thread(_raw, proxy.port)
        try:
            assert (await asyncio.to_thread(_line, conn)).startswith(b"* OK")
            conn.sendall(f"a1 LOGIN {user} {password}\r\n".encode())
            while not (line := await asyncio.to_thread(_line, conn)).startswith(b"a1 "):
                pass
            assert line.startswith(b"a1 OK")
            assert proxy.connections == 1

            proxy.freeze()
            conn.sendall(b"a2 NOOP\r\n")
            late = await asyncio.to_thread(_raw, proxy.port)  # accepted, but no greeting
            try:
                answers = await asyncio.gather(asyncio.to_thread(_line, conn),
                                               asyncio.to_thread(_line, late),
                                               return_exceptions=True)
                assert [type(a) for a in answers] == [TimeoutError, TimeoutError], answers
                assert proxy.accepted == 2

                proxy.thaw()
                assert (await asyncio.to_thread(_line, conn)).startswith(b"a2 OK")  # held back
                conn.sendall(b"a3 NOOP\r\n")
                assert (await asyncio.to_thread(_line, conn)).startswith(b"a3 OK")
                assert (await asyncio.to_thread(_line, late)).startswith(b"* OK")
            finally:
                late.close()
        finally:
            conn.close()


async def test_proxy_freeze_times_out_imaplib_noop(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    async with await TcpProxy.start(dovecot.host, dovecot.port) as proxy:
        def session() -> imaplib.IMAP4:
            imap = imaplib.IMAP4("127.0.0.1", proxy.port, timeout=1)
            imap.login(user, password)
            return imap

        imap = await asyncio.to_thread(session)
        assert (await asyncio.to_thread(imap.noop))[0] == "OK"
        proxy.freeze()
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(imap.noop)
        imap.shutdown()
        proxy.thaw()
        again = await asyncio.to_thread(session)
        assert (await asyncio.to_thread(again.noop))[0] == "OK"
        await asyncio.to_thread(again.logout)


async def test_proxy_cut(dovecot: Dovecot) -> None:
    user, password = dovecot.add_user()
    async with await TcpProxy.start(dovecot.host, dovecot.port) as proxy:
        conn = await asyncio.to_thread(_raw, proxy.port)
        try:
            assert (await asyncio.to_thread(_line, conn)).startswith(b"* OK")
            assert proxy.cut() == 1
            assert proxy.connections == 0
            assert await asyncio.to_thread(conn.recv, 100) == b""  # closed, as by the server
        finally:
            conn.close()

        def session() -> imaplib.IMAP4:
            imap = imaplib.IMAP4("127.0.0.1", proxy.port, timeout=5)
            imap.login(user, password)
            return imap

        imap = await asyncio.to_thread(session)  # still accepting
        assert proxy.connections == 1
        assert proxy.cut() == 1
        # EOF, or a reset when the NOOP reached the closed socket before the client read
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            await asyncio.to_thread(imap.noop)
        imap.shutdown()

        conn = await asyncio.to_thread(_raw, proxy.port)
        try:
            assert (await asyncio.to_thread(_line, conn)).startswith(b"* OK")
            assert proxy.cut(reset=True) == 1
            with pytest.raises(ConnectionResetError):
                await asyncio.to_thread(conn.recv, 100)
        finally:
            conn.close()
        assert proxy.accepted == 3
