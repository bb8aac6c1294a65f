"""Time rule 8 (users use mini programs) of the model against a mesa and a bare-numpy reference.

For each size N the script builds ``MiniProgramModel(agents=N, seed=1)`` and steps it
to a week in which mini programs are in use (``--until``, default 2019-01-01), then
times three implementations of the same rule on the same state:

* model: ``model.users_use(model.t)``, both platforms, as the model runs it (it also
  computes the reach merchants see next week);
* numpy: ``benchmarks/reference_numpy.py`` on the model's arrays, once per platform;
* mesa: ``benchmarks/reference_mesa.py``, one mesa agent per user and platform built
  from the model's arrays, one ``step()`` per platform; skipped above ``--mesa-max``
  users, where its rate is extrapolated from the largest size measured (marked).

An agent update is one user's daily-use decision on one platform, so each variant
makes 2N updates per call. Each repeat times enough calls to last about 0.2 s and
keeps the time per call; the table shows medians of ``--repeats`` repeats. A check
table follows: the share of users active today and this month under each variant
(they must agree up to sampling noise) and how many users the numpy reference,
started from the model's generator state, decides exactly as the model does.

Example::

    .venv/bin/python benchmarks/bench_step.py --sizes 10000 100000 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks import _env  # noqa: E402
from benchmarks.reference_mesa import DailyUseModel  # noqa: E402
from benchmarks.reference_numpy import Habit, daily_use  # noqa: E402
from model import MiniProgramModel  # noqa: E402
from model.params import PLATFORMS  # noqa: E402

#: Targets from the performance brief, as speed ratios model / reference.
TARGET_OVER_MESA = 50.0
TARGET_OVER_NUMPY = 0.5  # within 2x of bare numpy
TARGET_SIZES = (100_000, 1_000_000)


def model_in_use(agents: int, seed: int, until: dt.date) -> tuple[MiniProgramModel, float]:
    """A model stepped to the first week starting on or after ``until``, and the seconds it took."""
    start = time.perf_counter()
    model = MiniProgramModel(agents=agents, seed=seed)
    while model.t < model.n_steps - 1 and model.dates[model.t] < until:
        model.step()
    return model, time.perf_counter() - start


def platform_inputs(model: MiniProgramModel, platform: str) -> dict:
    """The inputs of rule 8 for one platform in the model's current week, as copies.

    ``shift`` repeats the shared log-odds of ``MiniProgramModel.users_use``: base,
    catalogue, the Spring Festival lift in festival weeks and the necessities lift
    from ``necessities.start``; ``habit`` its habit and novelty terms; ``opens`` the
    app's daily-open probability (with Wufu in its campaign weeks); ``ring`` the last four
    weeks' monthly-use ring (``users.month_log_stay``) and ``week`` the step.
    """
    p, t, users = model.p, model.t, model.users
    shift = p["users.engagement_base"] + p["users.engagement_catalog"] * model.catalog_value(platform)
    year = model.festival(t)
    if year:
        shift += p["users.spring_festival_lift"]
    if model.necessities_from <= t:
        shift += p["necessities.use_lift"]
    return {"propensity": users.propensity, "pays": users.pay[platform].copy(),
            "ever_used": users.ever_used[platform].copy(),
            "can_reach": model.can_reach(platform).copy(),
            "lapsed": users.lapsed[platform].copy(),
            "shift": shift, "pay_lift": p["users.pay_lift"], "habit": habit(model, platform),
            "opens": model.daily_open(platform, model.wufu(t)),
            "ring": users.month_log_stay[platform].copy(), "week": t}


def habit(model: MiniProgramModel, platform: str) -> Habit | None:
    """The habit and novelty terms of ``users_use``, or None when both are off."""
    p = model.p
    if not (p["users.habit_per_year"] or p["users.novelty_lift"]):
        return None
    return Habit(first_use=model.users.first_use[platform].copy(),
                 years_per_step=model.years_per_step, per_year=p["users.habit_per_year"],
                 cap_years=p["users.habit_cap_years"], novelty_lift=p["users.novelty_lift"],
                 novelty_years=p["users.novelty_years"],
                 no_novelty=model.users.covered.copy() if platform == "alipay" else None)


def seconds_per_call(call, repeats: int, min_seconds: float = 0.2) -> float:
    """Median over ``repeats`` of the mean time of one call (after a warm-up call)."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    calls = max(1, math.ceil(min_seconds / max(first, 1e-9)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def shares(activity: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    return "  ".join(f"{pl} {today.mean():.4f}/{month.mean():.4f}"
                     for pl, (today, month) in activity.items())


