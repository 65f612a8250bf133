"""Adapter helper: raw RFC 5322 bytes → InboundMessage. No ticket logic, no I/O.

``parse_email`` is shared by the SMTP and IMAP doors. It must not touch the database, the
network or the clock, must not decide threading or routing (``core/threading.py`` does), and
must not give up on a message because part of it is broken: real mail has wrong charsets, raw
8-bit headers, missing boundaries and bad base64, and all of it still reaches a ticket with the
complaints recorded in ``defects``. Only bytes that are not an email at all raise
``MailParseError`` (the caller quarantines them, DESIGN §2.4); no other exception leaves here.
Nor may one message stall the door: input shaped to make the stdlib parser, tnefparse,
inscriptis or the reply parser slow or huge is cut down first, and each cut is a defect.
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.utils
import hashlib
import io
import mimetypes
import quopri
import re
import unicodedata
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy

import inscriptis
import lxml.etree
import lxml.html
import tnefparse
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from mailparser_reply import EmailReplyParser
from mailparser_reply.parser import EmailMessage

from bot.core.errors import MailParseError
from bot.messages import Attachment, Bounce, InboundMessage

__all__ = ["parse_email"]

# A tree this deep is an attack or a broken generator, never a real client; past it the parts are
# skipped (with a defect) so neither our walk nor the stdlib generator can hit RecursionError.
MAX_DEPTH = 100
# Same idea for width: a message with thousands of parts is not worth walking to the end.
MAX_PARTS = 1000
# The reply parser's regexes are super-linear on long text; only this many characters are split,
# the rest goes to ``quoted`` untouched.
MAX_REPLY_PARSE = 100_000
_REPLY_LINE_MAX = 200  # longer lines are never reply headers (see _reply_feed_line)
_REPLY_STAND_IN = 40
_REPLY_COST_MAX = 8_000_000  # Σ len(line fed)² ≈ 0.25 s of the parser's regexes at worst
MAX_DEFECTS = 50
# Parsing-cost limits for the stdlib parser (see _defuse).
MAX_MIME_FIELD = 4096
MAX_FIELD_PARAMS = 64  # a long RFC 2231 file name needs a dozen continuations
MAX_MESSAGE_PARAMS = 2000
MAX_DELIMITER_LINES = MAX_PARTS + 100  # one per part, plus closing lines
MAX_ADDRESS_HEADER = 4096
MAX_NAME_BYTES = 255

# Languages whose "On … wrote:" / "From: … Sent: …" headers and sign-offs the reply parser knows.
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs")

# Mislabelled charsets decode better as their supersets (WHATWG Encoding Standard label table):
# Outlook says ks_c_5601-1987 and sends cp949, "gb2312" mail is usually GBK, iso-8859-1 is cp1252.
_CHARSET_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "tis-620": "cp874",
    "windows-874": "cp874",
}

# Plain parts that only point at the HTML part (newsletters, HTML-only clients).
_STUB_PHRASES = (
    "view this email in your browser",
    "view this email in a browser",
    "view it in your browser",
    "view this message in your browser",
    "view in browser",
    "this message is in html",
    "this is an html message",
    "this email is in html",
    "this is a multi-part message in mime format",
    "does not support html",
    "requires an html",
    "html-capable",
    "html capable",
)
_STUB_MAX_CHARS = 400  # a longer plain part is a real text version even if it has such a line

# HTML rendering limits (see _html_to_text).
MAX_HTML_CHARS = 4_000_000
_TABLE_BLOCKS = {"table", "thead", "tbody", "tfoot", "tr", "caption"}


def _unpadded_css() -> dict:
    css = deepcopy(CSS_PROFILES["relaxed"])
    for element in css.values():
        element.padding_inline = 0
    return css


_INSCRIPTIS_CONFIG = ParserConfig(css=_unpadded_css())

# RFC 3834 / DESIGN §2.6: values of these headers that mark mail as automatic.
_PRECEDENCE_AUTO = {"bulk", "junk", "list", "auto_reply"}
_SUPPRESS_AUTO = {"oof", "autoreply", "all"}
# Local parts of bounce senders (RFC 5321 §4.5.1 postmaster; "MAILER-DAEMON" by Sendmail/Postfix).
_DAEMON_LOCALPARTS = {"mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster", "mail-daemon"}
# RFC 3464 §2.3.3 actions that do not mean the message failed.
_DSN_NOT_FAILED = {"delayed", "delivered", "relayed", "expanded"}
# The same news in prose (Exim, Sendmail warnings): delivery still being tried.
_DELAY_PHRASES = (
    "has not yet been delivered",
    "warning message only",
    "delivery has been delayed",
    "will continue to try",
    "will keep trying",
)

# The stdlib's own table, not the host's mime.types: the same names on every host.
_MIME = mimetypes.MimeTypes()
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/rfc822-headers": ".txt",
    "message/delivery-status": ".txt",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/octet-stream": ".bin",
    "image/jpeg": ".jpg",
}
_TNEF_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}

# Message ids inside angle brackets, junk around them ignored:
# "<a@x> (Bob's message of Monday) <b@y>" → ["a@x", "b@y"]
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
# A bare id some mailers send without brackets: "1234.5678@mail.example.com"
_BARE_ID = re.compile(r"^[^<>\s]+@[^<>\s]+$")
# A Content-Type or Content-Disposition field at the start of a line (not the first one):
# b"\r\nContent-Type: text/plain; p0=v" → matches at the b"\n"
_MIME_FIELD = re.compile(rb"\ncontent-(?:type|disposition):", re.IGNORECASE)
# RFC 5322 §2.2.3 unfolding: "Router\r\n down" → "Router down"
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# RFC 2047 encoded word, tolerating spaces inside (seen from broken clients); the text part
# cannot hold "?" (Q writes =3F), which also keeps the scan linear:
# "=?utf-8?q?Caf=C3=A9?=" → ("utf-8", "q", "Caf=C3=A9")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
# Whitespace between two adjacent encoded words is dropped (RFC 2047 §6.2):
# "=?utf-8?q?a?= \r\n =?utf-8?q?b?=" → "ab"
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?[^?\s]+\?[bBqQ]\?)")
# Characters outside the base64 alphabet: "YWJj\n ZA==" → "YWJjZA"
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
# An address anywhere in a broken header: "Bob Smith bob@example.com (home)" → "bob@example.com".
# The lookbehind starts a match only at a token's first character, so a long run without "@"
# is scanned once, not once per position.
_ADDR_IN_TEXT = re.compile(r"(?<![^\s<>()\[\]\"',;:])[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
# A plausible addr-spec after getaddresses(): "alice@example.net"
_ADDR_SPEC = re.compile(r"^[^\s<>@]+@[^\s<>@]+$")
# Original Message-ID quoted in a non-standard bounce body:
# "   Message-ID: <t42.7.x9@reply.example.com>" → "t42.7.x9@reply.example.com"
_BODY_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
# RFC 3463 enhanced status code in bounce prose: "550 5.1.1 <bob@x>: user unknown" → "5.1.1"
_STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")

# Exceptions the stdlib header machinery is known to raise on hostile input (CPython has had
# IndexError/AttributeError bugs in ``_header_value_parser``); a part that triggers one is
# degraded, not fatal.
_HEADER_ERRORS = (
    email.errors.MessageError, ValueError, IndexError, AttributeError, TypeError, LookupError
)


@dataclass
class _Walk:
    """What one pass over the MIME tree collects besides the text."""

    defects: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts: int = 0
    too_deep: bool = False
    too_wide: bool = False
    headers_only: bool = False  # the stdlib parser gave up on the body (see _parse_with_fallbacks)
    # Content-Type of each part, parsed once: the stdlib re-parses the header on every access.
    content_types: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def defect(self, text: str) -> None:
        if text not in self.defects and len(self.defects) < MAX_DEFECTS:
            self.defects.append(text)


def parse_email(
    raw: bytes,
    *,
    received_at: datetime,
    envelope_sender: str | None = None,
    recipients: tuple[str, ...] = (),
    door: str = "smtp",
    our_message_id_domain: str | None = None,
) -> InboundMessage:
    """Turn the bytes of one received mail into an ``InboundMessage`` (channel ``email``).

    ``our_message_id_domain`` (the right-hand side of the Message-IDs we generate) lets a bounce
    that quotes several ids name ours. Raises ``MailParseError`` only, and only when ``raw`` is
    not an email (empty, no header section) or an unexpected bug occurs; never anything else.
    """
    try:
        return _parse(
            raw,
            received_at=received_at,
            envelope_sender=envelope_sender,
            recipients=tuple(recipients),
            door=door,
            our_domain=(our_message_id_domain or "").strip().lower() or None,
        )
    except MailParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - one message's boundary: quarantine it, keep serving
        reason = f"{type(exc).__name__}: {exc}"[:300]
        raise MailParseError(f"unexpected error while parsing mail: {reason}") from exc


# --------------------------------------------------------------------------- top level


def _parse(
    raw: bytes,
    *,
    received_at: datetime,
    envelope_sender: str | None,
    recipients: tuple[str, ...],
    door: str,
    our_domain: str | None,
) -> InboundMessage:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise MailParseError(f"raw mail must be bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    if not raw.strip():
        raise MailParseError("empty input: not an email")

    walk = _Walk()
    msg = _parse_bytes(raw, walk)

    from_name, from_addr = _first_address(msg, "From", walk)
    if not from_addr:
        walk.defect("no usable From address")
        from_name, from_addr = _first_address(msg, "Sender", walk)
    if not from_addr and envelope_sender:
        from_name, from_addr = "", envelope_sender.strip().strip("<>").lower()
    if not from_addr:
        walk.defect("no sender address at all")

    _, reply_addr = _first_address(msg, "Reply-To", walk)
    reply_to = reply_addr if reply_addr and reply_addr != from_addr else None

    message_id = _message_id(msg, walk)
    source_id = message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    in_reply_to = _ids(_values(msg, "In-Reply-To"))
    references = _ids(_values(msg, "References"))
    subject = _collapse(_decoded_header(msg, "Subject", walk))

    full_text = "" if walk.headers_only else _clean(_render_body(msg, walk))
    body, quoted = _split_reply(full_text)

    bounce, dsn_reason = _find_bounce(
        msg, walk, full_text, in_reply_to, references, from_addr, our_domain
    )
    auto = dsn_reason or _auto_submitted(msg, walk, envelope_sender, from_addr)

    _note_mime_defects(msg, walk)
    return InboundMessage(
        channel="email",
        source_id=source_id,
        raw=raw,
        received_at=received_at,
        sender_address=from_addr,
        sender_name=from_name,
        reply_to=reply_to,
        envelope_sender=envelope_sender,
        recipients=recipients,
        subject=subject,
        body=body,
        quoted=quoted,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        attachments=tuple(walk.attachments),
        auto_submitted=auto,
        bounce=bounce,
        loop=bool(_values(msg, "X-Deskbell-Loop")),
        defects=tuple(walk.defects),
        door=door,
    )


def _parse_bytes(raw: bytes, walk: _Walk) -> Message:
    """Parse with the modern policy, falling back to the lenient legacy one, then headers only."""
    data = _defuse(raw, walk)
    # Some relays prepend blank lines; the header section then looks empty to the parser.
    candidates = [data]
    if data[:1] in (b"\r", b"\n", b" ", b"\t"):
        candidates.append(data.lstrip(b"\r\n \t"))
    for data in candidates:
        msg = _parse_with_fallbacks(data, walk)
        if msg.keys():
            return msg
    raise MailParseError("no header section: not an email")


def _parse_with_fallbacks(data: bytes, walk: _Walk) -> Message:
    try:
        return BytesParser(policy=default_policy).parsebytes(data)
    except RecursionError:
        # The stdlib parser recurses once per multipart level and gives up near 1,000 levels.
        return _parse_headers_only(data, walk)
    except _HEADER_ERRORS as exc:
        walk.defect(f"modern parser failed ({type(exc).__name__}); used compat32")
    try:
        return BytesParser(policy=compat32).parsebytes(data)
    except RecursionError:
        return _parse_headers_only(data, walk)


def _defuse(raw: bytes, walk: _Walk) -> bytes:
    """The bytes the stdlib parser gets: ``raw`` minus what makes it slow, never more.

    The stdlib re-parses Content-Type/-Disposition on every access at ~60 µs per parameter
    (20,000 parameters: seconds per access) and spends ~170 µs per MIME part. So a field keeps
    at most MAX_MIME_FIELD bytes and MAX_FIELD_PARAMS parameters, the message at most
    MAX_MESSAGE_PARAMS in all, and a message with thousands of delimiter lines is parsed up to
    the limit. ``InboundMessage.raw`` is always the untouched input.
    """
    pieces: list[bytes] = []
    last = 0
    budget = MAX_MESSAGE_PARAMS
    starts = [m.start() + 1 for m in _MIME_FIELD.finditer(raw)]
    if raw[:20].lower().startswith((b"content-type:", b"content-disposition:")):
        starts.insert(0, 0)
    for start in starts:
        if start < last:
            continue
        end = _field_end(raw, start)
        allowed = max(2, min(MAX_FIELD_PARAMS, budget))  # type/boundary survive an empty budget
        cut = min(end, start + MAX_MIME_FIELD)
        semicolon = start
        for _ in range(allowed + 1):
            semicolon = raw.find(b";", semicolon + 1, cut)
            if semicolon == -1:
                break
        budget -= allowed if semicolon != -1 else raw.count(b";", start, cut)
        if semicolon != -1:
            cut = semicolon  # drop the parameter that went over, and all after it
        elif cut < end:
            cut = max(raw.rfind(b";", start, cut), start + 1)
        if cut < end:
            pieces.append(raw[last:cut])
            last = end
            walk.defect("oversized MIME header field cut for parsing")
    data = b"".join(pieces) + raw[last:] if pieces else raw
    if data.count(b"\n--") > MAX_DELIMITER_LINES:
        position = -1
        for _ in range(MAX_DELIMITER_LINES):
            position = data.find(b"\n--", position + 1)
        data = data[:position]
        walk.defect(f"more than {MAX_DELIMITER_LINES} MIME delimiter lines; the rest not parsed")
    return data


def _field_end(data: bytes, start: int) -> int:
    """Where the header field starting at ``start`` ends (before its last CRLF), folding included."""
    position = data.find(b"\n", start)
    while position != -1 and data[position + 1 : position + 2] in (b" ", b"\t"):
        position = data.find(b"\n", position + 1)
    if position == -1:
        return len(data)
    return position - 1 if data[position - 1 : position] == b"\r" else position


def _parse_headers_only(data: bytes, walk: _Walk) -> Message:
    walk.headers_only = True
    walk.defect("MIME nesting too deep to parse; body not extracted")
    return BytesParser(policy=compat32).parsebytes(data, headersonly=True)


def _note_mime_defects(msg: Message, walk: _Walk) -> None:
    for part, _depth in _iter_parts(msg, walk):
        for defect in getattr(part, "defects", ()):
            walk.defect(f"mime: {type(defect).__name__}")


def _iter_parts(msg: Message, walk: _Walk):
    """Every part of the tree, parents first, without recursion and without entering attached
    messages (those are attachments, not our structure)."""
    stack = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        if depth >= MAX_DEPTH or not part.is_multipart():
            continue
        if _content_type(part, walk).startswith("message/"):
            continue
        children = part.get_payload()
        if isinstance(children, list):
            kids = [child for child in children if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(kids))


# --------------------------------------------------------------------------- headers


def _values(msg: Message, name: str) -> list[str]:
    """Raw values of every ``name`` header, unparsed (8-bit bytes still surrogate-escaped)."""
    lname = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == lname]


def _first_value(msg: Message, name: str, walk: _Walk) -> str | None:
    values = _values(msg, name)
    if len(values) > 1:
        walk.defect(f"duplicate {name} header; first used")
    return values[0] if values else None


def _unfold(value: str) -> str:
    return _FOLD.sub("", value).replace("\r", "").replace("\n", " ")


def _fix_8bit(value: str, name: str, walk: _Walk) -> str:
    """Undeclared 8-bit bytes in a header (RFC 5322 forbids them, clients send them anyway):
    try UTF-8 (RFC 6532), then cp1252."""
    if value.isascii():
        return value
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value  # already text (not from bytes)
    try:
        text = data.decode("utf-8")
        walk.defect(f"8-bit {name} header decoded as utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        walk.defect(f"8-bit {name} header decoded as cp1252")
    return text


def _decode_words(text: str, walk: _Walk) -> str:
    """RFC 2047 encoded words → text, whatever their charset or encoding errors."""
    if "=?" not in text:
        return text
    text = _BETWEEN_WORDS.sub("", text)

    def decode(match: re.Match[str]) -> str:
        charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
        charset = charset.split("*", 1)[0]  # RFC 2231 §5 language suffix: "utf-8*en"
        if encoding == "b":
            data = _b64decode(payload.encode("ascii", "replace"))
        else:
            data = quopri.decodestring(payload.encode("utf-8", "surrogateescape"), header=True)
        return _decode_bytes(data, charset, walk, "encoded word")

    return _ENCODED_WORD.sub(decode, text)


def _decoded_header(msg: Message, name: str, walk: _Walk) -> str:
    value = _first_value(msg, name, walk)
    if value is None:
        return ""
    return _clean(_decode_words(_fix_8bit(_unfold(value), name, walk), walk))


def _first_address(msg: Message, name: str, walk: _Walk) -> tuple[str, str]:
    """(display name, lower-cased addr-spec) of the first address in ``name``, or ("", "")."""
    values = _values(msg, name)
    if len(values) > 1:
        walk.defect(f"duplicate {name} header; first usable one used")
    for value in values:
        # A real address header is short; a huge one would only feed quadratic parsing.
        text = _fix_8bit(_unfold(value[:MAX_ADDRESS_HEADER]), name, walk)
        for display, addr in email.utils.getaddresses([text]):
            addr = addr.strip().strip("<>").strip()
            if _ADDR_SPEC.match(addr):
                return _collapse(_clean(_decode_words(display, walk))), addr.lower()
        found = _ADDR_IN_TEXT.search(text)
        if found:
            walk.defect(f"malformed {name} header; address picked out of it")
            return "", found.group(0).rstrip(".").lower()
    return "", ""


def _message_id(msg: Message, walk: _Walk) -> str | None:
    value = _first_value(msg, "Message-ID", walk)
    if value is None:
        walk.defect("no Message-ID")
        return None
    value = _unfold(value).strip()
    found = _ANGLE_ID.search(value)
    candidate = found.group(1) if found else value
    # Ids without "@" ("<1>", "<12345>") collide across senders and would make a new message
    # look like a replay of an old one (DESIGN §2.2), so they count as absent.
    if len(candidate) <= 998 and candidate.isascii() and _BARE_ID.match(candidate):
        return candidate
    walk.defect("unusable Message-ID; raw bytes hashed instead")
    return None


def _ids(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        for found in _ANGLE_ID.findall(_unfold(value)):
            if found.isascii():
                seen.setdefault(found, None)
    return tuple(seen)


# --------------------------------------------------------------------------- text


def _b64decode(data: bytes) -> bytes:
    """Base64 that survives junk characters and missing or extra padding."""
    data = _NOT_BASE64.sub(b"", data)
    if len(data) % 4 == 1:
        data = data[:-1]  # a lone trailing sextet carries no full byte
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return b""


def _decode_bytes(data: bytes, charset: str | None, walk: _Walk, where: str) -> str:
    """Declared charset, then UTF-8, then cp1252 with replacement; a fallback is a defect."""
    declared = (charset or "").strip().strip("\"'").lower() or None
    tries = []
    if declared:
        tries.append(_CHARSET_SUPERSETS.get(declared, declared))
    tries.append("utf-8")
    for candidate in tries:
        try:
            text = data.decode(candidate)
        except (LookupError, ValueError):  # unknown charset, or bytes it cannot decode
            continue
        if declared and candidate == "utf-8" and tries[0] != "utf-8":
            walk.defect(f"{where}: charset {declared!r} failed; decoded as utf-8")
        elif not declared and not data.isascii():
            walk.defect(f"{where}: undeclared 8-bit charset; decoded as utf-8")
        return text
    walk.defect(f"{where}: charset {declared or 'us-ascii'!r} failed; decoded as cp1252")
    return data.decode("cp1252", errors="replace")


def _clean(text: str) -> str:
    """No NUL (PostgreSQL text refuses it) and no lone surrogates (UTF-7 can produce them)."""
    text = text.replace("\x00", "")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _visible_len(text: str) -> int:
    return len("".join(text.split()))


def _html_to_text(html: str, walk: _Walk) -> str:
    """Readable text of an HTML part, by inscriptis on a defused copy of the document.

    Inscriptis pads every row of a table to its widest cell and indents by the sum of nested
    paddings (up to 100,000 em each), so 70 KB of crafted HTML renders to 20 MB of spaces.
    Before rendering, tables become plain blocks, inline styles keep only ``display`` (hidden
    preheaders stay hidden) and the CSS profile has no padding, which keeps the text linear in
    the input.
    """
    if len(html) > MAX_HTML_CHARS:
        walk.defect(f"HTML part longer than {MAX_HTML_CHARS} characters; rest not rendered")
        html = html[:MAX_HTML_CHARS]
    html = html.lstrip()
    if html.startswith("<?xml"):
        # lxml refuses a str that carries an XML encoding declaration.
        html = html[html.find("?>") + 2 :] if "?>" in html else ""
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return ""  # no elements at all ("Document is empty")
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        tag = element.tag.lower()
        if tag in _TABLE_BLOCKS:
            element.tag = "div"
        elif tag in ("td", "th"):
            element.tag = "span"
            element.tail = " " + (element.tail or "")
        for attribute in ("align", "valign"):
            element.attrib.pop(attribute, None)
        style = element.attrib.pop("style", None)
        if style:
            rules = style.split(";")
            kept = [rule for rule in rules if rule.partition(":")[0].strip().lower() == "display"]
            if kept:
                element.set("style", ";".join(kept))
    text = inscriptis.get_text(lxml.html.tostring(tree, encoding="unicode"), _INSCRIPTIS_CONFIG)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines of the same quote depth."""
    out: list[str] = []
    pending: tuple[int, str] | None = None  # a flowed paragraph still open: (depth, text)

    def emit(depth: int, content: str) -> None:
        out.append(">" * depth + (" " if depth and content else "") + content)

    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # §4.4 space-stuffing, or the space after the quote marks
        flowed = content.endswith(" ") and content != "-- "  # §4.3: the sig separator never flows
        if flowed and delsp:
            content = content[:-1]  # §4.2 DelSp=yes: the space was added by the wrapper
        if pending is not None:
            if pending[0] == depth:
                content = pending[1] + content
            else:
                emit(*pending)  # §4.5: a quote-depth change ends the paragraph
            pending = None
        if flowed:
            pending = (depth, content)
        else:
            emit(depth, content)
    if pending is not None:
        emit(*pending)
    return "\n".join(out)


