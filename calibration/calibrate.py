r"""Calibration of the model's free parameters to reported figures, with scipy.

**Loss.** For target *k* with reported value :math:`v_k`, weight :math:`w_k` and the
mean :math:`m_k` of its simulated value over *R* replicates, the relative (log) error is

.. math:: r_k = \ln(m_k / v_k)

(for a growth in percent, :math:`\ln\frac{1 + m_k/100}{1 + v_k/100}`; with a stated
``sigma``, :math:`(m_k - v_k)/\sigma_k`). A lower bound counts only a shortfall
(:math:`\min(r_k, 0)`), an upper bound only an excess, each measured from the bound
moved inward by ``bound_margin`` (1% by default): the search sees the replicate mean
of a few seeds, and a fit that only just clears a bound on those falls short on fresh
replicates about half the time. The loss is the weighted mean
square :math:`L = \sum_k w_k r_k^2 / \sum_k w_k`. Every parameter point is simulated
with the *same* replicate seeds (common random numbers), so differences in loss come
from the parameters, not from the draw.

**Search.** ``scipy.optimize.differential_evolution`` over the free parameters' bounds
(its population evaluated in parallel through ``model.executor``; the scenario's own
values of the free parameters are its first member, so a recalibration starts from the
current fit, recorded as ``start_parameters`` in the manifest), then a local polish
from the best point with ``scipy.optimize.least_squares`` (bounded Gauss-Newton,
trust-region reflective). The loss is a sum of squares of the weighted errors
:math:`\sqrt{w_k/\sum w}\, r_k`, and the polish uses that: its Jacobian comes from
forward differences of 2% of each parameter's range, one point per parameter, all run
in parallel. The state of the search (population, its losses, the random generator) is
saved after every generation, so ``--resume`` continues an interrupted calibration
exactly where it stopped; the polish is deterministic and reruns from the same point.

**How sure.** Every evaluated point is kept. For each parameter the report gives the
range over evaluated points whose loss is within ``tolerance`` (relative) of the best,
which shows where the search looked; and, from the linear model of the errors at the
best point (its Jacobian), how far the parameter can move before the loss rises above
the tolerance: alone (the others held) and with all the others re-fitted (its *profile
range*). A parameter whose profile range spans more than half its bounds is flagged as
not pinned down by the data. ``weak_directions.csv`` lists the combinations of
parameters the data leave loose. The uncertainty plot also shows the lowest loss found in each of 20 slices of
each parameter's range.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from tqdm.auto import tqdm

from model import executor as executors
from model import scenarios
from model.errors import MpsimError, ParameterError
from model.inputs import read_toml
from model.model import simulate
from model.params import BY_NAME, _closest, check_param, resolve
from model.runner import RESULTS_DIR, _json_default, git_commit, new_run_dir, versions

from .data import Target, TargetIndex, load_targets

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "baseline.toml"
CALIBRATION_DIR = RESULTS_DIR / "calibration"
PROFILE_BINS = 20
#: Finite-difference step of the polish, as a share of each parameter's range.
DIFF_STEP = 0.02
#: Most Jacobians taken for the uncertainty table after the polish (see _Search.run).
RELINEARISE_ROUNDS = 3
#: The tolerance is relative to the best loss, but never to less than this: the loss
#: of a 1% error on every target, about the noise of a few replicates' mean. A fit that
#: is exact (one target, two parameters) would otherwise allow no move at all.
LOSS_FLOOR = 1e-4
#: A combination of parameters is loose when the loss allows a move along it longer
#: than this, in units of each parameter's range (weak_directions).
LOOSE_MOVE = 0.5
#: Penalty (as a log error) for a target the model cannot measure at a point (NaN).
MISSING_ERROR = math.log(1e-3)

_CONFIG_KEYS = {"description": str, "scenario": str, "data": str, "series": list,
                "exclude_series": list,
                "seed": int, "replicates": int, "agents": int, "merchant_agents": int,
                "budget": int, "popsize": int, "polish_share": float, "tolerance": float,
                "bound_margin": float, "free": dict}
_CONFIG_RANGES = {"replicates": (1, 1000), "agents": (100, 10_000_000),
                  "merchant_agents": (100, 1_000_000), "budget": (10, 10_000_000),
                  "popsize": (2, 100), "polish_share": (0.0, 0.9), "tolerance": (0.0, 10.0),
                  "bound_margin": (0.0, 0.5), "seed": (0, 2**63 - 1)}


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
    replicates: int = 4
    agents: int = 10_000
    merchant_agents: int = 2_000
    budget: int = 3000
    popsize: int = 5
    polish_share: float = 0.1
    tolerance: float = 0.1
    bound_margin: float = 0.01
    extra: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {"config_file": str(self.path), "description": self.description,
                "scenario": self.scenario, "data": str(self.data), "series": self.series,
                "exclude_series": self.exclude_series,
                "seed": self.seed, "replicates": self.replicates, "agents": self.agents,
                "merchant_agents": self.merchant_agents, "budget": self.budget,
                "popsize": self.popsize, "polish_share": self.polish_share,
                "tolerance": self.tolerance, "bound_margin": self.bound_margin,
                "free": {k: list(v) for k, v in self.free.items()}}


def load_config(path: str | Path | None = None, *, data: str | Path | None = None,
                budget: int | None = None) -> CalibrationConfig:
    """Read and check a calibration file; ``data`` and ``budget`` override it."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw = read_toml(path, "calibration file")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kind = _CONFIG_KEYS.get(key)
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
        values["budget"] = budget
    return CalibrationConfig(path=path, data=data_path, free=free, **values)


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
                 run: dict[str, Any], seeds: list[np.random.SeedSequence], margin: float = 0.0):
        self.base, self.names, self.targets, self.run, self.seeds = base, names, targets, run, seeds
        self.margin = margin

    def start_point(self, bounds) -> np.ndarray:
        """The scenario's own values of the free parameters, clipped into their bounds:
        the differential evolution's first member, so a recalibration starts from the
        current fit and can only improve on it."""
        values = resolve(self.base)
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


