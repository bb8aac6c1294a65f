"""Calibration: the loss, the configuration file, parameter recovery and resume."""

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from calibration import calibrate as cal
from calibration.data import Target
from model import scenarios, simulate
from model.errors import MpsimError, ParameterError
from model.params import PARAMS, _apply_calibration


def target(value, kind="exact", unit="million_users", weight=1.0, sigma=None):
    return Target(row=2, date=dt.date(2018, 12, 15), platform="wechat",
                  series="miniprogram_dau", value=value, kind=kind, weight=weight,
                  sigma=sigma, unit=unit, label="t")


# --- loss -----------------------------------------------------------------------------
def test_log_error_of_the_replicate_mean():
    simulated = np.array([[100.0], [300.0]])  # mean 200
    assert cal.log_errors(simulated, [target(100.0)])[0] == pytest.approx(math.log(2))


def test_lower_bound_penalises_only_a_shortfall():
    assert cal.log_errors(np.array([[700.0]]), [target(600.0, "lower")])[0] == 0.0
    assert cal.log_errors(np.array([[300.0]]), [target(600.0, "lower")])[0] == \
        pytest.approx(math.log(0.5))
    assert cal.log_errors(np.array([[300.0]]), [target(600.0, "upper")])[0] == 0.0


def test_bound_margin_moves_a_bound_inward():
    at_bound = np.array([[500.0]])
    assert cal.log_errors(at_bound, [target(500.0, "lower")], margin=0.01)[0] == \
        pytest.approx(math.log(500.0 / 505.0))
    assert cal.log_errors(np.array([[506.0]]), [target(500.0, "lower")], margin=0.01)[0] == 0.0
    assert cal.log_errors(at_bound, [target(500.0, "upper")], margin=0.01)[0] == \
        pytest.approx(math.log(500.0 / 495.0))
    assert cal.log_errors(at_bound, [target(400.0)], margin=0.01)[0] == \
        pytest.approx(math.log(500.0 / 400.0))  # an exact figure is left alone


def test_growth_in_percent_compares_growth_factors():
    errors = cal.log_errors(np.array([[100.0]]), [target(54.0, unit="percent")])
    assert errors[0] == pytest.approx(math.log(2.0 / 1.54))


def test_sigma_gives_a_standardised_error_and_missing_values_a_penalty():
    assert cal.log_errors(np.array([[110.0]]), [target(100.0, sigma=5.0)])[0] == pytest.approx(2)
    assert cal.log_errors(np.array([[np.nan]]), [target(100.0)])[0] == cal.MISSING_ERROR


def test_loss_is_the_weighted_mean_square():
    targets = [target(100.0, weight=3.0), target(100.0, weight=1.0)]
    simulated = np.array([[100.0 * math.e, 100.0]])
    assert cal.loss(simulated, targets) == pytest.approx(3.0 / 4.0)


def test_targets_below_the_model_resolution_are_listed_not_fitted(tmp_path):
    config = cal.load_config(write_config(tmp_path, "data.csv"))
    params = scenarios.load("baseline").params
    tiny = Target(row=5, date=dt.date(2017, 10, 15), platform="alipay",
                  series="mini_programs_count", value=0.00006, unit="million_mini_programs",
                  label="alipay mini_programs_count 2017-10")
    keep, dropped = cal.split_by_resolution([tiny, target(210.0)], params, config)
    assert [t.value for t in keep] == [210.0]
    assert dropped[0][0] == 5 and "too small" in dropped[0][1]


