"""What a benchmark ran on and against: machine, versions and the code's commit.

Every benchmark prints this header so a table of figures can be traced back to the
machine and the exact model code that produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict[str, str]:
    """Machine, library versions and the model code's commit (and whether it was edited)."""
    import mesa
    import numpy
    import scipy

    dirty = _git("status", "--porcelain", "--", "model", "calibration")
    return {
        "python": platform.python_version(),
        "mesa": mesa.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "cpus": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "model_code": "edited since commit" if dirty else "as committed",
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def header() -> str:
    d = describe()
    return (f"# python {d['python']}, mesa {d['mesa']}, numpy {d['numpy']}, scipy {d['scipy']}; "
            f"{d['cpus']} cpus ({d['cpu']}); commit {d['commit']}, model/ and calibration/ {d['model_code']}; "
            f"load average {d['load_average']} (1, 5, 15 min: other work on the machine)")
