"""The interactive view's computation and command, without a browser
(tests/test_app_browser.py drives the page in chromium)."""

import socket

import numpy as np
import pytest

from model import app
from model.cli import main
from model.errors import ParameterError


def test_any_parameter_by_name_is_checked_with_one_line_errors():
    assert app.parse_overrides("red_envelope.strength = 0.5; traffic_sharing.enabled = false\n"
                               "traffic_sharing.apps = [\"taobao\"]") == {
        "red_envelope.strength": 0.5, "traffic_sharing.enabled": False,
        "traffic_sharing.apps": ["taobao"]}
    with pytest.raises(ParameterError, match="red_envelope.strenght.*did you mean"):
        app.parse_overrides("red_envelope.strenght = 1")
    with pytest.raises(ParameterError, match=r"value 7 is not allowed.*\[0.0, 1.0\]"):
        app.parse_overrides("traffic_sharing.exposure_weekly = 7")
    with pytest.raises(ParameterError, match="expected name = value"):
        app.parse_overrides("red_envelope.strength")


def test_the_address_sets_the_starting_state_and_ignores_what_it_cannot_use():
    state = app.initial_state("scenario=no_red_envelope&red_envelope.strength=0.25"
                              "&replicates=2&agents=999999&nonsense=3&seed=x")
    assert state["scenario"] == "no_red_envelope" and state["replicates"] == 2
    assert state["agents"] == 100_000  # clamped
    assert state["levers"] == {"red_envelope.strength": 0.25} and state["seed"] == app.SEED
    assert app.initial_state("scenario=unknown")["scenario"] == "baseline"


def test_a_lever_moves_the_curves_against_a_paired_baseline():
    small = dict(agents=1000, replicates=2)
    same = app.simulate_view("baseline", {}, **small)
    # the baseline against itself: identical runs, zero difference everywhere
    table = app.readout(same)
    assert np.allclose(table["difference"], 0) and np.isfinite(table["scenario"]).all()
    off = app.simulate_view("baseline", {"red_envelope.strength": 0.0}, **small)
    row = app.readout(off).set_index("output").loc["WeChat Pay users"]
    assert row["difference_p95"] < 0  # without red envelopes, fewer WeChat Pay users
    assert off["baseline"] is not off["frames"] and len(off["frames"]) == 2
    assert app.figure(off, "baseline").axes  # draws without error


def test_app_help_and_a_port_in_use(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["app", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "--port" in out and "--no-browser" in out
    with socket.socket() as busy:
        busy.bind(("localhost", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", "--port", str(port), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert f"--port {port}" in err and "--port 0" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["app", "--port", "70000"])
    assert exc.value.code == 2 and "expected 0 to 65535" in capsys.readouterr().err


def test_parameters_that_contradict_each_other_become_a_message_not_a_crash():
    view = app._view_or_error("baseline", app.parse_overrides("alipay.launch = 2016-01-01"),
                              agents=500, replicates=1)
    assert isinstance(view, ParameterError) and "alipay.beta" in str(view)
