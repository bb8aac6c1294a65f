"""The benchmark references implement the model's rule 8 (users_use) exactly.

A small model is given a random state (who has used, can reach, has lapsed, pays,
when each first used, the last weeks' monthly-use ring), then the model's
``users_use`` and both references decide the same users from the same draws.
"""

import copy
import datetime as dt

import numpy as np
import pytest

from benchmarks import bench_step
from benchmarks.reference_mesa import DailyUseModel
from benchmarks.reference_numpy import daily_use
from model import MiniProgramModel
from model.params import PLATFORMS

N = 2000


def random_state(seed: int, params: dict | None = None):
    """A model at a week in 2020 (necessities lift on, both platforms open) with its
    users' state drawn at random."""
    model = MiniProgramModel(params, agents=N, merchant_agents=200, seed=seed,
                             end=dt.date(2020, 12, 31))
    model.t = t = next(i for i, d in enumerate(model.dates) if d >= dt.date(2020, 6, 1))
    model.catalog = {pl: np.full(len(model.catalog[pl]), 0.4) for pl in PLATFORMS}
    users, rng = model.users, np.random.default_rng(seed + 100)
    for pl in PLATFORMS:
        users.app[pl] = rng.random(N) < 0.8
        users.pay[pl] = rng.random(N) < 0.5
        users.ever_used[pl] = rng.random(N) < 0.7
        users.lapsed[pl] = users.ever_used[pl] & (rng.random(N) < 0.2)
        users.first_use[pl] = np.where(users.ever_used[pl], rng.integers(0, t + 1, N), -1)
        # earlier weeks: some users used, with probabilities anywhere in (0, 1)
        used = rng.random((4, N)) < 0.5
        users.month_log_stay[pl] = np.where(
            used, 7.5 * np.log1p(-rng.random((4, N))), 0.0).astype(np.float32)
    model.open_apps = (rng.random(N) < 0.2).astype(np.int8)
    # users covered on Alipay's launch day (no novelty, rule 8)
    users.covered = users.ever_used["alipay"] & (rng.random(N) < 0.3)
    assert model.necessities_from <= t
    return model, t


@pytest.mark.parametrize("seed, params", [
    (1, None),
    (2, {"users.habit_per_year": 0.8, "users.novelty_lift": 1.5, "users.novelty_years": 0.5,
         "apps.alipay_daily_open": 0.3, "users.pay_lift": 0.7}),
])
def test_references_decide_every_user_as_the_model_does(seed, params):
    model, t = random_state(seed, params)
    inputs = {pl: bench_step.platform_inputs(model, pl) for pl in PLATFORMS}
    ring_before = {pl: inputs[pl]["ring"].copy() for pl in PLATFORMS}
    state = copy.deepcopy(model.rng.bit_generator.state)
    model.users_use(t)
    expected = {pl: (model.users.active_today[pl].copy(), model.users.active_month[pl].copy())
                for pl in PLATFORMS}

    rng = np.random.default_rng()
    rng.bit_generator.state = copy.deepcopy(state)
    draws = {}
    for pl in PLATFORMS:  # the model draws wechat's uniforms, then alipay's
        draws[pl] = rng.random(N, dtype=np.float32)
    rng.bit_generator.state = copy.deepcopy(state)
    for pl in PLATFORMS:
        today, month = daily_use(**inputs[pl], rng=rng)
        np.testing.assert_array_equal(today, expected[pl][0])
        np.testing.assert_array_equal(month, expected[pl][1])
        np.testing.assert_array_equal(inputs[pl]["ring"], model.users.month_log_stay[pl])

        reference = DailyUseModel(**{**inputs[pl], "ring": ring_before[pl]}, draws=draws[pl])
        reference.step()
        m_today, m_month = reference.activity()
        # float64 against the model's float32: only a draw within rounding of a
        # threshold could differ, which these seeds do not produce
        np.testing.assert_array_equal(m_today, expected[pl][0])
        np.testing.assert_array_equal(m_month, expected[pl][1])
        # the rule acts in every part of the state
        assert 0 < today.sum() < month.sum() < N
        assert not (today & ~month).any()
        lapsed = model.users.lapsed[pl]
        assert not today[lapsed].any() and month[lapsed].any()  # earlier weeks still count



def test_calibration_estimate_counts_what_a_calibration_runs(tmp_path, monkeypatch):
    """bench_calibration's wall-time estimate counts the runs, emulator fits and emulated
    points that the calibration pipeline really makes (a tiny calibration, counted)."""
    from benchmarks.bench_calibration import estimate
    from calibration import calibrate as cal
    from calibration.emulator import Emulator

    (tmp_path / "data.csv").write_text("date,platform,series,value\n"
                                       "2018-06,wechat,miniprogram_dau,150\n"
                                       "2018-12,wechat,miniprogram_dau,210\n")
    settings = dict(replicates=2, agents=500, merchant_agents=200, budget=9, waves=2,
                    candidates=300, walkers=8, steps=40, ensemble_size=50,
                    check_draws=5, best_candidates=3, polish=2, seed=3)
    (tmp_path / "cal.toml").write_text(
        'scenario = "baseline"\ndata = "data.csv"\n'
        + "".join(f"{k} = {v}\n" for k, v in settings.items())
        + '[free]\n"users.engagement_base" = [-5.0, 0.0]\n'
        '"users.discovery_weekly_wechat" = [0.005, 0.15]\n')
    config = cal.load_config(tmp_path / "cal.toml")
    counted = {"runs": 0, "fits": 0, "points": 0}
    simulate, fit, predict = cal.simulate, Emulator.fit, Emulator.predict

    def counting_simulate(*args, **kwargs):
        counted["runs"] += 1
        return simulate(*args, **kwargs)

    def counting_fit(cls, *args, **kwargs):
        counted["fits"] += 1
        return fit(*args, **kwargs)

    def counting_predict(self, x, *args, **kwargs):
        counted["points"] += len(np.atleast_2d(x))
        return predict(self, x, *args, **kwargs)

    monkeypatch.setattr(cal, "simulate", counting_simulate)
    monkeypatch.setattr(Emulator, "fit", classmethod(counting_fit))
    monkeypatch.setattr(Emulator, "predict", counting_predict)
    cal.calibrate(config, workers=1, out=tmp_path, progress=False)

    unit = {"fit_s": 1.0, "refit_s": 1.0, "predict_s": 1.0, "predict_points": 1}
    guess = estimate(config, 1.0, unit)
    # the polish stops when least squares does: its share is counted at its most
    polish = guess["runs_by_part"]["polish"]
    assert polish == 2 * (2 + 1) * 2
    assert guess["runs"] - polish <= counted["runs"] <= guess["runs"]
    assert guess["fits"] == counted["fits"]
    # the MCMC's checks against earlier waves stop at the first that rules a point
    # out, so the estimate of emulated points is an upper bound
    assert counted["points"] <= guess["predicted_points"]
    assert guess["total_s"] >= counted["runs"] + counted["fits"] + counted["points"]
