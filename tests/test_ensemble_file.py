"""The ensemble file contract (model/ensemble.py): reading, checking and drawing."""

import numpy as np
import pytest

from model import ensemble
from model.errors import MpsimError


def _write(tmp_path, weights, values=None):
    values = values if values is not None else [[0.1 + 0.01 * i] for i in range(len(weights))]
    return ensemble.write(tmp_path / "ensemble.csv", ["red_envelope.send_prob"], values, weights,
                          best=0)


def test_written_ensemble_reads_back_with_normalised_weights(tmp_path):
    path = _write(tmp_path, [1.0, 3.0])
    ens = ensemble.read(path)
    assert ens.names == ("red_envelope.send_prob",)
    assert ens.weights.tolist() == [0.25, 0.75]
    assert ens.overrides(1) == {"red_envelope.send_prob": 0.11}
    assert ens.best == 0
    assert ens.effective_size() == pytest.approx(1 / (0.25**2 + 0.75**2))


def test_systematic_draws_follow_the_weights_and_repeat_with_the_seed(tmp_path):
    ens = ensemble.read(_write(tmp_path, [0.1, 0.2, 0.7]))
    draws = ens.draw(10, seed=5)
    assert draws == ens.draw(10, seed=5)
    counts = np.bincount(draws, minlength=3)
    assert counts.tolist() == [1, 2, 7]
    assert all(abs(c - 10 * w) < 1 for c, w in zip(counts, ens.weights))


@pytest.mark.parametrize("text, fragment", [
    ("member,weight\n", "no parameter columns"),
    ("member,red_envelope.send_prob\n0,0.1\n", "no 'weight' column"),
    ("member,weight,red_envelope.send_prob\n0,-1,0.1\n", "line 2: weight"),
    ("member,weight,red_envelope.send_prob\n0,1,abc\n", "line 2: red_envelope.send_prob"),
    ("member,weight,red_envelope.send_prob\n0,1,7\n", "expected a number in"),
    ("member,weight,no_such.param\n0,1,0.1\n", "unknown parameter"),
    ("member,weight,red_envelope.send_prob\n0,0,0.1\n", "no member with a weight above 0"),
])
def test_a_bad_ensemble_file_is_one_line_naming_the_file(tmp_path, text, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(MpsimError) as err:
        ensemble.read(path)
    message = str(err.value)
    assert fragment in message and str(path) in message and "\n" not in message
