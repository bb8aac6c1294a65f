"""``mpsim app``: the interactive view, a Solara page served on this machine.

Pick a scenario, move the red-envelope, traffic-sharing and Wufu levers, or set any
parameter by name, and see mini-program users, daily users, mini programs and shares
against the baseline and the reported figures, with 5-95% bands over replicates. Each
change reruns the scenario at a reduced size (5,000 user agents, 1,000 merchant agents,
3 replicates by default: about a second on one core); the baseline at the same size
and seeds is kept, so scenario and baseline are paired replicate by replicate. These
are runs at the calibration's best point (the parameter defaults): the bands show the
model's own noise, not the posterior spread of ``mpsim run``; use ``mpsim run`` and
``mpsim compare`` at full size for figures to quote.

The page is built on Solara directly rather than mesa's SolaraViz, which steps one
live model: here every change is a small ensemble of whole runs. Served with
``solara run model/app.py`` by :func:`serve`. The page's starting state can be given in
its address, e.g. ``/?scenario=no_red_envelope&red_envelope.strength=0.5&replicates=2``
(any parameter name; ``agents``, ``replicates``, ``seed``), which makes a view easy to
share and to test.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd

from .errors import MpsimError

APP_FILE = Path(__file__).resolve()
AGENTS = 5_000
REPLICATES = 3
SEED = 20190109
#: Merchant agents per user agent, as in the shipped run settings (20,000 per 100,000).
MERCHANTS_PER_AGENT = 0.2
#: The levers on the page: parameter, label, slider minimum, maximum and step.
LEVERS = (
    ("red_envelope.strength", "Red envelopes: contagion (x baseline)", 0.0, 4.0, 0.05),
    ("traffic_sharing.exposure_weekly", "Traffic sharing: weekly exposure", 0.0, 0.1, 0.001),
    ("wufu.activity_lift", "Wufu: campaign-week lift (log-odds)", 0.0, 4.0, 0.05),
)
SWITCHES = (("traffic_sharing.enabled", "Traffic sharing on"),)
#: The panels: output column (per platform unless it names one), title, unit, scale.
PANELS = (
    ("miniprogram_users_cumulative", "Mini-program users: ever used", "million people", 1.0),
    ("miniprogram_dau", "Daily active mini-program users", "million people", 1.0),
    ("mini_programs_count", "Mini programs (merchants)", "million mini programs", 1.0),
    ("miniprogram_dau_share", "Share of daily users", "%", 100.0),
)
#: The readout: outputs at the last week of a year, scenario against baseline.
READOUT_YEAR = 2020
READOUT = (
    ("wechat.miniprogram_dau", "WeChat daily users", "million", 1.0),
    ("alipay.miniprogram_dau", "Alipay daily users", "million", 1.0),
    ("alipay.miniprogram_dau_share", "Alipay share of daily users", "%", 100.0),
    ("wechat.miniprogram_users_cumulative", "WeChat: ever used", "million", 1.0),
    ("alipay.miniprogram_users_cumulative", "Alipay: ever used", "million", 1.0),
    ("wechat.pay_users", "WeChat Pay users", "million", 1.0),
)
COLOURS = {"wechat": "#07a35a", "alipay": "#1677ff"}
LABELS = {"wechat": "WeChat", "alipay": "Alipay"}


# --- the computation (no Solara: tested directly) ---------------------------------------

def parse_value(text: str) -> Any:
    """A parameter value typed as TOML (``0.5``, ``true``, ``2019-06-01``,
    ``["taobao"]``), or as bare text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_overrides(text: str) -> dict[str, Any]:
    """``name = value`` lines (or ``;``-separated) as checked overrides; a one-line
    ParameterError naming the line's parameter, value and what is allowed."""
    from .errors import ParameterError
    from .params import check_param

    overrides: dict[str, Any] = {}
    for part in text.replace(";", "\n").splitlines():
        if not part.strip() or part.strip().startswith("#"):
            continue
        if "=" not in part:
            raise ParameterError(f"'{part.strip()}': expected name = value, e.g. "
                                 "red_envelope.strength = 0.5")
        name, value = (s.strip() for s in part.split("=", 1))
        overrides[name] = check_param(name, parse_value(value), "app")
    return overrides


def scenario_names() -> list[str]:
    from . import scenarios

    return sorted(scenarios.available())


def scenario_values(name: str) -> dict[str, Any]:
    """A scenario's resolved parameter values."""
    from . import scenarios

    return dict(scenarios.load(name).params)


