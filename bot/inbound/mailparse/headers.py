"""Adapter helper for ``mailparse``: header values → text, addresses and Message-IDs.

Unfolds, repairs undeclared 8-bit bytes, decodes RFC 2047 words in any charset, picks the
first usable name and address out of a broken From/Sender/Reply-To (unquoted "Last, First"
names, inner quotes, quoted local parts, a missing ">", trailing comments), chooses the
requester among them and the envelope sender, and takes the ids out of Message-ID, In-Reply-To
and References (ids without "@" included); each repair is a defect. Works on the raw header
values, not the stdlib's parsed header objects (those raise on hostile input). Must not decide
threading or routing from what it reads (core does). No ticket logic here.
"""

from __future__ import annotations

import email.utils
import quopri
import re
from email.message import Message

from bot.inbound.mailparse.parts import _Walk
from bot.inbound.mailparse.text import _b64decode, _clean, _collapse, _decode_bytes

MAX_ADDRESS_HEADER = 4096
# An id without "@" is kept only when at least this long: a clock and a random part
# ("1741000364.8C41F09A2B"), not a counter ("12345") that other senders repeat.
MIN_ID_WITHOUT_AT = 12

# Message ids inside angle brackets, junk around them ignored:
# "<a@x> (Bob's message of Monday) <b@y>" → ["a@x", "b@y"]
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
# A bare id some mailers send without brackets: "1234.5678@mail.example.com"
_BARE_ID = re.compile(r"^[^<>\s]+@[^<>\s]+$")
# RFC 5322 §2.2.3 unfolding: "Router\r\n down" → "Router down"
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# RFC 2047 encoded word, tolerating spaces inside (seen from broken clients); the text part
# cannot hold "?" (Q writes =3F), which also keeps the scan linear:
# "=?utf-8?q?Caf=C3=A9?=" → ("utf-8", "q", "Caf=C3=A9")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
# Whitespace between two adjacent encoded words is dropped (RFC 2047 §6.2):
# "=?utf-8?q?a?= \r\n =?utf-8?q?b?=" → "ab"
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?[^?\s]+\?[bBqQ]\?)")
# An address anywhere in a broken header: "Bob Smith bob@example.com (home)" → "bob@example.com".
# The lookbehind starts a match only at a token's first character, so a long run without "@"
# is scanned once, not once per position.
_ADDR_IN_TEXT = re.compile(r"(?<![^\s<>()\[\]\"',;:])[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
# A plausible addr-spec after getaddresses(): "alice@example.net"
_ADDR_SPEC = re.compile(r"^[^\s<>@]+@[^\s<>@]+$")
# An addr-spec with a quoted local part (RFC 5322 §3.4.1): '"ana silva"@example.pt'
_QUOTED_ADDR_SPEC = re.compile(r'^"(?:[^"\\\r\n]|\\.)+"@[^\s<>@"]+$')
# An angle-addr from its "<" on, the ">" optional (seen missing), local part a quoted string
# or a run of atom characters (RFC 5322 §3.4):
# '<"ana silva"@example.pt>' → '"ana silva"@example.pt'
# "<maria.lopez@example.com" → "maria.lopez@example.com"
_ANGLE_ADDR = re.compile(r'<\s*((?:"(?:[^"\\\r\n]|\\.)*"|[^\s<>@",;:()]+)@[^\s<>@",;()]+)\s*>?')
# A phrase that is one quoted string (RFC 5322 §3.2.4): '"Doe, Jane"' → "Doe, Jane"
_QUOTED_PHRASE = re.compile(r'^"((?:[^"\\]|\\.)*)"$', re.DOTALL)
# A quoted-pair (RFC 5322 §3.2.1): r'\"' → '"'
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# A comment without nesting (RFC 5322 §3.2.2): "(Olga Ivanova)" → "Olga Ivanova"
_COMMENT = re.compile(r"\(((?:[^()\\]|\\.)*)\)")
# Quotes a local part does not need (RFC 5321 §4.1.2 prefers the dot-string):
# '"john.brown"@example.com' → "john.brown"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # RFC 5322 §3.2.3 atext: "o'brien"
_NEEDLESS_QUOTES = re.compile(rf'^"({_ATEXT}(?:\.{_ATEXT})*)"@')
# The display name of a group before its first member (RFC 5322 §3.4 group), outside quotes:
# "Team: Bob" (in "Team: Bob <bob@example.com>;") → "Team:"
_GROUP_NAME = re.compile(r'^[^":<>@]*:')
# A group without members (RFC 5322 §3.4) names no one: "undisclosed-recipients:;"
_EMPTY_GROUP = re.compile(r'^[^:"<>@]*:\s*;?\s*$')
# A bulk mailer's or forwarder's bounce address, not a person's (RFC 5321 §4.5.5), by its
# local part: SRS "SRS0=hG4k=VB=example.jp=noreply", BATV "prvs=1234abcd=bob", VERP
# "bounces+8812-ab12-billing=acme.example", plain "bounce-4821"
_BOUNCE_LOCAL = re.compile(
    r"^(?:srs[01][=+-]|prvs=|msprvs\d*=|btv1=)|bounce|=[a-z0-9-]+(?:\.[a-z0-9-]+)+$", re.IGNORECASE
)


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
    UTF-8 (RFC 6532), then a plausible reading in a charset the message declares elsewhere or an
    East Asian one (``charsets``), then cp1252. ISO-2022-JP escapes written without RFC 2047
    words (RFC 1468 §3 asks for them) are read as Windows reads them."""
    if value.isascii() and "\x1b" not in value:
        return value
    # Imported here, not at the top: only the rare header with raw bytes gets this far.
    from bot.inbound.mailparse.charsets import _decode_undeclared

    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value  # already text (not from bytes)
    text, codec = _decode_undeclared(data, walk.declared_charsets)
    if codec:
        kind = "unencoded" if data.isascii() else "8-bit"  # ISO-2022-JP escapes are 7-bit
        walk.defect(f"{kind} {name} header decoded as {codec}")
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
    """(display name, lower-cased addr-spec) of the first address in ``name``. With no address
    anywhere: the first display name alone, ("Jane Doe", ""), so a requester keeps it."""
    values = _values(msg, name)
    if len(values) > 1:
        walk.defect(f"duplicate {name} header; first usable one used")
    name_only = ""
    for value in values:
        # A real address header is short; a huge one would only feed quadratic parsing.
        text = _fix_8bit(_unfold(value[:MAX_ADDRESS_HEADER]), name, walk)
        display, addr = _mailbox(text)
        if addr:
            return _display(display, walk), addr
        found = _ADDR_IN_TEXT.search(text)
        if found:
            walk.defect(f"malformed {name} header; address picked out of it")
            return "", found.group(0).rstrip(".").lower()
        name_only = name_only or _display(display, walk)
    return name_only, ""


def _mailbox(text: str) -> tuple[str, str]:
    """(raw display name, addr-spec or "") of the first mailbox in an address header.

    ``getaddresses`` splits an unquoted "Smith, John <j@x>" at the comma and drops the quotes
    of 'John "Johnny" Smith', so a mailbox with an angle-addr is read here: the name is all
    that comes before the first "<" outside quotes and comments (RFC 5322 §3.4 name-addr).
    """
    angle = _angle_start(text)
    phrase = _GROUP_NAME.sub("", text[:angle]) if angle != -1 else ""
    if angle != -1 and not _holds_mailbox(phrase):
        found = _ANGLE_ADDR.match(text, angle)
        if found:
            display = _phrase(phrase) or _comment_name(text[found.end() :])
            return display, _normal_addr(found.group(1))
        return _phrase(phrase), ""
    for display, addr in email.utils.getaddresses([text]):
        addr = addr.strip().strip("<>").strip()
        if _ADDR_SPEC.match(addr) or _QUOTED_ADDR_SPEC.match(addr):
            return display, _normal_addr(addr)
    return ("" if _EMPTY_GROUP.match(text) else _phrase(text)), ""


def _angle_start(text: str) -> int:
    """Where the first "<" outside quoted strings and comments is (RFC 5322 §3.2.2, §3.2.4), or
    any "<" when a quote or comment never closes; -1 when there is none."""
    quoted, depth, escaped = False, 0, False
    for position, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth:
            continue
        elif char == '"':
            quoted = True
        elif char == "<":
            return position
    return text.find("<") if quoted or depth else -1


def _holds_mailbox(phrase: str) -> bool:
    """Whether a mailbox comes before the phrase: "a@x, Bob" (in "a@x, Bob <b@y>")."""
    head, comma, _ = _COMMENT.sub("", phrase).rpartition(",")
    return bool(comma) and "@" in head and not _QUOTED_PHRASE.match(phrase.strip())


def _phrase(raw: str) -> str:
    """A display name as its sender wrote it: one quoted string unquoted, comments dropped
    (they name a department, not the person), inner quotes of a nickname kept."""
    text = raw.strip()
    if not _QUOTED_PHRASE.match(text):  # "(" inside quotes is text, not a comment
        text = _COMMENT.sub(" ", text).strip() or _comment_name(text)
    whole = _QUOTED_PHRASE.match(text)
    if whole:
        return _QUOTED_PAIR.sub(r"\1", whole.group(1))
    if text.count('"') == 1:
        return text.replace('"', "")  # a quote that never closes
    return text


def _comment_name(text: str) -> str:
    """The first comment's text: "<olga@x> (Olga Ivanova)" names Olga the RFC 822 way."""
    found = _COMMENT.search(text)
    return _QUOTED_PAIR.sub(r"\1", found.group(1)).strip() if found else ""


def _display(display: str, walk: _Walk) -> str:
    return _collapse(_clean(_decode_words(display, walk)))


# Where a mail store says the message was delivered (Postfix, Exim, Dovecot LDA), then who the
# author wrote to: the recipients of a message read from a mailbox, which has no envelope.
_DELIVERY_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
MAX_HEADER_RECIPIENTS = 50


def _header_recipients(msg: Message) -> tuple[str, ...]:
    """Addresses the message was delivered or written to, in that order, each once."""
    found: dict[str, None] = {}
    for name in _DELIVERY_HEADERS:
        values = [_unfold(v[:MAX_ADDRESS_HEADER]) for v in _values(msg, name)]
        for _, addr in email.utils.getaddresses(values):
            addr = addr.strip().strip("<>").strip()
            if _ADDR_SPEC.match(addr):
                found.setdefault(_normal_addr(addr), None)
    return tuple(found)[:MAX_HEADER_RECIPIENTS]


def _return_path(msg: Message) -> str | None:
    """The envelope sender the delivering MTA recorded ("" for the null sender ``<>``), or
    None without a Return-Path."""
    values = _values(msg, "Return-Path")
    if not values:
        return None
    return _unfold(values[0][:MAX_ADDRESS_HEADER]).strip().strip("<>").strip()


def _normal_addr(addr: str) -> str:
    """Lower-cased, without quotes the local part does not need (RFC 5321 §4.1.2)."""
    return _NEEDLESS_QUOTES.sub(r"\1@", addr.strip()).lower()


def _looks_like_bounce(addr: str) -> bool:
    return bool(_BOUNCE_LOCAL.search(addr.rpartition("@")[0]))


def _requester(
    msg: Message, walk: _Walk, *, reply_to: tuple[str, str], envelope_sender: str | None
) -> tuple[str, str]:
    """(name, address) of who wrote: From; when it has no usable address, Sender, then
    Reply-To, then the envelope sender (DESIGN §3). A bulk mailer's bounce address (VERP, SRS,
    "bounce-…") is taken only when none of the others has an address. The name comes with the
    address, or from From when that header has none."""
    from_name, from_addr = _first_address(msg, "From", walk)
    if from_addr:
        return from_name, from_addr
    walk.defect("no usable From address")
    envelope = ("", (envelope_sender or "").strip().strip("<>").strip().lower())
    candidates = [_first_address(msg, "Sender", walk), reply_to, envelope]
    usable = [candidate for candidate in candidates if candidate[1]]
    if not usable:
        walk.defect("no sender address at all")
        return from_name, ""
    name, addr = next((c for c in usable if not _looks_like_bounce(c[1])), usable[0])
    if addr != usable[0][1]:
        walk.defect(f"bounce address {usable[0][1][:80]} passed over for the requester")
    return name or from_name, addr


def _message_id(msg: Message, walk: _Walk) -> str | None:
    value = _first_value(msg, "Message-ID", walk)
    if value is None:
        walk.defect("no Message-ID")
        return None
    value = _unfold(value).strip()
    found = _ANGLE_ID.search(value)
    candidate = found.group(1) if found else value
    storable = len(candidate) <= 998 and candidate.isascii()
    if storable and _BARE_ID.match(candidate):
        return candidate
    if storable and found and len(candidate) >= MIN_ID_WITHOUT_AT:
        # RFC 5322 §3.6.4 wants id-left "@" id-right; some mailers leave the host out. The id
        # is still what replies quote in In-Reply-To, so it is kept. Short ones ("<1>",
        # "<12345>") are counters that collide across senders and would make a new message
        # look like a replay of an old one (DESIGN §2.2): those count as absent.
        walk.defect("Message-ID without '@' (RFC 5322 §3.6.4); kept as it is")
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
