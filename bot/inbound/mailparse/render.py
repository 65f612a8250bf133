"""Adapter helper for ``mailparse``: the MIME tree → the message's readable text.

Walks the tree (bounded by MAX_DEPTH and MAX_PARTS), prefers plain text over HTML in
multipart/alternative unless the plain part is a stub or lacks much of what the HTML part
says, undoes format=flowed, and hands every
part that is not body text to ``attachments``. Must not split quoted history from new text
(``replies`` does) or judge whether the mail is automatic (``automatic`` does). No ticket
logic here.
"""

from __future__ import annotations

import re
from email.message import Message

from bot.inbound.mailparse.attachments import _add_leaf_attachment, _add_message_attachment
from bot.inbound.mailparse.htmltext import _html_to_text
from bot.inbound.mailparse.names import _filename
from bot.inbound.mailparse.parts import (
    MAX_DEPTH,
    MAX_PARTS,
    _content_type,
    _disposition,
    _param,
    _payload_bytes,
    _Walk,
)
from bot.inbound.mailparse.text import _clean, _collapse, _decode_bytes, _visible_len

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
# A plain part lacks much of the HTML part when more than this share of the HTML text's words
# are not in it at all, and at least _LACKING_MIN_WORDS of them: a faithful rendering differs
# by a few link URLs or image labels, never by whole sentences.
_LACKING_SHARE = 0.3
_LACKING_MIN_WORDS = 12
_COMPARE_CHARS = 200_000  # the words of this much of each text are compared, no more
# A word for that comparison, apostrophes and hyphens apart: "Don’t re-use E-42" → don t re use e 42
_WORD = re.compile(r"\w+")


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
    """RFC 2046 §5.1.4: the last alternative is the richest; plain is preferred unless it is a
    stub or lacks much of the HTML (clients that send only the first paragraph, or drop a
    table, in the plain part)."""
    plain = next((text for text, kind in rendered if kind == "plain" and text.strip()), "")
    html = next((text for text, kind in reversed(rendered) if kind == "html" and text.strip()), "")
    if plain and not (html and _is_stub(plain, html)):
        return plain, "plain"
    if html:
        return html, "html"
    if plain:
        return plain, "plain"
    return next((item for item in reversed(rendered) if item[0].strip()), ("", ""))


def _leaf_text(part: Message, walk: _Walk, ctype: str) -> str:
    data = _payload_bytes(part, walk)
    text = _decode_bytes(data, _param(part, "charset", walk), walk, ctype)
    if ctype == "text/html":
        return _html_to_text(_clean(text), walk)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if (_param(part, "format", walk) or "").lower() == "flowed":
        text = _unflow(text, delsp=(_param(part, "delsp", walk) or "").lower() == "yes")
    return text


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
    """A plain part that is empty, merely points at the HTML part (DESIGN §3), or lacks much of
    what the HTML part says."""
    plain_len = _visible_len(plain)
    if plain_len == 0:
        return True
    if plain_len <= _STUB_MAX_CHARS:
        folded = _collapse(plain).lower()
        if any(phrase in folded for phrase in _STUB_PHRASES):
            return True
    return _lacks_much(plain, html_text)


def _lacks_much(plain: str, html_text: str) -> bool:
    """Whether many of the HTML text's words (counted each time they occur) appear nowhere in
    the plain part. Words, not characters: the plain part may wrap, add URLs or drop markup."""
    html_words = _WORD.findall(html_text[:_COMPARE_CHARS].lower())
    if len(html_words) < _LACKING_MIN_WORDS:
        return False
    plain_words = set(_WORD.findall(plain[:_COMPARE_CHARS].lower()))
    missing = sum(1 for word in html_words if word not in plain_words)
    return missing >= _LACKING_MIN_WORDS and missing > _LACKING_SHARE * len(html_words)
