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


def _line(ax, frames, column, colour, label, scale=1.0, style="-", lw=1.8, zorder=2,
          marker=None, mark_start=0.0):
    """The mean over every run as a line, and the band from every run's 5% to 95%
    quantile, filled and edged so it shows at the default size."""
    index, mean, low, high = _bands(frames, column)
    ax.fill_between(index, low * scale, high * scale, color=colour, alpha=0.28, lw=0,
                    zorder=zorder - 0.2)
    with np.errstate(invalid="ignore"):
        width = np.nanmax(np.abs(high - low)) if np.isfinite(high - low).any() else 0.0
    if width > 1e-9 * max(1.0, float(np.nanmax(np.abs(high))) if np.isfinite(high).any() else 1.0):
        for edge in (low, high):  # no edges on an input that does not vary
            ax.plot(index, edge * scale, "-", color=colour, lw=0.6, alpha=0.75,
                    zorder=zorder - 0.1)
    every = max(1, len(index) // 14)  # markers staggered by mark_start (a share of a gap)
    ax.plot(index, mean * scale, style, color=colour, lw=lw, label=label, zorder=zorder,
            marker=marker, markevery=(int(mark_start * every) % every, every), ms=5, mfc="white")


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


def _runs_text(run: dict) -> str:
    draws = run.get("draws")
    replicates = run.get("replicates", "?")
    runs = run.get("runs")
    if draws and draws > 1 and runs:
        return f"{draws} draws × {replicates} replicates = {runs} runs"
    return f"{replicates} replicates"


def _footer(fig, info: dict) -> None:
    run = info.get("run", {})
    text = (f"scenario {info.get('scenario', '?')} · run {info.get('run_id', '?')} · "
            f"{_runs_text(run)} × {run.get('agents', 0):,} user agents · "
            "lines: mean; bands: 5-95% of every run")
    fig.text(0.01, 0.005, text, fontsize=7, color="#555555", va="bottom")


def _legend_outside(ax, **kwargs) -> None:
    """The legend to the right of the axes, where it covers no data."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
              frameon=False, **kwargs)


def _figure_legend(fig, axes, ncol: int = 4) -> None:
    """One legend for several panels, below them: each label once."""
    handles, labels = {}, []
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    fig.legend([handles[k] for k in labels], labels, loc="lower center", ncol=ncol, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.025))


def _save(fig, path: Path, rect=(0, 0.03, 1, 1)) -> Path:
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _clip_peaks(ax, frames, columns, reported, series, top: float) -> None:
    """Cut the y axis at ``top`` and label what rises above it: simulated festival
    peaks (with their value) and reported figures (an arrow at the edge, its value)."""
    ax.set_ylim(top=top)
    peaks: dict[int, list[str]] = {}
    index = frames[0].index
    for column in columns:
        _, mean, _, _ = _bands(frames, column)
        platform = column.split(".")[0]
        for i in np.flatnonzero(np.nan_to_num(mean, nan=-np.inf) > top):
            peaks.setdefault(int(i), []).append(f"{LABELS.get(platform, platform)} {mean[i]:.0f}")
    for i, texts in peaks.items():
        ax.annotate(", ".join(texts), xy=(index[i], top), xytext=(2, -3),
                    textcoords="offset points", rotation=90, ha="left", va="top", fontsize=6.5,
                    color="#333333",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    if reported is None or reported.empty:
        return
    rows = reported[reported["series"].isin(series) & (reported["value"] > top)]
    for _, row in rows.iterrows():
        colour = COLOURS.get(row["platform"], "black")
        ax.scatter([row["date"]], [top], marker="^", s=40, color=colour, edgecolor="black",
                   clip_on=False, zorder=6)
        bound = "≥" if row["kind"] == "lower" else ""
        ax.annotate(f"reported {bound}{row['value']:.0f}", xy=(row["date"], top),
                    xytext=(-2, -6), textcoords="offset points", rotation=90, ha="right",
                    va="top", fontsize=6.5, color=colour)


def _dau_top(frames) -> float:
    """The top of a daily-users axis: above every week but the Spring Festival peaks."""
    festival = frames[0]["all.spring_festival"].to_numpy() == 1
    highs = [_bands(frames, f"{pl}.miniprogram_dau")[3][~festival] for pl in ("wechat", "alipay")]
    peak = float(np.nanmax(np.concatenate(highs)))
    return 50.0 * np.ceil(peak * 1.12 / 50.0)


def _platform_panel(ax, frames, info, reported, column, series, ylabel, title,
                    start=MINI_PROGRAM_ERA, festivals=False, extra_series=(),
                    legend_loc="outside"):
    if festivals:
        _festivals(ax, frames)
    for pl in ("wechat", "alipay"):
        _line(ax, frames, f"{pl}.{column}", COLOURS[pl], LABELS[pl])
        _reported(ax, reported, series, pl)
        for other in extra_series:
            _reported(ax, reported, other, pl, label=False)
    _finish(ax, ylabel, title, start)
    _events(ax, info)
    if legend_loc:
        _legend_outside(ax)


def plot_users(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(12.5, 5.5))
    for pl in ("wechat", "alipay"):
        _line(ax, frames, f"{pl}.miniprogram_users_cumulative", COLOURS[pl],
              f"{LABELS[pl]}: ever used")
        _line(ax, frames, f"{pl}.miniprogram_mau", COLOURS[pl], f"{LABELS[pl]}: this month",
              style="--")
        _reported(ax, reported, "miniprogram_users_cumulative", pl)
    _finish(ax, "million people", "Mini-program users: ever used (solid) and monthly active (dashed)",
            MINI_PROGRAM_ERA)
    _events(ax, info)
    _legend_outside(ax)
    _footer(fig, info)
    return _save(fig, path)


#: The bottom of the daily-users plot: the race is between 150 and 250 million.
DAU_FLOOR = 100.0


def plot_daily(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(12, 5.5))
    _platform_panel(ax, frames, info, reported, "miniprogram_dau", "miniprogram_dau",
                    "million people on a typical day",
                    f"Daily active mini-program users, from {DAU_FLOOR:.0f} million "
                    "(red weeks: Spring Festival; peaks above the top labelled)",
                    festivals=True, extra_series=("miniprogram_dau_peak",))
    top = _dau_top(frames)
    _clip_peaks(ax, frames, ("wechat.miniprogram_dau", "alipay.miniprogram_dau"), reported,
                ("miniprogram_dau", "miniprogram_dau_peak"), top)
    if top > DAU_FLOOR * 1.5:
        ax.set_ylim(bottom=DAU_FLOOR)
    _footer(fig, info)
    return _save(fig, path)


def plot_merchants(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(12.5, 5.5))
    _platform_panel(ax, frames, info, reported, "mini_programs_count", "mini_programs_count",
                    "million mini programs", "Mini programs published")
    _footer(fig, info)
    return _save(fig, path)


def plot_multihoming(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(12.5, 5.5))
    _line(ax, frames, "all.users_multihoming_share", "#8e44ad",
          "users: monthly users of both platforms' mini programs", scale=100)
    _line(ax, frames, "all.merchants_multihoming_share", "#d35400",
          "merchants: mini programs on both platforms", scale=100)
    _finish(ax, "% of those on either platform", "Multi-homing", MINI_PROGRAM_ERA)
    ax.set_ylim(0, 100)
    _events(ax, info)
    _legend_outside(ax)
    _footer(fig, info)
    return _save(fig, path)


def plot_shares(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(12.5, 5.5))
    for pl in ("wechat", "alipay"):
        _line(ax, frames, f"{pl}.miniprogram_dau_share", COLOURS[pl], LABELS[pl], scale=100)
    _finish(ax, "% of all mini-program daily users", "Share of daily active mini-program users",
            MINI_PROGRAM_ERA)
    ax.set_ylim(0, 100)
    ax.axhline(50, color="grey", lw=0.8)
    _events(ax, info)
    _legend_outside(ax)
    _footer(fig, info)
    return _save(fig, path)


def payments_title(params: dict) -> str:
    """The payments plot's title, true to the run: red envelopes may be off."""
    strength = params.get("red_envelope.strength", 1.0)
    if strength == 0:
        return "Payments: WeChat Pay without red envelopes"
    if strength != 1:
        return f"Payments: WeChat Pay spreading through red envelopes (strength {strength:g})"
    return "Payments: WeChat Pay spreading through red envelopes"


def plot_payments(frames, info, reported, path):
    fig, ax = plt.subplots(figsize=(12.5, 5.5))
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
    _finish(ax, "million people", payments_title(info.get("parameters", {})))
    _events(ax, info)
    _legend_outside(ax)
    _footer(fig, info)
    return _save(fig, path)


def plot_overview(frames, info, reported, path):
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    _platform_panel(axes[0, 0], frames, info, reported, "miniprogram_users_cumulative",
                    "miniprogram_users_cumulative", "million people", "Ever used a mini program",
                    legend_loc=None)
    _platform_panel(axes[0, 1], frames, info, reported, "miniprogram_dau", "miniprogram_dau",
                    "million people", "Daily active users (red: Spring Festival; peaks above "
                    "the top labelled)", festivals=True, extra_series=("miniprogram_dau_peak",),
                    legend_loc=None)
    _clip_peaks(axes[0, 1], frames, ("wechat.miniprogram_dau", "alipay.miniprogram_dau"),
                reported, ("miniprogram_dau", "miniprogram_dau_peak"), _dau_top(frames))
    _platform_panel(axes[1, 0], frames, info, reported, "mini_programs_count",
                    "mini_programs_count", "million mini programs", "Mini programs published",
                    legend_loc=None)
    ax = axes[1, 1]
    for pl in ("wechat", "alipay"):
        _line(ax, frames, f"{pl}.miniprogram_dau_share", COLOURS[pl], LABELS[pl], scale=100)
    _finish(ax, "% of all mini-program daily users", "Share of daily active users",
            MINI_PROGRAM_ERA)
    ax.set_ylim(0, 100)
    _events(ax, info)
    _figure_legend(fig, axes, ncol=4)
    fig.suptitle(f"{info.get('scenario', '')}: WeChat and Alipay mini programs", fontsize=13)
    _footer(fig, info)
    return _save(fig, path, rect=(0, 0.08, 1, 1))


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
    ("alipay.miniprogram_dau_share", "Alipay share of daily users", "%"),
)
#: Line styles and markers of the scenarios after the first, which is drawn solid,
#: black and thicker, on top of them.
SCENARIO_STYLES = (("--", "o"), ("-.", "s"), (":", "^"), ((0, (5, 1, 1, 1)), "D"),
                   ((0, (3, 1, 1, 1, 1, 1)), "v"), ("--", "P"), ("-.", "X"))


