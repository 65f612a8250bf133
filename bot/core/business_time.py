"""Business time: how many business minutes lie between two instants, and which instant comes
a number of business minutes after another, in one ``business_hours`` entry of the configuration.

A ``Calendar`` is made from a ``BusinessHours`` (``Calendar.of(hours)``). Its open spans are wall
times of the calendar's timezone, per local date; holidays are local dates with no business
time. Each span becomes the interval between two real instants, so counting is in real elapsed
time and stays exact across daylight-saving changes:

* a span boundary is the first instant at which the local clock shows that wall time or later.
  09:00-17:00 is therefore 8 hours on every day, a change night included; 00:00-24:00 is 23
  hours on the day the clock springs forward and 25 hours on the day it falls back; a boundary
  inside the skipped hour is the instant of the jump (02:30 on a night that skips 02:00-03:00
  means 03:00 new time); a boundary inside the repeated hour is its first pass.
* ``minutes_between`` counts whole minutes, rounded down, of business time in [start, end).
* ``add_minutes`` gives the earliest instant by which exactly that many business minutes have
  elapsed after ``start`` (so a 480-minute target from 09:00 on a 09:00-17:00 day is 17:00 the
  same day, not the next opening). It is the inverse of ``minutes_between``:
  ``minutes_between(s, add_minutes(s, n)) == n``.

Instants in and out are timezone-aware datetimes; results are in UTC. A naive datetime is
refused (ValueError): it would not say which instant it means.

Speed: each calendar keeps, for a growing range of local dates, the open intervals as sorted
microsecond instants with the business time elapsed before each. Days are computed once, when
an instant first needs them; after that ``minutes_between``, ``add_minutes`` and ``is_open``
are two binary searches, so a sweep over 100,000 tickets is cheap. Instants more than about a
century away from the others are still answered, by walking the days between without keeping
them.

This module must not touch the database, do I/O or read a clock: instants are given by the
caller (the clock lives in ``bot.clock``).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, ClassVar, NamedTuple

if TYPE_CHECKING:
    from bot.config.schema import BusinessHours

__all__ = ["Calendar"]

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_US_PER_MINUTE = 60_000_000
_MINUTES_PER_DAY = 1440
# add_minutes gives up after this many days in a row without business time (holidays, say).
_IDLE_DAYS = 3 * 366
# Dates kept per calendar at most (a century); instants further apart are walked, not kept.
_MAX_CACHED_DAYS = 100 * 366
# The least number of dates a range grows by; it also at least doubles, so growth is amortised.
_GROW_DAYS = 64
# Local dates whose neighbours are still representable as datetimes.
_MIN_ORDINAL = date.min.toordinal() + 3
_MAX_ORDINAL = date.max.toordinal() - 3
_MAX_US = (date.max.toordinal() - date(1970, 1, 1).toordinal()) * 86_400_000_000


class _Table(NamedTuple):
    """Cached local dates [lo_ord, hi_ord) of one calendar; never changed once made.

    ``bounds`` alternates the opening and closing instants (µs since the epoch) of the open
    intervals, in order; ``cums[i]`` is the business time (µs) elapsed at ``bounds[i]``,
    counted from an origin fixed for the calendar's life (so values from different tables of
    one calendar can be compared).
    """

    lo_ord: int
    hi_ord: int
    lo_us: int  # first instant of local date lo_ord
    hi_us: int  # first instant of local date hi_ord
    bounds: list[int]
    cums: list[int]
    cum_lo: int  # business time elapsed at lo_us
    cum_hi: int  # business time elapsed at hi_us
    last_open_ord: int  # the last cached date with business time (lo_ord - 1 when none)


def _us(at: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    try:
        delta = at - _EPOCH
    except TypeError:
        raise ValueError(f"expected a timezone-aware datetime, got {at!r}") from None
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _datetime(us: int) -> datetime:
    """The aware UTC datetime of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=us)


