"""Jinja filters that write numbers, durations and times for people, in text and HTML mail.

Formatting only: no escaping decisions (autoescape does that), no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def duration(minutes: float | int | None) -> str:
    """Minutes as "45 min", "3 h 05 min", "2 d 4 h"; "–" for no value."""
    if minutes is None:
        return "–"
    total = int(round(minutes))
    if total < 60:
        return f"{total} min"
    hours, rest = divmod(total, 60)
    if hours < 48:
        return f"{hours} h {rest:02d} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def percent(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f} %" if float(value).is_integer() else f"{value:.1f} %"


def change(value: float | int | None, previous: float | int | None, unit: str = "") -> str:
    """The change from the previous period: "+3", "−2.5 %", "±0"; "" when either is missing."""
    if value is None or previous is None:
        return ""
    delta = value - previous
    if delta == 0:
        return "±0"
    shown = f"{abs(delta):.1f}".rstrip("0").rstrip(".") if isinstance(delta, float) else str(abs(delta))
    return f"{'+' if delta > 0 else '−'}{shown}{unit}"


def local_time(value: str | datetime | None, pattern: str = "%a %d %b %H:%M") -> str:
    """An ISO instant (with its offset, already in the reader's time zone) as ``pattern``."""
    if value is None:
        return "–"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.strftime(pattern)


def clip(text: str, width: int) -> str:
    """One line of at most ``width`` characters (control characters and breaks become spaces)."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= width else line[:width - 1].rstrip() + "…"


FILTERS: dict[str, Any] = {"duration": duration, "percent": percent, "change": change,
                           "local_time": local_time, "clip": clip}
