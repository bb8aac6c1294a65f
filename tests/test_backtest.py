"""The backtest end to end on a hand-made calibration, and its refusals."""

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest

from calibration import backtest as bt
from calibration import naive
from calibration.calibrate import CalibrationResult, load_config
from calibration.data import load_targets, parse_date
from model import ensemble
from model.cli import main
from model.errors import Interrupted

FIGURES = [  # date, platform, series, value, unit, kind
    ("2017-12", "wechat", "miniprogram_dau", 150, "million_users", "exact"),
    ("2018-06", "wechat", "miniprogram_dau", 170, "million_users", "exact"),
    ("2018-11-07", "wechat", "miniprogram_dau", 200, "million_users", "exact"),
    ("2018-12", "wechat", "miniprogram_dau", 210, "million_users", "exact"),
    ("2018-06-30", "wechat", "app_mau", 1058, "million_accounts", "exact"),
    ("2018-12-31", "wechat", "app_mau", 1098, "million_accounts", "exact"),
    ("2019-06", "wechat", "miniprogram_dau", 250, "million_users", "lower"),
    ("2019-09", "wechat", "miniprogram_dau", 260, "million_users", "exact"),
    ("2019-06-30", "wechat", "app_mau", 1130, "million_accounts", "exact"),
    ("2019-04", "alipay", "miniprogram_mau_questmobile", 401, "million_users", "exact"),
]
TINY = ["--draws", "2", "--replicates", "2", "--workers", "1", "--quiet"]


@pytest.fixture
def figures(tmp_path):
    path = tmp_path / "figures.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["date", "platform", "series", "value", "unit", "kind", "source"])
        for row in FIGURES:
            out.writerow([*row, "test"])
    return path


def _calibration_folder(folder, *, with_ensemble=True):
    """A finished calibration folder as calibrate writes it, at a tiny size."""
    folder.mkdir(parents=True)
    config = load_config().as_dict()
    config.update(agents=500, merchant_agents=200, budget=10)
    best = {"users.discovery_weekly_wechat": 0.12}
    (folder / "manifest.json").write_text(json.dumps({
        "calibration_id": folder.name, "config": config, "best_loss": 0.1,
        "best_parameters": best}))
    (folder / "best_parameters.json").write_text(json.dumps({"loss": 0.1, "parameters": best}))
    if with_ensemble:
        ensemble.write(folder / "ensemble.csv", ["users.discovery_weekly_wechat"],
                       [[0.005], [0.12]], [0.5, 0.5], best=1)
    return folder