def test_excluded_series_are_listed_as_unused_not_dropped(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("date,platform,series,value\n2018-12,wechat,miniprogram_dau,210\n"
                    "2018-12,wechat,miniprogram_usage_frequency_growth_yoy,54\n")
    path = write_config(tmp_path, "data.csv",
                        exclude_series=["miniprogram_usage_frequency_growth_yoy"])
    objective, _, loaded = cal.build_objective(cal.load_config(path))
    assert [t.series for t in objective.targets] == ["miniprogram_dau"]
    assert [row for row, _ in loaded.unused] == [3]
    assert "exclude_series" in loaded.unused[0][1]


# --- configuration ----------------------------------------------------------------------
def write_config(tmp_path, data, free=None, **settings):
    free = free or {"users.engagement_base": [-5.0, 0.0]}
    lines = ['scenario = "baseline"', f'data = "{data}"']
    lines += [f"{key} = {value!r}" for key, value in settings.items()]
    lines += ["[free]"] + [f'"{name}" = {list(bounds)}' for name, bounds in free.items()]
    path = tmp_path / "calibration.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("free, settings, message", [
    ({"users.engagement_base": [0.0, -5.0]}, {}, "low < high"),
    ({"users.engagemnt_base_wechat": [-5.0, 0.0]}, {}, "did you mean"),
    ({"traffic_sharing.enabled": [0, 1]}, {}, "only numeric parameters"),
    ({"users.engagement_base": [-50.0, 0.0]}, {}, "expected a number in"),
    ({"users.engagement_base": [-5.0, 0.0]}, {"replicates": 0}, "replicates"),
    ({"users.engagement_base": [-5.0, 0.0]}, {"budjet": 10}, "did you mean budget"),
])
def test_bad_calibration_files_are_refused(tmp_path, free, settings, message):
    path = write_config(tmp_path, "data.csv", free, **settings)
    with pytest.raises(ParameterError, match=message):
        cal.load_config(path)


def test_shipped_configuration_loads_and_names_real_parameters():
    config = cal.load_config()
    assert config.data.is_file() and len(config.free) >= 10
    assert config.budget >= 1000


# --- end to end ----------------------------------------------------------------------------
TRUTH = {"users.engagement_base": -2.0, "users.discovery_weekly_wechat": 0.04}
DATES = ["2017-09-15", "2018-03-15", "2018-09-15", "2018-12-15"]


def synthetic_targets(tmp_path, agents):
    """Targets made by the model itself at known parameters, on seeds the calibration
    does not use, so recovering them is a real test."""
    frames = [simulate(TRUTH, agents=agents, merchant_agents=800, end=dt.date(2019, 1, 31),
                       seed=s) for s in np.random.SeedSequence(999).spawn(4)]
    mean = sum(frames) / len(frames)
    rows = []
    for day in DATES:
        at = mean.loc[:pd.Timestamp(day)].iloc[-1]
        rows.append((day, "wechat", "miniprogram_dau", at["wechat.miniprogram_dau"]))
        rows.append((day, "wechat", "miniprogram_users_cumulative",
                     at["wechat.miniprogram_users_cumulative"]))
    path = tmp_path / "synthetic.csv"
    pd.DataFrame(rows, columns=["date", "platform", "series", "value"]).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_calibration_recovers_known_parameters(tmp_path):
    data = synthetic_targets(tmp_path, agents=4000)
    config = cal.load_config(write_config(
        tmp_path, data, {"users.engagement_base": [-5.0, 0.0],
                         "users.discovery_weekly_wechat": [0.005, 0.15]},
        seed=5, replicates=2, agents=4000, merchant_agents=800, budget=140, popsize=6,
        polish_share=0.2))
    result = cal.calibrate(config, workers=1, out=tmp_path, progress=False)
    best = result.best
    # tolerances: about a tenth of each range; the 4,000-agent noise alone moves the
    # optimum by less than that
    assert best["users.engagement_base"] == pytest.approx(-2.0, abs=0.3)
    assert best["users.discovery_weekly_wechat"] == pytest.approx(0.04, rel=0.25)
    folder = result.path
    for name in ("fit_table.csv", "fit.png", "convergence.png", "uncertainty.csv",
                 "uncertainty.png", "manifest.json", "calibrated.toml", "best_parameters.json"):
        assert (folder / name).is_file(), name
    fit = pd.read_csv(folder / "fit_table.csv")
    assert fit["within_15pct"].all()
    unc = pd.read_csv(folder / "uncertainty.csv")
    row = unc.set_index("parameter").loc["users.engagement_base"]
    assert row["near_best_low"] <= row["best"] <= row["near_best_high"]
    # the calibrated scenario file runs as a scenario
    calibrated = scenarios.load(folder / "calibrated.toml")
    assert calibrated.params["users.engagement_base"] == pytest.approx(
        best["users.engagement_base"])


