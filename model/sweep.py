r"""Exploring many values of a scenario's parameters: sweeps and Sobol' sensitivity.

Both jobs vary parameters ``x = (x_1, ..., x_d)`` of one scenario within ranges
``[low_k, high_k]`` given as ``NAME=LOW:HIGH`` (``parse_ranges``), run every point
``D x R`` times (``D`` draws of the posterior ensemble, as runs draw them in
``model.runner.plan_draws``, or the best point alone, times ``R`` replicates) and
reduce each run to the scalar outcomes chosen from ``OUTCOMES`` (``select_outcomes``).
Each outcome declares the days it reads, and every run stops at the last of them
(``check_horizon``). Every point uses the same draws and seeds: draw *d*, replicate *r*
takes child ``d R + r`` of ``numpy.random.SeedSequence(seed)`` (common random numbers),
so differences between points come from the swept parameters, not from the draws. An
outcome at a point is the mean over its runs,

.. math:: \bar y(x) = \frac{1}{D R} \sum_{d=1}^{D} \sum_{r=1}^{R} y(x, \theta_d, \text{seed}_{d,r}).

Before the runs start, the cost is printed: points x draws x replicates = runs, and
the time they should take, from a timing of the first run (which is kept).

**Sweep** (``sweep``): points from a design (``design``: an even grid, a Latin
hypercube or a scrambled Sobol' sequence over the box of ranges). It writes
``<out>/sweep/<scenario>/<run-id>/`` with ``samples.csv`` (one row per point: the
parameter values, each outcome's mean, standard deviation, lowest and highest value
over the point's runs), ``manifest.json`` and ``outcomes_vs_parameters.png``.

**Sensitivity** (``sensitivity``): first-order and total Sobol' indices of each
outcome with respect to each parameter, each parameter uniform on its range,

.. math:: S_k = \frac{V[E(Y \mid x_k)]}{V[Y]}, \qquad
          S_{T_k} = 1 - \frac{V[E(Y \mid x_{\sim k})]}{V[Y]},

estimated by ``scipy.stats.sobol_indices`` (Saltelli et al. 2010) from two matrices
``A`` and ``B`` of ``n`` points each and the ``d`` matrices :math:`A_B^{(k)}` (``A``
with parameter *k* taken from ``B``):

.. math:: \hat S_k = \frac{1}{n \hat V} \sum_j f(B)_j \big(f(A_B^{(k)})_j - f(A)_j\big),
          \qquad
          \hat S_{T_k} = \frac{1}{2 n \hat V} \sum_j \big(f(A)_j - f(A_B^{(k)})_j\big)^2,

with :math:`\hat V` the variance of the ``2n`` values :math:`f(A), f(B)` (outputs
centred on their mean first). That is ``n (d + 2)`` points, each run ``D x R``
times. It writes ``<out>/sensitivity/<scenario>/<run-id>/`` with ``sobol_indices.csv``
(indices, bootstrap 90% intervals, and ``flag`` / ``n_needed``: an index outside
[0, 1] or a first-order index above its total, by more than ``INDEX_MARGIN``, or an
interval wider than ``MAX_INTERVAL_WIDTH``, is flagged "sample too small" with the
``n`` that would do; an outcome that hardly moves is flagged as such), ``points.csv``
(every evaluated point and its outcomes, to re-analyse), ``manifest.json`` and
``sobol_indices.png``.

Every model run is one task of ``model.executor.run_tasks`` (in-process, local cores or
Dask); results folders are written atomically and never overwritten.

Example::

    from model import scenarios
    from model.sweep import parse_ranges, sweep

    ranges = parse_ranges(["red_envelope.strength=0:2"])
    folder = sweep(scenarios.load("baseline"), ranges, samples=8, replicates=4,
                   agents=20_000)
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import executor as executors
from .errors import MpsimError, ParameterError, ScenarioError
from .params import BY_NAME, _closest, check_param
from .calendar import NEW_YEARS_EVE, STEP_DAYS
from .runner import (RESULTS_DIR, DrawPlan, _json_default, _replicate, manifest, new_run_dir,
                     plan_draws, replicate_seeds, run_settings, write_atomically)
from .scenarios import Scenario

DESIGNS = ("grid", "lhs", "sobol")
#: Confidence level of the bootstrap intervals of the Sobol' indices.
CONFIDENCE = 0.90
BOOTSTRAP_RESAMPLES = 999
#: The widest 90% interval of a Sobol' index taken as an estimate: an index known only to
#: within more than this is flagged "sample too small".
MAX_INTERVAL_WIDTH = 0.2
#: How far an estimate may stray outside [0, 1], or first-order above total, before it
#: is flagged: sampling noise of an index that is truly 0 (or truly equal to its total)
#: goes a little past the bound at any N.
INDEX_MARGIN = 0.05
#: An outcome whose spread over every point is below this share of its size has no
#: variance worth splitting: its indices measure noise.
FLAT_OUTCOME = 1e-3
TOO_SMALL = "sample too small"


# --- parameter ranges ---------------------------------------------------------------
def _check_range(name: str, low: Any, high: Any, where: str) -> tuple[float, float]:
    """One range, checked against the parameter's spec; the bounds as numbers."""
    spec = BY_NAME.get(name)
    if spec is None:
        raise ParameterError(f"{where}: unknown parameter {name!r}; {_closest(name, BY_NAME)}")
    if spec.kind not in (float, int):
        raise ParameterError(f"{where}: {name} is {spec.describe_allowed()}, not a number; "
                             "only numeric parameters can be swept (see 'mpsim params')")
    low = check_param(name, low, where)
    high = check_param(name, high, where)
    if low >= high:
        raise ParameterError(f"{where}: {name}: LOW {low} must be below HIGH {high}")
    return float(low), float(high)


def parse_ranges(specs: list[str]) -> dict[str, tuple[float, float]]:
    """Parameter ranges from ``NAME=LOW:HIGH`` strings (``--param`` flags), in order.

    Refuses, with a one-line ``ParameterError`` naming the spec: a malformed spec, an
    unknown parameter (with the closest names), a parameter that is not a number
    (dates, switches, app lists), LOW >= HIGH, a bound outside the parameter's allowed
    range or not an integer for an integer parameter, and a parameter given twice.
    """
    if not specs:
        raise ParameterError("--param: give at least one NAME=LOW:HIGH, "
                             "e.g. --param red_envelope.strength=0:2")
    ranges: dict[str, tuple[float, float]] = {}
    for spec in specs:
        where = f"--param {spec}"
        name, eq, bounds = str(spec).partition("=")
        name = name.strip()
        low_text, colon, high_text = bounds.partition(":")
        if not eq or not colon or not name or ":" in high_text:
            raise ParameterError(f"{where}: expected NAME=LOW:HIGH, "
                                 "e.g. red_envelope.strength=0:2")
        values = []
        for text in (low_text, high_text):
            try:
                values.append(float(text))
            except ValueError:
                raise ParameterError(f"{where}: bound {text.strip()!r} is not a number; "
                                     "expected NAME=LOW:HIGH with numbers") from None
        values = [int(v) if v.is_integer() else v for v in values]
        if name in ranges:
            raise ParameterError(f"{where}: {name} is given twice; give each parameter once")
        ranges[name] = _check_range(name, values[0], values[1], where)
    return ranges


