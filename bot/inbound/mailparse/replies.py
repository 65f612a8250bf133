"""Adapter helper for ``mailparse``: a reply's new text vs. its quoted history and signature.

mail-parser-reply finds the first quoted header ("On … wrote:", Outlook's "From: … Sent:")
and the sign-off, with guards around it: it sees at most MAX_REPLY_PARSE characters at a
bounded regex cost, long lines reach it as short stand-ins, an implausible "signature" is
ignored and an RFC 3676 "-- " line still starts one. Nothing is dropped: what is not new text
goes to ``quoted``. Plain text in, plain text out: no MIME and no ticket logic here.
"""

from __future__ import annotations

from mailparser_reply import EmailReplyParser
from mailparser_reply.parser import EmailMessage

# The reply parser's regexes are super-linear on long text; only this many characters are split,
# the rest goes to ``quoted`` untouched.
MAX_REPLY_PARSE = 100_000
_REPLY_LINE_MAX = 200  # longer lines are never reply headers (see _reply_feed_line)
_REPLY_STAND_IN = 40
_REPLY_COST_MAX = 8_000_000  # Σ len(line fed)² ≈ 0.25 s of the parser's regexes at worst

# Languages whose "On … wrote:" / "From: … Sent: …" headers and sign-offs the reply parser knows.
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs")


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