def _is_stub(plain: str, html_text: str) -> bool:
    """A plain part that is empty or merely points at the HTML part (DESIGN §3)."""
    plain_len = _visible_len(plain)
    if plain_len == 0:
        return True
    html_len = _visible_len(html_text)
    if html_len and plain_len * 4 < html_len:
        return True
    if plain_len <= _STUB_MAX_CHARS:
        folded = _collapse(plain).lower()
        return any(phrase in folded for phrase in _STUB_PHRASES)
    return False


# --------------------------------------------------------------------------- MIME walk


def _render_body(msg: Message, walk: _Walk) -> str:
    text, _kind = _render(msg, 0, walk, root=True)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _render(part: Message, depth: int, walk: _Walk, *, root: bool = False) -> tuple[str, str]:
    """Readable text of a subtree and its kind ("plain", "html" or ""); collects attachments.

    Recursion is bounded by MAX_DEPTH (well under Python's limit), parts by MAX_PARTS.
    """
    if depth > MAX_DEPTH:
        if not walk.too_deep:
            walk.too_deep = True
            walk.defect(f"MIME nesting deeper than {MAX_DEPTH}; inner parts skipped")
        return "", ""
    walk.parts += 1
    if walk.parts > MAX_PARTS:
        if not walk.too_wide:
            walk.too_wide = True
            walk.defect(f"more than {MAX_PARTS} MIME parts; the rest skipped")
        return "", ""

    ctype = _content_type(part, walk)
    maintype = ctype.split("/", 1)[0]

    if maintype == "multipart" and part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        rendered = [_render(child, depth + 1, walk) for child in children]
        if ctype == "multipart/alternative":
            return _choose_alternative(rendered)
        texts = [text for text, _ in rendered if text.strip()]
        kinds = {kind for _, kind in rendered}
        return "\n\n".join(texts), "html" if "html" in kinds else ("plain" if "plain" in kinds else "")

    if maintype == "message" or part.is_multipart():
        _add_message_attachment(part, ctype, walk)
        return "", ""

    if maintype == "multipart":
        # A multipart with no boundary, or whose boundary never appears (RFC 2046 §5.1.1): the
        # parser leaves the whole body as one string; show it as text rather than lose it.
        walk.defect(f"{ctype} without usable boundary; read as text")
        return _leaf_text(part, walk, "text/plain"), "plain"

    disposition = _disposition(part, walk)
    filename = _filename(part, walk)
    is_text = ctype in ("text/plain", "text/html") and disposition != "attachment"
    if is_text and (filename is None or root):
        return _leaf_text(part, walk, ctype), "html" if ctype == "text/html" else "plain"

    _add_leaf_attachment(part, ctype, disposition, filename, walk)
    return "", ""


