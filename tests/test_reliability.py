"""Reliability: every bad input refused on one line, nothing half-written left to look
finished, no worker outliving the command (docs/RELIABILITY.md says what is promised;
each test here proves one promise)."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration.calibrate import load_config
from calibration.data import load_targets
from model import scenarios, simulate
from model.cli import main
from model.errors import MpsimError, OutputError, ParameterError, RunFolderError
from model.runner import finished_run, load_run, run_scenario

ROOT = Path(__file__).resolve().parent.parent
HORIZON = dict(start=dt.date(2014, 1, 1), end=dt.date(2025, 12, 31))
#: Flags of a run small enough to take a second or two.
SMALL_RUN = ["--agents", "200", "--replicates", "1", "--point", "--workers", "1", "--quiet"]


def one_line_error(capsys, *names: str) -> str:
    """The command's stderr, checked: one line, an error, no traceback, naming each of
    ``names``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mpsim") and "error" in lines[0]
    assert "Traceback" not in err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """The installed command in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, **kwargs)


def assert_cli_one_line(result: subprocess.CompletedProcess, code: int, *names: str) -> str:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def finished_entries(folder: Path) -> list[Path]:
    """Everything under ``folder`` that looks like a finished results folder."""
    if not folder.exists():
        return []
    return [p for p in folder.rglob("*") if p.is_dir() and not p.name.startswith(".")
            and (p / "manifest.json").exists()]


# --- input files: encodings, byte-order marks, folders ----------------------------------

#: (id, non-ASCII text to put on line 2, encoder, what the message must say)
ENCODINGS = [
    ("latin-1", "Café", lambda t: t.encode("latin-1"), "byte"),
    ("cp1252", "Café – “Excel”", lambda t: t.encode("cp1252"), "byte"),
    ("gbk", "微信小程序 支付宝", lambda t: t.encode("gbk"), "byte"),
    ("utf-16", "微信 Café", lambda t: t.encode("utf-16"), "UTF-16"),
    ("utf-16-le, no mark", "微信", lambda t: t.encode("utf-16-le"), "NUL byte"),
    ("utf-32", "微信", lambda t: t.encode("utf-32"), "UTF-32"),
    ("binary", "", lambda t: bytes(range(256)) * 4, "NUL byte"),
]
ENCODING_IDS = [e[0] for e in ENCODINGS]

SCENARIO_TEXT = 'description = "encoding check"\n# {text}\nextends = "tiny"\n'
CALIBRATION_TEXT = 'description = "encoding check"\n# {text}\nscenario = "tiny"\n'
DATA_TEXT = ("date,platform,series,value,source\n"
             "2018-12,wechat,miniprogram_dau,210,{text}\n")


def _expect_encoding_message(line: str, expect: str, encoding: str) -> None:
    assert "UTF-8" in line
    assert expect in line
    if expect == "byte":  # the first bad byte is on line 2 of every file written here
        assert "(line 2)" in line


@pytest.mark.parametrize("encoding, text, encode, expect", ENCODINGS, ids=ENCODING_IDS)
def test_a_scenario_not_in_utf8_is_one_line_naming_the_file(encoding, text, encode, expect,
                                                            tmp_path, capsys):
    path = tmp_path / "scenario.toml"
    path.write_bytes(encode(SCENARIO_TEXT.format(text=text)))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), *SMALL_RUN]) == 2
    _expect_encoding_message(one_line_error(capsys, path), expect, encoding)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("encoding, text, encode, expect", ENCODINGS, ids=ENCODING_IDS)
def test_a_data_file_not_in_utf8_is_one_line_naming_the_file(encoding, text, encode, expect,
                                                             tmp_path, capsys):
    path = tmp_path / "targets.csv"
    path.write_bytes(encode(DATA_TEXT.format(text=text)))
    code = main(["calibrate", "--data", str(path), "--budget", "10", "--quiet",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    _expect_encoding_message(one_line_error(capsys, path), expect, encoding)
    assert finished_entries(tmp_path / "out") == []


@pytest.mark.parametrize("encoding, text, encode, expect", ENCODINGS, ids=ENCODING_IDS)
def test_a_calibration_file_not_in_utf8_is_one_line_naming_the_file(encoding, text, encode,
                                                                    expect, tmp_path, capsys):
    path = tmp_path / "calibration.toml"
    path.write_bytes(encode(CALIBRATION_TEXT.format(text=text)))
    code = main(["calibrate", "--config", str(path), "--budget", "10", "--quiet",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    _expect_encoding_message(one_line_error(capsys, path), expect, encoding)
    assert finished_entries(tmp_path / "out") == []


def test_the_installed_command_refuses_a_latin1_scenario_and_a_gbk_csv_with_exit_2(tmp_path):
    scenario = tmp_path / "latin1.toml"
    scenario.write_bytes(SCENARIO_TEXT.format(text="Café").encode("latin-1"))
    line = assert_cli_one_line(cli("run", str(scenario), "--out", str(tmp_path / "out")), 2,
                               scenario, "not UTF-8")
    assert "(line 2)" in line
    data = tmp_path / "gbk.csv"
    data.write_bytes(DATA_TEXT.format(text="微信小程序").encode("gbk"))
    assert_cli_one_line(cli("calibrate", "--data", str(data), "--budget", "10", "--quiet",
                            "--out", str(tmp_path / "out")), 2, data, "not UTF-8")
    assert finished_entries(tmp_path / "out") == []


def test_a_byte_order_mark_is_read_as_utf8(tmp_path):
    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    text = 'description = "Café 微信"\nextends = "tiny"\n[red_envelope]\nstrength = 0.5\n'
    plain.write_bytes(text.encode())
    marked.write_bytes(codecs.BOM_UTF8 + text.encode())
    a, b = scenarios.load(plain), scenarios.load(marked)
    assert b.overrides == a.overrides and b.description == a.description == "Café 微信"

    csv_plain, csv_marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    csv_plain.write_bytes(DATA_TEXT.format(text="微信").encode())
    csv_marked.write_bytes(codecs.BOM_UTF8 + DATA_TEXT.format(text="微信").encode())
    # without dropping the mark the first column would be '\ufeffdate' and 'date' missing
    assert ([t.value for t in load_targets(csv_marked, **HORIZON).targets]
            == [t.value for t in load_targets(csv_plain, **HORIZON).targets] == [210.0])

    config = tmp_path / "calibration.toml"
    config.write_bytes(codecs.BOM_UTF8 + (ROOT / "calibration/baseline.toml").read_bytes())
    assert load_config(config, data=ROOT / "calibration/data/targets.csv").scenario == "baseline"


@pytest.mark.parametrize("kind", ["scenario", "scenario by bare name", "data", "calibration"])
def test_a_folder_given_as_a_file_is_named_as_a_folder(kind, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / ("results" if kind == "scenario by bare name" else "given.toml")
    folder.mkdir()
    out = ["--out", str(tmp_path / "out")]
    args = {"scenario": ["run", str(folder), *out, *SMALL_RUN],
            "scenario by bare name": ["run", "results", *out, *SMALL_RUN],
            "data": ["calibrate", "--data", str(folder), "--budget", "10", *out],
            "calibration": ["calibrate", "--config", str(folder), "--budget", "10", *out]}[kind]
    assert main(args) == 2
    assert "is a folder" in one_line_error(capsys, folder.name)
    assert finished_entries(tmp_path / "out") == []


@pytest.mark.parametrize("column, row", [
    ("value", "2018-12,wechat,miniprogram_dau,1_000,1,"),
    ("weight", "2018-12,wechat,miniprogram_dau,210,1_000,"),
    ("sigma", "2018-12,wechat,miniprogram_dau,210,1,1_000"),
    ("value", "2018-12,wechat,miniprogram_dau,nan,1,"),
    ("value", "2018-12,wechat,miniprogram_dau,inf,1,"),
    ("value", "2018-12,wechat,miniprogram_dau,\u0662\u0661\u0660,1,"),  # Arabic-Indic digits
])
def test_a_csv_number_python_would_take_but_a_person_would_not_write_is_refused(
        column, row, tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text("date,platform,series,value,weight,sigma\n" + row + "\n", encoding="utf-8")
    with pytest.raises(MpsimError) as exc:
        load_targets(path, **HORIZON)
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    assert "line 2" in message and f"column {column!r}" in message


# --- scenario files and the Python API: values that contradict one another ------------

def test_mpsim_list_lists_the_good_scenarios_and_names_each_bad_one(tmp_path, capsys,
                                                                   monkeypatch):
    folder = tmp_path / "scenarios"
    shutil.copytree(scenarios.SCENARIO_DIR, folder)
    good = sorted(p.stem for p in folder.glob("*.toml"))
    (folder / "aa_latin1.toml").write_bytes(SCENARIO_TEXT.format(text="Café").encode("latin-1"))
    (folder / "ab_folder.toml").mkdir()
    (folder / "zz_unknown_key.toml").write_text('extends = "tiny"\n[red_envelope]\nstrenght = 1\n')
    monkeypatch.setattr(scenarios, "SCENARIO_DIR", folder)
    assert main(["list"]) == 2
    captured = capsys.readouterr()
    listed = [line.split()[0] for line in captured.out.splitlines() if not line.startswith(" ")]
    assert listed == good  # every good one, including those after the bad ones
    errors = captured.err.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in captured.err
    for line, name, why in zip(errors, ("aa_latin1", "ab_folder", "zz_unknown_key"),
                               ("not UTF-8", "is a folder", "did you mean red_envelope.strength")):
        assert line.startswith("mpsim: error:") and f"{name}.toml" in line and why in line


@pytest.mark.parametrize("field_name", ["merchant_share", "need"])
def test_all_zero_sector_shares_name_the_file_and_the_keys(field_name, tmp_path, capsys):
    path = tmp_path / "zeros.toml"
    sectors = ("retail", "food_delivery", "citizen_services", "games", "other")
    path.write_text('extends = "tiny"\n' + "".join(
        f"[sector.{s}]\n{field_name} = 0.0\n" for s in sectors))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), *SMALL_RUN]) == 2
    line = one_line_error(capsys, path, f"sector.retail.{field_name}",
                          f"sector.other.{field_name}")
    assert "all 0" in line
    assert not (tmp_path / "out").exists()


def test_alipay_launch_before_its_beta_is_refused_naming_both_keys(tmp_path, capsys):
    path = tmp_path / "early_launch.toml"
    path.write_text('extends = "tiny"\n[alipay]\nbeta = 2017-09-01\nlaunch = 2017-06-01\n')
    assert main(["run", str(path), "--out", str(tmp_path / "out"), *SMALL_RUN]) == 2
    one_line_error(capsys, path, "alipay.launch", "alipay.beta", "2017-06-01")
    # the same values from Python
    with pytest.raises(ParameterError, match="alipay.launch .* before alipay.beta"):
        simulate({"alipay.launch": dt.date(2017, 6, 1)}, agents=100, merchant_agents=100,
                 end=dt.date(2016, 1, 1))


TINY_API = dict(agents=100, merchant_agents=100, end=dt.date(2015, 6, 30))


@pytest.mark.parametrize("kwargs, names", [
    (dict(start=dt.date(2018, 1, 1), end=dt.date(2017, 1, 1)), ["run.end", "run.start"]),
    (dict(seed=-1), ["seed", "-1"]),
    (dict(seed=1.5), ["seed", "1.5"]),
    (dict(seed="abc"), ["seed", "abc"]),
    (dict(seed=True), ["seed", "True"]),
    (dict(seed=[1, -2]), ["seed", "-2"]),
    (dict(params="red_envelope.strength=1"), ["parameters", "expected a dict"]),
    (dict(params=[("red_envelope.strength", 1)]), ["parameters", "expected a dict"]),
    (dict(params={"red_envelope.strength": float("nan")}), ["red_envelope.strength", "nan"]),
    (dict(agents="200"), ["run.agents", "'200'"]),
], ids=["end before start", "seed -1", "seed 1.5", "seed text", "seed True", "seed list",
        "params text", "params list", "nan", "agents text"])
def test_the_python_api_refuses_bad_arguments_with_the_projects_error(kwargs, names):
    with pytest.raises(ParameterError) as exc:
        simulate(**{**TINY_API, **kwargs})
    message = str(exc.value)
    assert "\n" not in message
    for name in names:
        assert name in message


@pytest.mark.parametrize("kwargs", [
    dict(params={"network.mean_degree": np.int64(10)}),
    dict(params={"red_envelope.strength": np.float32(0.5)}),
    dict(params={"necessities.enabled": np.bool_(False)}),
    dict(agents=np.int64(100), merchant_agents=np.int32(100)),
    dict(seed=np.int64(3)),
    dict(seed=np.random.SeedSequence(3)),
], ids=["int64", "float32", "numpy bool", "numpy sizes", "numpy seed", "SeedSequence"])
def test_the_python_api_takes_numpy_numbers(kwargs):
    frame = simulate(**{**TINY_API, **kwargs})
    assert len(frame) > 0


def test_numpy_numbers_give_the_same_run_as_python_ones():
    a = simulate({"red_envelope.strength": np.float64(0.5)}, **TINY_API, seed=np.int64(4))
    b = simulate({"red_envelope.strength": 0.5}, **TINY_API, seed=4)
    pd.testing.assert_frame_equal(a, b)


# --- Dask addresses ---------------------------------------------------------------------

@pytest.mark.parametrize("address", ["notaurl", "tcp://", "foo://host:1", "tcp://host:port"])
def test_a_malformed_dask_address_is_one_line(address, tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.delenv("MPSIM_DASK_ADDRESS", raising=False)
    code = main(["run", "tiny", "--dask", address, "--out", str(tmp_path / "out"), *SMALL_RUN])
    assert code == 2
    assert "not a Dask scheduler address" in one_line_error(capsys, f"--dask {address}")
    assert finished_entries(tmp_path / "out") == []


def test_a_malformed_dask_address_in_the_environment_is_one_line(tmp_path, capsys,
                                                                 monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("MPSIM_DASK_ADDRESS", "notaurl")
    assert main(["run", "tiny", "--out", str(tmp_path / "out"), *SMALL_RUN]) == 2
    assert "not a Dask scheduler address" in one_line_error(capsys,
                                                            "MPSIM_DASK_ADDRESS=notaurl")


# --- results folders: finished or not ---------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One finished run folder (no plots, to be quick)."""
    out = tmp_path_factory.mktemp("finished")
    return run_scenario(scenarios.load("tiny"), point=True, replicates=1, agents=200,
                        workers=1, out=out, plots=False, progress=False).path