def _checked_ranges(ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    if not ranges:
        raise ParameterError("parameter ranges: give at least one NAME=LOW:HIGH")
    return {name: _check_range(name, *bounds, "parameter ranges")
            for name, bounds in ranges.items()}


# --- designs ------------------------------------------------------------------------
def grid_points_per_axis(samples: int, dims: int) -> int:
    """Points per axis of a grid design: ``round(samples ** (1 / dims))``, at least 2."""
    return max(2, int(round(samples ** (1.0 / dims))))


def _to_values(unit: np.ndarray, ranges: dict[str, tuple[float, float]]) -> np.ndarray:
    """Points of the unit cube (n x d) scaled to the ranges.

    A continuous parameter maps ``u`` to ``low + u (high - low)``. An integer parameter
    maps it to ``[low - 1/2, high + 1/2]`` and rounds, so every integer in the range is
    equally likely (the end points included).
    """
    from scipy.stats import qmc

    lows, highs = _bounds(ranges, widen_integers=True)
    values = qmc.scale(unit, lows, highs)
    return _round_integers(values, ranges)


def _bounds(ranges, widen_integers: bool) -> tuple[np.ndarray, np.ndarray]:
    lows, highs = (np.array([b[i] for b in ranges.values()], dtype=float) for i in (0, 1))
    if widen_integers:
        integer = np.array([BY_NAME[name].kind is int for name in ranges])
        lows, highs = lows - 0.5 * integer, highs + 0.5 * integer
    return lows, highs


def _round_integers(values: np.ndarray, ranges) -> np.ndarray:
    values = np.array(values, dtype=float)
    for k, (name, (low, high)) in enumerate(ranges.items()):
        if BY_NAME[name].kind is int:
            values[:, k] = np.clip(np.round(values[:, k]), low, high)
    return values


def design(ranges: dict[str, tuple[float, float]], samples: int, kind: str = "lhs",
           seed: int | None = 0) -> np.ndarray:
    """Sample points, an array of shape (n, d) with columns in the order of ``ranges``.

    * ``grid``: every combination of ``k = round(samples ** (1/d))`` (at least 2) evenly
      spaced values per parameter, end points included; ``n = k ** d``, which may
      differ from ``samples`` (``grid_points_per_axis`` says how many).
    * ``lhs``: a Latin hypercube (``scipy.stats.qmc.LatinHypercube``): each parameter's
      range cut into ``samples`` equal strata, one point in each; ``n = samples``.
    * ``sobol``: a scrambled Sobol' sequence (``scipy.stats.qmc.Sobol``); ``n =
      samples``, best balanced when ``samples`` is a power of 2.

    Points are scaled to the ranges with ``scipy.stats.qmc.scale``; integer parameters
    are rounded. The same ``seed`` gives the same points.
    """
    from scipy.stats import qmc

    ranges = _checked_ranges(ranges)
    if kind not in DESIGNS:
        raise MpsimError(f"--design {kind}: unknown design; expected one of {', '.join(DESIGNS)}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise MpsimError(f"--samples {samples}: expected a whole number of at least 1")
    d = len(ranges)
    if kind == "grid":
        k = grid_points_per_axis(int(samples), d)
        lows, highs = _bounds(ranges, widen_integers=False)
        axes = [np.linspace(lo, hi, k) for lo, hi in zip(lows, highs)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return _round_integers(np.column_stack([m.ravel() for m in mesh]), ranges)
    if kind == "lhs":
        unit = qmc.LatinHypercube(d=d, rng=seed).random(int(samples))
    else:
        with warnings.catch_warnings():  # balance warning when samples is not 2**m
            warnings.simplefilter("ignore", UserWarning)
            unit = qmc.Sobol(d=d, scramble=True, rng=seed).random(int(samples))
    return _to_values(unit, ranges)


def _describe_design(kind: str, samples: int, n_points: int, d: int) -> dict[str, Any]:
    info: dict[str, Any] = {"kind": kind, "samples_requested": int(samples),
                            "samples": int(n_points)}
    if kind == "grid":
        info["points_per_axis"] = grid_points_per_axis(samples, d)
    if kind == "sobol" and samples & (samples - 1):
        info["note"] = "samples is not a power of 2: the Sobol' points are less balanced"
    return info


# --- outcomes -----------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """A scalar outcome of one replicate's frame (one row per weekly step).

    ``first`` and ``last`` are the first and last days the outcome reads: a run for it
    must start by ``first`` and may stop at ``last``."""

    name: str
    unit: str
    meaning: str
    compute: Callable[[pd.DataFrame], float]
    colour: str = "#555555"
    first: dt.date = dt.date(2017, 1, 1)
    last: dt.date = dt.date(2020, 12, 31)


def _in_year(frame: pd.DataFrame, column: str, year: int) -> pd.Series:
    return frame[column][frame.index.year == year]


def _year_mean(column: str, year: int) -> Callable[[pd.DataFrame], float]:
    def compute(frame: pd.DataFrame) -> float:
        return float(_in_year(frame, column, year).mean())  # NaN weeks skipped
    return compute


def _year_end(column: str, year: int) -> Callable[[pd.DataFrame], float]:
    def compute(frame: pd.DataFrame) -> float:
        return float(_in_year(frame, column, year).iloc[-1])
    return compute


def _dau_lead_end(frame: pd.DataFrame, year: int = 2020) -> float:
    return float(_in_year(frame, "wechat.miniprogram_dau", year).iloc[-1]
                 - _in_year(frame, "alipay.miniprogram_dau", year).iloc[-1])


#: Weeks either side of a Spring Festival week that make its "weeks around".
AROUND_WEEKS = 2


def _festival_step(frame: pd.DataFrame, year: int) -> int:
    """The step of the week holding ``year``'s New Year's Eve (``model.calendar``)."""
    eve = pd.Timestamp(NEW_YEARS_EVE[year])
    starts = frame.index
    inside = np.flatnonzero((starts <= eve) & (eve < starts + pd.Timedelta(days=STEP_DAYS)))
    if not inside.size:
        raise ScenarioError(f"the horizon {starts[0].date()} to {starts[-1].date()} does not "
                            f"hold the {year} Spring Festival week ({NEW_YEARS_EVE[year]})")
    return int(inside[0])


def _festival_lift(column: str, year: int) -> Callable[[pd.DataFrame], float]:
    def compute(frame: pd.DataFrame) -> float:
        i = _festival_step(frame, year)
        values = frame[column].to_numpy(dtype=float)
        around = [values[j] for j in (*range(i - AROUND_WEEKS, i),
                                      *range(i + 1, i + 1 + AROUND_WEEKS))
                  if 0 <= j < len(values)]
        return float(values[i] - np.mean(around))
    return compute


def _festival_value(column: str, year: int) -> Callable[[pd.DataFrame], float]:
    def compute(frame: pd.DataFrame) -> float:
        return float(frame[column].iloc[_festival_step(frame, year)])
    return compute


def _after_festival(year: int) -> dt.date:
    """The last day a festival-week outcome reads: the end of the weeks after it."""
    return NEW_YEARS_EVE[year] + dt.timedelta(days=STEP_DAYS * (AROUND_WEEKS + 1))


def _before_festival(year: int) -> dt.date:
    return NEW_YEARS_EVE[year] - dt.timedelta(days=STEP_DAYS * (AROUND_WEEKS + 1))


def _festival_lift_outcome(platform: str, year: int, colour: str) -> Outcome:
    name = "Alipay" if platform == "alipay" else "WeChat"
    return Outcome(
        f"{platform}_dau_festival_lift_{year}", "million people",
        f"{name} mini-program daily users in the {year} Spring Festival week (New Year's "
        f"Eve {NEW_YEARS_EVE[year]}) minus their mean over the {AROUND_WEEKS} weeks before "
        f"and the {AROUND_WEEKS} after: where Wufu and the festival act",
        _festival_lift(f"{platform}.miniprogram_dau", year), colour,
        first=_before_festival(year), last=_after_festival(year))


#: The scalar outcomes of a run, each computed from one replicate's frame and then
#: averaged over replicates. "End of a year" is the last weekly step starting in it.
OUTCOMES: tuple[Outcome, ...] = (
    Outcome("alipay_dau_share_2020", "share",
            "Alipay's share of mini-program daily users in 2020: mean over the weekly steps "
            "of 2020 of alipay.miniprogram_dau_share",
            _year_mean("alipay.miniprogram_dau_share", 2020), "#1677ff",
            first=dt.date(2020, 1, 1)),
    Outcome("wechat_dau_lead_end2020", "million people",
            "WeChat's lead in mini-program daily users at the end of 2020: "
            "wechat.miniprogram_dau minus alipay.miniprogram_dau",
            _dau_lead_end, "#07a35a", first=dt.date(2020, 1, 1)),
    Outcome("alipay_miniprogram_users_end2020", "million people",
            "people who have ever used an Alipay mini program, end of 2020",
            _year_end("alipay.miniprogram_users_cumulative", 2020), "#1677ff",
            first=dt.date(2020, 1, 1)),
    Outcome("wechat_miniprogram_users_end2020", "million people",
            "people who have ever used a WeChat mini program, end of 2020",
            _year_end("wechat.miniprogram_users_cumulative", 2020), "#07a35a",
            first=dt.date(2020, 1, 1)),
    Outcome("wechat_pay_users_end2017", "million people",
            "people paying with WeChat Pay, end of 2017",
            _year_end("wechat.pay_users", 2017), "#07a35a", first=dt.date(2017, 1, 1),
            last=dt.date(2017, 12, 31)),
    Outcome("users_multihoming_share_2020", "share",
            "share of monthly mini-program users using both platforms' mini programs: "
            "mean over the weekly steps of 2020 of all.users_multihoming_share",
            _year_mean("all.users_multihoming_share", 2020), "#8e44ad",
            first=dt.date(2020, 1, 1)),
    _festival_lift_outcome("alipay", 2019, "#1677ff"),
    _festival_lift_outcome("alipay", 2020, "#1677ff"),
    _festival_lift_outcome("wechat", 2020, "#07a35a"),
    Outcome("red_envelope_participants_2019", "million people",
            "people sending or receiving a WeChat red envelope in the 2019 Spring Festival "
            f"week (New Year's Eve {NEW_YEARS_EVE[2019]})",
            _festival_value("wechat.red_envelope_participants", 2019), "#d62728",
            first=NEW_YEARS_EVE[2019], last=NEW_YEARS_EVE[2019] + dt.timedelta(days=STEP_DAYS)),
)
OUTCOME_NAMES = tuple(o.name for o in OUTCOMES)
BY_OUTCOME = {o.name: o for o in OUTCOMES}


def select_outcomes(names: list[str] | tuple[str, ...] | None) -> tuple[Outcome, ...]:
    """The outcomes named (``--outcome``, in the order given), or all of them.

    An unknown name is a one-line MpsimError with the closest names."""
    if not names:
        return OUTCOMES
    chosen = []
    for name in names:
        if name not in BY_OUTCOME:
            raise MpsimError(f"--outcome {name}: unknown outcome; "
                             f"{_closest(name, BY_OUTCOME)} (all: {', '.join(OUTCOME_NAMES)})")
        if BY_OUTCOME[name] not in chosen:
            chosen.append(BY_OUTCOME[name])
    return tuple(chosen)


def outcome_horizon(outcomes: tuple[Outcome, ...] = OUTCOMES) -> tuple[dt.date, dt.date]:
    """The first day a run must cover and the last day any of ``outcomes`` reads."""
    return min(o.first for o in outcomes), max(o.last for o in outcomes)


def outcome_table(outcomes: tuple[Outcome, ...] = OUTCOMES) -> pd.DataFrame:
    """The outcomes as a table: name, unit, meaning, and the days they read."""
    return pd.DataFrame([{"name": o.name, "unit": o.unit, "meaning": o.meaning,
                          "reads_from": o.first.isoformat(), "reads_to": o.last.isoformat()}
                         for o in outcomes])


def outcome_values(frame: pd.DataFrame,
                   outcomes: tuple[Outcome, ...] = OUTCOMES) -> np.ndarray:
    """Every outcome of one replicate's frame, in the order of ``outcomes``."""
    return np.array([o.compute(frame) for o in outcomes], dtype=float)


def check_horizon(scenario: Scenario, run: dict[str, Any],
                  outcomes: tuple[Outcome, ...] = OUTCOMES) -> dict[str, Any]:
    """Refuse a horizon that does not cover what the outcomes read; return the run
    settings with ``end`` moved back to the last day any outcome reads (the weeks after
    it would be simulated for nothing)."""
    first, last = outcome_horizon(outcomes)
    if run["start"] > first or run["end"] < last:
        raise ScenarioError(
            f"{scenario.path}: run.start {run['start']} to run.end {run['end']}: the "
            f"outcomes {', '.join(o.name for o in outcomes)} need a horizon from {first} "
            f"or earlier through {last}; set [run] start and end to cover it in the "
            "scenario (or choose other outcomes with --outcome)")
    return {**run, "end": min(run["end"], last), "scenario_end": run["end"]}


def _outcomes_task(task: tuple) -> np.ndarray:
    """One replicate at one point, reduced to its outcomes in the worker (small to send)."""
    overrides, run, seed, names = task
    return outcome_values(_replicate((overrides, run, seed)), select_outcomes(names))


# --- running points -----------------------------------------------------------------
def _overrides(base: dict[str, Any], names: list[str], point: np.ndarray) -> dict[str, Any]:
    out = dict(base)
    for name, value in zip(names, point):
        out[name] = int(round(value)) if BY_NAME[name].kind is int else float(value)
    return out


def _tasks(scenario: Scenario, run: dict[str, Any], names: list[str], points: np.ndarray,
           plan: DrawPlan, outcomes: tuple[Outcome, ...]) -> list[tuple]:
    """One task per (point, draw, replicate). Draw d, replicate r takes seed child
    ``d x replicates + r`` at every point, as runs do (``model.runner``), and the drawn
    member's values under the scenario's overrides under the point's values."""
    runs_per_point = len(plan.members) * run["replicates"]
    seeds = replicate_seeds(run["seed"], runs_per_point)
    picked = tuple(o.name for o in outcomes)
    tasks = []
    for point in points:
        for d, values in enumerate(plan.values):
            base = {**values, **scenario.overrides}
            for r in range(run["replicates"]):
                tasks.append((_overrides(base, names, point), run,
                              seeds[d * run["replicates"] + r], picked))
    return tasks


def _evaluate(scenario: Scenario, run: dict[str, Any], names: list[str], points: np.ndarray,
              pool, *, desc: str, progress: bool, outcomes: tuple[Outcome, ...] = OUTCOMES,
              first: np.ndarray | None = None, plan: DrawPlan | None = None) -> np.ndarray:
    """Outcomes of every point and run: an array (points, draws x replicates, outcomes).

    ``first`` is the result of the first task if it has been run already
    (``_time_first_run``). Without ``plan``, the scenario's point alone.
    """
    plan = plan or DrawPlan([None], [{}], None)
    tasks = _tasks(scenario, run, names, points, plan, outcomes)
    results = [] if first is None else [first]
    if tasks[len(results):]:
        results += executors.run_tasks(_outcomes_task, tasks[len(results):], pool, desc=desc,
                                       progress=progress)
    return np.array(results, dtype=float).reshape(len(points), len(tasks) // len(points),
                                                  len(outcomes))


def _time_first_run(scenario: Scenario, run: dict[str, Any], names: list[str],
                    points: np.ndarray, outcomes: tuple[Outcome, ...], workers: int,
                    what: str, progress: bool, how: str = "",
                    plan: DrawPlan | None = None) -> np.ndarray:
    """Run the first task here, time it, and print the cost of the whole job before the
    rest starts: points x (draws x) replicates = runs, and the time they should take on
    ``workers`` workers. Returns the first task's outcomes (not run twice)."""
    plan = plan or DrawPlan([None], [{}], None)
    task = _tasks(scenario, run, names, points[:1], plan, outcomes)[0]
    clock = time.perf_counter()
    first = _outcomes_task(task)
    took = time.perf_counter() - clock
    draws = len(plan.members)
    runs = len(points) * draws * run["replicates"]
    estimate = took * math.ceil((runs - 1) / max(1, min(workers, runs - 1 or 1)))
    per_point = (f"{draws} draws x {run['replicates']} replicates" if plan.ensemble is not None
                 else f"{run['replicates']} replicates")
    _say(progress, f"{what} {scenario.name}: {how}{len(points)} points x {per_point} = "
                   f"{runs} runs of {run['agents']:,} user agents to {run['end']}; one run "
                   f"took {_duration(took)}, so the rest should take about "
                   f"{_duration(estimate)} on {workers} idle worker(s), longer on a busy "
                   "machine")
    return first


def _duration(seconds: float) -> str:
    """A duration as a person reads it: 4.2 s, 3.5 minutes, 1.6 hours."""
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"


def _prepare(scenario: Scenario | str | Path, ranges, *, seed, replicates, agents,
             outcomes=None, draws=None, point=False, ensemble=None):
    from . import scenarios as scenario_files

    if not isinstance(scenario, Scenario):
        scenario = scenario_files.load(scenario)
    ranges = _checked_ranges(ranges)
    chosen = select_outcomes(outcomes)
    run = run_settings(scenario, replicates=replicates, seed=seed, agents=agents, draws=draws)
    run = check_horizon(scenario, run, chosen)
    plan = plan_draws(run, point=point, ensemble=ensemble)
    run["draws"] = len(plan.members)
    run["runs"] = len(plan.members) * run["replicates"]
    return scenario, ranges, run, chosen, plan


def _outcomes_manifest(outcomes: tuple[Outcome, ...] = OUTCOMES) -> list[dict[str, str]]:
    return outcome_table(outcomes).to_dict("records")


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr)


# --- sweep --------------------------------------------------------------------------
def sweep(scenario: Scenario | str | Path, ranges: dict[str, tuple[float, float]], *,
          samples: int = 16, design_kind: str = "lhs", seed: int | None = None,
          replicates: int | None = None, agents: int | None = None,
          workers: int | None = None, dask_address: str | None = None,
          out: Path | None = None, progress: bool = True,
          outcomes: list[str] | None = None, cost: bool | None = None,
          draws: int | None = None, point: bool = False,
          ensemble: str | Path | None = None) -> Path:
    """Run a scenario at many parameter points and write the outcomes; return the folder.

    ``ranges`` maps parameter names to (low, high) (``parse_ranges``); other parameters
    keep the scenario's values. ``design(ranges, samples, design_kind, seed)`` gives the
    points; each is run ``replicates`` times with the same replicate seeds. ``seed``,
    ``replicates`` and ``agents`` default to the scenario's run settings. Writes
    ``<out or results>/sweep/<scenario>/<run-id>/``:

    * ``samples.csv``: one row per point, ``sample``, the parameter values, each
      outcome's mean over replicates and ``<outcome>_sd``, its standard deviation over
      replicates (``ddof=1``; blank with one replicate);
    * ``manifest.json``: scenario, ranges, design, seeds, outcomes, versions, git
      commit, command, start time and wall time;
    * ``outcomes_vs_parameters.png``: one row per outcome, one column per parameter.

    ``outcomes`` names the outcomes to compute (default: all of ``OUTCOMES``); each run
    stops at the last day any of them reads. The cost (points x replicates = runs and
    the time they should take, from a timing of the first run) is printed first, to
    standard error, if ``cost`` (default: ``progress``).
    """
    scenario, ranges, run, chosen, plan = _prepare(
        scenario, ranges, seed=seed, replicates=replicates, agents=agents, outcomes=outcomes,
        draws=draws, point=point, ensemble=ensemble)
    names = list(ranges)
    points = design(ranges, samples, design_kind, run["seed"])
    info_design = _describe_design(design_kind, samples, len(points), len(names))
    if design_kind == "grid" and len(points) != samples:
        _say(progress, f"grid design: {info_design['points_per_axis']} points per axis x "
                       f"{len(names)} parameter(s) = {len(points)} samples "
                       f"(asked for {samples})")
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    n_tasks = len(points) * run["runs"]
    n_workers = min(workers or executors.default_workers(), n_tasks)
    first = _time_first_run(scenario, run, names, points, chosen, n_workers, "sweep",
                            progress if cost is None else cost, plan=plan)
    with executors.executor(n_workers, dask_address) as pool:
        values = _evaluate(scenario, run, names, points, pool, desc=f"sweep {scenario.name}",
                           progress=progress, outcomes=chosen, first=first, plan=plan)
    wall = time.perf_counter() - clock
    table = samples_table(names, points, values, chosen)
    final = new_run_dir(Path(out or RESULTS_DIR) / "sweep" / scenario.name, started)

    def write(folder: Path) -> None:
        table.to_csv(folder / "samples.csv", index=False, float_format="%.6g")
        info = manifest(scenario, run, started, wall, {
            "sweep_id": final.name,
            "ranges": {name: list(bounds) for name, bounds in ranges.items()},
            "design": {**info_design, "seed": run["seed"],
                       "method": "model.sweep.design (scipy.stats.qmc)"},
            "common_random_numbers": "every sample uses the same draws and replicate seeds",
            "ensemble": plan.describe(),
            "model_runs": n_tasks,
            "outcomes": _outcomes_manifest(chosen),
        })
        (folder / "manifest.json").write_text(json.dumps(info, indent=2, default=_json_default))
        plot_outcomes_vs_parameters(table, names, folder / "outcomes_vs_parameters.png",
                                    info)

    return write_atomically(final, write)


def samples_table(names: list[str], points: np.ndarray, values: np.ndarray,
                  outcomes: tuple[Outcome, ...] = OUTCOMES) -> pd.DataFrame:
    """One row per point: values, outcome means, standard deviations over replicates
    and the lowest and highest replicate (``_min``, ``_max``)."""
    table = pd.DataFrame(points, columns=names)
    table.insert(0, "sample", np.arange(len(points)))
    with warnings.catch_warnings():  # all-NaN outcomes and single replicates
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values, axis=1)
        sds = (np.nanstd(values, axis=1, ddof=1) if values.shape[1] > 1
               else np.full_like(means, np.nan))
        lows, highs = np.nanmin(values, axis=1), np.nanmax(values, axis=1)
    names_out = [o.name for o in outcomes]
    for j, name in enumerate(names_out):
        table[name] = means[:, j]
    for j, name in enumerate(names_out):
        table[f"{name}_sd"] = sds[:, j]
    for j, name in enumerate(names_out):
        table[f"{name}_min"] = lows[:, j]
        table[f"{name}_max"] = highs[:, j]
    for name in names:
        if BY_NAME[name].kind is int:
            table[name] = table[name].astype(int)
    return table


# --- sensitivity --------------------------------------------------------------------
def _uniform_dists(ranges) -> list:
    """Each parameter uniform on its range (integers: on [low - 1/2, high + 1/2])."""
    from scipy.stats import uniform

    lows, highs = _bounds(ranges, widen_integers=True)
    return [uniform(loc=lo, scale=hi - lo) for lo, hi in zip(lows, highs)]


def sobol_unit_points(d: int, n: int, seed: int | None = 0) -> np.ndarray:
    """The unit-cube points behind Saltelli's design, n x 2d: the first ``d`` columns
    make ``A``, the rest ``B`` (one scrambled Sobol' sequence, as
    ``scipy.stats.sobol_indices`` draws it)."""
    from scipy.stats import qmc

    return qmc.Sobol(d=2 * d, scramble=True, bits=64, rng=seed).random(n)


def sobol_points(ranges: dict[str, tuple[float, float]], n: int,
                 seed: int | None = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The matrices ``A``, ``B`` (each d x n) and ``AB`` (d x d x n) of Saltelli's design.

    As ``scipy.stats.sobol_indices`` draws them: one scrambled Sobol' sequence of
    ``2d`` dimensions, its first ``d`` columns ``A`` and the rest ``B``, mapped through
    each parameter's uniform ``ppf``; page *k* of ``AB`` is ``A`` with row *k* from
    ``B``. Integer parameters are rounded.
    """
    ranges = _checked_ranges(ranges)
    d = len(ranges)
    unit = sobol_unit_points(d, n, seed)  # n x 2d
    dists = _uniform_dists(ranges)
    a_b = np.stack([dists[k % d].ppf(unit[:, k]) for k in range(2 * d)])  # 2d x n
    A = _round_integers(a_b[:d].T, ranges).T
    B = _round_integers(a_b[d:].T, ranges).T
    AB = np.tile(A, (d, 1, 1))
    AB[np.arange(d), np.arange(d)] = B
    return A, B, AB


def _stack_points(A: np.ndarray, B: np.ndarray, AB: np.ndarray) -> np.ndarray:
    """Every point to evaluate, (n (d + 2)) x d: ``A``, then ``B``, then each AB page."""
    return np.concatenate([A, B, *AB], axis=1).T


def indices_from_evaluations(evaluations: np.ndarray, n: int, parameters: list[str],
                             outcomes: list[str], *, bootstrap: bool = True,
                             confidence: float = CONFIDENCE,
                             rng: int | None = 0) -> pd.DataFrame:
    """Sobol' indices from outputs at the stacked points of ``_stack_points``.

    ``evaluations`` is (s, n (d + 2)): outcome values at ``A`` (first ``n`` columns),
    ``B`` (next ``n``) and ``AB`` page by page. Returns one row per (outcome,
    parameter) with ``first_order`` and ``total`` (Saltelli 2010 estimators, through
    ``scipy.stats.sobol_indices``) and, with ``bootstrap``, BCa bootstrap intervals
    (``SobolResult.bootstrap``, resampling the ``n`` rows; NaN where the bootstrap
    is degenerate, as with very few points).
    """
    from scipy.stats import sobol_indices

    evaluations = np.atleast_2d(np.asarray(evaluations, dtype=float))
    s, d = len(outcomes), len(parameters)
    if evaluations.shape != (s, n * (d + 2)):
        raise ValueError(f"evaluations have shape {evaluations.shape}; expected "
                         f"({s}, {n * (d + 2)}) for {s} outcomes, n={n}, d={d}")
    f_A, f_B = evaluations[:, :n], evaluations[:, n:2 * n]
    f_AB = evaluations[:, 2 * n:].reshape(s, d, n).transpose(1, 0, 2)  # d x s x n
    result = sobol_indices(func={"f_A": f_A, "f_B": f_B, "f_AB": f_AB}, n=n)
    first = np.reshape(result.first_order, (s, d))
    total = np.reshape(result.total_order, (s, d))
    intervals = {}
    if bootstrap:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # degenerate resamples with few points
            # SobolResult.bootstrap draws from numpy's global random state: seed it for
            # reproducible intervals, then put it back
            state = np.random.get_state()
            np.random.seed(0 if rng is None else int(rng) % 2**32)
            try:
                boot = result.bootstrap(confidence_level=confidence,
                                        n_resamples=BOOTSTRAP_RESAMPLES)
            finally:
                np.random.set_state(state)
        for key, part in (("first_order", boot.first_order), ("total", boot.total_order)):
            intervals[f"{key}_low"] = np.reshape(part.confidence_interval.low, (s, d))
            intervals[f"{key}_high"] = np.reshape(part.confidence_interval.high, (s, d))
    rows = []
    for i, outcome in enumerate(outcomes):
        flat = _flat(evaluations[i])
        for k, parameter in enumerate(parameters):
            row = {"outcome": outcome, "parameter": parameter,
                   "first_order": first[i, k], "total": total[i, k]}
            for key, array in intervals.items():
                row[key] = array[i, k]
            row["flag"], row["n_needed"] = _judge(row, n, flat)
            rows.append(row)
    return pd.DataFrame(rows)


def _flat(values: np.ndarray) -> bool:
    """Whether an outcome hardly moves over the points (see ``FLAT_OUTCOME``)."""
    values = values[np.isfinite(values)]
    if not values.size:
        return True
    size = float(np.max(np.abs(values)))
    return size == 0 or float(np.ptp(values)) <= FLAT_OUTCOME * size


def _judge(row: dict[str, float], n: int, flat: bool) -> tuple[str, float]:
    """The flag of one (outcome, parameter) row and the base sample that would do.

    ``sample too small`` when an estimate lies outside [0, 1] or first-order exceeds
    total (each by more than ``INDEX_MARGIN``), or a 90% interval is wider than
    ``MAX_INTERVAL_WIDTH`` or could not be computed for a non-zero index. The interval width shrinks as 1 / sqrt(N), so the N that
    would do is N (width / limit) ** 2, and at least 4 N when an estimate is impossible,
    rounded up to a power of 2. ``outcome hardly moves`` when the outcome's spread over
    every point is below ``FLAT_OUTCOME`` of its size: more points do not help, a
    wider range or another outcome does.
    """
    if flat:
        return "outcome hardly moves", np.nan
    first, total = row["first_order"], row["total"]
    if not (np.isfinite(first) and np.isfinite(total)):
        return TOO_SMALL, float(4 * n)
    impossible = (min(first, total) < -INDEX_MARGIN or max(first, total) > 1 + INDEX_MARGIN
                  or first > total + INDEX_MARGIN)
    widths = [row[f"{key}_high"] - row[f"{key}_low"] for key in ("first_order", "total")
              if f"{key}_low" in row]
    # an interval the bootstrap could not give (too few points) is no interval
    impossible = impossible or (any(not np.isfinite(w) for w in widths)
                                and (first != 0 or total != 0))
    widest = max([w for w in widths if np.isfinite(w)], default=0.0)
    if not impossible and widest <= MAX_INTERVAL_WIDTH:
        return "", np.nan
    factor = max((widest / MAX_INTERVAL_WIDTH) ** 2, 4.0 if impossible else 1.0)
    return TOO_SMALL, float(2 ** math.ceil(math.log2(n * factor)))


def flag_summary(indices: pd.DataFrame, n: int) -> str | None:
    """One warning line about the flagged indices of a table, or None if none is."""
    small = indices[indices["flag"] == TOO_SMALL]
    flat = sorted(set(indices.loc[indices["flag"] == "outcome hardly moves", "outcome"]))
    parts = []
    if len(small):
        needed = int(np.nanmax(small["n_needed"]))
        parts.append(f"{len(small)} of {len(indices)} indices flagged '{TOO_SMALL}' (outside "
                     f"[0, 1], first-order above total, or a 90% interval wider than "
                     f"{MAX_INTERVAL_WIDTH:g}) in {', '.join(sorted(set(small['outcome'])))}; "
                     f"--samples {needed} would do (now {n})")
    if flat:
        parts.append(f"{', '.join(flat)} hardly move over the ranges (spread under "
                     f"{FLAT_OUTCOME:.1%} of their size): their indices measure noise")
    return "warning: " + "; ".join(parts) if parts else None


def sensitivity(scenario: Scenario | str | Path, ranges: dict[str, tuple[float, float]], *,
                samples: int = 16, seed: int | None = None, replicates: int | None = None,
                agents: int | None = None, workers: int | None = None,
                dask_address: str | None = None, out: Path | None = None,
                progress: bool = True, outcomes: list[str] | None = None,
                cost: bool | None = None, draws: int | None = None, point: bool = False,
                ensemble: str | Path | None = None) -> Path:
    """Sobol' indices of every outcome with respect to every parameter; return the folder.

    ``samples`` is ``n``, a power of 2: the model runs at ``n (d + 2)`` points, each
    ``replicates`` times with the same replicate seeds, and the outcome at a point is
    the mean over replicates. Each parameter is uniform on its range. Writes
    ``<out or results>/sensitivity/<scenario>/<run-id>/``:

    * ``sobol_indices.csv``: outcome, parameter, first_order, total, and their 90%
      bootstrap intervals (``*_low``, ``*_high``);
    * ``points.csv``: every point (``block`` A, B or AB:<parameter>, ``row``), its
      parameter values and outcomes, to re-analyse without rerunning;
    * ``manifest.json`` and ``sobol_indices.png``.

    Refuses an outcome that is not finite at some point (the estimator needs finite
    values), naming the outcome and the point.
    """
    if (isinstance(samples, bool) or not isinstance(samples, (int, np.integer))
            or samples < 2 or samples & (samples - 1)):
        below = 2 ** max(1, int(math.log2(samples))) if isinstance(samples, int) and samples > 1 else 2
        raise MpsimError(f"--samples {samples}: Sobol' indices need a power of 2 of at least 2, "
                         f"e.g. {below} or {below * 2}")
    scenario, ranges, run, chosen, plan = _prepare(
        scenario, ranges, seed=seed, replicates=replicates, agents=agents, outcomes=outcomes,
        draws=draws, point=point, ensemble=ensemble)
    chosen_names = [o.name for o in chosen]
    names = list(ranges)
    d = len(names)
    A, B, AB = sobol_points(ranges, samples, run["seed"])
    points = _stack_points(A, B, AB)
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    n_tasks = len(points) * run["runs"]
    n_workers = min(workers or executors.default_workers(), n_tasks)
    first = _time_first_run(scenario, run, names, points, chosen, n_workers, "sensitivity",
                            progress if cost is None else cost,
                            how=f"n = {samples} x (d + 2 = {d + 2}) = ", plan=plan)
    with executors.executor(n_workers, dask_address) as pool:
        values = _evaluate(scenario, run, names, points, pool,
                           desc=f"sensitivity {scenario.name}", progress=progress,
                           outcomes=chosen, first=first, plan=plan)
    wall = time.perf_counter() - clock
    means = np.nanmean(values, axis=1) if values.shape[1] > 1 else values[:, 0]  # points x s
    blocks = (["A"] * samples + ["B"] * samples
              + [f"AB:{name}" for name in names for _ in range(samples)])
    point_table = pd.DataFrame(points, columns=names)
    point_table.insert(0, "row", np.tile(np.arange(samples), d + 2))
    point_table.insert(0, "block", blocks)
    for j, name in enumerate(chosen_names):
        point_table[name] = means[:, j]
    bad = ~np.isfinite(means)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        at = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, points[i]))
        raise MpsimError(f"sensitivity: outcome {chosen_names[j]} is not a number at "
                         f"{at}; Sobol' indices need finite outcomes (more agents may help)")
    indices = indices_from_evaluations(means.T, samples, names, chosen_names,
                                       rng=run["seed"])
    warning = flag_summary(indices, samples)
    if warning:
        print(f"sensitivity {scenario.name}: {warning}", file=sys.stderr)
    final = new_run_dir(Path(out or RESULTS_DIR) / "sensitivity" / scenario.name, started)

    def write(folder: Path) -> None:
        indices.to_csv(folder / "sobol_indices.csv", index=False, float_format="%.6g")
        point_table.to_csv(folder / "points.csv", index=False, float_format="%.6g")
        info = manifest(scenario, run, started, wall, {
            "sensitivity_id": final.name,
            "ranges": {name: list(bounds) for name, bounds in ranges.items()},
            "method": {
                "estimator": "scipy.stats.sobol_indices, Saltelli et al. (2010) first-order "
                             "and total indices",
                "distributions": "each parameter uniform on its range (integers rounded)",
                "base_samples_n": samples, "parameters_d": d,
                "points": int(len(points)), "model_runs": n_tasks,
                "design": "A and B from one scrambled Sobol' sequence of 2d dimensions, "
                          "seeded with the root seed",
                "bootstrap": {"method": "BCa over the n rows", "confidence_level": CONFIDENCE,
                              "resamples": BOOTSTRAP_RESAMPLES},
                "flags": {TOO_SMALL: f"an estimate outside [0, 1] or first-order above "
                                     f"total by more than {INDEX_MARGIN:g}, or a 90% "
                                     f"interval wider than {MAX_INTERVAL_WIDTH:g}; n_needed "
                                     "= n (width / limit)^2 (at least 4 n), a power of 2",
                          "outcome hardly moves": f"spread over every point below "
                                                  f"{FLAT_OUTCOME:.1%} of the outcome's size"},
            },
            "common_random_numbers": "every point uses the same draws and replicate seeds",
            "ensemble": plan.describe(),
            "outcomes": _outcomes_manifest(chosen),
        })
        (folder / "manifest.json").write_text(json.dumps(info, indent=2, default=_json_default))
        plot_sobol_indices(indices, folder / "sobol_indices.png", info)

    return write_atomically(final, write)


# --- plots --------------------------------------------------------------------------
def _footer_text(info: dict[str, Any], extra: str) -> str:
    run = info.get("run", {})
    return (f"scenario {info.get('scenario', '?')} · {extra} · "
            f"{run.get('replicates', '?')} replicates × {run.get('agents', 0):,} user agents · "
            f"seed {run.get('seed', '?')}")


def binned_means(x: np.ndarray, y: np.ndarray, low: float, high: float,
                 bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``y`` in ``bins`` equal-width bins of ``x`` over [low, high]: (centres,
    means), empty bins left out."""
    edges = np.linspace(low, high, bins + 1)
    which = np.clip(np.digitize(x, edges) - 1, 0, bins - 1)
    centres, means = [], []
    for b in range(bins):
        inside = (which == b) & np.isfinite(y)
        if inside.any():
            centres.append(0.5 * (edges[b] + edges[b + 1]))
            means.append(float(np.mean(y[inside])))
    return np.array(centres), np.array(means)


def parameter_label(name: str, width: int = 38) -> str:
    """An axis label for a parameter: its meaning's first sentence, wrapped, its unit,
    and its name (``model/params.py``)."""
    import textwrap

    spec = BY_NAME.get(name)
    if spec is None:
        return name
    sentence = spec.meaning.split(". ")[0].rstrip(".")
    if sentence.startswith("Scenario lever: "):
        sentence = sentence[len("Scenario lever: "):]
    sentence = sentence[0].upper() + sentence[1:]
    if len(sentence) > 2 * width:
        sentence = sentence[:2 * width - 1].rsplit(" ", 1)[0] + "…"
    return f"{textwrap.fill(sentence, width)}\n[{spec.unit}]  {name}"


def _outcome_scale(outcome: Outcome) -> tuple[float, str]:
    """Shares are drawn in %."""
    return (100.0, "%") if outcome.unit == "share" else (1.0, outcome.unit)


def plot_outcomes_vs_parameters(table: pd.DataFrame, names: list[str], path: Path,
                                info: dict[str, Any] | None = None) -> Path:
    """One row per outcome, one column per parameter: each sample's mean over
    replicates (bars: its lowest to highest replicate), the mean in equal bins of the
    parameter (line) and the scenario's own value of the parameter (dashed line)."""
    import matplotlib.pyplot as plt

    from .plots import _save

    info = info or {}
    outcomes = [o for o in OUTCOMES if o.name in table.columns]
    # every run of a sample: draws x replicates
    replicates = info.get("run", {}).get("runs") or info.get("run", {}).get("replicates")
    bins = max(1, min(10, int(round(math.sqrt(len(table))))))
    fig, axes = plt.subplots(len(outcomes), len(names), squeeze=False,
                             figsize=(max(6.5, 3.8 * len(names) + 1.6), 2.3 * len(outcomes) + 1.2))
    ranges = info.get("ranges", {})
    scenario_values = info.get("parameters", {})
    scenario_name = info.get("scenario", "scenario")
    for i, outcome in enumerate(outcomes):
        scale, unit = _outcome_scale(outcome)
        for k, name in enumerate(names):
            ax = axes[i, k]
            x = table[name].to_numpy(float)
            y = table[outcome.name].to_numpy(float) * scale
            if f"{outcome.name}_min" in table and (replicates or 1) > 1:
                low = table[f"{outcome.name}_min"].to_numpy(float) * scale
                high = table[f"{outcome.name}_max"].to_numpy(float) * scale
                yerr = np.vstack([np.nan_to_num(y - low), np.nan_to_num(high - y)])
            else:
                yerr = None
            ax.errorbar(x, y, yerr=yerr, fmt="o", ms=3.5, color=outcome.colour, alpha=0.75,
                        elinewidth=0.9, capsize=0)
            low_x, high_x = ranges.get(name, (np.nanmin(x), np.nanmax(x)))
            centres, means = binned_means(x, y, low_x, high_x, bins)
            ax.plot(centres, means, "-", color="black", lw=1.4)
            value = scenario_values.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                ax.axvline(value, color="#444444", ls="--", lw=1.0)
                if i == 0:
                    ax.text(value, 0.97, f" {scenario_name}: {value:.3g}",
                            transform=ax.get_xaxis_transform(), fontsize=7, color="#444444",
                            ha="left", va="top")
            ax.grid(alpha=0.3)
            if i == len(outcomes) - 1:
                ax.set_xlabel(parameter_label(name), fontsize=7.5)
            if k == 0:
                ax.set_ylabel(f"{outcome.name}\n({unit})", fontsize=7)
            ax.tick_params(labelsize=7.5)
    draws = info.get("run", {}).get("draws") or 1
    what = "runs (draws x replicates)" if draws > 1 else "replicates"
    spread = (f"bars: lowest to highest of {replicates} {what}" if (replicates or 1) > 1
              else "one run per sample")
    fig.suptitle("Outcomes against swept parameters\npoints: each sample's mean over "
                 f"replicates; {spread}\nline: mean in {bins} bins; dashed: the scenario's "
                 "value", fontsize=9.5)
    design_info = info.get("design", {})
    fig.text(0.01, 0.005, _footer_text(info, f"sweep {info.get('sweep_id', '?')} · "
                                             f"{design_info.get('kind', '?')} design, "
                                             f"{len(table)} samples"),
             fontsize=7, color="#555555", va="bottom")
    return _save(fig, path)


def plot_sobol_indices(indices: pd.DataFrame, path: Path,
                       info: dict[str, Any] | None = None) -> Path:
    """One panel per outcome: first-order and total Sobol' index of each parameter,
    with the bootstrap intervals as error bars when there are any."""
    import matplotlib.pyplot as plt

    from .plots import _save

    info = info or {}
    outcomes = list(dict.fromkeys(indices["outcome"]))
    parameters = list(dict.fromkeys(indices["parameter"]))
    fig, axes = plt.subplots(len(outcomes), 1, squeeze=False,
                             figsize=(max(6.0, 1.6 * len(parameters) + 3), 2.2 * len(outcomes)))
    x = np.arange(len(parameters))
    width = 0.38
    for ax, outcome in zip(axes[:, 0], outcomes):
        rows = indices[indices["outcome"] == outcome].set_index("parameter").loc[parameters]
        for shift, key, colour, label in ((-width / 2, "first_order", "#4c72b0", "first order"),
                                          (width / 2, "total", "#dd8452", "total")):
            value = rows[key].to_numpy(float)
            yerr = None
            if f"{key}_low" in rows:
                low, high = rows[f"{key}_low"].to_numpy(float), rows[f"{key}_high"].to_numpy(float)
                ok = np.isfinite(low) & np.isfinite(high)
                yerr = np.vstack([np.where(ok, np.maximum(value - low, 0), 0),
                                  np.where(ok, np.maximum(high - value, 0), 0)])
            bars = ax.bar(x + shift, np.clip(value, -0.1, 1.15), width, color=colour,
                          label=label, yerr=yerr, error_kw={"elinewidth": 0.8, "capsize": 2})
            flagged = (rows["flag"] == TOO_SMALL).to_numpy() if "flag" in rows else []
            for xi, v in zip(x + shift, value):
                if np.isfinite(v) and not -0.1 <= v <= 1.15:  # cut at the axis: say its value
                    ax.text(xi + width * 0.08, 1.12 if v > 1 else -0.08, f"{v:.2f}",
                            ha="left", va="top" if v > 1 else "bottom", fontsize=7,
                            color="#d62728", bbox={"boxstyle": "round,pad=0.1", "fc": "white",
                                                   "ec": "none", "alpha": 0.85})
            for bar, bad in zip(bars, flagged):
                if bad:  # hatched, edged in red: not an estimate to read
                    bar.set_hatch("///")
                    bar.set_edgecolor("#d62728")
                    bar.set_alpha(0.45)
        ax.axhline(0, color="black", lw=0.8)
        ax.axhline(1, color="grey", lw=0.6, ls="--")
        ax.set_ylim(-0.1, 1.15)  # indices live in [0, 1]; error bars beyond are cut
        flat = "flag" in rows and (rows["flag"] == "outcome hardly moves").all()
        ax.set_title(outcome + ("  (hardly moves over the ranges: indices are noise)"
                                if flat else ""), fontsize=9, loc="left",
                     color="#d62728" if flat else "black")
        ax.set_xticks(x, parameters if ax is axes[-1, 0] else [""] * len(parameters),
                      fontsize=8, rotation=15 if len(parameters) > 3 else 0)
        ax.set_ylabel("index", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    from matplotlib.patches import Patch

    handles = [Patch(color="#4c72b0", label="first order"), Patch(color="#dd8452", label="total")]
    if "flag" in indices and (indices["flag"] == TOO_SMALL).any():
        handles.append(Patch(facecolor="white", edgecolor="#d62728", hatch="///",
                             label=f"{TOO_SMALL}: read n_needed in sobol_indices.csv"))
    axes[0, 0].legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.12),
                      ncol=3, frameon=False)
    method = info.get("method", {})
    fig.suptitle("Sobol' sensitivity indices (bars: 90% bootstrap intervals)", fontsize=11)
    fig.text(0.01, 0.005, _footer_text(info, f"n = {method.get('base_samples_n', '?')}, "
                                             f"{method.get('points', '?')} points"),
             fontsize=7, color="#555555", va="bottom")
    return _save(fig, path)
