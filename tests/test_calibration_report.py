"""scripts/calibration_report.py: docs/CALIBRATION.md from a finished calibration folder.

The calibration folder is a copy of ``tests/data/calibration_sample`` (the tables and
manifest of a small ``mpsim calibrate --budget 800``), with stand-in images."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from calibration.backtest import summarise
from calibration.scoring import sample_quantiles, score_figure
from scripts import calibration_report as cr

SAMPLE = Path(__file__).parent / "data" / "calibration_sample"
TARGETS = Path(__file__).parent.parent / "calibration" / "data" / "targets.csv"


def fake_png(path: Path, tag: str) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + tag.encode())


@pytest.fixture
def cal(tmp_path):
    folder = tmp_path / "results" / "calibration" / "20261203T141600Z"
    shutil.copytree(SAMPLE, folder)
    for name in ("fit.png", "posterior.png", "waves.png"):
        fake_png(folder / name, name)
    return folder


@pytest.fixture
def target(tmp_path):
    (tmp_path / "docs").mkdir()
    return tmp_path / "docs" / "CALIBRATION.md"


def make(cal, target, *extra):
    assert cr.main([str(cal), "--target", str(target), *extra]) == 0
    return target.read_text()


def tiers_of(fit: pd.DataFrame) -> pd.Series:
    """Each fit row's tier, from the data file by line (as calibration/data/README.md)."""
    data = pd.read_csv(TARGETS, dtype=str)
    return fit["line"].map(lambda line: data["tier"].iloc[int(line) - 2])


def section(page: str, heading: str) -> str:
    start = page.index(heading)
    end = page.find("\n## ", start + len(heading))
    return page[start:end if end > 0 else None]


def test_counts_in_the_page_match_the_fit_table(cal, target):
    fit = pd.read_csv(cal / "fit_table.csv")
    # change the table (and its manifest) so the counts are not the shipped ones
    seed = tiers_of(fit) == "S"
    flip = fit.index[seed & fit["within_15pct"]][0]
    fit.loc[flip, "within_15pct"] = False
    fit.to_csv(cal / "fit_table.csv", index=False)
    manifest = json.loads((cal / "manifest.json").read_text())
    manifest["within_15pct"] = int(fit["within_15pct"].sum())
    (cal / "manifest.json").write_text(json.dumps(manifest))
    page = make(cal, target)
    counts = section(page, "## Counts")
    tiers = tiers_of(fit)
    for tier in "SABC":
        rows = fit[tiers == tier]
        assert f"tier {tier} {int(rows['within_15pct'].sum())} of {len(rows)}" in counts
    assert f"{int(fit['within_15pct'].sum())} of {len(fit)} figures in all" in counts
    assert f"{int(fit['in_90pct'].sum())} of {len(fit)} figures in all" in counts
    by_ensemble = fit[fit["set_by"] == "ensemble"]
    assert (f"{int(by_ensemble['in_90pct'].sum())} of {len(by_ensemble)} of those the "
            "ensemble sets") in counts
    # the fit table: tier S first, then A, B, C, every figure once, app rows marked
    fit_text = section(page, "## Fit to the reported figures")
    starts = [fit_text.index(f"### Tier {t}") for t in "SABC"]
    assert starts == sorted(starts)
    s_table = fit_text[starts[0]:starts[1]]
    for label in fit.loc[seed, "label"]:
        assert f"| {label} |" in s_table
    body = [line for line in fit_text.splitlines() if line.startswith("| ")
            and not line.startswith("| figure")]
    assert len(body) == len(fit)
    assert sum(line.endswith("| app curves |") for line in body) == int(
        fit["set_by"].str.startswith("app curves").sum())
    # images copied beside the page
    for source, copy in (("fit.png", "calibration_fit.png"),
                         ("posterior.png", "calibration_posterior.png")):
        assert (target.parent / "img" / copy).read_bytes() == (cal / source).read_bytes()
        assert f"](img/{copy})" in page


def test_posterior_waves_and_effective_size(cal, target):
    page = make(cal, target)
    post = pd.read_csv(cal / "posterior.csv")
    table = section(page, "## Posterior")
    assert f"{int(post['pinned'].sum())} of {len(post)} parameters are pinned down" in table
    for _, r in post.iterrows():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{r['parameter']}`"))
        assert row.endswith("| pinned |" if r["pinned"] else "| **loose** |")
        assert f"{cr.num(r['p05'])} to {cr.num(r['p95'])}" in row
    waves = pd.read_csv(cal / "waves.csv")
    hm = section(page, "## History matching")
    assert len([line for line in hm.splitlines() if re.match(r"\| \d+ \|", line)]) == len(waves)
    manifest = json.loads((cal / "manifest.json").read_text())
    used = manifest["discrepancy"]["used"]
    assert f"{used * 100:.1f}% used" in section(page, "## Error model")
    for size, under in ((50.0, True), (250.0, False)):
        manifest["effective_size"] = size
        (cal / "manifest.json").write_text(json.dumps(manifest))
        assert ("under the target of 200" in make(cal, target)) is under


def test_hand_written_sections_survive_regeneration(cal, target):
    page = make(cal, target)
    notes = ("## What falls short\n\nThe Alipay peak is 20% high.\n\n- a list item\n"
             "```text\n## not a heading inside a code block\n```")
    why = "## Why this method\n\nA few thousand runs, 30 parameters."
    extra = "## Notes by hand\n\nKept by --keep."
    scratch = "## Scratch\n\nNot kept."
    target.write_text(page + "\n" + "\n\n".join([notes, why, extra, scratch]) + "\n")
    again = make(cal, target, "--keep", "## Notes by hand")
    for kept in (notes, why, extra):
        assert again.count(kept) == 1
    assert "## Scratch" not in again
    assert again.index("## How it was run") < again.index(why) < again.index("## Error model")
    assert again.index("## Counts") < again.index(notes) < again.index("## Images")
    # made again, the page is the same
    assert make(cal, target, "--keep", "## Notes by hand") == again


