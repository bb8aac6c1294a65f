"""``report.html``: one self-contained page for a finished results folder.

:func:`write_report` works on any results folder a command writes (run, compare, sweep,
sensitivity, calibration, backtest) and on folders of kinds it does not know:

* a header saying what the folder is, from its ``manifest.json``;
* the key figures against the reported ones: a ``fit_table.csv`` if the folder has one;
  for a run, every reported figure of ``calibration/data/targets.csv`` inside the run's
  horizon against the run's simulated mean and 90% interval
  (``calibration.data.simulated_values``); for a comparison, each scenario's paired
  effect at the last year-end;
* every PNG, embedded as base64, captioned with its file name;
* the parameters that differ from the baseline (every parameter at its default,
  ``model/params.py``), with their sources;
* every other CSV as a small table (its first rows), and the manifest, collapsed.

The page has no external assets: it opens from a copied file, offline.

**Finished folders only.** A folder is refused (:class:`~model.errors.RunFolderError`,
one line) if it is a ``.partial`` folder being written or left by a killed command, has
no readable manifest, or any file its manifest records (``files``: size and SHA-256,
:func:`model.runner.file_record`) is missing or changed; a run folder is checked by
:func:`model.runner.finished_run`. ``report.html`` itself is derived from the folder,
like the plots: the manifest does not record it, so writing or rewriting it never
makes a finished folder look corrupt. It is written to a hidden temporary file in the
folder and renamed over ``report.html`` in one step, so a reader never sees half a page.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import MpsimError, RunFolderError
from .inputs import read_json

REPORT_NAME = "report.html"
#: Rows of an unknown CSV shown on the page, and at most this many columns.
TABLE_ROWS = 8
TABLE_COLUMNS = 24
#: Plots shown first, in this order; every other PNG follows by name.
PLOT_ORDER = ("overview.png", "fit.png", "compare_overlay.png", "compare_difference.png")
#: Outputs of a comparison's key-figure table.
COMPARE_KEYS = ("wechat.miniprogram_dau", "alipay.miniprogram_dau",
                "alipay.miniprogram_dau_share", "wechat.miniprogram_users_cumulative",
                "alipay.miniprogram_users_cumulative", "wechat.pay_users")
#: The year the README's comparison figures refer to.
REFERENCE_YEAR = 2020
#: Columns of a fit table, in the order shown (others are left to the CSV tables).
FIT_COLUMNS = ("label", "date", "platform", "series", "kind", "unit", "reported",
               "simulated_mean", "simulated_median", "simulated_p05", "simulated_p95",
               "relative_error", "within_15pct", "within_90pct", "inside_90pct")

# --- which folder, and is it finished --------------------------------------------------


def _recorded_files_ok(folder: Path, info: dict[str, Any]) -> None:
    """Every file the manifest records, of the size and SHA-256 it records."""
    from .runner import check_recorded_files

    check_recorded_files(folder, info, "results folder")


def finished_folder(folder: str | Path) -> dict[str, Any]:
    """The manifest of a finished results folder of any kind, after checking that it
    is one; a one-line RunFolderError saying why not."""
    from .runner import being_written, finished_run, is_partial

    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: not a folder; expected a finished results folder "
                             "(e.g. results/baseline/<run-id>)")
    if is_partial(folder.resolve()):
        state = ("a command is writing it now" if being_written(folder)
                 else "left by a command that was killed while writing; delete it")
        raise RunFolderError(f"{folder}: an unfinished results folder ({state}); give a "
                             "finished one")
    if (folder / "series.csv").is_file():
        return finished_run(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise RunFolderError(f"{folder}: not a finished results folder (no manifest.json)")
    info = read_json(path, "manifest", RunFolderError)
    if not isinstance(info, dict):
        raise RunFolderError(f"{path}: not a manifest (expected a JSON object); the folder "
                             "is corrupt")
    _recorded_files_ok(folder, info)
    return info


def folder_kind(folder: Path, info: dict[str, Any]) -> tuple[str, str]:
    """(kind, id) of a results folder: run, compare, sweep, sensitivity, calibration,
    backtest, or ``results`` for a kind this page does not know."""
    for key, kind in (("run_id", "run"), ("compare_id", "compare"), ("sweep_id", "sweep"),
                      ("sensitivity_id", "sensitivity"), ("calibration_id", "calibration"),
                      ("backtest_id", "backtest")):
        if key in info:
            return kind, str(info[key])
    parts = [p.lower() for p in folder.resolve().parts]
    for kind in ("backtest", "calibration", "sensitivity", "sweep", "compare"):
        if kind in parts[:-1]:
            return kind, folder.name
    if (folder / "series.csv").is_file():
        return "run", folder.name
    return "results", folder.name


# --- pieces of the page ------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    """A cell: numbers to 4 significant figures, blanks as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value)


