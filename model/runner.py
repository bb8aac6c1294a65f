"""Running a scenario's replicates and writing a results folder.

A run writes ``<out>/<scenario>/<run-id>/``:

* ``series.csv``   every output at every weekly step, one row per (draw, replicate, date);
* ``summary.csv``  key outcomes at key dates: mean, median and 90% posterior-predictive
  interval over every run, and the variance split into the part from the parameters
  (between draws) and the part from the model's own noise (between replicates);
* ``manifest.json`` what produced it: scenario, resolved parameters, seeds, versions,
  git commit, command line, start time and wall time;
* ``*.png``        the plots (``model/plots.py``), redrawn any time by ``mpsim plot``.

The folder is written under a hidden ``.<run-id>.partial`` name, every file flushed to
disk, and renamed only when complete, so a failed or interrupted run leaves nothing
that looks finished, and an existing run is never overwritten. The manifest records
the size and SHA-256 of ``series.csv`` and ``summary.csv``; ``plot`` and ``compare``
read finished folders only (:func:`finished_run`) and say why they refuse one. A
``.partial`` folder left by a killed run is named in a note by the next run writing
beside it, never reused.

**Draws.** By default a run draws ``draws`` parameter sets from the posterior ensemble
(``model/ensemble.py``; the shipped one is ``model/ensemble.csv``) and runs each with
``replicates`` seeds: ``draws x replicates`` model runs, whose spread is the
posterior-predictive spread (what the data leave open plus the model's noise). A
scenario's own overrides are applied over the drawn values, so its levers hold in every
draw. ``point=True`` (``--point``) runs the calibration's best point alone, as the
parameter defaults carry it (``model/calibrated.toml``); so does a run when no ensemble
is shipped, and its manifest says so.

Seeds come from ``numpy.random.SeedSequence(seed).spawn(draws * replicates)``, run
``d * replicates + r`` taking child ``d * replicates + r``, and the draws from the seed
too (``Ensemble.draw``): the same root seed gives the same members and seeds in every
scenario, so comparisons are paired draw by draw and replicate by replicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import calendar
from . import ensemble as ensembles
from . import executor as executors
from .errors import MpsimError, OutputError, ResultsExistError, RunFolderError
from .inputs import read_json
from .model import OUTPUTS, simulate
from .params import PARAMS, check_run_setting
from .scenarios import Scenario

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "results"
UNITS = {name: unit for name, unit, _ in OUTPUTS}


def replicate_seeds(seed: int, replicates: int) -> list[np.random.SeedSequence]:
    """The replicate seeds of a run: children of one root ``SeedSequence``."""
    return np.random.SeedSequence(seed).spawn(replicates)


@dataclass(frozen=True)
class DrawPlan:
    """Which parameter sets a run uses: ``members[d]`` is draw ``d``'s ensemble member
    (``None`` for the point run), ``values[d]`` its parameter values."""

    members: list[int | None]
    values: list[dict[str, float]]
    ensemble: ensembles.Ensemble | None

    def describe(self) -> dict[str, Any]:
        if self.ensemble is None:
            return {"point": True, "source": "parameter defaults (model/calibrated.toml)",
                    "draws": 1}
        ens = self.ensemble
        return {"point": False, "source": ens.source, "members_in_file": len(ens),
                "effective_size": round(ens.effective_size(), 1), "draws": len(self.members),
                "members": self.members, "parameters": list(ens.names),
                "sampling": "systematic resampling of the weights (model.ensemble.Ensemble.draw)"}


def plan_draws(run: dict[str, Any], *, point: bool = False,
               ensemble: str | Path | ensembles.Ensemble | None = None) -> DrawPlan:
    """The draws of a run: ``run['draws']`` members of the ensemble, or the point.

    ``ensemble`` is an ensemble, an ensemble file, or a calibration folder holding
    ``ensemble.csv``; None means the shipped one. With ``point`` the run uses the
    ensemble's best member if an ensemble is given, else the parameter defaults.
    """
    if isinstance(ensemble, (str, Path)):
        path = Path(ensemble)
        ensemble = ensembles.read(path / "ensemble.csv" if path.is_dir() else path)
    given = ensemble is not None
    if ensemble is None and not point:
        ensemble = ensembles.load()
    if ensemble is None or (point and not given):
        return DrawPlan([None], [{}], None)
    if point:
        return DrawPlan([ensemble.best], [ensemble.overrides(ensemble.best)], ensemble)
    members = ensemble.draw(run["draws"], run["seed"])
    return DrawPlan(members, [ensemble.overrides(m) for m in members], ensemble)


def run_labels(plan: DrawPlan, run: dict[str, Any]) -> list[tuple[int, int]]:
    """(draw, replicate) of every model run, in task order."""
    return [(d, r) for d in range(len(plan.members)) for r in range(run["replicates"])]


def _replicate(task: tuple[dict, dict, np.random.SeedSequence]) -> pd.DataFrame:
    overrides, run, seed = task
    return simulate(overrides, agents=run["agents"], merchant_agents=run["merchant_agents"],
                    start=run["start"], end=run["end"], seed=seed)


def run_settings(scenario: Scenario, **given: Any) -> dict[str, Any]:
    """The scenario's run settings with any non-None ``given`` ones (from flags) applied."""
    run = dict(scenario.run)
    for key, value in given.items():
        if value is not None:
            run[key] = check_run_setting(key, value, "command line")
    return run


