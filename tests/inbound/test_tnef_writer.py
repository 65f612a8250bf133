"""The test TNEF writer (``tests/tnef_writer.py``) against the installed tnefparse reader.

If tnefparse stops reading what the writer produces, the winmail.dat tests of the parser would
fail for the wrong reason; these tests say so directly. Reads only, never patches tnefparse.
"""

from __future__ import annotations

import struct

import tnefparse

from tests.tnef_writer import (
    MESSAGE_CLASS,
    TNEF_SIGNATURE,
    TnefFile,
    attribute,
    checksum,
    short_name,
    tnef_stream,
)

FILES = [
    TnefFile("notes.txt", b"first\r\nsecond\r\n"),
    TnefFile("Quarterly report – Zürich 北京.pdf", b"%PDF-1.4\n" + bytes(range(256))),
    TnefFile("OLD.BIN", b"\x00\x01\x00\x00", mapi_props=False),
]


def test_header_and_attribute_framing():
    stream = tnef_stream(FILES, key=0x1234)
    assert struct.unpack_from("<IH", stream) == (TNEF_SIGNATURE, 0x1234)
    framed = attribute(0x02, 0x0006800F, b"\xff\x01")
    assert framed == b"\x02\x0f\x80\x06\x00\x02\x00\x00\x00\xff\x01\x00\x01"
    assert checksum(b"\xff" * 300) == (255 * 300) & 0xFFFF


def test_tnefparse_reads_every_attribute_with_good_checksums():
    tnef = tnefparse.TNEF(tnef_stream(FILES))  # checks checksums by default
    assert tnef.objects and all(obj.good_checksum for obj in tnef.objects)
    assert tnef.codepage == "cp1252"
    assert [prop.data for prop in tnef.msgprops if prop.name == tnef.ATTMESSAGECLASS] == [
        MESSAGE_CLASS
    ]
    version = [obj.data for obj in tnef.objects if obj.name == tnef.ATTTNEFVERSION]
    assert version == [struct.pack("<I", tnef.VALID_VERSION)]


def test_tnefparse_finds_each_file_with_its_long_name_and_bytes():
    tnef = tnefparse.TNEF(tnef_stream(FILES))
    assert [(a.long_filename(), a.data) for a in tnef.attachments] == [
        (f.name, f.data) for f in FILES
    ]
    assert [a.name for a in tnef.attachments] == ["notes.txt", "QUARTE~1.PDF", "OLD.BIN"]


def test_short_names():
    assert short_name("notes.txt") == "notes.txt"
    assert short_name("Quarterly report.pdf") == "QUARTE~1.PDF"
    assert short_name("北京") == "FILE~1"
