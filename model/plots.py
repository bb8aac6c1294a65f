"""Plots of a run or a comparison, drawn from saved data, never from a live model.

Every plot shows the mean over replicates as a line and the 5-95% range of replicates
as a band; reported figures are points (a triangle pointing up is a lower bound:
"over 600 million"). ``plot_run(folder)`` redraws all of a run's plots from its files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no screen needed
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

COLOURS = {"wechat": "#07a35a", "alipay": "#1677ff"}
LABELS = {"wechat": "WeChat", "alipay": "Alipay"}
MARKERS = {"exact": "o", "lower": "^", "upper": "v"}
# Scenarios in black, then colours other than the platforms' green and blue.
SCENARIO_COLOURS = ("#222222", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                    "#bcbd22", "#17becf")
MINI_PROGRAM_ERA = pd.Timestamp("2016-10-01")
#: The reported figures drawn on run plots (the calibration targets).
REPORTED_FILE = Path(__file__).resolve().parent.parent / "calibration" / "data" / "targets.csv"


def _bands(frames: list[pd.DataFrame], column: str):
    cube = np.stack([f[column].to_numpy(dtype=float) for f in frames])
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(cube, axis=0)
            low, high = np.nanquantile(cube, [0.05, 0.95], axis=0)
    return frames[0].index, mean, low, high


def _line(ax, frames, column, colour, label, scale=1.0, style="-"):
    index, mean, low, high = _bands(frames, column)
    ax.plot(index, mean * scale, style, color=colour, lw=1.8, label=label)
    ax.fill_between(index, low * scale, high * scale, color=colour, alpha=0.18, lw=0)


def _reported(ax, reported: pd.DataFrame | None, series: str, platform: str,
              scale: float = 1.0, label: bool = True, colour: str | None = None,
              name: str | None = None) -> None:
    """Reported figures of one series as points (triangles: lower bounds), in the
    platform's colour and named after it unless ``colour`` and ``name`` say otherwise."""
    if reported is None or reported.empty:
        return
    rows = reported[(reported["series"] == series) & (reported["platform"] == platform)]
    for kind, group in rows.groupby("kind"):
        ax.scatter(group["date"], group["value"] * scale, marker=MARKERS.get(kind, "o"), s=46,
                   color=colour or COLOURS.get(platform, "black"), edgecolor="black", zorder=5,
                   label=(f"{name or LABELS.get(platform, platform)} reported"
                          + (" (lower bound)" if kind == "lower" else "")) if label else None)


def _events(ax, info: dict) -> None:
    """Vertical markers for the launches and the start of traffic sharing."""
    params = info.get("parameters", {})
    marks = [("wechat.launch", "WeChat mini programs", COLOURS["wechat"]),
             ("alipay.launch", "Alipay mini programs", COLOURS["alipay"])]
    if params.get("traffic_sharing.enabled", True):
        marks.append(("traffic_sharing.start", "traffic sharing", "#555555"))
    for key, text, colour in marks:
        if key not in params:
            continue
        day = pd.Timestamp(params[key])
        left, right = ax.get_xlim()
        if not left <= mdates.date2num(day) <= right:
            continue
        ax.axvline(day, color=colour, ls=":", lw=1)
        ax.text(day, 0.02, f" {text}", transform=ax.get_xaxis_transform(), rotation=90,
                va="bottom", ha="right", fontsize=7, color=colour)


def _festivals(ax, frames) -> None:
    flags = frames[0]["all.spring_festival"].to_numpy() == 1
    for day in frames[0].index[flags]:
        ax.axvspan(day, day + pd.Timedelta(days=7), color="#d62728", alpha=0.12, lw=0)


def _finish(ax, ylabel, title, start=None):
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(alpha=0.3)
    if start is not None:
        ax.set_xlim(left=mdates.date2num(start))
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))


def _footer(fig, info: dict) -> None:
    run = info.get("run", {})
    text = (f"scenario {info.get('scenario', '?')} · run {info.get('run_id', '?')} · "
            f"{run.get('replicates', '?')} replicates × {run.get('agents', 0):,} user agents · "
            "lines: mean; bands: 5-95% of replicates")
    fig.text(0.01, 0.005, text, fontsize=7, color="#555555", va="bottom")


