"""Make a finished calibration the model's baseline.

    python scripts/adopt_calibration.py results/calibration/<id>

Writes ``model/calibrated.toml`` with the calibration's best parameter values; the
model then uses them as defaults, and each one's source says "calibrated" with the
calibration's id (``mpsim params`` shows it). Regenerates nothing else: afterwards run
``python scripts/regenerate_baseline.py`` (the regression baseline moves on purpose),
the tests, and commit the calibration folder with both files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "model" / "calibrated.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make a finished calibration the baseline.")
    parser.add_argument("calibration", type=Path, help="a finished results/calibration/<id> folder")
    parser.add_argument("--target", type=Path, default=TARGET,
                        help=f"file to write (default: {TARGET.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    best_file = args.calibration / "best_parameters.json"
    if not best_file.is_file():
        print(f"adopt_calibration: error: {args.calibration}: not a finished calibration "
              "(no best_parameters.json)", file=sys.stderr)
        return 2
    best = json.loads(best_file.read_text())
    folder = args.calibration.resolve()
    try:
        shown = folder.relative_to(ROOT)
    except ValueError:
        shown = folder
    lines = ["# The baseline's calibrated parameter values, written by scripts/adopt_calibration.py.",
             "# model/params.py applies them over its defaults and names this calibration as",
             "# their source. Remove the file to return to the uncalibrated defaults.",
             f'calibration_id = "{folder.name}"', f'results = "{shown}"',
             f"loss = {best['loss']!r}", "", "[values]"]
    lines += [f'"{name}" = {float(value)!r}' for name, value in best["parameters"].items()]
    args.target.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.target}; now run: python scripts/regenerate_baseline.py, then the tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
