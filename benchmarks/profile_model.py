"""Where a baseline run spends its time: each rule's share, and optionally by function and line.

1. Rules (always): ``model.simulate(agents=N, seed=1)`` with default parameters at each
   ``--agents`` size (default 10,000 and 1,000,000), every rule of
   ``MiniProgramModel.step`` timed with ``time.perf_counter`` around its call. The rules
   are read from ``step`` itself, in run order, so they are numbered and named as in
   ``model/model.py``'s docstring (rule 1 ``update_app_users`` ... rule 9 ``record``);
   building the model (agents, network) and reading its results are listed too. The
   timer adds two clock reads per rule and step, nothing else.
2. Functions (``--functions``): cProfile of one run at the largest size, the functions
   with the most own time. numpy ufuncs and operators are not function calls to
   cProfile, so their time counts as own time of the model function that runs them.
3. Lines (``--lines``): every line of ``model/model.py`` and ``model/agents.py`` timed
   with a ``sys.settrace`` hook (like line_profiler, no extra package), one run at the
   largest size. A line's time includes the numpy, scipy and mesa functions it calls.
   The hook adds a little time per line and call, so the total is somewhat above an
   untraced run; shares are what to read. Lines that call other model functions
   (``self.users_use(t)`` in ``step``) are left out, so the lines listed do not overlap.

Example::

    .venv/bin/python benchmarks/profile_model.py --agents 10000 1000000
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import linecache
import pstats
import re
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
from model.model import MiniProgramModel  # noqa: E402


def rule_names() -> tuple[str, ...]:
    """The rules ``MiniProgramModel.step`` calls, in run order (``self.<rule>(t)``)."""
    return tuple(re.findall(r"self\.(\w+)\(t\)", inspect.getsource(MiniProgramModel.step)))


RULES = rule_names()


def time_rules(agents: int, seed: int) -> dict:
    """One default run with every rule timed; seconds by rule, build, results and total."""
    spent = dict.fromkeys(RULES, 0.0)
    clock = time.perf_counter
    started = clock()
    model = MiniProgramModel(agents=agents, seed=seed)
    built = clock()

    def timed(name, method):
        def call(t):
            start = clock()
            method(t)
            spent[name] += clock() - start
        return call

    for name in RULES:  # instance attributes: step's self.<rule>(t) finds the timed one
        setattr(model, name, timed(name, getattr(model, name)))
    model.run_model()
    stepped = clock()
    model.results()
    model.release()
    done = clock()
    return {"agents": agents, "steps": model.n_steps, "build_s": built - started,
            "rules_s": spent, "results_s": done - stepped, "total_s": done - started,
            "steps_s": stepped - built}


def rules_table(rows: list[dict]) -> str:
    sizes = [r["agents"] for r in rows]
    lines = ["Each rule's share of a default run (simulate, 2014-2025 weekly, merchant agents at "
             "the default), timed around every call:", "",
             "| rule | " + " | ".join(f"{n:,} users: s | share" for n in sizes) + " |",
             "|---|" + "---:|---:|" * len(sizes)]

    def cells(get):
        return " | ".join(f"{get(r):.2f} | {100 * get(r) / r['total_s']:.1f}%" for r in rows)

    lines.append(f"| build the model (agents, network) | {cells(lambda r: r['build_s'])} |")
    for i, name in enumerate(RULES, 1):
        lines.append(f"| {i}. {name} | {cells(lambda r, n=name: r['rules_s'][n])} |")
    lines.append(f"| step overhead (mesa, the loop) | "
                 f"{cells(lambda r: r['steps_s'] - sum(r['rules_s'].values()))} |")
    lines.append(f"| results() and release() | {cells(lambda r: r['results_s'])} |")
    lines.append("| **whole run** | " + " | ".join(f"**{r['total_s']:.2f}** | 100%" for r in rows)
                 + " |")
    lines.append("")
    lines.append("Steps: " + ", ".join(f"{r['steps']} at {r['agents']:,} users" for r in rows) + ".")
    return "\n".join(lines)


def function_profile(agents: int, seed: int, top: int) -> str:
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(simulate, agents=agents, seed=seed)
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats
    lines = [f"cProfile of simulate(agents={agents:,}, seed={seed}): {total:.1f} s under the "
             f"profiler. Top {top} functions by own time:", "",
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
        description="Profile default baseline runs: each rule's share of the run at each size; "
                    "optionally by function (cProfile) and by line of model/model.py and "
                    "model/agents.py (a settrace line timer) at the largest size.")
    parser.add_argument("--agents", type=int, nargs="+", default=[10_000, 1_000_000],
                        help="user agents, one run each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="model seed (default: %(default)s)")
    parser.add_argument("--functions", action="store_true",
                        help="also list the functions with most own time (cProfile)")
    parser.add_argument("--lines", action="store_true",
                        help="also list the slowest lines of the model (settrace)")
    parser.add_argument("--top", type=int, default=20,
                        help="functions and lines to list (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the rule times to this JSON file")
    args = parser.parse_args(argv)
    if any(n < 100 for n in args.agents):
        parser.error("every --agents size must be >= 100 (the model's minimum)")
    print(_env.header(), flush=True)
    rows = []
    for agents in args.agents:
        print(f"# {agents:,} users ...", flush=True)
        rows.append(time_rules(agents, args.seed))
    print(rules_table(rows), flush=True)
    largest = max(args.agents)
    if args.functions:
        print()
        print(function_profile(largest, args.seed, args.top), flush=True)
    if args.lines:
        print()
        print(line_profile(largest, args.seed, args.top), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"env": _env.describe(), "rules": list(RULES),
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
