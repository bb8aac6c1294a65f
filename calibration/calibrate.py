r"""Calibration: a posterior ensemble of the model's free parameters, fitted to reported figures.

    mpsim calibrate [--config FILE] [--data CSV] [--budget N] [--resume ID]

The pipeline, in the order it runs:

1. **Targets.** The calibration file's data (``--data`` replaces it) are read by
   :mod:`calibration.data`; rows the model cannot use are listed with why.
2. **App user bases.** :func:`calibration.app_bases.fit` fits the WeChat and Alipay
   app curves to the app figures among the targets; those parameters are then held
   fixed in the search, and the fit table marks the app rows as set by the app curves.
   Each ensemble member then gets its own draw of the curves
   (:func:`calibration.app_bases.draws`, a parametric bootstrap), so the ensemble's
   runs carry how little or much the app figures pin the curves down.
3. **History matching** (:mod:`calibration.posterior`): ``waves`` waves of
   ``budget / waves`` parameter points each, every point run with the same
   ``replicates`` seeds (common random numbers); after each wave a Gaussian-process
   emulator (:mod:`calibration.emulator`) is fitted to every run so far and the points
   whose implausibility (:mod:`calibration.likelihood`) exceeds ``cutoff`` are ruled out.
4. **Posterior sampling** against the emulator over what is left (MCMC: ``walkers``
   chains of ``steps`` steps, emcee), the prior uniform on the bounds. The draws are
   resampled to at most ``ensemble_size`` members (duplicates merged as weights):
   ``ensemble.csv``, the ``model/ensemble.py`` format that runs draw from.
5. **Best point.** The ``best_candidates`` members the emulator rates highest (repeated
   members first) and the ``best_candidates / 2`` design points whose own runs rate
   highest are run with the search's seeds; the one with the lowest loss (below) is the
   best point (``--point`` runs, ``calibrated.toml``). A design point that wins joins the
   ensemble as one more member, with the weight of one draw. The best point is then
   **polished**: at most ``polish`` evaluations (the start and ``polish - 1`` trial
   steps) of nonlinear least squares on the loss's residuals
   :math:`\sqrt{w_k / \sum w}\, r_k` (``scipy.optimize.least_squares``, trust-region
   reflective within the bounds, the search's seeds at every point, a
   forward-difference Jacobian of step :data:`POLISH_STEP` at each accepted step, its
   points run in parallel). The draws say where the data leave the parameters; the
   polish looks near the best of them for a point that fits better (a local optimum),
   which a few dozen draws of a 30-dimensional posterior seldom hold.
   A polished point with a lower loss is the best point and joins the ensemble as one
   draw; ``polish = 0`` leaves the best point as chosen.
6. **Checks by simulation**, not by the emulator: ``check_draws`` draws of the ensemble,
   one fresh run each, give every figure's posterior-predictive 5-95% interval; the
   best point on 10 fresh replicates gives its fit. ``fit_table.csv`` holds both, and
   the manifest records how often the emulator's 95% interval held the simulated value.

**Loss** (for the best point and the fit table's ranking): for target *k* with
reported value :math:`v_k`, weight :math:`w_k` and the mean :math:`m_k` of its
simulated value over *R* replicates, :math:`r_k = \ln(m_k / v_k)` (for a growth in
percent, :math:`\ln\frac{1 + m_k/100}{1 + v_k/100}`), counted only as a shortfall for a
lower bound and an excess for an upper one; :math:`L = \sum_k w_k r_k^2 / \sum_k w_k`.

**Checkpoints.** Every wave's runs are saved in the calibration's ``.partial`` folder
as soon as they finish; ``--resume ID`` reruns the pipeline with the saved waves in
place of their runs, so it ends exactly where an uninterrupted calibration would. A
checkpoint names its calibration by content (the calibration file's and the data
file's bytes and every setting), and a lock refuses a second process on the same one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import executor as executors
from model import scenarios
from model.ensemble import Ensemble
from model.ensemble import write as write_ensemble
from model.errors import Interrupted, MpsimError, ParameterError
from model.inputs import read_toml
from model.model import simulate
from model.params import BY_NAME, UNCALIBRATED, _closest, check_param, resolve
from model.runner import (RESULTS_DIR, _json_default, _lock, file_record, git_commit,
                          new_run_dir,
                          partial_name, versions)

from . import app_bases
from .data import Target, TargetIndex, load_targets
from .likelihood import ErrorModel, fit_discrepancy, to_scale
from .posterior import Posterior, Settings, history_match, resample_members, sample

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "baseline.toml"
CALIBRATION_DIR = RESULTS_DIR / "calibration"
#: Penalty (as a log error) for a target the model cannot measure at a point (NaN).
MISSING_ERROR = math.log(1e-3)
#: Fresh replicates of the best point for its fit.
CHECK_REPLICATES = 10
#: The polish's finite-difference step, as a share of each parameter's range: about ten
#: times the change at which the runs' noise (common seeds) shows in the loss (measured
#: on the baseline: a step of 0.002 moves it by under 0.5%; an assumption beyond that).
POLISH_STEP = 0.02

_CONFIG_KEYS = {"description": str, "scenario": str, "data": str, "series": list,
                "exclude_series": list,
                "seed": int, "replicates": int, "agents": int, "merchant_agents": int,
                "budget": int, "waves": int, "candidates": int, "cutoff": float,
                "discrepancy": float, "walkers": int, "steps": int,
                "ensemble_size": int, "check_draws": int, "best_candidates": int,
                "polish": int, "free": dict}
_CONFIG_RANGES = {"replicates": (1, 1000), "agents": (100, 10_000_000),
                  "merchant_agents": (100, 1_000_000), "budget": (2, 10_000_000),
                  "waves": (1, 20), "candidates": (100, 10_000_000), "cutoff": (1.0, 10.0),
                  "discrepancy": (0.0, 2.0), "walkers": (4, 10_000),
                  "steps": (20, 10_000_000), "ensemble_size": (1, 100_000),
                  "check_draws": (2, 100_000), "best_candidates": (1, 10_000),
                  "polish": (0, 1000),
                  "seed": (0, 2**63 - 1)}
#: Keys of the earlier differential-evolution calibration, refused with this reason.
_RETIRED_KEYS = ("popsize", "polish_share", "tolerance", "bound_margin")


@dataclass
class CalibrationConfig:
    """What to calibrate: read from a TOML file (``calibration/baseline.toml``)."""

    path: Path
    scenario: str
    data: Path
    free: dict[str, tuple[float, float]]
    description: str = ""
    series: list[str] | None = None
    exclude_series: list[str] = field(default_factory=list)
    seed: int = 1
    replicates: int = 3
    agents: int = 10_000
    merchant_agents: int = 2_000
    budget: int = 2000
    waves: int = 4
    candidates: int = 10_000
    cutoff: float = 3.0
    discrepancy: float = 0.05
    walkers: int = 64
    steps: int = 8000
    ensemble_size: int = 1000
    check_draws: int = 200
    best_candidates: int = 20
    polish: int = 10

    def as_dict(self) -> dict[str, Any]:
        return {"config_file": str(self.path), "description": self.description,
                "scenario": self.scenario, "data": str(self.data), "series": self.series,
                "exclude_series": self.exclude_series, "seed": self.seed,
                "replicates": self.replicates, "agents": self.agents,
                "merchant_agents": self.merchant_agents, "budget": self.budget,
                "waves": self.waves, "candidates": self.candidates, "cutoff": self.cutoff,
                "discrepancy": self.discrepancy, "walkers": self.walkers,
                "steps": self.steps, "ensemble_size": self.ensemble_size,
                "check_draws": self.check_draws, "best_candidates": self.best_candidates,
                "polish": self.polish,
                "free": {k: list(v) for k, v in self.free.items()}}

    @property
    def design_candidates(self) -> int:
        """Design points of the waves run again as candidates for the best point."""
        return max(1, self.best_candidates // 2)

    def settings(self) -> Settings:
        return Settings(waves=self.waves, wave_size=max(2, self.budget // self.waves),
                        candidates=self.candidates, cutoff=self.cutoff,
                        walkers=self.walkers, steps=self.steps,
                        seed=self.seed)

    def identity(self) -> str:
        """The calibration's identity by content: every setting and the bytes of the
        calibration file and of the data file (a resume refuses any other)."""
        digest = hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode())
        for path in (self.path, self.data):
            digest.update(b"\0" + path.read_bytes())
        return digest.hexdigest()[:20]

    def resume_command(self, run_id: str, out: Path | None) -> str:
        parts = ["mpsim calibrate", f"--resume {run_id}", f"--config {self.path.resolve()}",
                 f"--data {self.data.resolve()}", f"--budget {self.budget}"]
        if out is not None:
            parts.append(f"--out {Path(out).resolve()}")
        return " ".join(parts)


def load_config(path: str | Path | None = None, *, data: str | Path | None = None,
                budget: int | None = None) -> CalibrationConfig:
    """Read and check a calibration file; ``data`` and ``budget`` override it."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw = read_toml(path, "calibration file")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kind = _CONFIG_KEYS.get(key)
        if key in _RETIRED_KEYS:
            raise ParameterError(f"{path}: {key}: this key belonged to the earlier "
                                 "differential-evolution calibration; remove it (the "
                                 "calibration is now history matching with an ensemble: "
                                 "see calibration/baseline.toml)")
        if kind is None:
            raise ParameterError(f"{path}: unknown key {key!r}; {_closest(key, _CONFIG_KEYS)}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ParameterError(f"{path}: {key}: value {value!r} is not allowed; expected "
                                 f"{kind.__name__}")
        if key in _CONFIG_RANGES:
            low, high = _CONFIG_RANGES[key]
            if not low <= value <= high:
                raise ParameterError(f"{path}: {key}: value {value!r} is not allowed; expected "
                                     f"a number in [{low}, {high}]")
        values[key] = value
    for key in ("scenario", "data", "free"):
        if key not in values:
            raise ParameterError(f"{path}: missing key {key!r}")
    free: dict[str, tuple[float, float]] = {}
    for name, bounds in values.pop("free").items():
        where = f"{path}: free.{name}"
        spec = BY_NAME.get(name)
        if spec is None:
            raise ParameterError(f"{path}: free: unknown parameter {name!r}; "
                                 f"{_closest(name, BY_NAME)}")
        if spec.kind not in (float, int):
            raise ParameterError(f"{where}: only numeric parameters can be calibrated, "
                                 f"not {spec.describe_allowed()}")
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
            raise ParameterError(f"{where}: value {bounds!r} is not allowed; expected "
                                 "[low, high]")
        low, high = (check_param(name, b, where) for b in bounds)
        if not low < high:
            raise ParameterError(f"{where}: value {bounds!r} is not allowed; expected low < high")
        free[name] = (float(low), float(high))
    if not free:
        raise ParameterError(f"{path}: free: no parameters to calibrate")
    data_path = Path(data) if data is not None else (path.parent / values.pop("data"))
    values.pop("data", None)
    if budget is not None:
        if not _CONFIG_RANGES["budget"][0] <= budget <= _CONFIG_RANGES["budget"][1]:
            raise ParameterError(f"--budget: value {budget} is not allowed; expected a number "
                                 f"in [{_CONFIG_RANGES['budget'][0]}, "
                                 f"{_CONFIG_RANGES['budget'][1]}]")
        values["budget"] = budget
    for what in (path, data_path):
        if not what.is_file():
            raise ParameterError(f"{what}: no such file" if not what.exists()
                                 else f"{what}: is a folder, not a file")
    config = CalibrationConfig(path=path, data=data_path, free=free, **values)
    if config.budget < 2 * config.waves:
        raise ParameterError(f"{path}: budget: value {config.budget} is not allowed with "
                             f"waves = {config.waves}; expected at least 2 points per wave "
                             f"(budget >= {2 * config.waves})")
    return config


