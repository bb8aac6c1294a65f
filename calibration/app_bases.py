"""The app user bases, fitted to the app figures of a calibration's data.

    python -m calibration.app_bases [--data CSV]

The model takes WeChat's and Alipay's app users as inputs (rule 1 of
``model/model.py``): the curve :func:`model.model.app_curve`,

.. math:: A(y) = \\frac{K\\,(1 + g \\max(0, y - 2018))}{1 + e^{-(y - m)/w}}

in decimal years *y*. A plain logistic (*g* = 0) flattens at its ceiling; WeChat's
accounts kept rising after 2018 (1,098 million at the end of 2018, 1,165 million at
the end of 2019), so WeChat's ceiling may grow by *g* a year from 2018. ``mpsim
calibrate`` calls :func:`fit` on its targets (the file given with ``--data``
included) before the search, and the fitted values are held fixed there: the fit
table marks the app rows as set by these curves, not by the search.

* **WeChat**: every exact ``app_mau`` row in accounts (a row in people is converted with
  ``apps.wechat_accounts_per_person``) and every exact WeChat ``app_users`` row (people,
  converted to accounts). *K*, *m*, *w* and *g* are fitted by weighted least squares on
  the log scale (``scipy.optimize.least_squares``), each row weighted by its target
  weight.
* **Alipay**: every exact ``app_users`` or ``app_annual_active_users`` row (people). With at least
  :data:`MIN_POINTS_FOR_CEILING` rows spanning :data:`MIN_YEARS_FOR_CEILING` years,
  *K*, *m* and *w* are fitted (*K* at most ``population.people_millions``, as
  WeChat's in people); with fewer, the ceiling stays at
  ``apps.alipay_ceiling_millions`` (an assumption) and only *m* and *w* are fitted.
  Alipay's monthly share ``apps.alipay_monthly_share`` is the weighted geometric mean of
  the exact Alipay ``app_mau`` rows over the curve at their dates (kept as it is when
  there are none).

Lower bounds of the same series ("over 1 billion") are constraints: a source states
them as certain, where an exact figure carries its measurement error, so the curve is
held :data:`BOUND_CLEARANCE` above every one (the least-squares fit, then, if it
falls below a bound, the same sum of squares minimised under the bounds by
``scipy.optimize.minimize``'s SLSQP; where the bounds cannot all be met, the fit
counting only shortfalls). Every app row stays a target, and the fit table shows how
the curves meet it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares, minimize

from model.calendar import decimal_year
from model.model import app_curve
from model.params import BY_NAME, PLATFORMS, resolve

from .data import ACCOUNTS_UNIT, Target
from .likelihood import OBSERVATION_SD

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "targets.csv"
#: Fewer Alipay points than this, or a shorter span, cannot pin a ceiling.
MIN_POINTS_FOR_CEILING = 6
MIN_YEARS_FOR_CEILING = 3.0
#: How far above a lower bound the curve is held: a run's app users are agents drawn
#: from the curve, and 1% is about five times the sampling error of the mean of ten
#: 10,000-agent runs (an assumption), so a run's own noise does not put them under.
BOUND_CLEARANCE = 0.01
#: Parameters this fit sets; the calibration holds them fixed.
FITTED = ("apps.wechat_ceiling_accounts_millions", "apps.wechat_midpoint_year",
          "apps.wechat_scale_years", "apps.wechat_growth_per_year",
          "apps.alipay_ceiling_millions", "apps.alipay_midpoint_year",
          "apps.alipay_scale_years", "apps.alipay_monthly_share")
#: The target series the curves alone decide (flagged in the fit table).
APP_SERIES = ("app_users", "app_mau", "app_annual_active_users")


def _value(params: Mapping[str, Any], name: str) -> float:
    return float(params.get(name, BY_NAME[name].default))


def _points(targets: Sequence[Target], platform: str, series: tuple[str, ...],
            per_person: float, in_accounts: bool, kind: str = "exact"):
    years, values, weights = [], [], []
    for t in targets:
        if t.platform != platform or t.series not in series or t.kind != kind:
            continue
        value = t.value
        if in_accounts and t.unit != ACCOUNTS_UNIT:
            value *= per_person  # people -> accounts
        years.append(decimal_year(t.date))
        values.append(value)
        weights.append(t.weight)
    return np.array(years), np.array(values), np.array(weights)


def _fit_curve(years, values, weights, start, low, high, fixed: dict[int, float],
               lower=None):
    """Weighted least squares of log(value) on log(app_curve), some arguments fixed;
    ``lower`` (years, values, weights) are lower bounds, held as constraints (module
    docstring). Where SLSQP fails, for bounds that cannot all be met or for any other
    reason, the fit counting only shortfalls is returned, which may leave a bound short
    (the fit table then shows it)."""
    free = [i for i in range(4) if i not in fixed]

    def curve(x):
        full = np.empty(4)
        full[free] = x
        for i, v in fixed.items():
            full[i] = v
        return full

    def residuals(x):
        k, m, w, g = curve(x)
        out = np.sqrt(weights) * (np.log(app_curve(years, k, m, w, g)) - np.log(values))
        if lower is not None and lower[0].size:
            short = np.log(app_curve(lower[0], k, m, w, g)) - np.log(lower[1])
            out = np.concatenate([out, np.sqrt(lower[2]) * np.minimum(short, 0.0)])
        return out

    low, high = np.asarray(low, float)[free], np.asarray(high, float)[free]
    low = np.minimum(low, high * (1 - 1e-9))  # a ceiling floor above the population
    x0 = np.clip(np.asarray(start, float)[free], low, high)
    result = least_squares(residuals, x0, bounds=(low, high))
    if lower is None or not lower[0].size:
        return curve(result.x)

    def clearance(x):
        """log(curve / bound) at every lower bound, less the clearance: none may be < 0."""
        k, m, w, g = curve(x)
        return (np.log(app_curve(lower[0], k, m, w, g)) - np.log(lower[1])
                - np.log1p(BOUND_CLEARANCE))

    if clearance(result.x).min() >= 0.0:
        return curve(result.x)

    def sum_of_squares(x):
        k, m, w, g = curve(x)
        return float(np.sum(weights * (np.log(app_curve(years, k, m, w, g))
                                       - np.log(values)) ** 2))

    # the bounds as constraints: a source's "over X" is what it states for certain
    held = minimize(sum_of_squares, result.x, method="SLSQP", bounds=list(zip(low, high)),
                    constraints=[{"type": "ineq", "fun": clearance}],
                    options={"maxiter": 500, "ftol": 1e-12})
    if held.success and clearance(held.x).min() >= -1e-9:
        return curve(held.x)
    return curve(result.x)  # SLSQP failed (e.g. bounds that cannot all be met): one-sided fit


def fit(targets: Sequence[Target], params: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The app-curve parameters fitted to ``targets``; a platform with no usable row
    keeps the values in ``params`` (or the defaults)."""
    params = params or {}
    out: dict[str, float] = {}
    per_person = _value(params, "apps.wechat_accounts_per_person")
    population = _value(params, "population.people_millions")
    series = ("app_mau", "app_users")
    years, values, weights = _points(targets, "wechat", series, per_person, in_accounts=True)
    lower = _points(targets, "wechat", series, per_person, in_accounts=True, kind="lower")
    if years.size >= 4:
        k, m, w, g = _fit_curve(
            years, values, weights,
            start=(values.max() * 1.05, 2015.5, 1.5, 0.01),
            low=(values.max() * 0.8, 2010.0, 0.1, 0.0),
            high=(population * per_person, 2025.0, 10.0,
                  BY_NAME["apps.wechat_growth_per_year"].high),
            fixed={}, lower=lower)
        out.update({"apps.wechat_ceiling_accounts_millions": k, "apps.wechat_midpoint_year": m,
                    "apps.wechat_scale_years": w, "apps.wechat_growth_per_year": g})
    series = ("app_users", "app_annual_active_users")
    years, values, weights = _points(targets, "alipay", series, 1.0, in_accounts=False)
    lower = _points(targets, "alipay", series, 1.0, in_accounts=False, kind="lower")
    if years.size >= 3:
        ceiling = _value(params, "apps.alipay_ceiling_millions")
        pinned = _ceiling_pinned(years)
        fixed = {3: 0.0} if pinned else {0: ceiling, 3: 0.0}
        k, m, w, _ = _fit_curve(
            years, values, weights,
            start=(min(max(ceiling, values.max() * 1.05), population), 2017.0, 1.5, 0.0),
            low=(values.max() * 0.8, 2010.0, 0.1, 0.0), high=(population, 2025.0, 10.0, 1.0),
            fixed=fixed, lower=lower)
        out.update({"apps.alipay_ceiling_millions": k, "apps.alipay_midpoint_year": m,
                    "apps.alipay_scale_years": w})
    merged = {name: _value(params, name) for name in FITTED} | out
    years, values, weights = _points(targets, "alipay", ("app_mau",), 1.0, in_accounts=False)
    if years.size:
        curve = app_curve(years, merged["apps.alipay_ceiling_millions"],
                          merged["apps.alipay_midpoint_year"], merged["apps.alipay_scale_years"])
        ratio = float(np.exp(np.average(np.log(values / curve), weights=weights)))
        out["apps.alipay_monthly_share"] = min(ratio, 1.0)
    return out


