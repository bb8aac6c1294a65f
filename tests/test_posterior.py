"""The calibration's error model, emulator and sampler, on problems with known answers."""

import datetime as dt
import math

import numpy as np
import pytest

from calibration.data import Target
from calibration.emulator import Emulator
from calibration.likelihood import (OBSERVATION_SD, ErrorModel, fit_discrepancy,
                                    kth_largest, observation_var, to_scale)
from calibration.posterior import (Settings, history_match, resample_members, sample,
                                  systematic)


def target(value, kind="exact", weight=1.0, unit="million_users"):
    return Target(row=2, date=dt.date(2019, 1, 1), platform="wechat",
                  series="miniprogram_dau", value=value, kind=kind, weight=weight,
                  unit=unit, label="t")


def test_observation_error_follows_the_weight_of_the_tier():
    sds = np.sqrt(observation_var([target(1, weight=w) for w in (4, 2, 1, 0.5)]))
    assert sds == pytest.approx(OBSERVATION_SD / np.sqrt([4, 2, 1, 0.5]))


def test_bounds_count_one_sided_in_likelihood_and_implausibility():
    targets = [target(100.0, "lower"), target(100.0, "upper"), target(100.0)]
    model = ErrorModel(targets, 0.0)
    above = to_scale(np.array([[200.0, 200.0, 200.0]]), targets)
    impl = model.implausibility(above)[0]
    assert impl[0] == 0.0 and impl[1] == pytest.approx(math.log(2) / OBSERVATION_SD)
    assert impl[2] == impl[1]
    below = to_scale(np.array([[50.0, 50.0, 50.0]]), targets)
    assert model.implausibility(below)[0][1] == 0.0


def test_a_missing_simulated_value_is_far_off_not_infinite():
    h = to_scale(np.array([[np.nan]]), [target(100.0)])
    assert np.isfinite(h).all() and h[0, 0] == pytest.approx(math.log(0.1))


def test_kth_largest():
    assert kth_largest(np.array([[1.0, 5.0, 3.0]]), 2)[0] == 3.0
    assert kth_largest(np.array([[1.0, 5.0, 3.0]]), 9)[0] == 1.0


def test_discrepancy_makes_the_best_point_consistent_and_never_falls_below_the_stated():
    targets = [target(100.0) for _ in range(4)]
    # best point off by 30% on every figure: mean e^2 / (0.01 + d^2) = 1
    h = np.log(np.array([[130.0] * 4, [200.0] * 4]))
    d = fit_discrepancy(h, targets, 0.05)
    assert math.log(1.3) ** 2 / (OBSERVATION_SD**2 + d**2) == pytest.approx(1.0, rel=1e-6)
    exact = np.log(np.array([[101.0] * 4]))
    assert fit_discrepancy(exact, targets, 0.05) == 0.05


def test_emulator_interpolates_a_smooth_function_and_knows_where_it_has_not_looked():
    rng = np.random.default_rng(0)
    x = rng.random((80, 2)) * np.array([1.0, 0.5])  # nothing with x1 > 0.5
    f = lambda p: np.column_stack([np.sin(3 * p[:, 0]) + p[:, 1], np.cos(2 * p[:, 1])])
    em = Emulator.fit(x, f(x), seed=1)
    inside = rng.random((200, 2)) * np.array([1.0, 0.5])
    mean, var = em.predict(inside)
    assert np.abs(mean - f(inside)).max() < 0.05
    outside = np.column_stack([rng.random(200), 0.9 + 0.1 * rng.random(200)])
    _, var_out = em.predict(outside)
    assert np.median(var_out) > 10 * np.median(var)


def test_systematic_resampling_keeps_the_weights():
    w = np.array([0.5, 0.25, 0.25])
    picks = systematic(w, 1000, np.random.default_rng(3))
    assert np.bincount(picks, minlength=3) / 1000 == pytest.approx(w, abs=0.002)


def test_members_are_drawn_across_every_walker_of_a_chain():
    """A chain stored step by step across 64 walkers, each walker at its own place:
    1,000 members resampled from 128,000 draws come from all the walkers about
    equally (evenly spaced picks in storage order would all come from one or two)."""
    walkers, steps = 64, 2000
    chain = np.tile(np.arange(walkers, dtype=float), (steps, 1))  # steps x walkers
    chain = chain[..., None] + np.arange(steps)[:, None, None] * 1e-6  # distinct draws
    samples = chain.reshape(-1, 1)
    members, counts = resample_members(samples, np.full(len(samples), 1 / len(samples)),
                                       1000, np.random.default_rng(0))
    assert counts.sum() == 1000
    per_walker = np.bincount(np.rint(samples[members, 0]).astype(int), weights=counts,
                             minlength=walkers)
    assert (per_walker > 0).all()
    assert per_walker.max() < 3 * 1000 / walkers


def test_repeated_draws_merge_into_one_weighted_member():
    samples = np.repeat(np.array([[0.1], [0.2], [0.3]]), [500, 300, 200], axis=0)
    members, counts = resample_members(samples, np.full(1000, 1e-3), 10_000,
                                       np.random.default_rng(1))
    assert len(members) == 3
    # in a random order the counts are no longer exact, but close (multinomial sd ~46)
    assert dict(zip(samples[members, 0], counts)) == pytest.approx(
        {0.1: 5000, 0.2: 3000, 0.3: 2000}, abs=150)


@pytest.mark.slow
def test_the_sampler_matches_the_exact_posterior_of_a_known_model():
    """A 4-parameter model whose outputs are known in closed form: the ensemble's mean
    and spread match a brute-force posterior over 400,000 uniform draws."""
    d, k = 4, 6
    a = np.random.default_rng(0).normal(size=(d, k))
    f = lambda x: np.log(5 + x @ a)
    truth = np.array([0.3, 0.6, 0.5, 0.8])
    targets = [target(float(v), weight=4.0) for v in np.exp(f(truth[None]))[0]]
    noise = np.random.default_rng(1)

    def simulate(x):
        return f(x)[:, None, :] + noise.normal(0, 0.01, size=(len(x), 3, k))

    def model(rv, outputs=None):
        return ErrorModel(targets, 0.0, rv)

    settings = Settings(waves=3, wave_size=80, candidates=4000, walkers=32, steps=2000,
                        seed=3)
    post = history_match(simulate, d, model, settings)
    post_rv = post.replicate_var
    post = sample(post, model(post_rv), settings)
    u = np.random.default_rng(5).random((400_000, d))
    ll = model(post_rv).log_likelihood(f(u))
    ref = np.exp(ll - ll.max())
    ref /= ref.sum()
    ref_mean = ref @ u
    ref_sd = np.sqrt(ref @ (u - ref_mean) ** 2)
    w = post.weights
    mean = w @ post.samples
    sd = np.sqrt(w @ (post.samples - mean) ** 2)
    assert post.effective_size > 1000
    # within a fifth of the posterior sd for the mean, 15% for the sd
    assert (np.abs(mean - ref_mean) < 0.2 * ref_sd).all()
    assert sd == pytest.approx(ref_sd, rel=0.15)
    # the ensemble resampled from the chain, as the calibration ships it, too
    members, counts = resample_members(post.samples, w, 1000, np.random.default_rng(6))
    cw = counts / counts.sum()
    ens = post.samples[members]
    ens_mean = cw @ ens
    assert len(members) > 500
    assert (np.abs(ens_mean - ref_mean) < 0.25 * ref_sd).all()
    assert np.sqrt(cw @ (ens - ens_mean) ** 2) == pytest.approx(ref_sd, rel=0.2)
