"""The posterior ensemble: parameter sets with weights, as ``mpsim calibrate`` writes them.

An ensemble file is a CSV with the columns ``member`` (an integer id), ``weight`` (a
number >= 0; normalised on load) and one column per calibrated parameter, named by
its dotted name (``red_envelope.send_prob``). A parameter with no column keeps the
scenario's value. An optional ``best`` column marks (with 1) the member that is the
calibration's best point.

The shipped baseline's ensemble is ``model/ensemble.csv``, written by
``scripts/adopt_calibration.py`` together with ``model/calibrated.toml`` (the best
point). Runs draw ``D`` members from it (``Ensemble.draw``) by systematic resampling
of the weights, so that an unweighted mean over the drawn members estimates the
posterior mean; the draw depends only on the ensemble and the seed, so every scenario
of a comparison gets the same members.

Example::

    from model import ensemble
    posterior = ensemble.load()               # None if no ensemble is shipped
    members = posterior.draw(20, seed=1)      # member indices, with repeats
    posterior.overrides(members[0])           # {"red_envelope.send_prob": 0.31, ...}
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MpsimError
from .params import check_param

SHIPPED = Path(__file__).with_name("ensemble.csv")
#: Stream id mixed into the seed of the member draw, so it never shares a stream
#: with the replicate seeds spawned from the same root seed.
_DRAW_STREAM = 0x656E73


class EnsembleError(MpsimError, ValueError):
    """An ensemble file that cannot be used."""


@dataclass(frozen=True)
class Ensemble:
    """Weighted parameter sets: ``values[i, j]`` is member ``i``'s value of ``names[j]``."""

    names: tuple[str, ...]
    values: np.ndarray
    weights: np.ndarray
    members: np.ndarray
    best: int
    source: str

    def __len__(self) -> int:
        return len(self.weights)

    def effective_size(self) -> float:
        """Kish's effective sample size, ``1 / sum(w_i^2)`` for normalised weights."""
        return float(1.0 / np.sum(self.weights ** 2))

    def overrides(self, index: int) -> dict[str, float]:
        """Member ``index``'s parameter values by dotted name."""
        return {name: float(v) for name, v in zip(self.names, self.values[index])}

    def draw(self, count: int, seed: int) -> list[int]:
        """``count`` member indices by systematic resampling of the weights.

        One uniform offset from ``seed``; the draws are sorted by member, so a member of
        weight ``w`` appears ``floor(count w)`` or ``ceil(count w)`` times.
        """
        if count < 1:
            raise EnsembleError(f"draws: value {count} is not allowed; expected an integer >= 1")
        rng = np.random.default_rng([int(seed), _DRAW_STREAM])
        positions = (rng.random() + np.arange(count)) / count
        edges = np.cumsum(self.weights)
        edges[-1] = 1.0
        return [int(i) for i in np.searchsorted(edges, positions, side="right")]


def _number(path: Path, line: int, column: str, text: str, allowed: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise EnsembleError(f"{path}: line {line}: {column}: value {text!r} is not allowed; "
                            f"expected {allowed}")
    return value


def read(path: str | Path) -> Ensemble:
    """Read and check an ensemble file; every mistake is one line naming file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise EnsembleError(f"{path}: cannot read the ensemble file: {reason}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise EnsembleError(f"{path}: empty file; expected a header with member, weight and "
                            "parameter columns")
    header = [h.strip() for h in rows[0]]
    for required in ("member", "weight"):
        if required not in header:
            raise EnsembleError(f"{path}: line 1: no {required!r} column; the header has "
                                f"{', '.join(header)}")
    names = [h for h in header if h not in ("member", "weight", "best", "loss")]
    if not names:
        raise EnsembleError(f"{path}: line 1: no parameter columns besides member and weight")
    members, weights, values, best = [], [], [], None
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise EnsembleError(f"{path}: line {line}: {len(row)} cells; expected "
                                f"{len(header)} as in the header")
        cells = dict(zip(header, (c.strip() for c in row)))
        members.append(int(_number(path, line, "member", cells["member"], "an integer")))
        weight = _number(path, line, "weight", cells["weight"], "a number >= 0")
        if weight < 0:
            raise EnsembleError(f"{path}: line {line}: weight: value {cells['weight']!r} is "
                                "not allowed; expected a number >= 0")
        weights.append(weight)
        point = []
        for name in names:
            point.append(check_param(name, _number(path, line, name, cells[name], "a number"),
                                     f"{path}: line {line}"))
        values.append(point)
        if cells.get("best", "0") in ("1", "1.0", "true", "True"):
            best = len(values) - 1
    total = float(np.sum(weights)) if weights else 0.0
    if total <= 0:
        raise EnsembleError(f"{path}: no member with a weight above 0")
    weights_array = np.asarray(weights, dtype=float) / total
    if best is None:
        best = int(np.argmax(weights_array))
    return Ensemble(tuple(names), np.asarray(values, dtype=float), weights_array,
                    np.asarray(members, dtype=int), best, str(path))


def load(path: str | Path | None = None) -> Ensemble | None:
    """The ensemble at ``path``, or the shipped one; None if none is shipped."""
    if path is None:
        if not SHIPPED.is_file():
            return None
        path = SHIPPED
    return read(path)


def write(path: str | Path, names, values, weights, *, best: int | None = None,
          losses=None) -> Path:
    """Write an ensemble file (``values``: members x names) that ``read`` accepts."""
    path = Path(path)
    values = np.asarray(values, dtype=float)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["member", "weight", "best", *([] if losses is None else ["loss"]), *names])
        for i, (weight, point) in enumerate(zip(weights, values)):
            extra = [] if losses is None else [repr(float(losses[i]))]
            out.writerow([i, repr(float(weight)), int(best == i), *extra,
                          *(repr(float(v)) for v in point)])
    return path
