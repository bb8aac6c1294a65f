"""Properties that hold for any parameters in range (Hypothesis) and any seed."""

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model import OUTPUT_NAMES, simulate
from model.params import BY_NAME

LEVERS = ["red_envelope.strength", "red_envelope.send_prob", "red_envelope.activation_prob",
          "wechat_pay.organic_weekly", "users.discovery_weekly_wechat",
          "users.discovery_weekly_alipay", "apps.alipay_daily_open",
          "users.discovery_spread", "alipay.first_party_catalog",
          "traffic_sharing.exposure_weekly", "wufu.activity_lift", "merchants.reach_sensitivity",
          "merchants.multihoming_discount", "alipay.first_party_coverage"]


def in_range(name):
    spec = BY_NAME[name]
    return st.floats(spec.low, spec.high, allow_nan=False)


@st.composite
def parameter_sets(draw):
    return {name: draw(in_range(name)) for name in LEVERS}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=parameter_sets(), seed=st.integers(0, 2**32 - 1))
def test_outputs_are_consistent_counts(params, seed):
    frame = simulate(params, agents=600, merchant_agents=200, end=dt.date(2019, 12, 31),
                     seed=seed)
    assert list(frame.columns) == list(OUTPUT_NAMES)
    values = frame.drop(columns="wechat.red_envelope_participants")
    assert (values.fillna(0) >= 0).all().all()
    for pl in ("wechat", "alipay"):
        ever = frame[f"{pl}.miniprogram_users_cumulative"].to_numpy()
        assert np.all(np.diff(ever) >= 0), "ever-used never falls"
        assert np.all(frame[f"{pl}.miniprogram_dau"] <= frame[f"{pl}.miniprogram_mau"] + 1e-9)
        assert np.all(frame[f"{pl}.miniprogram_mau"] <= ever + 1e-9)
        assert np.all(frame[f"{pl}.pay_users"] <= frame[f"{pl}.app_users"] + 1e-9)
        assert np.all(np.diff(frame[f"{pl}.pay_users"].to_numpy()) >= 0)
    for share in ("all.users_multihoming_share", "all.merchants_multihoming_share",
                  "wechat.miniprogram_dau_share"):
        assert frame[share].dropna().between(0, 1).all()
    shares = frame["wechat.miniprogram_dau_share"] + frame["alipay.miniprogram_dau_share"]
    assert np.allclose(shares.dropna(), 1.0)
    festival = frame["all.spring_festival"] == 1
    assert frame.loc[~festival, "wechat.red_envelope_participants"].isna().all()
    assert (frame.loc[festival, "wechat.red_envelope_participants"]
            <= frame.loc[festival, "wechat.app_users"] + 1e-9).all()


def test_users_on_both_platforms_never_exceed_users_on_either():
    from model import MiniProgramModel

    model = MiniProgramModel(agents=2000, merchant_agents=400, end=dt.date(2020, 6, 30), seed=5)
    while model.running:
        model.step()
        month = model.users.active_month
        both = np.count_nonzero(month["wechat"] & month["alipay"])
        assert both <= min(np.count_nonzero(month["wechat"]), np.count_nonzero(month["alipay"]))
    assert isinstance(model.results(), pd.DataFrame)


def test_same_seed_same_output_and_different_seed_different_output():
    run = dict(agents=1500, merchant_agents=300, end=dt.date(2019, 6, 30))
    first = simulate(seed=11, **run)
    again = simulate(seed=11, **run)
    other = simulate(seed=12, **run)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert (first["wechat.miniprogram_dau"] != other["wechat.miniprogram_dau"]).sum() > 50


def test_seed_sequences_work_as_seeds():
    run = dict(agents=800, merchant_agents=200, end=dt.date(2018, 1, 31))
    child = np.random.SeedSequence(3).spawn(2)[1]
    pd.testing.assert_frame_equal(simulate(seed=child, **run),
                                  simulate(seed=np.random.SeedSequence(3).spawn(2)[1], **run))


def test_finished_runs_release_their_memory():
    """A worker runs thousands of models; none may keep its arrays afterwards."""
    import tracemalloc

    run = dict(agents=5000, merchant_agents=500, end=dt.date(2016, 12, 31))
    simulate(seed=0, **run)  # warm caches
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for seed in range(1, 6):
        simulate(seed=seed, **run)
    growth = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # one leaked model of this size holds about 0.5 MB of arrays
    assert growth < 400_000
