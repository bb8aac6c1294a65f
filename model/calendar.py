"""The model's calendar: weekly steps and Spring Festival dates.

A step is one week. Weekly steps resolve what the data can tell apart (app and
payment figures are monthly or quarterly; the Spring Festival campaigns, red
envelopes from New Year's Eve to day five and Wufu's eleven days, each span one to
three weekly steps) while keeping a 2014-2025 run at 627 steps. A daily figure such as daily
active users is read as a typical day of the week; the Spring Festival peak is the
typical day of the week that holds New Year's Eve.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

#: Chinese New Year's Eve (除夕) by year. 2014-2019 match the dated red-envelope
#: and Wufu rows of the reported figures; later years from the lunar calendar.
NEW_YEARS_EVE = {
    2013: dt.date(2013, 2, 9),
    2014: dt.date(2014, 1, 30),
    2015: dt.date(2015, 2, 18),
    2016: dt.date(2016, 2, 7),
    2017: dt.date(2017, 1, 27),
    2018: dt.date(2018, 2, 15),
    2019: dt.date(2019, 2, 4),
    2020: dt.date(2020, 1, 24),
    2021: dt.date(2021, 2, 11),
    2022: dt.date(2022, 1, 31),
    2023: dt.date(2023, 1, 21),
    2024: dt.date(2024, 2, 9),
    2025: dt.date(2025, 1, 28),
    2026: dt.date(2026, 2, 16),
    2027: dt.date(2027, 2, 5),
    2028: dt.date(2028, 1, 25),
    2029: dt.date(2029, 2, 12),
    2030: dt.date(2030, 2, 2),
    2031: dt.date(2031, 1, 22),
    2032: dt.date(2032, 2, 10),
    2033: dt.date(2033, 1, 30),
    2034: dt.date(2034, 2, 18),
    2035: dt.date(2035, 2, 7),
}

STEP_DAYS = 7


def week_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    """First day of every weekly step from ``start`` up to and including ``end``.

    An ``end`` before ``start`` is refused with a one-line ParameterError (a run of no
    weeks has no outputs to read)."""
    if end < start:
        from .errors import ParameterError

        raise ParameterError(f"run.end {end} is before run.start {start}; expected an end "
                             "after the start")
    n = (end - start).days // STEP_DAYS + 1
    return [start + dt.timedelta(days=STEP_DAYS * i) for i in range(n)]


def festival_years(dates: list[dt.date]) -> np.ndarray:
    """For each step, the year whose New Year's Eve falls in that week, or 0."""
    out = np.zeros(len(dates), dtype=np.int32)
    if not dates:
        return out
    first, n = dates[0], len(dates)
    for year, eve in NEW_YEARS_EVE.items():
        i = (eve - first).days // STEP_DAYS
        if 0 <= i < n and dates[i] <= eve < dates[i] + dt.timedelta(days=STEP_DAYS):
            out[i] = year
    return out


def _campaign_steps(first_day: dt.date, days: int, year: int) -> tuple[int, int] | None:
    """The first and last step, on the weekly grid from ``first_day`` (either may lie
    outside a run), whose weeks a campaign of ``days`` days ending on ``year``'s New
    Year's Eve overlaps; None for a year not in the table."""
    eve = NEW_YEARS_EVE.get(year)
    if eve is None:
        return None
    start = eve - dt.timedelta(days=max(int(days), 1) - 1)
    return (start - first_day).days // STEP_DAYS, (eve - first_day).days // STEP_DAYS


def campaign_years(dates: list[dt.date], days: int) -> np.ndarray:
    """For each step, the year of a campaign of ``days`` days ending on New Year's Eve
    (Alipay's Wufu: "the 11 days from January 25 to New Year's Eve" of 2019) that the
    step's week overlaps, or 0."""
    out = np.zeros(len(dates), dtype=np.int32)
    if not dates:
        return out
    for year in NEW_YEARS_EVE:
        steps = _campaign_steps(dates[0], days, year)
        first, last = max(steps[0], 0), min(steps[1], len(dates) - 1)
        if first <= last:
            out[first:last + 1] = year
    return out


def campaign_weeks(first_day: dt.date, days: int, year: int) -> int:
    """How many weeks of the weekly grid from ``first_day`` the campaign of ``days`` days
    ending on ``year``'s New Year's Eve overlaps: from the calendar, so the same
    however much of the campaign a run holds (0 for a year not in the table)."""
    steps = _campaign_steps(first_day, days, year)
    return 0 if steps is None else steps[1] - steps[0] + 1


def step_of(dates: list[dt.date], day: dt.date) -> int:
    """Index of the step whose week holds ``day`` (clipped to the horizon)."""
    i = (day - dates[0]).days // STEP_DAYS
    return int(min(max(i, 0), len(dates) - 1))


def decimal_year(day: dt.date) -> float:
    start = dt.date(day.year, 1, 1)
    length = (dt.date(day.year + 1, 1, 1) - start).days
    return day.year + (day - start).days / length