def _save(fig, path: Path) -> Path:
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _platform_panel(ax, frames, info, reported, column, series, ylabel, title,
                    start=MINI_PROGRAM_ERA, festivals=False, extra_series=(),
                    legend_loc="upper left"):
    if festivals:
        _festivals(ax, frames)
    for pl in ("wechat", "alipay"):
        _line(ax, frames, f"{pl}.{column}", COLOURS[pl], LABELS[pl])
        _reported(ax, reported, series, pl)
        for other in extra_series:
            _reported(ax, reported, other, pl, label=False)
    _finish(ax, ylabel, title, start)
    _events(ax, info)
    ax.legend(fontsize=8, loc=legend_loc)


def plot_users(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for pl in ("wechat", "alipay"):
        _line(ax, frames, f"{pl}.miniprogram_users_cumulative", COLOURS[pl],
              f"{LABELS[pl]}: ever used")
        _line(ax, frames, f"{pl}.miniprogram_mau", COLOURS[pl], f"{LABELS[pl]}: this month",
              style="--")
        _reported(ax, reported, "miniprogram_users_cumulative", pl)
    _finish(ax, "million people", "Mini-program users: ever used (solid) and monthly active (dashed)",
            MINI_PROGRAM_ERA)
    _events(ax, info)
    ax.legend(fontsize=8, loc="upper left")
    _footer(fig, info)
    return _save(fig, path)


def plot_daily(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    _platform_panel(ax, frames, info, reported, "miniprogram_dau", "miniprogram_dau",
                    "million people on a typical day",
                    "Daily active mini-program users (red weeks: Spring Festival)",
                    festivals=True, extra_series=("miniprogram_dau_peak",))
    _footer(fig, info)
    return _save(fig, path)


def plot_merchants(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    _platform_panel(ax, frames, info, reported, "mini_programs_count", "mini_programs_count",
                    "million mini programs", "Merchants with a mini program",
                    legend_loc="lower right")  # the upper left holds early-2019 figures
    _footer(fig, info)
    return _save(fig, path)


def plot_multihoming(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    _line(ax, frames, "all.users_multihoming_share", "#8e44ad",
          "users: monthly users of both platforms' mini programs", scale=100)
    _line(ax, frames, "all.merchants_multihoming_share", "#d35400",
          "merchants: mini programs on both platforms", scale=100)
    _finish(ax, "% of those on either platform", "Multi-homing", MINI_PROGRAM_ERA)
    ax.set_ylim(0, 100)
    _events(ax, info)
    ax.legend(fontsize=8, loc="upper left")
    _footer(fig, info)
    return _save(fig, path)


def plot_shares(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for pl in ("wechat", "alipay"):
        _line(ax, frames, f"{pl}.miniprogram_dau_share", COLOURS[pl], LABELS[pl], scale=100)
    _finish(ax, "% of all mini-program daily users", "Share of daily active mini-program users",
            MINI_PROGRAM_ERA)
    ax.set_ylim(0, 100)
    ax.axhline(50, color="grey", lw=0.8)
    _events(ax, info)
    ax.legend(fontsize=8, loc="upper right")
    _footer(fig, info)
    return _save(fig, path)


def plot_payments(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    _line(ax, frames, "wechat.app_users", COLOURS["wechat"], "WeChat app users (input)", style=":")
    _line(ax, frames, "alipay.app_users", COLOURS["alipay"],
          "Alipay users = Alipay payers (input)", style=":")
    _line(ax, frames, "wechat.pay_users", COLOURS["wechat"], "WeChat Pay users")
    index, mean, low, high = _bands(frames, "wechat.red_envelope_participants")
    keep = ~np.isnan(mean)
    ax.errorbar(index[keep], mean[keep], yerr=[mean[keep] - low[keep], high[keep] - mean[keep]],
                fmt="s", color="#d62728", ms=4, capsize=2,
                label="red-envelope participants, Spring Festival week (simulated)")
    _reported(ax, reported, "pay_users", "wechat", name="WeChat Pay users")
    _reported(ax, reported, "red_envelope_participants", "wechat", colour="#d62728",
              name="red-envelope participants")
    _finish(ax, "million people", "Payments: WeChat Pay spreading through red envelopes")
    _events(ax, info)
    ax.legend(fontsize=8, loc="upper left")
    _footer(fig, info)
    return _save(fig, path)


def plot_overview(frames, info, reported, path):
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    _platform_panel(axes[0, 0], frames, info, reported, "miniprogram_users_cumulative",
                    "miniprogram_users_cumulative", "million people", "Ever used a mini program")
    _platform_panel(axes[0, 1], frames, info, reported, "miniprogram_dau", "miniprogram_dau",
                    "million people", "Daily active users (red: Spring Festival)", festivals=True,
                    extra_series=("miniprogram_dau_peak",))
    _platform_panel(axes[1, 0], frames, info, reported, "mini_programs_count",
                    "mini_programs_count", "million mini programs", "Merchants with a mini program",
                    legend_loc="lower right")
    ax = axes[1, 1]
    for pl in ("wechat", "alipay"):
        _line(ax, frames, f"{pl}.miniprogram_dau_share", COLOURS[pl], LABELS[pl], scale=100)
    _finish(ax, "%", "Share of daily active users", MINI_PROGRAM_ERA)
    ax.set_ylim(0, 100)
    _events(ax, info)
    ax.legend(fontsize=8)
    fig.suptitle(f"{info.get('scenario', '')}: WeChat and Alipay mini programs", fontsize=13)
    _footer(fig, info)
    return _save(fig, path)


RUN_PLOTS = {
    "overview.png": plot_overview,
    "miniprogram_users.png": plot_users,
    "daily_active_users.png": plot_daily,
    "merchants.png": plot_merchants,
    "multihoming.png": plot_multihoming,
    "shares.png": plot_shares,
    "payments.png": plot_payments,
}


def reported_figures() -> pd.DataFrame | None:
    """The reported figures drawn as points: date, platform, series, value, kind."""
    if not REPORTED_FILE.is_file():
        return None
    from calibration.data import load_targets

    loaded = load_targets(REPORTED_FILE, start=dt.date(2013, 1, 1), end=dt.date(2035, 12, 31))
    return pd.DataFrame([{"date": pd.Timestamp(t.date), "platform": t.platform,
                          "series": t.series, "value": t.value, "kind": t.kind}
                         for t in loaded.targets])


def plot_run(folder: Path, reported: pd.DataFrame | None = None) -> list[Path]:
    """Draw every plot of a run folder from its saved files; return the files."""
    from .runner import load_run

    folder = Path(folder)
    info, frames = load_run(folder)
    if reported is None:
        reported = reported_figures()
    return [draw(frames, info, reported, folder / name) for name, draw in RUN_PLOTS.items()]


COMPARE_OUTPUTS = (
    ("wechat.miniprogram_dau", "WeChat daily users", "million people"),
    ("alipay.miniprogram_dau", "Alipay daily users", "million people"),
    ("wechat.miniprogram_users_cumulative", "WeChat: ever used", "million people"),
    ("alipay.miniprogram_users_cumulative", "Alipay: ever used", "million people"),
    ("wechat.pay_users", "WeChat Pay users", "million people"),
    ("alipay.miniprogram_dau_share", "Alipay share of daily users", "share"),
)


def plot_compare(runs: list[tuple[str, list[pd.DataFrame]]], folder: Path) -> list[Path]:
    """Overlay of the scenarios, and each scenario's paired difference from the first."""
    paths = []
    for kind in ("overlay", "difference"):
        # no shared x axis: the WeChat Pay panel starts in 2014, the others in 2017
        fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
        base_name, base = runs[0]
        for ax, (column, title, unit) in zip(axes.flat, COMPARE_OUTPUTS):
            for k, (name, frames) in enumerate(runs):
                colour = SCENARIO_COLOURS[k % len(SCENARIO_COLOURS)]
                if kind == "overlay":
                    _line(ax, frames, column, colour, name)
                elif k > 0:
                    diffs = [f[[column]] - b[[column]] for f, b in zip(frames, base)]
                    _line(ax, diffs, column, colour, f"{name} − {base_name}")
            if kind == "difference":
                ax.axhline(0, color="black", lw=0.8)
            ax.set_title(title, fontsize=10, loc="left")
            ax.set_ylabel(unit if kind == "overlay" else f"difference, {unit}")
            ax.grid(alpha=0.3)
            if column != "wechat.pay_users":  # WeChat Pay's story starts in 2014
                ax.set_xlim(left=mdates.date2num(MINI_PROGRAM_ERA))
            ax.xaxis.set_major_locator(mdates.YearLocator(2))
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        axes.flat[0].legend(fontsize=8, loc="upper left")
        title = ("Scenarios compared" if kind == "overlay"
                 else f"Difference from {base_name}, paired by replicate seed")
        fig.suptitle(f"{title} (lines: mean; bands: 5-95% of replicates)", fontsize=12)
        paths.append(_save(fig, folder / f"compare_{kind}.png"))
    return paths
