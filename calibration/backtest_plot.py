"""The backtest's plot of forecast fans: one panel per series with a later figure."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from model.plots import COLOURS  # noqa: E402

from . import naive  # noqa: E402
from .plots import style_series_axes  # noqa: E402
from .data import ACCOUNTS_UNIT, AT_DATE, Target, accounts_per_person  # noqa: E402

MARKER = {"exact": "o", "lower": "^", "upper": "v"}
NAIVE_STYLE = {"line": ("--", "#555555"), "logistic": (":", "#8e44ad")}


def plot_backtest(path: Path, frames: list[pd.DataFrame], params: list[dict],
                  known: list[Target], later: list[Target], forecasters: list[naive.Forecaster],
                  until: dt.date, scores: pd.DataFrame) -> Path:
    """Fans (5-95% and 25-75%, median) of every run's series, the known figures (open
    markers), the later ones (filled), the model's quantiles at each later figure, and
    the naive curves; triangles are bounds."""
    groups = list(dict.fromkeys(naive.series_key(t) for t in later))
    cols = min(3, len(groups))
    rows = int(np.ceil(len(groups) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 3.7 * rows), squeeze=False)
    index = frames[0].index
    # three years of history before --until, or less if the figures start later
    first = max(pd.Timestamp(min(t.date for t in known + later)),
                pd.Timestamp(until) - pd.DateOffset(years=3)) - pd.Timedelta(days=60)
    shown = index >= first
    for ax, key in zip(axes.flat, groups):
        platform, series = key
        colour = COLOURS.get(platform, "#8e44ad")
        mine_known = [t for t in known if naive.series_key(t) == key]
        mine_later = [t for t in later if naive.series_key(t) == key]
        spec = mine_later[0].spec
        unit = mine_later[0].unit
        if spec.read == AT_DATE:
            column = spec.column_for(platform)
            cube = np.stack([f[column].to_numpy(dtype=float) * (
                accounts_per_person(p) if unit == ACCOUNTS_UNIT else 1.0)
                for f, p in zip(frames, params)])
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    q05, q25, q50, q75, q95 = np.nanquantile(cube, [.05, .25, .5, .75, .95],
                                                             axis=0)
            ax.fill_between(index[shown], q05[shown], q95[shown], color=colour, alpha=0.15,
                            lw=0, label="model 5-95%")
            ax.fill_between(index[shown], q25[shown], q75[shown], color=colour, alpha=0.3,
                            lw=0, label="model 25-75%")
            ax.plot(index[shown], q50[shown], color=colour, lw=1.4, label="model median")
        model = scores[(scores["forecaster"] == "model") & (scores["platform"] == platform)
                       & (scores["series"] == series)]
        dates = pd.to_datetime(model["date"])
        ax.vlines(dates, model["p05"], model["p95"], color="black", lw=0.8, zorder=4)
        ax.vlines(dates, model["p25"], model["p75"], color="black", lw=2.5, zorder=4,
                  label="model at the figure (25-75%, 5-95%)")
        end = naive.years(max(t.date for t in mine_later))
        for forecaster in forecasters:
            curve = forecaster.fits.get(key)
            if curve is not None:  # from the first figure it went through
                grid_t = np.linspace(curve.first_t, end, 200)
                grid = [pd.Timestamp(dt.date(int(y), 1, 1)) + pd.Timedelta(days=(y % 1) * 365.25)
                        for y in grid_t]
                style, tone = NAIVE_STYLE.get(forecaster.method, ("-", "grey"))
                ax.plot(grid, curve.predict(grid_t), style, color=tone, lw=1.2,
                        label=f"{forecaster.method}: {curve.used.split(' (')[0]}")
        for group, filled, label in ((mine_known, False, "known"), (mine_later, True, "later")):
            for kind in ("exact", "lower", "upper"):
                some = [t for t in group if t.kind == kind]
                if not some:
                    continue
                ax.scatter([pd.Timestamp(t.date) for t in some], [t.value for t in some],
                           s=42, marker=MARKER[kind], zorder=6, edgecolor="black",
                           facecolor="#c0392b" if filled else "white",
                           label=f"{label} figure"
                           + ("" if kind == "exact" else f" ({kind} bound)"))
        ax.axvline(pd.Timestamp(until), color="black", lw=0.8, ls="-.")
        ax.set_xlim(left=first)
        style_series_axes(ax, platform, series, unit)
        ax.legend(fontsize=5.5, loc="upper left")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.suptitle(f"Backtest: fitted to the figures up to {until} (dash-dot line), forecasts "
                 f"of the {len(later)} later figures", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
