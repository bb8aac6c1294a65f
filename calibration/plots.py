"""Plots of a calibration: the fit, what the data pin down (posterior against prior), the waves.

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


def style_series_axes(ax, platform: str, series: str, unit: str) -> None:
    """The look of one series' panel: title, unit, grid and yearly ticks."""
    ax.set_title(f"{LABELS.get(platform, platform)} {series}", fontsize=9, loc="left")
    ax.set_ylabel(unit.replace("_", " "), fontsize=8)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.tick_params(labelsize=7)


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
        ax.scatter(dates, rows_["simulated_mean"], marker="x", color="black", zorder=6,
                   label="best point")
        if "posterior_p50" in rows_:
            ax.errorbar(dates + pd.Timedelta(days=25), rows_["posterior_p50"],
                        yerr=[rows_["posterior_p50"] - rows_["posterior_p05"],
                              rows_["posterior_p95"] - rows_["posterior_p50"]],
                        fmt="o", ms=3, color="#555555", capsize=3, zorder=6,
                        label="ensemble median, 90%")
        if spec.read == "yoy_annual_mean" and len(dates):  # points only: a year each side
            ax.set_xlim(dates.min() - pd.Timedelta(days=365), dates.max() + pd.Timedelta(days=365))
        style_series_axes(ax, platform, series, rows_["unit"].iloc[0] if len(rows_) else "")
        ax.legend(fontsize=6, loc="upper left")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    within = fit["within_15pct"].mean() * 100
    held = f"; {fit['in_90pct'].mean() * 100:.0f}% inside the ensemble's 90%" if "in_90pct" in fit else ""
    fig.suptitle(f"Calibration {run_id}: fit to {len(fit)} reported figures\n"
                 f"best point: {within:.0f}% within 15%{held}; triangles are lower bounds; "
                 "band: the best point's 5-95% over replicates", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = folder / "fit.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_posterior(folder: Path, table: pd.DataFrame, samples: np.ndarray,
                   weights: np.ndarray) -> Path:
    """Each parameter's posterior (weighted histogram of the importance draws) over its
    flat prior: a parameter whose posterior fills its prior is not pinned down."""
    names = list(table["parameter"])
    cols = 5
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    for j, (ax, (_, row)) in enumerate(zip(axes.flat, table.iterrows())):
        low, high = row["prior_low"], row["prior_high"]
        edges = np.linspace(low, high, 26)
        density, _ = np.histogram(samples[:, j], bins=edges, weights=weights, density=True)
        ax.stairs(density, edges, fill=True, color="#2980b9", alpha=0.6, label="posterior")
        ax.axhline(1.0 / (high - low), color="#7f8c8d", ls="--", lw=1, label="prior")
        ax.axvline(row["best"], color="#c0392b", lw=1.2, label="best point")
        ax.set_xlim(low, high)
        ax.set_yticks([])
        pinned = "pinned down" if row["pinned"] else "loose"
        ax.set_title(f"{row['parameter']}\n90%: {row['p05']:.3g} to {row['p95']:.3g} ({pinned})",
                     fontsize=7, loc="left", color="black" if row["pinned"] else "#7f8c8d")
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncol=3)
    pinned = int(table["pinned"].sum())
    fig.suptitle(f"What the data pin down: posterior (blue) against the flat prior (dashed); "
                 f"{pinned} of {len(names)} parameters have a 90% interval under half their "
                 "prior's", fontsize=11, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path = folder / "posterior.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_waves(folder: Path, evaluations: pd.DataFrame, cutoff: float = 3.0) -> Path:
    """The largest implausibility of every point run, by wave: the waves close in."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    rng = np.random.default_rng(0)
    for wave, group in evaluations.groupby("wave"):
        jitter = wave + rng.uniform(-0.3, 0.3, len(group))
        ax.scatter(jitter, group["max_implausibility"], s=5, alpha=0.4, color="#34495e")
        ax.scatter([wave], [group["max_implausibility"].median()], s=60, color="#c0392b",
                   zorder=5, label="median" if wave == 1 else None)
    ax.axhline(cutoff, color="#27ae60", ls="--", label=f"cutoff {cutoff:g}")
    ax.set_yscale("log")
    ax.set_xlabel("wave")
    ax.set_ylabel("largest implausibility over the figures\n(with the final error model)")
    ax.set_xticks(sorted(evaluations["wave"].unique()))
    ax.set_title("History matching: each wave's points, by how far their worst figure misses",
                 loc="left", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    path = folder / "waves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_calibration(folder, frames, fit, table, samples, weights, evaluations, run_id,
                     params=None) -> list[Path]:
    return [plot_fit(folder, frames, fit, run_id, params),
            plot_posterior(folder, table, samples, weights),
            plot_waves(folder, evaluations)]