def log_errors(simulated: np.ndarray, targets: list[Target], margin: float = 0.0) -> np.ndarray:
    """Each target's error term r_k (module docstring) from ``replicates x targets``.

    ``margin``: a lower bound counts as ``value * (1 + margin)``, an upper bound as
    ``value * (1 - margin)`` (the calibration file's ``bound_margin``); for a bound at
    zero or below, the margin is added (subtracted) instead.
    """
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(simulated, axis=0)
    errors = np.empty(len(targets))
    for k, target in enumerate(targets):
        m, v = mean[k], target.value
        if target.kind == "lower":
            v = v * (1.0 + margin) if v > 0 else v + margin
        elif target.kind == "upper":
            v = v * (1.0 - margin) if v > 0 else v - margin
        if not np.isfinite(m):
            errors[k] = MISSING_ERROR
            continue
        if target.sigma:
            r = (m - v) / target.sigma
        elif target.unit == "percent":
            r = math.log(max(1.0 + m / 100.0, 1e-3) / max(1.0 + v / 100.0, 1e-3))
        else:
            r = math.log(max(m, 1e-3 * v, 1e-12) / max(v, 1e-12))
        if target.kind == "lower":
            r = min(r, 0.0)
        elif target.kind == "upper":
            r = max(r, 0.0)
        errors[k] = r
    return errors


