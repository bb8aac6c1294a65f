"""Every benchmark in one run, one table after another: the figures issue-style targets
ask for, side by side, from one commit on one machine.

1. Rule 6 (users' daily use): the model against the idiomatic mesa reference and the
   bare-numpy reference (``bench_step.py``).
2. The whole baseline: wall time and peak memory per size (``bench_scale.py``).
3. Calibration-loss evaluations per second with 1 and 2 workers
   (``bench_calibration.py``).

Each part runs as its own script, in a process of its own, with the sizes passed
through. The defaults take
about half an hour on two cores, most of it the 10,000,000-user baseline and the mesa
reference at 1,000,000 users; ``--quick`` runs small sizes in a few minutes, to check
that everything works.

Example::

    .venv/bin/python benchmarks/bench_all.py --quick
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = {"step": [10_000, 100_000, 1_000_000], "mesa_max": 1_000_000,
        "scale": [100_000, 1_000_000, 10_000_000], "points": 60}
QUICK = {"step": [10_000, 100_000], "mesa_max": 100_000, "scale": [100_000], "points": 12}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the step, scale and calibration benchmarks one after another "
                    "and print their tables.")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes only, a few minutes (default: the full sizes)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repeats of the step benchmark (default: %(default)s)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    parts = [
        ("1. Rule 6, users' daily use: model, mesa reference, numpy reference",
         "bench_step.py", ["--sizes", *map(str, sizes["step"]), "--repeats", str(args.repeats),
                           "--mesa-max", str(sizes["mesa_max"])]),
        ("2. The whole baseline: wall time and peak memory",
         "bench_scale.py", ["--sizes", *map(str, sizes["scale"])]),
        ("3. Calibration-loss evaluations per second",
         "bench_calibration.py", ["--points", str(sizes["points"]), "--workers", "1", "2"]),
    ]
    for title, script, part_args in parts:
        print(f"\n## {title}\n", flush=True)
        # A process of its own per part: a forked child inherits its parent's peak
        # memory, so the mesa reference of part 1 would inflate part 2's figures.
        code = subprocess.run([sys.executable, str(HERE / script), *part_args]).returncode
        if code:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
