"""Reported figures as calibration targets, and the model's value for each.

A *targets file* is a CSV with one reported figure a row::

    date,platform,series,value,unit,kind,weight,sigma,source
    2018-12,wechat,miniprogram_dau,210,million_users,exact,4,,seed 000

Required columns are ``date``, ``platform``, ``series`` and ``value``; ``unit``,
``kind``, ``weight``, ``sigma`` and ``source`` are optional and any other column is
ignored (``calibration/data/targets.csv`` also carries ``tier`` and ``rule``).

* ``date``: ``YYYY-MM-DD``, or ``YYYY-MM`` when only the month is known, which is read
  as the 15th of the month (the middle of a figure that describes the month).
* ``platform``: ``wechat``, ``alipay`` or ``all`` (for measures of both platforms).
* ``series``: a name in :data:`SERIES` (what the model can produce) or in
  :data:`KNOWN_UNMODELLED` (figures the model cannot produce: kept in the file, reported
  as unused, never matched).
* ``value``: the figure in the row's unit: millions of people for counts of users
  (``million_users`` and ``million_people`` mean the same), ``million_accounts`` for
  WeChat's account counts, ``million_mini_programs``, ``share`` (0 to 1) or ``percent``.
* ``kind``: ``exact`` (default), ``lower`` (the figure is a lower bound, "over 600
  million": only a shortfall is an error) or ``upper``.
* ``weight`` (default 1) and ``sigma`` (default none): the row's weight in the
  calibration loss and, if known, the figure's standard error in its unit.

:func:`load_targets` reads such a file into :class:`Target` records and refuses any row
it cannot use with a one-line :class:`~model.errors.DataError` naming the file, the line
number (the file's line, the header being line 1), the column, the bad value and what
is allowed. Rows of a series in :data:`KNOWN_UNMODELLED` are listed in
``LoadedTargets.unused`` with the reason; no row is dropped silently.

:func:`simulated_values` reads every target's value from simulated frames (the output
of ``model.simulate``: one row per weekly step) as a ``replicates x targets`` array. A
target dated ``d`` reads, according to its series' :attr:`SeriesSpec.read`:

* ``at_date``: the column at the weekly step whose week holds ``d``;
* ``festival_week``: the column at the Spring Festival week of ``d``'s calendar year
  (the step flagged ``all.spring_festival == 1``, the week holding New Year's Eve,
  ``model.calendar.NEW_YEARS_EVE``);
* ``yoy_annual_mean``: :math:`100\\,(\\bar x_{Y} / \\bar x_{Y-1} - 1)`, where
  :math:`\\bar x_Y` is the mean of the column over the weekly steps starting in
  calendar year :math:`Y` = ``d.year`` (steps where the column is blank, such as
  before launch, are left out of the mean).

A WeChat ``app_mau`` figure in ``million_accounts`` is compared with the model's WeChat
app users (people) times ``apps.wechat_accounts_per_person``: Tencent reports accounts,
the model counts people.

Example::

    import datetime as dt
    from model import simulate
    from calibration.data import load_targets, simulated_values

    loaded = load_targets("calibration/data/targets.csv",
                          start=dt.date(2014, 1, 1), end=dt.date(2025, 12, 31))
    frame = simulate(agents=20_000, seed=1)
    simulated_values([frame], loaded.targets, params={})   # shape (1, n_targets)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import calendar
from model.errors import DataError
from model.inputs import read_text
from model.params import BY_NAME

#: Platforms a target may name; ``all`` is for measures of both platforms together.
PLATFORMS = ("wechat", "alipay", "all")
#: ``exact`` figures; ``lower`` bounds ("over 600 million"); ``upper`` bounds.
KINDS = ("exact", "lower", "upper")
REQUIRED_COLUMNS = ("date", "platform", "series", "value")
OPTIONAL_COLUMNS = ("unit", "kind", "weight", "sigma", "source")

# How a series is read from a frame (SeriesSpec.read).
AT_DATE = "at_date"
FESTIVAL_WEEK = "festival_week"
YOY_ANNUAL_MEAN = "yoy_annual_mean"

#: Units of a count of people: reports say "users", the model says "people".
PEOPLE_UNITS = ("million_people", "million_users")
#: WeChat reports monthly active *accounts*; converted with this parameter.
ACCOUNTS_UNIT = "million_accounts"
ACCOUNTS_PER_PERSON = "apps.wechat_accounts_per_person"

_BOTH = ("wechat", "alipay")


@dataclass(frozen=True)
class SeriesSpec:
    """How one reported series is read from the model's weekly frame.

    ``column`` names the model output, with ``{p}`` standing for the target's platform;
    ``read`` is ``at_date``, ``festival_week`` or ``yoy_annual_mean`` (module docstring);
    ``units`` are the units a row may give, the first being the default when the row
    gives none; ``platforms`` those a row may name.
    """

    column: str
    read: str
    units: tuple[str, ...]
    platforms: tuple[str, ...]
    meaning: str
    signed: bool = False  # negative figures allowed (growth rates)
    share: bool = False  # figures lie in [0, 1]

    def column_for(self, platform: str) -> str:
        return self.column.format(p=platform)


#: Every series the model can produce, by the name used in targets files.
SERIES: dict[str, SeriesSpec] = {
    "app_users": SeriesSpec(
        "{p}.app_users", AT_DATE, PEOPLE_UNITS, _BOTH, "people using the app"),
    "app_mau": SeriesSpec(
        "{p}.app_mau", AT_DATE, (ACCOUNTS_UNIT, *PEOPLE_UNITS), _BOTH,
        "monthly active users of the app: WeChat's accounts (Tencent's combined Weixin "
        "and WeChat MAU; in million_accounts the model's WeChat app users, people, are "
        f"multiplied by {ACCOUNTS_PER_PERSON}), Alipay's people (the model's Alipay "
        "users times apps.alipay_monthly_share)"),
    "app_annual_active_users": SeriesSpec(
        "{p}.app_users", AT_DATE, PEOPLE_UNITS, ("alipay",),
        "people using the Alipay app in the year (Ant's annual active users): the "
        "model's Alipay users"),
    "pay_users": SeriesSpec(
        "{p}.pay_users", AT_DATE, PEOPLE_UNITS, _BOTH, "people paying with the platform"),
    "miniprogram_users_cumulative": SeriesSpec(
        "{p}.miniprogram_users_cumulative", AT_DATE, PEOPLE_UNITS, _BOTH,
        "people who have ever used one of the platform's mini programs"),
    "miniprogram_dau": SeriesSpec(
        "{p}.miniprogram_dau", AT_DATE, PEOPLE_UNITS, _BOTH,
        "mini-program users on a typical day of the week"),
    "miniprogram_mau": SeriesSpec(
        "{p}.miniprogram_mau", AT_DATE, PEOPLE_UNITS, _BOTH,
        "mini-program users in the month"),
    "miniprogram_mau_questmobile": SeriesSpec(
        "{p}.miniprogram_mau", AT_DATE, PEOPLE_UNITS, _BOTH,
        "mini-program users in the month as QuestMobile's phone panel measures them "
        "(third-party, tier B): the model's monthly mini-program users"),
    "mini_programs_count": SeriesSpec(
        "{p}.mini_programs_count", AT_DATE, ("million_mini_programs",), _BOTH,
        "mini programs published (each merchant's first and its extra ones)"),
    "miniprogram_dau_share": SeriesSpec(
        "{p}.miniprogram_dau_share", AT_DATE, ("share",), _BOTH,
        "the platform's share of all mini-program daily users", share=True),
    "miniprogram_dau_peak": SeriesSpec(
        "{p}.miniprogram_dau", FESTIVAL_WEEK, PEOPLE_UNITS, _BOTH,
        "mini-program daily users in the Spring Festival week of the date's year"),
    "red_envelope_participants": SeriesSpec(
        "wechat.red_envelope_participants", FESTIVAL_WEEK, PEOPLE_UNITS, ("wechat",),
        "people sending or receiving WeChat red envelopes in the Spring Festival week "
        "of the date's year"),
    "miniprogram_usage_frequency_growth_yoy": SeriesSpec(
        "{p}.miniprogram_uses_per_dau", YOY_ANNUAL_MEAN, ("percent",), _BOTH,
        "growth on the year before of average daily usage frequency, in percent: the "
        "model's mean uses per daily user on a day of use, averaged over the calendar "
        "year",
        signed=True),
    "users_multihoming_share": SeriesSpec(
        "all.users_multihoming_share", AT_DATE, ("share",), ("all",),
        "share of monthly mini-program users who use both platforms' mini programs",
        share=True),
    "merchants_multihoming_share": SeriesSpec(
        "all.merchants_multihoming_share", AT_DATE, ("share",), ("all",),
        "share of merchants with a mini program who are on both platforms", share=True),
}

#: Series that appear in ``reported_figures.csv`` but that the model does not produce,
#: with the reason. A targets file may keep such rows; they are listed as unused.
KNOWN_UNMODELLED: dict[str, str] = {
    "app_dau": "the model has no daily users of the apps themselves, only of mini programs",
    "app_mau_questmobile": "a third-party panel estimate (QuestMobile, Analysys) measured "
                           "differently from the companies' own user counts that the app "
                           "curves follow",
    "app_users_global": "includes partner e-wallets abroad (Paytm, TrueMoney); the model's "
                        "population is China",
    "app_users_registered": "registered accounts, not active users",
    "ecosystem_taobao_mau_questmobile": "Taobao's audience is a parameter "
                                        "(traffic_sharing.taobao_audience), not an output",
    "merchants": "stores accepting mobile payment; the model's merchants are would-be "
                 "mini-program builders",
    "ecosystem_app_miniprogram_mau": "one app's mini program (Meituan in WeChat, Ele.me in "
                                     "Alipay); the model has no single mini programs",
    "ecosystem_eleme_app_mau": "Ele.me's own app; the model's Alibaba-app audiences are "
                               "parameters, not outputs",
    "ecosystem_taobao_tmall_mobile_mau": "Taobao and Tmall's audience is a parameter "
                                         "(traffic_sharing.*_audience), not an output",
    "ecosystem_taobao_users_via_alipay_miniprogram": "Taobao users won through Alipay; the "
                                                     "model does not move users into "
                                                     "Alibaba's apps",
    "mini_programs_count_mau_over_1m": "mini programs by audience size; the model counts "
                                       "mini programs, not each one's users",
    "mini_programs_count_mau_over_5m": "mini programs by audience size; the model counts "
                                       "mini programs, not each one's users",
    "miniprogram_gmv": "the model does not count transaction value",
    "wufu_participants_cumulative": "the model has Wufu's effect on mini-program use, not "
                                    "its participants",
    "miniprogram_developers": "the model has no developers, only merchants",
    "miniprogram_service_providers": "the model has no service providers",
    "pay_bound_cards": "counts bank cards, not people",
    "pay_daily_transactions": "the model does not count payment transactions",
    "red_envelope_mau": "the model counts red-envelope participants in Spring Festival "
                        "week only, not monthly",
    "red_envelope_participants_holiday": "counts the whole holiday (New Year's Eve to day "
                                         "five); the model's participants series is matched "
                                         "to the New Year's Eve figures "
                                         "(red_envelope_participants)",
    "red_envelopes_sent": "the model counts people, not envelopes",
    "red_envelopes_sent_holiday": "the model counts people, not envelopes",
    "wufu_completers": "the model has Wufu's effect on mini-program use, not its "
                       "participants",
    "wufu_participants": "the model has Wufu's effect on mini-program use, not its "
                         "participants",
}


@dataclass(frozen=True)
class Target:
    """One reported figure the model is calibrated to.

    ``row`` is the line of the targets file it came from (the header is line 1);
    ``value`` is in ``unit``, which is one of its series' units (``SERIES``).
    """

    row: int
    date: dt.date
    platform: str
    series: str
    value: float
    kind: str = "exact"
    weight: float = 1.0
    sigma: float | None = None
    unit: str = ""
    source: str = ""
    label: str = ""

    @property
    def spec(self) -> SeriesSpec:
        return SERIES[self.series]

    @property
    def column(self) -> str:
        """The model output this target reads."""
        return self.spec.column_for(self.platform)


@dataclass
class LoadedTargets:
    """What :func:`load_targets` read: usable targets, and rows kept but not usable."""

    path: Path
    targets: list[Target]
    unused: list[tuple[int, str]] = field(default_factory=list)


# --- reading a targets file ---------------------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")
DATE_FORMATS = "a date YYYY-MM-DD, or YYYY-MM (read as the 15th of the month)"


def parse_date(text: str) -> dt.date | None:
    """``YYYY-MM-DD``, or ``YYYY-MM`` read as the 15th; None if neither."""
    match = _DATE_RE.match(text.strip())
    if not match:
        return None
    year, month, day = match.groups()
    try:
        return dt.date(int(year), int(month), int(day) if day else 15)
    except ValueError:
        return None


#: A number as a person writes it in a CSV: digits, an optional point and exponent.
#: ``float`` alone would also take ``1_000``, ``inf``, ``nan`` and non-ASCII digits.
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII)


def parse_number(text: str) -> float | None:
    """A finite float written as plain decimal digits (``12``, ``-0.5``, ``1e3``), or
    None (``1_000``, ``1,000``, ``inf`` and ``nan`` are None)."""
    text = text.strip()
    if not _NUMBER_RE.match(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _error(path: Path, line: int, column: str, value: str, allowed: str) -> DataError:
    # repr() keeps the message on one line whatever the cell holds
    return DataError(f"{path}: line {line}, column {column!r}: value {value!r} is not "
                     f"allowed; expected {allowed}")


def _read_row(path: Path, line: int, cells: Mapping[str, str], start: dt.date,
              end: dt.date) -> Target | str:
    """One data row as a Target, or the reason it is kept but unused."""

    def bad(column: str, allowed: str) -> DataError:
        return _error(path, line, column, cells.get(column, ""), allowed)

    for column in REQUIRED_COLUMNS:
        if not cells.get(column):
            raise bad(column, "a value (the column is required)")
    date = parse_date(cells["date"])
    if date is None:
        raise bad("date", DATE_FORMATS)
    platform = cells["platform"]
    if platform not in PLATFORMS:
        raise bad("platform", f"one of {', '.join(PLATFORMS)}")
    value = parse_number(cells["value"])
    if value is None:
        raise bad("value", "a finite number")
    series = cells["series"]
    if series in KNOWN_UNMODELLED:
        return f"series {series!r} is not produced by the model: {KNOWN_UNMODELLED[series]}"
    spec = SERIES.get(series)
    if spec is None:
        raise bad("series", f"a series the model produces: {', '.join(sorted(SERIES))} "
                            f"(or one listed as unmodelled in calibration/data.py)")

    if not start <= date <= end:
        raise bad("date", f"a date within the run, {start} to {end}")
    if spec.read == YOY_ANNUAL_MEAN:
        first, last = dt.date(date.year - 1, 1, 1), dt.date(date.year, 12, 31)
        if first < start or last > end:
            raise bad("date", f"a year whose previous year and itself lie within the run "
                              f"({start} to {end}), since {series} compares annual means "
                              f"of {date.year - 1} and {date.year}")
    if platform not in spec.platforms:
        raise bad("platform", f"for series {series}: {', '.join(spec.platforms)}")
    unit = cells.get("unit") or spec.units[0]
    if unit not in spec.units:
        raise bad("unit", f"for series {series}: {', '.join(spec.units)}")
    if value < 0 and not spec.signed:
        raise bad("value", "a number >= 0")
    if spec.share and value > 1:
        raise bad("value", "a share between 0 and 1 (write 45% as 0.45)")
    kind = cells.get("kind") or "exact"
    if kind not in KINDS:
        raise bad("kind", f"one of {', '.join(KINDS)} (empty means exact)")
    weight = 1.0
    if cells.get("weight"):
        weight = parse_number(cells["weight"])
        if weight is None or weight <= 0:
            raise bad("weight", "a finite number > 0 (empty means 1)")
    sigma = None
    if cells.get("sigma"):
        sigma = parse_number(cells["sigma"])
        if sigma is None or sigma <= 0:
            raise bad("sigma", "a finite number > 0 (empty means none)")
    return Target(row=line, date=date, platform=platform, series=series, value=value,
                  kind=kind, weight=weight, sigma=sigma, unit=unit,
                  source=cells.get("source", ""),
                  label=f"{platform} {series} {cells['date']}")


class _Reader:
    """``csv.reader`` whose own errors (a cell over the size limit, a stray NUL) become
    a one-line DataError naming the line."""

    def __init__(self, path: Path, handle):
        self.path, self._reader = path, csv.reader(handle)

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self):
        return self

    def __next__(self) -> list[str]:
        try:
            return next(self._reader)
        except csv.Error as exc:
            raise DataError(f"{self.path}: line {self._reader.line_num + 1}: not a valid CSV "
                            f"row: {exc}") from None


def load_targets(path: str | Path, *, start: dt.date, end: dt.date) -> LoadedTargets:
    """Read a targets file; every row becomes a Target or an unused entry, or fails.

    ``start`` and ``end`` are the run's horizon: a target dated outside it is refused,
    since the model has no value there. Raises DataError for the file's first bad row.
    """
    path = Path(path)
    text = read_text(path, "targets file (CSV)", DataError)
    with io.StringIO(text, newline="") as handle:
        reader = _Reader(path, handle)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DataError(f"{path}: the file is empty; expected a header line with "
                            f"columns {', '.join(REQUIRED_COLUMNS)}")
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise DataError(f"{path}: line 1 (header): missing column(s) "
                            f"{', '.join(missing)}; a targets file needs "
                            f"{', '.join(REQUIRED_COLUMNS)} and may have "
                            f"{', '.join(OPTIONAL_COLUMNS)}")
        repeated = sorted({h for h in header if h and header.count(h) > 1})
        if repeated:
            raise DataError(f"{path}: line 1 (header): column(s) {', '.join(repeated)} "
                            f"appear more than once; each column may appear once")
        targets: list[Target] = []
        unused: list[tuple[int, str]] = []
        next_line = reader.line_num + 1
        for cells in reader:
            # a quoted cell may span lines: a row starts where the last one ended
            line, next_line = next_line, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue  # a blank line is not a row
            if len(cells) > len(header):
                raise DataError(f"{path}: line {line}: {len(cells)} cells but the header "
                                f"has {len(header)} columns; expected one cell per column")
            row = dict(zip(header, (c.strip() for c in cells)))
            read = _read_row(path, line, row, start, end)
            if isinstance(read, Target):
                targets.append(read)
            else:
                unused.append((line, read))
    if not targets:
        raise DataError(f"{path}: no usable target in {len(unused)} data row(s); expected "
                        f"at least one row of a series the model produces: "
                        f"{', '.join(sorted(SERIES))}")
    return LoadedTargets(path=path, targets=targets, unused=unused)


# --- reading targets' values from simulated frames ----------------------------------


def accounts_per_person(params: Mapping[str, Any] | None) -> float:
    """``apps.wechat_accounts_per_person`` from ``params``, else its default (as in
    ``simulate``, where a parameter left out takes its default)."""
    if params and ACCOUNTS_PER_PERSON in params:
        return float(params[ACCOUNTS_PER_PERSON])
    return float(BY_NAME[ACCOUNTS_PER_PERSON].default)


class TargetIndex:
    """Where each target's value sits in a frame of a given layout, worked out once.

    A layout is the frame's week starts and its Spring Festival weeks. ``at_date`` and
    ``festival_week`` targets become one (step, column) pair each; ``yoy_annual_mean``
    targets two arrays of steps, this year's and last year's. :meth:`values` then only
    indexes numpy arrays.
    """

    def __init__(self, targets: Sequence[Target], dates: Sequence[Any],
                 festival_steps: Sequence[int] | None = None):
        self.targets = tuple(targets)
        days = [pd.Timestamp(d).date() for d in dates]
        if not days:
            raise DataError("simulated frame: no weekly steps; expected at least one")
        self.first, self.n_steps = days[0], len(days)
        if festival_steps is None:  # the model flags the same weeks from this calendar
            festival_steps = np.flatnonzero(calendar.festival_years(days))
        festival_of_year: dict[int, int] = {}
        for step in festival_steps:
            festival_of_year.setdefault(days[step].year, int(step))
        years = np.array([d.year for d in days])
        week_end = days[-1] + dt.timedelta(days=calendar.STEP_DAYS - 1)

        self.columns: list[str] = []  # model columns needed, each once
        self.column_of = np.zeros(len(self.targets), dtype=np.intp)
        point, point_steps, yoy = [], [], []
        accounts = np.zeros(len(self.targets), dtype=bool)
        for j, target in enumerate(self.targets):
            column = target.column
            if column not in self.columns:
                self.columns.append(column)
            self.column_of[j] = self.columns.index(column)
            accounts[j] = target.unit == ACCOUNTS_UNIT
            read = target.spec.read

            def outside(needs: str) -> DataError:
                return DataError(f"target {target.label} (line {target.row}): needs "
                                 f"{needs}, outside the simulated weeks {days[0]} to "
                                 f"{week_end}")

            if read == AT_DATE:
                if not days[0] <= target.date <= week_end:
                    raise outside(f"the week of {target.date}")
                point.append(j)
                point_steps.append(calendar.step_of(days, target.date))
            elif read == FESTIVAL_WEEK:
                step = festival_of_year.get(target.date.year)
                if step is None:
                    raise outside(f"the Spring Festival week of {target.date.year}")
                point.append(j)
                point_steps.append(step)
            else:
                this_year = np.flatnonzero(years == target.date.year)
                last_year = np.flatnonzero(years == target.date.year - 1)
                if not this_year.size or not last_year.size:
                    raise outside(f"the years {target.date.year - 1} and {target.date.year}")
                yoy.append((j, this_year, last_year))
        self.point = np.array(point, dtype=np.intp)
        self.point_steps = np.array(point_steps, dtype=np.intp)
        self.yoy = yoy
        self.accounts = accounts

    @classmethod
    def for_frame(cls, frame: pd.DataFrame, targets: Sequence[Target]) -> TargetIndex:
        """The index for ``frame``'s layout (cached: frames of one run share it)."""
        return _cached_index(tuple(targets), *_layout(frame))

    def values(self, frames: Sequence[pd.DataFrame],
               params: Mapping[str, Any] | None) -> np.ndarray:
        """Simulated value of every target in every frame: ``replicates x targets``.

        A value is NaN where the model has nothing to measure (e.g. stickiness before a
        platform's launch makes a year-over-year growth undefined).
        """
        out = np.empty((len(frames), len(self.targets)))
        for r, frame in enumerate(frames):
            if len(frame) != self.n_steps or frame.index[0].date() != self.first:
                raise ValueError(f"frame {r} has {len(frame)} weeks from "
                                 f"{frame.index[0].date()}; this TargetIndex is for "
                                 f"{self.n_steps} weeks from {self.first}")
            positions = frame.columns.get_indexer(self.columns)
            if (positions < 0).any():
                missing = [c for c, i in zip(self.columns, positions) if i < 0]
                raise DataError(f"simulated frame {r}: missing column(s) "
                                f"{', '.join(missing)} that the targets read; expected "
                                f"the columns of model.OUTPUT_NAMES")
            data = frame.to_numpy(dtype=float)
            columns = positions[self.column_of]
            out[r, self.point] = data[self.point_steps, columns[self.point]]
            for j, this_year, last_year in self.yoy:
                series = data[:, columns[j]]
                out[r, j] = _growth_percent(series[this_year], series[last_year])
        out[:, self.accounts] *= accounts_per_person(params)
        return out


