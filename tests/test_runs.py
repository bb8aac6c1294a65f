"""Runs, results folders and the mpsim command, including each kind of bad input."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model import OUTPUT_NAMES, scenarios
from model.cli import main
from model.runner import _replicate, load_run, run_scenario

SHORT = dict(agents=1000, merchant_agents=300, start=dt.date(2014, 1, 1), end=dt.date(2019, 6, 30))


@pytest.mark.parametrize("name", sorted(scenarios.available()))
def test_every_shipped_scenario_runs_on_a_short_horizon(name):
    scenario = scenarios.load(name)
    frame = _replicate((scenario.overrides, SHORT, np.random.SeedSequence(1)))
    assert list(frame.columns) == list(OUTPUT_NAMES)
    assert frame["wechat.miniprogram_users_cumulative"].iloc[-1] > 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    result = run_scenario(scenarios.load("tiny"), workers=1, out=out, progress=False)
    return result


def test_a_run_writes_series_summary_manifest_and_plots(tiny_run):
    folder = tiny_run.path
    assert folder.parent.name == "tiny"
    info = json.loads((folder / "manifest.json").read_text())
    for key in ("parameters", "seeds", "versions", "git", "command", "started_utc",
                "wall_seconds", "run", "parameter_sources"):
        assert key in info
    series = pd.read_csv(folder / "series.csv")
    assert info["run"]["replicates"] == 2 and set(series["replicate"]) == {0, 1}
    # one seed per run: draws x replicates
    runs = series[["draw", "replicate"]].drop_duplicates()
    assert len(info["seeds"]["spawn_keys"]) == len(runs) == info["run"]["draws"] * 2
    assert set(OUTPUT_NAMES) <= set(series.columns)
    summary = pd.read_csv(folder / "summary.csv")
    assert {"mean", "p05", "p95"} <= set(summary.columns)
    assert (summary["p05"] <= summary["mean"] + 1e-9).all()
    assert (summary["mean"] <= summary["p95"] + 1e-9).all()
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert "daily_active_users.png" in pngs and "overview.png" in pngs
    assert not list(folder.parent.glob(".*partial"))


def test_saved_series_reload_as_the_simulated_frames(tiny_run):
    _, frames = load_run(tiny_run.path)
    for saved, simulated in zip(frames, tiny_run.frames):
        np.testing.assert_allclose(saved.to_numpy(), simulated.to_numpy(), rtol=1e-5)


def test_parallel_replicates_equal_serial_ones(tiny_run, tmp_path):
    parallel = run_scenario(scenarios.load("tiny"), workers=2, out=tmp_path, progress=False,
                            plots=False)
    for a, b in zip(parallel.frames, tiny_run.frames):
        pd.testing.assert_frame_equal(a, b)


def test_plot_redraws_from_saved_files(tiny_run):
    target = tiny_run.path / "merchants.png"
    target.unlink()
    assert main(["plot", str(tiny_run.path)]) == 0
    assert target.is_file() and target.stat().st_size > 10_000


def test_runs_never_overwrite_each_other(tmp_path):
    first = run_scenario(scenarios.load("tiny"), workers=1, out=tmp_path, progress=False,
                         plots=False, replicates=1)
    second = run_scenario(scenarios.load("tiny"), workers=1, out=tmp_path, progress=False,
                          plots=False, replicates=1)
    assert first.path != second.path and first.path.is_dir() and second.path.is_dir()


def test_a_folder_being_written_by_another_run_is_left_alone(tmp_path):
    import os

    from model.errors import ResultsExistError
    from model.runner import _lock, write_atomically

    other = tmp_path / ".20990101T000000Z.partial"
    other.mkdir()
    (other / "series.csv").write_text("theirs")
    lock = _lock(other)  # as the run writing it holds it
    try:
        with pytest.raises(ResultsExistError, match="another run is writing"):
            write_atomically(tmp_path / "20990101T000000Z", lambda folder: None)
    finally:
        os.close(lock)
    # once that run is gone, the folder is named as left by a killed run, still not reused
    with pytest.raises(ResultsExistError, match="was killed"):
        write_atomically(tmp_path / "20990101T000000Z", lambda folder: None)
    assert (other / "series.csv").read_text() == "theirs"
    assert not (tmp_path / "20990101T000000Z").exists()


def test_a_failed_run_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    import model.runner as runner

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(runner, "summarise", broken)
    with pytest.raises(RuntimeError):
        run_scenario(scenarios.load("tiny"), workers=1, out=tmp_path, progress=False,
                     replicates=1)
    assert list((tmp_path / "tiny").iterdir()) == []


def test_compare_writes_paired_differences(tmp_path, capsys):
    code = main(["compare", "tiny", "tiny", "--workers", "1", "--out", str(tmp_path),
                 "--quiet", "--replicates", "2"])
    assert code == 0
    [folder] = (tmp_path / "compare").iterdir()
    diffs = pd.read_csv(folder / "differences.csv")
    # the same scenario with the same seeds: every paired difference is exactly zero
    assert (diffs["mean_difference"] == 0).all() and len(diffs) > 0
    assert (folder / "compare_overlay.png").is_file()
    assert (folder / "compare_difference.png").is_file()


def test_compare_refuses_unpaired_runs_before_running_anything(tiny_run, tmp_path, capsys):
    code = main(["compare", str(tiny_run.path), "tiny", "--seed", "5", "--out", str(tmp_path),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"run folder {tiny_run.path}" in err and "scenario tiny" in err and "--seed" in err
    assert not any(tmp_path.iterdir())  # tiny was not run
    # different horizons cannot be paired week by week either
    assert main(["compare", "tiny", "no_red_envelope", "--replicates", "1", "--draws", "2",
                 "--agents", "500",
                 "--out", str(tmp_path), "--quiet"]) == 2
    assert "horizon" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_plot_says_what_kind_of_folder_it_was_given(tiny_run, tmp_path, capsys):
    (tmp_path / "differences.csv").write_text("scenario\n")
    assert main(["plot", str(tmp_path)]) == 2
    assert "a comparison folder, not a run folder" in capsys.readouterr().err


def test_list_and_params(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "no_red_envelope" in out and "Answers" in out
    assert main(["params", "--grep", "red_envelope.strength"]) == 0
    assert "source:" in capsys.readouterr().out


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, expected", [
    (["run", "nonexistent"], "no such scenario"),
    (["run", "tiny", "--replicates", "0"], "must be at least 1"),
    (["run", "tiny", "--agents", "ten"], "not an integer"),
    (["run", "tiny", "--agents", "50"], "run.agents"),
    (["plot", "/nonexistent/run"], "not a finished run folder"),
    (["sweep", "baseline", "--param", "red_envelope.strenght=0:2"], "did you mean"),
    (["sweep", "baseline", "--param", "red_envelope.strength=2:1"], "red_envelope.strength"),
    (["sensitivity", "SHORT", "--param", "red_envelope.strength=0:2"], "2020"),
])
def test_bad_input_exits_non_zero_with_one_line(args, expected, tmp_path, capsys):
    if "SHORT" in args:  # a scenario that stops before the outcomes' horizon
        short = tmp_path.parent / f"{tmp_path.name}-short.toml"
        short.write_text('extends = "tiny"\n[run]\nend = 2019-12-31\n')
        args = [str(short) if a == "SHORT" else a for a in args]
    out = ["--out", str(tmp_path)] if args[0] in ("run", "sweep", "sensitivity") else []
    try:
        code = main([*args, *out])
    except SystemExit as exc:  # argparse refuses bad flag values itself
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "error" in err
    assert not any(tmp_path.iterdir())


def test_an_output_folder_that_cannot_be_made_is_a_one_line_error(tmp_path, capsys):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    code = main(["run", "tiny", "--replicates", "1", "--agents", "500", "--quiet",
                 "--out", str(blocked / "results")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(blocked) in err


def test_the_installed_command_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "baseline"\n[traffic_sharing]\nexposure_weekly = 7\n')
    result = run_cli("run", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert str(bad) in message and "traffic_sharing.exposure_weekly" in message
    assert "value 7 is not allowed" in message and "[0.0, 1.0]" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [[], ["run"], ["compare"], ["plot"], ["list"], ["params"],
                                     ["sweep"], ["sensitivity"], ["calibrate"]])
def test_help_is_available_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0 and "usage: mpsim" in capsys.readouterr().out
