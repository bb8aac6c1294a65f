"""Make a finished calibration the model's baseline.

    python scripts/adopt_calibration.py results/calibration/<id> [<id2> ...]

Writes ``model/calibrated.toml`` with each calibration's best parameter values (a
later stage's values win), and copies the last calibration's ``ensemble.csv`` to
``model/ensemble.csv``, the posterior ensemble that runs draw from; the model then uses
the best values as defaults, and each one's source says "calibrated" with the
calibration's id (``mpsim params`` shows it). Regenerates nothing else: afterwards run
``python scripts/regenerate_baseline.py`` (the regression baseline moves on purpose),
the tests, and commit the calibration folder with both files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "model" / "calibrated.toml"
ENSEMBLE = ROOT / "model" / "ensemble.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make one or more finished calibrations the baseline.")
    parser.add_argument("calibration", type=Path, nargs="+",
                        help="finished results/calibration/<id> folders, in the order they "
                             "were made: a later stage's values win")
    parser.add_argument("--target", type=Path, default=TARGET,
                        help=f"file to write (default: {TARGET.relative_to(ROOT)})")
    parser.add_argument("--ensemble", type=Path, default=ENSEMBLE,
                        help=f"where the ensemble goes (default: {ENSEMBLE.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    lines = ["# The baseline's calibrated parameter values, written by scripts/adopt_calibration.py.",
             "# model/params.py applies them over its defaults, stage by stage, and names each",
             "# value's calibration as its source. Remove the file to return to the",
             "# uncalibrated defaults."]
    for folder in args.calibration:
        best_file = folder / "best_parameters.json"
        if not best_file.is_file():
            print(f"adopt_calibration: error: {folder}: not a finished calibration "
                  "(no best_parameters.json)", file=sys.stderr)
            return 2
        best = json.loads(best_file.read_text())
        folder = folder.resolve()
        try:
            shown = folder.relative_to(ROOT)
        except ValueError:
            shown = folder
        lines += ["", "[[stage]]", f'calibration_id = "{folder.name}"', f'results = "{shown}"',
                  f"loss = {best['loss']!r}", "", "[stage.values]"]
        lines += [f'"{name}" = {float(value)!r}' for name, value in best["parameters"].items()]
    ensemble = args.calibration[-1] / "ensemble.csv"
    if ensemble.is_file():
        from model.ensemble import read

        read(ensemble)  # refuse a broken file before replacing the shipped one
        tmp = args.ensemble.with_suffix(".tmp")
        shutil.copyfile(ensemble, tmp)
        os.replace(tmp, args.ensemble)
        print(f"copied {ensemble} to {args.ensemble}")
    else:
        print(f"adopt_calibration: note: {args.calibration[-1]} has no ensemble.csv; "
              f"{args.ensemble} is left as it is", file=sys.stderr)
    args.target.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.target}; now run: python scripts/regenerate_baseline.py, then the tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
