r"""Scores of a forecast of one reported figure: pure functions, no model.

Every score is taken on the **log scale** of the figures: a figure ``y`` in a unit of
counts or shares is scored as :math:`\ln y`, a growth in percent as
:math:`\ln(1 + y/100)` (:func:`log_value`), so an error of 10% weighs the same for 20
million mini programs as for a billion users, and the scores of all series can be
averaged. Simulated values at or below zero are floored at a thousandth of the figure
(as the calibration loss does), so a forecast of nothing scores
:math:`\ln 1000 \approx 6.9`, not infinity.

* :func:`abs_log_error`: :math:`|\ln(\text{median} / \text{reported})|`.
* :func:`interval_holds`: whether the central :math:`(1-\alpha)` interval holds the
  figure (50%: :math:`\alpha = 0.5`, 90%: :math:`\alpha = 0.1`).
* :func:`weighted_interval_score`: the weighted interval score of Bracher, Ray,
  Gneiting and Reich (2021), "Evaluating epidemic forecasts in an interval format",
  PLoS Comput Biol 17(2): e1008618, from the median :math:`m` and :math:`K` central
  intervals :math:`[l_k, u_k]` of levels :math:`1 - \alpha_k`:

  .. math::

     \mathrm{IS}_\alpha(l, u; y) = (u - l) + \tfrac{2}{\alpha}(l - y)\,1(y < l)
                                  + \tfrac{2}{\alpha}(y - u)\,1(y > u)

     \mathrm{WIS} = \frac{1}{K + 1/2}\Big(w_0 |y - m|
                    + \sum_{k=1}^{K} w_k\, \mathrm{IS}_{\alpha_k}(l_k, u_k; y)\Big),
     \quad w_0 = \tfrac12,\ w_k = \tfrac{\alpha_k}{2}.

  For a point forecast (every :math:`l_k = u_k = m`) it equals :math:`|y - m|`, so on
  the log scale the WIS of a point forecast is its :func:`abs_log_error`; a wider
  forecast pays for its width and gains where the figure falls inside. Lower is
  better. :data:`ALPHAS` are the levels used: the 23 quantiles of the COVID-19
  Forecast Hub (:math:`\alpha` = 0.02, 0.05, 0.1, 0.2, ..., 0.9).

**Bounds** ("over 300 million": ``kind`` ``lower`` or ``upper`` in a targets file) say
only on which side of the value the truth lies, so they are scored only by whether
they are satisfied: :func:`bound_met` (the median on the allowed side), the
:func:`bound_shortfall` (how far, in log, the median falls on the wrong side; 0 when
met), and whether an interval reaches the allowed side (:func:`interval_holds` with a
``kind``: the interval and the values the figure allows overlap). They have no
:func:`abs_log_error` and no WIS (both NaN): a distance to a bound is not an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: The alphas of the central intervals scored by the WIS: K = 11 intervals, 98% to 10%.
ALPHAS: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Every quantile level the WIS needs (the median and both ends of each interval).
LEVELS: tuple[float, ...] = tuple(sorted({0.5, *(a / 2 for a in ALPHAS),
                                         *(1 - a / 2 for a in ALPHAS)}))
#: A simulated value is floored at this share of the figure before its log is taken.
FLOOR = 1e-3


def log_value(x, unit: str = "", reported: float | None = None):
    """The log-scale value of ``x``: ``ln(1 + x/100)`` for ``percent``, else ``ln x``;
    floored at ``FLOOR`` times the reported figure's own (``reported``) when given."""
    x = np.asarray(x, dtype=float)
    if unit == "percent":
        inner = 1.0 + x / 100.0
        floor = FLOOR * (1.0 + reported / 100.0) if reported is not None else 1e-12
    else:
        inner = x
        floor = FLOOR * reported if reported is not None else 1e-12
    with np.errstate(invalid="ignore"):
        out = np.log(np.maximum(inner, max(floor, 1e-12)))
    return out if out.ndim else float(out)


def abs_log_error(median: float, reported: float, unit: str = "") -> float:
    """``|ln(median / reported)|`` on the log scale of :func:`log_value`."""
    if not np.isfinite(median):
        return math.nan
    return abs(log_value(median, unit, reported) - log_value(reported, unit))