def weighted_errors(simulated: np.ndarray, targets: list[Target],
                    margin: float = 0.0) -> np.ndarray:
    """The residuals :math:`\\sqrt{w_k / \\sum w}\\, r_k`, whose sum of squares is the loss."""
    weights = np.array([t.weight for t in targets])
    return np.sqrt(weights / weights.sum()) * log_errors(simulated, targets, margin)


def loss(simulated: np.ndarray, targets: list[Target], margin: float = 0.0) -> float:
    return float(np.sum(weighted_errors(simulated, targets, margin) ** 2))


#: A target smaller than this many agents' worth cannot be told apart from noise.
MIN_AGENTS_PER_TARGET = 5


def split_by_resolution(targets: list[Target], params: dict[str, Any],
                        config: CalibrationConfig) -> tuple[list[Target], list[tuple[int, str]]]:
    """Targets the model can resolve at the configured size, and the others with why.

    With 10,000 user agents one agent stands for 110,000 people, so a figure of a few
    agents' worth (60 Alipay mini programs in the 2017 beta) is below what the model
    can resolve; such rows are listed as unused, never silently dropped.
    """
    people = params["population.people_millions"] / config.agents
    programs = params["merchants.population_millions"] / config.merchant_agents
    keep, small = [], []
    for t in targets:
        unit = programs if t.unit == "million_mini_programs" else (
            people if t.unit.startswith("million_") else None)
        if unit is not None and t.value < MIN_AGENTS_PER_TARGET * unit:
            small.append((t.row, f"{t.label}: {t.value:g} {t.unit} is under "
                                 f"{MIN_AGENTS_PER_TARGET} agents' worth ({unit:.3g} each at "
                                 f"this calibration's size); too small to fit"))
        else:
            keep.append(t)
    return keep, small


class Objective:
    """The loss at a parameter point: picklable, so worker processes can evaluate it."""

    def __init__(self, base: dict[str, Any], names: list[str], targets: list[Target],
                 run: dict[str, Any], seeds: list[np.random.SeedSequence], margin: float = 0.0,
                 uncalibrated_start: bool = False):
        self.base, self.names, self.targets, self.run, self.seeds = base, names, targets, run, seeds
        self.margin = margin
        self.uncalibrated_start = uncalibrated_start

    def start_point(self, bounds) -> np.ndarray:
        """The scenario's own values of the free parameters, clipped into their bounds:
        one point of the first wave, so a recalibration looks at the current fit. With
        ``uncalibrated_start`` the hand-set defaults instead (``params.UNCALIBRATED``):
        a backtest must not start from a fit to the figures it forecasts."""
        values = resolve(self.base)
        if self.uncalibrated_start:
            values = {**values, **{n: UNCALIBRATED[n] for n in self.names}}
        return np.array([min(max(float(values[n]), low), high)
                         for n, (low, high) in zip(self.names, bounds)])

    def params(self, x) -> dict[str, Any]:
        out = dict(self.base)
        for name, value in zip(self.names, x):
            out[name] = int(round(value)) if BY_NAME[name].kind is int else float(value)
        return out

    def simulate(self, x, seeds=None) -> np.ndarray:
        """``replicates x targets`` simulated values at ``x``."""
        params = self.params(x)
        frames = [simulate(params, agents=self.run["agents"],
                           merchant_agents=self.run["merchant_agents"],
                           start=self.run["start"], end=self.run["end"], seed=s)
                  for s in (seeds or self.seeds)]
        index = TargetIndex.for_frame(frames[0], self.targets)
        return index.values(frames, params)

    def __call__(self, x) -> float:
        return loss(self.simulate(x), self.targets, self.margin)