class Calendar:
    """Open hours of one ``business_hours`` entry, for counting business minutes.

    Use ``Calendar.of(hours)``; ``Calendar.always()`` is open around the clock. Safe to share
    between threads: readers see immutable tables, growth happens under a lock.
    """

    _by_object: ClassVar[dict[int, tuple[object, Calendar]]] = {}
    _by_content: ClassVar[dict[tuple[object, ...], Calendar]] = {}
    _always: ClassVar[Calendar | None] = None
    _made_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        zone: tzinfo,
        week: Mapping[int, Sequence[tuple[int, int]]],
        holidays: Iterable[date] = (),
    ) -> None:
        """``week``: open spans per weekday (0 = Monday) as ``(start, end)`` minutes after local
        midnight, 0 <= start < end <= 1440, in order and not overlapping (what
        ``BusinessHours.minutes_by_weekday`` gives). Days missing from ``week`` are closed."""
        spans_by_day: list[tuple[tuple[int, int], ...]] = []
        for day in range(7):
            spans = tuple((int(s), int(e)) for s, e in week.get(day, ()))
            previous_end = 0
            for start, end in spans:
                if not (previous_end <= start < end <= _MINUTES_PER_DAY):
                    raise ValueError(f"weekday {day}: spans must be in order within 0..1440 minutes, got {spans}")
                previous_end = end
            spans_by_day.append(spans)
        self.zone = zone
        self._week = tuple(spans_by_day)
        self._holidays = frozenset(d.toordinal() for d in holidays)
        self._never_open = not any(self._week)
        self._table: _Table | None = None
        self._lock = threading.Lock()

    # -- making ---------------------------------------------------------------------------------

    @classmethod
    def of(cls, hours: BusinessHours) -> Calendar:
        """The calendar of a ``BusinessHours``; the same instance for the same object (and for
        equal contents), so its cached days are shared. A ``BusinessHours`` is read once: it
        must not be changed after it was given here."""
        entry = cls._by_object.get(id(hours))
        if entry is not None and entry[0] is hours:
            return entry[1]
        week = hours.minutes_by_weekday()
        key = (hours.timezone, tuple(tuple(week[d]) for d in range(7)), frozenset(hours.holidays))
        with cls._made_lock:
            calendar = cls._by_content.get(key)
            if calendar is None:
                if len(cls._by_content) >= 256:  # configurations reloaded many times over
                    cls._by_content.clear()
                calendar = cls._by_content[key] = cls(hours.zone, week, hours.holidays)
            if len(cls._by_object) >= 256:
                cls._by_object.clear()
            # The object is kept so that its id cannot be reused by another while it is listed.
            cls._by_object[id(hours)] = (hours, calendar)
        return calendar

    @classmethod
    def always(cls) -> Calendar:
        """Open every minute of every day (business time = elapsed time)."""
        if cls._always is None:
            cls._always = cls(_UTC, {d: [(0, _MINUTES_PER_DAY)] for d in range(7)})
        return cls._always

    def __repr__(self) -> str:
        return f"Calendar(zone={self.zone!s}, week={self._week!r}, holidays={len(self._holidays)})"

    # -- questions ------------------------------------------------------------------------------

    def minutes_between(self, start: datetime, end: datetime) -> int:
        """Whole business minutes (rounded down) in [start, end); 0 when end <= start."""
        a, b = _us(start), _us(end)
        if b <= a:
            return 0
        table = self._table
        if table is None or not (table.lo_us <= a and b < table.hi_us):
            table = self._cover(a, b)
            if table is None:
                return self._walk_between(a, b) // _US_PER_MINUTE
        bounds, cums, cum_lo = table.bounds, table.cums, table.cum_lo
        i = bisect_right(bounds, a)
        ca = cums[i - 1] + (a - bounds[i - 1]) if i & 1 else (cums[i - 1] if i else cum_lo)
        i = bisect_right(bounds, b)
        cb = cums[i - 1] + (b - bounds[i - 1]) if i & 1 else (cums[i - 1] if i else cum_lo)
        return (cb - ca) // _US_PER_MINUTE

    def add_minutes(self, start: datetime, minutes: int) -> datetime:
        """The earliest instant (UTC) by which ``minutes`` business minutes have elapsed after
        ``start``; counting begins at the next opening when ``start`` is outside business
        hours. ``start`` itself when ``minutes`` is 0.

        ValueError: ``minutes`` negative, the calendar never open, or no business time in three
        years in a row (holidays) before the minutes are used up.
        """
        a = _us(start)
        if minutes < 0:
            raise ValueError(f"minutes must not be negative, got {minutes}")
        if minutes == 0:
            return start
        if self._never_open:
            raise ValueError(f"the business hours in {self.zone} are not open on any day of the week")
        need = int(minutes) * _US_PER_MINUTE
        if need != minutes * _US_PER_MINUTE:
            raise ValueError(f"minutes must be a whole number, got {minutes!r}")
        if a + need >= _MAX_US:
            raise ValueError(f"{minutes} business minutes after {start} is past the year 9999")
        table = self._table
        if table is None or not (table.lo_us <= a < table.hi_us):
            table = self._cover(a)
        if table is None:
            return _datetime(self._walk_add(a, need))
        bounds, cums = table.bounds, table.cums
        i = bisect_right(bounds, a)
        target = need + (cums[i - 1] + (a - bounds[i - 1]) if i & 1 else (cums[i - 1] if i else table.cum_lo))
        start_ord = 0
        while table.cum_hi < target:
            start_ord = start_ord or self._local_ordinal(a)
            if table.hi_ord - max(table.last_open_ord, start_ord) > _IDLE_DAYS:
                raise ValueError(
                    f"the business hours in {self.zone} have no open time in the three years"
                    f" after {date.fromordinal(max(table.last_open_ord, start_ord))} (holidays?)"
                )
            if table.hi_ord >= _MAX_ORDINAL + 2:
                raise ValueError(f"{minutes} business minutes after {start} run past the year 9999")
            # Grow no further than the end of the idle window, so that it is checked exactly.
            window_end = max(table.last_open_ord, start_ord) + _IDLE_DAYS + 2
            table = self._grow(table.lo_ord, table.hi_ord + 1, upto=window_end)
            if table is None:
                return _datetime(self._walk_add(a, need))
        # The first closing instant by which the target is reached; cums only repeat across a
        # closed gap, so bisect_left lands on a closing bound (odd index), never an opening.
        k = bisect_left(table.cums, target)
        return _datetime(table.bounds[k] - (table.cums[k] - target))

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` is in business hours (an opening instant is open, a closing one not)."""
        a = _us(at)
        table = self._table
        if table is None or not (table.lo_us <= a < table.hi_us):
            table = self._cover(a)
        if table is not None:
            return bool(bisect_right(table.bounds, a) & 1)
        o = self._local_ordinal(a)
        for ordinal in range(o - 1, o + 2):
            bounds = self._day_bounds(ordinal)
            if any(bounds[i] <= a < bounds[i + 1] for i in range(0, len(bounds), 2)):
                return True
        return False

    # -- days -----------------------------------------------------------------------------------

    def _local_ordinal(self, us: int) -> int:
        """The local date (as an ordinal) of an instant."""
        try:
            ordinal = _datetime(us).astimezone(self.zone).toordinal()
        except (OverflowError, ValueError):
            ordinal = 0
        if not _MIN_ORDINAL <= ordinal <= _MAX_ORDINAL:
            raise ValueError(f"{_datetime(us) if ordinal else us} is too close to the ends of the datetime range")
        return ordinal

    def _instant(self, day: date, minute: int) -> int:
        """The first instant (µs) at which the local clock shows ``minute`` of ``day`` or later."""
        if minute >= _MINUTES_PER_DAY:
            day, minute = day + timedelta(days=1), minute - _MINUTES_PER_DAY
        wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
        local = wall.replace(tzinfo=self.zone)
        utc = local.astimezone(_UTC)
        if utc.astimezone(self.zone).replace(tzinfo=None) == wall:
            return _us(utc)  # an existing wall time; fold=0 is its first pass when repeated
        # ``wall`` is skipped by a jump forward. fold=0 read it with the offset before the jump
        # (an instant after the jump); fold=1 with the offset after it (an instant before).
        # The jump itself lies between: search it.
        lo, hi = _us(local.replace(fold=1).astimezone(_UTC)), _us(utc)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _datetime(mid).astimezone(self.zone).replace(tzinfo=None) >= wall:
                hi = mid
            else:
                lo = mid
        return hi

    def _day_bounds(self, ordinal: int) -> list[int]:
        """Opening and closing instants (µs) of the open intervals of one local date."""
        spans = self._week[(ordinal - 1) % 7]  # ordinal 1 (0001-01-01) is a Monday
        if not spans or ordinal in self._holidays:
            return []
        day = date.fromordinal(ordinal)
        bounds: list[int] = []
        for start, end in spans:
            s, e = self._instant(day, start), self._instant(day, end)
            if e <= s:  # the whole span lies in a skipped hour
                continue
            if bounds and bounds[-1] == s:
                bounds[-1] = e
            else:
                bounds += (s, e)
        return bounds

    def _build(self, lo_ord: int, hi_ord: int) -> tuple[list[int], list[int], int, int | None]:
        """bounds, cums (from 0), business time and the last open date of dates [lo_ord, hi_ord)."""
        bounds: list[int] = []
        cums: list[int] = []
        total = 0
        last_open = None
        for ordinal in range(lo_ord, hi_ord):
            day = self._day_bounds(ordinal)
            if not day:
                continue
            last_open = ordinal
            for i in range(0, len(day), 2):
                s, e = day[i], day[i + 1]
                if bounds and bounds[-1] == s:  # 24:00 meeting the next day's 00:00
                    bounds[-1] = e
                    total += e - s
                    cums[-1] = total
                else:
                    bounds += (s, e)
                    cums += (total, total + e - s)
                    total += e - s
        return bounds, cums, total, last_open

    # -- the cache ------------------------------------------------------------------------------

    def _cover(self, *instants: int) -> _Table | None:
        """A table holding ``instants`` (growing the cache), or None when that would keep more
        than ``_MAX_CACHED_DAYS`` dates."""
        ordinals = [self._local_ordinal(us) for us in instants]
        # One date of margin each side: a boundary instant belongs to the date whose first
        # instant precedes it, which a clock turned back over midnight can make the day before.
        lo, hi = min(ordinals) - 1, max(ordinals) + 2
        return self._grow(lo, hi)

    def _grow(self, lo: int, hi: int, upto: int | None = None) -> _Table | None:
        """A table holding dates [lo, hi) and the ones already kept (None: too many dates);
        ``upto``: not beyond that date, however it would grow otherwise."""
        with self._lock:
            table = self._table
            if table is not None and table.lo_ord <= lo and hi <= table.hi_ord:
                return table
            if table is None:
                need_lo, need_hi = lo, hi
                new_lo, new_hi = lo, max(hi, lo + _GROW_DAYS)
            else:
                need_lo, need_hi = min(lo, table.lo_ord), max(hi, table.hi_ord)
                step = max(_GROW_DAYS, table.hi_ord - table.lo_ord)  # at least double
                new_lo = table.lo_ord if lo >= table.lo_ord else min(lo, table.lo_ord - step)
                new_hi = table.hi_ord if hi <= table.hi_ord else max(hi, table.hi_ord + step)
            if need_hi - need_lo > _MAX_CACHED_DAYS:
                return None
            if new_hi - new_lo > _MAX_CACHED_DAYS:  # keep what is needed, grow with what is left
                new_lo = max(new_lo, need_lo - (_MAX_CACHED_DAYS - (need_hi - need_lo)))
                new_hi = min(new_hi, new_lo + _MAX_CACHED_DAYS)
            if upto is not None:
                new_hi = min(new_hi, max(hi, upto))
            new_lo, new_hi = max(new_lo, _MIN_ORDINAL - 1), min(new_hi, _MAX_ORDINAL + 2)
            if table is None:
                bounds, cums, total, last_open = self._build(new_lo, new_hi)
                table = _Table(
                    new_lo, new_hi, self._instant(date.fromordinal(new_lo), 0),
                    self._instant(date.fromordinal(new_hi), 0), bounds, cums, 0, total,
                    new_lo - 1 if last_open is None else last_open,
                )
            else:
                bounds, cums = table.bounds, table.cums
                cum_lo, cum_hi, lo_us, hi_us = table.cum_lo, table.cum_hi, table.lo_us, table.hi_us
                last_open_ord = table.last_open_ord
                if new_lo < table.lo_ord:
                    before, before_cums, total, last_open = self._build(new_lo, table.lo_ord)
                    if last_open_ord < table.lo_ord:  # nothing open in the kept dates
                        last_open_ord = new_lo - 1 if last_open is None else last_open
                    cum_lo -= total
                    bounds = before + bounds
                    cums = [c + cum_lo for c in before_cums] + cums
                    lo_us = self._instant(date.fromordinal(new_lo), 0)
                if new_hi > table.hi_ord:
                    after, after_cums, total, last_open = self._build(table.hi_ord, new_hi)
                    bounds = bounds + after
                    cums = cums + [c + cum_hi for c in after_cums]
                    cum_hi += total
                    hi_us = self._instant(date.fromordinal(new_hi), 0)
                    if last_open is not None:
                        last_open_ord = last_open
                table = _Table(new_lo, new_hi, lo_us, hi_us, bounds, cums, cum_lo, cum_hi, last_open_ord)
            self._table = table
            return table

    # -- without the cache (instants a century apart) -------------------------------------------

    def _walk_between(self, a: int, b: int) -> int:
        """Business time (µs) in [a, b), day by day."""
        total = 0
        for ordinal in range(self._local_ordinal(a) - 1, self._local_ordinal(b) + 2):
            bounds = self._day_bounds(ordinal)
            for i in range(0, len(bounds), 2):
                s, e = max(bounds[i], a), min(bounds[i + 1], b)
                if e > s:
                    total += e - s
        return total

    def _walk_add(self, a: int, need: int) -> int:
        """The instant by which ``need`` µs of business time have elapsed after ``a``, day by day."""
        ordinal = self._local_ordinal(a) - 1
        idle = 0
        while True:
            if ordinal > _MAX_ORDINAL + 1:
                raise ValueError("business time runs past the year 9999")
            bounds = self._day_bounds(ordinal)
            idle += 1
            for i in range(0, len(bounds), 2):
                s, e = max(bounds[i], a), bounds[i + 1]
                if e > s:
                    idle = 0
                    if e - s >= need:
                        return s + need
                    need -= e - s
            if idle > _IDLE_DAYS:
                raise ValueError(
                    f"the business hours in {self.zone} have no open time in the three years"
                    f" before {date.fromordinal(ordinal)} (holidays?)"
                )
            ordinal += 1
