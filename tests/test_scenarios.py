import datetime as dt
import re

import pytest

from model import scenarios
from model.errors import MpsimError, ParameterError, ScenarioError

REQUIRED = {"baseline", "no_red_envelope", "red_envelope_strong", "traffic_sharing_off",
            "traffic_sharing_early", "traffic_sharing_full", "alipay_counterattack", "tiny"}


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_required_scenarios_ship_with_a_question():
    shipped = scenarios.available()
    assert REQUIRED <= set(shipped)
    for name in shipped:
        loaded = scenarios.load(name)
        assert "Answers" in loaded.description, name


def test_levers_are_set_as_their_descriptions_say():
    assert scenarios.load("no_red_envelope").params["red_envelope.strength"] == 0
    assert scenarios.load("traffic_sharing_off").params["traffic_sharing.enabled"] is False
    early = scenarios.load("traffic_sharing_early").params
    assert early["traffic_sharing.start"] == early["alipay.launch"]
    counter = scenarios.load("alipay_counterattack")
    assert counter.chain == ["alipay_counterattack", "traffic_sharing_full", "baseline"]
    base = scenarios.load("baseline").params
    assert counter.params["wufu.activity_lift"] > base["wufu.activity_lift"]
    assert counter.params["traffic_sharing.exposure_weekly"] > base["traffic_sharing.exposure_weekly"]


WORD_FACTORS = {"twice": 2.0, "double": 2.0, "half": 0.5, "three times": 3.0,
                "four times": 4.0, "five times": 5.0, "ten times": 10.0}
FACTOR = re.compile(r"\b(twice|double|half|three times|four times|five times|ten times|"
                    r"(\d+(?:\.\d+)?) times)\b", re.I)


def multiplier_claims(text: str) -> list[float]:
    """Every 'twice' / 'three times' / 'about 8.6 times' claim of a text, as numbers."""
    return [float(m.group(2)) if m.group(2) else WORD_FACTORS[m.group(1).lower()]
            for m in FACTOR.finditer(text)]


def test_multiplier_claims_are_read():
    assert multiplier_claims("about twice, three times and 8.6 times as much") == [2, 3, 8.6]


@pytest.mark.parametrize("name", sorted(scenarios.available()))
def test_each_multiplier_claim_of_a_description_matches_a_lever(name):
    """'N times the baseline's' must be true of some parameter the scenario sets: its
    value over the baseline's (the calibrated default), within 5%."""
    from model.params import BY_NAME

    scenario = scenarios.load(name)
    ratios = {key: value / BY_NAME[key].default for key, value in scenario.overrides.items()
              if isinstance(value, (int, float)) and not isinstance(value, bool)
              and isinstance(BY_NAME[key].default, (int, float)) and BY_NAME[key].default}
    for claim in multiplier_claims(scenario.description):
        matches = [key for key, ratio in ratios.items() if abs(ratio / claim - 1) <= 0.05]
        assert matches, (f"{name}: the description claims {claim:g} times, but the levers it "
                         f"sets are {', '.join(f'{k} x{r:.3g}' for k, r in ratios.items())}")


def test_extends_layers_overrides_and_run_settings(tmp_path):
    write(tmp_path, "parent", '[red_envelope]\nstrength = 3.0\n[run]\nreplicates = 4\n')
    child = write(tmp_path, "child", 'extends = "parent"\n[wufu]\nactivity_lift = 0.1\n'
                                     '[run]\nagents = 500\n')
    loaded = scenarios.load(child)
    assert loaded.overrides == {"red_envelope.strength": 3.0, "wufu.activity_lift": 0.1}
    assert loaded.run["replicates"] == 4 and loaded.run["agents"] == 500
    assert loaded.chain == ["child", "parent"]


def test_unknown_key_names_file_and_closest_valid_name(tmp_path):
    path = write(tmp_path, "typo", '[red_envelope]\nstrenght = 2.0\n')
    with pytest.raises(ParameterError) as info:
        scenarios.load(path)
    assert str(path) in str(info.value) and "red_envelope.strength" in str(info.value)


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "top", 'replicates = 3\n')
    with pytest.raises(ParameterError, match="unknown key 'replicates'"):
        scenarios.load(path)


def test_a_group_given_a_value_instead_of_a_table(tmp_path):
    path = write(tmp_path, "scalar", 'red_envelope = 3\n')
    with pytest.raises(ParameterError, match=r"red_envelope: value 3 is not allowed; "
                                             r"expected a table \[red_envelope\].*strength"):
        scenarios.load(path)


def test_out_of_range_value_says_what_is_allowed(tmp_path):
    path = write(tmp_path, "range", '[red_envelope]\nstrength = -2\n')
    with pytest.raises(ParameterError, match=r"-2.*\[0.0, 10.0\]"):
        scenarios.load(path)


def test_wrong_type_run_setting(tmp_path):
    path = write(tmp_path, "runtype", '[run]\nagents = "many"\n')
    with pytest.raises(ParameterError, match="run.agents"):
        scenarios.load(path)


def test_cycle_of_extends_is_refused(tmp_path):
    write(tmp_path, "a", 'extends = "b"\n')
    write(tmp_path, "b", 'extends = "a"\n')
    with pytest.raises(ScenarioError, match="cycle: a -> b -> a"):
        scenarios.load(tmp_path / "a.toml")


def test_missing_parent_and_bad_toml(tmp_path):
    with pytest.raises(ScenarioError, match="nowhere"):
        scenarios.load(write(tmp_path, "orphan", 'extends = "nowhere"\n'))
    with pytest.raises(ScenarioError, match="not valid TOML"):
        scenarios.load(write(tmp_path, "broken", '[red_envelope\n'))


def test_unknown_scenario_name_lists_close_names():
    with pytest.raises(ScenarioError, match="baseline"):
        scenarios.load("baselin")


def test_end_before_start_is_refused(tmp_path):
    path = write(tmp_path, "backwards", '[run]\nstart = 2019-01-01\nend = 2018-01-01\n')
    with pytest.raises(ScenarioError, match="after run.start"):
        scenarios.load(path)


def test_errors_are_one_line_and_typed(tmp_path):
    path = write(tmp_path, "bad", '[traffic_sharing]\nstart = "soon"\n')
    with pytest.raises(MpsimError) as info:
        scenarios.load(path)
    assert "\n" not in str(info.value) and "'soon'" in str(info.value)
    assert scenarios.load("baseline").run["start"] == dt.date(2014, 1, 1)
