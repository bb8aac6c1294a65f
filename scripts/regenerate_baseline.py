"""Regenerate tests/baseline.json on purpose, after a deliberate change to the model.

    python scripts/regenerate_baseline.py

The regression test (tests/test_regression.py) compares a seeded run's key outputs
with this file; when a change to the model is meant to move them, rerun this script
and commit the new file with the change, saying why in the commit message.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import scipy

from model import simulate

PATH = Path(__file__).resolve().parent.parent / "tests" / "baseline.json"
RUN = {"agents": 20_000, "merchant_agents": 2_000, "end": "2020-12-31", "seed": 20190109}
KEYS = ["wechat.pay_users", "wechat.miniprogram_users_cumulative", "wechat.miniprogram_dau",
        "wechat.mini_programs_count", "alipay.miniprogram_users_cumulative",
        "alipay.miniprogram_dau", "alipay.mini_programs_count", "all.users_multihoming_share"]


def key_outputs(params=None) -> dict[str, dict[str, float]]:
    frame = simulate(params, agents=RUN["agents"], merchant_agents=RUN["merchant_agents"],
                     end=dt.date.fromisoformat(RUN["end"]), seed=RUN["seed"])
    year_ends = frame.groupby(frame.index.year).tail(1)
    return {key: {d.date().isoformat(): float(v) for d, v in year_ends[key].items()
                  if d.year >= 2017} for key in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.parse_args()
    data = {"run": RUN, "numpy": np.__version__, "scipy": scipy.__version__,
            "outputs": key_outputs()}
    PATH.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