def _settings(name: str, agents: int) -> dict[str, Any]:
    from . import scenarios

    run = dict(scenarios.load(name).run)
    return {"agents": agents, "merchant_agents": max(100, round(agents * MERCHANTS_PER_AGENT)),
            "start": run["start"], "end": run["end"]}


@lru_cache(maxsize=64)
def _runs(key: tuple, agents: int, replicates: int, seed: int, start: dt.date,
          end: dt.date) -> tuple[pd.DataFrame, ...]:
    from .model import simulate

    overrides = dict(key)
    seeds = np.random.SeedSequence(seed).spawn(replicates)
    return tuple(simulate(overrides, agents=agents,
                          merchant_agents=max(100, round(agents * MERCHANTS_PER_AGENT)),
                          start=start, end=end, seed=s) for s in seeds)


def _key(overrides: dict[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                        for k, v in overrides.items()))


def simulate_view(scenario: str, levers: dict[str, Any], *, agents: int = AGENTS,
                  replicates: int = REPLICATES, seed: int = SEED) -> dict[str, Any]:
    """The runs behind the page: the scenario with the levers applied, and the
    baseline, both at ``agents`` and ``replicates`` with the same seeds (cached)."""
    from . import scenarios

    loaded = scenarios.load(scenario)
    overrides = {**loaded.overrides, **levers}
    window = _settings(scenario, agents)
    base_window = _settings("baseline", agents)
    clock = time.perf_counter()
    frames = _runs(_key(overrides), agents, replicates, seed, window["start"], window["end"])
    baseline = _runs((), agents, replicates, seed, base_window["start"], base_window["end"])
    return {"frames": list(frames), "baseline": list(baseline), "overrides": overrides,
            "seconds": time.perf_counter() - clock, "agents": agents,
            "replicates": replicates, "seed": seed}


def _view_or_error(scenario: str, levers: dict[str, Any], **settings) -> dict[str, Any] | MpsimError:
    """simulate_view, or the one-line error that stopped it (e.g. parameters that do not
    fit together), for the page to show."""
    try:
        return simulate_view(scenario, levers, **settings)
    except MpsimError as exc:
        return exc


def _year_end(frames: list[pd.DataFrame], column: str, year: int) -> np.ndarray:
    """Each run's value at the last non-festival week of ``year`` (NaN if outside)."""
    frame = frames[0]
    inside = (frame.index.year == year) & (frame["all.spring_festival"].to_numpy() != 1)
    if not inside.any():
        return np.full(len(frames), np.nan)
    i = int(np.flatnonzero(inside)[-1])
    return np.array([f[column].iloc[i] for f in frames], dtype=float)


def readout(view: dict[str, Any], year: int = READOUT_YEAR) -> pd.DataFrame:
    """Key outputs at the end of ``year``: scenario and baseline means, the paired
    difference and its 5-95% range over replicates."""
    rows = []
    for column, label, unit, scale in READOUT:
        ours = _year_end(view["frames"], column, year) * scale
        base = _year_end(view["baseline"], column, year) * scale
        diff = ours - base if ours.shape == base.shape else np.full(ours.shape, np.nan)
        with np.errstate(all="ignore"):
            rows.append({"output": label, "unit": unit, "scenario": np.nanmean(ours),
                         "baseline": np.nanmean(base), "difference": np.nanmean(diff),
                         "difference_p05": np.nanquantile(diff, 0.05) if np.isfinite(diff).any()
                         else np.nan,
                         "difference_p95": np.nanquantile(diff, 0.95) if np.isfinite(diff).any()
                         else np.nan})
    return pd.DataFrame(rows)


@lru_cache(maxsize=1)
def _reported() -> pd.DataFrame | None:
    from .plots import reported_figures

    try:
        return reported_figures()
    except MpsimError:
        return None


def _band(ax, frames, column, colour, label, scale, style, alpha):
    cube = np.stack([f[column].to_numpy(dtype=float) for f in frames]) * scale
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(cube, axis=0)
            low, high = np.nanquantile(cube, [0.05, 0.95], axis=0)
    index = frames[0].index
    ax.fill_between(index, low, high, color=colour, alpha=alpha, lw=0)
    ax.plot(index, mean, style, color=colour, lw=1.6 if style == "-" else 1.1, label=label)


