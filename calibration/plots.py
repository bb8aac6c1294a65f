"""Plots of a calibration: the fit, the convergence of the search, and how sure the fit is.

Drawn from plain data (frames, tables, the list of evaluated points), like
``model/plots.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from model.plots import COLOURS, LABELS, MARKERS, _bands  # noqa: E402

from .data import SERIES, accounts_per_person  # noqa: E402


def plot_fit(folder: Path, frames: list[pd.DataFrame], fit: pd.DataFrame, run_id: str,
             params: dict | None = None) -> Path:
    """One panel per fitted series: simulated band and line, reported points, and the
    simulated mean with its 90% interval at each target."""
    groups = list(dict.fromkeys(zip(fit["series"], fit["platform"])))
    cols = 3
    rows = int(np.ceil(len(groups) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, (series, platform) in zip(axes.flat, groups):
        spec = SERIES[series]
        column = spec.column_for(platform)
        colour = COLOURS.get(platform, "#8e44ad")
        rows_ = fit[(fit["series"] == series) & (fit["platform"] == platform)]
        dates = pd.to_datetime(rows_["date"])
        if spec.read != "yoy_annual_mean":
            index, mean, low, high = _bands(frames, column)
            if (rows_["unit"] == "million_accounts").all():  # the model counts people
                factor = accounts_per_person(params)
                mean, low, high = mean * factor, low * factor, high * factor
            if np.isnan(mean).mean() > 0.5:  # measured only in some weeks (Spring Festival)
                keep = ~np.isnan(mean)
                ax.errorbar(index[keep], mean[keep], yerr=[mean[keep] - low[keep],
                                                           high[keep] - mean[keep]],
                            fmt="s", ms=3, color=colour, capsize=2, label="simulated")
            else:
                ax.plot(index, mean, color=colour, lw=1.5, label="simulated")
                ax.fill_between(index, low, high, color=colour, alpha=0.2, lw=0)
            ax.set_xlim(left=min(dates.min(), index[0]) - pd.Timedelta(days=60))
        for kind, group in rows_.groupby("kind"):
            ax.scatter(pd.to_datetime(group["date"]), group["reported"], s=50,
                       marker=MARKERS.get(kind, "o"), color=colour, edgecolor="black",
                       zorder=5, label="reported" + (" (lower bound)" if kind == "lower" else ""))
        ax.errorbar(dates, rows_["simulated_mean"],
                    yerr=[rows_["simulated_mean"] - rows_["simulated_p05"],
                          rows_["simulated_p95"] - rows_["simulated_mean"]],
                    fmt="x", color="black", capsize=3, zorder=6, label="simulated at target")
        unit = rows_["unit"].iloc[0] if len(rows_) else ""
        ax.set_title(f"{LABELS.get(platform, platform)} {series}", fontsize=9, loc="left")
        ax.set_ylabel(unit.replace("_", " "), fontsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(mdates.YearLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    within = fit["within_15pct"].mean() * 100
    fig.suptitle(f"Calibration {run_id}: fit to {len(fit)} reported figures "
                 f"({within:.0f}% within 15%; triangles are lower bounds)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = folder / "fit.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_convergence(folder: Path, history: list, generations: list[dict]) -> Path:
    losses = np.array([h[1] for h in history])
    stages = np.array([h[2] for h in history])
    fig, ax = plt.subplots(figsize=(9, 5))
    idx = np.arange(len(losses))
    for stage, colour in (("de", "#7f8c8d"), ("polish", "#e67e22")):
        mask = stages == stage
        ax.scatter(idx[mask], losses[mask], s=4, alpha=0.4, color=colour,
                   label=f"evaluated points ({'differential evolution' if stage == 'de' else 'local polish'})")
    ax.plot(idx, np.minimum.accumulate(losses), color="black", lw=1.8, label="best so far")
    if generations:
        gen = pd.DataFrame(generations)
        ax.scatter(gen["evaluations"] - 1, gen["best_loss"], s=14, color="#c0392b", zorder=5,
                   label="end of a generation")
    ax.set_yscale("log")
    ax.set_xlabel("model evaluations (parameter points)")
    ax.set_ylabel("loss (weighted mean squared log error)")
    ax.set_title("Convergence of the calibration", loc="left")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "convergence.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_uncertainty(folder: Path, uncertainty: pd.DataFrame, profiles: pd.DataFrame,
                     tolerance_note: str = "") -> Path:
    names = list(uncertainty["parameter"])
    cols = 4
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (_, row) in zip(axes.flat, uncertainty.iterrows()):
        prof = profiles[profiles["parameter"] == row["parameter"]]
        centres = (prof["bin_low"] + prof["bin_high"]) / 2
        ax.plot(centres, prof["min_loss"], "o-", ms=3, color="#34495e")
        ax.axvspan(row["profile_low"], row["profile_high"], color="#2980b9", alpha=0.15,
                   label="profile range (others re-fitted)")
        ax.axvspan(row["near_best_low"], row["near_best_high"], color="#27ae60", alpha=0.35,
                   label="evaluated points near the best")
        ax.set_xlim(row["bound_low"], row["bound_high"])
        ax.axvline(row["best"], color="#c0392b", lw=1.2, label="best")
        ax.set_yscale("log")
        flag = "" if row["identified"] else "  (not pinned down)"
        ax.set_title(f"{row['parameter']}{flag}", fontsize=8, loc="left",
                     color="black" if row["identified"] else "#c0392b")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("How sure the fit is: lowest loss found in each slice of each parameter's "
                 "range (dots); the range the loss allows with the other parameters "
                 f"re-fitted (blue){tolerance_note}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path = folder / "uncertainty.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_calibration(folder, frames, fit, history, generations, uncertainty, profiles, names,
                     run_id, params=None) -> list[Path]:
    return [plot_fit(folder, frames, fit, run_id, params),
            plot_convergence(folder, history, generations),
            plot_uncertainty(folder, uncertainty, profiles)]
