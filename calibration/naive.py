r"""Two naive forecasters of the reported figures, to judge the model's forecasts against.

Each is fitted per series (a platform and a series name, e.g. WeChat
``miniprogram_dau``) to the **exact** figures of that series dated up to the backtest's
``--until`` (bounds, "over 300 million", are no points to draw a curve through), with
time in years, all figures weighing alike:

* ``line``: the least-squares straight line through the series' last four figures (by
  date; fewer if fewer exist). Through one figure, or figures all of one date, it is
  flat at their mean.
* ``logistic``: :math:`y(t) = K / (1 + e^{-r (t - t_0)})` fitted by
  ``scipy.optimize.curve_fit`` (trust-region reflective, bounded: :math:`K` from the
  largest figure to 20 times it, :math:`r` in [0.05, 10] per year, :math:`t_0` within
  ten years of the figures) to **every** exact figure of the series. It needs three
  figures at three dates, all above zero; otherwise, or when the fit fails, it falls
  back to the line, and ``used`` says so with the reason.

**Predictive intervals.** A forecast is log-normal around its point: on the log scale
of the figures (``calibration.scoring.log_value``) the point plus
:math:`\sigma \sqrt{h}\, z_\tau`, where :math:`h` is the horizon in years from the
series' last fitted figure (at least a month) and :math:`\sigma` the forecaster's own
error rate measured out of sample on the fitted figures: every exact figure with
figures of at least two earlier dates in its series is forecast from the figures dated
before it, and :math:`\sigma^2` is the mean of :math:`e^2 / h` over those forecasts
(errors :math:`e` in log, pooled over all series; :func:`error_rate`). So the bands
widen like a random walk's, as wide as the method's own past errors say, the early
years of fast growth included (the root mean square, not a robust spread: those
misses are what a trend extrapolation risks). Forecasts from one date (flat) are
left out of the measurement. With no forecast to measure :math:`\sigma` is NaN and
only the point is scored (its absolute log error; no WIS, no coverage).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from .data import Target
from .scoring import LEVELS, log_value

METHODS = ("line", "logistic")
#: Figures the line goes through: the series' last ones.
LINE_POINTS = 4
#: The shortest horizon of an error measurement, in years (two figures of one month).
MIN_HORIZON = 1.0 / 12.0


def years(date: dt.date) -> float:
    """A date as a decimal year (2019-07-02 is about 2019.5)."""
    start = dt.date(date.year, 1, 1)
    length = (dt.date(date.year + 1, 1, 1) - start).days
    return date.year + (date - start).days / length


@dataclass(frozen=True)
class Fit:
    """A fitted curve of one series: ``predict(t)`` at decimal years ``t``."""

    method: str  # what was asked: line or logistic
    used: str  # what was fitted: line, flat, logistic, or a fallback with its reason
    coefficients: tuple[float, ...]
    last_t: float  # the date of the last fitted figure
    points: int
    first_t: float = math.nan  # the date of the first fitted figure

    def predict(self, t) -> np.ndarray | float:
        t = np.asarray(t, dtype=float)
        if self.used.startswith("logistic"):
            k, r, t0 = self.coefficients
            out = k / (1.0 + np.exp(-r * (t - t0)))
        else:
            slope, intercept = self.coefficients
            out = intercept + slope * (t - self.last_t)
        return out if out.ndim else float(out)


def fit_line(t: Sequence[float], y: Sequence[float], last: int = LINE_POINTS,
             method: str = "line", why: str = "") -> Fit:
    """The least-squares line through the last ``last`` points (flat through one)."""
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if not t.size:
        raise ValueError("no points to fit")
    order = np.argsort(t, kind="stable")[-last:]
    t, y = t[order], y[order]
    if np.ptp(t) == 0:
        return Fit(method, "flat" + why, (0.0, float(y.mean())), float(t[-1]), len(t),
                   float(t[0]))
    slope, intercept = np.polyfit(t - t[-1], y, 1)
    return Fit(method, "line" + why, (float(slope), float(intercept)), float(t[-1]), len(t),
               float(t[0]))


def _logistic(t, k, r, t0):
    return k / (1.0 + np.exp(-r * (t - t0)))


def fit_logistic(t: Sequence[float], y: Sequence[float]) -> Fit:
    """A bounded logistic fit to every point; the line when it cannot be fitted."""
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(t)) < 3:
        return fit_line(t, y, method="logistic",
                        why=f" (logistic needs 3 dates, the series has {len(np.unique(t))})")
    if (y <= 0).any():
        return fit_line(t, y, method="logistic", why=" (logistic needs figures above 0)")
    top = float(y.max())
    lower = [top, 0.05, t.min() - 10.0]
    upper = [20.0 * top, 10.0, t.max() + 10.0]
    start = [min(2.0 * top, upper[0]), 1.0, float(t.mean())]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = optimize.curve_fit(_logistic, t, y, p0=start, bounds=(lower, upper),
                                           method="trf", maxfev=20_000)
    except (RuntimeError, ValueError, optimize.OptimizeWarning) as exc:
        return fit_line(t, y, method="logistic",
                        why=f" (logistic fit failed: {str(exc).splitlines()[0]})")
    if not np.all(np.isfinite(params)):
        return fit_line(t, y, method="logistic", why=" (logistic fit failed: not finite)")
    return Fit("logistic", "logistic", tuple(float(p) for p in params), float(t.max()), len(t),
               float(t.min()))


def fit(method: str, t: Sequence[float], y: Sequence[float]) -> Fit:
    if method == "line":
        return fit_line(t, y)
    if method == "logistic":
        return fit_logistic(t, y)
    raise ValueError(f"method {method!r}: expected one of {', '.join(METHODS)}")


def series_key(target: Target) -> tuple[str, str]:
    return (target.platform, target.series)


def exact_points(targets: Iterable[Target]) -> dict[tuple[str, str], list[Target]]:
    """The exact figures of each series, in date order."""
    out: dict[tuple[str, str], list[Target]] = {}
    for target in sorted(targets, key=lambda t: t.date):
        if target.kind == "exact":
            out.setdefault(series_key(target), []).append(target)
    return out


def error_rate(method: str, points: dict[tuple[str, str], list[Target]]) -> tuple[float, int]:
    """``(sigma, n)``: the method's out-of-sample log error per root year, pooled over
    the series (module docstring), and how many forecasts it rests on."""
    ratios = []
    for figures in points.values():
        for j, target in enumerate(figures):
            before = [f for f in figures[:j] if f.date < target.date]
            if len({f.date for f in before}) < 2:
                continue  # from one date the line is flat: not the method scored later
            curve = fit(method, [years(f.date) for f in before], [f.value for f in before])
            t = years(target.date)
            guess = curve.predict(t)
            floor = before[-1].value
            error = (log_value(target.value, target.unit)
                     - log_value(guess, target.unit, floor))
            horizon = max(t - curve.last_t, MIN_HORIZON)
            ratios.append(error * error / horizon)
    if not ratios:
        return math.nan, 0
    return math.sqrt(float(np.mean(ratios))), len(ratios)


@dataclass(frozen=True)
class Forecaster:
    """A naive forecaster fitted to the figures up to a date: one curve per series."""

    method: str
    fits: dict[tuple[str, str], Fit]
    last_values: dict[tuple[str, str], float]
    sigma: float
    errors_measured: int

    def quantiles(self, target: Target, levels: Sequence[float] = LEVELS
                  ) -> tuple[dict[float, float], Fit | None]:
        """The forecast of a later figure as quantiles by level (NaN if its series has
        no exact figure to fit), and the curve used."""
        curve = self.fits.get(series_key(target))
        if curve is None:
            return {level: math.nan for level in levels}, None
        t = years(target.date)
        point = curve.predict(t)
        centre = log_value(point, target.unit, self.last_values[series_key(target)])
        spread = self.sigma * math.sqrt(max(t - curve.last_t, MIN_HORIZON))
        out = {}
        for level in levels:
            if level == 0.5:
                z = 0.0
            elif not math.isfinite(spread):
                out[level] = math.nan
                continue
            else:
                z = float(stats.norm.ppf(level))
            value = math.exp(centre + (spread * z if z else 0.0))
            out[level] = 100.0 * (value - 1.0) if target.unit == "percent" else value
        return out, curve


def fit_forecaster(method: str, targets: Iterable[Target]) -> Forecaster:
    """Fit ``method`` (``line`` or ``logistic``) to the exact figures of each series."""
    points = exact_points(targets)
    fits = {key: fit(method, [years(f.date) for f in figures], [f.value for f in figures])
            for key, figures in points.items()}
    last = {key: figures[-1].value for key, figures in points.items()}
    sigma, n = error_rate(method, points)
    return Forecaster(method, fits, last, sigma, n)