def figure(view: dict[str, Any], scenario: str):
    """The four panels: scenario (solid, band) against baseline (dashed, band) and the
    reported figures (points; triangles: lower bounds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7.2), layout="constrained")
    axes = fig.subplots(2, 2)
    reported = _reported()
    start = pd.Timestamp("2016-10-01")
    for ax, (series, title, unit, scale) in zip(axes.flat, PANELS):
        for pl in ("wechat", "alipay"):
            column = f"{pl}.{series}"
            _band(ax, view["baseline"], column, "#888888",
                  "baseline" if pl == "wechat" else None, scale, "--", 0.12)
            _band(ax, view["frames"], column, COLOURS[pl], LABELS[pl], scale, "-", 0.22)
            if reported is not None and scale == 1.0:
                rows = reported[(reported["series"] == series) & (reported["platform"] == pl)]
                for kind, group in rows.groupby("kind"):
                    ax.scatter(group["date"], group["value"], s=30, zorder=5,
                               marker={"lower": "^", "upper": "v"}.get(kind, "o"),
                               color=COLOURS[pl], edgecolor="black", lw=0.6)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel(unit)
        ax.set_xlim(left=mdates.date2num(start))
        ax.set_ylim(bottom=0, top=100 if scale == 100.0 else None)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(mdates.YearLocator(2))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"This view ({scenario} with the levers; solid) against the baseline "
                 "(grey, dashed); bands: "
                 f"5-95% of {view['replicates']} replicates x {view['agents']:,} agents; "
                 "points: reported figures", fontsize=9)
    return fig


def initial_state(search: str | None) -> dict[str, Any]:
    """The page's starting state from its address's query string."""
    state: dict[str, Any] = {"scenario": "baseline", "agents": AGENTS,
                             "replicates": REPLICATES, "seed": SEED, "levers": {}}
    for name, value in parse_qsl(search or "", keep_blank_values=False):
        if name == "scenario" and value in scenario_names():
            state["scenario"] = value
        elif name in ("agents", "replicates", "seed"):
            try:
                number = int(value)
            except ValueError:
                continue
            limits = {"agents": (500, 100_000), "replicates": (1, 20), "seed": (0, 2**63 - 1)}
            low, high = limits[name]
            state[name] = min(max(number, low), high)
        else:
            try:
                state["levers"].update(parse_overrides(f"{name} = {value}"))
            except MpsimError:
                continue
    return state


# --- the page ---------------------------------------------------------------------------

try:
    import solara
except ImportError:  # serve() says how to install it; the functions above still work
    solara = None

if solara is not None:
    @solara.component
    def Page():
        router = solara.use_router()
        start = solara.use_memo(lambda: initial_state(router.search), [])
        scenario, set_scenario = solara.use_state(start["scenario"])
        agents, set_agents = solara.use_state(start["agents"])
        replicates, set_replicates = solara.use_state(start["replicates"])
        base_values = solara.use_memo(lambda: scenario_values(scenario), [scenario])
        lever_names = [n for n, *_ in LEVERS] + [n for n, _ in SWITCHES]
        levers, set_levers = solara.use_state(
            {n: start["levers"].get(n, base_values[n]) for n in lever_names})
        extra_text, set_extra_text = solara.use_state(
            "\n".join(f"{k} = {v}" for k, v in start["levers"].items() if k not in lever_names))

        def pick(name):
            set_scenario(name)
            values = scenario_values(name)
            set_levers({n: values[n] for n in lever_names})

        extra, extra_error = {}, ""
        try:
            extra = parse_overrides(extra_text)
        except MpsimError as exc:
            extra_error = str(exc)
        changed = {n: v for n, v in levers.items() if v != base_values[n]}
        overrides = {**changed, **extra}
        view = solara.use_memo(
            lambda: _view_or_error(scenario, overrides, agents=agents, replicates=replicates,
                                   seed=start["seed"]),
            [scenario, _key(overrides), agents, replicates])

        solara.Title("mpsim: the mini-program race")
        with solara.Columns([1, 3]):
            with solara.Column(style={"padding": "0.5em 1em"}):
                Controls(scenario, pick, levers, set_levers, extra_text, set_extra_text,
                         extra_error, agents, set_agents, replicates, set_replicates)
            with solara.Column():
                if isinstance(view, MpsimError):
                    solara.Error(f"Not run: {view}")
                else:
                    Results(view, scenario, overrides)

    @solara.component
    def Controls(scenario, pick, levers, set_levers, extra_text, set_extra_text, extra_error,
                 agents, set_agents, replicates, set_replicates):
        solara.Markdown("### mpsim: WeChat vs Alipay mini programs")
        solara.Select("Scenario", value=scenario, values=scenario_names(), on_value=pick)
        for name, label, low, high, step in LEVERS:
            solara.Text(f"{label}: {float(levers[name]):.3g}")
            solara.SliderFloat("", value=float(levers[name]), min=low, max=high, step=step,
                               on_value=lambda v, n=name: set_levers({**levers, n: v}))
        for name, label in SWITCHES:
            solara.Switch(label=label, value=bool(levers[name]),
                          on_value=lambda v, n=name: set_levers({**levers, n: v}))
        solara.InputTextArea("Any parameter: 'name = value' lines (mpsim params lists them)",
                             value=extra_text, on_value=set_extra_text, continuous_update=False,
                             rows=3)
        if extra_error:
            solara.Error(extra_error)
        solara.Text(f"User agents: {agents:,}")
        solara.SliderInt("", value=agents, min=1_000, max=50_000, step=1_000,
                         on_value=set_agents)
        solara.Text(f"Replicates: {replicates}")
        solara.SliderInt("", value=replicates, min=1, max=10, on_value=set_replicates)
        solara.Button("Reset to the scenario", on_click=lambda: pick(scenario))

    @solara.component
    def Results(view, scenario, overrides):
        table = readout(view)
        lines = [f"| end of {READOUT_YEAR} | this view | baseline | difference (5-95%) |",
                 "|---|---|---|---|"]
        for row in table.itertuples():
            lines.append(f"| {row.output} ({row.unit}) | {row.scenario:.1f} | "
                         f"{row.baseline:.1f} | {row.difference:+.1f} "
                         f"({row.difference_p05:+.1f} to {row.difference_p95:+.1f}) |")
        solara.Markdown("\n".join(lines))
        fig = solara.use_memo(lambda: figure(view, scenario), [id(view), scenario])
        solara.FigureMatplotlib(fig, format="png")
        solara.Markdown(
            f"Changed from {scenario}'s values: "
            + (", ".join(f"`{k} = {v}`" for k, v in overrides.items()) or "nothing")
            + (f". Computed in {view['seconds']:.1f} s" if view["seconds"] >= 0.05
               else ". From the cache") + f" ({view['replicates']} replicates x "
            f"{view['agents']:,} user agents, each for the scenario and the baseline, paired "
            "by seed; cached once run). Runs at the calibration's best point: bands are the "
            "model's own noise. Quote figures from `mpsim run` / `mpsim compare`.")


# --- serving ----------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # in the server process, before it starts (Linux)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def free_port(host: str = "localhost") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port(host: str, port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise MpsimError(f"--port {port}: cannot listen on {host}:{port} "
                             f"({exc.strerror or exc}); give another port, or --port 0 "
                             "for a free one") from None


def server_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "solara", "run", "model.app", "--host", host,
            "--port", str(port), "--no-open", "--production", "--no-check-version",
            "--log-level", "warning"]


def start_server(host: str = "localhost", port: int = 0,
                 timeout: float = 90.0) -> tuple[subprocess.Popen, str]:
    """Start the Solara server and wait until it answers; return it and its address."""
    if solara is None:
        raise MpsimError("mpsim app needs Solara: pip install solara (or pip install -e .)")
    port = port or free_port(host)
    check_port(host, port)
    process = subprocess.Popen(server_command(host, port), stdin=subprocess.DEVNULL,
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    url = f"http://{host}:{port}/"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise MpsimError(f"the app server stopped at start (exit status "
                             f"{process.returncode}); its messages are above")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process, url
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                process.terminate()
                raise MpsimError(f"the app server did not answer at {url} within "
                                 f"{timeout:.0f} s") from None
            time.sleep(0.3)


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(port: int = 8765, host: str = "localhost", browser: bool = True) -> int:
    """``mpsim app``: serve the page until Ctrl-C, opening it in the browser."""
    process, url = start_server(host, port)
    try:
        print(f"mpsim app: serving {url} (Ctrl-C stops it)", flush=True)
        if browser:
            import webbrowser

            if not webbrowser.open(url):
                print(f"mpsim app: no browser could be started here; open {url}", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        print("mpsim app: stopped", flush=True)
        return 0
    finally:
        stop_server(process)
