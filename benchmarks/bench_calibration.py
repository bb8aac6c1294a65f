"""Calibration-loss evaluations per second, in process and on the local process pool.

Builds the loss of a calibration file (default: ``calibration/baseline.toml``, the
default calibration: its agents, replicates, targets and simulation window) exactly as
``mpsim calibrate`` does, draws ``--points`` parameter points inside its bounds (Latin
hypercube, fixed seed), and evaluates them all with each ``--workers`` count through
the project's executor (1 worker runs in this process; more use a spawn process pool,
as ``mpsim calibrate --workers N`` does). For each worker count it prints wall time,
evaluations per second, the speed-up over the first count, and the wall time the
calibration's budget of evaluations would take at that rate.

The pool is started and warmed up (one point per worker) before the clock starts, so
the figures are the steady rate a calibration sees. The losses must be identical
whichever worker count computed them (seeds belong to points, not to workers); the
script says so, or stops.

Example::

    .venv/bin/python benchmarks/bench_calibration.py --points 60 --workers 1 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import qmc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402


def measure(objective, points: np.ndarray, workers: int) -> tuple[float, list[float]]:
    """Seconds to evaluate every point with ``workers`` workers, and the losses."""
    from model import executor as executors

    with executors.executor(workers) as pool:
        executors.run_tasks(objective, list(points[:workers]), pool, progress=False)  # warm-up
        started = time.perf_counter()
        losses = executors.run_tasks(objective, list(points), pool, progress=False)
        return time.perf_counter() - started, losses


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Evaluate a calibration's loss at fixed random points with each worker "
                    "count; print evaluations per second.")
    parser.add_argument("--config", type=Path,
                        help="calibration file (default: calibration/baseline.toml)")
    parser.add_argument("--points", type=int, default=60,
                        help="parameter points per worker count (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to compare (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the Latin hypercube of points (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.points < 1 or any(w < 1 for w in args.workers):
        parser.error("--points and every --workers count must be at least 1")

    from calibration.calibrate import build_objective, load_config

    config = load_config(args.config)
    objective, bounds, _ = build_objective(config)
    low, high = np.array(bounds, dtype=float).T
    points = qmc.scale(qmc.LatinHypercube(d=len(bounds), seed=args.seed).random(args.points),
                       low, high)
    print(_env.header(), flush=True)
    print(f"# {config.path}: {len(objective.names)} free parameters, {len(objective.targets)} "
          f"targets, {config.agents:,} user agents, {config.replicates} replicates per point, "
          f"{objective.run['start']} to {objective.run['end']}; budget {config.budget:,} "
          f"evaluations", flush=True)

    rows, reference = [], None
    for workers in args.workers:
        print(f"# {workers} worker(s): {args.points} points ...", flush=True)
        seconds, losses = measure(objective, points, workers)
        if reference is None:
            reference = losses
        elif losses != reference:
            raise SystemExit(f"losses with {workers} workers differ from those with "
                             f"{args.workers[0]}: the executor changed the results")
        rows.append((workers, seconds, args.points / seconds))

    print()
    print("| workers | points | wall (s) | evaluations/s | speed-up | budget at this rate (min) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for workers, seconds, rate in rows:
        print(f"| {workers} | {args.points} | {seconds:.1f} | {rate:.2f} | "
              f"{rate / rows[0][2]:.2f}x | {config.budget / rate / 60:.1f} |")
    print(f"\nlosses identical across worker counts: yes ({len(reference)} points)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
