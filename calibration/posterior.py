r"""History matching in waves, then MCMC on the emulator: the posterior ensemble.

**Why this method.** The model is stochastic, has about 30 free parameters and costs
about a tenth of a second a run, so a calibration can afford a few thousand runs.
Samplers that run the model at every step (ABC-SMC, MCMC) need tens of thousands of
runs or more at this dimension. History matching (Craig et al. 1997; Vernon et al.
2010; Andrianakis et al. 2015) spends the runs on learning where the model *can* match
the figures: each wave runs the model at points not yet ruled out, fits an emulator
(:mod:`calibration.emulator`) to all runs so far, and rules out every point whose
implausibility (:mod:`calibration.likelihood`) exceeds a cutoff. Inside what is left,
the emulator is cheap enough to evaluate at a few hundred thousand points, so the
posterior is sampled by Markov chain Monte Carlo against it (:func:`sample`; emcee).
The prior is uniform on the calibration file's bounds. Importance sampling with
adapted Student-t proposals was tried first and gave effective sizes under 50 of
60,000 draws on the shipped problem: the posterior is broad in most of the 30
directions and narrow in a few, which a single proposal cannot follow.

Waves: the first is a Latin hypercube over the bounds (with the scenario's own values
as one point); a point is ruled out in wave 1 when its third-largest implausibility
is over the cutoff (a few figures may miss while the emulator is still rough), in
wave 2 its second-largest, and from wave 3 its largest. Each later wave's points are
drawn from the points not ruled out among ``candidates`` proposals, half uniform over
the bounds (whose survival rate estimates the share of the bounds not ruled out) and
half from a Student-t (5 degrees of freedom) around the survivors of the wave before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from .emulator import Emulator
from .likelihood import ErrorModel, kth_largest

#: Degrees of freedom of the Student-t proposals.
T_DF = 5
#: Proposal covariance = this x the (weighted) covariance of the points it follows.
INFLATE = 2.0


@dataclass
class Settings:
    waves: int = 4
    wave_size: int = 400
    candidates: int = 10_000
    cutoff: float = 3.0
    walkers: int = 64
    steps: int = 8000
    seed: int = 1


@dataclass
class WaveRecord:
    wave: int
    points: int
    ruled_by: str
    candidates: int
    uniform_survival: float
    components: int
    training_points: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Posterior:
    """What :func:`history_match` and :func:`sample` found, in unit-cube coordinates."""

    x: np.ndarray                   # every design point run, points x parameters in [0, 1]
    outputs: np.ndarray             # points x targets, the replicates' mean on the log scale
    wave: np.ndarray                # the wave each point belongs to (1-based)
    replicate_var: np.ndarray       # per target, one run's variance about the mean
    records: list[WaveRecord] = field(default_factory=list)
    emulator: Emulator | None = None        # the last wave's
    emulators: list = field(default_factory=list)  # every wave's, in order
    samples: np.ndarray | None = None       # posterior draws, in [0, 1]
    log_weights: np.ndarray | None = None
    effective: float | None = None          # effective size, when the draws are a chain
    sample_log_prob: np.ndarray | None = None  # each draw's emulated log-posterior
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def weights(self) -> np.ndarray:
        w = np.exp(self.log_weights - self.log_weights.max())
        return w / w.sum()

    @property
    def effective_size(self) -> float:
        if self.effective is not None:
            return self.effective
        w = self.weights
        return float(1.0 / np.sum(w**2))


def _rule(wave: int) -> int:
    """Which largest implausibility rules a point out in ``wave`` (1-based)."""
    return max(1, 4 - wave)


def _t_proposal(points: np.ndarray, weights: np.ndarray | None = None):
    d = points.shape[1]
    w = np.full(len(points), 1.0 / len(points)) if weights is None else weights / weights.sum()
    mean = w @ points
    centred = points - mean
    cov = (centred * w[:, None]).T @ centred
    cov = INFLATE * cov + 1e-4 * np.eye(d)
    return stats.multivariate_t(loc=mean, shape=cov, df=T_DF)


def _draw_in_box(dist, n: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """``n`` draws of ``dist`` inside the unit cube, and the share of draws that fell in it."""
    kept, tried = [], 0
    while sum(len(k) for k in kept) < n and tried < 50 * n:
        x = np.atleast_2d(dist.rvs(size=max(n, 1000), random_state=rng))
        tried += len(x)
        kept.append(x[np.all((x >= 0) & (x <= 1), axis=1)])
    got = np.vstack(kept)
    inside = len(got) / tried
    return got[:n], max(inside, 1.0 / tried)


def not_ruled_out(x: np.ndarray, emulators: list, model: ErrorModel, cutoff: float,
                  predict) -> np.ndarray:
    """Whether each point of ``x`` survives every given wave's emulator (the emulator
    fitted after wave *i* rules a point out by the rule of wave *i + 1*). Points far
    from any run look good to a late emulator, which saw only the region left; the
    earlier waves' emulators, which saw more of the bounds, keep them out."""
    keep = np.ones(len(x), dtype=bool)
    for i, em in enumerate(emulators, start=1):
        if not keep.any():
            break
        mean, var = predict(em, x[keep])
        impl = kth_largest(model.implausibility(mean, var), _rule(i + 1))
        keep[np.flatnonzero(keep)[impl > cutoff]] = False
    return keep


