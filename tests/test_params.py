import datetime as dt

import pytest

from model.errors import ParameterError
from model.params import BY_NAME, PARAMS, check_param, check_run_setting, defaults, resolve

SOURCE_KINDS = ("reported", "fit", "calibrated", "assumption")


def test_every_parameter_documents_meaning_unit_and_source():
    for p in PARAMS:
        assert p.meaning and p.unit, p.name
        assert p.source.split(":")[0].split(";")[0].strip() in SOURCE_KINDS, (p.name, p.source)


def test_defaults_pass_their_own_checks():
    assert resolve({}) == resolve(defaults())


def test_unknown_parameter_suggests_the_closest_names():
    with pytest.raises(ParameterError, match=r"red_envelope\.strength"):
        check_param("red_envelope.strenght", 1.0, "my.toml")


@pytest.mark.parametrize("name, value", [
    ("red_envelope.strength", -1.0),
    ("red_envelope.strength", "strong"),
    ("red_envelope.strength", True),
    ("network.mean_degree", 2.5),
    ("traffic_sharing.enabled", 1),
    ("traffic_sharing.apps", ["taobao", "wechat"]),
    ("traffic_sharing.apps", ["taobao", "taobao"]),
    ("wechat.launch", "2017-13-01"),
    ("wechat.launch", "2040-01-01"),
])
def test_bad_values_are_refused_with_name_value_and_allowed_range(name, value):
    with pytest.raises(ParameterError) as info:
        check_param(name, value, "my.toml")
    message = str(info.value)
    assert "my.toml" in message and name in message and repr(value) in message
    assert "expected" in message and "\n" not in message


def test_values_are_canonicalised():
    assert check_param("wechat.launch", "2017-01-09") == dt.date(2017, 1, 9)
    assert check_param("network.mean_degree", 12.0) == 12
    assert isinstance(check_param("red_envelope.strength", 2), float)


def test_run_settings_are_checked():
    with pytest.raises(ParameterError, match="run.agents"):
        check_run_setting("agents", 10)
    with pytest.raises(ParameterError, match="did you mean"):
        check_run_setting("replicate", 3)


def test_parameter_names_are_unique():
    assert len(BY_NAME) == len(PARAMS)