def _layout(frame: pd.DataFrame) -> tuple[pd.Timestamp, int, tuple[int, ...] | None]:
    """What a TargetIndex depends on: first week, number of weeks, festival weeks."""
    steps = np.diff(frame.index.to_numpy())
    if len(frame) == 0 or (steps != np.timedelta64(calendar.STEP_DAYS, "D")).any():
        raise ValueError("simulated frame: expected a DatetimeIndex of week starts 7 days "
                         "apart (the output of model.simulate)")
    if "all.spring_festival" in frame.columns:
        flagged = np.flatnonzero(frame["all.spring_festival"].to_numpy() == 1)
        festival: tuple[int, ...] | None = tuple(int(i) for i in flagged)
    else:
        festival = None
    return frame.index[0], len(frame), festival


@lru_cache(maxsize=32)
def _cached_index(targets: tuple[Target, ...], first: pd.Timestamp, n_steps: int,
                  festival: tuple[int, ...] | None) -> TargetIndex:
    dates = [first + pd.Timedelta(days=calendar.STEP_DAYS * i) for i in range(n_steps)]
    return TargetIndex(targets, dates, festival)


def _growth_percent(this_year: np.ndarray, last_year: np.ndarray) -> float:
    """100 (mean this year / mean last year - 1), means over non-blank weeks; NaN if
    either year has no value or last year's mean is 0."""
    now, before = this_year[np.isfinite(this_year)], last_year[np.isfinite(last_year)]
    if not now.size or not before.size or before.mean() == 0:
        return math.nan
    return 100.0 * (now.mean() / before.mean() - 1.0)


def simulated_values(frames: Sequence[pd.DataFrame], targets: Sequence[Target],
                     params: Mapping[str, Any] | None, *,
                     index: TargetIndex | None = None) -> np.ndarray:
    """Every target's simulated value in every frame, as a ``replicates x targets`` array.

    ``frames`` are outputs of ``model.simulate`` of one layout (same weeks);
    ``params`` the run's parameters (a resolved dict or overrides: a name left out
    takes its default). Pass ``index`` (a :class:`TargetIndex`) to skip even the cache
    look-up; otherwise it is built from the first frame and cached.
    """
    if not frames:
        return np.empty((0, len(targets)))
    if index is None:
        index = TargetIndex.for_frame(frames[0], targets)
    return index.values(frames, params)


def simulated_value(frame: pd.DataFrame, target: Target,
                    params: Mapping[str, Any] | None) -> float:
    """One target's simulated value in one frame."""
    return float(simulated_values([frame], [target], params)[0, 0])