def history_match(simulate: Callable[[np.ndarray], np.ndarray], dims: int,
                  error_model: Callable[[np.ndarray | None], ErrorModel], settings: Settings,
                  *, start: np.ndarray | None = None, predict=None, fit_tasks=None,
                  saved: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
                  on_wave: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                  say: Callable[[str], None] = lambda text: None) -> Posterior:
    """Run the waves.

    ``simulate(x)`` returns the outputs on the log scale, points x replicates x targets,
    at unit-cube points ``x``. ``error_model(replicate_var, outputs)`` builds the error
    model from the replicate variance and the replicate means of every point run so far.
    ``saved[wave] = (x, outputs)`` are waves already run (a resumed calibration):
    they are not run again, and as everything else is seeded the result is the same.
    ``on_wave(wave, x, outputs)`` is called after each wave is run (for checkpoints).
    ``predict(emulator, x)`` and ``fit_tasks(fn, tasks)`` may run in parallel.
    """
    rng = np.random.default_rng([settings.seed, 7])
    predict = predict or (lambda em, x: em.predict(x))
    saved = saved or {}
    xs, ys, waves = [], [], []
    replicate_var = y_all = None
    emulator: Emulator | None = None
    emulators: list[Emulator] = []
    records: list[WaveRecord] = []
    survivors: np.ndarray | None = None
    for wave in range(1, settings.waves + 1):
        if wave == 1:
            design = stats.qmc.LatinHypercube(d=dims, seed=rng).random(settings.wave_size)
            if start is not None:
                design[0] = start
            ruled_by, n_candidates, survival = "none (first wave)", 0, 1.0
        else:
            half = settings.candidates // 2
            uniform = rng.random((half, dims))
            around = (_draw_in_box(_t_proposal(survivors), settings.candidates - half, rng)[0]
                      if survivors is not None and len(survivors) > dims else rng.random((half, dims)))
            candidates = np.vstack([uniform, around])
            mean, var = predict(emulator, candidates)
            model = error_model(replicate_var, y_all)
            rule = _rule(wave)
            impl = kth_largest(model.implausibility(mean, var), rule)
            keep = impl <= settings.cutoff
            keep[keep] = not_ruled_out(candidates[keep], emulators[:-1], model,
                                       settings.cutoff, predict)
            survival = float(keep[:half].mean())
            ruled_by = f"{['', 'largest', '2nd largest', '3rd largest'][rule]} implausibility > {settings.cutoff:g}"
            n_candidates = len(candidates)
            if keep.sum() >= settings.wave_size:
                chosen = rng.choice(np.flatnonzero(keep), settings.wave_size, replace=False)
            else:  # too few survivors: take them all and the least implausible others
                order = np.argsort(impl)
                chosen = order[:settings.wave_size]
                say(f"wave {wave}: only {int(keep.sum())} of {n_candidates} candidates are not "
                    f"ruled out; the {settings.wave_size} least implausible are run")
            design = candidates[chosen]
        if wave in saved:
            design, outputs = saved[wave]
        else:
            outputs = simulate(design)
            if on_wave is not None:
                on_wave(wave, design, outputs)
        xs.append(design)
        ys.append(outputs)
        waves.append(np.full(len(design), wave))
        all_runs = np.concatenate(ys)  # points x replicates x targets
        if all_runs.shape[1] > 1:
            replicate_var = np.median(all_runs.var(axis=1, ddof=1), axis=0)
        else:
            replicate_var = np.zeros(all_runs.shape[2])
        x_all, y_all = np.vstack(xs), all_runs.mean(axis=1)
        emulator = Emulator.fit(x_all, y_all, seed=settings.seed + wave, run_tasks=fit_tasks,
                                previous=emulator)
        emulators.append(emulator)
        # the survivors of this wave's design under the new emulator guide the next wave
        mean, var = predict(emulator, design)
        impl = kth_largest(error_model(replicate_var, y_all).implausibility(mean, var),
                           _rule(min(wave + 1, settings.waves)))
        alive = design[impl <= settings.cutoff]
        survivors = alive if len(alive) > dims else design[np.argsort(impl)[:max(dims + 1, len(design) // 10)]]
        info = emulator.describe()
        records.append(WaveRecord(wave, len(design), ruled_by, n_candidates, survival,
                                  info["components"], info["training_points"]))
        say(f"wave {wave}: {len(design)} points run; share of the bounds not ruled out "
            f"{survival:.3g}; emulator of {info['components']} components")
    x_all = np.vstack(xs)
    return Posterior(x_all, np.concatenate(ys).mean(axis=1), np.concatenate(waves),
                     replicate_var, records, emulator, emulators)


def sample(posterior: Posterior, error_model: ErrorModel, settings: Settings, *,
           predict=None, say: Callable[[str], None] = lambda text: None) -> Posterior:
    """Sample the posterior with the emulator by Markov chain Monte Carlo; fills
    ``samples`` (equally weighted), ``effective`` and ``rounds`` of ``posterior``.

    emcee's ensemble sampler (Foreman-Mackey et al. 2013) with differential-evolution
    moves (ter Braak 2006; ter Braak and Vrugt 2008), which mix far better than its
    default stretch move at 30 dimensions. ``walkers`` chains start at the design points
    of highest emulated likelihood; the first half of the ``steps`` is discarded as
    burn-in; the effective size is the kept draws over the largest integrated
    autocorrelation time of any parameter (emcee's estimate)."""
    import emcee

    predict = predict or (lambda em, x: em.predict(x))
    em = posterior.emulator
    dims = posterior.x.shape[1]
    walkers = max(settings.walkers, 2 * dims + 2)

    guards = list(posterior.emulators[:-1])

    def log_prob(x):
        x = np.atleast_2d(x)
        out = np.full(len(x), -np.inf)
        inside = np.all((x >= 0.0) & (x <= 1.0), axis=1)
        if inside.any():
            inside[inside] = not_ruled_out(x[inside], guards, error_model, settings.cutoff,
                                           predict)
        if inside.any():
            m, v = predict(em, x[inside])
            out[inside] = error_model.log_likelihood(m, v)
        return out

    loglik = log_prob(posterior.x)
    order = np.argsort(loglik)[::-1]
    start = posterior.x[order[:walkers]][np.isfinite(loglik[order[:walkers]])]
    if not len(start):  # nothing survives every wave: sample without the earlier waves
        say("every design point is ruled out by some earlier wave; the posterior is "
            "sampled on the last emulator alone (a larger budget would narrow it properly)")
        guards.clear()
        loglik = log_prob(posterior.x)
        order = np.argsort(loglik)[::-1]
        start = posterior.x[order[:walkers]]
    if len(start) < walkers:  # fewer design points than walkers: jitter copies
        rng = np.random.default_rng([settings.seed, 17])
        extra = start[rng.integers(len(start), size=walkers - len(start))]
        start = np.vstack([start, np.clip(extra + rng.normal(0, 0.01, extra.shape), 0, 1)])
    moves = [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    sampler = emcee.EnsembleSampler(walkers, dims, log_prob, vectorize=True, moves=moves)
    sampler.random_state = np.random.RandomState(settings.seed % 2**32).get_state()
    sampler.run_mcmc(start, settings.steps, progress=False)
    burn = settings.steps // 2
    chain = sampler.get_chain(discard=burn)  # steps x walkers x dims
    # emcee warns through logging when the chain is under 50 autocorrelation times; the
    # calibration says so itself, in its own line and in the manifest
    autocorr_log = logging.getLogger("emcee.autocorr")
    level = autocorr_log.level
    autocorr_log.setLevel(logging.ERROR)
    try:
        tau = emcee.autocorr.integrated_time(chain, quiet=True)
    finally:
        autocorr_log.setLevel(level)
    lengths = chain.shape[0] / max(float(np.max(tau)), 1.0)
    kept = chain.shape[0] * chain.shape[1]
    # A walker that rejects every proposal repeats its position, and the autocorrelation
    # estimate of a short chain can miss it: the effective size is never more than the
    # distinct positions the chains visited.
    distinct = len(np.unique(chain.reshape(-1, dims), axis=0))
    effective = float(min(kept / max(float(np.max(tau)), 1.0), distinct))
    posterior.samples = chain.reshape(-1, dims)
    posterior.sample_log_prob = sampler.get_log_prob(discard=burn).reshape(-1)
    posterior.log_weights = np.zeros(len(posterior.samples))
    posterior.effective = effective
    posterior.rounds = [{"walkers": walkers, "steps": settings.steps, "burn_in": burn,
                         "kept_draws": kept, "max_autocorrelation_steps": round(float(np.max(tau)), 1),
                         "kept_chain_in_autocorrelation_times": round(lengths, 1),
                         "acceptance": round(float(np.mean(sampler.acceptance_fraction)), 3),
                         "distinct_draws": int(distinct),
                         "held_to_every_wave": bool(guards),
                         "effective_size": round(effective, 1)}]
    say(f"MCMC on the emulator: {walkers} walkers x {settings.steps} steps; acceptance "
        f"{np.mean(sampler.acceptance_fraction):.2f}; autocorrelation {np.max(tau):.0f} steps; "
        f"effective size {effective:.0f}"
        + ("" if lengths >= 50 else
           f" (rough: the kept chain is {lengths:.0f} autocorrelation times long, and "
           "emcee's estimate is trusted from 50)"))
    return posterior


def systematic(weights: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices by systematic resampling of normalised ``weights``."""
    positions = (rng.random() + np.arange(count)) / count
    edges = np.cumsum(weights)
    edges[-1] = 1.0
    return np.searchsorted(edges, positions, side="right")


def resample_members(samples: np.ndarray, weights: np.ndarray, count: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """At most ``count`` members from weighted ``samples``: the indices of the distinct
    parameter sets drawn and how many draws each got.

    Systematic resampling of the draws in a random order: a chain's draws are stored
    step by step across its walkers, and evenly spaced picks in that order would
    follow one walker. A chain repeats a rejected position, so repeats are merged."""
    order = rng.permutation(len(samples))
    picks = order[systematic(weights[order], count, rng)]
    _, first, inverse = np.unique(samples[picks], axis=0, return_index=True,
                                  return_inverse=True)
    return picks[first], np.bincount(inverse.ravel())
