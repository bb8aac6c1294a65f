"""Running a scenario's replicates and writing a results folder.

A run writes ``<out>/<scenario>/<run-id>/``:

* ``series.csv``   every output at every weekly step, one row per (replicate, date);
* ``summary.csv``  key outcomes at key dates: mean and 90% interval over replicates;
* ``manifest.json`` what produced it: scenario, resolved parameters, seeds, versions,
  git commit, command line, start time and wall time;
* ``*.png``        the plots (``model/plots.py``), redrawn any time by ``mpsim plot``.

The folder is written under a hidden ``.partial`` name and renamed only when
complete, so a failed or interrupted run leaves nothing that looks finished, and an
existing run is never overwritten.

Replicate seeds come from ``numpy.random.SeedSequence(seed).spawn(replicates)``: the
same root seed gives the same replicate seeds in every scenario, so comparisons
between scenarios are paired replicate by replicate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import executor as executors
from .errors import ResultsExistError
from .model import OUTPUTS, simulate
from .params import PARAMS, check_run_setting
from .scenarios import Scenario

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "results"
UNITS = {name: unit for name, unit, _ in OUTPUTS}


def replicate_seeds(seed: int, replicates: int) -> list[np.random.SeedSequence]:
    """The replicate seeds of a run: children of one root ``SeedSequence``."""
    return np.random.SeedSequence(seed).spawn(replicates)


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
                        progress: bool = True) -> list[pd.DataFrame]:
    """Every replicate's output frame, in replicate order."""
    seeds = replicate_seeds(run["seed"], run["replicates"])
    tasks = [(scenario.overrides, run, s) for s in seeds]
    return executors.run_tasks(_replicate, tasks, pool, desc=scenario.name, progress=progress)


def stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Replicate frames as one long frame with a ``replicate`` column."""
    return pd.concat([f.assign(replicate=i) for i, f in enumerate(frames)]).reset_index()


def key_steps(frame: pd.DataFrame) -> list[int]:
    """Steps summarised: the last step of each year from 2017, and the 2019 Spring
    Festival week (the reported peak)."""
    index = frame.index
    years = sorted({d.year for d in index if d.year >= 2017})
    steps = [int(np.flatnonzero(index.year == y)[-1]) for y in years]
    festival = frame["all.spring_festival"].to_numpy() == 1
    steps += [int(i) for i in np.flatnonzero(festival) if index[i].year == 2019]
    return sorted(set(steps))


def summarise(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean and 90% interval over replicates of every output at the key dates."""
    cube = np.stack([f.to_numpy() for f in frames])  # replicate x step x output
    index = frames[0].index
    rows = []
    festival = frames[0]["all.spring_festival"].to_numpy() == 1
    for j, name in enumerate(frames[0].columns):
        for i in key_steps(frames[0]):
            values = cube[:, i, j]
            values = values[~np.isnan(values)]
            if not values.size:
                continue
            rows.append({"output": name, "unit": UNITS.get(name, ""),
                         "date": index[i].date().isoformat(),
                         "spring_festival_week": bool(festival[i]),
                         "mean": values.mean(), "p05": np.quantile(values, 0.05),
                         "p95": np.quantile(values, 0.95), "replicates": values.size})
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
                  "replicates": "numpy.random.SeedSequence(root).spawn(replicates); "
                                "replicate i uses child i",
                  "spawn_keys": [list(s.spawn_key) for s in replicate_seeds(run["seed"],
                                                                            run["replicates"])]},
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


def write_atomically(final: Path, write) -> Path:
    """Call ``write(folder)`` on a hidden partial folder, then rename it to ``final``."""
    if final.exists():
        raise ResultsExistError(f"{final}: already exists; results are never overwritten")
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name}.partial"
    try:
        partial.mkdir()  # exclusive: a run writing the same name already owns it
    except FileExistsError:
        raise ResultsExistError(f"{partial}: another run is writing this folder; "
                                "results are never overwritten") from None
    try:
        write(partial)
        if final.exists():  # os.rename would replace an empty folder
            raise ResultsExistError(f"{final}: already exists; results are never overwritten")
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def run_scenario(scenario: Scenario, *, replicates: int | None = None, seed: int | None = None,
                 agents: int | None = None, workers: int | None = None,
                 dask_address: str | None = None, out: Path | None = None,
                 plots: bool = True, progress: bool = True, pool=None) -> RunResult:
    """Run a scenario's replicates and write its results folder; return where.

    ``pool`` is an open executor (``model.executor.executor``) to share between
    several runs; without it the run opens its own.
    """
    run = run_settings(scenario, replicates=replicates, seed=seed, agents=agents)
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    if pool is None:
        with executors.executor(min(workers or executors.default_workers(), run["replicates"]),
                                dask_address) as own_pool:
            frames = simulate_replicates(scenario, run, own_pool, progress=progress)
    else:
        frames = simulate_replicates(scenario, run, pool, progress=progress)
    wall = time.perf_counter() - clock
    final = new_run_dir((out or RESULTS_DIR) / scenario.name, started)

    def write(folder: Path) -> None:
        stack(frames).to_csv(folder / "series.csv", index=False, float_format="%.6g")
        summarise(frames).to_csv(folder / "summary.csv", index=False, float_format="%.6g")
        info = manifest(scenario, run, started, wall, {"run_id": final.name})
        (folder / "manifest.json").write_text(json.dumps(info, indent=2, default=_json_default))
        if plots:
            from .plots import plot_run
            plot_run(folder)

    return RunResult(write_atomically(final, write), frames, run)