def _corrupt(folder: Path, how: str) -> None:
    manifest, series = folder / "manifest.json", folder / "series.csv"
    if how == "manifest not JSON":
        manifest.write_text('{"run": ')
    elif how == "manifest a list":
        manifest.write_text("[1, 2]")
    elif how == "manifest Latin-1":
        manifest.write_bytes(b'{"scenario": "caf\xe9"}')
    elif how == "manifest missing":
        manifest.unlink()
    elif how == "manifest without run settings":
        manifest.write_text('{"run": {"seed": 1}}')
    elif how == "series truncated":
        series.write_bytes(series.read_bytes()[:5000])
    elif how == "series changed":
        series.write_text(series.read_text().replace("0,", "1,", 1))
    elif how == "series a folder":
        series.unlink()
        series.mkdir()
    elif how == "summary missing":
        (folder / "summary.csv").unlink()


CORRUPTIONS = ["manifest not JSON", "manifest a list", "manifest Latin-1", "manifest missing",
               "manifest without run settings", "series truncated", "series changed",
               "series a folder", "summary missing"]


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("command", ["plot", "compare"])
def test_plot_and_compare_refuse_a_corrupt_run_folder_in_one_line(how, command, finished,
                                                                   tmp_path, capsys):
    broken = tmp_path / "tiny" / "20990101T000000Z"
    shutil.copytree(finished, broken)
    _corrupt(broken, how)
    args = (["plot", str(broken)] if command == "plot" else
            ["compare", str(finished), str(broken), "--out", str(tmp_path / "out"), "--quiet"])
    assert main(args) == 2
    one_line_error(capsys, broken)
    assert not (tmp_path / "out").exists()
    assert not list(broken.glob("*.png"))  # plot drew nothing into it


