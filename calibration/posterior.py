r"""History matching in waves, then adaptive importance sampling: the posterior ensemble.

**Why this method.** The model is stochastic, has about 30 free parameters and costs
about a tenth of a second a run, so a calibration can afford a few thousand runs.
Samplers that run the model at every step (ABC-SMC, MCMC) need tens of thousands of
runs or more at this dimension. History matching (Craig et al. 1997; Vernon et al.
2010; Andrianakis et al. 2015) spends the runs on learning where the model *can* match
the figures: each wave runs the model at points not yet ruled out, fits an emulator
(:mod:`calibration.emulator`) to all runs so far, and rules out every point whose
implausibility (:mod:`calibration.likelihood`) exceeds a cutoff. Inside what is left,
the emulator is cheap enough to evaluate at a hundred thousand points, so the posterior
is sampled by importance sampling against it, with a proposal adapted over a few
rounds and the rounds combined as a deterministic mixture (AMIS, Cornuet et al. 2012).
The prior is uniform on the calibration file's bounds; a draw's weight is its
likelihood over the mixture's density.

Waves: the first is a Latin hypercube over the bounds (with the scenario's own values
as one point); a point is ruled out in wave 1 when its third-largest implausibility
is over the cutoff (a few figures may miss while the emulator is still rough), in
wave 2 its second-largest, and from wave 3 its largest. Each later wave's points are
drawn from the points not ruled out among ``candidates`` proposals, half uniform over
the bounds (whose survival rate estimates the share of the bounds not ruled out) and
half from a Student-t (5 degrees of freedom) around the survivors of the wave before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from .emulator import Emulator
from .likelihood import ErrorModel, kth_largest

#: Degrees of freedom of the Student-t proposals.
T_DF = 5
#: Proposal covariance = this x the (weighted) covariance of the points it follows.
INFLATE = 2.0
#: A proposal is fitted to draws whose (tempered) weights have an effective size of at
#: least this many per parameter.
FIT_SIZE = 10


@dataclass
class Settings:
    waves: int = 4
    wave_size: int = 400
    candidates: int = 10_000
    cutoff: float = 3.0
    proposal_samples: int = 10_000
    rounds: int = 6
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
    emulator: Emulator | None = None
    samples: np.ndarray | None = None       # importance samples, in [0, 1]
    log_weights: np.ndarray | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def weights(self) -> np.ndarray:
        w = np.exp(self.log_weights - self.log_weights.max())
        return w / w.sum()

    @property
    def effective_size(self) -> float:
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
                     replicate_var, records, emulator)


def effective_size(log_w: np.ndarray) -> float:
    """Kish's effective sample size of weights given by their logarithms."""
    w = np.exp(log_w - log_w.max())
    return float(w.sum() ** 2 / np.sum(w**2))


def tempered(log_w: np.ndarray, target: float) -> np.ndarray:
    """Log weights raised to the largest power in (0, 1] that keeps their effective
    size at least ``target``: a proposal fitted to them is broader than the weights
    alone would give while few draws carry the weight, and it narrows as they spread."""
    if effective_size(log_w) >= target:
        return log_w
    low, high = 0.0, 1.0
    for _ in range(50):
        mid = 0.5 * (low + high)
        if effective_size(mid * log_w) >= target:
            low = mid
        else:
            high = mid
    return low * log_w


def sample(posterior: Posterior, error_model: ErrorModel, settings: Settings, *,
           predict=None, say: Callable[[str], None] = lambda text: None) -> Posterior:
    """Importance-sample the posterior with the emulator (AMIS); fills ``samples``,
    ``log_weights`` and ``rounds`` of ``posterior`` and returns it.

    Each round's proposal is a Student-t fitted to all draws so far, weighted by their
    importance weights tempered (:func:`tempered`) to an effective size of at least
    :data:`FIT_SIZE` times the number of parameters; the first follows the design points
    weighted by their emulated likelihood, tempered the same way."""
    rng = np.random.default_rng([settings.seed, 11])
    predict = predict or (lambda em, x: em.predict(x))
    em = posterior.emulator
    dims = posterior.x.shape[1]
    fit_size = FIT_SIZE * dims
    mean, var = predict(em, posterior.x)
    loglik = error_model.log_likelihood(mean, var)
    start = tempered(loglik, min(fit_size, len(loglik) / 2))
    dist = _t_proposal(posterior.x, np.exp(start - start.max()))
    proposals, samples, logliks, counts = [], [], [], []
    for r in range(1, settings.rounds + 1):
        x, inside = _draw_in_box(dist, settings.proposal_samples, rng)
        proposals.append((dist, inside))
        m, v = predict(em, x)
        samples.append(x)
        logliks.append(error_model.log_likelihood(m, v))
        counts.append(len(x))
        all_x = np.vstack(samples)
        all_ll = np.concatenate(logliks)
        # deterministic mixture: every sample weighed against all rounds' proposals
        log_q = logsumexp(np.column_stack([
            np.log(n) + d.logpdf(all_x) - np.log(share)
            for n, (d, share) in zip(counts, proposals)]), axis=1) - np.log(sum(counts))
        log_w = all_ll - log_q
        ess = effective_size(log_w)
        posterior.rounds.append({"round": r, "samples": int(len(all_x)),
                                 "effective_size": round(ess, 1),
                                 "inside_bounds": round(float(inside), 4)})
        say(f"importance round {r}: {len(all_x)} samples, effective size {ess:.0f}")
        fit = tempered(log_w, min(fit_size, len(log_w) / 2))
        dist = _t_proposal(all_x, np.exp(fit - fit.max()))
    posterior.samples, posterior.log_weights = all_x, log_w
    return posterior


def systematic(weights: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices by systematic resampling of normalised ``weights``."""
    positions = (rng.random() + np.arange(count)) / count
    edges = np.cumsum(weights)
    edges[-1] = 1.0
    return np.searchsorted(edges, positions, side="right")
