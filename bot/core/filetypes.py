"""What an attachment really is, from its bytes and its name: the type its content shows, whether
it is a program or script (flagged, never previewed), and which type is safe to serve it as.

Binary signatures come from ``filetype``; markup that a browser would run (HTML, SVG, XML) is
recognised here, since no signature marks it. Pure functions: no I/O, no database.
"""

from __future__ import annotations

import unicodedata

import filetype

# Programs and scripts: a click runs them (Windows, macOS, Linux, Office macros, browsers).
EXECUTABLE_EXTENSIONS = frozenset("""
    exe com bat cmd scr pif msi msp mst cpl dll sys ocx jar js jse vbs vbe wsf wsh ps1 psm1 hta
    lnk reg inf scf application gadget msc sh bash zsh csh ksh command app dmg pkg run bin elf
    apk appx msix xll xlam docm xlsm pptm iso img vhd vhdx py pl rb php
""".split())
EXECUTABLE_TYPES = frozenset({
    "application/x-msdownload", "application/x-dosexec", "application/x-executable",
    "application/x-elf", "application/x-mach-binary", "application/x-sh", "application/x-shellscript",
    "application/java-archive", "application/vnd.microsoft.portable-executable", "application/x-msi"})
# What a browser may show on its own without running anything of the sender's.
INERT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
_MARKUP = (b"<!doctype html", b"<html", b"<svg", b"<?xml", b"<script", b"<head", b"<body", b"<iframe")


def sniff(data: bytes) -> str | None:
    """The type the bytes show (None: nothing recognisable, e.g. plain text)."""
    if not data:
        return None
    kind = filetype.guess_mime(data[:8192])
    if kind:
        return kind
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"#!"):
        return "application/x-shellscript"
    if any(marker in head[:512] for marker in _MARKUP):
        return "image/svg+xml" if b"<svg" in head else "text/html"
    return None


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def is_executable(name: str, sniffed: str | None) -> bool:
    return extension(name) in EXECUTABLE_EXTENSIONS or (sniffed or "") in EXECUTABLE_TYPES


def download_type(declared: str, sniffed: str | None) -> str:
    """The Content-Type to serve a customer's file with: its own only when both the sender and
    its bytes agree on an inert type; anything else downloads as opaque bytes."""
    declared = declared.split(";")[0].strip().lower()
    if declared in INERT_TYPES and sniffed == declared:
        return declared
    return "application/octet-stream"


MAX_NAME_BYTES = 255


def safe_name(name: str, fallback: str = "file") -> str:
    """A file name safe to show and to store: its last path part, no control or format
    characters (U+202E turns "invoice\u202egpj.exe" into "invoiceexe.jpg" on screen), at most
    255 bytes with its extension kept."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join("".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf")).split()).strip(". ")
    if not name:
        return fallback
    if len(name.encode()) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = "." + ext if dot and stem and len(ext) <= 16 else ""
        stem = (name[: len(name) - len(ext)] if ext else name).encode()[:MAX_NAME_BYTES - len(ext.encode())]
        name = stem.decode("utf-8", "ignore") + ext
    return name
