"""Naive forecasters on synthetic series: a line forecasts a line, a logistic a logistic."""

import datetime as dt
import math

import numpy as np
import pytest

from calibration import naive
from calibration.data import Target


def _target(date, value, series="miniprogram_dau", kind="exact", unit="million_users"):
    return Target(row=0, date=date, platform="wechat", series=series, value=value, kind=kind,
                  unit=unit, label=f"{series} {date}")


def test_a_straight_line_forecasts_a_line_exactly():
    t = [2016.0, 2016.5, 2017.0, 2017.5, 2018.0, 2018.5]
    y = [100 + 40 * (x - 2016) for x in t]
    y[0] = 999.0  # the first two lie outside the last four: ignored
    y[1] = -50.0
    curve = naive.fit_line(t, y)
    assert curve.points == 4 and curve.used == "line"
    assert curve.predict(2020.0) == pytest.approx(100 + 40 * 4)


def test_one_point_or_one_date_is_flat():
    assert naive.fit_line([2018.0], [7.0]).predict(2030.0) == pytest.approx(7.0)
    same = naive.fit_line([2018.0, 2018.0], [6.0, 8.0])
    assert same.used == "flat" and same.predict(2021.0) == pytest.approx(7.0)


def test_the_logistic_recovers_a_logistic():
    t = np.linspace(2015, 2019, 9)
    y = 800 / (1 + np.exp(-1.5 * (t - 2017.2)))
    curve = naive.fit_logistic(t, y)
    assert curve.used == "logistic"
    k, r, t0 = curve.coefficients
    assert (k, r, t0) == pytest.approx((800, 1.5, 2017.2), rel=1e-3)
    assert curve.predict(2021.0) == pytest.approx(800 / (1 + math.exp(-1.5 * 3.8)), rel=1e-3)
    # the line through the last four misses the saturation by far
    assert naive.fit_line(t, y).predict(2021.0) > 1.2 * curve.predict(2021.0)


def test_the_logistic_falls_back_to_the_line_and_says_why():
    few = naive.fit_logistic([2017.0, 2018.0], [10.0, 20.0])
    assert few.method == "logistic" and few.used.startswith("line (logistic needs 3 dates")
    assert few.predict(2019.0) == pytest.approx(30.0)
    negative = naive.fit_logistic([2016.0, 2017.0, 2018.0], [-5.0, 10.0, 20.0])
    assert "above 0" in negative.used


def test_forecaster_fits_exact_figures_only_and_widens_with_horizon():
    figures = [_target(dt.date(2016 + i, 6, 30), 100.0 * 1.3 ** i + (7 if i % 2 else -7))
               for i in range(5)]
    figures.append(_target(dt.date(2020, 12, 31), 5000.0, kind="lower"))  # a bound: no point
    line = naive.fit_forecaster("line", figures)
    curve = line.fits[("wechat", "miniprogram_dau")]
    assert curve.points == 4 and curve.last_t == pytest.approx(naive.years(dt.date(2020, 6, 30)))
    assert line.errors_measured == 3 and line.sigma > 0  # forecasts from 2, 3 and 4 dates
    near, _ = line.quantiles(_target(dt.date(2020, 9, 30), 1.0))
    far, _ = line.quantiles(_target(dt.date(2023, 9, 30), 1.0))
    assert near[0.05] < near[0.5] < near[0.95]
    assert math.log(far[0.95] / far[0.05]) > 2 * math.log(near[0.95] / near[0.05])
    assert near[0.5] == pytest.approx(curve.predict(naive.years(dt.date(2020, 9, 30))))


def test_a_series_without_earlier_figures_has_no_forecast_and_one_figure_no_spread():
    line = naive.fit_forecaster("line", [_target(dt.date(2018, 6, 30), 100.0)])
    assert math.isnan(line.sigma) and line.errors_measured == 0
    q, curve = line.quantiles(_target(dt.date(2019, 6, 30), 120.0))
    assert q[0.5] == pytest.approx(100.0) and math.isnan(q[0.05])
    q, curve = line.quantiles(_target(dt.date(2019, 6, 30), 0.6, series="app_users"))
    assert curve is None and math.isnan(q[0.5])


def test_the_error_rate_is_zero_for_a_series_the_line_forecasts_exactly():
    figures = [_target(dt.date(2014 + i, 6, 30), 100.0 + 50 * i) for i in range(6)]
    sigma, n = naive.error_rate("line", naive.exact_points(figures))
    # from one date: not measured; the rest is exact but for leap days (June 30 of a
    # leap year is a day later in its year)
    assert n == 4 and sigma == pytest.approx(0.0, abs=1e-3)
    figures[3] = _target(dt.date(2017, 6, 30), 300.0)  # off the line by ln(300/250)
    sigma, n = naive.error_rate("line", naive.exact_points(figures))
    assert n == 4 and sigma > 0.5 * math.log(300 / 250)