def small_config(tmp_path):
    data = synthetic_targets(tmp_path, agents=1000)
    return cal.load_config(write_config(
        tmp_path, data, {"users.engagement_base": [-5.0, 0.0],
                         "users.discovery_weekly_wechat": [0.005, 0.15]},
        seed=8, replicates=2, agents=1000, merchant_agents=300, budget=70, popsize=5,
        polish_share=0.15))


@pytest.mark.slow
def test_resume_gives_the_same_result_as_an_uninterrupted_calibration(tmp_path, monkeypatch):
    config = small_config(tmp_path)
    whole = cal.calibrate(config, workers=1, out=tmp_path / "whole", progress=False)

    original = cal._Search.checkpoint

    def interrupt_after_two(self, result, rng):
        original(self, result, rng)
        if len(self.generations) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cal._Search, "checkpoint", interrupt_after_two)
    out = tmp_path / "split"
    with pytest.raises(KeyboardInterrupt):
        cal.calibrate(config, workers=1, out=out, progress=False)
    [partial] = (out / "calibration").iterdir()
    assert partial.name.endswith(".partial") and (partial / "checkpoint.json").is_file()
    monkeypatch.setattr(cal._Search, "checkpoint", original)
    run_id = partial.name[1:-len(".partial")]
    resumed = cal.calibrate(config, workers=1, out=out, resume=run_id, progress=False)

    assert resumed.path.name == run_id and not partial.exists()
    assert resumed.loss == pytest.approx(whole.loss, rel=1e-9)
    for name, value in whole.best.items():
        assert resumed.best[name] == pytest.approx(value, rel=1e-9)
    with pytest.raises(MpsimError, match="already finished"):
        cal.calibrate(config, workers=1, out=out, resume=run_id, progress=False)


@pytest.mark.slow
def test_a_calibration_starts_from_the_scenario_and_never_ends_worse(tmp_path):
    config = small_config(tmp_path)
    objective, bounds, _ = cal.build_objective(config)
    start = objective.start_point(bounds)
    defaults = scenarios.load("baseline").params
    for name, value, (low, high) in zip(objective.names, start, bounds):
        assert value == pytest.approx(min(max(defaults[name], low), high))
    result = cal.calibrate(config, workers=1, out=tmp_path, progress=False)
    assert result.loss <= objective(start) + 1e-12
    first = pd.read_csv(result.path / "evaluations.csv").iloc[0]
    assert [first[n] for n in objective.names] == pytest.approx(list(start), rel=1e-5)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["start_parameters"]["users.engagement_base"] == \
        pytest.approx(defaults["users.engagement_base"])


def test_resume_refuses_another_configuration(tmp_path):
    config = cal.load_config(write_config(tmp_path, "data.csv"))
    partial = tmp_path / "calibration" / ".abc.partial"
    partial.mkdir(parents=True)
    (partial / "checkpoint.json").write_text(json.dumps(
        {"config_digest": "different", "config": {"config_file": "x.toml", "budget": 5}}))
    with pytest.raises(MpsimError, match="another configuration"):
        cal.calibrate(config, out=tmp_path, resume="abc", progress=False)
    with pytest.raises(MpsimError, match="no interrupted calibration"):
        cal.calibrate(config, out=tmp_path, resume="nothing", progress=False)


def test_adopting_a_calibration_sets_defaults_and_their_source(tmp_path):
    from scripts.adopt_calibration import main

    folder = tmp_path / "20990101T000000Z"
    folder.mkdir()
    (folder / "best_parameters.json").write_text(json.dumps(
        {"loss": 0.01, "parameters": {"users.engagement_base": -2.5}}))
    written = tmp_path / "calibrated.toml"
    assert main([str(folder), "--target", str(written)]) == 0
    adopted = {p.name: p for p in _apply_calibration(PARAMS, written)}
    param = adopted["users.engagement_base"]
    assert param.default == -2.5
    assert param.source.startswith("calibrated: calibration 20990101T000000Z")
    assert adopted["red_envelope.strength"].default == 1.0