def _choose_alternative(rendered: list[tuple[str, str]]) -> tuple[str, str]:
    """RFC 2046 §5.1.4: the last alternative is the richest; plain is preferred unless a stub."""
    plain = next((text for text, kind in rendered if kind == "plain" and text.strip()), "")
    html = next((text for text, kind in reversed(rendered) if kind == "html" and text.strip()), "")
    if plain and not (html and _is_stub(plain, html)):
        return plain, "plain"
    if html:
        return html, "html"
    if plain:
        return plain, "plain"
    return next((item for item in reversed(rendered) if item[0].strip()), ("", ""))


def _content_type(part: Message, walk: _Walk) -> str:
    return _content_info(part, walk)[0]


def _param(part: Message, name: str, walk: _Walk) -> str | None:
    return _content_info(part, walk)[1].get(name)


def _content_info(part: Message, walk: _Walk) -> tuple[str, dict[str, str]]:
    """(media type, Content-Type parameters) of a part, read once per part."""
    key = id(part)  # parts live as long as the walk
    if key not in walk.content_types:
        try:
            ctype = part.get_content_type()
            pairs = part.get_params() or []
        except _HEADER_ERRORS:
            walk.defect("unreadable Content-Type; treated as text/plain")
            ctype, pairs = "text/plain", []
        params: dict[str, str] = {}
        for name, value in pairs[1:]:  # the first pair is the media type itself
            if isinstance(value, tuple):  # RFC 2231 (charset, language, value) under compat32
                value = email.utils.collapse_rfc2231_value(value)
            params.setdefault(str(name).lower(), str(value))
        walk.content_types[key] = (ctype, params)
    return walk.content_types[key]


