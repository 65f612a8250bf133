"""A real IMAP server for tests: Dovecot on loopback, a plain imaplib client, and a TCP proxy.

``Dovecot`` starts the Dovecot 2.3 of this machine (Debian's ``dovecot-imapd``: /usr/sbin/dovecot)
with a configuration of its own in a temporary directory — sockets, state, log, certificate and
mail all live there — as the user running the tests (root or not), on two free 127.0.0.1 ports:
``port`` (IMAP, offering STARTTLS) and ``tls_port`` (IMAPS). Users are made on demand with
``add_user()`` (password logins with PLAIN or LOGIN, and XOAUTH2/OAUTHBEARER with the JWTs that
``oauth2_token()`` signs); each gets a fresh, empty maildir. ``client()`` is "another mail
client" on the same mailboxes, built on the stdlib ``imaplib`` (blocking: call it through
``asyncio.to_thread`` from async code).

``TcpProxy`` sits between the code under test and the server, on the test's event loop, so a
test can make the server stop answering (``freeze``), answer again (``thaw``) or drop every
connection (``cut``).

Must not: touch the system's Dovecot (its configuration, its service, ports 143/993), use any
path outside its temporary directory, or leave a process behind after ``stop()``. ./scripts/test
installs ``dovecot-imapd`` when it is missing; the ``dovecot`` fixture in conftest.py skips
without it, except under CI, where that is a failure.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import grp
import hashlib
import hmac
import imaplib
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DOVECOT_BINARIES = ("/usr/sbin/dovecot",)


def dovecot_binary() -> str | None:
    """Where Dovecot's master binary is, or None when it is not installed."""
    found = shutil.which("dovecot")
    if found:
        return found
    for candidate in DOVECOT_BINARIES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- the certificate ----------------------------------------------------------------------------

def _make_certificate(cert_file: Path, key_file: Path) -> None:
    """A self-signed certificate for localhost and 127.0.0.1 that is its own CA, so a client
    verifies the server with ``ssl.create_default_context(cafile=cert_file)``."""
    try:
        _make_certificate_with_cryptography(cert_file, key_file)
    except ImportError:
        _make_certificate_with_openssl(cert_file, key_file)
    key_file.chmod(0o600)