def interval_score(lower: float, upper: float, y: float, alpha: float) -> float:
    """The interval score of the central ``1 - alpha`` interval ``[lower, upper]``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha!r}: expected a number in (0, 1)")
    if upper < lower:
        raise ValueError(f"interval [{lower}, {upper}]: upper end below the lower end")
    score = upper - lower
    if y < lower:
        score += 2.0 / alpha * (lower - y)
    elif y > upper:
        score += 2.0 / alpha * (y - upper)
    return float(score)


def weighted_interval_score(median: float, intervals: Mapping[float, tuple[float, float]],
                            y: float) -> float:
    """WIS (module docstring) of ``median`` and ``{alpha: (lower, upper)}`` against ``y``.

    Scale-free: pass log values (:func:`log_value`) to score on the log scale."""
    total = 0.5 * abs(y - median)
    for alpha, (lower, upper) in intervals.items():
        total += alpha / 2.0 * interval_score(lower, upper, y, alpha)
    return float(total / (len(intervals) + 0.5))


def intervals_from_quantiles(quantiles: Mapping[float, float],
                             alphas: Sequence[float] = ALPHAS) -> dict[float, tuple[float, float]]:
    """``{alpha: (q[alpha/2], q[1 - alpha/2])}`` from quantiles keyed by level."""
    out = {}
    for alpha in alphas:
        low, high = _level(quantiles, alpha / 2), _level(quantiles, 1 - alpha / 2)
        out[alpha] = (low, high)
    return out


def _level(quantiles: Mapping[float, float], level: float) -> float:
    for key, value in quantiles.items():
        if abs(key - level) < 1e-9:
            return float(value)
    raise KeyError(f"quantile level {level} missing; have {sorted(quantiles)}")


def sample_quantiles(samples, levels: Sequence[float] = LEVELS) -> dict[float, float]:
    """Quantiles of the finite values of ``samples`` (NaN everywhere if none)."""
    values = np.asarray(samples, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return {level: math.nan for level in levels}
    return dict(zip(levels, (float(q) for q in np.quantile(values, levels))))


def interval_holds(lower: float, upper: float, reported: float, kind: str = "exact") -> bool:
    """Whether ``[lower, upper]`` holds the figure: for ``exact``, the value lies in it;
    for a ``lower`` (``upper``) bound, some of the interval lies at or above (below)
    the bound, i.e. the interval and the values the figure allows overlap."""
    if kind == "lower":
        return bool(upper >= reported)
    if kind == "upper":
        return bool(lower <= reported)
    return bool(lower <= reported <= upper)


def bound_met(median: float, reported: float, kind: str) -> bool:
    """Whether the median is on the side a ``lower`` or ``upper`` bound allows."""
    if kind == "lower":
        return bool(median >= reported)
    if kind == "upper":
        return bool(median <= reported)
    raise ValueError(f"kind {kind!r}: expected lower or upper")


def bound_shortfall(median: float, reported: float, kind: str, unit: str = "") -> float:
    """How far, on the log scale, the median lies on the wrong side of a bound (0 if met)."""
    if not np.isfinite(median):
        return math.nan
    gap = log_value(median, unit, reported) - log_value(reported, unit)
    return float(max(-gap, 0.0) if kind == "lower" else max(gap, 0.0))


def score_figure(quantiles: Mapping[float, float], reported: float, kind: str = "exact",
                 unit: str = "") -> dict[str, float | bool]:
    """Every score of one forecast (quantiles by level, in the figure's unit) of one
    figure: ``abs_log_error``, ``wis`` (NaN for bounds), ``in50``, ``in90``,
    ``bound_met`` and ``bound_shortfall`` (NaN for exact figures). A forecast with no
    finite median scores NaN everywhere; one with a median but no finite spread is
    scored as a point: its error or bound, no WIS and no coverage (NaN)."""
    median = _level(quantiles, 0.5)
    nan = math.nan
    if not np.isfinite(median):
        return {"abs_log_error": nan, "wis": nan, "in50": nan, "in90": nan,
                "bound_met": nan, "bound_shortfall": nan}
    if not all(np.isfinite(v) for v in quantiles.values()):  # a point without a spread
        point = {"abs_log_error": nan, "wis": nan, "in50": nan, "in90": nan,
                                 "bound_met": nan, "bound_shortfall": nan}
        if kind in ("lower", "upper"):
            point.update(bound_met=bound_met(median, reported, kind),
                         bound_shortfall=bound_shortfall(median, reported, kind, unit))
        else:
            point["abs_log_error"] = abs_log_error(median, reported, unit)
        return point
    in50 = interval_holds(_level(quantiles, 0.25), _level(quantiles, 0.75), reported, kind)
    in90 = interval_holds(_level(quantiles, 0.05), _level(quantiles, 0.95), reported, kind)
    if kind in ("lower", "upper"):
        return {"abs_log_error": nan, "wis": nan, "in50": in50, "in90": in90,
                "bound_met": bound_met(median, reported, kind),
                "bound_shortfall": bound_shortfall(median, reported, kind, unit)}
    logs = {level: log_value(q, unit, reported) for level, q in quantiles.items()}
    wis = weighted_interval_score(logs[_key(logs, 0.5)], intervals_from_quantiles(logs),
                                  log_value(reported, unit))
    return {"abs_log_error": abs_log_error(median, reported, unit), "wis": wis,
            "in50": in50, "in90": in90, "bound_met": nan, "bound_shortfall": nan}


def _key(quantiles: Mapping[float, float], level: float) -> float:
    return next(k for k in quantiles if abs(k - level) < 1e-9)
