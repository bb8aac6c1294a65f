"""A seeded run's key outputs against tests/baseline.json.

With the numpy and scipy the file was made with, the run must match exactly: any
change to the model's outputs shows. With other versions the random streams or
float rounding may differ, so the run must match within 6% (20,000 agents: the
replicate spread of these outputs is 1-3%). Regenerate the file on purpose with
``python scripts/regenerate_baseline.py``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy

from scripts.regenerate_baseline import PATH, key_outputs

STORED = json.loads(Path(PATH).read_text())
SAME_STACK = STORED["numpy"] == np.__version__ and STORED["scipy"] == scipy.__version__
TOLERANCE = 0.0 if SAME_STACK else 0.06


def mismatches(outputs):
    bad = []
    for key, by_date in STORED["outputs"].items():
        for day, expected in by_date.items():
            got = outputs[key][day]
            if abs(got - expected) > TOLERANCE * max(abs(expected), 1e-9) + 1e-12:
                bad.append((key, day, expected, got))
    return bad


@pytest.fixture(scope="module")
def current():
    return key_outputs()


def test_seeded_run_matches_the_stored_baseline(current):
    assert mismatches(current) == []


def test_a_changed_model_does_not_match():
    changed = key_outputs({"red_envelope.activation_prob": 0.1, "users.engagement_catalog": 1.0})
    assert len(mismatches(changed)) > 5