def test_backtest_scores_every_later_figure_for_every_forecaster(tmp_path, figures):
    calibration = _calibration_folder(tmp_path / "cal" / "20260101T000000Z")
    result = bt.backtest("2018-12-31", data=[figures], calibration=calibration, draws=2,
                         replicates=2, seed=7, workers=1, out=tmp_path / "out", progress=False)
    folder = result.path
    assert folder.parent == tmp_path / "out" / "backtest"
    assert {p.name for p in folder.iterdir()} >= {"scores.csv", "summary.csv", "fans.png",
                                                  "manifest.json",
                                                  "figures_until_2018-12-31.csv"}
    scores = result.scores
    # four later figures, three forecasters
    assert len(pd.read_csv(folder / "scores.csv")) == len(scores) == 4 * 3
    model = scores[scores["forecaster"] == "model"]
    assert model["median"].notna().all()
    assert (model["p05"] <= model["median"]).all() and (model["median"] <= model["p95"]).all()
    # the line through the last four WeChat daily-user figures, at 2019-09-15
    line = scores[(scores["forecaster"] == "line") & (scores["date"] == "2019-09-15")].iloc[0]
    dates = [parse_date(d) for d in ("2017-12", "2018-06", "2018-11-07", "2018-12")]
    slope, intercept = np.polyfit([naive.years(d) for d in dates], [150, 170, 200, 210], 1)
    expected = slope * naive.years(parse_date("2019-09")) + intercept
    assert line["median"] == pytest.approx(expected)
    assert line["abs_log_error"] == pytest.approx(abs(math.log(expected / 260)))
    # no Alipay figure before --until: the naive forecasters cannot reach it
    alipay = scores[scores["platform"] == "alipay"].set_index("forecaster")
    assert math.isnan(alipay.loc["line", "median"])
    assert "no exact figure" in alipay.loc["line", "used"]
    assert not math.isnan(alipay.loc["model", "median"])
    # the bound is scored by whether it is met, not by WIS
    bound = scores[scores["kind"] == "lower"]
    assert bound["wis"].isna().all() and bound["bound_met"].notna().all()
    summary = pd.read_csv(folder / "summary.csv")
    common = summary[(summary["series"] == "all") & (summary["subset"] == "common")]
    assert (common["exact_figures"] == 2).all()  # the Alipay figure is left out
    own = summary[(summary["series"] == "all") & (summary["subset"] == "own")].set_index(
        "forecaster")
    assert own.loc["model", "exact_figures"] == 3 and own.loc["line", "figures_not_reached"] == 1
    info = json.loads((folder / "manifest.json").read_text())
    assert info["until"] == "2018-12-31" and info["calibration"]["reused"]
    assert info["calibration"]["folder"] == str(calibration.resolve())
    assert info["ensemble"]["members"] == [0, 1] and info["run"]["agents"] == 500
    assert info["run"]["end"] == "2019-09-22"
    known = load_targets(folder / "figures_until_2018-12-31.csv",
                         start=parse_date("2014-01-01"), end=parse_date("2025-12-31"))
    assert len(known.targets) == 6
    assert max(t.date for t in known.targets).isoformat() == "2018-12-31"
    # the same seed gives the same forecast
    again = bt.backtest("2018-12-31", data=[figures], calibration=calibration, draws=2,
                        replicates=2, seed=7, workers=1, out=tmp_path / "out", progress=False)
    assert again.path != folder
    pd.testing.assert_frame_equal(again.scores, result.scores)


def test_a_calibration_without_ensemble_is_its_best_point(tmp_path, figures):
    calibration = _calibration_folder(tmp_path / "cal" / "x", with_ensemble=False)
    result = bt.backtest("2018-12-31", data=[figures], calibration=calibration, draws=3,
                         replicates=1, workers=1, out=tmp_path, progress=False)
    info = json.loads((result.path / "manifest.json").read_text())
    assert info["ensemble"]["source"].startswith("one-member ensemble")
    assert info["ensemble"]["members"] == [0, 0, 0]


def test_the_calibration_is_fitted_to_the_known_figures_only(tmp_path, figures, monkeypatch):
    from calibration import calibrate as calibrate_module

    seen = {}

    def fake(config, *, workers=None, dask_address=None, resume=None, out=None, progress=True,
             uncalibrated_start=False):
        seen["data"] = config.data
        seen["uncalibrated_start"] = uncalibrated_start
        seen["rows"] = list(csv.DictReader(config.data.open()))
        folder = _calibration_folder(out / "calibration" / "20260101T000000Z")
        return CalibrationResult(folder, {"users.discovery_weekly_wechat": 0.12}, 0.1,
                                 pd.DataFrame())

    monkeypatch.setattr(calibrate_module, "calibrate", fake)
    result = bt.backtest("2018-12-31", data=[figures], budget=20, draws=1, replicates=1,
                         workers=1, out=tmp_path, progress=False)
    assert seen["data"].parent.name.endswith(".partial")
    assert all(parse_date(r["date"]) <= parse_date("2018-12-31") for r in seen["rows"])
    assert len(seen["rows"]) == 6
    # nor does it start from the adopted calibration, which has seen the later figures
    assert seen["uncalibrated_start"]
    info = json.loads((result.path / "manifest.json").read_text())
    assert not info["calibration"]["reused"]
    assert info["calibration"]["folder"] == "calibration/20260101T000000Z"
    assert (result.path / "calibration" / "20260101T000000Z" / "ensemble.csv").is_file()


def test_a_fresh_calibration_without_ensemble_uses_the_results_best(tmp_path, figures,
                                                                   monkeypatch):
    from calibration import calibrate as calibrate_module

    def fake(config, *, out=None, **_):
        folder = _calibration_folder(out / "calibration" / "c", with_ensemble=False)
        return CalibrationResult(folder, {"users.discovery_weekly_wechat": 0.05}, 0.1,
                                 pd.DataFrame())

    monkeypatch.setattr(calibrate_module, "calibrate", fake)
    result = bt.backtest("2018-12-31", data=[figures], draws=1, replicates=1, workers=1,
                         out=tmp_path, progress=False)
    info = json.loads((result.path / "manifest.json").read_text())
    assert info["ensemble"]["source"].startswith("one-member")
    assert info["ensemble"]["parameters"] == ["users.discovery_weekly_wechat"]
    assert "best parameters" in info["ensemble"]["file"]