def _disposition(part: Message, walk: _Walk) -> str | None:
    try:
        return part.get_content_disposition()
    except _HEADER_ERRORS:
        walk.defect("unreadable Content-Disposition")
        return None


def _payload_bytes(part: Message) -> bytes:
    """Transfer-decoded payload; bad base64/quoted-printable degrade, the parser notes a defect."""
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _leaf_text(part: Message, walk: _Walk, ctype: str) -> str:
    data = _payload_bytes(part)
    text = _decode_bytes(data, _param(part, "charset", walk), walk, ctype)
    if ctype == "text/html":
        return _html_to_text(_clean(text), walk)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if (_param(part, "format", walk) or "").lower() == "flowed":
        text = _unflow(text, delsp=(_param(part, "delsp", walk) or "").lower() == "yes")
    return text


# --------------------------------------------------------------------------- attachments


def _filename(part: Message, walk: _Walk) -> str | None:
    """Decoded file name (RFC 2231 parameters, RFC 2047 words, raw 8-bit), unsanitised."""
    try:
        name = part.get_filename()
    except _HEADER_ERRORS:
        walk.defect("unreadable attachment file name")
        name = None
    if name is not None and "\ufffd" in name:
        name = _filename_from_raw(part, walk) or name
    if name is not None and "=?" in name:
        name = _decode_words(name, walk)  # Outlook: filename="=?utf-8?B?...?=" (not RFC 2231)
    return name


