"""When a manager digest is due and which period it covers, in the digest's own time zone.

A daily digest sent at ``at`` covers the previous calendar day in ``timezone``; a weekly one is
sent on ``day`` at ``at`` and covers the 7 days before that day (DESIGN §3). Periods are local
calendar days, so one that contains a DST change is 23 or 25 hours long, and the send instant
follows the wall clock (08:00 stays 08:00 across the change). A wall-clock time that does not
exist on a spring-forward day is read with the offset before the change (02:30 becomes 03:30);
one that happens twice is the first of the two.

Pure date arithmetic: no database, no clock (``now`` is given), no rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from bot.config import Settings
from bot.config.schema import WEEKDAYS, Digest


@dataclass(frozen=True)
class Period:
    """[start, end) as UTC instants; ``first_day`` and ``days`` in the digest's time zone."""

    first_day: date
    days: int
    start: datetime
    end: datetime
    send_at: datetime

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)


def _instant(day: date, at: time, digest: Digest) -> datetime:
    return datetime.combine(day, at, tzinfo=digest.zone).astimezone(timezone.utc)


def _send_time(digest: Digest) -> time:
    hours, minutes = digest.at.split(":")
    return time(int(hours), int(minutes))


def length(digest: Digest) -> int:
    return 7 if digest.period == "weekly" else 1


def period_starting(digest: Digest, first_day: date) -> Period:
    days = length(digest)
    after = first_day + timedelta(days=days)
    return Period(first_day=first_day, days=days, start=_instant(first_day, time(0), digest),
                  end=_instant(after, time(0), digest), send_at=_instant(after, _send_time(digest), digest))


def period_containing(digest: Digest, day: date) -> Period:
    """The period ``day`` belongs to. A weekly period begins on its send ``day`` (the digest
    sent on Monday covers Monday to Sunday of the week before)."""
    if digest.period == "daily":
        return period_starting(digest, day)
    back = (day.weekday() - WEEKDAYS.index(digest.day)) % 7
    return period_starting(digest, day - timedelta(days=back))


def previous(digest: Digest, period: Period) -> Period:
    return period_starting(digest, period.first_day - timedelta(days=period.days))


def latest_due(digest: Digest, now: datetime) -> Period:
    """The newest period whose send instant is at or before ``now``."""
    today = now.astimezone(digest.zone).date()
    period = period_containing(digest, today)
    while period.send_at > now:
        period = previous(digest, period)
    return period


def group_names(settings: Settings, digest: Digest) -> list[str]:
    """The handler groups a digest reports on (every configured group when it names none)."""
    return list(digest.groups) or [g.name for g in settings.handler_groups]
