"""Adapter helper for ``mailparse``: a reply's new text vs. its quoted history and signature.

mail-parser-reply finds the first quoted header ("On … wrote:", Outlook's "From: … Sent:")
and the sign-off, with guards around it: it sees at most MAX_REPLY_PARSE characters at a
bounded regex cost, long lines reach it as short stand-ins, an implausible "signature" is
ignored and an RFC 3676 "-- " line still starts one. Our own rules then judge by what staff
must see: what the customer wrote below or between "> " quotes is new text too (bottom posting,
inline answers), while an Outlook rule line, a "-Anna" sign-off and a mailing-list footer at
the end are not. Nothing is dropped: what is not new text goes to ``quoted``, and none of the
customer's own lines may be only there. Plain text in, plain text out: no MIME and no ticket
logic here.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailReplyParser
from mailparser_reply.parser import EmailMessage

# The reply parser's regexes are super-linear on long text; only this many characters are split,
# the rest goes to ``quoted`` untouched.
MAX_REPLY_PARSE = 100_000
_REPLY_LINE_MAX = 200  # longer lines are never reply headers (see _reply_feed_line)
_REPLY_STAND_IN = 40
_REPLY_COST_MAX = 8_000_000  # Σ len(line fed)² ≈ 0.25 s of the parser's regexes at worst

# Answers below or between quotes (see _answers_below): at most this many stretches of the
# customer's text are looked at, each checked for an older message's header by the library.
_MAX_ANSWER_RUNS = 50
_ATTRIBUTION_MAX_LINES = 3  # "On … wrote:" wraps to 2-3 lines; more means unmarked history
_HEADER_PROBE_LINES = 6  # the library sees this many lines of a stretch, enough for a header
_CONTEXT_LINES = 3  # quoted lines kept above each inline answer, so it reads as an answer
_FOOTER_MAX_LINES = 10  # a mailing-list footer is a short last paragraph

# A line that quotes: "> text", ">> text", " > text"
_QUOTE_LINE = re.compile(r"^[ \t]*>")
# An Outlook rule line above the quoted header, or left at the end: "_____", "-----", " ---- "
_RULE_LINE = re.compile(r"^[ \t]*(?:_{3,}|-{3,})[ \t]*$")
# A forwarded message's header, which the library does not know:
# "---------- Forwarded message ---------", "Begin forwarded message:"
_FORWARD_HEADER = re.compile(
    r"^[ \t]*(?:-{2,} ?forwarded message ?-{2,}|begin forwarded message:)", re.IGNORECASE)
# A sign-off with a dash and one to three capitalised words: "-Anna", "- Anna Berg", "–Jo"
_DASH_SIGNOFF = re.compile(r"^[ \t]*[-–—] ?[^\W\d_][\w'’.-]*(?: [^\W\d_][\w'’.-]*){0,2}[ \t]*$")
# The first line of a mailing-list footer: "You received this message because you are
# subscribed to …" (Google Groups), "To unsubscribe from this group, send …", "To unsubscribe,
# e-mail: …", "ops mailing list" (Mailman, under a rule line)
_FOOTER_START = re.compile(
    r"^[ \t]*(?:you (?:received|are receiving) this (?:message|e-?mail|mail|digest) because"
    r"|to unsubscribe(?: from this (?:group|list|mailing list))?[,:]? ?(?:send|e-?mail|visit|go"
    r" to|click|write|reply|use|please|and)"
    r"|\S+ mailing list$)",
    re.IGNORECASE,
)

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
    if cut is None:
        cut = len(head)
    answers = _answers_below(head[cut:])
    if not "".join(head[:cut]).strip() and not answers:
        cut = len(head)  # nothing recognised as new text: keep it all
    new_text = "\n".join(head[:cut]).strip("\n")
    if answers:
        new_text = (new_text + "\n\n" + answers).strip("\n")
    body, signature = _cut_sig_dash(new_text)
    body, ending = _cut_ending(body)
    pieces = (ending, signature, "\n".join(head[cut:]), "\n".join(tail))
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


# ---------------------------------------------------------------- answers below the quote


def _answers_below(history: list[str]) -> str:
    """The customer's own lines below or between the "> " quotes of ``history`` (the lines from
    the first quoted header on), so that bottom posting and inline answers reach the body.

    Only for "> " quoting: after an attribution of at most _ATTRIBUTION_MAX_LINES, stretches
    of unquoted lines are the customer's, until one opens an older message's header (the rest
    is history). A single answer at the end (bottom posting) comes alone; answers between
    quotes keep the last quoted lines above each, or they could not be read.
    """
    first = next((i for i, line in enumerate(history) if _QUOTE_LINE.match(line)), None)
    if first is None:
        return ""
    if sum(1 for line in history[:first] if line.strip()) > _ATTRIBUTION_MAX_LINES:
        return ""  # Outlook's From:/Sent: block: the history below it has no quote marks
    runs = _runs(history[first:])
    answers: list[tuple[list[str], list[str]]] = []  # (quoted lines above, answer)
    quoted_after_last = False
    for index, (quoted, run) in enumerate(runs):
        if quoted:
            quoted_after_last = bool(answers)
            continue
        if index >= 2 * _MAX_ANSWER_RUNS:
            break
        own = _before_history(run)
        if own:
            above = [line for line in runs[index - 1][1] if line.strip()][-_CONTEXT_LINES:]
            answers.append((above, own))
            quoted_after_last = False
        if len(own) < len(run):
            break  # an older message begins: the rest is history
    if not answers:
        return ""
    inline = len(answers) > 1 or quoted_after_last
    blocks = ["\n".join((above if inline else []) + run).strip("\n") for above, run in answers]
    return "\n\n".join(blocks)


def _runs(lines: list[str]) -> list[tuple[bool, list[str]]]:
    """``lines`` as alternating stretches: (True, quoted lines) and (False, other lines).
    Blank lines between quotes stay with them; a stretch of blank lines alone is no answer."""
    runs: list[tuple[bool, list[str]]] = []
    for line in lines:
        quoted = bool(_QUOTE_LINE.match(line)) or (not line.strip() and bool(runs) and runs[-1][0])
        if runs and runs[-1][0] == quoted:
            runs[-1][1].append(line)
        else:
            runs.append((quoted, [line]))
    # blank lines that ended a quote belong to nobody: give an all-blank stretch to the quote
    return [(quoted or not "".join(run).strip(), run) for quoted, run in runs]


def _before_history(run: list[str]) -> list[str]:
    """The lines of an unquoted stretch before an older message's header ("On … wrote:",
    "From: … Sent: …", a forward) starts in it; all of them when none does. A header opens the
    stretch or follows a blank line."""
    for index, line in enumerate(run):
        if line.strip() and (index == 0 or not run[index - 1].strip()) and _opens_history(
                run[index:index + _HEADER_PROBE_LINES]):
            return run[:index]
    return run


def _opens_history(probe: list[str]) -> bool:
    first = probe[0]
    if _FORWARD_HEADER.match(first) or _RULE_LINE.match(first):
        return True
    if ":" not in first:
        return False  # every header the library knows has a colon in its first line
    return _library_cut(probe) == 0


# ---------------------------------------------------------------- the end of the new text


def _cut_ending(body: str) -> tuple[str, str]:
    """Moves what ends the new text but is not the customer's message to ``quoted``: a rule
    line Outlook leaves above its quoted header, a mailing-list footer paragraph and a sign-off
    such as "-Anna" (not a "- step" list: a lone dash line under a blank or short line)."""
    lines = body.rstrip("\n").split("\n")
    moved: list[str] = []
    for _ in range(3):  # rule line, footer, rule line above the footer: at most a few pieces
        end = _ending_start(lines)
        if end is None:
            break
        moved[:0] = lines[end:]
        lines = lines[:end]
        while lines and not lines[-1].strip():
            lines.pop()
    if lines and _is_dash_signoff(lines):
        moved[:0] = lines[-1:]
        lines = lines[:-1]
    if not "".join(lines).strip():
        return body, ""  # it was all "ending": keep it as the body rather than show nothing
    return "\n".join(lines), "\n".join(moved).strip("\n")


def _ending_start(lines: list[str]) -> int | None:
    """Where a trailing rule line or mailing-list footer paragraph begins, if there is one."""
    if not lines:
        return None
    if _RULE_LINE.match(lines[-1]):
        return len(lines) - 1
    start = len(lines)
    while start and lines[start - 1].strip():
        start -= 1
    if start == 0 or len(lines) - start > _FOOTER_MAX_LINES:
        return None  # a footer follows a blank line and is short
    first = start + 1 if _RULE_LINE.match(lines[start]) and start + 1 < len(lines) else start
    if _FOOTER_START.match(lines[first]):
        return start  # Mailman puts its footer under a rule line
    return None


def _is_dash_signoff(lines: list[str]) -> bool:
    last = lines[-1]
    if not _DASH_SIGNOFF.match(last) or len(lines) < 2:
        return False
    words = last.strip().lstrip("-–— ").split()
    if not all(word[0].isupper() for word in words):
        return False  # "- step two" is a list item
    text_above = next((line.strip() for line in reversed(lines[:-1]) if line.strip()), "")
    if text_above.startswith(("-", "–", "—", "*", "•")) or text_above.endswith(":"):
        return False  # the last item of a list, or the only one under "Steps:"
    above = lines[-2].strip()
    return not above or len(above.split()) <= 4  # "Thanks," / "Cheers" / a blank line
