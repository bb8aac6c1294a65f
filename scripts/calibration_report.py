"""Write docs/CALIBRATION.md from a finished calibration folder.

    python scripts/calibration_report.py results/calibration/<id> [--backtest results/backtest/<id>]

The page says how the calibration was run, its error model, the history-matching
waves, the MCMC sampling and the emulator's coverage, the posterior of every
free parameter and the fit to every reported figure (tier S first, then A, B, C),
with the counts within 15% and inside the ensemble's 90% interval. ``fit.png`` and
``posterior.png`` are copied to ``docs/img/calibration_fit.png`` and
``docs/img/calibration_posterior.png`` (beside the page: ``<target dir>/img``). With
``--backtest`` it adds the backtest's scores (``summary.csv``, ``scores.csv``; see
``calibration/backtest.py``) and copies its ``fans.png`` to ``docs/img/backtest_fans.png``.

Sections of the existing page headed by one of :data:`KEEP` (or by a ``--keep``
heading) are written by hand: they are kept verbatim when the page is made again, each
at its place in :data:`PLACE` (others before the images).

A folder that is not a finished calibration (or backtest) is refused with one line and
exit status 2; nothing is written then.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from calibration.likelihood import OBSERVATION_SD  # noqa: E402
from model.errors import MpsimError, RunFolderError  # noqa: E402

TARGET = ROOT / "docs" / "CALIBRATION.md"

#: Headings of the hand-written sections kept when the page is made again.
KEEP = ("## What falls short", "## Why this method")
#: Where a kept section goes: after the generated section with this heading.
PLACE = {"## Why this method": "## How it was run", "## What falls short": "## Counts"}
#: The effective size of the posterior sample the calibration aims at.
ESS_TARGET = 200
#: Tiers by weight (calibration/data/README.md), when the data file gives no tier.
TIER_OF_WEIGHT = {4.0: "S", 2.0: "A", 1.0: "B", 0.5: "C", 0.25: "C"}
TIERS = ("S", "A", "B", "C")
TIER_NAMES = {"S": "seed documents", "A": "company figures via a major outlet",
              "B": "reputable media or a named research firm",
              "C": "reposts, blogs, garbled pages"}
IMAGES = {"fit.png": "calibration_fit.png", "posterior.png": "calibration_posterior.png"}
BACKTEST_IMAGE = ("fans.png", "backtest_fans.png")
FORECASTER_NAMES = {"model": "model (posterior ensemble)", "line": "straight line",
                    "logistic": "logistic"}

MANIFEST_KEYS = ("calibration_id", "config", "waves", "sampler", "effective_size",
                 "ensemble_members", "ensemble_effective_size", "emulator_coverage_95",
                 "discrepancy", "best_loss", "within_15pct", "in_posterior_90pct", "model_runs",
                 "wall_seconds")
FIT_COLUMNS = ("label", "kind", "weight", "reported", "simulated_mean", "simulated_p05",
               "simulated_p95", "relative_error", "within_15pct", "line", "posterior_p05",
               "posterior_p50", "posterior_p95", "in_90pct", "set_by")
POSTERIOR_COLUMNS = ("parameter", "prior_low", "prior_high", "best", "p05", "p50", "p95",
                     "width_ratio", "pinned")
SUMMARY_COLUMNS = ("forecaster", "series", "subset", "exact_figures", "mean_abs_log_error",
                   "mean_wis", "cover50", "cover90", "bounds", "bounds_met")
SCORES_COLUMNS = ("forecaster", "label", "line", "kind", "median")


class ReportError(MpsimError):
    """A folder the page cannot be made from; one line saying why."""


# --- numbers ------------------------------------------------------------------------


def polish_text(manifest: dict[str, Any]) -> str:
    """What the polish of the best point did, from the manifest (empty if none ran)."""
    polish = manifest.get("polish") or {}
    if not polish.get("iterations"):
        return ""
    return (f" (this one: {polish['iterations']} Jacobians, {int(polish['runs']):,} runs, "
            f"loss on the search's seeds {float(polish['loss_before']):.4g} to "
            f"{float(polish['loss_after']):.4g}"
            + ("" if polish.get("kept") else "; the best point was kept as chosen") + ")")


def num(value: Any) -> str:
    """A figure to 3 significant figures (whole numbers from 100 up, no exponent
    between 0.001 and a million)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    if 100 <= abs(v) < 1e6:
        return f"{v:,.0f}"
    if 1e-3 <= abs(v) < 100:
        return f"{float(f'{v:.3g}'):g}"
    return f"{v:.3g}"