def test_a_later_stage_overrides_the_earlier_and_names_itself(tmp_path):
    from scripts.adopt_calibration import main

    folders = []
    for run_id, values in (("20990101T000000Z", {"users.engagement_base": -2.5,
                                                  "users.uses_habit_per_year": 0.2}),
                           ("20990102T000000Z", {"users.uses_habit_per_year": 1.5})):
        folder = tmp_path / run_id
        folder.mkdir()
        (folder / "best_parameters.json").write_text(json.dumps(
            {"loss": 0.01, "parameters": values}))
        folders.append(str(folder))
    written = tmp_path / "calibrated.toml"
    assert main([*folders, "--target", str(written)]) == 0
    adopted = {p.name: p for p in _apply_calibration(PARAMS, written)}
    assert adopted["users.engagement_base"].default == -2.5
    assert "20990101T000000Z" in adopted["users.engagement_base"].source
    habit = adopted["users.uses_habit_per_year"]
    assert habit.default == 1.5
    assert habit.source.startswith("calibrated: calibration 20990102T000000Z")
    assert "20990101T000000Z" not in habit.source  # one calibration per source, the last
    assert main([str(tmp_path / "missing"), "--target", str(written)]) == 2


def test_the_polish_evaluates_points_exactly_as_the_search_does(tmp_path):
    from model.executor import executor

    config = cal.load_config(write_config(tmp_path, "unused.csv", seed=2, replicates=2,
                                          agents=600, merchant_agents=200))
    targets = [target(150.0), target(500.0, "lower")]
    run = {"agents": 600, "merchant_agents": 200, "start": dt.date(2014, 1, 1),
           "end": dt.date(2018, 12, 31)}
    objective = cal.Objective({}, ["users.engagement_base"], targets, run,
                              np.random.SeedSequence(2).spawn(2))
    with executor(workers=1) as pool:
        search = cal._Search(objective, [(-5.0, 0.0)], config, pool, tmp_path, None, False)
        [errors] = search.errors_at([[-2.5]])
        assert float(np.sum(errors**2)) == objective([-2.5])
    assert search.history[-1][2] == "de" and search.history[-1][0] == [-2.5]


# --- polish and profile ranges, on errors known in closed form -----------------------
class LinearErrors(cal.Objective):
    """An objective whose log errors are linear in x: r = (x0 - 1, x1 + x0/2 - 2), and
    x2 changes nothing. Its least-squares optimum is (1, 1.5, anything) with loss 0."""

    def __init__(self):
        super().__init__({}, ["a", "b", "idle"], [target(100.0), target(200.0)], {},
                         np.random.SeedSequence(1).spawn(1))

    def simulate(self, x, seeds=None):
        return np.array([[100.0 * math.exp(x[0] - 1.0),
                          200.0 * math.exp(x[1] + 0.5 * x[0] - 2.0)]])


def linear_search(tmp_path, pool):
    config = cal.load_config(write_config(tmp_path, "unused.csv"))
    return cal._Search(LinearErrors(), [(0.0, 3.0), (0.0, 3.0), (0.0, 1.0)], config, pool,
                       tmp_path, None, False)


def test_the_polish_finds_the_least_squares_optimum_within_its_budget(tmp_path):
    from model.executor import executor

    with executor(workers=1) as pool:
        search = linear_search(tmp_path, pool)
        search.polish([0.2, 0.2, 0.5], budget=40)
        best = min(search.history, key=lambda h: h[1])
        assert best[0][:2] == pytest.approx([1.0, 1.5], abs=1e-6)
        assert best[1] < 1e-12
        assert len(search.history) <= 40
        assert {h[2] for h in search.history} == {"de"}  # the caller names the stage
        small = linear_search(tmp_path, pool)
        # a point, its Jacobian (3 points), the step's point; the next Jacobian won't fit
        small.polish([0.2, 0.2, 0.5], budget=6)
        assert len(small.history) == 5


