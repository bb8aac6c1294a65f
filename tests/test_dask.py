"""Runs on a real Dask cluster (on loopback) equal runs on local processes, bit for bit.

Seeds belong to the tasks, not to the workers, so the executor that ran a task cannot
change its result.
"""

import os

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from model import scenarios  # noqa: E402
from model.executor import DASK_ENV, executor, run_tasks  # noqa: E402
from model.runner import compare, run_scenario  # noqa: E402
from model.sweep import parse_ranges, sweep  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    import dask

    # Dask's default MALLOC_TRIM_THRESHOLD_ for workers slows this numpy model 2-3x.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as local:
            yield local


def test_replicates_on_dask_equal_local_ones_bit_for_bit(cluster, tmp_path):
    tiny = scenarios.load("tiny")
    local = run_scenario(tiny, workers=2, out=tmp_path / "local", plots=False, progress=False)
    remote = run_scenario(tiny, dask_address=cluster.scheduler_address, out=tmp_path / "dask",
                          plots=False, progress=False)
    # one run per ensemble draw and replicate
    assert len(remote.frames) == len(local.frames) == len(local.plan.members) * tiny.run["replicates"]
    for a, b in zip(local.frames, remote.frames):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_comparisons_on_dask_equal_local_ones(cluster, tmp_path):
    other = tmp_path / "tiny_no_red_envelope.toml"
    other.write_text('extends = "tiny"\n[red_envelope]\nstrength = 0.0\n')
    args = dict(replicates=2, agents=1000, progress=False)
    local = compare(["tiny", str(other)], workers=2, out=tmp_path / "local", **args)
    remote = compare(["tiny", str(other)], dask_address=cluster.scheduler_address,
                     out=tmp_path / "dask", **args)
    pd.testing.assert_frame_equal(pd.read_csv(local / "differences.csv"),
                                  pd.read_csv(remote / "differences.csv"), check_exact=True)


def test_sweeps_on_dask_equal_local_ones(cluster, tmp_path):
    ranges = parse_ranges(["red_envelope.strength=0:2"])
    args = dict(samples=3, design_kind="grid", seed=3, replicates=2, agents=800,
                progress=False)
    local = sweep(scenarios.load("tiny"), ranges, workers=2, out=tmp_path / "local", **args)
    remote = sweep(scenarios.load("tiny"), ranges, dask_address=cluster.scheduler_address,
                   out=tmp_path / "dask", **args)
    pd.testing.assert_frame_equal(pd.read_csv(local / "samples.csv"),
                                  pd.read_csv(remote / "samples.csv"), check_exact=True)


def test_calibration_evaluations_on_dask_equal_local_ones(cluster, tmp_path):
    from calibration import calibrate as cal
    from tests.test_calibration import small_config

    config = small_config(tmp_path)
    local = cal.calibrate(config, workers=2, out=tmp_path / "local", progress=False)
    remote = cal.calibrate(config, dask_address=cluster.scheduler_address,
                           out=tmp_path / "dask", progress=False)
    assert remote.loss == local.loss
    assert remote.best == local.best
    pd.testing.assert_frame_equal(pd.read_csv(local.path / "evaluations.csv"),
                                  pd.read_csv(remote.path / "evaluations.csv"), check_exact=True)


def test_the_environment_variable_selects_the_cluster(cluster, monkeypatch):
    monkeypatch.setenv(DASK_ENV, cluster.scheduler_address)
    with executor(workers=1) as pool:
        assert "distributed" in type(pool).__module__
        assert run_tasks(abs, [-1, -2, 3], pool, progress=False) == [1, 2, 3]
    monkeypatch.delenv(DASK_ENV)
    assert os.environ.get(DASK_ENV) is None


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    from model import executor as executors
    from model.errors import MpsimError

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", "2s")  # the message, not the wait

    with pytest.raises(MpsimError, match="--dask tcp://127.0.0.1:1: cannot reach the Dask"):
        with executor(dask_address="tcp://127.0.0.1:1"):
            pass
    monkeypatch.setenv(DASK_ENV, "tcp://127.0.0.1:1")
    with pytest.raises(MpsimError, match=f"{DASK_ENV}=tcp://127.0.0.1:1: cannot reach"):
        with executor(workers=1):
            pass
