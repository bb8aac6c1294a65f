"""Forecast scores: known answers for the WIS, coverage, bounds and the log scale."""

import math

import numpy as np
import pytest

from calibration import scoring


def test_wis_of_a_point_forecast_is_its_absolute_error():
    intervals = {a: (1.5, 1.5) for a in scoring.ALPHAS}
    assert scoring.weighted_interval_score(1.5, intervals, 4.0) == pytest.approx(2.5)
    assert scoring.weighted_interval_score(1.5, intervals, -1.0) == pytest.approx(2.5)


def test_wis_hand_worked_two_intervals():
    intervals = {0.5: (-1.0, 1.0), 0.1: (-2.0, 2.0)}
    # outside both: 0.5*3 + 0.25*(2 + 4*2) + 0.05*(4 + 20*1) = 5.2, over K + 1/2 = 2.5
    assert scoring.weighted_interval_score(0.0, intervals, 3.0) == pytest.approx(2.08)
    # inside both: 0.5*0.5 + 0.25*2 + 0.05*4 = 0.95 -> 0.38
    assert scoring.weighted_interval_score(0.0, intervals, 0.5) == pytest.approx(0.38)
    # below both is symmetric
    assert scoring.weighted_interval_score(0.0, intervals, -3.0) == pytest.approx(2.08)


def test_wis_equals_mean_pinball_loss_over_the_quantiles():
    # Bracher et al. 2021: WIS = sum of quantile (pinball) losses / (K + 1/2)
    rng = np.random.default_rng(5)
    for _ in range(20):
        q = np.sort(rng.normal(size=len(scoring.LEVELS)))
        quantiles = dict(zip(scoring.LEVELS, q))
        y = float(rng.normal(scale=2))
        pinball = sum((y - v) * (tau - (y < v)) for tau, v in quantiles.items())
        wis = scoring.weighted_interval_score(quantiles[0.5],
                                              scoring.intervals_from_quantiles(quantiles), y)
        assert wis == pytest.approx(pinball / (len(scoring.ALPHAS) + 0.5))


def test_a_sharp_right_forecast_beats_a_wide_one_and_a_wide_beats_a_sharp_wrong_one():
    def wis(centre, spread, y):
        quantiles = {lv: centre + spread * (lv - 0.5) for lv in scoring.LEVELS}
        return scoring.weighted_interval_score(
            quantiles[0.5], scoring.intervals_from_quantiles(quantiles), y)

    assert wis(0.0, 0.1, 0.0) < wis(0.0, 2.0, 0.0)
    assert wis(1.0, 4.0, 0.0) < wis(1.0, 0.0, 0.0)


def test_interval_score_refuses_bad_input():
    with pytest.raises(ValueError):
        scoring.interval_score(0, 1, 0.5, 1.5)
    with pytest.raises(ValueError):
        scoring.interval_score(2, 1, 0.5, 0.5)


def test_scores_are_on_the_log_scale():
    levels = scoring.LEVELS
    doubled = scoring.score_figure({lv: 200.0 for lv in levels}, 100.0)
    halved = scoring.score_figure({lv: 50.0 for lv in levels}, 100.0)
    assert doubled["abs_log_error"] == pytest.approx(math.log(2))
    assert halved["abs_log_error"] == pytest.approx(math.log(2))
    assert doubled["wis"] == pytest.approx(math.log(2))  # a point forecast
    assert not doubled["in90"] and not doubled["in50"]
    # a growth in percent is scored as ln(1 + x/100): 21% against 10% is ln(1.1)
    growth = scoring.score_figure({lv: 21.0 for lv in levels}, 10.0, unit="percent")
    assert growth["abs_log_error"] == pytest.approx(math.log(1.21 / 1.10))
    # a forecast of nothing is floored at a thousandth of the figure
    zero = scoring.score_figure({lv: 0.0 for lv in levels}, 100.0)
    assert zero["abs_log_error"] == pytest.approx(math.log(1000))


def test_coverage_of_the_50_and_90_intervals():
    quantiles = {lv: 100.0 * math.exp(lv - 0.5) for lv in scoring.LEVELS}
    # 25-75% spans 100 e^-0.25 .. 100 e^0.25 = 77.9 .. 128.4; 5-95% 63.8 .. 156.8
    inner = scoring.score_figure(quantiles, 110.0)
    outer = scoring.score_figure(quantiles, 150.0)
    beyond = scoring.score_figure(quantiles, 170.0)
    assert (inner["in50"], inner["in90"]) == (True, True)
    assert (outer["in50"], outer["in90"]) == (False, True)
    assert (beyond["in50"], beyond["in90"]) == (False, False)


def test_bounds_score_only_whether_they_are_met():
    quantiles = {lv: 250.0 + 100.0 * lv for lv in scoring.LEVELS}  # median 300
    met = scoring.score_figure(quantiles, 280.0, kind="lower")
    assert met["bound_met"] is True and met["bound_shortfall"] == 0.0
    assert math.isnan(met["abs_log_error"]) and math.isnan(met["wis"])
    short = scoring.score_figure(quantiles, 330.0, kind="lower")
    assert short["bound_met"] is False
    assert short["bound_shortfall"] == pytest.approx(math.log(330 / 300))
    assert short["in90"] is True  # the 95% end, 345, reaches over 330
    assert short["in50"] is False  # the 75% end, 325, does not
    upper = scoring.score_figure(quantiles, 290.0, kind="upper")
    assert upper["bound_met"] is False and upper["in90"] is True
    assert upper["bound_shortfall"] == pytest.approx(math.log(300 / 290))


def test_sample_quantiles_ignore_nan_and_a_forecast_of_nothing_scores_nan():
    q = scoring.sample_quantiles([1.0, 2.0, 3.0, np.nan])
    assert q[0.5] == 2.0
    empty = scoring.score_figure(scoring.sample_quantiles([np.nan]), 10.0)
    assert all(math.isnan(v) for v in empty.values())


def test_a_median_without_a_spread_is_scored_as_a_point_only():
    quantiles = {lv: (120.0 if lv == 0.5 else math.nan) for lv in scoring.LEVELS}
    exact = scoring.score_figure(quantiles, 100.0)
    assert exact["abs_log_error"] == pytest.approx(math.log(1.2))
    assert math.isnan(exact["wis"]) and math.isnan(exact["in90"])
    bound = scoring.score_figure(quantiles, 100.0, kind="lower")
    assert bound["bound_met"] is True and math.isnan(bound["in50"])
