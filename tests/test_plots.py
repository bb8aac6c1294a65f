"""The plots show what they claim: bands that can be seen, legends off the data, the
reference scenario distinct, shares in %, festival peaks cut and labelled, titles true
to the run."""

import datetime as dt

import matplotlib
import numpy as np
import pytest

from model import plots, simulate
from model.params import defaults

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def frames():
    return [simulate(agents=600, merchant_agents=150, end=dt.date(2020, 12, 31), seed=s)
            for s in (1, 2, 3)]


@pytest.fixture
def figures(monkeypatch):
    """The figures a plot function draws, kept open instead of saved."""
    kept = []

    def keep(fig, path, rect=(0, 0.03, 1, 1)):
        fig.tight_layout(rect=rect)
        fig.canvas.draw()
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    yield kept
    import matplotlib.pyplot as plt

    for fig in kept:
        plt.close(fig)


def _info(**params):
    return {"scenario": "test", "parameters": {**defaults(), **params},
            "run": {"replicates": 3, "agents": 600}}


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("name", sorted(plots.RUN_PLOTS))
def test_no_legend_covers_the_axes_and_bands_show(name, frames, figures, tmp_path):
    plots.RUN_PLOTS[name](frames, _info(), None, tmp_path / name)
    fig = figures[-1]
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not _overlaps(box, ax.get_window_extent(renderer)), (name, ax.get_title())
    for ax in fig.axes:
        for band in ax.collections:
            if band.__class__.__name__ in ("PolyCollection", "FillBetweenPolyCollection"):
                assert band.get_alpha() >= 0.25


def test_shares_are_drawn_in_percent(frames, figures, tmp_path):
    plots.plot_shares(frames, _info(), None, tmp_path / "s.png")
    ax = figures[-1].axes[0]
    top = max(np.nanmax(line.get_ydata()) for line in ax.get_lines()
              if line.get_label() in ("WeChat", "Alipay"))
    assert 5 < top <= 100


def test_daily_users_cut_the_festival_peaks_and_label_them(frames, figures, tmp_path):
    # Alipay's festival weeks made to stand far above every other week (Wufu's peaks)
    frames = [f.copy() for f in frames]
    for f in frames:
        festival = f["all.spring_festival"] == 1
        f.loc[festival, "alipay.miniprogram_dau"] = 3.0 * f[["wechat.miniprogram_dau",
                                                              "alipay.miniprogram_dau"]].max().max()
    plots.plot_daily(frames, _info(), None, tmp_path / "d.png")
    ax = figures[-1].axes[0]
    peak = max(float(np.nanmax(f["alipay.miniprogram_dau"])) for f in frames)
    bottom, top = ax.get_ylim()
    assert top < peak
    labels = [t.get_text() for t in ax.texts
              if "Alipay" in t.get_text() and any(c.isdigit() for c in t.get_text())]
    assert labels  # e.g. "WeChat 360, Alipay 387" at the cut


@pytest.mark.parametrize("strength, says", [(0.0, "without red envelopes"),
                                            (1.0, "spreading through red envelopes"),
                                            (2.0, "strength 2")])
def test_the_payments_title_is_true_to_the_run(strength, says):
    title = plots.payments_title({"red_envelope.strength": strength})
    assert says in title
    if strength == 0:
        assert "spreading" not in title


def test_the_reference_scenario_is_drawn_black_thick_on_top_and_the_others_differ(
        frames, figures, tmp_path):
    runs = [("baseline", frames), ("a", frames), ("b", frames), ("c", frames)]
    plots.plot_compare(runs, tmp_path)
    overlay = figures[0]
    ax = overlay.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    base = lines["baseline"]
    assert matplotlib.colors.to_hex(base.get_color()) == "#000000"
    others = [lines[k] for k in ("a", "b", "c")]
    assert all(base.get_zorder() > o.get_zorder() and base.get_linewidth() > o.get_linewidth()
               for o in others)
    looks = {(o.get_linestyle(), o.get_marker(), matplotlib.colors.to_hex(o.get_color()))
             for o in others}
    assert len(looks) == 3 and all(o.get_marker() not in (None, "None", "") for o in others)
    share_panel = overlay.axes[5]
    assert share_panel.get_ylabel() == "%"
    assert np.nanmax(lines_in(share_panel, "baseline").get_ydata()) > 5


def lines_in(ax, label):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_sweep_plots_name_parameters_with_units_mark_the_scenario_value_and_no_sd(
        figures, tmp_path):
    import pandas as pd

    from model.sweep import plot_outcomes_vs_parameters

    name = "red_envelope.strength"
    table = pd.DataFrame({"sample": range(4), name: [0.2, 0.7, 1.3, 1.8],
                          "alipay_dau_share_2020": [0.40, 0.41, 0.42, 0.43]})
    table["alipay_dau_share_2020_sd"] = 0.01
    table["alipay_dau_share_2020_min"] = table["alipay_dau_share_2020"] - 0.02
    table["alipay_dau_share_2020_max"] = table["alipay_dau_share_2020"] + 0.02
    info = {"scenario": "baseline", "ranges": {name: [0.0, 2.0]},
            "parameters": {name: 1.0}, "run": {"replicates": 2, "agents": 1000}}
    plot_outcomes_vs_parameters(table, [name], tmp_path / "s.png", info)
    fig = figures[-1]
    ax = fig.axes[0]
    assert "[multiplier]" in ax.get_xlabel() and "red envelope" in ax.get_xlabel()
    assert "%" in ax.get_ylabel() and max(ax.get_ylim()) > 40  # a share in %
    verticals = [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1]
    assert verticals and verticals[0].get_xdata()[0] == 1.0
    title = fig._suptitle.get_text()
    assert "sd" not in title and "lowest to highest of 2 replicates" in title
