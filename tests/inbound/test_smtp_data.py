"""DATA taken in pieces gives what RFC 5321 reading line by line gives, wherever pieces split.

The reference below is the plain reading of RFC 5321 §4.5.2 (one CRLF-ended line at a time:
a line that is exactly "." ends the message, a leading dot is removed) with the door's limits.
The receiver is fed through a real ``asyncio.StreamReader`` with the door's buffer limit, the
bytes arriving in random slices, and must agree on the stored bytes, the answer, and what is
left unread for the next command.
"""

from __future__ import annotations

import asyncio
import io
import random

import pytest

from bot.inbound.smtp_data import ERR_500_LINE, ERR_552, DataReceiver, next_piece

LINE_LIMIT = 10_002


def reference(wire: bytes, *, size_limit: int, line_limit: int = LINE_LIMIT) -> tuple[bytes, str | None, bytes]:
    """(stored, error, rest) reading ``wire`` one CRLF-ended line at a time."""
    stored, size, error, at = bytearray(), 0, None, 0
    while True:
        end = wire.index(b"\r\n", at) + 2
        line, at = wire[at:end], end
        if line == b".\r\n":
            return bytes(stored), error, wire[at:]
        if line.startswith(b"."):
            line = line[1:]
        size += len(line)
        if error is not None:
            continue
        if size_limit and size > size_limit:
            error = ERR_552
        elif len(line) > line_limit:
            error = ERR_500_LINE
        else:
            stored += line


async def received(wire: bytes, *, size_limit: int, slices: random.Random | None = None) -> tuple[bytes, str | None, bytes]:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    out = io.BytesIO()
    receiver = DataReceiver(out, size_limit=size_limit, line_limit=LINE_LIMIT)

    async def arrive() -> None:
        at = 0
        while at < len(wire):
            step = slices.randint(1, 30_000) if slices else len(wire)
            reader.feed_data(wire[at:at + step])
            at += step
            await asyncio.sleep(0)
        reader.feed_eof()

    feeding = asyncio.create_task(arrive())
    while not receiver.feed(await next_piece(reader)):
        pass
    await feeding
    return out.getvalue(), receiver.error, await reader.read()


def cases() -> list[tuple[str, bytes, int]]:
    rng = random.Random(5321)
    body = b"".join(rng.choice([b"..", b".", b"a", b"\r", b"\n", b"\r\n", b"\r\n.", b"x" * 70]) for _ in range(4000))
    while b"\r\n.\r\n" in body:  # a sender stuffs a lone dot; unstuffed, it would end the message
        body = body.replace(b"\r\n.\r\n", b"\r\n..\r\n")
    return [
        ("empty message", b".\r\n", 0),
        ("one line", b"Subject: x\r\n.\r\n", 0),
        ("stuffed dots", b"..\r\n...\r\n..a\r\n.\r\n", 0),
        ("lone dot lines inside", b"a\r\n..\r\nb\r\n..\r\n.\r\n", 0),
        ("bare LF and CR never end it", b"a\n.\nb\r.\rc\r\n\n.\r\n.\n\r\n.\r\n", 0),
        ("a line ending in a dot", b"ends with a dot: .\r\n.\r\n", 0),
        ("longest accepted line", b"x" * 10_000 + b"\r\n.\r\n", 0),
        ("as long with its transparent dot", b".." + b"y" * 9_999 + b"\r\n.\r\n", 0),
        ("one byte too long", b"w" * 10_001 + b"\r\n.\r\n", 0),
        ("far too long, then a dot line", b"w" * 45_000 + b"\r\n.\r\n", 0),
        ("too long line ending in a dot", b"z" * 30_000 + b".\r\nafter\r\n.\r\n", 0),
        ("size limit met exactly", b"abc\r\n" * 100 + b".\r\n", 500),
        ("size limit passed by one", b"abc\r\n" * 100 + b"d\r\n.\r\n", 500),
        ("random dots and line breaks", b"start" + body + b"end\r\n.\r\n", 0),
        ("random, size limited", b"start" + body + b"end\r\n.\r\n", 5_000),
        ("a megabyte of base64", (b"QUJD" * 19 + b"\r\n") * 13_000 + b".\r\n", 0),
    ]


@pytest.mark.parametrize(("wire", "size_limit"), [c[1:] for c in cases()], ids=[c[0] for c in cases()])
async def test_pieces_give_what_line_by_line_reading_gives(wire, size_limit):
    after = b"MAIL FROM:<next@example.net>\r\n"  # pipelined: must stay for the command reader
    want = reference(wire + after, size_limit=size_limit)
    assert want[2] == after
    if want[1] is not None:  # a refused message's partial bytes are thrown away: not compared
        want = (None, *want[1:])
    for slices in [*map(random.Random, range(12)), None]:
        stored, error, rest = await received(wire + after, size_limit=size_limit, slices=slices)
        assert (stored if error is None else None, error, rest) == want


async def test_an_unwritable_store_answers_451_and_reads_to_the_end():
    class Full(io.BytesIO):
        def write(self, data):
            raise OSError(28, "No space left on device")

    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    reader.feed_data(b"a\r\n" * 10_000 + b".\r\nQUIT\r\n")
    receiver = DataReceiver(Full(), size_limit=0, line_limit=LINE_LIMIT)
    while not receiver.feed(await next_piece(reader)):
        pass
    assert receiver.error.startswith("451 4.3.0")
    assert await reader.readuntil(b"\r\n") == b"QUIT\r\n"


async def test_an_endless_line_is_not_held_in_memory():
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    receiver = DataReceiver(io.BytesIO(), size_limit=0, line_limit=LINE_LIMIT)
    for _ in range(100):  # 2 MB without a line break
        reader.feed_data(b"q" * 20_000)
        assert not receiver.feed(await next_piece(reader))
        assert len(receiver._unfinished) <= 2 * LINE_LIMIT
    reader.feed_data(b"\r\n.\r\n")
    while not receiver.feed(await next_piece(reader)):
        pass
    assert receiver.error == ERR_500_LINE


def test_the_long_line_check_agrees_with_measuring_every_line():
    receiver = DataReceiver(io.BytesIO(), size_limit=0, line_limit=100)
    rng = random.Random(2920)
    for _ in range(20_000):
        lines = b"".join(b"x" * rng.choice([0, 1, 40, 97, 98, 99, 100, 150, 199, 250])
                         + rng.choice([b"", b"\r", b"\n", b"."]) + b"\r\n" for _ in range(rng.randint(1, 12)))
        assert receiver._has_long_line(lines) is (max(map(len, lines.split(b"\r\n"))) + 2 > 100), lines
