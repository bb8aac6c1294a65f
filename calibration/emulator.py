r"""A Gaussian-process emulator of the model's outputs at the calibration targets.

The model takes about a tenth of a second per run at calibration size, so a
calibration can afford a few thousand runs, not the millions a sampler over 30
parameters needs. The emulator stands in for the model between runs: given the
simulated outputs :math:`Y` (points x targets, on the scale the calibration compares,
see :func:`calibration.likelihood.to_scale`) at design points :math:`X` (scaled to the
unit cube), it predicts a mean and a variance at any new point.

The targets are strongly correlated (a series at four dates), so the outputs are
standardised, reduced to their principal components (enough to explain
:data:`EXPLAINED` of the variance, at most :data:`MAX_COMPONENTS`), and each component
gets its own Gaussian process (scikit-learn's ``GaussianProcessRegressor``: a constant
times an anisotropic Matern 5/2 kernel, one length scale per parameter, plus a white
noise term for the replicate noise left in a few replicates' mean). A prediction's
variance is the components' predictive variances mapped back to the targets, plus
the variance the dropped components leave in the training data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from sklearn.gaussian_process import GaussianProcessRegressor
from scipy import optimize
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

#: Share of the standardised outputs' variance the kept components explain.
EXPLAINED = 0.99
MAX_COMPONENTS = 12
#: Most L-BFGS-B iterations of one component's hyperparameter fit (the fit starts from
#: the previous wave's values, so a few dozen usually do).
MAX_ITER = 60
#: The most design points one component's Gaussian process is fitted to (its cost
#: grows with the cube of this); with more, RECENT_SHARE of them are the latest points
#: and the rest an even random draw of the older ones, so the emulator still sees the
#: regions earlier waves ruled out.
MAX_TRAINING = 700
RECENT_SHARE = 0.7


def _lbfgs(obj_func, initial_theta, bounds):
    result = optimize.minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True,
                               bounds=bounds, options={"maxiter": MAX_ITER})
    return result.x, result.fun


def _fit_component(task) -> GaussianProcessRegressor:
    """One component's Gaussian process (a top-level function, so workers can run it)."""
    x, y, seed, start = task
    d = x.shape[1]
    kernel = start if start is not None else (
        ConstantKernel(1.0, (1e-3, 1e3))
        * Matern(length_scale=np.full(d, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5)
        + WhiteKernel(1e-2, (1e-6, 1.0)))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0,
                                  optimizer=_lbfgs, random_state=seed)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, y)
    return gp


class _Fast:
    """A fitted constant x Matern 5/2 + white-noise process, for fast prediction."""

    def __init__(self, gp: GaussianProcessRegressor):
        kernel = gp.kernel_
        self.constant = kernel.k1.k1.constant_value
        self.length = np.asarray(kernel.k1.k2.length_scale, float)
        self.noise = kernel.k2.noise_level
        self.train = gp.X_train_ / self.length
        self.alpha = gp.alpha_.ravel()
        self.inv_l = np.linalg.inv(gp.L_)
        self.y_mean = float(np.ravel(gp._y_train_mean)[0])
        self.y_std = float(np.ravel(gp._y_train_std)[0])

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.spatial.distance import cdist

        d = cdist(x / self.length, self.train) * np.sqrt(5.0)
        k = self.constant * (1.0 + d + d**2 / 3.0) * np.exp(-d)
        mean = k @ self.alpha * self.y_std + self.y_mean
        v = k @ self.inv_l.T
        var = np.maximum(self.constant + self.noise - np.sum(v**2, axis=1), 0.0)
        return mean, var * self.y_std**2


@dataclass
class Emulator:
    """Fitted emulator; :meth:`predict` gives targets' means and variances."""

    mean: np.ndarray          # per target, of the training outputs
    scale: np.ndarray         # per target standard deviation (floored)
    components: np.ndarray    # kept components x targets (orthonormal rows)
    residual_var: np.ndarray  # per target, variance the dropped components leave
    gps: list
    training_points: int
    _fast: list | None = field(default=None, repr=False, compare=False)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, seed: int = 0, run_tasks=None,
            previous: Emulator | None = None) -> Emulator:
        """Fit to ``x`` (points x parameters in [0, 1]) and ``y`` (points x targets).

        ``run_tasks(fn, tasks)`` runs the components' fits (in parallel when given);
        ``previous`` (the last wave's emulator) gives each component's starting
        hyperparameters."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        if len(x) > MAX_TRAINING:  # the latest points, and an even spread of the older
            recent = int(MAX_TRAINING * RECENT_SHARE)
            older = np.random.default_rng(seed).choice(len(x) - recent, MAX_TRAINING - recent,
                                                       replace=False)
            keep = np.concatenate([np.sort(older), np.arange(len(x) - recent, len(x))])
            x, y = x[keep], y[keep]
        mean = y.mean(axis=0)
        scale = np.maximum(y.std(axis=0), 1e-6)
        z = (y - mean) / scale
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        share = np.cumsum(s**2) / max(np.sum(s**2), 1e-300)
        keep = int(min(MAX_COMPONENTS, np.searchsorted(share, EXPLAINED) + 1, len(s)))
        components = vt[:keep]
        scores = z @ components.T
        residual = z - scores @ components
        residual_var = residual.var(axis=0) * scale**2
        starts = [gp.kernel_ for gp in previous.gps] if previous is not None else []
        tasks = [(x, scores[:, j], seed + j, starts[j] if j < len(starts) else None)
                 for j in range(keep)]
        gps = run_tasks(_fit_component, tasks) if run_tasks else [_fit_component(t) for t in tasks]
        return cls(mean, scale, components, residual_var, gps, len(x))

    def predict(self, x: np.ndarray, chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """Means and variances (points x targets) at ``x`` (points x parameters in [0, 1]).

        The same numbers as each component's ``GaussianProcessRegressor.predict(x,
        return_std=True)``, computed from the fitted processes with one matrix product
        per component (a sampler calls this tens of thousands of times)."""
        x = np.atleast_2d(np.asarray(x, float))
        if self._fast is None:
            self._fast = [_Fast(gp) for gp in self.gps]
        loadings = self.components * self.scale  # components x targets, in output units
        means, variances = [], []
        with threadpool_limits(limits=1):
            for start in range(0, len(x), chunk):
                part = x[start:start + chunk]
                mu = np.empty((len(part), len(self.gps)))
                var = np.empty_like(mu)
                for j, fast in enumerate(self._fast):
                    mu[:, j], var[:, j] = fast(part)
                means.append(self.mean + mu @ loadings)
                variances.append(var @ loadings**2 + self.residual_var)
        return np.vstack(means), np.vstack(variances)

    def describe(self) -> dict[str, float]:
        return {"components": len(self.gps), "training_points": self.training_points,
                "max_residual_sd": float(np.sqrt(self.residual_var.max()))}