def bench_size(agents: int, args) -> dict:
    row: dict = {"agents": agents}
    model, row["setup_s"] = model_in_use(agents, args.seed, args.until)
    row["week"] = model.dates[model.t].isoformat()
    t = model.t
    inputs = {pl: platform_inputs(model, pl) for pl in PLATFORMS}
    updates = agents * len(PLATFORMS)

    # (a) the model's own rule
    row["model_s"] = seconds_per_call(lambda: model.users_use(t), args.repeats)
    # Same generator state for the numpy reference: it should decide the same users alike.
    ref_rng = np.random.default_rng()
    ref_rng.bit_generator.state = copy.deepcopy(model.rng.bit_generator.state)
    model.users_use(t)
    checks = {"model": {pl: (model.users.active_today[pl].copy(), model.users.active_month[pl].copy())
                        for pl in PLATFORMS}}

    # (b) bare numpy
    checks["numpy"] = {pl: daily_use(**inputs[pl], rng=ref_rng) for pl in PLATFORMS}
    row["eligible_decisions"] = 2 * sum(
        int(np.count_nonzero(inputs[pl]["ever_used"] & inputs[pl]["can_reach"] & ~inputs[pl]["lapsed"]))
        for pl in PLATFORMS)
    row["numpy_differing_decisions"] = sum(
        int(np.count_nonzero(checks["numpy"][pl][k] != checks["model"][pl][k]))
        for pl in PLATFORMS for k in (0, 1))
    rng = np.random.default_rng(args.seed)
    row["numpy_s"] = seconds_per_call(
        lambda: [daily_use(**inputs[pl], rng=rng) for pl in PLATFORMS], args.repeats)

    # (c) one mesa agent per user
    if agents <= args.mesa_max:
        start = time.perf_counter()
        seeds = np.random.SeedSequence(args.seed).spawn(len(PLATFORMS))
        references = {pl: DailyUseModel(**inputs[pl], rng=np.random.default_rng(s))
                      for pl, s in zip(PLATFORMS, seeds)}
        row["mesa_build_s"] = time.perf_counter() - start
        # the check is the first step, from the model's state of this week; the timed
        # steps after it move the agents' four-week memory on, at the same cost
        for ref in references.values():
            ref.step()
        checks["mesa"] = {pl: ref.activity() for pl, ref in references.items()}
        row["mesa_s"] = seconds_per_call(
            lambda: [ref.step() for ref in references.values()], args.repeats)
        del references
        gc.collect()
    for name, activity in checks.items():
        row[f"{name}_shares"] = {pl: [float(a.mean()) for a in pair] for pl, pair in activity.items()}
    row["check_text"] = {name: shares(activity) for name, activity in checks.items()}
    for name in ("model", "numpy", "mesa"):
        if f"{name}_s" in row:
            row[f"{name}_rate"] = updates / row[f"{name}_s"] / 1e6
    del model, inputs, checks
    gc.collect()
    return row


def fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def report(rows: list[dict]) -> str:
    measured = [r for r in rows if "mesa_rate" in r]
    lines = ["| users | model M updates/s | numpy M updates/s | mesa M updates/s | model / mesa "
             "| model / numpy | model ms/call | numpy ms/call | mesa ms/call |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for r in rows:
        if "mesa_rate" in r:
            mesa, mesa_ms, mark = r["mesa_rate"], f"{r['mesa_s'] * 1e3:.1f}", ""
        elif measured:
            base = max((m for m in measured if m["agents"] < r["agents"]),
                       key=lambda m: m["agents"], default=measured[-1])
            mesa, mesa_ms, mark = base["mesa_rate"], "skipped", "*"
            r["mesa_rate_extrapolated_from"] = base["agents"]
            notes.append(f"* {r['agents']:,} users: mesa reference skipped (--mesa-max); its rate "
                         f"is extrapolated as equal to the rate measured at {base['agents']:,}.")
        else:
            mesa = None
        mesa_txt = f"{fmt(mesa)}{mark}" if mesa else "skipped"
        over_mesa = f"{fmt(r['model_rate'] / mesa)}{mark}" if mesa else "skipped"
        if mesa:
            r["model_over_mesa"] = r["model_rate"] / mesa
        r["model_over_numpy"] = r["model_rate"] / r["numpy_rate"]
        lines.append(f"| {r['agents']:,} | {fmt(r['model_rate'])} | {fmt(r['numpy_rate'])} | "
                     f"{mesa_txt} | {over_mesa} | {r['model_over_numpy']:.2f} | "
                     f"{r['model_s'] * 1e3:.2f} | {r['numpy_s'] * 1e3:.2f} | {mesa_ms} |")
    lines += [""] + notes
    lines.append("An update is one user's daily-use decision on one platform (2 per user per call). "
                 f"Targets at {' and '.join(f'{s:,}' for s in TARGET_SIZES)} users: model / mesa >= "
                 f"{TARGET_OVER_MESA:g}, model / numpy >= {TARGET_OVER_NUMPY:g} (within 2x).")
    for r in rows:
        if r["agents"] in TARGET_SIZES:
            verdicts = []
            if "model_over_mesa" in r:
                ok = r["model_over_mesa"] >= TARGET_OVER_MESA
                verdicts.append(f"model/mesa {r['model_over_mesa']:.0f}x "
                                f"{'meets' if ok else 'MISSES'} {TARGET_OVER_MESA:g}x"
                                f"{' (extrapolated mesa)' if 'mesa_rate' not in r else ''}")
            ok = r["model_over_numpy"] >= TARGET_OVER_NUMPY
            verdicts.append(f"model/numpy {r['model_over_numpy']:.2f} "
                            f"{'meets' if ok else 'MISSES'} >= {TARGET_OVER_NUMPY:g}")
            lines.append(f"- {r['agents']:,}: " + "; ".join(verdicts))
    lines += ["", "Checks (share of users active today/this month, by platform):"]
    for r in rows:
        lines.append(f"- {r['agents']:,} users, week of {r['week']} "
                     f"(built and stepped there in {r['setup_s']:.1f} s"
                     + (f"; mesa reference built in {r['mesa_build_s']:.1f} s" if "mesa_build_s" in r else "")
                     + f"); from the model's generator state the numpy reference differs from "
                     f"the model in {r['numpy_differing_decisions']:,} of "
                     f"{2 * len(PLATFORMS) * r['agents']:,} today/month decisions "
                     f"({r['eligible_decisions']:,} of them by eligible users)")
        for name, text in r["check_text"].items():
            lines.append(f"    {name:5s} {text}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the model's daily-use rule (rule 8, MiniProgramModel.users_use) "
                    "against an idiomatic one-agent-per-user mesa reference and a bare-numpy "
                    "reference, on the same model state.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="numbers of user agents (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repeats per variant; the median is reported (default: %(default)s)")
    parser.add_argument("--mesa-max", type=int, default=100_000,
                        help="largest size at which the mesa reference is built and timed; above "
                             "it its rate is extrapolated and marked (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="model seed (default: %(default)s)")
    parser.add_argument("--until", type=dt.date.fromisoformat, default=dt.date(2019, 1, 1),
                        help="step the model to the first week starting on or after this date "
                             "before timing (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the measured rows to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or any(n < 100 for n in args.sizes):
        parser.error("--repeats must be >= 1 and every size >= 100 (the model's minimum)")

    print(_env.header(), flush=True)
    rows = []
    for agents in args.sizes:
        print(f"# {agents:,} users ...", flush=True)
        rows.append(bench_size(agents, args))
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps({"env": _env.describe(), "args": {
            k: (str(v) if isinstance(v, (dt.date, Path)) else v) for k, v in vars(args).items()},
            "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