def reported(value: Any) -> str:
    """A reported figure as the source gives it."""
    v = float(value)
    return f"{v:,.0f}" if v >= 1000 and v == int(v) else f"{v:g}"


def pct(value: Any, signed: bool = False) -> str:
    """A share as a percentage, 3 significant figures."""
    v = float(value)
    if not math.isfinite(v):
        return "–"
    text = f"{float(f'{100 * v:.3g}'):g}%"
    return f"+{text}" if signed and v > 0 else text


def yes(flag: Any) -> str:
    return "yes" if str(flag).strip().lower() in ("true", "1", "1.0") else "**no**"


def truthy(column: pd.Series) -> pd.Series:
    return column.astype(str).str.strip().str.lower().isin(("true", "1", "1.0"))


# --- reading the folders ------------------------------------------------------------


def _finished(folder: Path, what: str) -> dict[str, Any]:
    from model.report import finished_folder

    if not folder.is_dir():
        raise ReportError(f"{folder}: not a folder; expected a finished {what} folder")
    try:
        return finished_folder(folder)
    except RunFolderError as exc:
        raise ReportError(str(exc)) from None


def _csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise ReportError(f"{path}: missing; the folder is not a finished calibration or "
                          "was made by an older mpsim")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportError(f"{path}: no column {', '.join(missing)}; expected the columns "
                          f"{', '.join(columns)}")
    return frame


def read_calibration(folder: Path) -> dict[str, Any]:
    """The manifest and tables of a finished calibration folder; ReportError if not."""
    manifest = _finished(folder, "calibration (results/calibration/<id>)")
    if manifest.get("kind", "calibration") != "calibration" or "calibration_id" not in manifest:
        raise ReportError(f"{folder / 'manifest.json'}: kind {manifest.get('kind')!r} and no "
                          "calibration_id; expected a calibration folder "
                          "(results/calibration/<id>)")
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ReportError(f"{folder / 'manifest.json'}: no key {', '.join(missing)}; expected "
                          "a calibration made by history matching (mpsim calibrate)")
    fit = _csv(folder / "fit_table.csv", FIT_COLUMNS)
    posterior = _csv(folder / "posterior.csv", POSTERIOR_COLUMNS)
    for image in IMAGES:
        if not (folder / image).is_file():
            raise ReportError(f"{folder / image}: missing; the calibration folder is "
                              "incomplete")
    for key, column in (("within_15pct", "within_15pct"), ("in_posterior_90pct", "in_90pct")):
        counted = int(truthy(fit[column]).sum())
        if counted != manifest[key]:
            raise ReportError(f"{folder / 'fit_table.csv'}: {counted} rows with {column} true "
                              f"but manifest.json {key} is {manifest[key]}; the folder was "
                              "changed after the calibration")
    distinct = None
    if (folder / "ensemble.csv").is_file():  # repeated members: a chain that did not move
        members = pd.read_csv(folder / "ensemble.csv")
        names = [c for c in members.columns if c not in ("member", "weight", "best", "loss")
                 and c in manifest.get("config", {}).get("free", {})] or [
            c for c in members.columns if c not in ("member", "weight", "best", "loss")]
        distinct = len(members[names].drop_duplicates())
    return {"folder": folder, "manifest": manifest, "fit": with_tiers(fit, manifest),
            "posterior": posterior, "distinct_members": distinct}


