"""Where a baseline run spends its time: by rule (cProfile) and by line of the model.

Two passes over ``model.simulate(agents=N, seed=1)`` with default parameters:

1. cProfile: cumulative time of each rule of ``MiniProgramModel.step`` and the
   functions with the most own time. numpy ufuncs and operators are not function
   calls to cProfile, so their time counts as own time of the model function that
   runs them.
2. Line times: every line of ``model/model.py`` and ``model/agents.py`` timed with a
   ``sys.settrace`` hook (like line_profiler, no extra package). A line's time
   includes the numpy, scipy and mesa functions it calls. The hook adds a little time per line and call,
   so the total is somewhat above an untraced run; shares are what to read. Lines
   that call other model functions (``self.users_use(t)`` in ``step``) are left out,
   so the lines listed do not overlap.

Example::

    .venv/bin/python benchmarks/profile_model.py --agents 1000000 --top 20
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import linecache
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import _env  # noqa: E402
from model import agents as model_agents  # noqa: E402
from model import model as model_model  # noqa: E402
from model import simulate  # noqa: E402

RULES = ("update_app_users", "spread_wechat_pay", "open_alibaba_apps", "merchants_choose",
         "users_discover", "users_use", "record")


def rule_profile(agents: int, seed: int, top: int) -> str:
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(simulate, agents=agents, seed=seed)
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats
    model_file = str(Path(model_model.__file__).resolve())

    def in_model(key):
        return str(Path(key[0]).resolve()) == model_file

    by_name = {key[2]: value for key, value in stats.items() if in_model(key)}
    lines = [f"cProfile of simulate(agents={agents:,}, seed={seed}): {total:.1f} s under the profiler",
             "", "| rule (MiniProgramModel method) | calls | cumulative s | share of run |",
             "|---|---:|---:|---:|"]
    for name in ("__init__", *RULES, "results"):
        if name in by_name:
            _, calls, _, cumulative, _ = by_name[name]
            lines.append(f"| {name} | {calls} | {cumulative:.2f} | {100 * cumulative / total:.1f}% |")
    lines += ["", f"Top {top} functions by own time:", "",
              "| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
    for key, (_, calls, own, cumulative, _) in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        where = key[0]
        try:
            where = str(Path(where).resolve().relative_to(ROOT))
        except ValueError:
            where = Path(where).name if where.startswith("/") else where
        lines.append(f"| {where}:{key[1]}({key[2]}) | {calls} | {own:.2f} | {cumulative:.2f} |")
    return "\n".join(lines)


def traced_code_objects() -> set:
    codes = set()
    for module in (model_model, model_agents):
        for _, obj in inspect.getmembers(module):
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                codes |= {f.__code__ for f in vars(obj).values() if inspect.isfunction(f)}
            elif inspect.isfunction(obj) and obj.__module__ == module.__name__:
                codes.add(obj.__code__)
    return codes


def line_profile(agents: int, seed: int, top: int) -> str:
    codes = traced_code_objects()
    spent: dict = defaultdict(float)
    hits: dict = defaultdict(int)
    last: dict = {}  # frame id -> (code, line, time the line started)
    clock = time.perf_counter

    def local(frame, event, arg):
        now = clock()
        key = id(frame)
        previous = last.get(key)
        if previous is not None:
            code, line, started = previous
            spent[(code.co_filename, line)] += now - started
            hits[(code.co_filename, line)] += 1
        if event == "return":
            last.pop(key, None)
        else:
            last[key] = (frame.f_code, frame.f_lineno, clock())
        return local

    dispatching = set()  # lines that call other traced functions: their time is listed there

    def on_call(frame, event, arg):
        if frame.f_code in codes:
            caller = frame.f_back  # the nearest traced caller, through mesa's run_model
            while caller is not None and caller.f_code not in codes:
                caller = caller.f_back
            if caller is not None:
                dispatching.add((caller.f_code.co_filename, caller.f_lineno))
            last[id(frame)] = (frame.f_code, frame.f_lineno, clock())
            return local
        return None

    start = clock()
    sys.settrace(on_call)
    try:
        simulate(agents=agents, seed=seed)
    finally:
        sys.settrace(None)
    total = clock() - start
    own = {where: seconds for where, seconds in spent.items() if where not in dispatching}
    lines = [f"Line times of simulate(agents={agents:,}, seed={seed}): {total:.1f} s under the "
             "trace hook. Lines that call other model functions are left out (their time is "
             "in the called lines), so shares do not overlap; a line's time includes the "
             f"numpy, scipy and mesa code it runs. The top {top} lines hold "
             f"{100 * sum(sorted(own.values())[-top:]) / total:.0f}% of the run.", "",
             "| line | hits | s | share of run | source |", "|---|---:|---:|---:|---|"]
    for (filename, line), seconds in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        source = linecache.getline(filename, line).strip().replace("|", "\\|")
        name = Path(filename).resolve().relative_to(ROOT)
        lines.append(f"| {name}:{line} | {hits[(filename, line)]} | {seconds:.2f} | "
                     f"{100 * seconds / total:.1f}% | `{source[:90]}` |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Profile one default baseline run: time per rule (cProfile) and per line "
                    "of model/model.py and model/agents.py (a settrace line timer).")
    parser.add_argument("--agents", type=int, default=1_000_000,
                        help="user agents (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="model seed (default: %(default)s)")
    parser.add_argument("--top", type=int, default=20,
                        help="functions and lines to list (default: %(default)s)")
    parser.add_argument("--skip", choices=("rules", "lines"), action="append", default=[],
                        help="skip a pass (repeatable)")
    args = parser.parse_args(argv)
    print(_env.header(), flush=True)
    if "rules" not in args.skip:
        print(rule_profile(args.agents, args.seed, args.top), flush=True)
        print()
    if "lines" not in args.skip:
        print(line_profile(args.agents, args.seed, args.top), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