def _run_window(targets: list[Target], scenario) -> dict[str, Any]:
    """Simulate from the scenario's start to the week of the last target (to the end of
    its year for a year-over-year target): later weeks cannot change the loss."""
    needed = [dt.date(t.date.year, 12, 31) if t.spec.read == "yoy_annual_mean"
              else t.date + dt.timedelta(days=7) for t in targets]
    end = min(max(needed), scenario.run["end"])
    return {"start": scenario.run["start"], "end": end}


def within_15pct(simulated: float, reported: float, kind: str) -> bool:
    """The acceptance rule: within 15% of an exact figure; a lower bound not undershot,
    an upper bound not exceeded."""
    if kind == "lower":
        return bool(simulated >= reported)
    if kind == "upper":
        return bool(simulated <= reported)
    return bool(abs(simulated / reported - 1.0) <= 0.15)


def fit_table(simulated: np.ndarray, targets: list[Target]) -> pd.DataFrame:
    """Every target: reported, simulated mean and 90% interval, relative error."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(simulated, axis=0)
        low, high = np.nanquantile(simulated, [0.05, 0.95], axis=0)
    rows = []
    for k, t in enumerate(targets):
        rel = mean[k] / t.value - 1.0 if t.value else np.nan
        met = within_15pct(mean[k], t.value, t.kind)
        rows.append({"label": t.label, "date": t.date.isoformat(), "platform": t.platform,
                     "series": t.series, "kind": t.kind, "weight": t.weight, "unit": t.unit,
                     "reported": t.value, "simulated_mean": mean[k], "simulated_p05": low[k],
                     "simulated_p95": high[k], "relative_error": rel,
                     "within_15pct": bool(met), "line": t.row, "source": t.source})
    return pd.DataFrame(rows)



def posterior_table(names: list[str], bounds: np.ndarray, values: np.ndarray,
                    weights: np.ndarray, best: np.ndarray) -> pd.DataFrame:
    """Per parameter: its prior (the bounds), the best point, and the posterior's weighted
    mean and 5/50/95% quantiles; ``width_ratio`` is the posterior 90% interval over the
    prior's, and a parameter is pinned down by the data when it is under a half."""
    rows = []
    for j, name in enumerate(names):
        low, high = bounds[j]
        order = np.argsort(values[:, j])
        cdf = np.cumsum(weights[order])
        q = [float(values[order, j][min(np.searchsorted(cdf, p), len(cdf) - 1)])
             for p in (0.05, 0.5, 0.95)]
        ratio = (q[2] - q[0]) / (0.9 * (high - low))
        rows.append({"parameter": name, "prior_low": low, "prior_high": high,
                     "best": float(best[j]), "mean": float(weights @ values[:, j]),
                     "p05": q[0], "p50": q[1], "p95": q[2], "width_ratio": ratio,
                     "pinned": bool(ratio < 0.5)})
    return pd.DataFrame(rows)


def posterior_fit(fit: pd.DataFrame, draws: np.ndarray, targets: list[Target],
                  app_series: tuple[str, ...]) -> pd.DataFrame:
    """Add each figure's posterior-predictive 5/50/95% values (one run per ensemble
    draw) to the fit table, and whether the 90% interval holds it (a lower bound: the
    upper end is above it; an upper bound: the lower end is below it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p05, p50, p95 = np.nanquantile(draws, [0.05, 0.5, 0.95], axis=0)
    fit = fit.copy()
    fit["posterior_p05"], fit["posterior_p50"], fit["posterior_p95"] = p05, p50, p95
    held = []
    for k, t in enumerate(targets):
        if t.kind == "lower":
            held.append(bool(p95[k] >= t.value))
        elif t.kind == "upper":
            held.append(bool(p05[k] <= t.value))
        else:
            held.append(bool(p05[k] <= t.value <= p95[k]))
    fit["in_90pct"] = held
    fit["set_by"] = ["app curves (calibration.app_bases), not the search"
                     if t.series in app_series else "ensemble" for t in targets]
    return fit


def scenario_text(run_id: str, values: dict[str, float], config: CalibrationConfig) -> str:
    """A scenario file with the best point's values over the calibration's scenario."""
    groups: dict[str, list[str]] = {}
    for name, value in values.items():
        group, key = name.split(".", 1)
        value = int(round(value)) if BY_NAME[name].kind is int else float(value)
        groups.setdefault(group, []).append(f"{key} = {value!r}")
    lines = [f'description = """{config.scenario} with the best point of calibration '
             f'{run_id} (fitted to {config.data.name}). Answers: what does the calibrated '
             'model say at its single best point? Runs over the whole ensemble use '
             f'results/calibration/{run_id}/ensemble.csv."""',
             f'extends = "{config.scenario}"', ""]
    for group, items in groups.items():
        lines += [f"[{group}]", *items, ""]
    return "\n".join(lines)


@dataclass
class CalibrationResult:
    path: Path
    best: dict[str, float]
    loss: float
    fit: pd.DataFrame
    effective_size: float = float("nan")