def _filename_from_raw(part: Message, walk: _Walk) -> str | None:
    """Re-read a name whose raw 8-bit bytes the modern parser replaced with U+FFFD."""
    for header in ("Content-Disposition", "Content-Type"):
        value = _first_value(part, header, walk)
        if value is None:
            continue
        legacy = Message()
        legacy[header] = _fix_8bit(_unfold(value), header, walk)
        try:
            if header == "Content-Disposition":
                name = legacy.get_filename()
            else:
                name = legacy.get_param("name")
        except _HEADER_ERRORS:  # e.g. TypeError from decode_params on mangled RFC 2231 parts
            continue
        if isinstance(name, tuple):
            name = email.utils.collapse_rfc2231_value(name)
        if name:
            return str(name)
    return None


def _sanitize_name(name: str | None, ctype: str, index: int) -> str:
    """A file name safe to show and to store: no directories, no control or bidi characters."""
    name = _clean(name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: control characters; Cf: format characters such as U+202E, which makes
    # "invoice\u202egpj.exe" display as "invoiceexe.jpg".
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf"))
    name = _collapse(name).strip(". ")
    if not name:
        return f"attachment-{index}{_extension(ctype)}"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = "." + ext if dot and stem and len(ext) <= 16 else ""
        stem = name[: len(name) - len(ext)] if ext else name
        budget = MAX_NAME_BYTES - len(ext.encode("utf-8"))
        stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")
        name = stem + ext
    return name


def _extension(ctype: str) -> str:
    return _EXTENSIONS.get(ctype) or _MIME.guess_extension(ctype) or (
        ".txt" if ctype.startswith("text/") else ".bin"
    )


def _guess_type(name: str) -> str:
    return _MIME.guess_type(name)[0] or "application/octet-stream"


def _add_leaf_attachment(
    part: Message, ctype: str, disposition: str | None, filename: str | None, walk: _Walk
) -> None:
    data = _payload_bytes(part)
    index = len(walk.attachments) + 1
    name = _sanitize_name(filename, ctype, index)
    is_tnef = ctype in _TNEF_TYPES or (
        ctype == "application/octet-stream" and (filename or "").lower() == "winmail.dat"
    )
    if is_tnef and _add_tnef_files(data, walk):
        return
    # Inline images are the ones a client shows in the text (RFC 2183 inline, or referenced by
    # Content-ID from an HTML part of multipart/related).
    inline = ctype.startswith("image/") and (
        disposition == "inline" or (disposition is None and bool(_values(part, "Content-ID")))
    )
    walk.attachments.append(Attachment(name=name, content_type=ctype, data=data, inline=inline))


# TNEF layout (MS-OXTNEF §2.1.3): signature, key, then attributes of
# level(1) id(2) type(2) length(4) data(length) checksum(2); ids below hold MAPI property lists.
_TNEF_SIGNATURE = 0x223E9F78
_TNEF_MAPI_LISTS = {0x9003, 0x9005}  # attMsgProps, attAttachment
_TNEF_RECIPIENTS = 0x9004  # attRecipTable: a row count, then one MAPI list per row
_TNEF_UNUSED_ID = b"\xff\xff"  # an attribute id tnefparse does not know, so it skips the data
_TNEF_EMBEDDED = 0x3701  # PidTagAttachDataObject: may hold a whole embedded TNEF message
_TNEF_EMBEDDED_SIG = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_MAPI_FIXED_SIZES = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8, 0x0006: 8,
                     0x0007: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}