def simulate_replicates(scenario: Scenario, run: dict[str, Any], pool, *,
                        progress: bool = True, plan: DrawPlan | None = None
                        ) -> list[pd.DataFrame]:
    """Every run's output frame, draw by draw and replicate by replicate within a draw."""
    plan = plan or DrawPlan([None], [{}], None)
    labels = run_labels(plan, run)
    seeds = replicate_seeds(run["seed"], len(labels))
    tasks = [({**plan.values[d], **scenario.overrides}, run, seed)
             for (d, _), seed in zip(labels, seeds)]
    return executors.run_tasks(_replicate, tasks, pool, desc=scenario.name, progress=progress)


def stack(frames: list[pd.DataFrame], labels: list[tuple[int, int]] | None = None,
          members: list[int | None] | None = None) -> pd.DataFrame:
    """Run frames as one long frame with ``draw``, ``member`` and ``replicate`` columns."""
    labels = labels or [(0, i) for i in range(len(frames))]
    members = members or [None]
    parts = [f.assign(draw=d, member=-1 if members[d] is None else members[d], replicate=r)
             for f, (d, r) in zip(frames, labels)]
    return pd.concat(parts).reset_index()


def key_steps(frame: pd.DataFrame) -> list[int]:
    """Steps summarised: the last step of each year from 2017, and the 2019 Spring
    Festival week (the reported peak). A run that ends before 2017 is summarised at
    its last step."""
    index = frame.index
    first_year = min(2017, index[-1].year)
    years = sorted({d.year for d in index if d.year >= first_year})
    steps = [int(np.flatnonzero(index.year == y)[-1]) for y in years]
    festival = frame["all.spring_festival"].to_numpy() == 1
    steps += [int(i) for i in np.flatnonzero(festival) if index[i].year == 2019]
    return sorted(set(steps))


def variance_split(values: np.ndarray, draws: np.ndarray) -> tuple[float, float]:
    """The law of total variance over runs grouped by draw: (parameters, replicates).

    ``Var Y = Var E[Y | draw] + E Var[Y | draw]``, estimated as in a one-way ANOVA: the
    replicates' part is the mean within-draw variance (ddof 1), the parameters' part the
    variance of the draw means less the replicates' part over the replicates per draw
    (at least 0). Either is NaN where it cannot be estimated (one replicate per draw;
    one draw).
    """
    groups = [values[draws == d] for d in np.unique(draws)]
    groups = [g for g in groups if g.size]
    sizes = np.array([g.size for g in groups])
    within = (float(np.mean([g.var(ddof=1) for g in groups if g.size > 1]))
              if (sizes > 1).any() else np.nan)
    if len(groups) < 2:
        return np.nan, within
    means = np.array([g.mean() for g in groups])
    between = float(means.var(ddof=1)) - (0.0 if np.isnan(within) else within / sizes.mean())
    return max(between, 0.0), within