@dataclass
class Problem:
    """What a calibration fits, built (and checked) before anything is written."""

    objective: Objective
    bounds: np.ndarray          # free parameters x (low, high)
    loaded: Any
    app: dict[str, float]       # app-curve parameters fitted to the targets, held fixed

    @property
    def names(self) -> list[str]:
        return self.objective.names

    def to_values(self, unit: np.ndarray) -> np.ndarray:
        low, high = self.bounds[:, 0], self.bounds[:, 1]
        return low + np.asarray(unit) * (high - low)

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        low, high = self.bounds[:, 0], self.bounds[:, 1]
        return (np.asarray(values) - low) / (high - low)


def build_problem(config: CalibrationConfig, uncalibrated_start: bool = False) -> Problem:
    """The targets, the free parameters' bounds and the objective, with the app curves
    fitted to the targets first (``calibration.app_bases``); ``uncalibrated_start``:
    :meth:`Objective.start_point`."""
    scenario = scenarios.load(config.scenario, where=f"{config.path}: scenario")
    loaded = load_targets(config.data, start=scenario.run["start"], end=scenario.run["end"])
    targets = []
    for t in loaded.targets:
        if config.series is not None and t.series not in config.series:
            loaded.unused.append((t.row, f"{t.label}: series {t.series} is not among the "
                                         f"calibration file's series {config.series}"))
        elif t.series in config.exclude_series:
            loaded.unused.append((t.row, f"{t.label}: series {t.series} is in the "
                                         "calibration file's exclude_series"))
        else:
            targets.append(t)
    targets, too_small = split_by_resolution(targets, scenario.params, config)
    loaded.unused.extend(too_small)
    if not targets:
        chosen = (f"series = {config.series}" if config.series is not None
                  else f"exclude_series = {config.exclude_series}")
        raise MpsimError(f"{config.path}: no target of {config.data} left to fit with "
                         f"{chosen} ({len(loaded.unused)} rows left out; each is listed "
                         "with why in a calibration's manifest)")
    base = dict(scenario.overrides)
    app = {name: value for name, value in app_bases.fit(targets, resolve(base)).items()
           if name not in config.free}
    base.update(app)
    names = list(config.free)
    run = {"agents": config.agents, "merchant_agents": config.merchant_agents,
           **_run_window(targets, scenario)}
    seeds = np.random.SeedSequence(config.seed).spawn(config.replicates)
    objective = Objective(base, names, targets, run, seeds,
                          uncalibrated_start=uncalibrated_start)
    return Problem(objective, np.array([config.free[n] for n in names]), loaded, app)


def build_objective(config: CalibrationConfig):
    """``(objective, bounds, loaded)`` of :func:`build_problem` (for benchmarks)."""
    problem = build_problem(config)
    return problem.objective, [tuple(b) for b in problem.bounds], problem.loaded


def _simulate_one(task) -> np.ndarray:
    objective, x, seed = task
    return objective.simulate(x, seeds=[seed])