def paired_differences(runs: list[tuple[str, list[pd.DataFrame]]]) -> pd.DataFrame:
    """Each scenario minus the first, replicate by replicate, at the key dates."""
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
                rows.append({"scenario": name, "baseline": base_name, "output": column,
                             "unit": UNITS.get(column, ""), "date": index[i].date().isoformat(),
                             "mean_difference": values.mean(),
                             "p05": np.quantile(values, 0.05), "p95": np.quantile(values, 0.95),
                             "replicates": values.size})
    return pd.DataFrame(rows)


def compare(items: list[str | Path], *, replicates: int | None = None, seed: int | None = None,
            agents: int | None = None, workers: int | None = None,
            dask_address: str | None = None, out: Path | None = None,
            progress: bool = True) -> Path:
    """Compare scenarios (run now, each saved as a run) or finished run folders.

    Runs are paired by replicate: they must share the root seed, replicate count and
    agent count. Writes ``<out>/compare/<id>/`` with the paired differences at key
    dates and the overlay and difference plots.
    """
    from . import scenarios as scenario_files
    from .errors import MpsimError
    from .plots import plot_compare

    if len(items) < 2:
        raise MpsimError("compare: give at least two scenarios or run folders")
    started = dt.datetime.now(dt.timezone.utc)
    # (name, label for messages, finished run folder or None, scenario or None, settings)
    plans: list[tuple[str, str, Path | None, Scenario | None, dict[str, Any]]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            run = read_manifest(path)["run"]
            plans.append((path.parent.name, f"run folder {path}", path, None, run))
        else:
            scenario = scenario_files.load(item)
            run = run_settings(scenario, replicates=replicates, seed=seed, agents=agents)
            plans.append((scenario.name, f"scenario {scenario.name}", None, scenario, run))
    paired = ("seed", "replicates", "agents", "start", "end")
    settings = [{k: plan[4][k] for k in paired} for plan in plans]
    # as text: a run folder's manifest holds the dates as text
    compared = [{k: str(v) for k, v in setting.items()} for setting in settings]
    for plan, setting, text in zip(plans[1:], settings[1:], compared[1:]):  # before anything runs
        if text != compared[0]:
            raise MpsimError(f"compare: {plan[1]} has {setting} but {plans[0][1]} has "
                             f"{settings[0]}; paired comparison needs the same seed, "
                             "replicates, agents (--seed, --replicates, --agents) and "
                             "horizon ([run] start and end)")
    runs: list[tuple[str, list[pd.DataFrame]]] = []
    sources: list[str] = []
    n_tasks = max([plan[4]["replicates"] for plan in plans if plan[3] is not None] or [1])
    with executors.executor(min(workers or executors.default_workers(), n_tasks),
                            dask_address) as pool:
        for name, _, path, scenario, _ in plans:
            if scenario is None:
                frames = load_run(path)[1]
                sources.append(str(path))
            else:
                result = run_scenario(scenario, replicates=replicates, seed=seed, agents=agents,
                                      out=out, progress=progress, pool=pool)
                frames = result.frames
                sources.append(str(result.path))
            runs.append((name, frames))
    final = new_run_dir((out or RESULTS_DIR) / "compare", started)

    def write(folder: Path) -> None:
        paired_differences(runs).to_csv(folder / "differences.csv", index=False,
                                        float_format="%.6g")
        info = {"compare_id": final.name, "scenarios": [n for n, _ in runs], "runs": sources,
                "run": settings[0], "command": sys.argv, "git": git_commit(),
                "versions": versions(), "started_utc": started.isoformat(timespec="seconds")}
        (folder / "manifest.json").write_text(json.dumps(info, indent=2, default=_json_default))
        plot_compare(runs, folder)

    return write_atomically(final, write)


def read_manifest(folder: Path) -> dict[str, Any]:
    """A finished run folder's manifest; a one-line error for any other folder."""
    from .errors import MpsimError

    folder = Path(folder)
    for name in ("manifest.json", "series.csv"):
        if not (folder / name).is_file():
            kind = next((k for k, marker in (("comparison", "differences.csv"),
                                             ("sweep", "samples.csv"),
                                             ("calibration", "best_parameters.json"))
                         if (folder / marker).is_file()), None)
            what = f"a {kind} folder, not a run folder" if kind else "not a finished run folder"
            raise MpsimError(f"{folder}: {what} (no {name})")
    return json.loads((folder / "manifest.json").read_text())


def load_run(folder: Path) -> tuple[dict[str, Any], list[pd.DataFrame]]:
    """A run folder's manifest and its replicate frames (date-indexed)."""
    folder = Path(folder)
    info = read_manifest(folder)
    long = pd.read_csv(folder / "series.csv", parse_dates=["date"])
    frames = [g.drop(columns="replicate").set_index("date")
              for _, g in long.groupby("replicate", sort=True)]
    return info, frames