def _table(frame: pd.DataFrame, classes: str = "") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text = _number(value)
            numeric = isinstance(value, (int, float, np.integer, np.floating)) \
                and not isinstance(value, (bool, np.bool_))
            cells.append(f'<td class="num">{_e(text)}</td>' if numeric else f"<td>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="{classes}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
                   - 1, 0)


def _csv_section(path: Path) -> str:
    try:
        frame = pd.read_csv(path, nrows=TABLE_ROWS)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as exc:
        return f"<h3>{_e(path.name)}</h3><p class='note'>not shown: {_e(exc)}</p>"
    rows, columns = _count_rows(path), len(frame.columns)
    shown = frame.iloc[:, :TABLE_COLUMNS]
    what = f"first {min(rows, TABLE_ROWS)} of {rows:,} rows" if rows > TABLE_ROWS else \
        f"{rows} rows"
    if columns > TABLE_COLUMNS:
        what += f", first {TABLE_COLUMNS} of {columns} columns"
    return (f"<h3>{_e(path.name)}</h3><p class='note'>{what}; the file has them all</p>"
            + _table(shown, "small"))


def _plots_section(folder: Path) -> str:
    pngs = sorted(folder.glob("*.png"),
                  key=lambda p: (PLOT_ORDER.index(p.name) if p.name in PLOT_ORDER
                                 else len(PLOT_ORDER), p.name))
    if not pngs:
        return "<p class='note'>This folder has no plots.</p>"
    parts = []
    for png in pngs:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f'<figure id="plot-{_e(png.stem)}"><img alt="{_e(png.name)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{_e(png.name)}'
                     "</figcaption></figure>")
    return "".join(parts)


def _within(simulated: float, reported: float, kind: str) -> bool:
    """The calibration's acceptance rule (calibration/calibrate.py, within_15pct):
    within 15% of an exact figure; a lower bound not undershot, an upper not exceeded."""
    if kind == "lower":
        return bool(simulated >= reported)
    if kind == "upper":
        return bool(simulated <= reported)
    return bool(reported and abs(simulated / reported - 1.0) <= 0.15)