def _scenario_style(k: int) -> dict:
    """How scenario k of a comparison is drawn: the reference (k = 0) black, thick and
    on top; the others in colours, each with its own dash pattern and marker."""
    if k == 0:
        return {"colour": "black", "style": "-", "lw": 2.6, "zorder": 10, "marker": None}
    style, marker = SCENARIO_STYLES[(k - 1) % len(SCENARIO_STYLES)]
    return {"colour": SCENARIO_COLOURS[1 + (k - 1) % (len(SCENARIO_COLOURS) - 1)],
            "style": style, "lw": 1.6, "zorder": 3 + k * 0.01, "marker": marker}


def plot_compare(runs: list[tuple[str, list[pd.DataFrame]]], folder: Path) -> list[Path]:
    """Overlay of the scenarios, and each scenario's paired difference from the first."""
    paths = []
    for kind in ("overlay", "difference"):
        # no shared x axis: the WeChat Pay panel starts in 2014, the others in 2017
        fig, axes = plt.subplots(2, 3, figsize=(15, 9))
        base_name, base = runs[0]
        for ax, (column, title, unit) in zip(axes.flat, COMPARE_OUTPUTS):
            scale = 100.0 if unit == "%" else 1.0
            for k, (name, frames) in enumerate(runs):
                look = _scenario_style(k)
                draw = dict(scale=scale, style=look["style"], lw=look["lw"],
                            zorder=look["zorder"], marker=look["marker"],
                            mark_start=(k - 1) / max(1, len(runs) - 1))
                if kind == "overlay":
                    _line(ax, frames, column, look["colour"], name, **draw)
                elif k > 0:
                    diffs = [f[[column]] - b[[column]] for f, b in zip(frames, base)]
                    _line(ax, diffs, column, look["colour"], f"{name} − {base_name}", **draw)
            if kind == "difference":
                ax.axhline(0, color="black", lw=0.8)
            ax.set_title(title, fontsize=10, loc="left")
            shown = "points" if unit == "%" and kind == "difference" else unit
            ax.set_ylabel(shown if kind == "overlay" else f"difference, {shown}")
            ax.grid(alpha=0.3)
            if column != "wechat.pay_users":  # WeChat Pay's story starts in 2014
                ax.set_xlim(left=mdates.date2num(MINI_PROGRAM_ERA))
            ax.xaxis.set_major_locator(mdates.YearLocator(2))
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=9,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
        title = ("Scenarios compared" if kind == "overlay"
                 else f"Difference from {base_name}, paired by draw and replicate seed")
        fig.suptitle(f"{title} (lines: mean; bands: 5-95% of every run)", fontsize=12)
        paths.append(_save(fig, folder / f"compare_{kind}.png", rect=(0, 0.06, 1, 1)))
    return paths