def test_an_interrupted_calibration_keeps_nothing_and_says_so(tmp_path, figures, monkeypatch):
    from calibration import calibrate as calibrate_module

    def interrupted(config, **_):
        raise KeyboardInterrupt

    monkeypatch.setattr(calibrate_module, "calibrate", interrupted)
    with pytest.raises(Interrupted, match="nothing was kept"):
        bt.backtest("2018-12-31", data=[figures], out=tmp_path, progress=False)
    assert list((tmp_path / "backtest").iterdir()) == []


@pytest.mark.parametrize("until, message", [
    ("2019-13-01", "--until '2019-13-01': not a date; expected YYYY-MM-DD"),
    ("2010-01-01", "--until 2010-01-01: before every figure of"),
    ("2019-12-31", "--until 2019-12-31: no figure of"),
])
def test_cli_refuses_a_date_that_leaves_nothing_to_fit_or_score(tmp_path, figures, capsys,
                                                               until, message):
    calibration = _calibration_folder(tmp_path / "cal" / "c")
    code = main(["backtest", "--until", until, "--data", str(figures), "--calibration",
                 str(calibration), "--out", str(tmp_path / "out"), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_refuses_bad_folders_and_flags_before_any_work(tmp_path, figures, capsys):
    calibration = _calibration_folder(tmp_path / "cal" / "c")
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (["--calibration", str(calibration), "--out", str(blocker)], "is not a folder"),
        (["--calibration", str(tmp_path / "nowhere")], "no such folder"),
        (["--calibration", str(tmp_path)], "not a calibration folder"),
        (["--calibration", str(calibration), "--budget", "5"], "--budget: not allowed with"),
        (["--calibration", str(calibration), "--data", str(tmp_path / "gone.csv")],
         "gone.csv: no such file"),
    ]
    for flags, message in cases:
        code = main(["backtest", "--until", "2018-12-31", "--data", str(figures), *flags,
                     *TINY])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "backtest").exists()


def test_cli_prints_where_and_the_common_scores(tmp_path, figures, capsys):
    calibration = _calibration_folder(tmp_path / "cal" / "c")
    code = main(["backtest", "--until", "2018-12-31", "--data", str(figures),
                 "--calibration", str(calibration), "--out", str(tmp_path), *TINY])
    out = capsys.readouterr().out
    assert code == 0 and "backtest written to" in out
    assert all(name in out for name in ("model", "line", "logistic"))


@pytest.mark.slow
def test_backtest_through_a_real_calibration(tmp_path, figures):
    config = tmp_path / "small.toml"
    config.write_text('scenario = "baseline"\ndata = "figures.csv"\nseed = 3\nreplicates = 1\n'
                      "agents = 500\nmerchant_agents = 200\nbudget = 20\nwaves = 2\n"
                      "candidates = 500\nwalkers = 8\nsteps = 100\n"
                      "ensemble_size = 50\ncheck_draws = 4\nbest_candidates = 2\n[free]\n"
                      '"users.discovery_weekly_wechat" = [0.005, 0.15]\n'
                      '"users.engagement_base" = [-6.0, 0.0]\n')
    result = bt.backtest("2018-12-31", config=config, data=[figures], draws=2, replicates=1,
                         workers=1, out=tmp_path / "out", progress=False)
    info = json.loads((result.path / "manifest.json").read_text())
    calibration = result.path / info["calibration"]["folder"]
    fitted = json.loads((calibration / "manifest.json").read_text())
    assert fitted["targets"] == 6  # the figures up to --until, no later one
    assert set(info["ensemble"]["parameters"]) == {"users.discovery_weekly_wechat",
                                                   "users.engagement_base"}
    assert result.scores.groupby("forecaster").size().to_dict() == {
        "line": 4, "logistic": 4, "model": 4}
