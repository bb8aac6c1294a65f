r"""How far a simulated figure may stand from a reported one: the calibration's error model.

Every figure is compared on a log scale: a simulated value :math:`m` becomes
:math:`h = \ln m` (for a growth in percent, :math:`\ln(1 + m/100)`; for a target with
a stated ``sigma``, :math:`m / \sigma`), and the reported value :math:`v` the same way
(:math:`z`). The error :math:`e = h - z` counts whole for an exact figure, only as a
shortfall (:math:`\min(e, 0)`) for a lower bound ("over 300 million") and only as an
excess for an upper bound. Its variance is the sum of

* the **observation error** of the figure: a standard deviation of
  :data:`OBSERVATION_SD` (10%) for a figure of weight 1 (tier B), divided by the square
  root of its weight, so tier S (weight 4) is 5%, A (2) 7%, C (0.5) 14% and a
  conflicting C figure (0.25) 20%: the targets' weights are their inverse variances
  (an assumption: calibration/data/README.md gives the tiers and weights);
* a stated **model discrepancy** (the calibration file's ``discrepancy``, 5% by
  default): how far a stylised model of a billion people may stand from the truth at
  its best parameters, an assumption;
* the model's own **replicate noise**: the variance of one run about the mean of
  many, measured at the design points (the world is one run, not a mean);
* the **emulator's** predictive variance, where an emulator stands in for the model.

The log-likelihood of a point is :math:`-\frac12 \sum_k e_k^2 / V_k` (with
:math:`-\frac12 \ln V_k` for exact figures, whose :math:`V_k` varies with the
emulator's), and its implausibility for figure *k* is :math:`|e_k| / \sqrt{V_k}`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .data import Target

OBSERVATION_SD = 0.10
#: The floor of a simulated value, as a share of the reported one (a model that
#: produces nothing, or NaN, for a figure is this far off, not infinitely).
FLOOR = 1e-3


def to_scale(simulated: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
    """Simulated values (... x targets) on the comparison scale (module docstring)."""
    simulated = np.asarray(simulated, dtype=float)
    out = np.empty_like(simulated)
    for k, t in enumerate(targets):
        m = simulated[..., k]
        if t.sigma:
            col = m / t.sigma
            col = np.where(np.isfinite(col), col, (t.value - 1e3 * t.sigma) / t.sigma)
        elif t.unit == "percent":
            col = np.log(np.maximum(1.0 + np.nan_to_num(m, nan=-100.0) / 100.0, FLOOR))
        else:
            col = np.log(np.maximum(np.nan_to_num(m, nan=0.0), FLOOR * max(t.value, 1e-12)))
        out[..., k] = col
    return out


def reported_scale(targets: Sequence[Target], margin: float = 0.0) -> np.ndarray:
    """The reported values on the comparison scale; a bound moved inward by ``margin``."""
    out = []
    for t in targets:
        v = t.value
        if t.kind == "lower":
            v = v * (1.0 + margin) if v > 0 else v + margin
        elif t.kind == "upper":
            v = v * (1.0 - margin) if v > 0 else v - margin
        if t.sigma:
            out.append(v / t.sigma)
        elif t.unit == "percent":
            out.append(math.log(max(1.0 + v / 100.0, FLOOR)))
        else:
            out.append(math.log(max(v, 1e-12)))
    return np.array(out)


def observation_var(targets: Sequence[Target]) -> np.ndarray:
    """Each figure's observation variance on the comparison scale."""
    return np.array([1.0 if t.sigma else OBSERVATION_SD**2 / max(t.weight, 1e-6)
                     for t in targets])


def clip_bounds(errors: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
    """Errors (... x targets) with bounds counted one-sided."""
    kinds = np.array([t.kind for t in targets])
    out = np.array(errors, dtype=float, copy=True)
    out[..., kinds == "lower"] = np.minimum(out[..., kinds == "lower"], 0.0)
    out[..., kinds == "upper"] = np.maximum(out[..., kinds == "upper"], 0.0)
    return out


class ErrorModel:
    """The fixed variances of every figure and the reported values, for one calibration."""

    def __init__(self, targets: Sequence[Target], discrepancy: float,
                 replicate_var: np.ndarray | None = None, margin: float = 0.0):
        self.targets = list(targets)
        self.z = reported_scale(targets, margin)
        self.exact = np.array([t.kind == "exact" for t in targets])
        self.fixed_var = observation_var(targets) + discrepancy**2
        if replicate_var is not None:
            self.fixed_var = self.fixed_var + replicate_var

    def errors(self, h: np.ndarray) -> np.ndarray:
        return clip_bounds(h - self.z, self.targets)

    def total_var(self, extra_var: np.ndarray | None = None) -> np.ndarray:
        return self.fixed_var if extra_var is None else self.fixed_var + extra_var

    def log_likelihood(self, h: np.ndarray, extra_var: np.ndarray | None = None) -> np.ndarray:
        """Log-likelihood of each row of ``h`` (points x targets)."""
        var = self.total_var(extra_var)
        e = self.errors(h)
        return -0.5 * (np.sum(e**2 / var, axis=-1)
                       + np.sum(np.where(self.exact, np.log(var), 0.0), axis=-1))

    def implausibility(self, h: np.ndarray, extra_var: np.ndarray | None = None) -> np.ndarray:
        """Implausibility of each figure at each row (points x targets)."""
        return np.abs(self.errors(h)) / np.sqrt(self.total_var(extra_var))


def kth_largest(values: np.ndarray, k: int) -> np.ndarray:
    """The k-th largest value of each row (k = 1 is the maximum)."""
    k = max(1, min(k, values.shape[-1]))
    return np.sort(values, axis=-1)[..., -k]
