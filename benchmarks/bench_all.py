"""Every benchmark in one run, then one summary table: the figures the performance
targets ask for, side by side, from one commit on one machine.

1. Rule 8 (users use mini programs): the model against the idiomatic mesa reference
   and the bare-numpy reference (``bench_step.py``).
2. The whole baseline: wall time and peak memory per size (``bench_scale.py``).
3. Each rule's share of a run at 10,000 and 1,000,000 users (``profile_model.py``).
4. The calibration: model runs per second with 1 and 2 workers, the emulator's fit
   and predict, and the default calibration's estimated wall time
   (``bench_calibration.py``).

Each part runs as its own script, in a process of its own, with the sizes passed
through, and prints its own tables; each also writes its figures to a JSON file in a
temporary folder (``--keep DIR`` keeps them there instead), from which the summary
table at the end is made. ``--quick`` runs small sizes, to check that everything works.

Example::

    .venv/bin/python benchmarks/bench_all.py --quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
FULL = {"step": [10_000, 100_000, 1_000_000], "mesa_max": 1_000_000,
        "scale": [100_000, 1_000_000, 10_000_000], "profile": [10_000, 1_000_000],
        "points": 40, "emulator": []}
QUICK = {"step": [2_000, 10_000], "mesa_max": 10_000, "scale": [20_000],
         "profile": [2_000, 10_000], "points": 2,
         "emulator": ["--emulator-points", "60", "--predict-points", "500"]}


def parts(sizes: dict, repeats: int) -> list[tuple[str, str, str, list[str]]]:
    return [
        ("step", "1. Rule 8, users use mini programs: model, mesa reference, numpy reference",
         "bench_step.py", ["--sizes", *map(str, sizes["step"]), "--repeats", str(repeats),
                           "--mesa-max", str(sizes["mesa_max"])]),
        ("scale", "2. The whole baseline: wall time and peak memory",
         "bench_scale.py", ["--sizes", *map(str, sizes["scale"])]),
        ("profile", "3. Each rule's share of a run",
         "profile_model.py", ["--agents", *map(str, sizes["profile"])]),
        ("calibration", "4. The calibration: runs per second, emulator, estimated wall time",
         "bench_calibration.py", ["--points", str(sizes["points"]), "--workers", "1", "2",
                                  *sizes["emulator"]]),
    ]


def summary(results: dict[str, dict]) -> str:
    """One table of the headline figures of every part, with the targets."""
    from benchmarks.bench_scale import TARGETS as SCALE_TARGETS
    from benchmarks.bench_step import TARGET_OVER_MESA, TARGET_OVER_NUMPY, TARGET_SIZES

    rows = []

    def add(part, what, value, target="", met=None):
        verdict = "" if met is None else ("met" if met else "MISSED")
        rows.append(f"| {part} | {what} | {value} | {target} | {verdict} |")

    for r in results.get("step", {}).get("rows", []):
        n, aim = r["agents"], r["agents"] in TARGET_SIZES
        if "model_over_mesa" in r:
            mark = "" if "mesa_rate" in r else " (mesa extrapolated)"
            add("rule 8", f"{n:,} users: model / mesa reference", f"{r['model_over_mesa']:.0f}x{mark}",
                f">= {TARGET_OVER_MESA:g}x" if aim else "",
                r["model_over_mesa"] >= TARGET_OVER_MESA if aim else None)
        add("rule 8", f"{n:,} users: model / numpy reference", f"{r['model_over_numpy']:.2f}",
            f">= {TARGET_OVER_NUMPY:g}" if aim else "",
            r["model_over_numpy"] >= TARGET_OVER_NUMPY if aim else None)
        add("rule 8", f"{n:,} users: numpy decisions differing from the model",
            f"{r['numpy_differing_decisions']:,}", "0", r["numpy_differing_decisions"] == 0)
    for r in results.get("scale", {}).get("rows", []):
        n = r["agents"]
        seconds, gib = SCALE_TARGETS.get(n, (None, None))
        add("baseline", f"{n:,} users: process wall time", f"{r['process_s']:.1f} s",
            f"< {seconds:g} s" if seconds else "", r["process_s"] < seconds if seconds else None)
        add("baseline", f"{n:,} users: peak memory", f"{r['peak_rss_gib']:.2f} GiB",
            f"< {gib:g} GB" if gib else "", r["peak_rss_gib"] < gib if gib else None)
    for r in results.get("profile", {}).get("rows", []):
        top = sorted(r["rules_s"].items(), key=lambda kv: -kv[1])[:3]
        add("profile", f"{r['agents']:,} users: largest rules' shares of a "
            f"{r['total_s']:.1f} s run",
            ", ".join(f"{name} {100 * s / r['total_s']:.0f}%" for name, s in top))
    for r in results.get("calibration", {}).get("rows", []):
        w = r["workers"]
        add("calibration", f"{w} worker(s): model runs per second", f"{r['runs_per_s']:.2f}")
        if "emulator" in r:
            e = r["emulator"]
            add("calibration", f"{w} worker(s): emulator fit / refit / predict "
                f"{e['predict_points']:,} points",
                f"{e['fit_s']:.1f} / {e['refit_s']:.1f} / {e['predict_s']:.1f} s")
        add("calibration", f"{w} worker(s): default calibration, estimated wall time",
            f"{r['estimate']['total_s'] / 60:.0f} min")
    return "\n".join(["| part | measure | value | target | verdict |",
                      "|---|---|---:|---|---|", *rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the step, scale, profile and calibration benchmarks one after "
                    "another, print their tables and then one summary table.")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes only, to check that everything runs "
                             "(default: the full sizes)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repeats of the step benchmark (default: %(default)s)")
    parser.add_argument("--keep", type=Path,
                        help="folder for each part's JSON figures (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = {}
        for key, title, script, part_args in parts(sizes, args.repeats):
            print(f"\n## {title}\n", flush=True)
            out = folder / f"{key}.json"
            # A process of its own per part: a forked child inherits its parent's peak
            # memory, so the mesa reference of part 1 would inflate part 2's figures.
            code = subprocess.run([sys.executable, str(HERE / script), *part_args,
                                   "--json", str(out)]).returncode
            if code:
                print(f"bench_all: {script} failed (exit code {code}); its error is above",
                      file=sys.stderr)
                return code
            results[key] = json.loads(out.read_text())
    print("\n## Summary\n")
    print(summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
