"""The backtest: fit to the figures up to a date, forecast the later ones, score both.

``mpsim backtest --until 2019-02-28`` (or :func:`backtest`):

1. reads the figures (``--data``, one or more targets files; default the calibration
   file's ``data``) and splits them at ``--until``: a figure counts as known from its
   date (``YYYY-MM`` figures are dated the 15th); the figures dated up to it are
   written to ``figures_until_<DATE>.csv`` in the backtest's folder;
2. calibrates on those alone (``calibration.calibrate.calibrate``, into
   ``<backtest>/calibration/<id>/``), or reuses a finished calibration folder
   (``--calibration``);
3. simulates the calibration's posterior ensemble (``ensemble.csv``; a calibration
   without one is used as a one-member ensemble of its best point, and the manifest
   says so): ``D`` members drawn by ``Ensemble.draw(D, seed)``, each run with ``R``
   replicate seeds, run ``d R + r`` taking child ``d R + r`` of
   ``SeedSequence(seed)``, from the scenario's start to the last later figure, every
   run with the scenario's parameters and the member's values over them (as in the
   calibration); the model size is the calibration's (``agents``, ``merchant_agents``);
4. measures every later figure the model produces in every run
   (``calibration.data.simulated_values``) and scores the forecast, the quantiles
   over all ``D x R`` runs, beside the two naive forecasters of
   :mod:`calibration.naive` fitted to the same known figures, with the scores of
   :mod:`calibration.scoring` (log scale; bounds scored only by whether they are met).

It writes ``<out>/backtest/<id>/``:

* ``scores.csv``: one row per later figure per forecaster (``model``, ``line``,
  ``logistic``): the figure, the forecast's median and 5/25/75/95% quantiles,
  ``abs_log_error``, ``wis``, ``in50``, ``in90``, ``bound_met``, ``bound_shortfall``,
  the horizon in years after ``--until`` and how the forecast was made (``used``);
* ``summary.csv``: per forecaster, over all series (``series = all``) and per series,
  on the figures that forecaster reaches (``subset = own``) and on those every
  forecaster reaches (``subset = common``): the count of exact figures, the mean
  ``abs_log_error`` and WIS and the 50%/90% coverage over them, the count of bounds and
  the share met, and ``in90_all``, the share of all figures (exact and bounds) whose
  90% interval holds them;
* ``fans.png``: one panel per series with a later figure: the forecast's median, its
  25-75% and 5-95% fans, the known and the later figures, and the naive curves;
* ``manifest.json``: ``--until``, the data files (with their SHA-256), the calibration
  folder used, the ensemble and the members drawn, the run settings and seeds, the
  naive forecasters' fits, git commit, versions, command and times;
* ``figures_until_<DATE>.csv`` and, unless ``--calibration`` was given,
  ``calibration/<id>/``.

The folder is written as ``.<id>.partial`` and renamed when complete; ``--out`` is
checked before any work; an existing folder is never overwritten. An interrupted
backtest keeps nothing (its calibration included).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import ensemble as ensembles
from model import executor as executors
from model import scenarios
from model.errors import DataError, Interrupted, MpsimError, RunFolderError
from model.inputs import read_json, read_text
from model.model import simulate
from model.runner import (RESULTS_DIR, _json_default, check_output_dir, file_record,
                          git_commit, is_partial, new_run_dir, versions, write_atomically)

from . import naive, scoring
from .data import (FESTIVAL_WEEK, YOY_ANNUAL_MEAN, Target, load_targets, parse_date,
                   simulated_values)

FORECASTERS = ("model", "line", "logistic")
#: Quantile levels written to scores.csv beside the median.
SHOWN = (0.05, 0.25, 0.75, 0.95)


class BacktestError(MpsimError, ValueError):
    """A backtest that cannot be run as asked."""


@dataclass
class BacktestResult:
    path: Path
    scores: pd.DataFrame
    summary: pd.DataFrame


def parse_until(text: str | dt.date) -> dt.date:
    """``--until`` as a date: ``YYYY-MM-DD``."""
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise BacktestError(f"--until {text!r}: not a date; expected YYYY-MM-DD, e.g. "
                            "2019-02-28") from None


def split_figures(targets: list[Target], until: dt.date, where: str
                  ) -> tuple[list[Target], list[Target]]:
    """The figures dated up to ``until`` and those after it; an error if either is empty."""
    known = [t for t in targets if t.date <= until]
    later = [t for t in targets if t.date > until]
    dates = sorted(t.date for t in targets)
    if not known:
        raise BacktestError(f"--until {until}: before every figure of {where} (the first is "
                            f"dated {dates[0]}); expected a date on or after it, so that "
                            "there is something to fit")
    if not later:
        raise BacktestError(f"--until {until}: no figure of {where} is dated after it (the "
                            f"last is dated {dates[-1]}); expected a date before it, so that "
                            "there is something to score")
    return known, later


def write_known_rows(files: list[Path], until: dt.date, path: Path) -> int:
    """Every row of ``files`` dated up to ``until``, as one targets file (columns: the
    union of the files', in order of appearance, plus ``data_file``); returns the count."""
    header: list[str] = []
    rows: list[dict[str, str]] = []
    for source in files:
        text = read_text(source, "targets file (CSV)", DataError)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for column in reader.fieldnames or []:
            if column.strip() and column.strip() not in header:
                header.append(column.strip())
        for row in reader:
            cells = {(k or "").strip(): (v or "").strip() for k, v in row.items()
                     if not isinstance(v, list)}
            date = parse_date(cells.get("date", ""))
            if date is not None and date <= until:
                rows.append({**cells, "data_file": str(source)})
    with path.open("w", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=[*header, "data_file"], extrasaction="ignore")
        out.writeheader()
        out.writerows(rows)
    return len(rows)


# --- the calibration and its ensemble -------------------------------------------------


def read_calibration(folder: Path) -> dict[str, Any]:
    """A finished calibration folder's manifest; a one-line error for anything else."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"--calibration {folder}: no such folder; expected a finished "
                             "calibration folder (results/calibration/<id>)")
    if is_partial(folder.resolve()):
        raise RunFolderError(f"--calibration {folder}: an unfinished calibration (.partial); "
                             "give a finished one")
    if not (folder / "manifest.json").is_file():
        raise RunFolderError(f"--calibration {folder}: not a calibration folder (no "
                             "manifest.json)")
    info = read_json(folder / "manifest.json", "calibration manifest", RunFolderError)
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise RunFolderError(f"{folder / 'manifest.json'}: not a calibration manifest "
                             "(no config); expected the manifest mpsim calibrate writes")
    if not (folder / "ensemble.csv").is_file() and not isinstance(
            info.get("best_parameters"), dict):
        raise RunFolderError(f"--calibration {folder}: neither ensemble.csv nor "
                             "best_parameters in its manifest; nothing to forecast with")
    return info


def calibration_ensemble(folder: Path, best: dict[str, float]
                         ) -> tuple[ensembles.Ensemble, str]:
    """The calibration's ensemble (its ``ensemble.csv``), or its best point ``best`` as
    a one-member ensemble; and which of the two it is."""
    path = Path(folder) / "ensemble.csv"
    if path.is_file():
        return ensembles.read(path), "ensemble.csv"
    names = tuple(best)
    ens = ensembles.Ensemble(names, np.array([[float(best[n]) for n in names]]),
                             np.array([1.0]), np.array([0]), 0,
                             f"{folder} best parameters")
    return ens, "one-member ensemble of the best point (the calibration has no ensemble.csv)"


# --- simulation ---------------------------------------------------------------------


def run_end(targets: list[Target], horizon_end: dt.date) -> dt.date:
    """The last day the later figures need: a figure's week, or the end of its year for
    a Spring Festival or a year-over-year figure."""
    needed = [dt.date(t.date.year, 12, 31) if t.spec.read in (FESTIVAL_WEEK, YOY_ANNUAL_MEAN)
              else t.date + dt.timedelta(days=7) for t in targets]
    return min(max(needed), horizon_end)


def _simulate(task) -> pd.DataFrame:
    params, run, seed = task
    return simulate(params, agents=run["agents"], merchant_agents=run["merchant_agents"],
                    start=run["start"], end=run["end"], seed=seed)


# --- scoring ------------------------------------------------------------------------


def score_rows(later: list[Target], simulated: np.ndarray, forecasters: list[naive.Forecaster],
               until: dt.date, model_used: str) -> pd.DataFrame:
    """scores.csv: every later figure, every forecaster."""
    rows = []
    for k, target in enumerate(later):
        forecasts = [("model", scoring.sample_quantiles(simulated[:, k]), model_used)]
        for forecaster in forecasters:
            quantiles, curve = forecaster.quantiles(target)
            used = curve.used if curve is not None else "no exact figure of the series to fit"
            forecasts.append((forecaster.method, quantiles, used))
        for name, quantiles, used in forecasts:
            scores = scoring.score_figure(quantiles, target.value, target.kind, target.unit)
            rows.append({
                "forecaster": name, "label": target.label, "date": target.date.isoformat(),
                "platform": target.platform, "series": target.series, "unit": target.unit,
                "kind": target.kind, "weight": target.weight, "reported": target.value,
                "median": quantiles[0.5],
                **{f"p{round(100 * lv):02d}": quantiles[lv] for lv in SHOWN},
                **scores,
                "horizon_years": round((target.date - until).days / 365.25, 3),
                "used": used, "line": target.row, "source": target.source})
    return pd.DataFrame(rows)


def _mean(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """summary.csv (module docstring)."""
    reached = scores.assign(ok=np.isfinite(scores["median"].astype(float)))
    by_figure = reached.groupby(["label", "line"])["ok"].all()
    common = {key for key, ok in by_figure.items() if ok}
    rows = []
    scopes = [("all", scores)] + [(f"{p} {s}", g) for (p, s), g in
                                  scores.groupby(["platform", "series"], sort=True)]
    for scope, group in scopes:
        for subset in ("own", "common"):
            part = group if subset == "own" else group[[
                (label, line) in common for label, line in zip(group["label"], group["line"])]]
            for name in FORECASTERS:
                mine = part[(part["forecaster"] == name)
                            & np.isfinite(part["median"].astype(float))]
                exact = mine[mine["kind"] == "exact"]
                bounds = mine[mine["kind"] != "exact"]
                rows.append({
                    "forecaster": name, "series": scope, "subset": subset,
                    "exact_figures": len(exact),
                    "mean_abs_log_error": _mean(exact["abs_log_error"]),
                    "mean_wis": _mean(exact["wis"]),
                    "cover50": _mean(exact["in50"]), "cover90": _mean(exact["in90"]),
                    "bounds": len(bounds), "bounds_met": _mean(bounds["bound_met"]),
                    "in90_all": _mean(mine["in90"]),
                    "figures_not_reached": int((group["forecaster"] == name).sum()
                                               - len(mine)) if subset == "own" else 0})
    return pd.DataFrame(rows)


# --- the backtest -------------------------------------------------------------------


def backtest(until: str | dt.date, *, data: list[str | Path] | None = None,
             config: str | Path | None = None, budget: int | None = None,
             calibration: str | Path | None = None, draws: int | None = None,
             replicates: int | None = None, seed: int | None = None,
             workers: int | None = None, dask_address: str | None = None,
             out: Path | None = None, progress: bool = True) -> BacktestResult:
    """Run a backtest (module docstring) and write ``<out>/backtest/<id>/``."""
    from .calibrate import calibrate, load_config

    until = parse_until(until)
    check_output_dir(out)
    if calibration is not None and (config is not None or budget is not None):
        flag = "--config" if config is not None else "--budget"
        raise BacktestError(f"{flag}: not allowed with --calibration {calibration}, which "
                            "reuses a finished calibration; give one or the other")
    reused = read_calibration(Path(calibration)) if calibration is not None else None
    base = load_config(config, budget=budget)
    files = [Path(p) for p in data] if data else [base.data]
    settings = reused["config"] if reused is not None else base.as_dict()
    scenario = scenarios.load(settings["scenario"],
                              where=f"{calibration or base.path}: scenario")
    start, horizon_end = scenario.run["start"], scenario.run["end"]
    targets, unused = [], []
    for path in files:
        loaded = load_targets(path, start=start, end=horizon_end)
        targets += loaded.targets
        unused += [(str(path), line, why) for line, why in loaded.unused]
    where = ", ".join(map(str, files))
    known, later = split_figures(targets, until, where)
    draws = draws or int(scenario.run.get("draws", 20))
    replicates = replicates or int(scenario.run["replicates"])
    seed = base.seed if seed is None else seed
    run = {"start": start, "end": run_end(later, horizon_end),
           "agents": int(settings.get("agents", base.agents)),
           "merchant_agents": int(settings.get("merchant_agents", base.merchant_agents)),
           "draws": draws, "replicates": replicates, "seed": seed}
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    commit = git_commit()  # the code as it was when the backtest started
    final = new_run_dir((out or RESULTS_DIR) / "backtest", started)
    outcome: dict[str, Any] = {}

    def write(folder: Path) -> None:
        known_file = folder / f"figures_until_{until.isoformat()}.csv"
        rows_known = write_known_rows(files, until, known_file)
        if reused is None:
            fit_config = load_config(config, data=known_file, budget=budget)
            try:
                # the first wave starts from the hand-set defaults: the adopted
                # calibration has seen the figures this backtest forecasts
                result = calibrate(fit_config, workers=workers, dask_address=dask_address,
                                   out=folder, progress=progress, uncalibrated_start=True)
            except KeyboardInterrupt as exc:
                signum = exc.signum if isinstance(exc, Interrupted) else 2
                raise Interrupted(signum, "backtest interrupted; nothing was kept, its "
                                  "calibration included (a --resume hint above does not "
                                  "apply); calibrate apart and pass --calibration to keep "
                                  "one") from None
            cal_folder, best = Path(result.path), result.best
            cal_info = read_json(cal_folder / "manifest.json", "calibration manifest")
            cal_record = str(cal_folder.relative_to(folder))
        else:
            cal_folder, cal_info = Path(calibration), reused
            best = reused.get("best_parameters") or {}
            cal_record = str(cal_folder.resolve())
        ens, how = calibration_ensemble(cal_folder, best)
        members = ens.draw(draws, seed)
        seeds = np.random.SeedSequence(seed).spawn(draws * replicates)
        params = [{**scenario.overrides, **ens.overrides(members[d])}
                  for d in range(draws) for _ in range(replicates)]
        tasks = [(p, run, s) for p, s in zip(params, seeds)]
        with executors.executor(min(workers or executors.default_workers(), len(tasks)),
                                dask_address) as pool:
            frames = executors.run_tasks(_simulate, tasks, pool, desc="backtest",
                                         progress=progress)
        simulated = np.vstack([simulated_values([f], later, p) for f, p in zip(frames, params)])
        forecasters = [naive.fit_forecaster(m, known) for m in naive.METHODS]
        used = f"ensemble: {draws} draws x {replicates} replicates ({how})"
        scores = score_rows(later, simulated, forecasters, until, used)
        summary = summarise(scores)
        scores.to_csv(folder / "scores.csv", index=False, float_format="%.6g")
        summary.to_csv(folder / "summary.csv", index=False, float_format="%.6g")
        from .backtest_plot import plot_backtest

        plot_backtest(folder / "fans.png", frames, params, known, later, forecasters, until,
                      scores)
        recorded = {name: file_record(folder / name) for name in
                    ("scores.csv", "summary.csv", known_file.name)}
        info = {
            "backtest_id": final.name, "until": until.isoformat(),
            "data": [{"path": str(p), **file_record(p)} for p in files],
            # the calibration's own manifest names this file by its path while it was
            # written, inside the .partial folder
            "known_figures_file": known_file.name, "known_rows": rows_known,
            "figures": {"known": len(known), "later": len(later),
                        "unused_rows": [{"file": f, "line": line, "reason": why}
                                        for f, line, why in unused]},
            "calibration": {"folder": cal_record, "reused": reused is not None,
                            "calibration_id": cal_info.get("calibration_id"),
                            "config": cal_info.get("config")},
            "ensemble": {"source": how, "members_in_file": len(ens),
                         "file": (f"{cal_record}/ensemble.csv" if how == "ensemble.csv"
                                  else f"{cal_record}: best parameters"),
                         "effective_size": round(ens.effective_size(), 1),
                         "members": members, "parameters": list(ens.names)},
            "scenario": scenario.name, "run": run,
            "seeds": {"root": seed, "members": "model.ensemble.Ensemble.draw(draws, root)",
                      "runs": "numpy.random.SeedSequence(root).spawn(draws x replicates); "
                              "draw d, replicate r uses child d x replicates + r"},
            "naive": {f.method: {"sigma_log_per_root_year": f.sigma,
                                 "errors_measured": f.errors_measured,
                                 "fits": {f"{p} {s}": {"used": c.used, "points": c.points,
                                                       "coefficients": c.coefficients}
                                          for (p, s), c in f.fits.items()}}
                      for f in forecasters},
            "files": recorded, "git": commit, "versions": versions(),
            "command": sys.argv, "started_utc": started.isoformat(timespec="seconds"),
            "wall_seconds": round(time.perf_counter() - clock, 1)}
        (folder / "manifest.json").write_text(json.dumps(info, indent=2,
                                                         default=_json_default))
        outcome.update(scores=scores, summary=summary)

    path = write_atomically(final, write)
    return BacktestResult(path, outcome["scores"], outcome["summary"])