def test_a_truncated_series_without_recorded_hashes_is_still_refused(finished, tmp_path,
                                                                     capsys):
    """Run folders written before manifests recorded their files: the rows are counted."""
    old = tmp_path / "tiny" / "20990101T000000Z"
    shutil.copytree(finished, old)
    info = json.loads((old / "manifest.json").read_text())
    del info["files"]
    (old / "manifest.json").write_text(json.dumps(info))
    lines = (old / "series.csv").read_text().splitlines(keepends=True)
    (old / "series.csv").write_text("".join(lines[:len(lines) // 2]))
    with pytest.raises(RunFolderError, match="series.csv"):
        load_run(old)
    assert main(["plot", str(old)]) == 2
    one_line_error(capsys, "series.csv")


def test_a_partial_folder_is_refused_by_plot_and_compare(finished, tmp_path, capsys):
    partial = tmp_path / "tiny" / ".20990101T000000Z.partial"
    shutil.copytree(finished, partial)  # every file complete: only the name says unfinished
    assert main(["plot", str(partial)]) == 2
    assert "killed while writing" in one_line_error(capsys, partial)
    assert main(["compare", str(finished), str(partial), "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, partial)


def test_a_scenario_ending_before_2017_runs_to_a_valid_summary(tmp_path, capsys):
    path = tmp_path / "short.toml"
    path.write_text('extends = "tiny"\n[run]\nend = 2016-06-30\n')
    assert main(["run", str(path), "--out", str(tmp_path), *SMALL_RUN]) == 0
    [folder] = (tmp_path / "short").iterdir()
    summary = pd.read_csv(folder / "summary.csv")
    assert len(summary) > 0 and summary["date"].max() <= "2016-06-30"
    assert summary["mean"].notna().any()
    finished_run(folder)
    assert main(["plot", str(folder)]) == 0
    capsys.readouterr()
    # and two such runs compare
    assert main(["compare", str(folder), str(folder), "--out", str(tmp_path)]) == 0


def test_disk_full_while_writing_names_the_file_and_keeps_nothing(tmp_path, capsys,
                                                                  monkeypatch):
    import errno

    real = pd.DataFrame.to_csv

    def full(self, path, *args, **kwargs):
        if str(path).endswith("summary.csv"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    assert main(["run", "tiny", "--out", str(tmp_path), *SMALL_RUN]) == 2
    line = one_line_error(capsys, "summary.csv", "No space left on device")
    assert "nothing was kept" in line
    assert list((tmp_path / "tiny").iterdir()) == []


def test_an_out_folder_that_is_a_file_is_refused_before_any_run(tmp_path, capsys,
                                                                monkeypatch):
    import model.runner as runner

    ran = []
    monkeypatch.setattr(runner, "simulate_replicates", lambda *a, **k: ran.append(1))
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    assert main(["run", "tiny", "--out", str(blocked), *SMALL_RUN]) == 2
    one_line_error(capsys, "--out", blocked)
    assert ran == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs a user that file permissions apply to")
def test_a_read_only_out_folder_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    import model.runner as runner

    ran = []
    monkeypatch.setattr(runner, "simulate_replicates", lambda *a, **k: ran.append(1))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["run", "tiny", "--out", str(locked / "results"), *SMALL_RUN]) == 2
        one_line_error(capsys, locked)
    finally:
        locked.chmod(0o700)
    assert ran == []


def test_an_interruption_just_after_the_rename_names_the_finished_folder(tmp_path, capsys,
                                                                         monkeypatch):
    import model.runner as runner

    def interrupted(folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_sync_dir", interrupted)
    assert main(["run", "tiny", "--out", str(tmp_path), *SMALL_RUN]) == 130
    err = capsys.readouterr().err.strip()
    [folder] = (tmp_path / "tiny").iterdir()
    assert err.count("\n") == 0 and str(folder) in err and "(complete)" in err
    assert "nothing was written" not in err
    finished_run(folder)


# --- signals and workers ----------------------------------------------------------------

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="reads processes from /proc")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _signals_as_in_a_terminal() -> None:
    """In the child: SIGINT, SIGTERM and SIGHUP at their defaults, as a command typed in
    a terminal has them. A test runner started in the background or under nohup passes
    them on ignored, and mpsim keeps an ignored signal ignored, on purpose."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _start_run(tmp_path: Path, **popen) -> tuple[subprocess.Popen, list[int]]:
    """A ``mpsim run`` long enough to be killed mid-way, and its pool's processes once
    both workers have started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "model.cli", "run", "tiny", "--agents", "2000",
         "--replicates", "400", "--point", "--workers", "2", "--quiet",
         "--out", str(tmp_path / "out")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_signals_as_in_a_terminal, **popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        workers = [k for k in kids if "spawn_main" in _cmdline(k)]
        if len(workers) >= 2:
            time.sleep(1.0)  # let them start running the model
            return proc, kids
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the run's workers did not start: {proc.communicate()[1]}")


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _cleanup(proc: subprocess.Popen, pids: list[int]) -> None:
    for pid in [proc.pid, *pids]:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


@linux_only
@pytest.mark.slow
def test_kill_9_of_a_run_leaves_no_worker_after_5_seconds(tmp_path):
    proc, kids = _start_run(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_gone(kids, 5.0) == []
        # nothing holds its stdout open: a reader sees end of file at once
        assert proc.stdout.read() == ""
        assert finished_entries(tmp_path / "out") == []
    finally:
        _cleanup(proc, kids)


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("signum, code, said", [
    (signal.SIGTERM, 143, "stopped by SIGTERM; nothing was written"),
    (signal.SIGHUP, 129, "stopped by SIGHUP; nothing was written"),
    (signal.SIGINT, 130, "interrupted; nothing was written"),
], ids=["SIGTERM", "SIGHUP", "Ctrl-C to the process group"])
def test_a_signal_ends_a_run_with_one_true_line_and_no_workers(signum, code, said, tmp_path):
    proc, kids = _start_run(tmp_path, start_new_session=True)
    try:
        if signum == signal.SIGINT:  # Ctrl-C reaches the main process and its workers
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == code
        assert err.strip() == f"mpsim: {said}"
        assert _wait_gone(kids, 5.0) == []
        out = tmp_path / "out"
        assert not out.exists() or not any(out.rglob("*.partial")) and not finished_entries(out)
    finally:
        _cleanup(proc, kids)


KILLED_WHILE_WRITING = """
import os, signal, sys
import model.plots
def killed(folder):  # SIGKILL arrives after series, summary and manifest are written
    os.kill(os.getpid(), signal.SIGKILL)
model.plots.plot_run = killed
from model.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_while_writing_leaves_only_a_partial_folder_that_is_never_used(
        tmp_path, capsys):
    result = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, "run", "tiny",
                             "--out", str(tmp_path), *SMALL_RUN],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL
    [partial] = (tmp_path / "tiny").iterdir()
    assert partial.name.startswith(".") and partial.name.endswith(".partial")
    assert {"manifest.json", "series.csv", "summary.csv"} <= {p.name for p in partial.iterdir()}
    # it looks complete inside, but nothing takes it as finished
    assert main(["plot", str(partial)]) == 2
    assert "killed while writing" in one_line_error(capsys, partial)
    assert main(["compare", str(partial), "tiny", "--out", str(tmp_path)]) == 2
    one_line_error(capsys, partial)
    # the next run beside it names it once and writes its own folder
    assert main(["run", "tiny", "--out", str(tmp_path), *SMALL_RUN]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mpsim: note: {partial} was left by a run that was killed while writing; "
                   "it holds no finished results (delete it)"]
    entries = sorted(p.name for p in (tmp_path / "tiny").iterdir())
    assert len(entries) == 2 and partial.name in entries
    finished_run(tmp_path / "tiny" / next(e for e in entries if e != partial.name))


# --- property tests: files built from the grammar, valid and not ------------------------

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from model.params import ALIBABA_APPS, BY_NAME, RUN_SETTINGS  # noqa: E402

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, int, float)):
        return "nan" if value != value else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _values_for(spec_kind, low, high):
    """Values of the right kind in range, and of every wrong kind."""
    wrong = st.one_of(st.text(max_size=5), st.booleans(), st.just(float("nan")),
                      st.lists(st.integers(0, 3), max_size=2),
                      st.dates(dt.date(2000, 1, 1), dt.date(2040, 1, 1)))
    if spec_kind == "date":
        right = st.dates(dt.date(2013, 1, 1), dt.date(2035, 12, 31))
    elif spec_kind is bool:
        right = st.booleans()
    elif spec_kind == "apps":
        right = st.lists(st.sampled_from(ALIBABA_APPS), unique=True)
    elif spec_kind is int:
        right = st.integers(int(low), int(min(high, low + 1000)))
        wrong = st.one_of(wrong, st.integers(int(high) + 1, int(high) + 10))
    else:
        right = st.floats(low, high, allow_nan=False)
        wrong = st.one_of(wrong, st.floats(high + 1e-6, high + 10) if high is not None
                          else st.nothing())
    return st.one_of(right, right, right, right, right, wrong)


@st.composite
def scenario_files(draw):
    """A scenario file's text: mostly valid keys and values, some not."""
    lines = []
    if draw(st.booleans()):
        lines.append(f"description = {_toml_value(draw(st.one_of(st.text(max_size=20), st.integers())))}")
    lines.append(f"extends = {_toml_value(draw(st.sampled_from(['tiny'] * 5 + ['baseline'] * 2 + ['nosuch'])))}")
    run = draw(st.dictionaries(st.sampled_from([*RUN_SETTINGS, "agentz"]),
                               st.none(), max_size=3))
    if run:
        lines.append("[run]")
        for key in run:
            kind, low, high, _, _ = RUN_SETTINGS.get(key, (int, 0, 10, 0, ""))
            lines.append(f"{key} = {_toml_value(draw(_values_for(kind, low, high)))}")
    names = draw(st.lists(st.sampled_from([*sorted(BY_NAME), "red_envelope.strenght",
                                           "nogroup.value"]), unique=True, max_size=4))
    for name in names:
        group, key = name.rsplit(".", 1)
        spec = BY_NAME.get(name)
        values = (_values_for(spec.kind, spec.low, spec.high) if spec
                  else st.floats(0, 1, allow_nan=False))
        lines += [f"[{group}]", f"{key} = {_toml_value(draw(values))}"]
    text = "\n".join(lines) + "\n"
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "latin-1", "utf-16", "gbk"]))
    if encoding in ("latin-1", "gbk"):
        text = "# " + ("Café" if encoding == "latin-1" else "微信") + "\n" + text
    return text.encode(encoding, errors="replace")


def _check_frame(frame: pd.DataFrame, params: dict) -> None:
    people = params["population.people_millions"]
    counts = frame.drop(columns=["wechat.red_envelope_participants", "all.spring_festival"])
    assert (counts.fillna(0) >= 0).all().all(), "a count or share below 0"
    for column in frame.columns:
        if column.endswith(("_share", "stickiness")):
            assert frame[column].dropna().between(0, 1).all(), column
        if column.endswith(("app_users", "pay_users", "_cumulative", "_mau", "_dau")):
            assert (frame[column].dropna() <= people * (1 + 1e-9)).all(), column


@PROPERTY
@given(content=scenario_files())
def test_any_scenario_file_either_runs_or_is_refused_on_one_line(content):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.toml"
        path.write_bytes(content)
        try:
            scenario = scenarios.load(path)
        except MpsimError as exc:
            event(f"refused: {type(exc).__name__}")
            message = str(exc)
            assert "\n" not in message and message.startswith(str(path)), message
        else:
            event("ran")
            start = scenario.run["start"]
            end = min(scenario.run["end"], start + dt.timedelta(days=400))
            frame = simulate(scenario.overrides, agents=100, merchant_agents=100,
                             start=start, end=end, seed=scenario.run["seed"])
            _check_frame(frame, scenario.params)
        assert [p.name for p in Path(folder).iterdir()] == ["generated.toml"]


#: Cells of a usable row, and cells a person may get wrong, by column.
GOOD_CELLS = {
    "date": st.one_of(st.sampled_from(["2018-12", "2019-06-30"]),
                      st.dates(dt.date(2017, 1, 1), dt.date(2020, 6, 30)).map(str)),
    "platform": st.sampled_from(["wechat", "alipay"]),
    "series": st.sampled_from(["miniprogram_dau", "app_users", "pay_users",
                               "miniprogram_users_cumulative"]),
    "value": st.floats(1, 1000, allow_nan=False).map(lambda v: f"{v:g}"),
    "kind": st.sampled_from(["exact", "lower", "upper", ""]),
    "weight": st.sampled_from(["1", "0.5", ""]),
    "source": st.text(max_size=8),
}
BAD_CELLS = {
    "date": st.sampled_from(["2018_12", "", "12/2018", "2040-01", "2010-05", "2019-02-30"]),
    "platform": st.sampled_from(["WeChat", "", "baidu"]),
    "series": st.sampled_from(["nosuch", "", "red_envelope_participants"]),
    "value": st.sampled_from(["1_000", "1,000", "nan", "inf", "", "abc", "-5"]),
    "kind": st.sampled_from(["approx", "EXACT"]),
    "weight": st.sampled_from(["0", "-1", "1_0", "x"]),
    "source": st.just(""),
}


def _cell(text: str) -> str:
    return text.replace(",", ";").replace('"', "'").replace("\n", " ").replace("\r", " ")


@st.composite
def data_files(draw):
    """A targets file's bytes: mostly usable rows, some with one cell wrong, some files
    missing a column or not in UTF-8."""
    columns = ["date", "platform", "series", "value",
               *draw(st.lists(st.sampled_from(["kind", "weight", "source"]), unique=True))]
    if draw(st.integers(0, 9)) == 0:
        columns.remove(draw(st.sampled_from(columns[:4])))
    rows = [",".join(columns)]
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3, 4]))):
        bad = draw(st.sampled_from([None] * 6 + columns))
        rows.append(",".join(_cell(draw((BAD_CELLS if c == bad else GOOD_CELLS)[c]))
                             for c in columns))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1",
                                     "utf-16", "gbk"]))
    text = "\n".join(rows) + "\n"
    if encoding in ("latin-1", "gbk"):
        text += ",,,," + ("Café" if encoding == "latin-1" else "微信") + "\n"
    return text.encode(encoding, errors="replace")


@PROPERTY
@given(content=data_files())
def test_any_data_file_either_loads_or_is_refused_on_one_line(content):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.csv"
        path.write_bytes(content)
        try:
            loaded = load_targets(path, **HORIZON)
        except MpsimError as exc:
            event("refused")
            message = str(exc)
            assert "\n" not in message and message.startswith(str(path)), message
        else:
            event("loaded")
            assert loaded.targets
            for target in loaded.targets:
                assert np.isfinite(target.value) and target.weight > 0
        assert [p.name for p in Path(folder).iterdir()] == ["generated.csv"]