class _Pipeline:
    """Steps 3-6 of the module docstring on one pool, with wave checkpoints."""

    def __init__(self, problem: Problem, config: CalibrationConfig, pool, folder: Path,
                 progress: bool):
        self.problem, self.config, self.pool = problem, config, pool
        self.folder, self.progress = folder, progress
        self.targets = problem.objective.targets
        self.discrepancy = config.discrepancy

    def say(self, text: str) -> None:
        if self.progress:
            print(text, file=sys.stderr, flush=True)

    def runs(self, tasks, desc: str) -> np.ndarray:
        done = executors.run_tasks(_simulate_one, tasks, self.pool, desc=desc,
                                   progress=self.progress)
        return np.vstack(done)

    def simulate_unit(self, unit: np.ndarray, wave: int) -> np.ndarray:
        """Points x replicates x targets on the log scale, every run in parallel."""
        objective = self.problem.objective
        xs = self.problem.to_values(unit)
        tasks = [(objective, x, s) for x in xs for s in objective.seeds]
        raw = self.runs(tasks, f"wave {wave}/{self.config.waves}")
        return to_scale(raw.reshape(len(xs), len(objective.seeds), -1), self.targets)

    def fit_tasks(self, fn, tasks):
        return executors.run_tasks(fn, tasks, self.pool, desc="emulator", progress=False)

    def save_wave(self, wave: int, unit: np.ndarray, outputs: np.ndarray) -> None:
        tmp = self.folder / f"wave_{wave}.tmp.npz"
        np.savez(tmp, x=unit, outputs=outputs)
        os.replace(tmp, self.folder / f"wave_{wave}.npz")

    def saved_waves(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        saved = {}
        for wave in range(1, self.config.waves + 1):
            path = self.folder / f"wave_{wave}.npz"
            if path.is_file():
                with np.load(path) as data:
                    saved[wave] = (data["x"], data["outputs"])
        return saved

    def error_model(self, replicate_var, outputs=None):
        """The error model with the discrepancy fitted to the points run so far
        (:func:`calibration.likelihood.fit_discrepancy`)."""
        if outputs is not None:
            self.discrepancy = fit_discrepancy(outputs, self.targets, self.config.discrepancy,
                                               replicate_var)
        return ErrorModel(self.targets, self.discrepancy, replicate_var)

    def polish(self, start: np.ndarray, start_loss: float) -> tuple[np.ndarray, dict[str, Any]]:
        """Step 5's polish: nonlinear least squares on the loss's residuals from the best
        point, the search's seeds at every point (``scipy.optimize.least_squares``,
        trust-region reflective in the unit cube of the bounds; each Jacobian by forward
        differences of :data:`POLISH_STEP`, its points run in parallel)."""
        from scipy.optimize import least_squares

        objective, problem = self.problem.objective, self.problem
        seeds = objective.seeds
        cache: dict[bytes, np.ndarray] = {}
        count = {"runs": 0, "jacobians": 0}

        def residuals_at(points: np.ndarray) -> np.ndarray:
            tasks = [(objective, problem.to_values(u), s) for u in points for s in seeds]
            done = executors.run_tasks(_simulate_one, tasks, self.pool, desc="polish",
                                       progress=False)
            count["runs"] += len(tasks)
            sims = np.vstack(done).reshape(len(points), len(seeds), -1)
            return np.array([weighted_errors(sim, self.targets) for sim in sims])

        def fun(u: np.ndarray) -> np.ndarray:
            key = np.asarray(u, dtype=float).tobytes()
            if key not in cache:
                cache[key] = residuals_at(np.asarray(u, dtype=float)[None])[0]
            return cache[key]

        def jac(u: np.ndarray) -> np.ndarray:
            u = np.asarray(u, dtype=float)
            here = fun(u)
            count["jacobians"] += 1
            self.say(f"polish {count['jacobians']}/{self.config.polish}: loss "
                     f"{float(here @ here):.4g}")
            steps = np.where(u + POLISH_STEP <= 1.0, POLISH_STEP, -POLISH_STEP)
            around = residuals_at(u + np.diag(steps))
            return ((around - here) / steps[:, None]).T

        result = least_squares(fun, np.clip(start, 0.0, 1.0), jac=jac, bounds=(0.0, 1.0),
                               max_nfev=self.config.polish, x_scale=1.0)
        end = fun(result.x)
        end_loss = float(end @ end)
        kept = bool(end_loss < start_loss and not np.allclose(result.x, start))
        self.say(f"polish: loss {start_loss:.4g} -> {end_loss:.4g} in {count['jacobians']} "
                 f"iterations ({count['runs']} runs)"
                 + ("; the polished point joins the ensemble as one draw" if kept else
                    "; kept the best point as it was"))
        return result.x, {"iterations": count["jacobians"], "runs": count["runs"],
                          "loss_before": start_loss, "loss_after": min(end_loss, start_loss),
                          "kept": kept}

    def run(self) -> dict[str, Any]:
        config, problem = self.config, self.problem
        settings = config.settings()
        start = np.clip(problem.to_unit(problem.objective.start_point(problem.bounds)), 0, 1)
        saved = self.saved_waves()
        if saved:
            self.say(f"resuming: waves {sorted(saved)} are read from the checkpoint")
        posterior = history_match(lambda u: self.simulate_unit(u, len(self.saved_waves()) + 1),
                                  len(problem.names), self.error_model, settings, start=start,
                                  fit_tasks=self.fit_tasks, saved=saved,
                                  on_wave=self.save_wave, say=self.say)
        model = self.error_model(posterior.replicate_var, posterior.outputs)
        self.say(f"model discrepancy: {self.discrepancy:.3g} (sd on the log scale; stated "
                 f"minimum {self.config.discrepancy:g})")
        posterior = sample(posterior, model, settings, say=self.say)
        rng = np.random.default_rng([config.seed, 13])
        members, counts = resample_members(posterior.samples, posterior.weights,
                                           config.ensemble_size, rng)
        unit = posterior.samples[members]
        weights = counts / counts.sum()
        # the best point: the members the emulator rates highest, run with the search's seeds
        objective = problem.objective
        # the members the emulator rates highest (every member is one draw of the chain)
        score = (posterior.sample_log_prob[members] if posterior.sample_log_prob is not None
                 else posterior.weights[members])
        heavy = np.argsort(-(counts * 1e9 + score))[:config.best_candidates]
        # ... and the design points the simulations themselves rate highest: the waves
        # ran them with the same seeds, and one of them is often closer than any draw
        design_ll = model.log_likelihood(posterior.outputs)
        design_top = np.argsort(-design_ll)[:config.design_candidates]
        candidates = np.vstack([unit[heavy], posterior.x[design_top]])
        tasks = [(objective, problem.to_values(u), s) for u in candidates for s in objective.seeds]
        sims = self.runs(tasks, "best point").reshape(len(candidates), len(objective.seeds), -1)
        losses = np.array([loss(s, self.targets) for s in sims])
        winner = int(np.argmin(losses))
        member_losses = dict(zip(map(int, heavy), map(float, losses[:len(heavy)])))

        draws = float(counts.sum())  # the draws the weights count

        def join(point: np.ndarray, point_loss: float) -> int:
            """A point found outside the draws joins the ensemble as one draw."""
            nonlocal unit, weights, draws
            unit = np.vstack([unit, point])
            weights = np.append(weights * draws, 1.0) / (draws + 1.0)
            draws += 1.0
            member_losses[len(unit) - 1] = float(point_loss)
            return len(unit) - 1

        if winner < len(heavy):
            best = int(heavy[winner])
        else:  # a design point: it joins the ensemble with the weight of one draw
            best = join(candidates[winner], losses[winner])
            self.say(f"best point: design point {int(design_top[winner - len(heavy)])} of the "
                     f"waves (loss {losses[winner]:.4g}; best ensemble member "
                     f"{losses[:len(heavy)].min():.4g}) joins the ensemble as one draw")
        polish = {"iterations": 0, "runs": 0, "loss_before": float(losses[winner]),
                  "loss_after": float(losses[winner]), "kept": False}
        if config.polish:
            polished, polish = self.polish(unit[best], float(losses[winner]))
            if polish["kept"]:
                best = join(polished, polish["loss_after"])
        best_x = problem.to_values(unit[best])
        # the app curves: one parametric-bootstrap draw per member, the best point keeps
        # the fit itself (calibration.app_bases.draws)
        app_names = list(problem.app)
        app_values = np.empty((len(unit), 0))
        if app_names:
            drawn = app_bases.draws(self.targets, resolve(objective.base), len(unit),
                                    np.random.default_rng([config.seed, 19]))
            app_values = np.array([[d.get(n, problem.app[n]) for n in app_names]
                                   for d in drawn])
            app_values[best] = [problem.app[n] for n in app_names]
        # checks by simulation: the best point on fresh replicates, and the ensemble
        check_seeds = np.random.SeedSequence(config.seed + 1).spawn(CHECK_REPLICATES)
        best_runs = self.runs([(objective, best_x, s) for s in check_seeds], "fit check")
        ensemble = Ensemble(tuple(problem.names + app_names),
                            np.column_stack([problem.to_values(unit), app_values]), weights,
                            np.arange(len(unit)), best, "calibration")
        chosen = ensemble.draw(config.check_draws, config.seed)
        draw_seeds = np.random.SeedSequence(config.seed + 2).spawn(config.check_draws)
        with_apps = Objective(objective.base, list(ensemble.names), objective.targets,
                              objective.run, objective.seeds)
        draw_runs = self.runs([(with_apps, ensemble.values[i], s)
                               for i, s in zip(chosen, draw_seeds)], "posterior check")
        # how often the emulator's 95% interval held what the model then produced (on
        # the figures the search fits: the emulator holds the app curves at their fit)
        mean, var = posterior.emulator.predict(unit[chosen])
        z = (to_scale(draw_runs, self.targets) - mean) / np.sqrt(var + posterior.replicate_var)
        searched = np.array([t.series not in app_bases.APP_SERIES for t in self.targets])
        emulator_coverage = float(np.mean(np.abs(z[:, searched if searched.any() else ...])
                                          <= 1.96))
        return {"posterior": posterior, "ensemble": ensemble, "best": best, "best_x": best_x,
                "best_runs": best_runs, "draw_runs": draw_runs, "chosen": chosen,
                "member_losses": member_losses, "polish": polish,
                "emulator_coverage": emulator_coverage, "error_model": model,
                "discrepancy": self.discrepancy}


def _checkpoint_note(folder: Path, config: CalibrationConfig, identity: str) -> None:
    _write_json(folder / "checkpoint.json", {"identity": identity, "config": config.as_dict()})


def calibrate(config: CalibrationConfig, *, workers: int | None = None,
              dask_address: str | None = None, resume: str | None = None,
              out: Path | None = None, progress: bool = True,
              uncalibrated_start: bool = False) -> CalibrationResult:
    """Run a calibration and write ``<out>/calibration/<id>/``; return what it found.
    ``uncalibrated_start``: the first wave holds the hand-set defaults, not the
    adopted calibration's values (:meth:`Objective.start_point`; the backtest)."""
    parent = (out or RESULTS_DIR) / "calibration"
    started = dt.datetime.now(dt.timezone.utc)
    # every refusal comes before anything is written
    problem = build_problem(config, uncalibrated_start)
    identity = config.identity()
    if resume is not None:
        if not resume.strip():
            raise MpsimError("--resume: value '' is not allowed; expected the id of an "
                             "interrupted calibration (a folder under "
                             f"{parent} named .<id>.partial)")
        final, partial = parent / resume, partial_name(parent / resume)
        if final.exists():
            raise MpsimError(f"--resume {resume}: calibration {final} already finished")
        note = partial / "checkpoint.json"
        if not note.is_file():
            raise MpsimError(f"--resume {resume}: no interrupted calibration at {partial}")
        state = json.loads(note.read_text())
        if state.get("identity") != identity:
            raise MpsimError(f"--resume {resume}: it was started with another calibration "
                             "file, data file or settings (its files or --budget differ "
                             "from these: a resume must use the same bytes); resume with: "
                             f"{config.resume_command(resume, out)} and the original files")
    else:
        final = new_run_dir(parent, started)
        partial = partial_name(final)
        partial.mkdir(parents=True)
    try:
        lock = _lock(partial)
    except OSError:
        raise MpsimError(f"--resume {resume}: calibration {partial} is being written by "
                         "another process; wait for it or stop it first") from None
    clock = time.perf_counter()
    commit = git_commit()  # the code as it was when the calibration started
    try:
        _checkpoint_note(partial, config, identity)
        with executors.executor(workers, dask_address) as pool:
            found = _Pipeline(problem, config, pool, partial, progress).run()
        wall = time.perf_counter() - clock
        result = _write_outputs(partial, final.name, config, problem, found, started, wall,
                                identity, commit)
        if lock is not None:
            os.close(lock)
            lock = None
        os.rename(partial, final)
        # the waves' runs and the checkpoint note stay, in waves/: copied into a folder
        # `.<id>.partial` beside it, `mpsim calibrate --resume <id>` redoes the steps after
        # the runs (emulators, sampling, checks) without running the waves again
        kept = final / "waves"
        kept.mkdir(exist_ok=True)
        for name in [f.name for f in final.glob("wave_*.npz")] + ["checkpoint.json"]:
            os.replace(final / name, kept / name)
    except KeyboardInterrupt as exc:
        what = ("interrupted" if getattr(exc, "signum", signal.SIGINT) == signal.SIGINT
                else f"stopped by {signal.Signals(exc.signum).name}")
        if any(partial.glob("wave_*.npz")):
            message = (f"calibration {what}; its finished waves are kept in {partial}; "
                       f"continue it with: {config.resume_command(final.name, out)}")
        else:
            shutil.rmtree(partial, ignore_errors=True)
            message = f"calibration {what} before its first wave finished; nothing was kept"
        if isinstance(exc, Interrupted):  # the command line prints it as its one line
            raise Interrupted(exc.signum, message) from None
        print(message, file=sys.stderr)
        raise
    except BaseException:
        if not any(partial.glob("wave_*.npz")):
            shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)
    result.path = final
    return result


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    os.replace(tmp, path)