def _ceiling_pinned(years: np.ndarray) -> bool:
    """Whether Alipay figures at ``years`` are enough to fit its ceiling (:func:`fit`)."""
    return bool(years.size >= MIN_POINTS_FOR_CEILING
                and years.max() - years.min() >= MIN_YEARS_FOR_CEILING)


def _fitted_count(apps: Sequence[Target], platform: str) -> int:
    """How many curve parameters :func:`fit` fits to ``platform``'s exact app figures."""
    if platform == "wechat":
        return 4
    users = [t for t in apps if t.platform == "alipay" and t.series != "app_mau"]
    pinned = _ceiling_pinned(np.array([decimal_year(t.date) for t in users]))
    share = any(t.platform == "alipay" and t.series == "app_mau" for t in apps)
    return (3 if pinned else 2) + int(share)


def draws(targets: Sequence[Target], params: Mapping[str, Any] | None, count: int,
          rng: np.random.Generator) -> list[dict[str, float]]:
    r"""``count`` draws of the app curves by parametric bootstrap (the standard one for
    nonlinear least squares): each exact app figure *k* is moved to the fitted curve at
    its date times :math:`e^{\varepsilon_k}`, :math:`\varepsilon_k \sim
    N(0, \hat s_p^2 / w_k)`, and the curves are fitted again. :math:`\hat s_p^2 =
    \sum_k w_k r_k^2 / (n_p - q_p)` is platform *p*'s weighted residual variance about
    its fitted curve (*r* on the log scale, *q* the parameters fitted): the scatter of
    the figures themselves says how precise they are (about 1-2% for the app
    figures, far below the 10% a tier-B figure is given in the likelihood); where a
    platform has no more figures than parameters, the likelihood's stated error
    (:data:`calibration.likelihood.OBSERVATION_SD` over the root of the weight). Lower
    bounds stay as reported. Near a bound of the fit (Alipay's ceiling at the
    population) the draws' mean sits off the fit, as a bootstrap's does. The spread of
    the draws is how much the app figures pin the curves down; the ensemble gives each
    member one draw, so its runs carry the curves' uncertainty."""
    params = dict(params or {})
    resolved = resolve({**params, **fit(targets, params)})
    apps = [t for t in targets if t.series in APP_SERIES and t.kind == "exact"]

    def fitted_value(t: Target) -> float:
        """The fitted curve's value at the figure's date, in the figure's unit."""
        y = decimal_year(t.date)
        if t.platform == "wechat":
            accounts = app_curve(np.array([y]), resolved["apps.wechat_ceiling_accounts_millions"],
                             resolved["apps.wechat_midpoint_year"],
                             resolved["apps.wechat_scale_years"],
                             resolved["apps.wechat_growth_per_year"])[0]
            per_person = resolved["apps.wechat_accounts_per_person"]
            return float(accounts if t.unit == ACCOUNTS_UNIT else accounts / per_person)
        users = app_curve(np.array([y]), resolved["apps.alipay_ceiling_millions"],
                      resolved["apps.alipay_midpoint_year"], resolved["apps.alipay_scale_years"])[0]
        share = resolved["apps.alipay_monthly_share"] if t.series == "app_mau" else 1.0
        return float(users * share)

    centres = np.array([fitted_value(t) for t in apps])
    weights = np.maximum([t.weight for t in apps], 1e-6)
    residuals = np.log([t.value for t in apps]) - np.log(centres)
    # the stated observation error where a platform has too few figures to estimate it
    sd = OBSERVATION_SD / np.sqrt(weights)
    for platform in PLATFORMS:
        mine = np.array([t.platform == platform for t in apps], dtype=bool)
        fitted = _fitted_count(apps, platform)
        if mine.sum() > fitted:
            scale = np.sum(weights[mine] * residuals[mine] ** 2) / (mine.sum() - fitted)
            sd[mine] = np.sqrt(scale / weights[mine])
    out = []
    for _ in range(count):
        moved = centres * np.exp(rng.normal(0.0, sd))
        replaced = {id(t): v for t, v in zip(apps, moved)}
        perturbed = [dataclasses.replace(t, value=float(replaced[id(t)])) if id(t) in replaced
                     else t for t in targets]
        out.append(fit(perturbed, params))
    return out


def main(argv: list[str] | None = None) -> int:
    from model.params import run_defaults

    from .data import load_targets

    parser = argparse.ArgumentParser(
        prog="python -m calibration.app_bases",
        description="Fit the app user curves to the app figures of a targets file and "
                    "print them beside the current defaults.")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"targets CSV (default {DEFAULT_DATA})")
    args = parser.parse_args(argv)
    run = run_defaults()
    loaded = load_targets(args.data, start=run["start"], end=run["end"])
    for name, value in fit(loaded.targets).items():
        print(f"{name:40s} fitted {value:10.4f}   default {BY_NAME[name].default}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
