"""Adapter helper for ``mailparse``: what the MTAs in front of us recorded in
``Authentication-Results`` (RFC 8601) about the sender — DMARC, DKIM, SPF.

Reads every such header, topmost (newest) first, into plain tuples. Must not decide which
header to trust — anyone can write one into a mail before it reaches our MTA, so core trusts
only the configured authserv-ids (or only the topmost header) — and must not verify anything
itself: no DNS, no signatures.
"""

from __future__ import annotations

import re
from email.message import Message

from bot.inbound.mailparse.parts import _Walk

MAX_HEADERS = 20  # a forged pile of headers is cut, not parsed
MAX_RESULTS = 20  # method=result pairs kept per header
MAX_HEADER_CHARS = 4000

AuthResults = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]

_COMMENT = re.compile(r"\([^()]*\)")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+")
_RESINFO = re.compile(r"^\s*([A-Za-z0-9_-]+)(?:\s*/\s*\d+)?\s*=\s*([A-Za-z0-9_-]+)")


def _auth_results(msg: Message, walk: _Walk) -> AuthResults:
    """[(authserv-id, ((method, result), …)), …] in header order, lower-cased."""
    found = []
    for raw in msg.get_all("Authentication-Results", [])[:MAX_HEADERS]:
        parsed = _parse(str(raw)[:MAX_HEADER_CHARS])
        if parsed is None:
            walk.defect("unreadable Authentication-Results header")
            continue
        found.append(parsed)
    return tuple(found)


def _parse(value: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    # Comments may nest ("(sender IP is 192.0.2.1 (mail.example))"): peel them innermost first.
    for _ in range(5):
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            break
        value = stripped
    fields = value.replace("\r", " ").replace("\n", " ").split(";")
    head = fields[0].split()
    if not head or not _TOKEN.fullmatch(head[0]):
        return None
    results = []
    for field in fields[1:]:
        match = _RESINFO.match(field)
        if match:
            results.append((match[1].lower(), match[2].lower()))
        if len(results) >= MAX_RESULTS:
            break
    return head[0].lower(), tuple(results)