def _write_outputs(folder: Path, run_id: str, config: CalibrationConfig, problem: Problem,
                   found: dict[str, Any], started: dt.datetime, wall: float,
                   identity: str, commit: dict[str, Any] | None = None) -> CalibrationResult:
    from .plots import plot_calibration

    objective, targets, names = problem.objective, problem.objective.targets, problem.names
    posterior: Posterior = found["posterior"]
    ensemble: Ensemble = found["ensemble"]
    best_x = found["best_x"]
    best = {n: (int(round(v)) if BY_NAME[n].kind is int else float(v))
            for n, v in zip(names, best_x)}
    app = dict(problem.app)
    fit = posterior_fit(fit_table(found["best_runs"], targets), found["draw_runs"], targets,
                        app_bases.APP_SERIES if app else ())
    fit.to_csv(folder / "fit_table.csv", index=False, float_format="%.6g")
    best_loss = loss(found["best_runs"], targets)
    # ensemble.csv: the free parameters, then each member's draw of the app curves
    member_loss = np.full(len(ensemble), np.nan)
    for i, value in found["member_losses"].items():
        member_loss[i] = value
    write_ensemble(folder / "ensemble.csv", list(ensemble.names), ensemble.values,
                   ensemble.weights, best=found["best"], losses=member_loss)
    table = posterior_table(names, problem.bounds, ensemble.values[:, :len(names)],
                            ensemble.weights, best_x)
    table.to_csv(folder / "posterior.csv", index=False, float_format="%.6g")
    samples = problem.to_values(posterior.samples)
    pd.DataFrame([r.as_dict() for r in posterior.records]).to_csv(folder / "waves.csv",
                                                                    index=False)
    model = found["error_model"]
    design = problem.to_values(posterior.x)
    h = posterior.outputs
    evaluations = pd.DataFrame(design, columns=names)
    evaluations.insert(0, "wave", posterior.wave)
    evaluations.insert(1, "max_implausibility", model.implausibility(h).max(axis=1))
    evaluations.insert(2, "log_likelihood", model.log_likelihood(h))
    evaluations.to_csv(folder / "evaluations.csv", index=False, float_format="%.6g")
    _write_json(folder / "best_parameters.json",
                {"loss": best_loss, "parameters": {**best, **app},
                 "app_curves": sorted(app)})
    (folder / "calibrated.toml").write_text(scenario_text(run_id, {**best, **app}, config))
    within = int(fit["within_15pct"].sum())
    held = int(fit["in_90pct"].sum())
    _write_json(folder / "manifest.json", {
        "calibration_id": run_id, "kind": "calibration", "method": "history matching with "
        "Gaussian-process emulators, then MCMC on the emulator (calibration/posterior.py)",
        "config": config.as_dict(), "identity": identity, "targets": len(targets),
        "data_file": {"name": config.data.name, **file_record(config.data)},
        "unused_rows": [{"line": line, "reason": why} for line, why in problem.loaded.unused],
        "run": objective.run, "app_curves": app,
        "waves": [r.as_dict() for r in posterior.records],
        "sampler": posterior.rounds,
        "effective_size": round(posterior.effective_size, 1),
        "ensemble_members": len(ensemble), "ensemble_effective_size":
        round(ensemble.effective_size(), 1),
        "replicate_sd": {t.label: round(float(np.sqrt(v)), 4)
                         for t, v in zip(targets, posterior.replicate_var)},
        "emulator_coverage_95": round(found["emulator_coverage"], 3),
        "discrepancy": {"stated": config.discrepancy, "used": round(found["discrepancy"], 4)},
        "best_loss": best_loss, "best_parameters": best,
        "start_parameters": resolve(objective.base),
        "within_15pct": within, "in_posterior_90pct": held,
        "polish": found["polish"],
        "model_runs": int(len(posterior.x) * config.replicates
                    + (config.best_candidates + config.design_candidates)
                    * config.replicates + found["polish"]["runs"] + CHECK_REPLICATES
                    + config.check_draws),
        "git": commit if commit is not None else git_commit(), "versions": versions(),
        "command": sys.argv,
        "started_utc": started.isoformat(timespec="seconds"), "wall_seconds": round(wall, 1)})
    frames = [simulate(objective.params(best_x), agents=config.agents,
                       merchant_agents=config.merchant_agents, start=objective.run["start"],
                       end=objective.run["end"], seed=s) for s in objective.seeds]
    plot_calibration(folder, frames, fit, table, samples, posterior.weights, evaluations,
                     run_id, objective.params(best_x))
    return CalibrationResult(folder, {**best, **app}, best_loss, fit, posterior.effective_size)