def test_a_parameter_without_effect_fills_its_bounds_and_is_not_pinned_down(tmp_path):
    from model.executor import executor

    with executor(workers=1) as pool:
        search = linear_search(tmp_path, pool)
        x = np.array([1.2, 1.4, 0.5])
        errors, jacobian = search.linearise(x)
    assert jacobian[:, 2] == pytest.approx([0.0, 0.0])
    # weighted errors: each log error times sqrt(1/2), the weight over the total
    assert jacobian[:, :2] == pytest.approx(np.array([[1.0, 0.0], [0.5, 1.0]]) * math.sqrt(0.5),
                                            rel=1e-6)
    table = cal.uncertainty(search.history, ["a", "b", "idle"],
                            [(0.0, 3.0), (0.0, 3.0), (0.0, 1.0)], 0.1, x, (errors, jacobian))
    idle = table.set_index("parameter").loc["idle"]
    assert (idle["profile_low"], idle["profile_high"]) == (0.0, 1.0)
    assert not idle["identified"]
    assert table.set_index("parameter").loc["a", "identified"]


def test_profile_ranges_match_the_parabola_in_closed_form():
    # errors e + J d with e = (0, 0, 0.1): loss 0.01, tolerance 10% -> the loss may rise
    # by 0.001; J's columns are orthogonal, so parameter 0 may move +-sqrt(0.001)
    errors = np.array([0.0, 0.0, 0.1])
    jacobian = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    ranges = cal.linear_profiles(errors, jacobian, [0.5, 0.5], [(0, 1), (0, 1)], 0.1)
    half = math.sqrt(0.001)
    assert ranges[0] == pytest.approx((0.5 - half, 0.5 + half))
    assert ranges[1] == pytest.approx((0.5 - half / 2, 0.5 + half / 2))
    # two parameters that only act together: neither is pinned down on its own
    together = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    assert cal.linear_profiles(errors, together, [0.5, 0.5], [(0, 1), (0, 1)], 0.1) == \
        [(0.0, 1.0), (0.0, 1.0)]
    # ... though each moved alone is held to +-sqrt(0.001 / 2)
    alone = cal.linear_profiles(errors, together, [0.5, 0.5], [(0, 1), (0, 1)], 0.1,
                                refit=False)
    assert alone[0] == pytest.approx((0.5 - math.sqrt(0.0005), 0.5 + math.sqrt(0.0005)))
    # and the loose combination is the one moving them in opposite directions
    weak = cal.weak_directions(errors, together, ["a", "b"], [(0, 1), (0, 1)], [0.5, 0.5], 0.1)
    assert len(weak) == 1 and weak.loc[0, "singular_value"] == pytest.approx(0.0, abs=1e-12)
    assert weak.loc[0, "parameters"] == "a +0.71; b -0.71"
    # free along (1, -1)/sqrt(2) until one of them reaches a bound: 0.5 sqrt(2) each way
    assert weak.loc[0, "allowed_move"] == pytest.approx(math.sqrt(2))
    assert cal.weak_directions(errors, jacobian, ["a", "b"], [(0, 1), (0, 1)], [0.5, 0.5],
                               0.1).empty
    # the re-fit stays within the others' bounds: with b at 0.9, a lower a needs a
    # higher b, which has room for 0.1 only; beyond that the loss rises as 2 (t + 0.1)^2.
    # A higher a is made up for by a lower b all the way to a's own bound.
    near_edge = cal.linear_profiles(errors, together, [0.5, 0.9], [(0, 1), (0, 1)], 0.1)
    assert near_edge[0][0] == pytest.approx(0.5 - 0.1 - math.sqrt(0.0005), rel=1e-6)
    assert near_edge[0][1] == 1.0
    # an exact fit still allows the moves that keep every error within about 1%
    exact = cal.linear_profiles(np.zeros(2), np.array([[1.0], [0.0]]), [0.5], [(0, 1)], 0.1)[0]
    half = math.sqrt(cal.LOSS_FLOOR * 1.1)
    assert exact == pytest.approx((0.5 - half, 0.5 + half))
    # a best point off the linear model's optimum: the range is where the parabola
    # stays under 1.1 x the current loss, so it reaches further on the downhill side
    tilted = cal.linear_profiles(np.array([0.1, 0.0, 0.1]), np.array([[1.0], [0.0], [0.0]]),
                                 [0.5], [(0, 1)], 0.1)[0]
    assert 0.5 - tilted[0] > tilted[1] - 0.5
