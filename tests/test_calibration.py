"""Calibration: the loss, the configuration file, parameter recovery and resume."""

import datetime as dt
import json
import math
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from calibration import calibrate as cal
from calibration.data import Target
from model import executor as executors
from model import scenarios, simulate
from model.errors import MpsimError, ParameterError
from model.ensemble import read as read_ensemble
from model.params import PARAMS, _apply_calibration


def target(value, kind="exact", unit="million_users", weight=1.0, sigma=None):
    return Target(row=2, date=dt.date(2018, 12, 15), platform="wechat",
                  series="miniprogram_dau", value=value, kind=kind, weight=weight,
                  sigma=sigma, unit=unit, label="t")


# --- loss -----------------------------------------------------------------------------
def test_log_error_of_the_replicate_mean():
    simulated = np.array([[100.0], [300.0]])  # mean 200
    assert cal.log_errors(simulated, [target(100.0)])[0] == pytest.approx(math.log(2))


def test_lower_bound_penalises_only_a_shortfall():
    assert cal.log_errors(np.array([[700.0]]), [target(600.0, "lower")])[0] == 0.0
    assert cal.log_errors(np.array([[300.0]]), [target(600.0, "lower")])[0] == \
        pytest.approx(math.log(0.5))
    assert cal.log_errors(np.array([[300.0]]), [target(600.0, "upper")])[0] == 0.0


def _unused_bound_margin():
    at_bound = np.array([[500.0]])
    assert cal.log_errors(at_bound, [target(500.0, "lower")], margin=0.01)[0] == \
        pytest.approx(math.log(500.0 / 505.0))
    assert cal.log_errors(np.array([[506.0]]), [target(500.0, "lower")], margin=0.01)[0] == 0.0
    assert cal.log_errors(at_bound, [target(500.0, "upper")], margin=0.01)[0] == \
        pytest.approx(math.log(500.0 / 495.0))
    assert cal.log_errors(at_bound, [target(400.0)], margin=0.01)[0] == \
        pytest.approx(math.log(500.0 / 400.0))  # an exact figure is left alone


def test_growth_in_percent_compares_growth_factors():
    errors = cal.log_errors(np.array([[100.0]]), [target(54.0, unit="percent")])
    assert errors[0] == pytest.approx(math.log(2.0 / 1.54))


def test_sigma_gives_a_standardised_error_and_missing_values_a_penalty():
    assert cal.log_errors(np.array([[110.0]]), [target(100.0, sigma=5.0)])[0] == pytest.approx(2)
    assert cal.log_errors(np.array([[np.nan]]), [target(100.0)])[0] == cal.MISSING_ERROR


def test_loss_is_the_weighted_mean_square():
    targets = [target(100.0, weight=3.0), target(100.0, weight=1.0)]
    simulated = np.array([[100.0 * math.e, 100.0]])
    assert cal.loss(simulated, targets) == pytest.approx(3.0 / 4.0)


def test_targets_below_the_model_resolution_are_listed_not_fitted(tmp_path):
    config = cal.load_config(write_config(tmp_path, "data.csv"))
    params = scenarios.load("baseline").params
    tiny = Target(row=5, date=dt.date(2017, 10, 15), platform="alipay",
                  series="mini_programs_count", value=0.00006, unit="million_mini_programs",
                  label="alipay mini_programs_count 2017-10")
    keep, dropped = cal.split_by_resolution([tiny, target(210.0)], params, config)
    assert [t.value for t in keep] == [210.0]
    assert dropped[0][0] == 5 and "too small" in dropped[0][1]