def summarise(frames: list[pd.DataFrame],
              labels: list[tuple[int, int]] | None = None) -> pd.DataFrame:
    """Every output at the key dates: mean, median and 90% interval over all runs, and
    its variance split into parameters (between draws) and replicates."""
    cube = np.stack([f.to_numpy() for f in frames])  # run x step x output
    draws = np.array([d for d, _ in (labels or [(0, i) for i in range(len(frames))])])
    index = frames[0].index
    rows = []
    festival = frames[0]["all.spring_festival"].to_numpy() == 1
    for j, name in enumerate(frames[0].columns):
        for i in key_steps(frames[0]):
            column = cube[:, i, j]
            keep = ~np.isnan(column)
            values = column[keep]
            if not values.size:
                continue
            from_params, from_replicates = variance_split(values, draws[keep])
            total = from_params + from_replicates
            rows.append({"output": name, "unit": UNITS.get(name, ""),
                         "date": index[i].date().isoformat(),
                         "spring_festival_week": bool(festival[i]),
                         "mean": values.mean(), "p05": np.quantile(values, 0.05),
                         "p50": np.quantile(values, 0.5), "p95": np.quantile(values, 0.95),
                         "var_parameters": from_params, "var_replicates": from_replicates,
                         "share_from_parameters": (from_params / total
                                                   if total > 0 else np.nan),
                         "draws": len(np.unique(draws[keep])), "runs": values.size})
    return pd.DataFrame(rows)


def git_commit() -> dict[str, Any]:
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True,
                              text=True, timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--", ".", ":(exclude)results")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def versions() -> dict[str, str]:
    import matplotlib
    import mesa
    import scipy

    return {"python": platform.python_version(), "mesa": mesa.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            "matplotlib": matplotlib.__version__, "platform": platform.platform()}


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def manifest(scenario: Scenario, run: dict[str, Any], started: dt.datetime, wall: float,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    params = scenario.params
    return {
        "scenario": scenario.name,
        "scenario_file": str(scenario.path),
        "extends_chain": scenario.chain,
        "description": scenario.description,
        "run": run,
        "seeds": {"root": run["seed"],
                  "runs": "numpy.random.SeedSequence(root).spawn(draws x replicates); "
                          "draw d, replicate r uses child d x replicates + r",
                  "spawn_keys": [list(s.spawn_key) for s in replicate_seeds(
                      run["seed"], run.get("runs", run["replicates"]))]},
        "overrides": scenario.overrides,
        "parameters": params,
        "parameter_sources": {p.name: p.source for p in PARAMS},
        "people_per_agent_millions": params["population.people_millions"] / run["agents"],
        "git": git_commit(),
        "versions": versions(),
        "command": sys.argv,
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        **(extra or {}),
    }


def check_output_dir(out: Path | str | None, flag: str = "--out") -> Path:
    """The folder results go under (``out``, or ``results/``), checked before any work:
    it, or the nearest folder above it that exists, must be a folder this process can
    write in. Creates nothing. Raises OutputError naming ``flag`` and the folder."""
    folder = Path(out) if out is not None else RESULTS_DIR
    label = f"{flag} {folder}" if out is not None else f"results folder {folder}"
    probe = folder
    while not probe.exists() and not probe.is_symlink() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{label}: {probe} is not a folder; expected a folder to write "
                          "results under")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise OutputError(f"{label}: cannot write in {probe}: "
                          f"{exc.strerror or exc}") from None
    return folder


