"""What the default calibration costs: model runs per second, the emulator's fit and
predict, and from them an estimate of the calibration's wall time.

1. **Model runs.** The calibration problem of a calibration file (default:
   ``calibration/baseline.toml``: its agents, merchant agents, replicates' seeds,
   targets and simulation window) is built exactly as ``mpsim calibrate`` builds it
   (``calibration.calibrate.build_problem``). ``--points`` parameter points inside its
   bounds (Latin hypercube, fixed seed) are run once per replicate seed, each run one
   task, as the calibration's waves run them (``calibrate._simulate_one`` on the
   project's executor: 1 worker runs in this process, more use a spawn process pool,
   as ``mpsim calibrate --workers N`` does). The pool is started and warmed up (one run
   per worker) before the clock starts. The outputs must be identical whichever worker
   count computed them (seeds belong to runs, not to workers); the script says so, or
   stops.
2. **Emulator** (``calibration/emulator.py``), on the same pool: ``Emulator.fit`` from
   scratch on ``--emulator-points`` points x ``--emulator-params`` parameters x
   ``--emulator-targets`` targets (default 700 x 30 x 80: ``MAX_TRAINING`` points, about
   the default calibration's free parameters and targets), then a refit from those
   hyperparameters on a second set of points, as every wave after the first refits;
   then ``Emulator.predict`` at ``--predict-points`` points (in this process, as the
   calibration predicts). The outputs are synthetic: smooth functions of the points
   with a noise floor, built so that the fit keeps ``MAX_COMPONENTS`` components, the
   most a fit can cost.
3. **Estimate** of the calibration file's wall time at each worker count:
   its runs (``waves x budget/waves`` points x ``replicates``, plus ``(best_candidates +
   best_candidates / 2) x replicates`` for the best point (members and design points),
   at most ``polish x (free parameters + 1) x replicates`` for its polish,
   ``CHECK_REPLICATES`` for its fit and
   ``check_draws`` for the posterior check) at the measured rate, and the best point
   once more per replicate for the fit plots, in the main process (at the 1-worker
   rate when it was measured); one emulator fit per
   wave (the first from scratch, the others refits); and the emulator's predictions
   (``candidates`` per wave after the first, each wave's design after its fit, every
   design point again and at most ``waves x walkers x steps`` in the MCMC (each
   proposal is checked by the earlier waves' emulators until one rules it out),
   and the ``check_draws``) at the measured cost per point. Wave 1 fits fewer points than
   ``MAX_TRAINING`` when ``budget / waves`` is smaller: the estimate is then an upper
   bound there. Reading the data and fitting the app curves (seconds) are left out.

Example::

    .venv/bin/python benchmarks/bench_calibration.py --points 40 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import qmc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402


def measure_runs(problem, points: np.ndarray, pool, workers: int) -> tuple[float, np.ndarray]:
    """Seconds to run every point once per replicate seed on ``pool``, and the outputs."""
    from calibration.calibrate import _simulate_one
    from model import executor as executors

    objective = problem.objective
    tasks = [(objective, x, s) for x in points for s in objective.seeds]
    executors.run_tasks(_simulate_one, tasks[:workers], pool, progress=False)  # warm-up
    started = time.perf_counter()
    outputs = executors.run_tasks(_simulate_one, tasks, pool, progress=False)
    return time.perf_counter() - started, np.vstack(outputs)


def synthetic_outputs(points: int, params: int, targets: int, seed: int,
                      latent: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Unit-cube points and outputs: ``latent`` smooth functions of the points whose
    variances fall off slowly (so a fit keeps ``MAX_COMPONENTS``), mixed into
    ``targets`` outputs, plus a small noise floor (the replicates' noise)."""
    rng = np.random.default_rng(seed)
    structure = np.random.default_rng(12345)  # the same function for every set of points
    w = structure.normal(size=(params, latent)) * 3.0 / np.sqrt(params)
    shift = structure.normal(size=latent)
    scale = 0.85 ** np.arange(latent)
    mix = structure.normal(size=(latent, targets))
    x = rng.random((points, params))
    z = np.tanh(x @ w - w.sum(axis=0) / 2 + shift) * scale
    y = z @ mix + 0.02 * rng.normal(size=(points, targets))
    return x, y