_MAPI_VARIABLE = {0x001E, 0x001F, 0x000D, 0x0102, 0x0000}
_TNEF_MAX_STEPS = 50_000  # properties and values; real winmail.dat files have a few thousand
_TNEF_MAX_SKIPPED = 64  # tnefparse logs a warning for each property counted past the data's end


class _TnefTooCostly(Exception):
    """A count or length in a TNEF stream asks for more work than the stream can justify."""


@dataclass
class _TnefBudget:
    steps: int
    nbytes: int

    def charge(self, steps: int = 0, nbytes: int = 0) -> None:
        self.steps -= steps
        self.nbytes -= nbytes
        if self.steps < 0 or self.nbytes < 0:
            raise _TnefTooCostly


def _tnef_prepare(data: bytes) -> bytes | None:
    """The TNEF bytes safe to hand to tnefparse, or None when decoding would cost too much.

    tnefparse trusts the counts it reads: a "number of values" of 0xFFFFFFFF in a 3 KB
    winmail.dat makes it loop billions of times and exhaust memory. So the stream is walked
    here first, the way tnefparse will walk it, charging every loop and copy to a budget
    proportional to its size. The recipient table, which we do not use and whose rows
    tnefparse resumes at offsets that depend on its decoding errors, is renamed so tnefparse
    skips it; an embedded message that has one is refused.
    """
    budget = _TnefBudget(steps=_TNEF_MAX_STEPS, nbytes=8 * len(data) + 32 * 1024 * 1024)
    work: list[bytes] = []
    try:
        recipient_tables = _tnef_walk_stream(data, budget, work, top=True)
        while work:
            _tnef_walk_stream(work.pop(), budget, work, top=False)
    except _TnefTooCostly:
        return None
    if not recipient_tables:
        return data
    patched = bytearray(data)
    for offset in recipient_tables:
        patched[offset + 1 : offset + 3] = _TNEF_UNUSED_ID
    return bytes(patched)


def _u32(data: bytes, offset: int) -> int | None:
    return int.from_bytes(data[offset : offset + 4], "little") if offset + 4 <= len(data) else None


def _tnef_walk_stream(data: bytes, budget: _TnefBudget, work: list[bytes], *, top: bool) -> list[int]:
    """Offsets of the recipient-table attributes; embedded MAPI streams are queued on ``work``."""
    recipient_tables: list[int] = []
    if _u32(data, 0) != _TNEF_SIGNATURE:
        return recipient_tables  # tnefparse rejects it at once
    offset = 6
    while offset + 12 < len(data):
        remaining = len(data) - offset
        budget.charge(1, remaining)  # tnefparse slices the rest of the stream for every attribute
        name = int.from_bytes(data[offset + 1 : offset + 3], "little")
        length = min(remaining, (_u32(data, offset + 5) or 0) + 11)
        body = data[offset + 9 : offset + length - 2]
        if name in _TNEF_MAPI_LISTS:
            _tnef_walk_mapi(body, budget, work)
        elif name == _TNEF_RECIPIENTS:
            if not top:
                raise _TnefTooCostly  # inside an embedded message we cannot rename it
            recipient_tables.append(offset)
        offset += length
    return recipient_tables


def _tnef_walk_mapi(data: bytes, budget: _TnefBudget, work: list[bytes]) -> None:
    """Mirror of tnefparse.mapi.decode_mapi with the same offsets. Where tnefparse would stop
    on a decoding error this walk goes on, which costs more budget, never less."""
    count = _u32(data, 0)
    if count is None:
        return
    budget.charge(count)
    offset = 4
    size = len(data)
    for index in range(count):
        if offset >= size:
            if count - index > _TNEF_MAX_SKIPPED:
                raise _TnefTooCostly
            break
        if offset + 4 > size:
            return
        attr_type = int.from_bytes(data[offset : offset + 2], "little")
        attr_name = int.from_bytes(data[offset + 2 : offset + 4], "little")
        offset += 4
        if attr_name >= 0x8000:  # named property: GUID, kind, then an id or a name
            kind = _u32(data, offset + 16)
            if kind is None:
                return
            offset += 20
            if kind == 0:
                offset += 4
            else:
                name_len = _u32(data, offset)
                if name_len is None:
                    return
                name_len += -name_len % 4
                budget.charge(0, max(0, min(name_len, size - offset - 4)) * 2)
                offset += 4 + name_len
        values = None
        if attr_type & 0x1000:
            attr_type ^= 0x1000
            values = _u32(data, offset)
            if values is None:
                return
            offset += 4
            budget.charge(values)
        for _ in range(values or 1):
            if attr_type in _MAPI_FIXED_SIZES:
                offset += _MAPI_FIXED_SIZES[attr_type]
                continue
            if attr_type not in _MAPI_VARIABLE:
                return  # tnefparse raises on an unknown type and keeps what it has
            items = 1
            if not values:
                items = _u32(data, offset)
                if items is None:
                    return
                offset += 4
                budget.charge(items)
            for _ in range(items):
                length = _u32(data, offset)
                if length is None:
                    return
                length += -length % 4
                offset += 4
                item = data[offset : offset + length]
                budget.charge(0, 2 * len(item))  # the copy, and its decoded text
                if attr_name == _TNEF_EMBEDDED and item.startswith(_TNEF_EMBEDDED_SIG):
                    work.append(item[len(_TNEF_EMBEDDED_SIG) :])
                offset += length
        if (values or 1) % 2 and attr_type in (0x0002, 0x000B):
            offset += 2


