"""The scenario levers move outcomes the right way, over paired replicates.

Replicates share seeds across scenarios (as ``mpsim compare`` does), so each claim is
a one-sided paired t-test at the 1% level over eight replicates.
"""

import datetime as dt
import functools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from model import scenarios
from model.runner import _replicate, replicate_seeds

pytestmark = pytest.mark.slow
RUN = dict(agents=5000, merchant_agents=1000, start=dt.date(2014, 1, 1), end=dt.date(2020, 6, 30))


@functools.cache
def replicates(name, n=8, seed=99):
    scenario = scenarios.load(name)
    return [_replicate((scenario.overrides, RUN, s)) for s in replicate_seeds(seed, n)]


def outcomes(name, column, day):
    return np.array([frame[column].asof(pd.Timestamp(day)) for frame in replicates(name)])


def paired_less(a, b):
    """p-value that a < b on average (paired)."""
    return stats.ttest_rel(a, b, alternative="less").pvalue


@pytest.mark.parametrize("column, day", [
    ("wechat.pay_users", dt.date(2017, 12, 31)),
    ("wechat.miniprogram_users_cumulative", dt.date(2018, 12, 31)),
    ("wechat.miniprogram_dau", dt.date(2018, 12, 31)),
])
def test_without_red_envelopes_wechat_has_fewer_payers_and_mini_program_users(column, day):
    without = outcomes("no_red_envelope", column, day)
    baseline = outcomes("baseline", column, day)
    assert paired_less(without, baseline) < 0.01


def test_stronger_red_envelopes_bring_more_wechat_payers():
    day = dt.date(2016, 12, 31)
    assert paired_less(outcomes("baseline", "wechat.pay_users", day),
                       outcomes("red_envelope_strong", "wechat.pay_users", day)) < 0.01


def test_without_traffic_sharing_alipay_has_fewer_mini_program_users():
    day = dt.date(2020, 3, 31)
    column = "alipay.miniprogram_users_cumulative"
    assert paired_less(outcomes("traffic_sharing_off", column, day),
                       outcomes("baseline", column, day)) < 0.01


def test_traffic_sharing_changes_nothing_before_it_starts():
    day = dt.date(2018, 12, 1)
    column = "alipay.miniprogram_users_cumulative"
    np.testing.assert_array_equal(outcomes("traffic_sharing_off", column, day),
                                  outcomes("baseline", column, day))