def measure_emulator(args, pool) -> dict:
    """Seconds of a fit from scratch and of a refit (components fitted on ``pool``),
    and of a prediction at ``--predict-points`` points (in this process)."""
    from calibration.emulator import Emulator
    from model import executor as executors

    def fit_tasks(fn, tasks):
        return executors.run_tasks(fn, tasks, pool, desc="emulator", progress=False)

    dims = (args.emulator_points, args.emulator_params, args.emulator_targets)
    x1, y1 = synthetic_outputs(*dims, seed=args.seed)
    x2, y2 = synthetic_outputs(*dims, seed=args.seed + 1)
    started = time.perf_counter()
    first = Emulator.fit(x1, y1, seed=1, run_tasks=fit_tasks)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    second = Emulator.fit(x2, y2, seed=2, run_tasks=fit_tasks, previous=first)
    warm = time.perf_counter() - started
    x_new = np.random.default_rng(args.seed + 2).random((args.predict_points, args.emulator_params))
    started = time.perf_counter()
    second.predict(x_new)
    predict = time.perf_counter() - started
    return {"fit_s": cold, "refit_s": warm, "predict_s": predict,
            "components": len(second.gps), "predict_points": args.predict_points}


def estimate(config, runs_rate: float, emulator: dict | None,
             serial_rate: float | None = None) -> dict:
    """The calibration's wall time from its settings, at a runs rate (``serial_rate``
    for the runs made in the main process, default the same) and emulator cost."""
    from calibration.calibrate import CHECK_REPLICATES

    settings = config.settings()
    points = settings.waves * settings.wave_size
    runs = {"waves": points * config.replicates,
            "best point": (config.best_candidates + config.design_candidates)
            * config.replicates,
            # at most: each polish iteration runs a Jacobian (one point per free
            # parameter) and its own point, every one with each replicate seed
            "polish": config.polish * (len(config.free) + 1) * config.replicates,
            "fit check": CHECK_REPLICATES, "posterior check": config.check_draws}
    plots = config.replicates  # the best point again, in process, for the fit plots
    out = {"runs": sum(runs.values()) + plots,
           "runs_by_part": {**runs, "plots (in process)": plots},
           "runs_s": sum(runs.values()) / runs_rate + plots / (serial_rate or runs_rate)}
    if emulator is not None:
        predicted = ((settings.waves - 1) * settings.candidates + 2 * points
                     + settings.waves * max(settings.walkers, 2 * len(config.free) + 2) * settings.steps
                     + config.check_draws)
        out.update(
            fits=settings.waves,
            fits_s=emulator["fit_s"] + (settings.waves - 1) * emulator["refit_s"],
            predicted_points=predicted,
            predict_s=predicted * emulator["predict_s"] / emulator["predict_points"])
    out["total_s"] = out["runs_s"] + out.get("fits_s", 0.0) + out.get("predict_s", 0.0)
    return out


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Model runs per second at calibration size on each worker count, the "
                    "emulator's fit and predict times, and the calibration's estimated "
                    "wall time.")
    parser.add_argument("--config", type=Path,
                        help="calibration file (default: calibration/baseline.toml)")
    parser.add_argument("--points", type=int, default=40,
                        help="parameter points, each run once per replicate (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to compare (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the points (default: %(default)s)")
    parser.add_argument("--emulator-points", type=int, default=700,
                        help="training points of the emulator fits (default: %(default)s)")
    parser.add_argument("--emulator-params", type=int, default=30,
                        help="parameters of the emulator's points (default: %(default)s)")
    parser.add_argument("--emulator-targets", type=int, default=80,
                        help="outputs of the emulator's points (default: %(default)s)")
    parser.add_argument("--predict-points", type=int, default=10_000,
                        help="points the emulator predicts at (default: %(default)s)")
    parser.add_argument("--skip-emulator", action="store_true",
                        help="time the model runs only")
    parser.add_argument("--json", type=Path, help="also write the measured rows to this JSON file")
    args = parser.parse_args(argv)
    if args.points < 1 or any(w < 1 for w in args.workers):
        parser.error("--points and every --workers count must be at least 1")
    if min(args.emulator_points, args.emulator_params, args.emulator_targets,
           args.predict_points) < 2:
        parser.error("--emulator-points, --emulator-params, --emulator-targets and "
                     "--predict-points must be at least 2")

    from calibration.calibrate import build_problem, load_config
    from model import executor as executors

    config = load_config(args.config)
    problem = build_problem(config)
    objective = problem.objective
    low, high = problem.bounds.T
    points = qmc.scale(qmc.LatinHypercube(d=len(low), seed=args.seed).random(args.points),
                       low, high)
    print(_env.header(), flush=True)
    print(f"# {config.path}: {len(objective.names)} free parameters, {len(objective.targets)} "
          f"targets, {config.agents:,} user and {config.merchant_agents:,} merchant agents, "
          f"{objective.run['start']} to {objective.run['end']}; {config.replicates} replicates, "
          f"budget {config.budget:,} points in {config.waves} waves", flush=True)

    rows, reference = [], None
    for workers in args.workers:
        print(f"# {workers} worker(s): {args.points * config.replicates} runs ...", flush=True)
        with executors.executor(workers) as pool:
            seconds, outputs = measure_runs(problem, points, pool, workers)
            if reference is None:
                reference = outputs
            elif not np.array_equal(outputs, reference, equal_nan=True):
                raise SystemExit(f"bench_calibration: outputs with {workers} workers differ from "
                                 f"those with {args.workers[0]}: the executor changed the results")
            row = {"workers": workers, "runs": len(outputs), "runs_wall_s": seconds,
                   "runs_per_s": len(outputs) / seconds}
            if not args.skip_emulator:
                print(f"# {workers} worker(s): emulator fit, refit and predict ...", flush=True)
                row["emulator"] = measure_emulator(args, pool)
        rows.append(row)
    serial = next((r["runs_per_s"] for r in rows if r["workers"] == 1), None)
    for row in rows:
        row["estimate"] = estimate(config, row["runs_per_s"], row.get("emulator"), serial)

    print()
    print("| workers | runs | wall (s) | runs/s | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workers']} | {r['runs']} | {r['runs_wall_s']:.1f} | {r['runs_per_s']:.2f} | "
              f"{r['runs_per_s'] / rows[0]['runs_per_s']:.2f}x |")
    print(f"\noutputs identical across worker counts: yes ({len(reference)} runs)")
    if not args.skip_emulator:
        e0 = rows[0]["emulator"]
        print(f"\nEmulator: {args.emulator_points} points x {args.emulator_params} parameters x "
              f"{args.emulator_targets} targets, {e0['components']} components; predict at "
              f"{args.predict_points:,} points\n")
        print("| workers | fit from scratch (s) | refit (s) | predict (s) |")
        print("|---:|---:|---:|---:|")
        for r in rows:
            e = r["emulator"]
            print(f"| {r['workers']} | {e['fit_s']:.1f} | {e['refit_s']:.1f} | {e['predict_s']:.1f} |")
    est = rows[0]["estimate"]
    parts = ", ".join(f"{k} {v:,}" for k, v in est["runs_by_part"].items())
    print(f"\nEstimated wall time of {config.path.name} ({est['runs']:,} runs: {parts}"
          + (f"; {est['fits']} emulator fits; {est['predicted_points']:,} emulated points"
             if "fits" in est else "") + "), minutes:\n")
    print("| workers | runs | emulator fits | predictions | total |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        e = r["estimate"]
        print(f"| {r['workers']} | {minutes(e['runs_s'])} | "
              f"{minutes(e['fits_s']) if 'fits_s' in e else 'skipped'} | "
              f"{minutes(e['predict_s']) if 'predict_s' in e else 'skipped'} | "
              f"{minutes(e['total_s'])} |")
    if args.json:
        args.json.write_text(json.dumps({"env": _env.describe(), "config": str(config.path),
                                         "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
