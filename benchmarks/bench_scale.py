"""Wall time and peak memory of the whole default baseline run at each size.

Each size runs ``model.simulate(agents=N, seed=1)`` with default parameters (weekly
steps over 2014-2025) in a fresh Python process, so one size's memory cannot leak
into the next. For each run the script prints:

* simulate: wall time of the ``simulate`` call alone (model build and every step);
* process: wall time of the whole child process (interpreter start, imports, run);
* process CPU: user plus system CPU time of the child (from the same ``os.wait4``);
  well below the process wall time means other work on the machine held the cores
  (numpy and scipy run this model on one thread);
* peak RSS: the child's ``ru_maxrss`` as its parent reads it (``os.wait4``).

Merchant agents stay at the model's default (``merchant_agents`` in
``model/params.py``) unless ``--merchant-agents`` sets them.

Targets: 1,000,000 users in under a minute and under 4 GB; 10,000,000 users within
24 GB.

Example::

    .venv/bin/python benchmarks/bench_scale.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402

#: (users, wall-time limit in seconds or None, memory limit in GiB)
TARGETS = {1_000_000: (60.0, 4.0), 10_000_000: (None, 24.0)}


def child(agents: int, seed: int, merchant_agents: int | None) -> None:
    """Run one baseline in this process and print its timings as one JSON line."""
    started = time.perf_counter()
    from model import simulate
    from model.params import run_defaults

    imported = time.perf_counter()
    frame = simulate(agents=agents, merchant_agents=merchant_agents, seed=seed)
    done = time.perf_counter()
    last = frame.iloc[-1]
    print(json.dumps({
        "import_s": imported - started, "simulate_s": done - imported, "steps": len(frame),
        "merchant_agents": merchant_agents or run_defaults()["merchant_agents"],
        "last_week": str(frame.index[-1].date()),
        "last": {k: float(last[k]) for k in ("wechat.miniprogram_mau", "alipay.miniprogram_mau",
                                             "wechat.miniprogram_dau", "alipay.miniprogram_dau")},
    }))


def run_child(agents: int, seed: int, merchant_agents: int | None) -> dict:
    """One size in a fresh process: its JSON line plus process wall time and peak RSS."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(agents), "--seed", str(seed)]
    if merchant_agents:
        cmd += ["--merchant-agents", str(merchant_agents)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench_scale: the run with {agents:,} users failed "
                         f"(exit code {proc.returncode}); its error is printed above")
    row = json.loads(out.strip().splitlines()[-1])
    row.update(agents=agents, process_s=wall, cpu_s=usage.ru_utime + usage.ru_stime,
               peak_rss_gib=usage.ru_maxrss / 2**20)  # ru_maxrss is in KiB on Linux
    return row


def report(rows: list[dict]) -> str:
    lines = ["| users | merchants | steps | simulate s | process s | process CPU s | peak RSS GiB "
             "| s per step | last week: WeChat / Alipay mini-program MAU, million |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['agents']:,} | {r['merchant_agents']:,} | {r['steps']} | "
                     f"{r['simulate_s']:.1f} | {r['process_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['peak_rss_gib']:.2f} | "
                     f"{r['simulate_s'] / r['steps']:.4f} | {r['last_week']}: "
                     f"{r['last']['wechat.miniprogram_mau']:.0f} / "
                     f"{r['last']['alipay.miniprogram_mau']:.0f} |")
    lines.append("")
    for r in rows:
        if r["agents"] not in TARGETS:
            continue
        seconds, gib = TARGETS[r["agents"]]
        verdicts = []
        if seconds is not None:
            verdicts.append(f"time {r['process_s']:.1f} s {'meets' if r['process_s'] < seconds else 'MISSES'} "
                            f"< {seconds:g} s")
        verdicts.append(f"memory {r['peak_rss_gib']:.2f} GiB "
                        f"{'meets' if r['peak_rss_gib'] < gib else 'MISSES'} < {gib:g} GB")
        lines.append(f"- {r['agents']:,}: " + "; ".join(verdicts))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the default baseline (model.simulate, 2014-2025 weekly) at each size in "
                    "a fresh process; print wall time and peak memory (ru_maxrss of the child).")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000],
                        help="numbers of user agents, one run each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="model seed (default: %(default)s)")
    parser.add_argument("--merchant-agents", type=int,
                        help="merchant agents (default: the model's default, 20,000)")
    parser.add_argument("--json", type=Path, help="also write the measured rows to this JSON file")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        child(args.child, args.seed, args.merchant_agents)
        return 0
    if any(n < 100 for n in args.sizes):
        parser.error("every size must be >= 100 (the model's minimum)")
    print(_env.header(), flush=True)
    rows = []
    for agents in args.sizes:
        print(f"# {agents:,} users ...", flush=True)
        rows.append(run_child(agents, args.seed, args.merchant_agents))
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps({"env": _env.describe(), "args": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