def fake_backtest(folder: Path) -> pd.DataFrame:
    """A backtest folder with the files calibration/backtest.py writes; the straight line
    cannot reach one of the figures."""
    folder.mkdir(parents=True)
    figures = [("wechat miniprogram_dau 2019-06", "exact", 230.0, [200, 220, 240, 260]),
               ("alipay miniprogram_dau 2019-06", "exact", 190.0, [150, 170, 175, 180]),
               ("wechat mini_programs_count 2019-09", "exact", 2.4, [1.5, 1.8, 2.0, 2.6]),
               ("wechat app_mau 2019-06-30", "lower", 1100.0, [1080, 1120, 1130, 1150])]
    rows = []
    for line, (label, kind, value, draws) in enumerate(figures, start=60):
        platform, series = label.split()[:2]
        for name, shift in (("model", 1.0), ("line", 1.3), ("logistic", 0.9)):
            if name == "line" and line == 61:
                q = sample_quantiles([])
            else:
                q = sample_quantiles([d * shift for d in draws])
            rows.append({"forecaster": name, "label": label, "date": label.split()[-1],
                         "platform": platform, "series": series, "unit": "million_users",
                         "kind": kind, "weight": 1.0, "reported": value, "median": q[0.5],
                         **{f"p{round(100 * lv):02d}": q[lv] for lv in (0.05, 0.25, 0.75, 0.95)},
                         **score_figure(q, value, kind, "million_users"),
                         "horizon_years": 0.3, "used": "test", "line": line, "source": "test"})
    scores = pd.DataFrame(rows)
    scores.to_csv(folder / "scores.csv", index=False)
    summarise(scores).to_csv(folder / "summary.csv", index=False)
    fake_png(folder / "fans.png", "fans")
    (folder / "manifest.json").write_text(json.dumps({
        "backtest_id": folder.name, "until": "2019-02-28", "figures": {"known": 50, "later": 4},
        "calibration": {"calibration_id": "20261203T150000Z"}}))
    return scores


def test_backtest_section(cal, target, tmp_path):
    bt = tmp_path / "results" / "backtest" / "20261203T151000Z"
    fake_backtest(bt)
    page = make(cal, target, "--backtest", str(bt))
    text = section(page, "## Backtest")
    summary = pd.read_csv(bt / "summary.csv")
    common = summary[(summary["series"] == "all") & (summary["subset"] == "common")]
    assert "over the 3 later figures all three forecasters reach (2 exact" in text
    for _, r in common.iterrows():
        name = cr.FORECASTER_NAMES[r["forecaster"]]
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert row.startswith(f"| {name} | {int(r['exact_figures'])} | "
                              f"{cr.num(r['mean_abs_log_error'])} | {cr.num(r['mean_wis'])} | "
                              f"{cr.pct(r['cover50'])} | {cr.pct(r['cover90'])} |")
    assert int(common["exact_figures"].iloc[0]) == 2
    assert (target.parent / "img" / "backtest_fans.png").read_bytes() == (bt / "fans.png").read_bytes()
    assert "](img/backtest_fans.png)" in text


def _old_method(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("waves", "sampler", "effective_size"):
        del manifest[key]
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _no_column(folder):
    fit = pd.read_csv(folder / "fit_table.csv").drop(columns=["posterior_p50"])
    fit.to_csv(folder / "fit_table.csv", index=False)


def _partial(folder):
    folder.rename(folder.parent / f".{folder.name}.partial")
    return folder.parent / f".{folder.name}.partial"


@pytest.mark.parametrize("spoil, says", [
    (lambda f: (f / "manifest.json").unlink(), "no manifest.json"),
    (_partial, "unfinished"),
    (_old_method, "no key waves, sampler, effective_size"),
    (_no_column, "no column posterior_p50"),
    (lambda f: (f / "posterior.png").unlink(), "posterior.png: missing"),
    (lambda f: (f / "manifest.json").write_text("{\"within_15pct\": ") and None,
     "not valid JSON"),
    (lambda f: shutil.rmtree(f), "not a folder"),
])
def test_a_folder_that_is_not_a_finished_calibration_is_refused(cal, target, capsys, spoil,
                                                                says):
    folder = spoil(cal) or cal
    target.write_text("hand-written page\n")
    assert cr.main([str(folder), "--target", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("calibration_report: error: ")
    assert says in err
    assert target.read_text() == "hand-written page\n"  # nothing half-written
    assert not (target.parent / "img").exists()


def test_a_calibration_given_as_the_backtest_is_refused(cal, target, capsys):
    assert cr.main([str(cal), "--target", str(target), "--backtest", str(cal)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no backtest_id" in err
    assert not target.exists() and not (target.parent / "img").exists()