def _make_certificate_with_cryptography(cert_file: Path, key_file: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = localhost
[ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _make_certificate_with_openssl(cert_file: Path, key_file: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("neither the cryptography package nor the openssl command is available "
                           "to make the test server's certificate")
    config = cert_file.with_name("openssl.cnf")
    config.write_text(_OPENSSL_CONFIG, encoding="ascii")
    subprocess.run([openssl, "req", "-x509", "-config", str(config), "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                    "-keyout", str(key_file), "-out", str(cert_file)],
                   check=True, capture_output=True)


# --- the other mail client ----------------------------------------------------------------------

def _encode_mailbox(name: str) -> str:
    """``name`` as an IMAP quoted string, in modified UTF-7 (RFC 3501 5.1.3) when not ASCII."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).rstrip(b"=").decode("ascii").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    encoded = "".join(out)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _decode_mailbox(encoded: str) -> str:
    """The inverse of modified UTF-7 (the quoting is already undone)."""
    def decode(match: re.Match[str]) -> str:
        body = match.group(1)
        if not body:
            return "&"
        b64 = body.replace(",", "/")
        return base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be")

    return re.sub(r"&([A-Za-z0-9+,]*)-", decode, encoded)


_LIST_LINE = re.compile(rb'\((?P<flags>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$', re.S)


def _unquote(value: bytes) -> str:
    text = value.decode("ascii", "replace")
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


class ImapError(Exception):
    """A command of the test's mail client was refused, or answered unexpectedly."""


class MailClient:
    """Another mail client on a user's mailboxes: stdlib imaplib, blocking, one thread at a time.

    Mailbox names are plain ``str`` (``"Deskbell/Processed"``): quoting and modified UTF-7 are
    done here. Reads select the mailbox afresh, so they see what others did meanwhile.
    """

    def __init__(self, host: str, port: int, username: str, password: str, *,
                 timeout: float = 10.0) -> None:
        self.imap = imaplib.IMAP4(host, port, timeout=timeout)
        try:
            self._ok(self.imap.login(username, password), "LOGIN")
        except BaseException:
            self.imap.shutdown()
            raise

    def __enter__(self) -> MailClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _ok(answer: tuple[str, list[Any]], what: str) -> list[Any]:
        typ, data = answer
        if typ != "OK":
            raise ImapError(f"{what}: {typ} {data!r}")
        return data

    def _select(self, mailbox: str, *, readonly: bool) -> None:
        self._ok(self.imap.select(_encode_mailbox(mailbox), readonly=readonly), f"SELECT {mailbox}")

    def _status(self, mailbox: str, item: str) -> int:
        data = self._ok(self.imap.status(_encode_mailbox(mailbox), f"({item})"), f"STATUS {mailbox}")
        match = re.search(rb"\b" + item.encode() + rb" (\d+)", data[0] or b"")
        if match is None:
            raise ImapError(f"STATUS {mailbox}: no {item} in {data!r}")
        return int(match.group(1))

    def append(self, raw: bytes, mailbox: str = "INBOX", flags: str = "") -> int:
        """Append a message (``flags`` like ``"\\\\Seen \\\\Flagged"``); its UID, from APPENDUID."""
        data = self._ok(self.imap.append(_encode_mailbox(mailbox), f"({flags})" if flags else None,
                                         None, raw), f"APPEND {mailbox}")
        match = re.search(rb"\[APPENDUID \d+ (\d+)\]", data[0] or b"")
        if match is None:
            raise ImapError(f"APPEND {mailbox}: no APPENDUID in {data!r}")
        return int(match.group(1))

    def uids(self, mailbox: str = "INBOX") -> list[int]:
        self._select(mailbox, readonly=True)
        data = self._ok(self.imap.uid("SEARCH", "ALL"), "UID SEARCH")
        return sorted(int(u) for u in b" ".join(d for d in data if d).split())

    def flags(self, uid: int, mailbox: str = "INBOX") -> set[str]:
        self._select(mailbox, readonly=True)
        data = self._ok(self.imap.uid("FETCH", str(uid), "(FLAGS)"), "UID FETCH FLAGS")
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if line and b"FLAGS" in line:
                return {f.decode() for f in imaplib.ParseFlags(line)}
        raise ImapError(f"no message with UID {uid} in {mailbox}")

    def set_seen(self, uid: int, mailbox: str = "INBOX") -> None:
        self._select(mailbox, readonly=False)
        data = self._ok(self.imap.uid("STORE", str(uid), "+FLAGS", r"(\Seen)"), "UID STORE")
        if not any(d for d in data):
            raise ImapError(f"no message with UID {uid} in {mailbox}")

    def fetch(self, uid: int, mailbox: str = "INBOX") -> bytes:
        """The whole message (BODY.PEEK[]: this does not mark it seen)."""
        self._select(mailbox, readonly=True)
        data = self._ok(self.imap.uid("FETCH", str(uid), "(BODY.PEEK[])"), "UID FETCH BODY.PEEK[]")
        for item in data:
            if isinstance(item, tuple):
                return item[1]
        raise ImapError(f"no message with UID {uid} in {mailbox}")

    def create(self, mailbox: str) -> None:
        self._ok(self.imap.create(_encode_mailbox(mailbox)), f"CREATE {mailbox}")

    def delete(self, mailbox: str) -> None:
        if self.imap.state == "SELECTED":
            self.imap.close()  # Dovecot will not delete the selected mailbox
        self._ok(self.imap.delete(_encode_mailbox(mailbox)), f"DELETE {mailbox}")

    def list_mailboxes(self) -> list[str]:
        data = self._ok(self.imap.list(), "LIST")
        names: list[str] = []
        for item in data:
            if item is None:
                continue
            if isinstance(item, tuple):  # the name came as a literal
                names.append(_decode_mailbox(item[1].decode("ascii", "replace")))
                continue
            match = _LIST_LINE.match(item)
            if match is None:
                raise ImapError(f"unexpected LIST answer {item!r}")
            names.append(_decode_mailbox(_unquote(match.group("name"))))
        return names

    def uidvalidity(self, mailbox: str = "INBOX") -> int:
        return self._status(mailbox, "UIDVALIDITY")

    def count(self, mailbox: str = "INBOX") -> int:
        return self._status(mailbox, "MESSAGES")

    def close(self) -> None:
        try:
            self.imap.logout()
        except (imaplib.IMAP4.error, OSError):
            self.imap.shutdown()


# --- the server ---------------------------------------------------------------------------------

_CONFIG = """\
# Made by tests/imapserver.py for one test session; nothing here is shared with a system Dovecot.
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = deskbell-test-{port}
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
debug_log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
mail_location = maildir:{dir}/mail/%u
mail_fsync = never

namespace inbox {{
  inbox = yes
  separator = /
}}

ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
auth_verbose = yes

# A file per user: Dovecot looks at a passwd-file again at most once a second, so a user added
# to one shared file could not log in at once.
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {dir}/users/%u
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={dir}/home/%u allow_all_users=yes
}}

# Failed logins would slow every later login from 127.0.0.1 down (2, 4, 8… s): the auth
# process skips that penalty when it cannot reach anvil's penalty socket, so move it away.
service anvil {{
  unix_listener anvil-auth-penalty {{
    path = anvil-auth-penalty-off
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
"""

# Without root there is no chroot(): the services that chroot by default must not.
_NO_CHROOT = """
service imap-login {
  chroot =
}
service imap-urlauth-login {
  chroot =
}
service anvil {
  chroot =
}
"""

_OAUTH2_CONFIG = """\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={dir}/oauth2-keys/
username_attribute = sub
"""


class DovecotError(RuntimeError):
    """Dovecot could not be started (the message ends with the tail of its log)."""


class Dovecot:
    """A throw-away Dovecot on two free loopback ports; see the module docstring."""

    host = "127.0.0.1"

    def __init__(self, extra_config: str = "", *, binary: str | None = None,
                 start_timeout: float = 10.0) -> None:
        self.binary = binary or dovecot_binary()
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.dir: Path | None = None
        self.port = 0
        self.tls_port = 0
        self.ca_file = ""
        self.config_file = ""
        self.log_file = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._users: dict[str, str] = {}
        self._serial = itertools.count(1)
        self._oauth2_key = b""

    # -- life cycle

    def start(self) -> Dovecot:
        if self._process is not None:
            raise RuntimeError("Dovecot is already started")
        if self.binary is None:
            raise FileNotFoundError("dovecot is not installed (Debian: apt-get install dovecot-imapd)")
        self.dir = Path(tempfile.mkdtemp(prefix="deskbell-dovecot-"))
        self._users = {}
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        assert self.dir is not None and self.binary is not None
        d = self.dir
        for sub in ("run", "state", "users", "mail", "home", "oauth2-keys/default/HS256"):
            (d / sub).mkdir(parents=True)
        cert, key = d / "cert.pem", d / "key.pem"
        _make_certificate(cert, key)
        self.ca_file = str(cert)
        # Local JWT validation: the key is looked up as shared/<azp>/<alg>/<kid>, with azp and
        # kid "default" when the token names none, and must be stored base64-encoded.
        self._oauth2_key = secrets.token_bytes(32)
        (d / "oauth2-keys/default/HS256/default").write_bytes(base64.b64encode(self._oauth2_key))
        (d / "oauth2.conf.ext").write_text(_OAUTH2_CONFIG.format(dir=d), encoding="utf-8")

        self.port, self.tls_port = _free_port(), _free_port()
        while self.tls_port == self.port:
            self.tls_port = _free_port()
        config = _CONFIG.format(dir=d, port=self.port, tls_port=self.tls_port, **_accounts(d))
        if os.geteuid() != 0:
            config += _NO_CHROOT
        if self.extra_config:
            config += "\n# extra_config\n" + self.extra_config.rstrip("\n") + "\n"
        self.config_file = str(d / "dovecot.conf")
        Path(self.config_file).write_text(config, encoding="utf-8")
        self.log_file = str(d / "dovecot.log")

        output = open(d / "dovecot.out", "wb")
        try:
            # The master stays in the foreground (-F) under a small reaper of ours, in a session
            # and process group of their own that hold every process Dovecot starts.
            self._process = subprocess.Popen(
                [sys.executable, "-c", _REAPER, self.binary, "-F", "-c", self.config_file],
                stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True)
        finally:
            output.close()
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        """Until the IMAP port greets (the login process has its auth connection) and the
        IMAPS port accepts connections."""
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        waiting = [self.port, self.tls_port]
        last_error = ""
        while waiting:
            if self._process.poll() is not None:
                raise DovecotError(f"dovecot exited at start (status {self._process.returncode})"
                                   f"\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, waiting[0]), timeout=1) as conn:
                    if waiting[0] == self.port:
                        greeting = conn.makefile("rb").readline()
                        if not greeting.startswith(b"* OK"):
                            raise OSError(f"greeting {greeting!r}")
                    waiting.pop(0)
                    continue
            except OSError as exc:
                last_error = str(exc)
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot did not serve 127.0.0.1:{waiting[0]} within "
                                   f"{self.start_timeout:g} s ({last_error})\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Dovecot's log and of what it printed, for error messages."""
        if self.dir is None:
            return "(no log)"
        parts = []
        for name in ("dovecot.out", "dovecot.log"):
            path = self.dir / name
            if path.exists():
                text = path.read_text("utf-8", "replace").splitlines()[-lines:]
                if text:
                    parts.append(f"--- {name}:\n" + "\n".join(text))
        return "\n".join(parts) or "(the log is empty)"

    def stop(self) -> None:
        """Stop the master and everything it started, and remove the temporary directory."""
        process, self._process = self._process, None
        if process is not None:
            self._stop(process)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        # The reaper exits once every Dovecot process has exited, and is not reaped by us until
        # then: so its pid, which is the process group's id, cannot be reused meanwhile, and
        # signalling the group only ever reaches what is left of ours.
        #
        # First SIGTERM to the whole group: the reaper passes it on to the master (what
        # `dovecot stop` does), and the other processes stop at once rather than when they
        # notice the master is gone (the master waits up to 5 s for them, then 1 s more). Again
        # every 0.2 s: a master that is shutting down may still start a login process.
        group = process.pid
        deadline = time.monotonic() + 0.5
        sent = 0.0
        while not _exited(group) and time.monotonic() < deadline:
            if time.monotonic() - sent >= 0.2:
                _signal_group(group, signal.SIGTERM)
                sent = time.monotonic()
            time.sleep(0.01)
        # Then SIGKILL to all of them but the reaper, which reaps them (they are its
        # descendants) and exits: nothing is left, not even a zombie that a PID 1 which does not
        # reap (as in many containers) would keep.
        deadline = time.monotonic() + 5
        while not _exited(group) and time.monotonic() < deadline:
            if not _kill_members(group, but=group):
                break  # no /proc to list them: the group as a whole, below
            time.sleep(0.01)
        _signal_group(group, signal.SIGKILL)  # whatever is left, if anything
        process.wait(timeout=10)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- users

    def add_user(self, name: str | None = None) -> tuple[str, str]:
        """A new user with a new password and an empty mailbox: ``(username, password)``."""
        if self.dir is None:
            raise RuntimeError("start Dovecot first")
        if name is None:
            name = f"user{next(self._serial)}"
            while name in self._users:
                name = f"user{next(self._serial)}"
        elif name in self._users:
            raise ValueError(f"user {name!r} exists already")
        if not re.fullmatch(r"[A-Za-z0-9._@-]+", name):
            raise ValueError(f"unusable user name {name!r}")
        password = secrets.token_urlsafe(12)
        self._users[name] = password
        fresh = self.dir / "users" / f".{name}.new"
        fresh.write_text(f"{name}:{{PLAIN}}{password}::::::\n", encoding="utf-8")
        os.replace(fresh, self.dir / "users" / name)
        return name, password

    def oauth2_token(self, username: str, *, lifetime: float = 3600.0) -> str:
        """A JWT (HS256) that Dovecot accepts for ``username`` with XOAUTH2 or OAUTHBEARER;
        a negative ``lifetime`` makes one that has expired."""
        if not self._oauth2_key:
            raise RuntimeError("start Dovecot first")
        now = int(time.time())
        header = {"alg": "HS256", "typ": "JWT"}
        expires = now + int(lifetime)
        claims = {"sub": username, "iat": min(now, expires) - 1, "exp": expires}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = hmac.new(self._oauth2_key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + _b64url(signature)

    # -- clients

    def client(self, username: str, password: str, *, timeout: float = 10.0) -> MailClient:
        """Another mail client, logged in as ``username`` over plain IMAP (see ``MailClient``)."""
        return MailClient(self.host, self.port, username, password, timeout=timeout)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and checks the host name)."""
        return ssl.create_default_context(cafile=self.ca_file)


# Runs Dovecot's master as its child and reaps every process of Dovecot's that is orphaned
# (PR_SET_CHILD_SUBREAPER), so that none is left a zombie where PID 1 does not reap (containers,
# VMs), and exits when all of them have: so its exit means none of them is left. It passes
# SIGTERM and SIGINT on to the master, and gets SIGTERM itself when the test process dies.
_REAPER = """\
import ctypes, os, signal, sys
parent = os.getppid()
try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
master = os.fork()
if master == 0:
    try:
        os.execv(sys.argv[1], sys.argv[1:])
    except OSError as exc:
        print(f"cannot run {sys.argv[1]}: {exc}", file=sys.stderr, flush=True)
    os._exit(127)

def forward(signo, frame):
    try:
        os.kill(master, signo)
    except ProcessLookupError:
        pass

signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
if os.getppid() != parent:
    forward(signal.SIGTERM, None)
code = 0
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == master:
        code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def _accounts(directory: Path) -> dict[str, Any]:
    """Who Dovecot's processes run as. Not root, everything runs as the user running the tests.
    As root: the internal services (auth, config, anvil…) stay root; the login processes must not
    be root (imap-login refuses), so they run as Debian's ``dovenull`` (else ``nobody``) in
    Dovecot's usual chroot; and mail access as root is refused, so the mailboxes belong to
    ``nobody``, who may enter the temporary directory but not list or read it."""
    uid, gid = os.geteuid(), os.getegid()
    user, group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
    if uid != 0:
        return {"internal_user": user, "internal_group": group, "login_user": user,
                "mail_uid": uid, "mail_gid": gid}
    try:
        nobody = pwd.getpwnam("nobody")
        mail_uid, mail_gid = nobody.pw_uid, nobody.pw_gid
    except KeyError:
        mail_uid = mail_gid = 65534
    try:
        login_user = pwd.getpwnam("dovenull").pw_name
    except KeyError:
        login_user = "nobody"
    directory.chmod(0o711)
    for sub in ("mail", "home"):
        os.chown(directory / sub, mail_uid, mail_gid)
    return {"internal_user": user, "internal_group": group, "login_user": login_user,
            "mail_uid": mail_uid, "mail_gid": mail_gid}


def _signal_group(group: int, signo: int) -> None:
    try:
        os.killpg(group, signo)
    except ProcessLookupError:
        pass


def _kill_members(group: int, *, but: int) -> bool:
    """SIGKILL every process of process group ``group`` except ``but``; False without /proc.

    Each is pinned with a pidfd (Linux 5.3+) and its group checked again before it is signalled,
    so a pid freed and reused meanwhile is never hit."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for name in entries:
        if not name.isdigit() or int(name) == but:
            continue
        pid = int(name)
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                if int(f.read().rsplit(b")", 1)[1].split()[2]) != group:
                    continue
            pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        except (OSError, ValueError, IndexError):
            continue
        try:
            if os.getpgid(pid) == group:
                if pidfd is not None:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        finally:
            if pidfd is not None:
                os.close(pidfd)
    return True


def _exited(pid: int) -> bool:
    """True once child ``pid`` has exited (it is left a zombie, not reaped)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


# --- the proxy ----------------------------------------------------------------------------------

class TcpProxy:
    """A TCP forwarder from 127.0.0.1 (a port of its own) to one target, on the running loop.

    ``freeze()`` stops forwarding both ways while every socket stays open: a server that stops
    answering (connections made meanwhile are accepted, then hang too, as with a black-holed
    server). ``thaw()`` resumes, delivering what was held back. ``cut()`` closes every current
    connection at once, both sides. ``connections`` is how many are open now, ``accepted`` how
    many were ever accepted.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()

    @classmethod
    async def start(cls, target_host: str, target_port: int) -> TcpProxy:
        proxy = cls(target_host, target_port)
        proxy._server = await asyncio.start_server(proxy._accept, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    @property
    def connections(self) -> int:
        return len(self._links)

    @property
    def frozen(self) -> bool:
        return not self._flowing.is_set()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def cut(self, *, reset: bool = False) -> int:
        """Close every current connection on both sides, dropping what is in flight: the client
        reads end-of-stream (with ``reset``, a TCP RST: "connection reset by peer"). Returns how
        many were cut. New connections are still accepted (and forwarded unless frozen)."""
        links, self._links = list(self._links), set()
        for link in links:
            link.close(reset=reset)
        return len(links)

    async def close(self) -> None:
        """Stop listening and cut every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = [link.task for link in self._links if link.task is not None]
        self.cut()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> TcpProxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(client_writer, asyncio.current_task())
        self._links.add(link)
        try:
            server_reader, link.server = await asyncio.open_connection(self.target_host, self.target_port)
            await asyncio.gather(self._pump(client_reader, link.server, link),
                                 self._pump(server_reader, client_writer, link))
        except (OSError, asyncio.CancelledError):
            pass  # the target refused, or cut(): nothing to report to the loop
        finally:
            self._links.discard(link)
            link.close(reset=False)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    link: _Link) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                await self._flowing.wait()  # what arrived while frozen waits for thaw()
                if not data:  # a half-close is passed on; the other way goes on
                    if not writer.is_closing() and writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            self._links.discard(link)
            link.close(reset=False)  # both ways, and the other pump


class _Link:
    """One proxied connection: its two sockets and the task forwarding between them."""

    def __init__(self, client: asyncio.StreamWriter, task: asyncio.Task[Any] | None) -> None:
        self.client = client
        self.server: asyncio.StreamWriter | None = None
        self.task = task

    def close(self, *, reset: bool) -> None:
        for writer in (self.client, self.server):
            if writer is None or writer.transport.is_closing():
                continue
            sock = writer.transport.get_extra_info("socket")
            if reset and sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            writer.transport.abort()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