def _add_tnef_files(data: bytes, walk: _Walk) -> bool:
    """Expand Outlook's winmail.dat into its files; False keeps the .dat itself."""
    prepared = _tnef_prepare(data)
    if prepared is None:
        walk.defect("winmail.dat too costly to decode; kept as is")
        return False
    try:
        tnef = tnefparse.TNEF(prepared)
        files = [(a.long_filename() or a.name, a.data) for a in tnef.attachments]
    except Exception as exc:  # noqa: BLE001 - third-party decoder on hostile bytes; keep the file
        walk.defect(f"winmail.dat not decodable ({type(exc).__name__}); kept as is")
        return False
    files = [(name, content) for name, content in files if isinstance(content, bytes)]
    if not files:
        # Truncated or body-only TNEF: nothing recovered, so the original must stay visible.
        walk.defect("winmail.dat held no files; kept as is")
        return False
    for name, content in files:
        index = len(walk.attachments) + 1
        name = _sanitize_name(str(name or ""), "application/octet-stream", index)
        walk.attachments.append(Attachment(name=name, content_type=_guess_type(name), data=content))
    return True


def _add_message_attachment(part: Message, ctype: str, walk: _Walk) -> None:
    """message/rfc822 as .eml bytes; message/delivery-status and friends as text."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    index = len(walk.attachments) + 1
    if ctype == "message/delivery-status" and isinstance(payload, list):
        data = b"\r\n".join(_flatten(block, walk) for block in payload if isinstance(block, Message))
        walk.attachments.append(Attachment(f"attachment-{index}.txt", ctype, data))
        return
    if isinstance(inner, Message):
        data = _flatten(inner, walk)
        subject = _decoded_header(inner, "Subject", walk)
        name = "message.eml"
        if subject:
            name = _sanitize_name(_collapse(subject)[:200] + ".eml", ctype, index)
    else:
        data = _payload_bytes(part)
        name = _sanitize_name(_filename(part, walk), ctype, index)
    walk.attachments.append(Attachment(name=name, content_type=ctype, data=data))


def _flatten(msg: Message, walk: _Walk) -> bytes:
    """Bytes of an attached message. The legacy policy writes headers back as they came."""
    buffer = io.BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, policy=compat32.clone(linesep="\r\n")).flatten(msg)
    except (RecursionError, *_HEADER_ERRORS) as exc:
        walk.defect(f"attached message not re-serialisable ({type(exc).__name__})")
        return b""
    return buffer.getvalue()


# --------------------------------------------------------------------------- reply split


def _split_reply(text: str) -> tuple[str, str]:
    """(new text, quoted history + signature) using mail-parser-reply plus its guards."""
    lines = text.strip("\n").split("\n")
    if not "".join(lines).strip():
        return "", ""
    count = _reply_parse_lines(lines)
    head, tail = lines[:count], lines[count:]

    cut = _library_cut(head)
    if cut is None or not "".join(head[:cut]).strip():
        cut = len(head)  # nothing recognised as new text: keep it all
    body, signature = _cut_sig_dash("\n".join(head[:cut]))
    pieces = (signature, "\n".join(head[cut:]), "\n".join(tail))
    quoted = "\n\n".join(piece.strip("\n") for piece in pieces if piece.strip())
    return body.strip(), quoted.strip()


def _reply_parse_lines(lines: list[str]) -> int:
    """How many leading lines the reply parser may see: at most MAX_REPLY_PARSE characters and
    a bounded regex cost. Its "On … wrote:" pattern backtracks in O(n²) on a line that starts
    like an attribution and is not one, so each line fed costs up to its length squared."""
    chars = cost = 0
    for index, line in enumerate(lines):
        chars += len(line) + 1
        cost += len(_reply_feed_line(line)) ** 2
        if index and (chars > MAX_REPLY_PARSE or cost > _REPLY_COST_MAX):
            return index
    return len(lines)


def _reply_feed_line(line: str) -> str:
    """A long line is never a reply header or a sign-off; the library gets a short stand-in
    that cannot match either (U+2060 is not whitespace, so it survives the library's strip)."""
    return line if len(line) <= _REPLY_LINE_MAX else "\u2060" + line[:_REPLY_STAND_IN]


def _library_cut(lines: list[str]) -> int | None:
    """Index of the first line after the new text, as mail-parser-reply sees it; None when
    its answer cannot be mapped back onto ``lines``."""
    feed = [_reply_feed_line(line) for line in lines]
    # EmailMessage is what EmailReplyParser.read() builds; built directly for keep_hyphen_lists,
    # without which every "- step one" list in a customer's text is taken for a signature.
    languages = EmailReplyParser(languages=list(REPLY_LANGUAGES)).languages
    message = EmailMessage(
        text="\n".join(feed), languages=list(languages), keep_hyphen_lists=True
    ).read()
    if not message.replies:
        return None
    first = message.replies[0]
    if first.headers:
        return 0  # the text opens with a quoted header: no new text above it
    content = first.content
    signature = first.signatures if _plausible_signature(first.signatures) else ""
    own = content
    if signature and content.endswith(signature):
        own = content[: len(content) - len(signature)]
    # The library strips every line and drops Outlook "____" rules, so ``own`` is a subsequence
    # of the stripped feed lines; match it in order to find where it ends in the original.
    wanted = [line for line in own.split("\n") if line.strip()]
    if not wanted:
        return 0
    matched = 0
    for index, line in enumerate(feed):
        if line.strip() == wanted[matched]:
            matched += 1
            if matched == len(wanted):
                return index + 1
    return None


def _plausible_signature(signature: str) -> bool:
    """The library takes any line opening with "Thanks," for a sign-off, even "Thanks, the reset
    worked but …"; a real sign-off line is short."""
    if not signature:
        return False
    first_line = signature.split("\n", 1)[0].lstrip("> ")
    return len(first_line.split()) <= 5


def _cut_sig_dash(body: str) -> tuple[str, str]:
    """RFC 3676 §4.3: everything after a "-- " line is the signature."""
    lines = body.split("\n")
    for i, line in enumerate(lines[1:], start=1):
        if line == "-- ":
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    return body, ""


# --------------------------------------------------------------------------- loops and bounces


def _auto_submitted(
    msg: Message, walk: _Walk, envelope_sender: str | None, from_addr: str
) -> str | None:
    """Why this mail is automatic (RFC 3834, DESIGN §2.6), or None for a person's mail."""

    def first(name: str) -> str | None:
        values = _values(msg, name)
        return _collapse(_fix_8bit(_unfold(values[0]), name, walk)) if values else None

    value = first("Auto-Submitted")
    if value is not None:
        token = value.split(";", 1)[0].strip().lower()
        if token != "no":  # RFC 3834 §5: "no" is the only value for a person's mail
            return f"auto-submitted:{token or 'yes'}"
    if first("X-Autoreply") is not None:
        return "x-autoreply"
    if first("X-Autorespond") is not None:
        return "x-autorespond"
    value = first("X-Auto-Response-Suppress")
    if value is not None:
        tokens = {t.strip().lower() for t in value.split(",")}
        hit = sorted(tokens & _SUPPRESS_AUTO)
        if hit:
            return f"x-auto-response-suppress:{hit[0]}"
    value = first("Precedence")
    if value is not None:
        token = value.split()[0].lower() if value.split() else ""
        if token in _PRECEDENCE_AUTO:
            return f"precedence:{token}"
    if first("List-Id") is not None:
        return "list-id"
    if first("List-Unsubscribe") is not None:
        return "list-unsubscribe"
    if envelope_sender is not None and envelope_sender.strip().strip("<>").strip() == "":
        return "null-sender"  # RFC 5321 §4.5.5: notifications go out with MAIL FROM:<>
    if _is_daemon(from_addr):
        return "mailer-daemon"
    report_type = _report_type(msg, walk)
    if report_type:
        return f"report:{report_type}"  # e.g. read receipts (RFC 8098 disposition-notification)
    return None


def _is_daemon(address: str) -> bool:
    return address.split("@", 1)[0] in _DAEMON_LOCALPARTS


def _report_type(part: Message, walk: _Walk) -> str | None:
    if _content_type(part, walk) != "multipart/report":
        return None
    return (_param(part, "report-type", walk) or "unknown").lower()


def _find_bounce(
    msg: Message,
    walk: _Walk,
    text: str,
    in_reply_to: tuple[str, ...],
    references: tuple[str, ...],
    from_addr: str,
    our_domain: str | None,
) -> tuple[Bounce | None, str | None]:
    """(Bounce, "bounce") for a failure DSN (RFC 3464) or a prose bounce from a mailer daemon;
    (None, "dsn:<action>") for a DSN that reports no failure; (None, None) otherwise."""
    report = None
    status_part = None
    original_ids: list[str] = []
    for part, _depth in _iter_parts(msg, walk):
        ctype = _content_type(part, walk)
        if ctype == "multipart/report" and report is None:
            report = part
        elif ctype == "message/delivery-status" and status_part is None:
            status_part = part
        elif ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
            original_ids.extend(_original_ids(part, ctype, walk))
    report_type = (_param(report, "report-type", walk) or "").lower() if report is not None else ""
    is_dsn = status_part is not None or report_type == "delivery-status"
    if not is_dsn and not _is_daemon(from_addr):
        return None, None

    original_ids.extend(in_reply_to)
    original_ids.extend(reversed(references))  # the last reference is the message replied to
    original_ids.extend(_BODY_MESSAGE_ID.findall(text))
    original = _pick_ours(original_ids, our_domain)

    if not is_dsn:
        # Prose bounce (qmail, old Exim, some gateways): no structure, so the best we can do.
        folded = _collapse(text).lower()
        if any(phrase in folded for phrase in _DELAY_PHRASES):
            return None, "mailer-daemon:delay"  # Exim's "not yet been delivered" is no failure
        found = _STATUS_CODE.search(text)
        return Bounce(original, status=found.group(1) if found else ""), "bounce"

    recipients, status, diagnostic, actions = _delivery_status(status_part, walk)
    if actions and not (set(actions) - _DSN_NOT_FAILED):
        return None, f"dsn:{sorted(set(actions))[0]}"  # a delay warning is not a failure
    return Bounce(original, recipients=recipients, status=status, diagnostic=diagnostic), "bounce"


def _original_ids(part: Message, ctype: str, walk: _Walk) -> list[str]:
    if ctype == "text/rfc822-headers":
        headers = BytesParser(policy=compat32).parsebytes(_payload_bytes(part), headersonly=True)
    else:
        payload = part.get_payload()
        headers = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(headers, Message):
            return []
    return list(_ids(_values(headers, "Message-ID")))


def _pick_ours(ids: list[str], our_domain: str | None) -> str | None:
    if our_domain:
        for candidate in ids:
            if candidate.rsplit("@", 1)[-1].lower() == our_domain:
                return candidate
    return ids[0] if ids else None


def _delivery_status(
    part: Message | None, walk: _Walk
) -> tuple[tuple[str, ...], str, str, list[str]]:
    """Final-Recipient addresses, the first failure's Status and Diagnostic-Code, all Actions."""
    if part is None:
        return (), "", "", []
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [b for b in payload if isinstance(b, Message)]
    else:
        # Some MTAs base64-encode the status; the parser then keeps it as one string.
        text = _decode_bytes(_payload_bytes(part), "utf-8", walk, "delivery-status")
        blocks = [
            BytesParser(policy=compat32).parsebytes(chunk.encode("utf-8"), headersonly=True)
            for chunk in text.replace("\r\n", "\n").split("\n\n")
            if chunk.strip()
        ]
    recipients: list[str] = []
    actions: list[str] = []
    status = diagnostic = ""
    # RFC 3464 §2.1: the per-message fields come first, then one block per recipient.
    for block in blocks[1:]:
        recipient = _dsn_field(block, "Final-Recipient", walk) or _dsn_field(
            block, "Original-Recipient", walk
        )
        if not recipient:
            continue
        address = recipient.split(";", 1)[-1].strip().strip("<>").lower()  # "rfc822; bob@x"
        action = _dsn_field(block, "Action", walk).lower()
        recipients.append(address)
        actions.append(action or "failed")
        if not status and action not in _DSN_NOT_FAILED:
            status = (_dsn_field(block, "Status", walk).split() or [""])[0]
            diagnostic = _dsn_field(block, "Diagnostic-Code", walk).split(";", 1)[-1].strip()[:500]
    return tuple(recipients), status, diagnostic, actions


def _dsn_field(block: Message, name: str, walk: _Walk) -> str:
    values = _values(block, name)
    return _collapse(_fix_8bit(_unfold(values[0]), name, walk)) if values else ""
