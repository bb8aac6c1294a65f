"""Targets files (calibration/data.py) and the generated targets (make_targets.py)."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration import make_targets
from calibration.data import (
    KNOWN_UNMODELLED,
    SERIES,
    Target,
    TargetIndex,
    load_targets,
    simulated_value,
    simulated_values,
)
from model import calendar
from model.errors import DataError

DATA = Path(__file__).resolve().parents[1] / "calibration" / "data"
START, END = dt.date(2014, 1, 1), dt.date(2025, 12, 31)
HEADER = "date,platform,series,value,unit,kind,weight,sigma,source"
GOOD_ROW = "2018-12,wechat,miniprogram_dau,210,million_users,exact,4,,seed 000"


def write(tmp_path: Path, text: str, name: str = "targets.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, start: dt.date = START, end: dt.date = END):
    return load_targets(path, start=start, end=end)


# --- reading a targets file ------------------------------------------------------


def test_good_file_round_trips(tmp_path):
    path = write(tmp_path, "\n".join([
        HEADER + ",tier",
        GOOD_ROW + ",S",
        '2019-01-28,alipay,miniprogram_users_cumulative,500,,lower,,,"InfoQ, 2019",C',
        "2018-12-31,wechat,app_mau,1098,million_accounts,,,15,,B",
        "2018-06,all,users_multihoming_share,0.25,share,upper,0.5,0.05,,",
        "2017-12,alipay,wufu_completers,250,million_users,,,,,B",
        "",
        "2018-12,wechat,miniprogram_usage_frequency_growth_yoy,-10,percent,,,,,",
    ]) + "\n")
    loaded = load(path)
    first, second, third, fourth, fifth = loaded.targets
    assert first == Target(row=2, date=dt.date(2018, 12, 15), platform="wechat",
                           series="miniprogram_dau", value=210.0, kind="exact", weight=4.0,
                           sigma=None, unit="million_users", source="seed 000",
                           label="wechat miniprogram_dau 2018-12")
    assert (second.row, second.date, second.kind, second.weight) == (
        3, dt.date(2019, 1, 28), "lower", 1.0)
    assert second.unit == "million_people"  # the series' default unit when none is given
    assert second.source == "InfoQ, 2019"
    assert (third.unit, third.sigma, third.column) == ("million_accounts", 15.0,
                                                       "wechat.app_mau")
    assert (fourth.platform, fourth.kind, fourth.weight, fourth.sigma) == ("all", "upper",
                                                                           0.5, 0.05)
    assert fifth.row == 8 and fifth.value == -10.0  # blank line 7 skipped; growth may fall
    assert len(loaded.unused) == 1
    line, reason = loaded.unused[0]
    assert line == 6 and "wufu_completers" in reason and "not produced" in reason


def test_line_numbers_count_quoted_cells_spanning_lines(tmp_path):
    path = write(tmp_path, HEADER + '\n2018-12,wechat,miniprogram_dau,210,,,,,"two\nlines"\n'
                 "2018-12,wechat,miniprogram_dau,oops,,,,,\n")
    with pytest.raises(DataError, match=r"line 4, column 'value'"):
        load(path)


BAD_ROWS = [
    # (row, column, bad value, what the message must say is allowed)
    ("2018/12/01,wechat,miniprogram_dau,210,,,,,", "date", "2018/12/01", "YYYY-MM-DD"),
    ("2018-13,wechat,miniprogram_dau,210,,,,,", "date", "2018-13", "YYYY-MM"),
    ("Dec 2018,wechat,miniprogram_dau,210,,,,,", "date", "Dec 2018", "YYYY-MM"),
    ("2013-06-30,wechat,app_mau,235.8,million_accounts,,,,", "date", "2013-06-30",
     "2014-01-01 to 2025-12-31"),
    ("2026-01,wechat,miniprogram_dau,210,,,,,", "date", "2026-01", "within the run"),
    ("2014-12,wechat,miniprogram_usage_frequency_growth_yoy,54,,,,,", "date", "2014-12",
     "previous year"),
    ("2018-12,wechat,miniprogram_dau,lots,,,,,", "value", "lots", "finite number"),
    ("2018-12,wechat,miniprogram_dau,nan,,,,,", "value", "nan", "finite number"),
    ("2018-12,wechat,miniprogram_dau,inf,,,,,", "value", "inf", "finite number"),
    ("2018-12,wechat,miniprogram_dau,-210,,,,,", "value", "-210", ">= 0"),
    ("2018-12,wechat,miniprogram_dau_share,45,share,,,,", "value", "45", "between 0 and 1"),
    ("2018-12,baidu,miniprogram_dau,210,,,,,", "platform", "baidu", "wechat, alipay, all"),
    ("2018-12,alipay,red_envelope_participants,683,,,,,", "platform", "alipay", "wechat"),
    ("2018-12,wechat,users_multihoming_share,0.2,,,,,", "platform", "wechat", "all"),
    ("2018-12,all,app_users,1000,,,,,", "platform", "all", "wechat, alipay"),
    ("2018-12,wechat,pay_users,600,million_accounts,,,,", "unit", "million_accounts",
     "million_people"),
    ("2018-12,wechat,miniprogram_dau,210,,lowerbound,,,", "kind", "lowerbound",
     "exact, lower, upper"),
    ("2018-12,wechat,miniprogram_dau,210,,,0,,", "weight", "0", "> 0"),
    ("2018-12,wechat,miniprogram_dau,210,,,-1,,", "weight", "-1", "> 0"),
    ("2018-12,wechat,miniprogram_dau,210,,,heavy,,", "weight", "heavy", "> 0"),
    ("2018-12,wechat,miniprogram_dau,210,,,,0,", "sigma", "0", "> 0"),
    ("2018-12,wechat,miniprogram_dau,210,,,,-3,", "sigma", "-3", "> 0"),
    ("2018-12,wechat,,210,,,,,", "series", "", "required"),
    ("2018-12,wechat,miniprogram_dua,210,,,,,", "series", "miniprogram_dua",
     "miniprogram_dau"),
]


@pytest.mark.parametrize("row,column,value,allowed", BAD_ROWS,
                         ids=[f"{c}={v or 'empty'}" for _, c, v, _ in BAD_ROWS])
def test_bad_row_is_refused_naming_file_line_column_and_value(tmp_path, row, column,
                                                              value, allowed):
    path = write(tmp_path, f"{HEADER}\n{GOOD_ROW}\n{row}\n")
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert "line 3," in message  # the good row on line 2 passed
    assert f"column {column!r}" in message
    assert f"value {value!r}" in message
    assert allowed in message


def test_unknown_series_lists_every_series_the_model_produces(tmp_path):
    path = write(tmp_path, f"{HEADER}\n2018-12,wechat,daily_users,210,,,,,\n")
    with pytest.raises(DataError) as info:
        load(path)
    for series in SERIES:
        assert series in str(info.value)


def test_too_many_cells_is_refused(tmp_path):
    path = write(tmp_path, f"{HEADER}\n{GOOD_ROW},extra\n")
    with pytest.raises(DataError, match=r"line 2: 10 cells but the header has 9"):
        load(path)


def test_missing_required_columns_are_named(tmp_path):
    path = write(tmp_path, "date,platform,figure\n2018-12,wechat,210\n")
    with pytest.raises(DataError, match=r"line 1 \(header\): missing column\(s\) series, "
                                        r"value"):
        load(path)


@pytest.mark.parametrize("text,expected", [
    (None, "no such file"),
    ("", "the file is empty"),
    (HEADER + "\n", "no usable target in 0 data row"),
    (HEADER + "\n2018-12,wechat,app_dau,1000,,,,,\n", "no usable target in 1 data row"),
])
def test_missing_or_empty_file_is_refused(tmp_path, text, expected):
    path = tmp_path / "targets.csv"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=expected) as info:
        load(path)
    assert str(path) in str(info.value)


def test_horizon_is_the_callers(tmp_path):
    path = write(tmp_path, f"{HEADER}\n{GOOD_ROW}\n")
    assert load(path, end=dt.date(2019, 1, 1)).targets
    with pytest.raises(DataError, match="2014-01-01 to 2018-06-30"):
        load(path, end=dt.date(2018, 6, 30))


def test_lower_and_upper_kinds_parse(tmp_path):
    path = write(tmp_path, f"{HEADER}\n"
                 "2018-12,wechat,miniprogram_users_cumulative,600,,lower,,,\n"
                 "2018-12,wechat,miniprogram_users_cumulative,900,,upper,,,\n"
                 "2018-12,wechat,miniprogram_users_cumulative,700,,,,,\n")
    assert [t.kind for t in load(path).targets] == ["lower", "upper", "exact"]


# --- simulated values from a hand-built frame -------------------------------------

FIRST_WEEK = dt.date(2017, 1, 4)  # a Wednesday, like the model's 2014-01-01
WEEKS = 117  # to 2019-03-27


def hand_frame(scale: float = 1.0) -> pd.DataFrame:
    """A frame with known numbers: DAU = step number (peak 999 in Spring Festival week
    2018), uses per daily user 2.0 in 2017 (blank before launch) and 3.08 in 2018."""
    dates = calendar.week_starts(FIRST_WEEK, FIRST_WEEK + dt.timedelta(weeks=WEEKS - 1))
    steps = np.arange(len(dates), dtype=float)
    years = np.array([d.year for d in dates])
    festival = calendar.festival_years(dates)
    dau = steps.copy()
    dau[58] = 999.0
    uses = np.select([years == 2017, years == 2018], [2.0, 3.08], 9.0)
    uses[:2] = np.nan
    participants = np.where(festival > 0, festival - 1330.0, np.nan)  # 688 in 2018
    return pd.DataFrame({
        "wechat.miniprogram_dau": dau * scale,
        "wechat.miniprogram_uses_per_dau": uses,
        "wechat.app_users": np.full(len(dates), 1000.0),
        "wechat.app_mau": np.full(len(dates), 1000.0),
        "wechat.red_envelope_participants": participants,
        "all.spring_festival": (festival > 0).astype(float),
    }, index=pd.DatetimeIndex(dates, name="date"))


def hand_targets(tmp_path) -> list[Target]:
    path = write(tmp_path, HEADER + "\n" + "\n".join([
        "2018-06-15,wechat,miniprogram_dau,1,,,,,",  # week of 2018-06-13 = step 75
        "2018-06,wechat,miniprogram_dau,1,,,,,",  # the 15th, the same week
        "2018-12,wechat,miniprogram_dau_peak,1,,,,,",  # festival 2018 (eve 02-15) = step 58
        "2018-12,wechat,miniprogram_usage_frequency_growth_yoy,54,,,,,",
        "2018-12-31,wechat,app_mau,1,million_accounts,,,,",
        "2018-01,wechat,red_envelope_participants,1,,,,,",
    ]) + "\n")
    return load(path, start=dt.date(2017, 1, 1), end=dt.date(2019, 3, 31)).targets


def test_frame_is_what_the_hand_computation_assumes():
    frame = hand_frame()
    assert frame.index[75].date() == dt.date(2018, 6, 13)
    assert frame.index[58].date() <= calendar.NEW_YEARS_EVE[2018] < (
        frame.index[58] + pd.Timedelta(days=7)).date()
    assert frame["all.spring_festival"].iloc[58] == 1


def test_simulated_value_reads_plain_festival_and_growth(tmp_path):
    frame = hand_frame()
    plain, month, peak, growth, accounts, envelopes = hand_targets(tmp_path)
    assert simulated_value(frame, plain, {}) == 75.0
    assert simulated_value(frame, month, {}) == 75.0
    assert simulated_value(frame, peak, {}) == 999.0
    assert simulated_value(frame, growth, {}) == pytest.approx(54.0)
    assert simulated_value(frame, envelopes, {}) == 688.0


def test_accounts_are_people_times_accounts_per_person(tmp_path):
    accounts = hand_targets(tmp_path)[4]
    frame = hand_frame()
    assert simulated_value(frame, accounts, {"apps.wechat_accounts_per_person": 1.25}) == \
        pytest.approx(1250.0)
    assert simulated_value(frame, accounts, {}) == pytest.approx(1100.0)  # the default


def test_simulated_values_is_replicates_by_targets(tmp_path):
    targets = hand_targets(tmp_path)
    values = simulated_values([hand_frame(), hand_frame(scale=2.0)], targets, {})
    assert values.shape == (2, len(targets))
    assert values[0, :3].tolist() == [75.0, 75.0, 999.0]
    assert values[1, :3].tolist() == [150.0, 150.0, 1998.0]
    assert values[1, 3] == pytest.approx(54.0)  # uses per daily user are not scaled
    index = TargetIndex.for_frame(hand_frame(), targets)
    np.testing.assert_array_equal(index.values([hand_frame(), hand_frame(2.0)], {}), values)


def test_growth_is_nan_when_last_year_has_no_value(tmp_path):
    frame = hand_frame()
    frame.loc[frame.index.year == 2017, "wechat.miniprogram_uses_per_dau"] = np.nan
    assert math.isnan(simulated_value(frame, hand_targets(tmp_path)[3], {}))


def test_target_outside_the_frame_is_refused(tmp_path):
    plain = hand_targets(tmp_path)[0]
    short = hand_frame().iloc[:60]
    with pytest.raises(DataError, match="outside the simulated weeks"):
        simulated_value(short, plain, {})


def test_missing_model_column_is_named(tmp_path):
    frame = hand_frame().drop(columns="wechat.app_mau")
    with pytest.raises(DataError, match="wechat.app_mau"):
        simulated_value(frame, hand_targets(tmp_path)[4], {})


# --- the generated targets --------------------------------------------------------

SEED_TARGETS = {  # (platform, series, value, kind)
    ("wechat", "miniprogram_users_cumulative", 600.0, "lower"),
    ("wechat", "miniprogram_dau", 210.0, "exact"),
    ("wechat", "miniprogram_usage_frequency_growth_yoy", 54.0, "exact"),
    ("alipay", "miniprogram_users_cumulative", 500.0, "lower"),
    ("alipay", "miniprogram_dau", 170.0, "exact"),
    ("alipay", "miniprogram_dau_peak", 280.0, "exact"),
    ("wechat", "app_users", 1000.0, "exact"),
    ("wechat", "miniprogram_dau_share", 0.5, "lower"),  # seed 002's pattern, 2021
}


def test_targets_csv_loads_with_every_row_used():
    loaded = load(DATA / "targets.csv")
    assert loaded.unused == []
    assert len(loaded.targets) > 40


def test_targets_csv_holds_the_seed_targets_at_tier_s():
    with (DATA / "targets.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    tier_s = {(r["platform"], r["series"], float(r["value"]), r["kind"])
              for r in rows if r["tier"] == "S"}
    assert tier_s == SEED_TARGETS
    weights = {float(r["weight"]) for r in rows if r["tier"] == "S"}
    assert weights == {make_targets.TIER_WEIGHT["S"]}


def test_targets_csv_rules_for_conflicts_and_typo():
    with (DATA / "targets.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_key = {(r["date"], r["platform"], r["series"], r["value"]): r for r in rows}
    official = by_key[("2019-01-29", "alipay", "miniprogram_dau", "230")]
    assert float(official["weight"]) < make_targets.TIER_WEIGHT["A"]
    assert "conflict" in official["rule"]
    assert not any(r["series"] == "pay_users" and r["value"] == "80" for r in rows)
    assert all(r["rule"] and r["tier"] and r["source"] for r in rows)
    assert not any(r["series"] in KNOWN_UNMODELLED for r in rows)
    assert min(load(DATA / "targets.csv").targets, key=lambda t: t.date).date >= START


def test_targets_csv_is_what_make_targets_writes(tmp_path):
    out = tmp_path / "targets.csv"
    assert make_targets.main(["--out", str(out), "--no-readme"]) == 0
    assert out.read_text(encoding="utf-8") == (DATA / "targets.csv").read_text(
        encoding="utf-8"), "targets.csv is stale: run python -m calibration.make_targets"


def test_every_excluded_row_is_in_the_readme_table():
    built = make_targets.build()
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert make_targets.excluded_table(built.excluded) in readme
    figures_rows = sum(sum(1 for _ in path.open(encoding="utf-8")) - 1
                       for path in make_targets.FIGURE_FILES)
    added = sum(1 for r in built.targets if not r["figures_line"].isdigit())  # seed or note figure
    assert len(built.targets) - added + len(built.excluded) == figures_rows


def test_a_conflict_without_a_rule_stops_make_targets(tmp_path):
    figures = write(tmp_path, "date,platform,series,value,unit,tier,metric,source,quote,"
                    "note\n2018-11-07,wechat,miniprogram_dau,250,million_users,B,,x,,"
                    "CONFLICT with 200M\n", name="figures.csv")
    with pytest.raises(DataError, match="line 2.*CONFLICT with no rule"):
        make_targets.build(figures)


def test_every_target_reads_a_finite_value_from_a_small_run():
    from model import simulate

    end = dt.date(2021, 1, 31)
    targets = load(DATA / "targets.csv", end=end).targets
    frame = simulate(agents=2000, merchant_agents=500, end=end, seed=7)
    values = simulated_values([frame], targets, {})
    assert values.shape == (1, len(targets))
    assert np.isfinite(values).all(), [t.label for t, v in zip(targets, values[0])
                                       if not np.isfinite(v)]