def test_excluded_series_are_listed_as_unused_not_dropped(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("date,platform,series,value\n2018-12,wechat,miniprogram_dau,210\n"
                    "2018-12,wechat,miniprogram_usage_frequency_growth_yoy,54\n")
    path = write_config(tmp_path, "data.csv",
                        exclude_series=["miniprogram_usage_frequency_growth_yoy"])
    objective, _, loaded = cal.build_objective(cal.load_config(path))
    assert [t.series for t in objective.targets] == ["miniprogram_dau"]
    assert [row for row, _ in loaded.unused] == [3]
    assert "exclude_series" in loaded.unused[0][1]


# --- configuration ----------------------------------------------------------------------
def write_config(tmp_path, data, free=None, **settings):
    free = free or {"users.engagement_base": [-5.0, 0.0]}
    lines = ['scenario = "baseline"', f'data = "{data}"']
    lines += [f"{key} = {value!r}" for key, value in settings.items()]
    lines += ["[free]"] + [f'"{name}" = {list(bounds)}' for name, bounds in free.items()]
    path = tmp_path / "calibration.toml"
    path.write_text("\n".join(lines) + "\n")
    if not (tmp_path / data).exists():  # a data file the test does not read
        (tmp_path / data).write_text("date,platform,series,value\n"
                                     "2018-12,wechat,miniprogram_dau,210\n")
    return path


@pytest.mark.parametrize("free, settings, message", [
    ({"users.engagement_base": [0.0, -5.0]}, {}, "low < high"),
    ({"users.engagemnt_base_wechat": [-5.0, 0.0]}, {}, "did you mean"),
    ({"traffic_sharing.enabled": [0, 1]}, {}, "only numeric parameters"),
    ({"users.engagement_base": [-50.0, 0.0]}, {}, "expected a number in"),
    ({"users.engagement_base": [-5.0, 0.0]}, {"replicates": 0}, "replicates"),
    ({"users.engagement_base": [-5.0, 0.0]}, {"budjet": 10}, "did you mean budget"),
])
def test_bad_calibration_files_are_refused(tmp_path, free, settings, message):
    path = write_config(tmp_path, "data.csv", free, **settings)
    with pytest.raises(ParameterError, match=message):
        cal.load_config(path)


def test_an_uncalibrated_start_ignores_the_adopted_calibration():
    """A recalibration's first wave holds the adopted values; a backtest's the hand-set
    defaults, which have not seen the figures it forecasts."""
    from model.params import UNCALIBRATED, resolve

    config = cal.load_config()
    adopted = cal.build_problem(config)
    clean = cal.build_problem(config, uncalibrated_start=True)
    names, bounds = adopted.names, adopted.bounds
    here = adopted.objective.start_point(bounds)
    there = clean.objective.start_point(bounds)
    expect = [min(max(UNCALIBRATED[n], lo), hi) for n, (lo, hi) in zip(names, bounds)]
    assert there == pytest.approx(expect)
    assert here == pytest.approx([min(max(resolve({})[n], lo), hi)
                                  for n, (lo, hi) in zip(names, bounds)])
    assert not np.allclose(here, there)  # the shipped calibration moved them


def test_shipped_configuration_loads_and_names_real_parameters():
    config = cal.load_config()
    assert config.data.is_file() and len(config.free) >= 10
    assert config.budget >= 1000


# --- end to end ----------------------------------------------------------------------------
TRUTH = {"users.engagement_base": -2.0, "users.discovery_weekly_wechat": 0.04}
DATES = ["2017-09-15", "2018-03-15", "2018-09-15", "2018-12-15"]


def synthetic_targets(tmp_path, agents):
    """Targets made by the model itself at known parameters, on seeds the calibration
    does not use, so recovering them is a real test."""
    frames = [simulate(TRUTH, agents=agents, merchant_agents=800, end=dt.date(2019, 1, 31),
                       seed=s) for s in np.random.SeedSequence(999).spawn(4)]
    mean = sum(frames) / len(frames)
    rows = []
    for day in DATES:
        at = mean.loc[:pd.Timestamp(day)].iloc[-1]
        rows.append((day, "wechat", "miniprogram_dau", at["wechat.miniprogram_dau"]))
        rows.append((day, "wechat", "miniprogram_users_cumulative",
                     at["wechat.miniprogram_users_cumulative"]))
    path = tmp_path / "synthetic.csv"
    pd.DataFrame(rows, columns=["date", "platform", "series", "value"]).to_csv(path, index=False)
    return path


SMALL = dict(replicates=2, merchant_agents=800, waves=3, candidates=2000,
             walkers=16, steps=400, ensemble_size=300, check_draws=30,
             best_candidates=4, polish=3)


@pytest.mark.slow
def test_calibration_recovers_known_parameters(tmp_path):
    data = synthetic_targets(tmp_path, agents=4000)
    config = cal.load_config(write_config(
        tmp_path, data, {"users.engagement_base": [-5.0, 0.0],
                         "users.discovery_weekly_wechat": [0.005, 0.15]},
        seed=5, agents=4000, budget=90, **SMALL))
    result = cal.calibrate(config, workers=1, out=tmp_path, progress=False)
    folder = result.path
    for name in ("fit_table.csv", "fit.png", "posterior.csv", "posterior.png", "waves.png",
                 "ensemble.csv", "evaluations.csv", "manifest.json", "calibrated.toml",
                 "best_parameters.json"):
        assert (folder / name).is_file(), name
    post = pd.read_csv(folder / "posterior.csv").set_index("parameter")
    # the truth lies inside each posterior 90% interval, narrower than the prior's; the
    # discovery rate, which sets every figure's level, is pinned down (engagement is
    # left looser by a 10% observation error on 8 figures)
    for name, value in TRUTH.items():
        assert post.loc[name, "p05"] <= value <= post.loc[name, "p95"], name
        assert post.loc[name, "width_ratio"] < 0.9, name
    assert post.loc["users.discovery_weekly_wechat", "pinned"]
    assert result.best["users.engagement_base"] == pytest.approx(-2.0, abs=0.5)
    fit = pd.read_csv(folder / "fit_table.csv")
    assert fit["within_15pct"].all()
    assert fit["in_90pct"].mean() >= 0.75
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["effective_size"] >= 50
    # the ensemble is a file runs can use, with the best point marked
    ens = read_ensemble(folder / "ensemble.csv")
    assert ens.weights.sum() == pytest.approx(1.0)
    assert ens.overrides(ens.best)["users.engagement_base"] == pytest.approx(
        result.best["users.engagement_base"])
    # the calibrated scenario file runs as a scenario
    calibrated = scenarios.load(folder / "calibrated.toml")
    assert calibrated.params["users.engagement_base"] == pytest.approx(
        result.best["users.engagement_base"])


def test_polish_finds_the_known_parameters_from_a_poor_start(tmp_path):
    """From a point far from the truth, the polish (least squares on the residuals of
    runs with common seeds) lowers the loss by most of its size and lands near the
    parameters that made the figures."""
    data = synthetic_targets(tmp_path, agents=1000)
    config = cal.load_config(write_config(
        tmp_path, data, {"users.engagement_base": [-5.0, 0.0],
                         "users.discovery_weekly_wechat": [0.005, 0.15]},
        seed=8, agents=1000, budget=40, **{**SMALL, "polish": 8}))
    problem = cal.build_problem(config)
    start = problem.to_unit(np.array([-4.0, 0.12]))  # engagement_base, discovery
    with executors.executor(1, None) as pool:
        pipeline = cal._Pipeline(problem, config, pool, tmp_path, progress=False)
        start_loss = cal.loss(problem.objective.simulate(problem.to_values(start)),
                              problem.objective.targets)
        end, record = pipeline.polish(start, start_loss)
    assert record["kept"]
    assert record["loss_after"] < 0.1 * start_loss
    got = dict(zip(problem.names, problem.to_values(end)))
    assert got["users.engagement_base"] == pytest.approx(-2.0, abs=0.4)
    assert got["users.discovery_weekly_wechat"] == pytest.approx(0.04, rel=0.3)


def small_config(tmp_path, **extra):
    data = synthetic_targets(tmp_path, agents=1000)
    settings = {**SMALL, "waves": 2, **extra}
    return cal.load_config(write_config(
        tmp_path, data, {"users.engagement_base": [-5.0, 0.0],
                         "users.discovery_weekly_wechat": [0.005, 0.15]},
        seed=8, agents=1000, budget=40, **settings))


@pytest.mark.slow
def test_resume_gives_the_same_result_as_an_uninterrupted_calibration(tmp_path, monkeypatch):
    config = small_config(tmp_path)
    whole = cal.calibrate(config, workers=1, out=tmp_path / "whole", progress=False)

    original = cal._Pipeline.save_wave

    def interrupt_after_one(self, wave, unit, outputs):
        original(self, wave, unit, outputs)
        raise KeyboardInterrupt

    monkeypatch.setattr(cal._Pipeline, "save_wave", interrupt_after_one)
    out = tmp_path / "split"
    with pytest.raises(KeyboardInterrupt):
        cal.calibrate(config, workers=1, out=out, progress=False)
    [partial] = (out / "calibration").iterdir()
    assert partial.name.endswith(".partial") and (partial / "wave_1.npz").is_file()
    monkeypatch.setattr(cal._Pipeline, "save_wave", original)
    run_id = partial.name[1:-len(".partial")]
    resumed = cal.calibrate(config, workers=1, out=out, resume=run_id, progress=False)

    assert resumed.path.name == run_id and not partial.exists()
    assert (resumed.path / "ensemble.csv").read_bytes() == \
        (whole.path / "ensemble.csv").read_bytes()
    assert resumed.best == whole.best
    with pytest.raises(MpsimError, match="already finished"):
        cal.calibrate(config, workers=1, out=out, resume=run_id, progress=False)
    # a finished calibration keeps its waves: copied into a .partial folder, they redo
    # the steps after the runs, to the same ensemble, without running the waves again
    kept = whole.path / "waves"
    assert sorted(f.name for f in kept.iterdir()) == ["checkpoint.json", "wave_1.npz",
                                                      "wave_2.npz"]
    assert not list(whole.path.glob("wave_*.npz"))
    redo = tmp_path / "redo" / "calibration" / ".again.partial"
    shutil.copytree(kept, redo)
    monkeypatch.setattr(cal._Pipeline, "simulate_unit", None)  # no wave may run again
    again = cal.calibrate(config, workers=1, out=tmp_path / "redo", resume="again",
                          progress=False)
    assert (again.path / "ensemble.csv").read_bytes() == \
        (whole.path / "ensemble.csv").read_bytes()


@pytest.mark.slow
def test_resume_refuses_an_edited_data_file_and_interruption_says_one_true_thing(
        tmp_path, monkeypatch, capsys):
    config = small_config(tmp_path)
    original = cal._Pipeline.save_wave

    def interrupt(self, wave, unit, outputs):
        original(self, wave, unit, outputs)
        raise KeyboardInterrupt

    monkeypatch.setattr(cal._Pipeline, "save_wave", interrupt)
    with pytest.raises(KeyboardInterrupt):
        cal.calibrate(config, workers=1, out=tmp_path, progress=False)
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and "--resume" in message[0] and "--data" in message[0]
    [partial] = (tmp_path / "calibration").iterdir()
    run_id = partial.name[1:-len(".partial")]
    data = config.data.read_text().splitlines()
    data[1] = data[1].rsplit(",", 1)[0] + ",1.0"
    config.data.write_text("\n".join(data) + "\n")
    with pytest.raises(MpsimError, match="data file"):
        cal.calibrate(config, workers=1, out=tmp_path, resume=run_id, progress=False)


def test_interrupted_before_the_first_wave_keeps_nothing(tmp_path, monkeypatch, capsys):
    config = small_config(tmp_path)

    def interrupt(self, unit, wave):
        raise KeyboardInterrupt

    monkeypatch.setattr(cal._Pipeline, "simulate_unit", interrupt)
    with pytest.raises(KeyboardInterrupt):
        cal.calibrate(config, workers=1, out=tmp_path, progress=False)
    assert list((tmp_path / "calibration").iterdir()) == []
    assert "nothing was kept" in capsys.readouterr().err


def test_a_refused_calibration_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes("date,platform,series,value\n2018-12,wechat,miniprogram_dau,1_000\n"
                    .encode())
    config = cal.load_config(write_config(tmp_path, bad))
    with pytest.raises(MpsimError):
        cal.calibrate(config, workers=1, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_resume_refuses_another_configuration(tmp_path):
    config = cal.load_config(write_config(tmp_path, "data.csv"))
    partial = tmp_path / "calibration" / ".abc.partial"
    partial.mkdir(parents=True)
    (partial / "checkpoint.json").write_text(json.dumps({"identity": "different"}))
    with pytest.raises(MpsimError, match="another calibration file"):
        cal.calibrate(config, out=tmp_path, resume="abc", progress=False)
    with pytest.raises(MpsimError, match="no interrupted calibration"):
        cal.calibrate(config, out=tmp_path, resume="nothing", progress=False)
    with pytest.raises(MpsimError, match="--resume: value ''"):
        cal.calibrate(config, out=tmp_path, resume="", progress=False)


def test_retired_keys_are_refused_with_the_reason(tmp_path):
    (tmp_path / "data.csv").write_text("date,platform,series,value\n")
    with pytest.raises(ParameterError, match="differential-evolution"):
        cal.load_config(write_config(tmp_path, "data.csv", popsize=5))


def test_adopting_a_calibration_sets_defaults_and_their_source(tmp_path):
    from scripts.adopt_calibration import main

    folder = tmp_path / "20990101T000000Z"
    folder.mkdir()
    (folder / "best_parameters.json").write_text(json.dumps(
        {"loss": 0.01, "parameters": {"users.engagement_base": -2.5}}))
    from model.ensemble import write

    write(folder / "ensemble.csv", ["users.engagement_base"], [[-2.5], [-2.0]], [0.7, 0.3],
          best=0)
    written, copied = tmp_path / "calibrated.toml", tmp_path / "ensemble.csv"
    assert main([str(folder), "--target", str(written), "--ensemble", str(copied)]) == 0
    assert read_ensemble(copied).weights == pytest.approx([0.7, 0.3])
    adopted = {p.name: p for p in _apply_calibration(PARAMS, written)}
    param = adopted["users.engagement_base"]
    assert param.default == -2.5
    assert param.source.startswith("calibrated: calibration 20990101T000000Z")
    assert adopted["red_envelope.strength"].default == 1.0


def test_a_later_stage_overrides_the_earlier_and_names_itself(tmp_path):
    from scripts.adopt_calibration import main

    folders = []
    for run_id, values in (("20990101T000000Z", {"users.engagement_base": -2.5,
                                                  "users.uses_habit_per_year": 0.2}),
                           ("20990102T000000Z", {"users.uses_habit_per_year": 1.5})):
        folder = tmp_path / run_id
        folder.mkdir()
        (folder / "best_parameters.json").write_text(json.dumps(
            {"loss": 0.01, "parameters": values}))
        folders.append(str(folder))
    written = tmp_path / "calibrated.toml"
    assert main([*folders, "--target", str(written), "--ensemble",
                 str(tmp_path / "ensemble.csv")]) == 0
    adopted = {p.name: p for p in _apply_calibration(PARAMS, written)}
    assert adopted["users.engagement_base"].default == -2.5
    assert "20990101T000000Z" in adopted["users.engagement_base"].source
    habit = adopted["users.uses_habit_per_year"]
    assert habit.default == 1.5
    assert habit.source.startswith("calibrated: calibration 20990102T000000Z")
    assert "20990101T000000Z" not in habit.source  # one calibration per source, the last
    assert main([str(tmp_path / "missing"), "--target", str(written)]) == 2


def test_a_second_process_on_the_same_calibration_is_refused(tmp_path):
    from model.runner import _lock

    config = cal.load_config(write_config(tmp_path, "data.csv"))
    partial = tmp_path / "calibration" / ".abc.partial"
    partial.mkdir(parents=True)
    (partial / "checkpoint.json").write_text(json.dumps({"identity": config.identity()}))
    held = _lock(partial)
    try:
        with pytest.raises(MpsimError, match="being written by another process"):
            cal.calibrate(config, out=tmp_path, resume="abc", progress=False)
    finally:
        os.close(held)
    assert (partial / "checkpoint.json").is_file()  # the other process's files are untouched