def with_tiers(fit: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    """``fit`` with a ``tier`` column: the data file's ``tier`` where the file is found
    and its line holds the same figure, else the tier of the weight."""
    fit = fit.copy()
    fit["tier"] = [TIER_OF_WEIGHT.get(float(w), "?") for w in fit["weight"]]
    fit["tier_from"] = "weight"
    data = Path(str(manifest.get("config", {}).get("data", "")))
    if not data.is_file():  # made on another machine: look in this checkout
        data = ROOT / "calibration" / "data" / data.name
    if not data.is_file():
        return fit
    try:
        rows = pd.read_csv(data, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError):
        return fit
    if not {"tier", "value"} <= set(rows.columns):
        return fit
    for i, r in fit.iterrows():
        k = int(r["line"]) - 2
        if 0 <= k < len(rows):
            row = rows.iloc[k]
            try:
                same = math.isclose(float(row["value"]), float(r["reported"]), rel_tol=1e-9)
            except (TypeError, ValueError):
                same = False
            if same and str(row["tier"]).strip() in TIERS:
                fit.loc[i, "tier"] = str(row["tier"]).strip()
                fit.loc[i, "tier_from"] = "data"
    return fit


def read_backtest(folder: Path) -> dict[str, Any]:
    """The manifest and tables of a finished backtest folder; ReportError if not."""
    manifest = _finished(folder, "backtest (results/backtest/<id>)")
    if "backtest_id" not in manifest:
        raise ReportError(f"{folder / 'manifest.json'}: no backtest_id; expected a backtest "
                          "folder (results/backtest/<id>)")
    summary = _csv(folder / "summary.csv", SUMMARY_COLUMNS)
    scores = _csv(folder / "scores.csv", SCORES_COLUMNS)
    if not (folder / BACKTEST_IMAGE[0]).is_file():
        raise ReportError(f"{folder / BACKTEST_IMAGE[0]}: missing; the backtest folder is "
                          "incomplete")
    common = summary[(summary["series"] == "all") & (summary["subset"] == "common")]
    if common.empty:
        raise ReportError(f"{folder / 'summary.csv'}: no row with series 'all' and subset "
                          "'common'; expected the summary mpsim backtest writes")
    return {"folder": folder, "manifest": manifest, "summary": summary, "scores": scores}


# --- hand-written sections ----------------------------------------------------------


def sections(page: str) -> dict[str, str]:
    """Every ``## `` section of ``page`` by its heading line, its text verbatim (heading
    included, trailing blank lines dropped)."""
    found: dict[str, str] = {}
    current, lines, fenced = None, [], False
    for line in page.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if line.startswith("## ") and not fenced:
            if current is not None:
                found[current] = "\n".join(lines).rstrip()
            current, lines = line.rstrip(), [line]
        elif current is not None:
            lines.append(line)
    if current is not None:
        found[current] = "\n".join(lines).rstrip()
    return found


def hand_sections(page: str, keep: tuple[str, ...] = KEEP) -> dict[str, str]:
    """The sections of ``page`` headed by one of ``keep``, verbatim."""
    found = sections(page)
    return {h: found[h] for h in keep if h in found}


# --- the page -----------------------------------------------------------------------


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _command(manifest: dict[str, Any]) -> str:
    argv = [str(a) for a in manifest.get("command") or []]
    if not argv:
        return "mpsim calibrate"
    return " ".join([Path(argv[0]).name, *argv[1:]])


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


def how_it_was_run(cal: dict[str, Any]) -> list[str]:
    m, folder = cal["manifest"], cal["folder"]
    c = m["config"]
    versions = m.get("versions", {})
    git = m.get("git", {})
    waves = len(m["waves"])
    per_wave = [w.get("points") for w in m["waves"]]
    lines = [
        "## How it was run", "",
        f"Calibration `{m['calibration_id']}` (folder `{_shown(folder)}`), made with",
        "", "```bash", _command(m), "```", "",
        f"from the file `{Path(str(c.get('config_file', '?'))).name}` and the data "
        f"`{Path(str(c.get('data', '?'))).name}`: {len(c.get('free', {}))} free parameters "
        f"fitted to {m.get('targets', len(cal['fit']))} reported figures. Budget "
        f"{c.get('budget')} parameter points in {waves} waves "
        f"({', '.join(map(str, per_wave))} points), each point run with "
        f"{c.get('replicates')} replicates of {int(c.get('agents', 0)):,} user agents and "
        f"{int(c.get('merchant_agents', 0)):,} merchant agents (seed {c.get('seed')}); "
        f"{int(m['model_runs']):,} model runs in all, {float(m['wall_seconds']) / 60:.1f} minutes of "
        f"wall time on this machine ({versions.get('platform', '?')}, Python "
        f"{versions.get('python', '?')}, mesa {versions.get('mesa', '?')}), at commit "
        f"`{str(git.get('commit', '?'))[:12]}`{' (with uncommitted changes)' if git.get('dirty') else ''}.",
        "",
        "The method, in short: the WeChat and Alipay app curves are fitted to the app "
        "figures first and held fixed in the search (`calibration/app_bases.py`); each "
        "ensemble member then gets its own draw of them (a parametric bootstrap). "
        "History matching "
        "then runs the model in waves; after each wave a Gaussian-process emulator of "
        "the model's outputs (`calibration/emulator.py`) is fitted to every run so far, "
        "and the parameter points whose implausibility (`calibration/likelihood.py`) "
        f"exceeds {num(c.get('cutoff'))} are ruled out. Inside what is left, MCMC "
        "on the emulator (emcee, `calibration/posterior.py`) draws "
        f"the posterior, resampled to an ensemble of at most {c.get('ensemble_size')} "
        "members; the best point is the lowest loss on the search's seeds among the "
        f"{c.get('best_candidates')} members the emulator rates highest and the "
        f"{max(1, int(c.get('best_candidates') or 0) // 2)} design points the "
        "simulations rate highest"
        + (f", polished by at most {c.get('polish')} evaluations of least squares on the "
           "loss's residuals from there (`scipy.optimize.least_squares`, the search's "
           "seeds at every point)" if c.get("polish") else "")
        + polish_text(m) + "; both are checked by "
        "simulation, not by the emulator (`calibration/calibrate.py`). The modules' "
        "docstrings say why this method and give the formulas.",
        ""]
    unused = m.get("unused_rows") or []
    if unused:
        lines += ["Rows of the data not fitted:", ""]
        lines += [f"- line {u.get('line')}: {u.get('reason')}" for u in unused]
        lines.append("")
    return lines


def error_model(cal: dict[str, Any]) -> list[str]:
    m, fit = cal["manifest"], cal["fit"]
    disc = m["discrepancy"]
    stated, used = float(disc["stated"]), float(disc["used"])
    rows = []
    for weight in sorted({float(w) for w in fit["weight"]}, reverse=True):
        tiers = sorted(set(fit.loc[fit["weight"] == weight, "tier"]),
                       key=lambda t: TIERS.index(t) if t in TIERS else 9)
        rows.append([", ".join(tiers), num(weight), pct(OBSERVATION_SD / math.sqrt(weight)),
                     str(int((fit["weight"] == weight).sum()))])
    lines = ["## Error model", "",
             "Every figure is compared on a log scale, so a standard deviation below is "
             "about a relative one (`calibration/likelihood.py`). The observation error "
             f"of a figure is {pct(OBSERVATION_SD)} for weight 1, divided by the square "
             "root of its weight:", "",
             *_table(["tier", "weight", "observation sd", "figures"], rows), ""]
    if used > stated * (1 + 1e-9):
        lines.append(f"Model discrepancy: {pct(stated)} stated in the calibration file, "
                     f"**{pct(used)} used**: even the best point stands further from the "
                     "figures than the observation errors and the stated discrepancy "
                     "allow, so the discrepancy was raised until the best fit is a "
                     "typical draw of the error model (`fit_discrepancy` in "
                     "`calibration/likelihood.py`).")
    else:
        lines.append(f"Model discrepancy: {pct(stated)} stated in the calibration file and "
                     "used as stated.")
    sd = pd.Series(m.get("replicate_sd") or {}, dtype=float)
    if len(sd):
        top = sd.sort_values(ascending=False).head(3)
        lines += ["", "Replicate noise (the standard deviation of one run about the mean "
                  f"of many, on the log scale, measured at the design points): median "
                  f"{pct(sd.median())} over the figures, largest "
                  + "; ".join(f"{k} {pct(v)}" for k, v in top.items()) + ". The world is "
                  "one run, so this noise counts in every figure's variance."]
    lines.append("")
    return lines


def waves_section(cal: dict[str, Any]) -> list[str]:
    m = cal["manifest"]
    rows = []
    for w in m["waves"]:
        share, cands = float(w.get("uniform_survival", math.nan)), int(w.get("candidates") or 0)
        if share == 0 and cands:
            shown = f"under {pct(1 / cands)}"
        else:
            shown = pct(share)
        rows.append([str(w.get("wave")), str(w.get("points")), str(w.get("ruled_by")),
                     f"{cands:,}" if cands else "–", shown, str(w.get("training_points", "–")),
                     str(w.get("components", "–"))])
    return ["## History matching", "",
            "Each wave runs the model at points not yet ruled out; the share of the bounds "
            "not ruled out is the survival rate of uniform draws over the bounds among the "
            "wave's candidates, before the wave ran (`calibration/posterior.py`).", "",
            *_table(["wave", "points", "ruled out when", "candidates",
                     "share of bounds not ruled out", "emulator training points",
                     "emulator components"], rows), ""]


def sampling_section(cal: dict[str, Any]) -> list[str]:
    m = cal["manifest"]
    rows = [[str(r.get("walkers")), f"{int(r.get('steps', 0)):,}", f"{int(r.get('burn_in', 0)):,}",
             f"{int(r.get('kept_draws', 0)):,}", num(r.get("max_autocorrelation_steps")),
             pct(r.get("acceptance", math.nan)), num(r.get("effective_size"))]
            for r in m["sampler"]]
    ess = float(m["effective_size"])
    distinct = cal.get("distinct_members")
    if distinct is not None and distinct < ess:
        ess = float(distinct)
    lines = ["## Sampling the posterior", "",
             "MCMC on the emulator (emcee's ensemble sampler with differential-evolution "
             "moves); the effective size is the kept draws over the largest integrated "
             "autocorrelation time of any parameter.", "",
             *_table(["walkers", "steps", "burn-in", "kept draws",
                      "autocorrelation (steps)", "acceptance", "effective size"], rows), "",
             f"The ensemble (`ensemble.csv`) has {m['ensemble_members']} members"
             + (f", {distinct} of them distinct parameter sets; the effective size is "
                f"counted as at most that, {num(ess)}" if distinct is not None else
                f", effective size {num(m['ensemble_effective_size'])}") + "."]
    if ess < ESS_TARGET:
        lines += ["", f"**The effective size, {num(ess)}, is under the target of "
                  f"{ESS_TARGET}.** The chains have not mixed enough for the posterior "
                  "intervals below to be trusted; more steps are needed."]
    else:
        lines += ["", f"That is at least the target of {ESS_TARGET}."]
    for r in m["sampler"]:
        tau = float(r.get("max_autocorrelation_steps") or 0)
        kept_steps = int(r.get("steps", 0)) - int(r.get("burn_in", 0))
        if tau > 0 and kept_steps / tau < 50:
            lines += ["", f"The estimate is rough: the kept chains are {kept_steps / tau:.0f} "
                      "autocorrelation times long, and emcee trusts its estimate of the "
                      "autocorrelation time from 50; a longer chain tends to find a longer "
                      "time, and so a smaller effective size."]
    cov = float(m["emulator_coverage_95"])
    if cov < 0.9:
        verdict = ("under the nominal 95%: the emulator is overconfident, and the "
                   "posterior it gives is narrower than the model's own would be")
    elif cov > 0.99:
        verdict = "over the nominal 95%: the emulator is cautious"
    else:
        verdict = "close to the nominal 95%"
    lines += ["", "## Emulator coverage", "",
              f"On the ensemble draws run by simulation, the emulator's 95% interval held "
              f"the simulated value {pct(cov)} of the time, {verdict}.", ""]
    return lines


def posterior_section(cal: dict[str, Any]) -> list[str]:
    post = cal["posterior"]
    pinned = truthy(post["pinned"])
    rows = [[f"`{r['parameter']}`", f"{num(r['prior_low'])} to {num(r['prior_high'])}",
             num(r["best"]), num(r["p50"]), f"{num(r['p05'])} to {num(r['p95'])}",
             pct(r["width_ratio"]), "pinned" if p else "**loose**"]
            for (_, r), p in zip(post.iterrows(), pinned)]
    return ["## Posterior", "",
            "The prior is uniform on the bounds. The 90% interval is the ensemble's 5-95% "
            "range; a parameter is pinned down when that interval is under half its prior "
            f"range, loose otherwise. {int(pinned.sum())} of {len(post)} parameters are "
            "pinned down.", "",
            *_table(["parameter", "prior range", "best", "median", "90% interval",
                     "width / prior", "pinned down"], rows), ""]


def _fit_rows(rows: pd.DataFrame) -> list[str]:
    out = []
    for _, r in rows.iterrows():
        app = str(r["set_by"]).startswith("app curves")
        out.append([r["label"], r["kind"], num(r["weight"]), reported(r["reported"]),
                    num(r["simulated_mean"]), pct(r["relative_error"], signed=True),
                    num(r["posterior_p50"]),
                    f"{num(r['posterior_p05'])} to {num(r['posterior_p95'])}",
                    yes(r["within_15pct"]), yes(r["in_90pct"]),
                    "app curves" if app else "ensemble"])
    return _table(["figure", "kind", "weight", "reported", "best point", "error",
                   "ensemble median", "ensemble 90%", "within 15%", "inside 90%", "set by"],
                  out)


def fit_section(cal: dict[str, Any]) -> list[str]:
    fit = cal["fit"]
    from_data = (fit["tier_from"] == "data").all()
    lines = ["## Fit to the reported figures", "",
             "Best point: the mean of the best point on 10 fresh replicates (seeds the "
             "search did not use); within 15% means that mean is within 15% of the figure "
             "(for a lower bound, not below it). Ensemble: one fresh run for each of the "
             "ensemble draws checked; inside 90% means the figure lies in their 5-95% "
             "range. Rows set by the app curves (`calibration/app_bases.py`) are fitted "
             "before the search and held fixed in it; each ensemble member carries its "
             "own bootstrap draw of the curves, so their ensemble interval is the "
             "curves' uncertainty and replicate noise. Tiers are "
             + ("the data file's `tier` column" if from_data else
                "the data file's `tier` column where it is found, else the tier of the "
                "weight (S 4, A 2, B 1, C 0.5 or 0.25)")
             + " (`calibration/data/README.md`); a figure's weight can be below its "
             "tier's where it conflicts with a better one.", ""]
    order = [t for t in TIERS if (fit["tier"] == t).any()]
    order += sorted(set(fit["tier"]) - set(TIERS))
    for tier in order:
        rows = fit[fit["tier"] == tier].sort_values(["label", "line"])
        name = TIER_NAMES.get(tier, "weight not of a tier")
        lines += [f"### Tier {tier} ({name})", "", *_fit_rows(rows), ""]
    return lines


def counts(fit: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """(met, of) per tier and over all, for within 15% and inside 90%."""
    within, inside = truthy(fit["within_15pct"]), truthy(fit["in_90pct"])
    out = {}
    for tier in TIERS:
        mask = fit["tier"] == tier
        out[f"within {tier}"] = (int(within[mask].sum()), int(mask.sum()))
        out[f"inside {tier}"] = (int(inside[mask].sum()), int(mask.sum()))
    out["within all"] = (int(within.sum()), len(fit))
    out["inside all"] = (int(inside.sum()), len(fit))
    ens = ~fit["set_by"].astype(str).str.startswith("app curves")
    out["inside ensemble"] = (int(inside[ens].sum()), int(ens.sum()))
    return out


def counts_section(cal: dict[str, Any]) -> list[str]:
    c = counts(cal["fit"])

    def of(key: str) -> str:
        met, n = c[key]
        return f"{met} of {n}"

    return ["## Counts", "",
            f"- Within 15% at the best point: tier S {of('within S')}, tier A "
            f"{of('within A')}, tier B {of('within B')}, tier C {of('within C')}; "
            f"{of('within all')} figures in all.",
            f"- Inside the ensemble's 90% interval: {of('inside all')} figures in all "
            f"({of('inside ensemble')} of those the ensemble sets; tier S {of('inside S')}, "
            f"tier A {of('inside A')}).",
            f"- Best loss {num(cal['manifest']['best_loss'])} (the weighted mean squared "
            "log error, `calibration/calibrate.py`).", ""]


def backtest_section(bt: dict[str, Any], image: str) -> list[str]:
    m, summary, scores = bt["manifest"], bt["summary"], bt["scores"]
    common = summary[(summary["series"] == "all") & (summary["subset"] == "common")]
    reached = scores.assign(ok=pd.to_numeric(scores["median"], errors="coerce").notna())
    by_figure = reached.groupby(["label", "line"])["ok"].all()
    exact = scores.drop_duplicates(["label", "line"]).set_index(["label", "line"])["kind"]
    n_common = int(by_figure.sum())
    n_exact = int(sum(1 for key, ok in by_figure.items() if ok and exact[key] == "exact"))
    rows = []
    for _, r in common.iterrows():
        rows.append([FORECASTER_NAMES.get(r["forecaster"], str(r["forecaster"])),
                     str(int(r["exact_figures"])), num(r["mean_abs_log_error"]),
                     num(r["mean_wis"]), pct(r["cover50"]), pct(r["cover90"]),
                     f"{int(r['bounds'])}" + (f" ({pct(r['bounds_met'])} met)"
                                              if int(r["bounds"]) else "")])
    cal = m.get("calibration") or {}
    figures = m.get("figures") or {}
    return ["## Backtest", "",
            f"Backtest `{m['backtest_id']}` (folder `{_shown(bt['folder'])}`): the model "
            f"calibrated on the figures dated up to {m.get('until', '?')} alone "
            f"(calibration `{cal.get('calibration_id', '?')}`, "
            f"{figures.get('known', '?')} figures), then asked for the "
            f"{scores.drop_duplicates(['label', 'line']).shape[0]} later ones, beside a "
            "straight line and a logistic fitted to the same known figures "
            "(`calibration/backtest.py`, `calibration/naive.py`, scores in "
            "`calibration/scoring.py`, on the log scale). The table is over the "
            f"{n_common} later figures all three forecasters reach ({n_exact} exact, "
            "scored by error, WIS and coverage; the rest are bounds, scored by whether "
            "they are met). A well-calibrated forecaster covers 50% and 90%; lower WIS is "
            "better.", "",
            *_table(["forecaster", "exact figures", "mean abs log error", "mean WIS",
                     "50% coverage", "90% coverage", "bounds"], rows), "",
            f"![backtest fans]({image})", ""]


def report(cal: dict[str, Any], kept: dict[str, str] | None = None,
           backtest: dict[str, Any] | None = None, img_dir: str = "img") -> str:
    """The page for the calibration ``cal`` (from :func:`read_calibration`), the
    hand-written sections ``kept`` in their places, the backtest if given."""
    kept = dict(kept or {})
    blocks: list[list[str]] = [
        how_it_was_run(cal), error_model(cal), waves_section(cal), sampling_section(cal),
        posterior_section(cal), fit_section(cal), counts_section(cal)]
    if backtest is not None:
        blocks.append(backtest_section(backtest, f"{img_dir}/{BACKTEST_IMAGE[1]}"))
    lines = ["# Calibration of the baseline", "",
             "Written by `scripts/calibration_report.py` from the calibration folder named "
             "below; the sections " + ", ".join(f'"{h[3:]}"' for h in KEEP)
             + " are written by hand and kept when the page is made again.", ""]
    for block in blocks:
        lines += block
        for heading, after in PLACE.items():
            if block and block[0] == after and heading in kept:
                lines += [kept.pop(heading), ""]
    for heading in list(kept):
        lines += [kept.pop(heading), ""]
    lines += ["## Images", "",
              f"![fit to the reported figures]({img_dir}/{IMAGES['fit.png']})", "",
              f"![posterior]({img_dir}/{IMAGES['posterior.png']})", ""]
    return "\n".join(lines).rstrip() + "\n"


# --- writing ------------------------------------------------------------------------


def _replace(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def write(folder: Path, target: Path = TARGET, backtest: Path | None = None,
          keep: tuple[str, ...] = KEEP) -> Path:
    """Read everything, make the page, then copy the images and write the page."""
    cal = read_calibration(folder)
    bt = read_backtest(backtest) if backtest is not None else None
    old = ""
    if target.is_file():
        try:
            old = target.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ReportError(f"{target}: not UTF-8 text; cannot keep its hand-written "
                              "sections") from None
    elif target.exists():
        raise ReportError(f"{target}: not a file; give --target a file path")
    if not target.parent.is_dir():
        raise ReportError(f"{target.parent}: no such folder; give --target a file in an "
                          "existing folder")
    page = report(cal, hand_sections(old, keep), bt)
    img = target.parent / "img"
    try:
        img.mkdir(exist_ok=True)
        for name, shown in IMAGES.items():
            _replace(folder / name, img / shown)
        if bt is not None:
            _replace(backtest / BACKTEST_IMAGE[0], img / BACKTEST_IMAGE[1])
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise ReportError(f"{exc.filename or target}: cannot write ({exc.strerror})") from None
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/CALIBRATION.md from a finished "
                                     "calibration folder.")
    parser.add_argument("calibration", type=Path, help="a finished results/calibration/<id>")
    parser.add_argument("--backtest", type=Path, help="a finished results/backtest/<id> to add")
    parser.add_argument("--target", type=Path, default=TARGET,
                        help="the page to write (default docs/CALIBRATION.md); the images go "
                             "to img/ beside it")
    parser.add_argument("--keep", action="append", default=[], metavar="HEADING",
                        help='another hand-written section to keep, e.g. "## Notes"')
    args = parser.parse_args(argv)
    keep = KEEP + tuple(h if h.startswith("## ") else f"## {h}" for h in args.keep)
    try:
        target = write(args.calibration, args.target, args.backtest, keep)
    except MpsimError as exc:
        print(f"calibration_report: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
