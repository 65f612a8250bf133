"""SMTP DATA taken in pieces: the end-of-data line, dot transparency and the two limits.

A message of a megabyte is some 17,000 lines; handled one line at a time (an await, checks and
a write for each) the door spent more time in this loop than in everything else it does for the
message. Here the bytes come in pieces of whatever the stream holds (up to its limit), and the
complete lines of each piece are un-stuffed, measured and written with a few C-level calls.

It must not:

- end a message anywhere but at a line that is exactly ``.`` between two CRLFs: a bare LF or CR
  is data, so ``\\n.\\n`` cannot end it early (SMTP smuggling);
- read past that line: what follows it belongs to the next command (``readuntil`` stops there);
- hold more than one piece and one unfinished line in memory: an over-long line is dropped as
  it grows, and the message refused once it has been read to its end (RFC 5321 §4.2.5).
"""

from __future__ import annotations

import asyncio
import logging
from typing import IO

log = logging.getLogger(__name__)

CRLF = b"\r\n"
END_OF_DATA = b".\r\n"  # the last line; readuntil stops right after its first appearance

ERR_451 = "451 4.3.0 Temporary failure storing your message, please retry"
ERR_500_LINE = "500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)"
ERR_552 = "552 5.3.4 Message size exceeds fixed maximum message size"


class DataReceiver:
    """Feeds pieces of DATA into ``out`` un-stuffed; ``feed`` says when the message has ended.

    ``size_limit`` (0: none) counts the message as stored, without transparent dots;
    ``line_limit`` counts a line with its CRLF, without its transparent dot (RFC 5321
    §4.5.3.1.6). Past either, or when ``out`` cannot be written, the rest is read and dropped,
    and ``error`` holds the answer to give at the end.
    """

    def __init__(self, out: IO[bytes], *, size_limit: int, line_limit: int) -> None:
        self._out = out
        self._size_limit, self._line_limit = size_limit, line_limit
        self.size = 0
        self.error: str | None = None
        self._unfinished = b""  # the piece's last line, not ended yet
        self._dropping_line = False  # the current line grew too long and is being skipped

    def feed(self, piece: bytes) -> bool:
        """Take the next piece; True when it held the end-of-data line (always its last)."""
        held = self._unfinished + piece if self._unfinished else piece
        cut = held.rfind(CRLF) + 2
        if cut == 1:  # no line ends in this piece
            self._unfinished = held
            # Even with a transparent dot and only LF left to come, it is too long by now.
            if len(held) > self._line_limit + 1:
                self._fail(ERR_500_LINE)
                self._unfinished, self._dropping_line = b"", True
            return False
        lines, self._unfinished = held[:cut], held[cut:]
        if self._dropping_line:  # the first CRLF ends the line being dropped
            lines = lines[lines.find(CRLF) + 2:]
            self._dropping_line = False
        ended = lines == END_OF_DATA or lines.endswith(CRLF + END_OF_DATA)
        if ended:
            lines = lines[:-len(END_OF_DATA)]
        if self.error is None and lines:
            self._store(lines)
        return ended

    def _store(self, lines: bytes) -> None:
        """Complete lines, each ending CRLF: remove the transparent dots, check, write."""
        # Most pieces hold no line starting with a dot (base64 never does): no copies then.
        stuffed = lines.startswith(b".") or b"\r\n." in lines
        unstuffed = (CRLF + lines).replace(b"\r\n.", CRLF)[2:] if stuffed else lines
        self.size += len(unstuffed)
        if self._size_limit and self.size > self._size_limit:
            self._fail(ERR_552)
        elif self._has_long_line(unstuffed):
            self._fail(ERR_500_LINE)
        else:
            try:
                self._out.write(unstuffed)
            except OSError as exc:  # disk full: our failure, the sender retries
                log.error("smtp cannot store a message in transfer: %s", exc)
                self._fail(ERR_451)

    def _has_long_line(self, lines: bytes) -> bool:
        """Whether a line of ``lines`` (each ending CRLF) passes the line limit."""
        limit = self._line_limit
        if len(lines) <= limit:
            return False
        if len(lines) >= 2 * limit:
            return max(map(len, lines.split(CRLF))) + len(CRLF) > limit
        # A line longer than the limit is longer than half of these bytes, so it holds their
        # middle byte: only that line needs measuring (two finds, where a split makes some
        # 130 small bytes objects for every 10 kB of base64).
        middle = len(lines) // 2
        before = lines.rfind(CRLF, 0, middle)  # the last line break wholly before the middle
        start = before + 2 if before >= 0 else 0
        end = lines.find(CRLF, middle - 1) + 2  # the break ending the middle's line
        return end - start > limit

    def _fail(self, error: str) -> None:
        self.error = self.error or error


async def next_piece(reader: asyncio.StreamReader) -> bytes:
    """What the stream holds up to and including the next ``.\\r\\n``, or as much of it as
    the stream's limit lets it buffer (then the last two bytes stay, a separator's start)."""
    try:
        return await reader.readuntil(END_OF_DATA)
    except asyncio.LimitOverrunError as overrun:
        return await reader.readexactly(overrun.consumed)
