"""Business time (bot.core.business_time): hand-computed cases, then properties over random instants.

Dates used: 2026-04-13 is a Monday; 2026-04-03 (a Friday) is a holiday of the UTC calendars.
Clocks change on Sundays: New York 2026-03-08 (02:00 EST -> 03:00 EDT, at 07:00Z) and
2026-11-01 (02:00 EDT -> 01:00 EST, at 06:00Z); Berlin 2026-03-29 (02:00 CET -> 03:00 CEST, at
01:00Z) and 2026-10-25 (03:00 CEST -> 02:00 CET, at 01:00Z). EST = UTC-5, EDT = UTC-4,
CET = UTC+1, CEST = UTC+2.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.config.schema import BusinessHours
from bot.core.business_time import Calendar

HOLIDAYS = [date(2026, 4, 3), date(2026, 12, 25)]


def _hours(timezone_name: str, days: dict[str, str], holidays: list[date] | None = None) -> BusinessHours:
    return BusinessHours(timezone=timezone_name, days=days, holidays=holidays or [])


HOURS = {
    "utc": _hours("UTC", {"mon-fri": "09:00-17:00"}, HOLIDAYS),
    "split": _hours("UTC", {"mon-fri": "09:00-12:00,13:00-17:00"}, HOLIDAYS),
    "ny": _hours("America/New_York", {"mon-fri": "09:00-17:00"}),
    "ny7": _hours("America/New_York", {"mon-sun": "09:00-17:00"}),
    "ny24": _hours("America/New_York", {"mon-sun": "00:00-24:00"}),
    "ny_night": _hours("America/New_York", {"mon-sun": "00:00-08:00"}),
    "ny_small": _hours("America/New_York", {"mon-sun": "01:00-04:00"}),
    "ny_gap": _hours("America/New_York", {"mon-sun": "02:30-05:00"}),
    "ny_repeat": _hours("America/New_York", {"mon-sun": "01:30-03:00"}),
    "berlin": _hours("Europe/Berlin", {"mon-fri": "09:00-17:00"}),
    "berlin7": _hours("Europe/Berlin", {"mon-sun": "09:00-17:00"}),
    "berlin24": _hours("Europe/Berlin", {"mon-sun": "00:00-24:00"}),
}


def cal(name: str) -> Calendar:
    return Calendar.of(HOURS[name])


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# (calendar, start UTC, business minutes, due UTC)
ADD_CASES = [
    # Within one day: Mon 10:00 + 1 h 30 = 11:30.
    ("utc", "2026-04-13 10:00", 90, "2026-04-13 11:30"),
    # Before opening: counting starts at 09:00; + 30 min.
    ("utc", "2026-04-13 07:00", 30, "2026-04-13 09:30"),
    # After closing: next opening is Tue 09:00; + 30 min.
    ("utc", "2026-04-13 18:00", 30, "2026-04-14 09:30"),
    # On a weekend: Sat -> Mon 09:00; + 60 min.
    ("utc", "2026-04-18 12:00", 60, "2026-04-20 10:00"),
    # Crossing a weekend: Fri 16:00-17:00 is 60, the other 60 on Mon from 09:00.
    ("utc", "2026-04-17 16:00", 120, "2026-04-20 10:00"),
    # Exactly a whole day: due when the 480th minute ends, 17:00, not at the next opening.
    ("utc", "2026-04-13 09:00", 480, "2026-04-13 17:00"),
    # A whole week Mon 09:00 .. Fri 17:00 = 5 x 480.
    ("utc", "2026-04-13 09:00", 2400, "2026-04-17 17:00"),
    # Holiday: Thu 16:00-17:00 is 60; Fri 04-03 holiday, weekend; Mon 09:00 + 60.
    ("utc", "2026-04-02 16:00", 120, "2026-04-06 10:00"),
    # Starting on the holiday: the first business minute is Mon 09:00-09:01.
    ("utc", "2026-04-03 10:00", 1, "2026-04-06 09:01"),
    # Seconds are kept: 10:00:30 + 1 min = 10:01:30.
    ("utc", "2026-04-13 10:00:30", 1, "2026-04-13 10:01:30"),
    # Split spans: 11:00-12:00 is 60, lunch, then 13:00-14:00.
    ("split", "2026-04-13 11:00", 120, "2026-04-13 14:00"),
    # Split, starting at lunch: counting starts at 13:00.
    ("split", "2026-04-13 12:30", 30, "2026-04-13 13:30"),
    # Split, the whole morning ends at 12:00 (not 13:00).
    ("split", "2026-04-13 09:00", 180, "2026-04-13 12:00"),
    # Split: Mon 16:00-17:00 is 60; Tue 09:00-12:00 is 180 -> Tue 12:00.
    ("split", "2026-04-13 16:00", 240, "2026-04-14 12:00"),
    # New York, weekend of spring-forward: Fri 16:00 EST (21:00Z) + 60 to 17:00 EST; Mon
    # 09:00 EDT = 13:00Z + 60 = 14:00Z.
    ("ny", "2026-03-06 21:00", 120, "2026-03-09 14:00"),
    # New York, weekend of fall-back: Fri 16:00 EDT (20:00Z) + 60; Mon 09:00 EST = 14:00Z + 60.
    ("ny", "2026-10-30 20:00", 120, "2026-11-02 15:00"),
    # New York, open on the spring-forward Sunday: 09:00 EDT (13:00Z) to 17:00 EDT (21:00Z) is 8 h.
    ("ny7", "2026-03-08 13:00", 480, "2026-03-08 21:00"),
    # Sat 16:00 EST (21:00Z) + 60 to 17:00 EST; Sun 09:00 EDT = 13:00Z + 60 = 14:00Z.
    ("ny7", "2026-03-07 21:00", 120, "2026-03-08 14:00"),
    # New York, fall-back Sunday: 09:00 EST (14:00Z) to 17:00 EST (22:00Z) is 8 h.
    ("ny7", "2026-11-01 14:00", 480, "2026-11-01 22:00"),
    # Sat 16:00 EDT (20:00Z) + 60; Sun 09:00 EST = 14:00Z + 60 = 15:00Z.
    ("ny7", "2026-10-31 20:00", 120, "2026-11-01 15:00"),
    # Berlin, spring-forward weekend: Fri 16:00 CET (15:00Z) + 60; Mon 09:00 CEST = 07:00Z + 60.
    ("berlin", "2026-03-27 15:00", 120, "2026-03-30 08:00"),
    # Berlin, fall-back weekend: Fri 16:00 CEST (14:00Z) + 60; Mon 09:00 CET = 08:00Z + 60.
    ("berlin", "2026-10-23 14:00", 120, "2026-10-26 09:00"),
    # Berlin, spring-forward Sunday: 09:00 CEST (07:00Z) + 8 h = 17:00 CEST (15:00Z).
    ("berlin7", "2026-03-29 07:00", 480, "2026-03-29 15:00"),
    # Berlin, fall-back Sunday: 09:00 CET (08:00Z) + 8 h = 17:00 CET (16:00Z).
    ("berlin7", "2026-10-25 08:00", 480, "2026-10-25 16:00"),
    # 24 h calendar: business = elapsed. Sat 23:00 EST (04:00Z) + 5 h = 09:00Z (05:00 EDT;
    # the wall clock moved 6 h).
    ("ny24", "2026-03-08 04:00", 300, "2026-03-08 09:00"),
    # Sat 23:00 EDT (03:00Z) + 5 h = 08:00Z (03:00 EST; the wall clock moved 4 h).
    ("ny24", "2026-11-01 03:00", 300, "2026-11-01 08:00"),
    # Sat 23:00 CET (22:00Z) + 5 h = 03:00Z (05:00 CEST).
    ("berlin24", "2026-03-28 22:00", 300, "2026-03-29 03:00"),
    # Sat 23:00 CEST (21:00Z) + 5 h = 02:00Z (03:00 CET).
    ("berlin24", "2026-10-24 21:00", 300, "2026-10-25 02:00"),
    # 02:30 does not exist on 03-08: the span opens at the jump, 03:00 EDT = 07:00Z; + 60.
    ("ny_gap", "2026-03-08 05:00", 60, "2026-03-08 08:00"),
    # Zero minutes: the start itself, even when closed (Saturday).
    ("utc", "2026-04-18 12:00", 0, "2026-04-18 12:00"),
]


@pytest.mark.parametrize(("name", "start", "minutes", "due"), ADD_CASES)
def test_add_minutes(name: str, start: str, minutes: int, due: str) -> None:
    calendar = cal(name)
    result = calendar.add_minutes(utc(start), minutes)
    assert result == utc(due)
    assert result.tzinfo is timezone.utc
    assert calendar.minutes_between(utc(start), result) == minutes


# (calendar, start UTC, end UTC, business minutes)
BETWEEN_CASES = [
    # Within one day, rounded down: 09:00-09:45:59 is 45 min 59 s -> 45.
    ("utc", "2026-04-13 08:30", "2026-04-13 09:45:59", 45),
    # Reversed or empty interval: 0.
    ("utc", "2026-04-13 12:00", "2026-04-13 10:00", 0),
    ("utc", "2026-04-13 12:00", "2026-04-13 12:00", 0),
    # Sub-minute: 10:00:30-10:01:29 is 59 s -> 0; to 10:01:30 is 60 s -> 1.
    ("utc", "2026-04-13 10:00:30", "2026-04-13 10:01:29", 0),
    ("utc", "2026-04-13 10:00:30", "2026-04-13 10:01:30", 1),
    # A weekend alone: 0.
    ("utc", "2026-04-18 00:00", "2026-04-20 00:00", 0),
    # Thu 480, Fri holiday 0, weekend 0, Mon 480.
    ("utc", "2026-04-02 00:00", "2026-04-07 00:00", 960),
    # Split: one whole day is 180 + 240.
    ("split", "2026-04-13 00:00", "2026-04-14 00:00", 420),
    # Split: 11:30-12:00 is 30, 13:00-13:15 is 15.
    ("split", "2026-04-13 11:30", "2026-04-13 13:15", 45),
    # New York Fri 14:00Z-22:00Z (EST) + Mon 13:00Z-21:00Z (EDT).
    ("ny", "2026-03-06 00:00", "2026-03-10 00:00", 960),
    # 24 h on the spring-forward day: 00:00 EST (05:00Z) to 00:00 EDT next day (04:00Z) = 23 h.
    ("ny24", "2026-03-08 05:00", "2026-03-09 04:00", 1380),
    # 24 h on the fall-back day: 00:00 EDT (04:00Z) to 00:00 EST next day (05:00Z) = 25 h.
    ("ny24", "2026-11-01 04:00", "2026-11-02 05:00", 1500),
    # Berlin 24 h: 00:00 CET (03-28 23:00Z) to 00:00 CEST (03-29 22:00Z) = 23 h.
    ("berlin24", "2026-03-28 23:00", "2026-03-29 22:00", 1380),
    # 00:00 CEST (10-24 22:00Z) to 00:00 CET (10-25 23:00Z) = 25 h.
    ("berlin24", "2026-10-24 22:00", "2026-10-25 23:00", 1500),
    # 00:00-08:00 spanning the jump: 00:00 EST (05:00Z) to 08:00 EDT (12:00Z) = 7 h.
    ("ny_night", "2026-03-08 00:00", "2026-03-09 00:00", 420),
    # Spanning the repeat: 00:00 EDT (04:00Z) to 08:00 EST (13:00Z) = 9 h.
    ("ny_night", "2026-11-01 00:00", "2026-11-02 00:00", 540),
    # 01:00-04:00: 01:00 EST (06:00Z) to 04:00 EDT (08:00Z) = 2 h on spring-forward ...
    ("ny_small", "2026-03-08 05:00", "2026-03-09 04:00", 120),
    # ... 01:00 EDT (05:00Z) to 04:00 EST (09:00Z) = 4 h on fall-back, 3 h on a plain day.
    ("ny_small", "2026-11-01 04:00", "2026-11-02 05:00", 240),
    ("ny_small", "2026-10-31 04:00", "2026-11-01 04:00", 180),
    # 02:30-05:00 opens at the jump (07:00Z) and closes 05:00 EDT (09:00Z): 2 h; plain day 2.5 h.
    ("ny_gap", "2026-03-08 05:00", "2026-03-09 04:00", 120),
    ("ny_gap", "2026-03-07 05:00", "2026-03-08 05:00", 150),
    # 01:30-03:00 opens at the first 01:30 (EDT, 05:30Z), closes 03:00 EST (08:00Z): 2.5 h.
    ("ny_repeat", "2026-11-01 04:00", "2026-11-02 05:00", 150),
]


@pytest.mark.parametrize(("name", "start", "end", "minutes"), BETWEEN_CASES)
def test_minutes_between(name: str, start: str, end: str, minutes: int) -> None:
    assert cal(name).minutes_between(utc(start), utc(end)) == minutes


# (calendar, instant UTC, open?)
OPEN_CASES = [
    ("utc", "2026-04-13 09:00", True),  # the opening instant is open
    ("utc", "2026-04-13 16:59:59.999999", True),
    ("utc", "2026-04-13 17:00", False),  # the closing instant is not
    ("utc", "2026-04-13 08:59:59", False),
    ("utc", "2026-04-18 12:00", False),  # Saturday
    ("utc", "2026-04-03 12:00", False),  # holiday
    ("split", "2026-04-13 12:00", False),  # lunch
    ("split", "2026-04-13 13:00", True),
    ("ny", "2026-03-09 13:00", True),  # 09:00 EDT
    ("ny", "2026-03-06 13:00", False),  # 08:00 EST
    ("ny24", "2026-03-08 07:00", True),  # the instant of the jump
    ("ny_gap", "2026-03-08 06:59", False),  # 01:59 EST
    ("ny_gap", "2026-03-08 07:00", True),  # 03:00 EDT, the span's opening
]


@pytest.mark.parametrize(("name", "at", "expected"), OPEN_CASES)
def test_is_open(name: str, at: str, expected: bool) -> None:
    assert cal(name).is_open(utc(at)) is expected


def test_add_minutes_and_minutes_between_are_inverse() -> None:
    rng = random.Random(20260308)
    start_of_year = utc("2026-01-01 00:00")
    for name in HOURS:
        calendar = cal(name)
        for _ in range(150):
            start = start_of_year + timedelta(microseconds=rng.randrange(366 * 86_400 * 10**6))
            minutes = rng.randrange(0, 6000)
            due = calendar.add_minutes(start, minutes)
            assert due >= start
            assert calendar.minutes_between(start, due) == minutes
            if minutes:
                # The earliest such instant: just before it one minute is not yet complete,
                # and that last microsecond was business time.
                before = due - timedelta(microseconds=1)
                assert calendar.minutes_between(start, before) == minutes - 1
                assert calendar.is_open(before)
            end = start + timedelta(microseconds=rng.randrange(20 * 86_400 * 10**6))
            between = calendar.minutes_between(start, end)
            assert calendar.add_minutes(start, between) <= end < calendar.add_minutes(start, between + 1)


def _open_by_wall_clock(zone: ZoneInfo, week: dict[int, list[tuple[int, int]]], holidays: list[date],
                        at: datetime) -> bool:
    """An independent reading: is the local wall time of ``at`` inside a span of its date?"""
    local = at.astimezone(zone)
    if local.date() in holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in week[local.weekday()])


@pytest.mark.parametrize("name", ["utc", "split", "ny7", "ny24", "ny_small", "berlin7", "berlin24"])
def test_minutes_between_matches_counting_minute_by_minute(name: str) -> None:
    # For spans whose ends are not inside a skipped or repeated hour, business time is the set
    # of instants whose wall time lies in a span: count them minute by minute around the changes.
    rng = random.Random(name)
    calendar, hours = cal(name), HOURS[name]
    zone, week = ZoneInfo(hours.timezone), hours.minutes_by_weekday()
    for around in ("2026-03-08 06:00", "2026-03-29 01:00", "2026-04-03 12:00",
                   "2026-10-25 01:00", "2026-11-01 06:00"):
        for _ in range(4):
            start = utc(around) + timedelta(minutes=rng.randrange(-2000, 1000))
            length = rng.randrange(0, 1500)
            counted = sum(_open_by_wall_clock(zone, week, hours.holidays, start + timedelta(minutes=i))
                          for i in range(length))
            assert calendar.minutes_between(start, start + timedelta(minutes=length)) == counted


def test_always_counts_elapsed_time() -> None:
    always = Calendar.always()
    start = utc("2026-03-08 05:13:07")
    assert always.minutes_between(start, start + timedelta(days=3, seconds=59)) == 3 * 1440
    assert always.add_minutes(start, 1500) == start + timedelta(minutes=1500)
    assert always.is_open(start)


def test_instants_in_other_offsets_mean_the_same_instant() -> None:
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 4, 13, 6, 0, tzinfo=new_york)  # 10:00Z
    assert cal("utc").minutes_between(start, utc("2026-04-13 11:00")) == 60
    assert cal("utc").add_minutes(start, 90) == utc("2026-04-13 11:30")


def test_far_apart_instants_are_walked_not_kept() -> None:
    # More than a century apart: counted day by day. Weekdays in [1900-01-01, 2027-01-01),
    # minus the two holidays (both weekdays), times 480.
    calendar = Calendar.of(HOURS["utc"].model_copy())
    first, last = date(1900, 1, 1), date(2027, 1, 1)
    weekdays = sum(1 for n in range(first.toordinal(), last.toordinal()) if date.fromordinal(n).weekday() < 5)
    start, end = datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert calendar.minutes_between(start, end) == (weekdays - len(HOLIDAYS)) * 480
    assert calendar.add_minutes(start, 1) == datetime(1900, 1, 1, 9, 1, tzinfo=timezone.utc)  # a Monday


def test_decades_are_kept_when_growing_backwards() -> None:
    # A fresh calendar first asked about 2026, then about 1970-2026: the kept range grows back.
    hours = HOURS["utc"]
    calendar = Calendar(hours.zone, hours.minutes_by_weekday(), hours.holidays)
    assert calendar.minutes_between(utc("2026-04-13 00:00"), utc("2026-04-14 00:00")) == 480
    first, last = date(1970, 1, 1), date(2026, 4, 13)
    weekdays = sum(1 for n in range(first.toordinal(), last.toordinal()) if date.fromordinal(n).weekday() < 5)
    start, end = utc("1970-01-01 00:00"), utc("2026-04-13 00:00")
    assert calendar.minutes_between(start, end) == (weekdays - 1) * 480  # 2026-04-03 is a holiday
    assert calendar._table is not None and calendar._table.lo_ord <= first.toordinal()


def test_same_object_same_calendar() -> None:
    hours = HOURS["berlin"]
    assert Calendar.of(hours) is Calendar.of(hours)
    assert Calendar.of(hours.model_copy()) is Calendar.of(hours)  # equal contents share the cache
    assert Calendar.of(HOURS["berlin7"]) is not Calendar.of(hours)


def test_never_open_calendar() -> None:
    # The config refuses business hours without any open day; a calendar built directly can be.
    with pytest.raises(ValueError, match="no open hours"):
        _hours("Europe/Berlin", {})
    closed = Calendar(ZoneInfo("Europe/Berlin"), {})
    start = utc("2026-04-13 10:00")
    assert closed.minutes_between(start, start + timedelta(days=30)) == 0
    assert not closed.is_open(start)
    assert closed.add_minutes(start, 0) == start
    with pytest.raises(ValueError, match="not open on any day"):
        closed.add_minutes(start, 1)


def test_years_of_holidays_stop_the_search() -> None:
    # Open on Mondays only, and every Monday of 2026-2030 is a holiday.
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(5 * 53)]
    hours = _hours("UTC", {"mon": "09:00-17:00"}, mondays)
    with pytest.raises(ValueError, match="three years"):
        Calendar.of(hours).add_minutes(utc("2026-01-01 00:00"), 1)
    # The first Monday after the holidays, when the search is short enough.
    fewer = _hours("UTC", {"mon": "09:00-17:00"}, mondays[:52])
    assert Calendar.of(fewer).add_minutes(utc("2026-01-01 00:00"), 1) == utc("2027-01-04 09:01")


def test_refused_arguments() -> None:
    calendar = cal("utc")
    naive = datetime(2026, 4, 13, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.minutes_between(naive, utc("2026-04-14 10:00"))
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_minutes(naive, 5)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.is_open(naive)
    with pytest.raises(ValueError, match="negative"):
        calendar.add_minutes(utc("2026-04-13 10:00"), -1)
