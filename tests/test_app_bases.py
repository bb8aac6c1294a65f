"""The app curves (rule 1) and their fit to the app figures of a calibration's data."""

import datetime as dt

import numpy as np
import pytest

from calibration import app_bases
from calibration.data import Target
from model.calendar import decimal_year
from model.model import app_curve


def test_the_ceiling_grows_only_after_2018():
    flat = app_curve([2016.0, 2018.0, 2020.0], 1000, 2015, 1.0)
    grown = app_curve([2016.0, 2018.0, 2020.0], 1000, 2015, 1.0, growth=0.05)
    assert grown[:2] == pytest.approx(flat[:2])
    assert grown[2] == pytest.approx(flat[2] * 1.10)


def _targets(platform, series, truth, years, unit="million_users", kind="exact"):
    out = []
    for i, y in enumerate(years):
        day = dt.date(int(y), 1, 1) + dt.timedelta(days=int((y % 1) * 365))
        out.append(Target(row=i + 2, date=day, platform=platform, series=series,
                          value=float(app_curve(decimal_year(day), *truth)), kind=kind,
                          unit=unit, label=f"{platform} {series}"))
    return out


def test_fit_recovers_a_known_wechat_curve_that_keeps_rising():
    truth = (1100.0, 2015.0, 1.3, 0.04)
    targets = _targets("wechat", "app_mau", truth, np.arange(2013.5, 2020.5, 0.5),
                       unit="million_accounts")
    fitted = app_bases.fit(targets)
    got = [fitted[f"apps.wechat_{n}"] for n in ("ceiling_accounts_millions", "midpoint_year",
                                                "scale_years", "growth_per_year")]
    assert got == pytest.approx(truth, rel=0.02, abs=0.005)


def test_alipay_with_few_points_keeps_its_ceiling_and_meets_lower_bounds():
    truth = (900.0, 2017.0, 1.5, 0.0)
    targets = _targets("alipay", "app_users", truth, [2016.0, 2017.0, 2018.0])
    fitted = app_bases.fit(targets, {"apps.alipay_ceiling_millions": 900.0})
    assert fitted["apps.alipay_ceiling_millions"] == 900.0  # too few points to move it
    assert fitted["apps.alipay_midpoint_year"] == pytest.approx(2017.0, abs=0.01)
    # a lower bound above the curve holds it above the bound, clear of it by the
    # stated clearance (the one-sided least squares alone would leave it short)
    bound = [Target(row=9, date=dt.date(2019, 6, 1), platform="alipay", series="app_users",
                    value=880.0, kind="lower", unit="million_users", label="bound")]
    raised = app_bases.fit(targets + bound, {"apps.alipay_ceiling_millions": 900.0})
    y = decimal_year(dt.date(2019, 6, 1))
    before = app_curve(y, 900.0, fitted["apps.alipay_midpoint_year"], fitted["apps.alipay_scale_years"])
    after = app_curve(y, 900.0, raised["apps.alipay_midpoint_year"], raised["apps.alipay_scale_years"])
    assert before < 880.0
    assert after >= 880.0 * (1 + app_bases.BOUND_CLEARANCE) * (1 - 1e-6)
    assert after <= 880.0 * (1 + app_bases.BOUND_CLEARANCE) * 1.01  # no further than needed
    # a bound the curve already clears changes nothing
    low = [Target(row=9, date=dt.date(2019, 6, 1), platform="alipay", series="app_users",
                  value=700.0, kind="lower", unit="million_users", label="bound")]
    same = app_bases.fit(targets + low, {"apps.alipay_ceiling_millions": 900.0})
    assert same["apps.alipay_midpoint_year"] == pytest.approx(fitted["apps.alipay_midpoint_year"])


def test_alipay_monthly_share_is_the_ratio_of_monthly_to_all_users():
    truth = (1000.0, 2017.0, 1.5, 0.0)
    targets = _targets("alipay", "app_users", truth, np.arange(2015.0, 2021.0, 0.5))
    day = dt.date(2020, 6, 30)
    curve = float(app_curve(decimal_year(day), *truth))
    targets.append(Target(row=99, date=day, platform="alipay", series="app_mau",
                          value=0.7 * curve, unit="million_users", label="mau"))
    fitted = app_bases.fit(targets)
    assert fitted["apps.alipay_monthly_share"] == pytest.approx(0.7, rel=0.01)


def _wechat_curve_at(params, year):
    return float(app_curve(year, params["apps.wechat_ceiling_accounts_millions"],
                           params["apps.wechat_midpoint_year"], params["apps.wechat_scale_years"],
                           params["apps.wechat_growth_per_year"]))


def test_curve_draws_spread_as_much_as_fits_to_fresh_data_would():
    """Figures scattered about a known curve by 3% on the log scale: the bootstrap draws
    of one data set spread the curve (in 2020, past the last figure but one) about as
    much as fits to 200 fresh data sets do, and are centred within that spread of the
    truth. Exactly fitting figures give draws with no spread at all."""
    truth = (1100.0, 2015.0, 1.3, 0.04)
    years = np.arange(2013.5, 2020.5, 0.5)
    exact = _targets("wechat", "app_mau", truth, years, unit="million_accounts")
    at = 2020.25
    rng = np.random.default_rng(4)

    def noisy():
        return [Target(**{**t.__dict__, "value": t.value * float(np.exp(rng.normal(0, 0.03)))})
                for t in exact]

    fresh = [np.log(_wechat_curve_at(app_bases.fit(noisy()), at)) for _ in range(200)]
    one = noisy()
    boot = [np.log(_wechat_curve_at(d, at))
            for d in app_bases.draws(one, {}, 300, np.random.default_rng(5))]
    assert np.std(boot) == pytest.approx(np.std(fresh), rel=0.4)
    assert abs(np.mean(boot) - np.log(app_curve(at, *truth))) < 3 * np.std(fresh)
    flat = app_bases.draws(exact, {}, 20, np.random.default_rng(6))
    spread = np.std([_wechat_curve_at(d, at) for d in flat])
    assert spread < 1e-3 * app_curve(at, *truth)
