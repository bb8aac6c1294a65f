"""Runs and comparisons over a posterior ensemble: draws x replicates, paired by draw."""

import json

import numpy as np
import pandas as pd
import pytest

from model import ensemble, scenarios
from model.errors import MpsimError
from model.runner import compare, load_run, plan_draws, run_scenario, variance_split

TINY = dict(agents=500, replicates=2, draws=4)


@pytest.fixture
def two_members(tmp_path):
    # two very different WeChat discovery rates: the draws must differ by far more than noise
    return ensemble.write(tmp_path / "ensemble.csv", ["users.discovery_weekly_wechat"],
                          [[0.005], [0.12]], [0.5, 0.5], best=1)


def test_variance_split_recovers_between_and_within_parts():
    rng = np.random.default_rng(3)
    draws = np.repeat(np.arange(400), 5)
    values = rng.normal(0, 2.0, 400)[draws] + rng.normal(0, 1.0, draws.size)
    between, within = variance_split(values, draws)
    assert between == pytest.approx(4.0, rel=0.15)
    assert within == pytest.approx(1.0, rel=0.1)
    assert np.isnan(variance_split(values[:5], draws[:5])[0])  # one draw: no between part


def test_a_run_draws_members_runs_replicates_and_records_them(tmp_path, two_members):
    result = run_scenario(scenarios.load("tiny"), ensemble=two_members, out=tmp_path,
                          plots=False, progress=False, **TINY)
    series = pd.read_csv(result.path / "series.csv")
    assert sorted(series["draw"].unique()) == [0, 1, 2, 3]
    assert series.groupby("draw")["replicate"].nunique().tolist() == [2, 2, 2, 2]
    info = json.loads((result.path / "manifest.json").read_text())
    assert info["ensemble"]["members"] == [0, 0, 1, 1]  # systematic: 2 of each
    assert info["run"]["runs"] == 8
    last = series[series["date"] == series["date"].max()]
    users = last.groupby("member")["wechat.miniprogram_users_cumulative"].mean()
    assert users[1] > 1.2 * users[0]
    summary = pd.read_csv(result.path / "summary.csv")
    row = summary[(summary["output"] == "wechat.miniprogram_users_cumulative")
                  & ~summary["spring_festival_week"]].iloc[-1]
    assert row["share_from_parameters"] > 0.8  # the parameters, not the noise, spread it
    _, frames = load_run(result.path)
    assert len(frames) == 8


def test_point_runs_the_best_member_and_scenario_overrides_win(tmp_path, two_members):
    plan = plan_draws({"draws": 4, "seed": 1}, point=True, ensemble=two_members)
    assert plan.members == [1] and plan.values == [{"users.discovery_weekly_wechat": 0.12}]
    scenario = scenarios.load("tiny")
    pinned = scenario.__class__(**{**scenario.__dict__, "overrides": {
        **scenario.overrides, "users.discovery_weekly_wechat": 0.005}})
    a = run_scenario(pinned, ensemble=two_members, out=tmp_path / "a", plots=False,
                     progress=False, **TINY)
    b = run_scenario(pinned, point=True, ensemble=two_members, out=tmp_path / "b",
                     plots=False, progress=False, agents=500, replicates=2)
    # every draw ran at the scenario's value, so draw 0 equals the point run bit for bit
    assert np.array_equal(a.frames[0].to_numpy(), b.frames[0].to_numpy(), equal_nan=True)


def test_compare_pairs_by_draw_and_reports_the_median_effect(tmp_path, two_members):
    folder = compare(["baseline", "no_red_envelope"], ensemble=two_members, out=tmp_path,
                     progress=False, **TINY)
    diff = pd.read_csv(folder / "differences.csv")
    pay = diff[(diff["output"] == "wechat.pay_users")].iloc[-1]
    assert pay["runs"] == 8
    assert pay["median"] < 0 and pay["prob_above_zero"] == 0.0
    assert pay["p05"] <= pay["p25"] <= pay["median"] <= pay["p75"] <= pay["p95"]


def test_compare_refuses_a_point_run_against_an_ensemble_run(tmp_path, two_members):
    a = run_scenario(scenarios.load("tiny"), ensemble=two_members, out=tmp_path, plots=False,
                     progress=False, **TINY)
    b = run_scenario(scenarios.load("tiny"), point=True, out=tmp_path, plots=False,
                     progress=False, agents=500, replicates=2)
    with pytest.raises(MpsimError, match="different ensembles"):
        compare([a.path, b.path], out=tmp_path, progress=False)