def file_record(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file, as a manifest records them."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def new_run_dir(parent: Path, stamp: dt.datetime) -> Path:
    """A run folder name that does not exist yet (never reuse one)."""
    base = stamp.strftime("%Y%m%dT%H%M%SZ")
    candidate, n = parent / base, 1
    while candidate.exists() or (parent / f".{candidate.name}.partial").exists():
        n += 1
        candidate = parent / f"{base}-{n}"
    return candidate


@dataclass
class RunResult:
    path: Path
    frames: list[pd.DataFrame]
    run: dict[str, Any]
    labels: list[tuple[int, int]] | None = None
    plan: DrawPlan | None = None


#: Results folders this process has finished (renamed into place), in order: the
#: command line names them if it is interrupted after they were written.
finished_folders: list[Path] = []


def partial_name(final: Path) -> Path:
    """The hidden folder a results folder is written in before it is finished."""
    return final.parent / f".{final.name}.partial"


def is_partial(folder: Path) -> bool:
    name = Path(folder).name
    return name.startswith(".") and name.endswith(".partial")


def _lock(folder: Path):
    """An open descriptor holding an exclusive lock on ``folder`` while a run writes
    it (released when the run ends, however it ends); None where locks are missing."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def being_written(folder: Path) -> bool:
    """Whether a live process is writing the ``.partial`` folder (it holds its lock)."""
    try:
        fd = _lock(folder)
    except OSError:
        return True
    if fd is not None:
        os.close(fd)
    return False


def stale_partials(parent: Path) -> list[Path]:
    """``.partial`` folders under ``parent`` that no live process is writing: left by
    a run that was killed while writing."""
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.glob(".*.partial") if p.is_dir() and not being_written(p))


def _sync(folder: Path) -> None:
    """Flush every file of ``folder`` to disk, so a crash after the rename cannot leave
    a finished folder with empty files."""
    for path in folder.iterdir():
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder
        pass
    finally:
        os.close(fd)


def write_atomically(final: Path, write) -> Path:
    """Call ``write(folder)`` on a hidden partial folder, flush it, rename it to ``final``.

    The partial folder is locked while it is written; on any failure or interruption
    it is removed. ``.partial`` folders left beside it by killed runs are named in a
    note on stderr. An OSError while writing (disk full, read-only) becomes an
    OutputError naming the folder.
    """
    if final.exists():
        raise ResultsExistError(f"{final}: already exists; results are never overwritten")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{final.parent}: cannot make the results folder: "
                          f"{exc.strerror or exc}") from None
    for stale in stale_partials(final.parent):
        print(f"mpsim: note: {stale} was left by a run that was killed while writing; it "
              "holds no finished results (delete it)", file=sys.stderr)
    partial = partial_name(final)
    try:
        partial.mkdir()  # exclusive: a run writing the same name already owns it
    except FileExistsError:
        state = ("another run is writing this folder" if being_written(partial)
                 else "a run writing this folder was killed; delete it to reuse the name")
        raise ResultsExistError(f"{partial}: {state}; results are never overwritten") from None
    except OSError as exc:
        raise OutputError(f"{partial}: cannot make the results folder: "
                          f"{exc.strerror or exc}") from None
    lock = None
    try:
        lock = _lock(partial)
        write(partial)
        _sync(partial)
        if final.exists():  # os.rename would replace an empty folder
            raise ResultsExistError(f"{final}: already exists; results are never overwritten")
        os.rename(partial, final)
        finished_folders.append(final)
        _sync_dir(final.parent)
    except BaseException as exc:
        if not partial.exists() and final.is_dir():  # interrupted just after the rename
            if final not in finished_folders:
                finished_folders.append(final)
            raise
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, MpsimError):
            where = f" ({exc.filename})" if exc.filename else ""
            raise OutputError(f"{final}: cannot write the results{where}: "
                              f"{exc.strerror or exc}; nothing was kept") from None
        raise
    finally:
        if lock is not None:
            os.close(lock)
    return final


def run_scenario(scenario: Scenario, *, replicates: int | None = None, seed: int | None = None,
                 agents: int | None = None, draws: int | None = None, point: bool = False,
                 ensemble: str | Path | ensembles.Ensemble | None = None,
                 workers: int | None = None, dask_address: str | None = None,
                 out: Path | None = None, plots: bool = True, progress: bool = True,
                 pool=None) -> RunResult:
    """Run a scenario over the ensemble's draws (or its best point) and write its
    results folder; return where.

    ``pool`` is an open executor (``model.executor.executor``) to share between
    several runs; without it the run opens its own.
    """
    run = run_settings(scenario, replicates=replicates, seed=seed, agents=agents, draws=draws)
    check_output_dir(out)
    plan = plan_draws(run, point=point, ensemble=ensemble)
    labels = run_labels(plan, run)
    run["draws"], run["runs"] = len(plan.members), len(labels)
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    if pool is None:
        with executors.executor(min(workers or executors.default_workers(), len(labels)),
                                dask_address) as own_pool:
            frames = simulate_replicates(scenario, run, own_pool, progress=progress, plan=plan)
    else:
        frames = simulate_replicates(scenario, run, pool, progress=progress, plan=plan)
    wall = time.perf_counter() - clock
    final = new_run_dir(Path(out or RESULTS_DIR) / scenario.name, started)

    def write(folder: Path) -> None:
        stack(frames, labels, plan.members).to_csv(folder / "series.csv", index=False,
                                                   float_format="%.6g")
        summarise(frames, labels).to_csv(folder / "summary.csv", index=False,
                                         float_format="%.6g")
        files = {name: file_record(folder / name) for name in ("series.csv", "summary.csv")}
        info = manifest(scenario, run, started, wall, {"run_id": final.name, "files": files,
                                                       "ensemble": plan.describe()})
        (folder / "manifest.json").write_text(json.dumps(info, indent=2, default=_json_default))
        if plots:
            from .plots import plot_run
            plot_run(folder)

    return RunResult(write_atomically(final, write), frames, run, labels, plan)


def paired_differences(runs: list[tuple[str, list[pd.DataFrame]]]) -> pd.DataFrame:
    """Each scenario minus the first, run by run (same draw, same seed), at the key dates:
    the median effect, its 50% and 90% intervals and the probability it is above zero."""
    base_name, base = runs[0]
    index = base[0].index
    positions = key_steps(base[0])
    rows = []
    for name, frames in runs[1:]:
        for column in base[0].columns:
            if column == "all.spring_festival":
                continue
            diff = np.stack([f[column].to_numpy() - b[column].to_numpy()
                             for f, b in zip(frames, base)])
            for i in positions:
                values = diff[:, i][~np.isnan(diff[:, i])]
                if not values.size:
                    continue
                p05, p25, p50, p75, p95 = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
                rows.append({"scenario": name, "baseline": base_name, "output": column,
                             "unit": UNITS.get(column, ""), "date": index[i].date().isoformat(),
                             "mean_difference": values.mean(), "median": p50,
                             "p05": p05, "p25": p25, "p75": p75, "p95": p95,
                             "prob_above_zero": float(np.mean(values > 0)),
                             "runs": values.size})
    return pd.DataFrame(rows)


def _members_of(info: dict[str, Any]) -> tuple[Any, ...]:
    """What a run's draws were, as saved in its manifest (for pairing)."""
    ens = info.get("ensemble") or {"point": True}
    if ens.get("point") and "members" not in ens:
        return ("point",)
    return (ens.get("source"), tuple(ens.get("members", ())))


def compare(items: list[str | Path], *, replicates: int | None = None, seed: int | None = None,
            agents: int | None = None, draws: int | None = None, point: bool = False,
            ensemble: str | Path | None = None, workers: int | None = None,
            dask_address: str | None = None, out: Path | None = None,
            progress: bool = True) -> Path:
    """Compare scenarios (run now, each saved as a run) or finished run folders.

    Runs are paired draw by draw and replicate by replicate: they must share the root
    seed, the ensemble members drawn, the replicate count and the agent count. Writes
    ``<out>/compare/<id>/`` with the paired differences at key dates (median effect,
    50% and 90% intervals, probability above zero) and the overlay and difference plots.
    """
    from . import scenarios as scenario_files
    from .plots import plot_compare

    if len(items) < 2:
        raise MpsimError("compare: give at least two scenarios or run folders")
    started = dt.datetime.now(dt.timezone.utc)
    # (name, label for messages, finished run folder or None, scenario or None, settings)
    plans: list[tuple[str, str, Path | None, Scenario | None, dict[str, Any]]] = []
    members: list[tuple[Any, ...]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            info = finished_run(path)
            run = info["run"]
            plans.append((path.parent.name, f"run folder {path}", path, None, run))
            members.append(_members_of(info))
        else:
            scenario = scenario_files.load(item)
            run = run_settings(scenario, replicates=replicates, seed=seed, agents=agents,
                               draws=draws)
            plan = plan_draws(run, point=point, ensemble=ensemble)
            run["draws"] = len(plan.members)
            plans.append((scenario.name, f"scenario {scenario.name}", None, scenario, run))
            members.append(_members_of({"ensemble": plan.describe()}))
    for plan, drawn in zip(plans[1:], members[1:]):
        if drawn != members[0]:
            raise MpsimError(f"compare: {plan[1]} and {plans[0][1]} were drawn from different "
                             "ensembles or members (or one is a --point run); paired "
                             "comparison needs the same ensemble, --draws and --seed")
    paired = ("seed", "replicates", "agents", "start", "end")
    settings = [{k: plan[4][k] for k in paired} for plan in plans]
    # as text: a run folder's manifest holds the dates as text
    compared = [{k: str(v) for k, v in setting.items()} for setting in settings]
    for plan, setting, text in zip(plans[1:], settings[1:], compared[1:]):  # before anything runs
        if text != compared[0]:
            def said(s: dict[str, Any]) -> str:
                return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                 for k, v in s.items())
            raise MpsimError(f"compare: {plan[1]} has {said(setting)} but {plans[0][1]} has "
                             f"{said(settings[0])}; paired comparison needs the same seed, "
                             "replicates, agents (--seed, --replicates, --agents) and "
                             "horizon ([run] start and end)")
    check_output_dir(out)
    runs: list[tuple[str, list[pd.DataFrame]]] = []
    sources: list[str] = []
    n_tasks = max([plan[4]["replicates"] * plan[4]["draws"] for plan in plans
                   if plan[3] is not None] or [1])
    with executors.executor(min(workers or executors.default_workers(), n_tasks),
                            dask_address) as pool:
        for name, _, path, scenario, _ in plans:
            if scenario is None:
                frames = load_run(path)[1]
                sources.append(str(path))
            else:
                result = run_scenario(scenario, replicates=replicates, seed=seed, agents=agents,
                                      draws=draws, point=point, ensemble=ensemble,
                                      out=out, progress=progress, pool=pool)
                frames = result.frames
                sources.append(str(result.path))
            runs.append((name, frames))
    final = new_run_dir((out or RESULTS_DIR) / "compare", started)

    def write(folder: Path) -> None:
        paired_differences(runs).to_csv(folder / "differences.csv", index=False,
                                        float_format="%.6g")
        info = {"compare_id": final.name, "scenarios": [n for n, _ in runs], "runs": sources,
                "files": {"differences.csv": file_record(folder / "differences.csv")},
                "run": settings[0], "command": sys.argv, "git": git_commit(),
                "versions": versions(), "started_utc": started.isoformat(timespec="seconds")}
        (folder / "manifest.json").write_text(json.dumps(info, indent=2, default=_json_default))
        plot_compare(runs, folder)

    return write_atomically(final, write)


RUN_KEYS = ("seed", "replicates", "agents", "start", "end")


def read_manifest(folder: Path) -> dict[str, Any]:
    """A run folder's manifest; a one-line RunFolderError for any other folder, or a
    manifest that is missing, corrupt or holds no run settings."""
    folder = Path(folder)
    for name in ("manifest.json", "series.csv"):
        if not (folder / name).is_file():
            kind = next((k for k, marker in (("comparison", "differences.csv"),
                                             ("sweep", "samples.csv"),
                                             ("calibration", "best_parameters.json"))
                         if (folder / marker).is_file()), None)
            what = f"a {kind} folder, not a run folder" if kind else "not a finished run folder"
            raise RunFolderError(f"{folder}: {what} (no {name})")
    path = folder / "manifest.json"
    info = read_json(path, "run manifest", RunFolderError)
    run = info.get("run") if isinstance(info, dict) else None
    if not isinstance(run, dict) or any(k not in run for k in RUN_KEYS):
        raise RunFolderError(f"{path}: not a run manifest (expected run settings "
                             f"{', '.join(RUN_KEYS)}); the run folder is corrupt")
    return info


def finished_run(folder: Path) -> dict[str, Any]:
    """The manifest of a finished run folder, after checking that it is one: not a
    ``.partial`` folder, its manifest readable, and ``series.csv`` and ``summary.csv``
    of the size and SHA-256 it records. Raises RunFolderError saying why not."""
    folder = Path(folder)
    if is_partial(folder.resolve()):
        state = ("a run is writing it now" if being_written(folder)
                 else "left by a run that was killed while writing; delete it")
        raise RunFolderError(f"{folder}: an unfinished run folder ({state}); give a "
                             "finished one")
    info = read_manifest(folder)
    check_recorded_files(folder, info, "run folder")
    return info


def check_recorded_files(folder: Path, info: dict[str, Any], kind: str = "results folder"
                         ) -> None:
    """Every file the manifest records (``files``), of the size and SHA-256 it records;
    a RunFolderError naming the first that is not. Folders written before manifests
    recorded their files have no ``files`` and pass."""
    recorded = info.get("files")
    if recorded is None:
        return
    if not isinstance(recorded, dict):
        raise RunFolderError(f"{folder / 'manifest.json'}: files: not a table of file "
                             f"sizes and hashes; the {kind} is corrupt")
    for name, expected in recorded.items():
        path = folder / name
        if not path.is_file():
            raise RunFolderError(f"{path}: missing; the {kind} is incomplete")
        actual = file_record(path)
        if not isinstance(expected, dict) or actual != {k: expected.get(k) for k in actual}:
            size = expected.get("bytes") if isinstance(expected, dict) else None
            raise RunFolderError(f"{path}: {actual['bytes']} bytes and SHA-256 "
                                 f"{actual['sha256'][:12]}... but the manifest records "
                                 f"{size} bytes and another hash: the file is truncated "
                                 "or changed")


def load_run(folder: Path) -> tuple[dict[str, Any], list[pd.DataFrame]]:
    """A run folder's manifest and its run frames (date-indexed), in draw then
    replicate order (a folder without a ``draw`` column is one draw).

    ``series.csv`` must hold every run's every week (from the manifest's run settings)
    with numbers in every output column: a truncated or corrupt file is a
    RunFolderError naming it.
    """
    folder = Path(folder)
    info = read_manifest(folder)
    path = folder / "series.csv"

    def corrupt(why: str) -> RunFolderError:
        return RunFolderError(f"{path}: {why}; the run folder is corrupt or incomplete")

    try:
        long = pd.read_csv(path, parse_dates=["date"])
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as exc:
        raise corrupt(f"cannot be read ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    if "replicate" not in long.columns:
        raise corrupt("no replicate column")
    if "draw" not in long.columns:
        long["draw"] = 0
    if not pd.api.types.is_datetime64_any_dtype(long["date"]) or long["date"].isna().any():
        raise corrupt("a date that is not a date")
    bad = [c for c in long.columns if c != "date" and not pd.api.types.is_numeric_dtype(long[c])]
    if bad:
        raise corrupt(f"column {bad[0]} holds a value that is not a number")
    run = info["run"]
    try:
        weeks = len(calendar.week_starts(dt.date.fromisoformat(str(run["start"])),
                                         dt.date.fromisoformat(str(run["end"]))))
        runs = int(run.get("runs", run["replicates"]))
    except (ValueError, TypeError, MpsimError):
        raise RunFolderError(f"{folder / 'manifest.json'}: run start, end or replicates "
                             "unreadable; the run folder is corrupt") from None
    if long[["draw", "replicate"]].isna().any().any():
        raise corrupt("a blank draw or replicate")
    counts = long.groupby(["draw", "replicate"]).size()
    if len(counts) != runs or (counts != weeks).any():
        raise corrupt(f"{len(long)} rows, expected {runs} runs x {weeks} weeks "
                      f"= {runs * weeks}")
    label_columns = [c for c in ("draw", "member", "replicate") if c in long.columns]
    frames = [g.drop(columns=label_columns).set_index("date")
              for _, g in long.groupby(["draw", "replicate"], sort=True)]
    return info, frames