class _Search:
    """Differential evolution with per-generation checkpoints and a history of points."""

    def __init__(self, objective: Objective, bounds, config: CalibrationConfig, pool,
                 folder: Path, state: dict[str, Any] | None, progress: bool):
        self.objective, self.bounds, self.config, self.pool = objective, bounds, config, pool
        self.folder, self.progress = folder, progress
        self.history: list[tuple[list[float], float, str]] = (
            [tuple(h) for h in state["history"]] if state else [])
        self.generations: list[dict[str, float]] = list(state["generations"]) if state else []
        self.state = state
        self.bar = None
        self.stage = "de"
        #: (point, weighted errors, Jacobian) at each point the polish linearised
        self.jacobians: list[tuple[list[float], np.ndarray, np.ndarray]] = []
        self.clock = time.perf_counter()
        self.wall_before = float(state.get("wall_seconds", 0.0)) if state else 0.0

    @property
    def wall_seconds(self) -> float:
        return self.wall_before + time.perf_counter() - self.clock

    def map(self, func, xs):
        xs = [np.asarray(x, dtype=float) for x in xs]
        best = min((h[1] for h in self.history), default=math.inf)

        def tick(value):
            nonlocal best
            best = min(best, value)
            if self.bar is not None:
                self.bar.set_postfix(best_loss=f"{best:.4g}", refresh=False)
                self.bar.update(1)

        losses = executors.run_tasks(func, xs, self.pool, desc="points", progress=False,
                                     on_result=tick)
        for x, value in zip(xs, losses):
            self.history.append((x.tolist(), float(value), self.stage))
        return losses

    def errors_at(self, xs) -> list[np.ndarray]:
        """The weighted errors at each point, every replicate of every point in parallel;
        each point goes into the history."""
        xs = [np.asarray(x, dtype=float) for x in xs]
        seeds = self.objective.seeds
        tasks = [(self.objective, x, seed) for x in xs for seed in seeds]
        done = executors.run_tasks(_simulate_one, tasks, self.pool, progress=False)
        out = []
        for i, x in enumerate(xs):
            simulated = np.vstack(done[i * len(seeds):(i + 1) * len(seeds)])
            errors = weighted_errors(simulated, self.objective.targets, self.objective.margin)
            self.history.append((x.tolist(), float(np.sum(errors**2)), self.stage))
            out.append(errors)
        if self.bar is not None:
            best = min(h[1] for h in self.history)
            self.bar.set_postfix(best_loss=f"{best:.4g}", refresh=False)
            self.bar.update(len(xs))
        return out

    def jacobian(self, x, errors: np.ndarray) -> np.ndarray:
        """Forward differences of the weighted errors at ``x`` (whose errors are given),
        one step of ``DIFF_STEP`` of each parameter's range (backward at an upper
        bound), all points in parallel. Steps this large see through the jitter of
        single agents changing their minds; the common random numbers do the rest."""
        low, high = np.array(self.bounds).T
        x = np.asarray(x, dtype=float)
        steps = DIFF_STEP * (high - low)
        steps = np.where(x + steps <= high, steps, -steps)
        return np.column_stack([(e - errors) / h
                                for e, h in zip(self.errors_at(x + np.diag(steps)), steps)])

    def polish(self, x0, budget: int) -> None:
        """Bounded Gauss-Newton (``scipy.optimize.least_squares``, trust-region
        reflective) from ``x0`` on the weighted errors, in coordinates scaled to each
        parameter's range, with the Jacobian from :meth:`jacobian`. Stops when the
        method converges or the budget of points is spent; every point is in the
        history, and each Jacobian is kept (:meth:`linearise` reuses the one at the
        best point, if the polish took one there)."""
        low, high = np.array(self.bounds).T
        width = high - low
        spent, last = 0, {}

        def to_x(u):
            return low + np.clip(u, 0.0, 1.0) * width

        def errors(u):
            nonlocal spent
            if spent + 1 > budget:
                raise _BudgetSpent
            spent += 1
            last["u"], last["errors"] = np.array(u), self.errors_at([to_x(u)])[0]
            return last["errors"]

        def jac(u):
            nonlocal spent
            if spent + len(u) > budget:
                raise _BudgetSpent
            spent += len(u)
            base = last["errors"] if np.array_equal(last.get("u"), u) else errors(u)
            matrix = self.jacobian(to_x(u), base)
            self.jacobians.append((to_x(u).tolist(), base, matrix))
            return matrix * width

        u0 = np.clip((np.asarray(x0, dtype=float) - low) / width, 0.0, 1.0)
        try:
            optimize.least_squares(errors, u0, jac=jac, bounds=(0.0, 1.0), method="trf",
                                   x_scale=1.0, ftol=1e-6, xtol=1e-6, gtol=1e-8)
        except _BudgetSpent:
            pass

    def best(self) -> tuple[np.ndarray, float]:
        """The lowest point evaluated so far; of equal ones, the latest."""
        k = min(range(len(self.history)), key=lambda i: (self.history[i][1], -i))
        return np.array(self.history[k][0]), float(self.history[k][1])

    def linearise(self, x) -> tuple[np.ndarray, np.ndarray]:
        """The weighted errors and their Jacobian at ``x``: the polish's own if it
        linearised there, else computed now (one point per parameter and one more,
        counted in the history as stage "uncertainty")."""
        x = np.asarray(x, dtype=float)
        for point, errors, matrix in reversed(self.jacobians):
            if np.array_equal(point, x):
                return errors, matrix
        self.stage = "uncertainty"
        if self.bar is not None:
            self.bar.total += len(x) + 1
        errors = self.errors_at([x])[0]
        return errors, self.jacobian(x, errors)

    def checkpoint(self, result, rng: np.random.Generator) -> None:
        self.generations.append({"generation": len(self.generations) + 1,
                                 "best_loss": float(result.fun),
                                 "evaluations": len(self.history)})
        state = {"config_digest": self.config.digest(), "config": self.config.as_dict(),
                 "generation": len(self.generations),
                 "population": np.asarray(result.population).tolist(),
                 "population_energies": np.asarray(result.population_energies).tolist(),
                 "rng_state": rng.bit_generator.state, "history": self.history,
                 "generations": self.generations, "wall_seconds": self.wall_seconds}
        _write_json(self.folder / "checkpoint.json", state)

    def run(self) -> optimize.OptimizeResult:
        config, n = self.config, len(self.bounds)
        population = config.popsize * n
        polish_budget = int(config.budget * config.polish_share)
        maxiter = max(1, (config.budget - polish_budget) // population - 1)
        done = self.state["generation"] if self.state else 0
        rng = np.random.default_rng(config.seed)
        init: Any = "latinhypercube"
        x0 = self.objective.start_point(self.bounds)
        if self.state:
            rng.bit_generator.state = self.state["rng_state"]
            init = np.array(self.state["population"])
            x0 = None  # the saved population already holds it
        total = population * (maxiter + 1) + polish_budget
        self.bar = tqdm(total=total, initial=min(len(self.history), total), desc="calibration",
                        unit="pt", disable=not self.progress, dynamic_ncols=True)
        try:
            if maxiter - done > 0:
                result = optimize.differential_evolution(
                    self.objective, self.bounds, popsize=config.popsize, maxiter=maxiter - done,
                    init=init, x0=x0, rng=rng, workers=self.map, updating="deferred",
                    polish=False,
                    strategy=best1bin,
                    tol=1e-6, callback=lambda intermediate_result: self.checkpoint(
                        intermediate_result, rng))
                best_x, best_f = result.x, float(result.fun)
            else:  # the search had finished; only the polish is left
                energies = np.array(self.state["population_energies"])
                best_x, best_f = init[int(np.argmin(energies))], float(energies.min())
            self.stage = "polish"
            if polish_budget > 0:
                self.polish(best_x, polish_budget)
            # The best point is the lowest evaluated, finite-difference points included.
            # The uncertainty needs the Jacobian there; computing it can find a lower
            # point still, so repeat (a few times at most) until the best holds.
            for _ in range(RELINEARISE_ROUNDS):
                best_x, best_f = self.best()
                self.linearised = self.linearise(best_x)
                if self.best()[1] >= best_f:
                    break
            self.bar.total = self.bar.n  # the polish may converge before its budget is spent
            self.bar.refresh()
        finally:
            self.bar.close()
        return optimize.OptimizeResult(x=np.asarray(best_x), fun=best_f)


class _BudgetSpent(Exception):
    """The polish has used its share of the budget."""


def best1bin(candidate: int, population: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """DE's best/1/bin trial vector, drawing only from ``rng``.

    scipy's built-in strategies also keep a shuffled index between generations that
    no public interface exposes; with this strategy the whole state of the search is
    the population and the generator, so a checkpoint can restore it exactly. The
    mutation factor is drawn per trial from U(0.5, 1) (dither), crossover is 0.7:
    scipy's defaults.
    """
    size, dims = population.shape
    others = rng.choice(np.delete(np.arange(size), candidate), 2, replace=False)
    scale = rng.uniform(0.5, 1.0)
    mutant = population[0] + scale * (population[others[0]] - population[others[1]])
    cross = rng.uniform(size=dims) < 0.7
    cross[rng.integers(dims)] = True  # at least one parameter from the mutant
    return np.where(cross, mutant, population[candidate])


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    os.replace(tmp, path)


def near_best_limit(best_loss: float, tolerance: float) -> float:
    """The highest loss counted as near the best: ``tolerance`` above it, and never
    less than that above ``LOSS_FLOOR``."""
    return max(best_loss, LOSS_FLOOR) * (1.0 + tolerance)


def uncertainty(history: list, names: list[str], bounds, tolerance: float,
                best_x, linearised: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """Per parameter: best value; the range of the evaluated points near the best
    (where the search looked); the profile range (:func:`linear_profiles`: where the
    loss allows the parameter to go when the others adjust within their bounds) and
    the range moved alone; and whether the data pin it down: a profile range of at
    most half the bounds."""
    points = np.array([h[0] for h in history])
    losses = np.array([h[1] for h in history])
    errors, jacobian = linearised
    # the stored loss and errors @ errors may differ in the last bit
    near = losses <= near_best_limit(max(float(errors @ errors), float(losses.min())),
                                     tolerance)
    ranges = linear_profiles(errors, jacobian, best_x, bounds, tolerance)
    alone = linear_profiles(errors, jacobian, best_x, bounds, tolerance, refit=False)
    rows = []
    for j, name in enumerate(names):
        low, high = bounds[j]
        share = (ranges[j][1] - ranges[j][0]) / (high - low)
        rows.append({"parameter": name, "best": best_x[j],
                     "profile_low": ranges[j][0], "profile_high": ranges[j][1],
                     "alone_low": alone[j][0], "alone_high": alone[j][1],
                     "near_best_low": points[near, j].min(),
                     "near_best_high": points[near, j].max(),
                     "bound_low": low, "bound_high": high,
                     "share_of_bounds": share, "points_near_best": int(near.sum()),
                     "identified": bool(share <= 0.5)})
    return pd.DataFrame(rows)


def linear_profiles(errors: np.ndarray, jacobian: np.ndarray, best, bounds,
                    tolerance: float, refit: bool = True) -> list[tuple[float, float]]:
    """For each parameter, the range over which the loss, re-minimised over all the
    other parameters within their bounds, stays within ``tolerance`` of the loss at the
    best point: a profile of the loss under the linear model ``errors + jacobian @ d``
    of the weighted errors near the best point, inside the bounds.

    The profile at a shift ``t`` of parameter ``i`` is ``min |errors + t J_i + J_o d_o|^2``
    over the others' shifts ``d_o`` within their bounds (``scipy.optimize.lsq_linear``):
    convex in ``t``, so the range is an interval, found by bisection on each side. A
    parameter whose effect the others can make up for has a flat profile and a range
    that fills its bounds. With ``refit=False`` the others stay at the best point: the
    narrower range of one parameter moved alone.
    """
    errors = np.asarray(errors, dtype=float)
    best = np.asarray(best, dtype=float)
    low, high = np.array(bounds, dtype=float).T
    threshold = near_best_limit(float(errors @ errors), tolerance)
    n = jacobian.shape[1]
    ranges = []
    for i in range(n):
        others = [k for k in range(n) if k != i] if refit else []
        columns = jacobian[:, others]
        lo_o, hi_o = low[others] - best[others], high[others] - best[others]

        def profile(t, i=i, columns=columns, lo_o=lo_o, hi_o=hi_o):
            target = errors + t * jacobian[:, i]
            if not columns.shape[1] or not np.any(columns):
                return float(target @ target)
            fit = optimize.lsq_linear(columns, -target, bounds=(lo_o, hi_o),
                                      method="bvls")
            rest = target + columns @ fit.x
            return float(rest @ rest)

        ends = []
        for edge in (low[i] - best[i], high[i] - best[i]):
            if edge == 0.0 or profile(edge) <= threshold:
                ends.append(edge)
                continue
            inside, outside = 0.0, edge
            for _ in range(40):
                middle = (inside + outside) / 2
                inside, outside = (middle, outside) if profile(middle) <= threshold else (
                    inside, middle)
            ends.append(inside)
        ranges.append((float(best[i] + ends[0]), float(best[i] + ends[1])))
    return ranges


def weak_directions(errors: np.ndarray, jacobian: np.ndarray, names: list[str], bounds,
                    best, tolerance: float) -> pd.DataFrame:
    """Combinations of parameters the data cannot pin down.

    The right singular vectors ``v`` of the Jacobian, with each parameter measured in
    units of its range. Along ``v`` a move ``d`` changes the loss by
    ``s^2 d^2 + 2 s d g`` (``s`` the singular value, ``g`` the errors' component along
    the matching left vector), so the loss stays within the tolerance for ``d`` in an
    interval, which is cut where a parameter reaches a bound. Every direction along
    which that interval is longer than ``LOOSE_MOVE`` is listed, loosest first, with
    the parameters that make it up (loadings of at least 0.3 in absolute value; their
    squares sum to 1, signs say which move together): a move ``d`` moves parameter
    ``k`` by ``v_k d`` of its range.
    """
    low, high = np.array(bounds, dtype=float).T
    width = high - low
    position = (np.asarray(best, dtype=float) - low) / width  # in [0, 1]
    left, values, vectors = np.linalg.svd(jacobian * width, full_matrices=True)
    values = np.concatenate([values, np.zeros(len(names) - len(values))])
    allowed = near_best_limit(float(errors @ errors), tolerance) - float(errors @ errors)
    rows = []
    for k, (s, v) in enumerate(zip(values, vectors)):
        g = float(left[:, k] @ errors) if k < left.shape[1] and s > 0 else 0.0
        if s > 0:
            root = math.sqrt(g * g + allowed)
            d_low, d_high = (-g - root) / s, (-g + root) / s
        else:
            d_low, d_high = -math.inf, math.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(v > 0, (1 - position) / v, np.where(v < 0, -position / v, np.inf))
            down = np.where(v > 0, position / v, np.where(v < 0, (position - 1) / v, np.inf))
        span = min(d_high, float(up.min())) - max(d_low, -float(down.min()))
        if span <= LOOSE_MOVE:
            continue
        order = np.argsort(-np.abs(v).round(6), kind="stable")
        v = v if v[order[0]] > 0 else -v  # the largest loading is listed first, positive
        rows.append({"singular_value": float(s), "allowed_move": span,
                     "parameters": "; ".join(f"{names[j]} {v[j]:+.2f}" for j in order
                                             if abs(v[j]) >= 0.3)})
    rows.sort(key=lambda row: -row["allowed_move"])
    return pd.DataFrame(rows, columns=["singular_value", "allowed_move", "parameters"])


def profiles(history: list, names: list[str], bounds) -> pd.DataFrame:
    """Lowest loss found in each of ``PROFILE_BINS`` slices of each parameter's range."""
    points = np.array([h[0] for h in history])
    losses = np.array([h[1] for h in history])
    rows = []
    for j, name in enumerate(names):
        low, high = bounds[j]
        edges = np.linspace(low, high, PROFILE_BINS + 1)
        which = np.clip(np.digitize(points[:, j], edges) - 1, 0, PROFILE_BINS - 1)
        for b in range(PROFILE_BINS):
            inside = which == b
            rows.append({"parameter": name, "bin_low": edges[b], "bin_high": edges[b + 1],
                         "min_loss": losses[inside].min() if inside.any() else np.nan,
                         "points": int(inside.sum())})
    return pd.DataFrame(rows)


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


def scenario_text(run_id: str, names: list[str], x, config: CalibrationConfig) -> str:
    """A scenario file that extends the calibrated scenario with the fitted values."""
    groups: dict[str, list[str]] = {}
    for name, value in zip(names, x):
        group, key = name.split(".", 1)
        value = int(round(value)) if BY_NAME[name].kind is int else float(value)
        groups.setdefault(group, []).append(f"{key} = {value!r}")
    lines = [f'description = """{config.scenario} with the parameters fitted by calibration '
             f'{run_id} to {config.data.name}. Answers: what does the calibrated model say?"""',
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


def build_objective(config: CalibrationConfig):
    """The loss a calibration minimises, its parameters' bounds and the loaded data.

    Returns ``(objective, bounds, loaded)``: ``objective(x)`` is the loss at the free
    parameters ``x`` (in the order of ``objective.names``); ``loaded.unused`` lists the
    data rows it cannot use, with why.
    """
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
    names = list(config.free)
    bounds = [config.free[n] for n in names]
    run = {"agents": config.agents, "merchant_agents": config.merchant_agents,
           **_run_window(targets, scenario)}
    seeds = np.random.SeedSequence(config.seed).spawn(config.replicates)
    return (Objective(dict(scenario.overrides), names, targets, run, seeds, config.bound_margin),
            bounds, loaded)


def calibrate(config: CalibrationConfig, *, workers: int | None = None,
              dask_address: str | None = None, resume: str | None = None,
              out: Path | None = None, progress: bool = True) -> CalibrationResult:
    """Run a calibration and write ``<out>/calibration/<id>/``; return what it found."""
    parent = (out or RESULTS_DIR) / "calibration"
    started = dt.datetime.now(dt.timezone.utc)
    state = None
    if resume:
        final = parent / resume
        partial = parent / f".{resume}.partial"
        if final.exists():
            raise MpsimError(f"--resume {resume}: calibration {final} already finished")
        checkpoint = partial / "checkpoint.json"
        if not checkpoint.is_file():
            raise MpsimError(f"--resume {resume}: no interrupted calibration at {partial}")
        state = json.loads(checkpoint.read_text())
        if state["config_digest"] != config.digest():
            raise MpsimError(f"--resume {resume}: it was started with another configuration "
                             f"({state['config']['config_file']}, budget "
                             f"{state['config']['budget']}); give the same --config, --data "
                             "and --budget")
    else:
        final = new_run_dir(parent, started)
        partial = parent / f".{final.name}.partial"
        partial.mkdir(parents=True)
    objective, bounds, loaded = build_objective(config)
    names, targets, run = objective.names, objective.targets, objective.run
    try:
        with executors.executor(workers, dask_address) as pool:
            search = _Search(objective, bounds, config, pool, partial, state, progress)
            result = search.run()
            # the fit at the best point, on more replicates than the search used
            check_seeds = np.random.SeedSequence(config.seed + 1).spawn(max(10, config.replicates))
            check = executors.run_tasks(_simulate_one, [(objective, result.x, s) for s in check_seeds],
                                        pool, desc="fit check", progress=progress)
        simulated = np.vstack(check)
        wall = search.wall_seconds
        _write_outputs(partial, final.name, config, loaded, targets, names, bounds, result,
                       search, simulated, run, started, wall, objective)
        os.replace(partial / "checkpoint.json", partial / "search_state.json")
        os.rename(partial, final)
    except KeyboardInterrupt:
        print(f"calibration interrupted; continue it with: mpsim calibrate --resume {final.name}"
              + (f" --config {config.path}" if config.path != DEFAULT_CONFIG else ""),
              file=sys.stderr)
        raise
    except BaseException:
        if not (partial / "checkpoint.json").is_file():
            shutil.rmtree(partial, ignore_errors=True)
        raise
    best = dict(zip(names, map(float, result.x)))
    return CalibrationResult(final, best, result.fun, pd.read_csv(final / "fit_table.csv"))


def _simulate_one(task) -> np.ndarray:
    objective, x, seed = task
    return objective.simulate(x, seeds=[seed])


def _write_outputs(folder: Path, run_id: str, config: CalibrationConfig, loaded, targets,
                   names, bounds, result, search: _Search, simulated, run, started, wall,
                   objective: Objective) -> None:
    from .plots import plot_calibration

    best = {n: float(v) for n, v in zip(names, result.x)}
    fit = fit_table(simulated, targets)
    fit.to_csv(folder / "fit_table.csv", index=False, float_format="%.6g")
    unc = uncertainty(search.history, names, bounds, config.tolerance, result.x,
                      search.linearised)
    unc.to_csv(folder / "uncertainty.csv", index=False, float_format="%.6g")
    weak_directions(*search.linearised, names, bounds, result.x, config.tolerance).to_csv(
        folder / "weak_directions.csv", index=False, float_format="%.4g")
    prof = profiles(search.history, names, bounds)
    prof.to_csv(folder / "profiles.csv", index=False, float_format="%.6g")
    pd.DataFrame([{"stage": h[2], "loss": h[1], **dict(zip(names, h[0]))}
                  for h in search.history]).to_csv(folder / "evaluations.csv", index=False,
                                                   float_format="%.6g")
    pd.DataFrame(search.generations).to_csv(folder / "convergence.csv", index=False)
    _write_json(folder / "best_parameters.json", {"loss": result.fun, "parameters": best})
    (folder / "calibrated.toml").write_text(scenario_text(run_id, names, result.x, config))
    _write_json(folder / "manifest.json", {
        "calibration_id": run_id, "config": config.as_dict(), "targets": len(targets),
        "unused_rows": [{"line": line, "reason": why} for line, why in loaded.unused],
        "run": run, "best_loss": result.fun, "best_parameters": best,
        "start_parameters": resolve(objective.base),
        "evaluations": len(search.history), "generations": len(search.generations),
        "git": git_commit(), "versions": versions(), "command": sys.argv,
        "started_utc": started.isoformat(timespec="seconds"), "wall_seconds": round(wall, 1)})
    frames = [simulate(objective.params(result.x), agents=config.agents,
                       merchant_agents=config.merchant_agents, start=run["start"],
                       end=run["end"], seed=s) for s in objective.seeds]
    plot_calibration(folder, frames, fit, search.history, search.generations, unc, prof,
                     names, run_id, objective.params(result.x))
