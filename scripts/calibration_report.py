"""Write docs/CALIBRATION.md from a finished calibration folder.

    python scripts/calibration_report.py results/calibration/<id>

The page shows how the calibration was run, how long it took, the fitted parameters
with their profile ranges, and the fit to every reported figure, the seed figures
(tier S) first. A section headed "## What falls short" in the existing page is
written by hand; it is kept, after the seed figures, when the page is made again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "CALIBRATION.md"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


NOTES_HEADING = "## What falls short"


def hand_notes(page: str) -> list[str]:
    """The hand-written "What falls short" section of an existing page, heading included."""
    if NOTES_HEADING not in page:
        return []
    section = page.split(NOTES_HEADING, 1)[1].split("\n## ", 1)[0]
    return [NOTES_HEADING + section.rstrip(), ""]


def report(folder: Path, stages: tuple[Path, ...] = (), notes: list[str] = ()) -> str:
    """The page for calibration ``folder``; each later stage's fit rows and parameters
    replace the main one's (a stage fits parameters that feed back on nothing else).
    ``notes`` (from ``hand_notes``) go after the seed figures."""
    manifest = json.loads((folder / "manifest.json").read_text())
    fit = pd.read_csv(folder / "fit_table.csv")
    unc = pd.read_csv(folder / "uncertainty.csv")
    stage_lines = []
    stage_manifests = [json.loads((stage / "manifest.json").read_text()) for stage in stages]
    for stage, later in zip(stages, stage_manifests):
        stage_fit = pd.read_csv(stage / "fit_table.csv")
        stage_unc = pd.read_csv(stage / "uncertainty.csv").set_index("parameter")
        # a later stage's rows replace the main one's, or join them if the main stage
        # left their series out
        fit = pd.concat([fit[~fit["label"].isin(stage_fit["label"])], stage_fit],
                        ignore_index=True)
        unc = unc.set_index("parameter")
        for name, row in stage_unc.iterrows():
            unc.loc[name, row.index] = row.values
        unc = unc.reset_index()
        stage_lines += [
            f"Then calibration `{later['calibration_id']}` (file "
            f"`{Path(later['config']['config_file']).name}`, {later['evaluations']} points, "
            f"{later['wall_seconds'] / 60:.1f} minutes) fitted "
            f"{', '.join(f'`{n}`' for n in later['config']['free'])} alone, to "
            f"{', '.join(later['config']['series'] or ['every series'])}, every other "
            "parameter held at the values above. Its fit rows and parameters replace the "
            "first stage's below.", ""]
    data = Path(manifest["config"]["data"])
    if not data.is_file():  # made on another machine: look in this checkout
        data = ROOT / "calibration" / "data" / data.name
    tiers = pd.read_csv(data, dtype=str) if data.is_file() else None
    if tiers is not None and "tier" in tiers.columns:
        tier_of_line = {i + 2: t for i, t in enumerate(tiers["tier"])}
        fit["tier"] = fit["line"].map(tier_of_line).fillna("")
    else:
        fit["tier"] = ""
    config = manifest["config"]
    try:
        shown = folder.resolve().relative_to(ROOT)
    except ValueError:
        shown = folder
    lines = [
        "# Calibration of the baseline",
        "",
        f"Calibration `{manifest['calibration_id']}` (folder `{shown}`), made with "
        f"`mpsim calibrate` and the file `{Path(config['config_file']).name}`: "
        f"{len(config['free'])} free parameters fitted to {manifest['targets']} reported "
        f"figures with {config['replicates']} replicates of {config['agents']:,} user agents "
        f"per parameter point, {manifest['evaluations']} points in all "
        f"({manifest['generations']} generations of differential evolution, then a "
        f"Gauss-Newton polish). Best loss {manifest['best_loss']:.4g}. Wall time "
        f"{manifest['wall_seconds'] / 60:.1f} minutes on this machine "
        f"({manifest['versions']['platform']}, Python {manifest['versions']['python']}).",
        "",
        *stage_lines,
        "The fit below is checked at the best point on 10 fresh replicates (seeds not used "
        "by the search). Within 15% means the simulated mean is within 15% of the figure; "
        "for a lower bound, not below it.",
        "",
        "## The seed figures (tier S)",
        "",
        "The seed figures are the ones the source documents of the model report (tier S "
        "in `calibration/data/README.md`); they weigh most in the loss.",
        "",
    ]
    table_cols = ["label", "kind", "reported", "simulated_mean", "simulated_p05",
                  "simulated_p95", "relative_error", "within_15pct"]

    def table(rows: pd.DataFrame) -> list[str]:
        out = ["| figure | kind | reported | simulated mean | 90% interval | error | within 15% |",
               "|---|---|---|---|---|---|---|"]
        for _, r in rows[table_cols].iterrows():
            out.append(f"| {r['label']} | {r['kind']} | {_fmt(r['reported'])} | "
                       f"{_fmt(r['simulated_mean'])} | {_fmt(r['simulated_p05'])} to "
                       f"{_fmt(r['simulated_p95'])} | {r['relative_error']:+.1%} | "
                       f"{'yes' if r['within_15pct'] else '**no**'} |")
        return out

    seed = fit[fit["tier"] == "S"]
    lines += table(seed)
    met = int(seed["within_15pct"].sum())
    lines += ["", f"{met} of {len(seed)} seed figures are within 15%.", "", *notes,
              "## Fitted parameters", "",
              "Moved alone: how far the parameter can move, the others held, before the "
              f"loss rises {config['tolerance']:.0%} above the best (above a loss of 1e-4 if "
              "the best is lower: an error of 1% on every figure). Profile range: the same "
              "with every other free parameter re-fitted. Both come from the linear model "
              "of the errors at the best point. A parameter whose profile range spans more "
              "than half its bounds is not pinned down by the data: its value is the "
              "search's choice, not the data's. Searched near-best: the range of the "
              "evaluated points within the same tolerance: where the search and the polish "
              "evaluated near the end, not how far the data allow.", "",
              "| parameter | fitted | moved alone | profile range | searched near-best | bounds "
              "| pinned down |",
              "|---|---|---|---|---|---|---|"]
    for column in ("alone_low", "alone_high", "profile_low", "profile_high"):
        if column not in unc.columns:  # made before these ranges were computed
            unc[column] = float("nan")
    for _, r in unc.iterrows():
        lines.append(f"| `{r['parameter']}` | {_fmt(r['best'])} | {_fmt(r['alone_low'])} to "
                     f"{_fmt(r['alone_high'])} | {_fmt(r['profile_low'])} "
                     f"to {_fmt(r['profile_high'])} | {_fmt(r['near_best_low'])} "
                     f"to {_fmt(r['near_best_high'])} | {_fmt(r['bound_low'])} to "
                     f"{_fmt(r['bound_high'])} | {'yes' if r['identified'] else '**no**'} |")
    weak_files = [f / "weak_directions.csv" for f in (folder, *stages)]
    weak = pd.concat([pd.read_csv(f) for f in weak_files if f.is_file()] or [pd.DataFrame()],
                     ignore_index=True)
    if not weak.empty:
        lines += ["", "Combinations the data leave loose (`weak_directions.csv` of each "
                  "stage). Each is a direction through the best point, with each parameter "
                  "measured in units of its range; \"move\" is the length of the stretch of "
                  "that direction over which the loss stays within the tolerance, cut where a "
                  "parameter reaches a bound. A parameter moves by its loading times the "
                  "move, and the loadings' signs say which move together. Only directions "
                  "with a move over 0.5 are listed, and only loadings of at least 0.3.", ""]
        for _, r in weak.iterrows():
            lines.append(f"- {r['parameters']} (move {r['allowed_move']:.2g})")
    lines += ["", "## Every reported figure", "",
              f"{int(fit['within_15pct'].sum())} of {len(fit)} figures are within 15%. "
              "Tier A and B figures come from companies and reputable outlets, tier C "
              "from reposts (`calibration/data/README.md`).", ""]
    lines += table(fit.sort_values(["tier", "label"]))
    unused = manifest.get("unused_rows", [])
    if unused:
        lines += ["", "## Rows not fitted", ""]
        fitted_later = {series: later["calibration_id"] for later in stage_manifests
                        for series in later["config"]["series"] or []}
        for u in unused:
            later = [f" (fitted by calibration `{run}`)" for series, run in fitted_later.items()
                     if f"series {series} is in the calibration file's exclude_series"
                     in u["reason"]]
            lines.append(f"- line {u['line']}: {u['reason']}{''.join(later)}")
    lines += ["", "## Plots", "", f"![fit]({Path('..') / shown / 'fit.png'})", "",
              f"![convergence]({Path('..') / shown / 'convergence.png'})", "",
              f"![uncertainty]({Path('..') / shown / 'uncertainty.png'})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/CALIBRATION.md from a calibration.")
    parser.add_argument("calibration", type=Path, help="a finished results/calibration/<id>")
    parser.add_argument("stages", type=Path, nargs="*",
                        help="later stages' folders, as given to adopt_calibration.py")
    parser.add_argument("--target", type=Path, default=TARGET, help="file to write")
    args = parser.parse_args(argv)
    if not (args.calibration / "manifest.json").is_file():
        print(f"calibration_report: error: {args.calibration}: not a finished calibration",
              file=sys.stderr)
        return 2
    notes = hand_notes(args.target.read_text()) if args.target.is_file() else []
    args.target.write_text(report(args.calibration, tuple(args.stages), notes))
    print(f"wrote {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