def run_fit_table(folder: Path, info: dict[str, Any]) -> pd.DataFrame:
    """Every reported figure inside a run's horizon against the run's simulated mean and
    90% interval over every draw and replicate, with the calibration's columns."""
    import warnings

    from calibration.data import YOY_ANNUAL_MEAN, load_targets, simulated_values

    from .plots import REPORTED_FILE
    from .runner import load_run

    _, frames = load_run(folder)
    run = info["run"]
    start = dt.date.fromisoformat(str(run["start"]))
    end = dt.date.fromisoformat(str(run["end"]))
    loaded = load_targets(REPORTED_FILE, start=dt.date(2013, 1, 1), end=dt.date(2035, 12, 31))
    targets = [t for t in loaded.targets if start <= t.date <= end
               and (t.spec.read != YOY_ANNUAL_MEAN or t.date.year - 1 >= start.year)]
    if not targets:
        return pd.DataFrame()
    values = simulated_values(frames, targets, info.get("parameters"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        low, high = np.nanquantile(values, [0.05, 0.95], axis=0)
    rows = []
    for k, t in enumerate(targets):
        rows.append({"label": t.label, "date": t.date.isoformat(), "platform": t.platform,
                     "series": t.series, "kind": t.kind, "unit": t.unit, "reported": t.value,
                     "simulated_mean": mean[k], "simulated_p05": low[k],
                     "simulated_p95": high[k],
                     "relative_error": mean[k] / t.value - 1.0 if t.value else np.nan,
                     "within_15pct": (_within(mean[k], t.value, t.kind)
                                      if np.isfinite(mean[k]) else False)})
    return pd.DataFrame(rows)


#: Columns of a fit table left to the CSV itself (long text, bookkeeping).
FIT_HIDDEN = ("source", "line", "figures_file", "figures_line", "rule", "tier", "weight")


def _fit_section(fit: pd.DataFrame, source: str) -> str:
    if fit.empty:
        return f"<p class='note'>No reported figure falls inside this folder ({_e(source)}).</p>"
    columns = [c for c in FIT_COLUMNS if c in fit.columns]
    columns += [c for c in fit.columns if c not in columns and c not in FIT_HIDDEN]
    if {"date", "platform", "series"} <= set(columns) and "label" in columns:
        columns.remove("label")  # it only repeats them
    summary = ""
    for column in [c for c in fit.columns if c.startswith(("within", "inside"))]:
        met = fit[column].astype(str).str.lower().isin(("true", "1", "1.0", "yes"))
        rule = ("within 15% of the simulated mean (a lower bound: not below it; an upper "
                "bound: not above it)" if column == "within_15pct"
                else f"{column.replace('_', ' ')}")
        summary += f"<p><b>{int(met.sum())} of {len(fit)}</b> reported figures {_e(rule)}.</p>"
    return f"<p class='note'>{_e(source)}</p>{summary}" + _table(fit[columns], "fit")


def _compare_section(folder: Path) -> str:
    path = folder / "differences.csv"
    if not path.is_file():
        return ""
    diff = pd.read_csv(path)
    if diff.empty or "date" not in diff.columns:
        return ""
    dates = sorted(diff["date"].unique())
    ends = [d for d in dates if pd.Timestamp(d).month == 12 and pd.Timestamp(d).day >= 24]
    # the README's reference year, and the last year-end
    shown = sorted({d for d in ends if str(d).startswith(str(REFERENCE_YEAR))}
                   | {ends[-1] if ends else dates[-1]})
    rows = diff[diff["date"].isin(shown) & diff["output"].isin(COMPARE_KEYS)]
    keep = [c for c in ("date", "scenario", "baseline", "output", "unit", "median",
                        "mean_difference", "p05", "p95", "prob_above_zero", "runs")
            if c in rows.columns]
    return (f"<p class='note'>Each scenario minus the first at {_e(' and '.join(shown))}, "
            "paired run by run (median effect, 90% interval, probability the effect is "
            "above zero).</p>" + _table(rows[keep]))


def _json_value(value: Any) -> Any:
    """A value as a manifest holds it (dates as text, tuples as lists)."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()
                                 if isinstance(v, (dt.date, dt.datetime)) else str(v)))


def changed_parameters(values: dict[str, Any],
                       sources: dict[str, str] | None = None) -> pd.DataFrame:
    """Parameters whose value differs from the baseline (every parameter at its
    default), with the baseline value, unit and source."""
    from .params import BY_NAME

    rows = []
    for name, value in values.items():
        p = BY_NAME.get(name)
        base = _json_value(p.default) if p is not None else None
        value = _json_value(value)
        same = value == base
        if not same and isinstance(value, (int, float)) and isinstance(base, (int, float)) \
                and not isinstance(value, bool):
            same = math.isclose(float(value), float(base), rel_tol=1e-9, abs_tol=1e-12)
        if same:
            continue
        rows.append({"parameter": name, "value": _short(value),
                     "baseline": "unknown parameter" if p is None else _short(base),
                     "unit": p.unit if p is not None else "",
                     "source": (sources or {}).get(name) or (p.source if p else "")})
    return pd.DataFrame(rows, columns=["parameter", "value", "baseline", "unit", "source"])


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def _parameters_section(folder: Path, kind: str, info: dict[str, Any]) -> str:
    parts = []
    if isinstance(info.get("parameters"), dict):
        changed = changed_parameters(info["parameters"], info.get("parameter_sources"))
        label = f"scenario {info.get('scenario', '')}".strip()
        parts.append(_changed_block(label, changed))
    if kind == "compare":
        for name, run in zip(info.get("scenarios", []), info.get("runs", [])):
            try:
                run_info = read_json(Path(run) / "manifest.json", "run manifest", RunFolderError)
                changed = changed_parameters(run_info.get("parameters", {}),
                                             run_info.get("parameter_sources"))
                parts.append(_changed_block(f"scenario {name} ({run})", changed))
            except MpsimError as exc:
                parts.append(f"<p class='note'>scenario {_e(name)}: {_e(exc)}</p>")
    if isinstance(info.get("best_parameters"), dict):
        changed = changed_parameters(info["best_parameters"])
        changed["source"] = "fitted by this calibration; before it: " + changed["source"]
        parts.append(_changed_block("best point of this calibration", changed))
    if isinstance(info.get("ranges"), dict):
        frame = pd.DataFrame([{"parameter": n, "low": r[0], "high": r[1]}
                              for n, r in info["ranges"].items()
                              if isinstance(r, (list, tuple)) and len(r) == 2])
        parts.append("<h3>Ranges explored</h3>" + _table(frame))
    ens = info.get("ensemble")
    if isinstance(ens, dict) and not ens.get("point", True):
        parts.append(f"<p class='note'>Each run also draws {_e(ens.get('draws'))} parameter "
                     f"sets from the posterior ensemble {_e(ens.get('source'))} (parameters "
                     f"{_e(', '.join(ens.get('parameters', [])))}); the scenario's own "
                     "values above hold in every draw.</p>")
    return "".join(parts) or "<p class='note'>The manifest names no parameters.</p>"


def _changed_block(label: str, changed: pd.DataFrame) -> str:
    if changed.empty:
        return f"<h3>{_e(label)}</h3><p>Every parameter at its baseline value.</p>"
    return f"<h3>{_e(label)}</h3>" + _table(changed)


def _header(folder: Path, kind: str, ident: str, info: dict[str, Any]) -> tuple[str, str]:
    name = info.get("scenario") or " vs ".join(info.get("scenarios", [])) or \
        (info.get("config", {}) or {}).get("description", "")
    title = f"mpsim {kind} {ident}" + (f": {name}" if name and len(str(name)) < 80 else "")
    facts = []
    description = info.get("description") or (info.get("config", {}) or {}).get("description")
    if description:
        facts.append(("what", description))
    run = info.get("run") if isinstance(info.get("run"), dict) else {}
    if run:
        ens = info.get("ensemble")
        drawn = isinstance(ens, dict) and not ens.get("point", True)  # only runs draw
        size = [f"{run[k]:,} {label}" for k, label in (("draws", "ensemble draws"),
                ("replicates", "replicates"), ("agents", "user agents"))
                if isinstance(run.get(k), int) and (k != "draws" or drawn)]
        facts.append(("size", " × ".join(size)))
        if run.get("start") and run.get("end"):
            facts.append(("horizon", f"{run['start']} to {run['end']}"))
        if run.get("seed") is not None:
            facts.append(("seed", run["seed"]))
    for key, label in (("started_utc", "started (UTC)"), ("wall_seconds", "wall time, s"),
                       ("model_runs", "model runs")):
        if info.get(key) is not None:
            facts.append((label, info[key]))
    git = info.get("git") or {}
    if git.get("commit"):
        facts.append(("git commit", git["commit"][:12] + (" (uncommitted changes)"
                                                          if git.get("dirty") else "")))
    if info.get("command"):
        command = info["command"]
        facts.append(("command", " ".join(map(str, command)) if isinstance(command, list)
                      else command))
    facts.append(("folder", folder.resolve()))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return title, f'<table class="facts">{rows}</table>'


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em;
     margin-top: 1.8em; } h3 { font-size: 1.05em; margin-bottom: .3em; }
table { border-collapse: collapse; font-size: .85em; margin: .4em 0 1em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #f3f3f3; position: sticky; top: 0; }
table.facts th { background: #f7f7f7; width: 9em; }
table.small, table.fit { font-size: .75em; }
table.small td, table.fit td { white-space: nowrap; }
.scroll { overflow-x: auto; max-height: 36em; overflow-y: auto; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
.note { color: #555; font-size: .9em; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .8em; }
"""


def render(folder: str | Path) -> str:
    """The report page of a finished results folder, as HTML text."""
    folder = Path(folder)
    info = finished_folder(folder)
    kind, ident = folder_kind(folder, info)
    title, facts = _header(folder, kind, ident, info)
    sections = [f"<h1>{_e(title)}</h1>", facts]

    shown_csvs = set()
    key = ""
    if (folder / "fit_table.csv").is_file():
        shown_csvs.add("fit_table.csv")
        try:
            key = _fit_section(pd.read_csv(folder / "fit_table.csv"),
                               "fit_table.csv: every reported figure against the simulated "
                               "mean and its interval")
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            key = f"<p class='note'>fit_table.csv could not be read: {_e(exc)}</p>"
    elif kind == "run":
        try:
            key = _fit_section(run_fit_table(folder, info),
                               "Reported figures (calibration/data/targets.csv) inside the "
                               "run's horizon, against the run's mean and 90% interval over "
                               "every draw and replicate")
        except (MpsimError, KeyError, ValueError, OSError) as exc:
            key = f"<p class='note'>Key figures not available: {_e(exc)}</p>"
    elif kind == "compare":
        key = _compare_section(folder)
    if key:
        sections += ["<h2>Key figures against the reported ones</h2>" if kind != "compare"
                     else "<h2>Key figures: effects against the first scenario</h2>", key]

    sections += ["<h2>Plots</h2>", _plots_section(folder)]
    sections += ["<h2>Parameters that differ from the baseline</h2>",
                 _parameters_section(folder, kind, info)]

    csvs = [p for p in sorted(folder.glob("*.csv")) if p.name not in shown_csvs]
    if csvs:
        sections.append("<h2>Tables</h2>")
        sections += [_csv_section(p) for p in csvs]
    others = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
              and p.suffix not in (".png", ".csv") and p.name != REPORT_NAME]
    if others:
        rows = "".join(f"<tr><td>{_e(p.name)}</td><td class='num'>{p.stat().st_size:,}</td></tr>"
                       for p in others)
        sections.append("<h2>Other files</h2><table><thead><tr><th>file</th><th>bytes</th>"
                        f"</tr></thead><tbody>{rows}</tbody></table>")
    manifest_text = json.dumps(info, indent=2, ensure_ascii=False)
    sections.append("<h2>Manifest</h2><details><summary>manifest.json "
                    f"({len(manifest_text):,} characters)</summary><pre>{_e(manifest_text)}"
                    "</pre></details>")
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    sections.append(f"<p class='note'>Written {stamp} by mpsim (model/report.py) from the "
                    "folder's files; report.html is derived and not recorded in the "
                    "manifest.</p>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(sections) + "</body></html>\n")


def write_report(folder: str | Path) -> Path:
    """Write ``report.html`` into a finished results folder; return its path.

    Refuses a folder that is not finished (RunFolderError). The page replaces any
    earlier one in a single rename; nothing half-written is left on failure.
    """
    folder = Path(folder)
    text = render(folder)
    final = folder / REPORT_NAME
    temp = folder / f".{REPORT_NAME}.{os.getpid()}.tmp"
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final


def write_reports(folder: str | Path) -> list[Path]:
    """``report.html`` for a folder and, for a comparison, for each run folder it made
    or loaded that has none yet; return the pages written."""
    folder = Path(folder)
    written = [write_report(folder)]
    info = read_json(folder / "manifest.json", "manifest", RunFolderError)
    for run in info.get("runs", []) if isinstance(info, dict) else []:
        run = Path(run)
        if run.is_dir() and not (run / REPORT_NAME).is_file():
            written.append(write_report(run))
    return written
