"""The one source of time. Made in ``app.py`` and passed down; nothing else calls ``now()``.

``DESKBELL_NOW=<ISO-8601 with offset>`` starts the clock at that instant (it then advances in
real time), so drills and tests can move through days without sleeping. Must not hold global
state: every process builds its own clock.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone


class Clock:
    """Wall-clock time in UTC, optionally shifted to start at a given instant."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = timedelta(0)
        if start is not None:
            if start.tzinfo is None:
                raise ValueError("the start instant needs a UTC offset, e.g. 2026-01-05T09:00:00+00:00")
            self._offset = start - datetime.now(timezone.utc)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self._offset

    def monotonic(self) -> float:
        return time.monotonic()

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> "Clock":
        value = (environ or {}).get("DESKBELL_NOW", "").strip()
        return cls(datetime.fromisoformat(value) if value else None)


class FrozenClock(Clock):
    """A clock that moves only when told to (tests)."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        self._at = at
        self._mono = 0.0

    def now(self) -> datetime:
        return self._at

    def monotonic(self) -> float:
        return self._mono

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self._at += step
        self._mono += step.total_seconds()
