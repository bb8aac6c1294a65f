"""The ``mpsim`` command: a thin layer over functions a notebook can call as well.

    mpsim list                         the shipped scenarios and what each asks
    mpsim params [--grep TEXT]         every parameter with unit, default and source
    mpsim run NAME|PATH [...]          run a scenario, write results/<scenario>/<run-id>/
    mpsim compare A B [...]            run or load scenarios and compare them, paired
    mpsim sweep NAME --param P=LO:HI   outcomes over many parameter values
    mpsim sensitivity NAME --param ... Sobol indices of key outcomes
    mpsim calibrate [--config FILE]    fit parameters to reported figures
    mpsim backtest --until DATE        fit to the figures up to DATE, score the later ones
    mpsim plot RUN_DIR                 redraw a run's plots from its saved files
    mpsim open FOLDER                  open a results folder's report.html in the browser
    mpsim app [--port P]               the interactive view in the browser (Solara)

User mistakes end with a one-line message and exit status 2. Ctrl-C (SIGINT), SIGTERM
and SIGHUP end a command with one line saying what was kept, after its clean-up has
run, and exit status 128 + the signal's number (130, 143, 129).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import textwrap
from pathlib import Path

from .errors import Interrupted, MpsimError


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"value {text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"value {text!r} must be at least 1")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"value {text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"value {text!r} must be 0 or more")
    return value


def _run_id(text: str) -> str:
    if not text.strip() or text in (".", "..") or "/" in text or "\\" in text:
        raise argparse.ArgumentTypeError(f"value {text!r} is not a calibration id; expected "
                                         "the id of an interrupted calibration, e.g. "
                                         "20261202T040247Z")
    return text


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicates", type=_positive_int, metavar="N",
                        help="replicate runs (default: the scenario's [run] replicates)")
    parser.add_argument("--seed", type=_seed, metavar="S",
                        help="root seed; replicate seeds are SeedSequence(S).spawn(N) "
                             "(default: the scenario's)")
    parser.add_argument("--agents", type=_positive_int, metavar="N",
                        help="user agents (default: the scenario's); outputs stay in people")
    parser.add_argument("--workers", type=_positive_int, metavar="N",
                        help="local worker processes (default: all cores)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="send runs to this Dask scheduler instead "
                             "(or set MPSIM_DASK_ADDRESS)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="results folder to write under (default: results/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_ensemble_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--draws", type=_positive_int, metavar="D",
                        help="parameter sets drawn from the posterior ensemble; the run is D "
                             "draws x N replicates (default: the scenario's [run] draws)")
    parser.add_argument("--point", action="store_true",
                        help="run the calibration's best point alone instead of the ensemble "
                             "(bands then show the model's own noise only)")
    parser.add_argument("--ensemble", type=Path, metavar="FILE|DIR",
                        help="ensemble file, or a calibration folder with ensemble.csv "
                             "(default: the shipped model/ensemble.csv)")


def cmd_list(args) -> int:
    """Every shipped scenario that loads; one that does not (not UTF-8, a bad key, a
    broken ``extends``) is named on stderr in one line and the others are still listed.
    Exit 2 if any was refused, so a script notices a broken scenarios folder."""
    from . import scenarios

    width = shutil.get_terminal_size((100, 20)).columns
    refused = 0
    for name, path in scenarios.available().items():
        try:
            scenario = scenarios.load(path)
        except MpsimError as exc:
            refused += 1
            sys.stdout.flush()  # keep the listing and the messages in order on a terminal
            print(f"mpsim: error: {exc}", file=sys.stderr)
            continue
        parent = f" (extends {scenario.chain[1]})" if len(scenario.chain) > 1 else ""
        print(f"{name}{parent}")
        print(textwrap.indent(textwrap.fill(scenario.description, width - 4), "    "))
    return 2 if refused else 0


def cmd_params(args) -> int:
    from .params import PARAMS

    for p in PARAMS:
        if args.grep and args.grep.lower() not in (p.name + p.meaning + p.source).lower():
            continue
        print(f"{p.name} = {p.default!s}  [{p.unit}; {p.describe_allowed()}]")
        print(textwrap.indent(textwrap.fill(p.meaning, 96), "    "))
        print(textwrap.indent(textwrap.fill(f"source: {p.source}", 96), "    "))
    return 0


def cmd_run(args) -> int:
    from . import scenarios
    from .runner import run_scenario

    scenario = scenarios.load(args.scenario)
    result = run_scenario(scenario, replicates=args.replicates, seed=args.seed,
                          agents=args.agents, draws=args.draws, point=args.point,
                          ensemble=args.ensemble, workers=args.workers, dask_address=args.dask,
                          out=args.out, progress=not args.quiet)
    what = ("the best point" if result.plan.ensemble is None or args.point
            else f"{result.run['draws']} ensemble draws")
    print(f"{scenario.name}: {what} x {result.run['replicates']} replicates x "
          f"{result.run['agents']:,} user agents written to {result.path}")
    _print_headline(result.path)
    _report(result.path)
    return 0


def _report(folder: Path) -> None:
    """Write the folder's report.html (and its runs' for a comparison). The results are
    complete before it, so a failure here is a note, never a failed command."""
    try:
        from .report import write_reports

        for page in write_reports(folder):
            print(f"report: {page}")
    except Exception as exc:  # noqa: BLE001 - the results are written; say so and go on
        print(f"mpsim: note: {folder}: report.html not written ({exc}); the results are "
              f"complete; write it with: mpsim open {folder}", file=sys.stderr)


def _print_headline(folder: Path) -> None:
    """A few key outcomes from a run's summary, so a person sees the result at once."""
    import pandas as pd

    summary = pd.read_csv(folder / "summary.csv")
    dates = set(summary["date"][~summary["spring_festival_week"]])
    if not dates:  # every summarised date is a Spring Festival week
        return
    last = _reference_date(dates)
    rows = summary[(summary["date"] == last) & summary["output"].isin([
        "wechat.miniprogram_dau", "alipay.miniprogram_dau", "alipay.miniprogram_dau_share",
        "wechat.miniprogram_users_cumulative", "alipay.miniprogram_users_cumulative"])]
    if rows.empty:
        print(f"at {last}: no mini-program outputs yet (before the launches)")
        return
    print(f"at {last} (mean, 90% interval over every draw and replicate):")
    for _, row in rows.iterrows():
        unit = "%" if row["unit"] == "share" else row["unit"]
        print(f"  {row['output']:40s} {_amount(row['mean'], row['unit']):>8s}  "
              f"[{_amount(row['p05'], row['unit'])}, {_amount(row['p95'], row['unit'])}]  {unit}")


def cmd_compare(args) -> int:
    from .runner import compare

    folder = compare(args.items, replicates=args.replicates, seed=args.seed, agents=args.agents,
                     draws=args.draws, point=args.point, ensemble=args.ensemble,
                     workers=args.workers, dask_address=args.dask, out=args.out,
                     progress=not args.quiet)
    print(f"comparison written to {folder}")
    _print_effects(folder)
    _report(folder)
    return 0


#: The outcomes ``compare`` prints, with how to say them.
HEADLINE_EFFECTS = (("wechat.pay_users", "WeChat Pay users"),
                    ("wechat.miniprogram_dau", "WeChat mini-program daily users"),
                    ("alipay.miniprogram_dau", "Alipay mini-program daily users"),
                    ("alipay.miniprogram_dau_share", "Alipay share of daily users"))
#: The year the printed summaries speak of, as the README does.
REFERENCE_YEAR = 2020


def _amount(value: float, unit: str, sign: bool = False) -> str:
    """A number as a person reads it: millions to 3 significant figures at most, shares
    in % (or, for differences, points)."""
    import math

    if unit == "share":
        text = f"{value * 100:{'+' if sign else ''}.1f}"
        return text
    digits = 0 if abs(value) >= 10 else (1 if abs(value) >= 1 else 2)
    text = f"{value:{'+' if sign else ''},.{digits}f}"
    return "0" if text.strip("+-0.,") == "" and not math.isnan(value) else text


def _reference_date(dates) -> str:
    """The last summarised date in the reference year, or the last date of all."""
    in_year = sorted(d for d in dates if str(d).startswith(str(REFERENCE_YEAR)))
    return in_year[-1] if in_year else sorted(dates)[-1]


def _print_effects(folder: Path) -> None:
    """Each scenario's paired effect on the headline outcomes at the end of the
    reference year: median and 90% interval, with the reference scenario's level."""
    import json

    import pandas as pd

    diffs = pd.read_csv(folder / "differences.csv")
    if diffs.empty:
        return
    date = _reference_date(set(diffs["date"]))
    rows = diffs[diffs["date"] == date].set_index(["scenario", "output"])
    info = json.loads((folder / "manifest.json").read_text())
    base_name = diffs["baseline"].iloc[0]
    base_levels = {}
    base_summary = Path(info["runs"][0]) / "summary.csv"
    if base_summary.is_file():
        summary = pd.read_csv(base_summary)
        at = summary[summary["date"] == date].set_index("output")
        base_levels = {name: at.loc[name, "p50"] for name, _ in HEADLINE_EFFECTS
                       if name in at.index}
    runs = int(rows["runs"].max()) if "runs" in rows else "?"
    print(f"effects at {date} against {base_name} (median and 90% interval over {runs} "
          "paired runs; shares in points):")
    for scenario in dict.fromkeys(diffs["scenario"]):
        print(f"  {scenario}")
        for output, label in HEADLINE_EFFECTS:
            if (scenario, output) not in rows.index:
                continue
            row = rows.loc[(scenario, output)]
            unit = "points" if row["unit"] == "share" else "million"
            base = (f"   ({base_name}: {_amount(base_levels[output], row['unit'])}"
                    f"{'%' if row['unit'] == 'share' else ' million'})"
                    if output in base_levels else "")
            print(f"    {label:34s} {_amount(row['median'], row['unit'], sign=True):>8s} {unit} "
                  f"({_amount(row['p05'], row['unit'])} to {_amount(row['p95'], row['unit'])})"
                  f"{base}")


def cmd_plot(args) -> int:
    from .plots import plot_run
    from .runner import finished_run

    finished_run(args.run_dir)
    for path in plot_run(args.run_dir):
        print(path)
    _report(args.run_dir)  # the page embeds the plots: redraw it with them
    return 0


def cmd_calibrate(args) -> int:
    from calibration.calibrate import load_config, calibrate
    from .runner import check_output_dir

    config = load_config(args.config, data=args.data, budget=args.budget)
    check_output_dir(args.out)
    result = calibrate(config, workers=args.workers, dask_address=args.dask, resume=args.resume,
                       out=args.out, progress=not args.quiet)
    fit = result.fit
    print(f"calibration written to {result.path}")
    print(f"ensemble: {result.path / 'ensemble.csv'} (effective size "
          f"{result.effective_size:.0f}, from MCMC on the emulator)")
    print(f"best point: loss {result.loss:.4g}; {int(fit['within_15pct'].sum())} of {len(fit)} "
          "figures within 15% (a lower bound: not below it)")
    print(f"ensemble: {int(fit['in_90pct'].sum())} of {len(fit)} figures inside its "
          "posterior-predictive 90% interval")
    print(f"what the data pin down: {result.path / 'posterior.png'}")
    print(f"run the best point:   mpsim run {result.path / 'calibrated.toml'} --point")
    print(f"make it the baseline: python scripts/adopt_calibration.py {result.path}")
    _report(result.path)
    return 0


def cmd_backtest(args) -> int:
    from calibration.backtest import backtest

    result = backtest(args.until, data=args.data, config=args.config, budget=args.budget,
                      calibration=args.calibration, draws=args.draws,
                      replicates=args.replicates, seed=args.seed, workers=args.workers,
                      dask_address=args.dask, out=args.out, progress=not args.quiet)
    print(f"backtest written to {result.path}")
    summary = result.summary
    rows = summary[(summary["series"] == "all") & (summary["subset"] == "common")]
    print("later figures every forecaster reaches (mean over exact figures; bounds: share met):")
    for _, row in rows.iterrows():
        print(f"  {row['forecaster']:9s} |log error| {row['mean_abs_log_error']:.3f}  "
              f"WIS {row['mean_wis']:.3f}  in 50% {row['cover50']:.0%}  in 90% "
              f"{row['cover90']:.0%}  ({row['exact_figures']} exact); bounds met "
              f"{row['bounds_met']:.0%} of {row['bounds']}; 90% holds {row['in90_all']:.0%} "
              "of all")
    return 0


def cmd_sweep(args) -> int:
    from .runner import check_output_dir
    from .sweep import parse_ranges, sensitivity, sweep

    ranges = parse_ranges(args.param)
    check_output_dir(args.out)
    common = dict(samples=args.samples, seed=args.seed, replicates=args.replicates,
                  agents=args.agents, workers=args.workers, dask_address=args.dask,
                  out=args.out, progress=not args.quiet, outcomes=args.outcome, cost=True,
                  draws=args.draws, point=args.point, ensemble=args.ensemble)
    if args.command == "sensitivity":
        folder = sensitivity(args.scenario, ranges, **common)
    else:
        folder = sweep(args.scenario, ranges, design_kind=args.design, **common)
    print(f"{args.command} written to {folder}")
    _report(folder)
    return 0


def cmd_open(args) -> int:
    from .report import REPORT_NAME, finished_folder, write_report

    folder = args.folder.parent if args.folder.name == REPORT_NAME else args.folder
    finished_folder(folder)
    page = folder / REPORT_NAME
    if not page.is_file():
        page = write_report(folder)
        print(f"report: {page} (written now)")
    if args.print:
        print(page.resolve())
        return 0
    import webbrowser

    if not webbrowser.open(page.resolve().as_uri()):
        raise MpsimError(f"{page}: no web browser could be started here; open the file "
                         "yourself, or print its path with --print")
    print(f"opened {page}")
    return 0


def cmd_app(args) -> int:
    from .app import serve

    return serve(port=args.port, host=args.host, browser=not args.no_browser)


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag reported on one line (no usage block) and exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mpsim", description="Scenario simulator of the WeChat-Alipay mini-program race.",
        epilog="Each command has its own --help. Docs: README.md and docs/MODEL.md.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list the shipped scenarios",
                       description="List the shipped scenarios and the question each answers.")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("params", help="list every parameter with its source",
                       description="Every model parameter: default, unit, allowed range, "
                                   "meaning and source.")
    p.add_argument("--grep", metavar="TEXT", help="only parameters mentioning TEXT")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("run", help="run a scenario and write its results folder",
                       description="Run a scenario over the posterior ensemble (draws x "
                                   "replicates, in parallel; --point for the best point alone) "
                                   "and write "
                                   "results/<scenario>/<run-id>/ with the time series, a "
                                   "summary, a manifest and plots. Never overwrites a run.")
    p.add_argument("scenario", metavar="NAME|PATH",
                   help="a shipped scenario name (see 'mpsim list') or a .toml file")
    _add_run_flags(p)
    _add_ensemble_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="compare scenarios, paired by draw and replicate",
                       description="Run scenarios (or load finished run folders) with the same "
                                   "ensemble draws and replicate seeds and write results/compare/<id>/ with overlay "
                                   "plots and each scenario's difference from the first.")
    p.add_argument("items", nargs="+", metavar="NAME|PATH|RUN_DIR",
                   help="scenario names, scenario files or finished run folders; the first is "
                        "the reference")
    _add_run_flags(p)
    _add_ensemble_flags(p)
    p.set_defaults(func=cmd_compare)

    for name, help_text, description in (
        ("sweep", "run a scenario over many parameter values",
         "Run a scenario at sample points of the given parameter ranges (designs from "
         "scipy.stats.qmc), every point with the same replicate seeds, and write "
         "results/sweep/<scenario>/<id>/ with a table of key outcomes per sample and plots "
         "of each outcome against each parameter."),
        ("sensitivity", "Sobol indices of key outcomes to parameters",
         "Estimate first-order and total Sobol indices of key outcomes with respect to the "
         "given parameter ranges (scipy.stats.sobol_indices; N x (d + 2) runs of the model) "
         "and write results/sensitivity/<scenario>/<id>/ with a table and a bar plot."),
    ):
        p = sub.add_parser(name, help=help_text, description=description)
        p.add_argument("scenario", metavar="NAME|PATH",
                       help="a scenario whose horizon reaches the end of 2020")
        p.add_argument("--param", action="append", required=True, metavar="NAME=LOW:HIGH",
                       help="a parameter and its range; repeat for more parameters")
        p.add_argument("--samples", type=_positive_int, default=16, metavar="N",
                       help="sample points (sensitivity: N, a power of 2; default 16)")
        p.add_argument("--outcome", action="append", metavar="NAME",
                       help="an outcome to compute, e.g. alipay_dau_festival_lift_2020; repeat "
                            "for more (default: all; each run stops at the last day they "
                            "read; a wrong name lists them all)")
        if name == "sweep":
            p.add_argument("--design", choices=("grid", "lhs", "sobol"), default="lhs",
                           help="sampling design (default: lhs)")
        _add_run_flags(p)
        _add_ensemble_flags(p)
        p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("calibrate", help="fit parameters to reported figures",
                       description="Fit the free parameters of a calibration file to reported "
                                   "figures: history matching with Gaussian-process emulators, "
                                   "then MCMC on the emulator, giving a posterior ensemble; "
                                   "write results/calibration/<id>/ with ensemble.csv, the best "
                                   "point, a fit table with posterior-predictive 90% intervals, "
                                   "the posterior of each parameter, plots and a scenario file.")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="calibration file (default: calibration/baseline.toml)")
    p.add_argument("--data", type=Path, metavar="CSV",
                   help="reported figures to fit instead of the file's (columns date, "
                        "platform, series, value; see calibration/data/README.md)")
    p.add_argument("--budget", type=_positive_int, metavar="N",
                   help="parameter points run over all waves, each with the file's "
                        "replicates (default: the file's)")
    p.add_argument("--resume", type=_run_id, metavar="ID",
                   help="continue the interrupted calibration ID (same --config/--data/--budget)")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="local worker processes (default: all cores)")
    p.add_argument("--dask", metavar="ADDRESS", help="evaluate on this Dask scheduler instead")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="results folder to write under (default: results/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("backtest", help="fit to figures up to a date, score the later ones",
                       description="Calibrate the ensemble to the reported figures dated up "
                                   "to DATE (or reuse a calibration), forecast every later "
                                   "figure the model produces (draws x replicates) and score "
                                   "the forecasts beside a straight line and a logistic curve "
                                   "fitted to the same figures: |log error| of the median, "
                                   "50%/90% coverage and the weighted interval score. Writes "
                                   "results/backtest/<id>/ with scores.csv, summary.csv, "
                                   "fans.png and manifest.json.")
    p.add_argument("--until", required=True, metavar="DATE",
                   help="last date of the figures to fit, YYYY-MM-DD (a YYYY-MM figure is "
                        "dated the 15th)")
    p.add_argument("--data", type=Path, nargs="+", action="extend", metavar="CSV",
                   help="targets files of reported figures, fitted and scored (default: the "
                        "calibration file's data)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="calibration file (default: calibration/baseline.toml)")
    p.add_argument("--budget", type=_positive_int, metavar="N",
                   help="model evaluations of the calibration (default: the file's)")
    p.add_argument("--calibration", type=Path, metavar="DIR",
                   help="reuse this finished calibration folder instead of calibrating")
    p.add_argument("--draws", type=_positive_int, metavar="D",
                   help="ensemble members drawn (default: the scenario's [run] draws)")
    p.add_argument("--replicates", type=_positive_int, metavar="R",
                   help="replicates per draw (default: the scenario's [run] replicates)")
    p.add_argument("--seed", type=_seed, metavar="S",
                   help="root seed of the draws and the replicates (default: the "
                        "calibration file's)")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="local worker processes (default: all cores)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler instead")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="results folder to write under (default: results/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("plot", help="redraw a run's plots from its saved files",
                       description="Redraw every plot of a finished run folder from its "
                                   "series.csv and manifest.json.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run folder")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("open", help="open a results folder's report page in the browser",
                       description="Open report.html of a finished results folder (run, "
                                   "compare, sweep, sensitivity, calibration, backtest) in the "
                                   "web browser: its plots, key figures against the reported "
                                   "ones, changed parameters and manifest on one page. Writes "
                                   "the page first if the folder has none.")
    p.add_argument("folder", type=Path, metavar="FOLDER", help="a finished results folder")
    p.add_argument("--print", action="store_true",
                   help="print the page's path instead of opening a browser")
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("app", help="interactive view: move the levers, watch the race",
                       description="Serve the interactive view (Solara) and open it in the "
                                   "browser: pick a scenario, move the red-envelope and "
                                   "traffic-sharing levers or any parameter, and see users, "
                                   "daily users, merchants and shares against the baseline "
                                   "and the reported figures, with 5-95% bands, at a reduced "
                                   "size (5,000 agents, 3 replicates: a few seconds a change). "
                                   "Ctrl-C stops it.")
    p.add_argument("--port", type=_port, default=8765, metavar="P",
                   help="port to serve on (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="localhost", metavar="HOST",
                   help="address to listen on (default localhost: this machine only)")
    p.add_argument("--no-browser", action="store_true",
                   help="serve only; print the address instead of opening a browser")
    p.set_defaults(func=cmd_app)
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"value {text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"value {text!r} is not a port; expected 0 to 65535")
    return value


#: Signals that end a command through its clean-up, like Ctrl-C.
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                 if hasattr(signal, name))


def _on_signal(signum, frame):
    # One signal ends the command; later ones would cut its clean-up short (removing a
    # half-written folder, ending the workers). kill -9 still ends it, workers too.
    for other in _SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def _install_signal_handlers() -> dict:
    """Turn SIGINT, SIGTERM and SIGHUP into Interrupted (main thread only); return the
    handlers they replace."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    old = {}
    for signum in _SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:  # e.g. nohup: keep ignoring it
            continue
        old[signum] = signal.signal(signum, _on_signal)
    return old


def _interrupted_message(exc: KeyboardInterrupt, finished_before: int) -> str:
    """The one line an interrupted command prints: what it kept, truly."""
    if isinstance(exc, Interrupted) and exc.message:
        return exc.message
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    what = "interrupted" if signum == signal.SIGINT else \
        f"stopped by {signal.Signals(signum).name}"
    runner = sys.modules.get("model.runner")
    kept = runner.finished_folders[finished_before:] if runner else []
    if kept:
        return (f"{what}; finished before it: {', '.join(map(str, kept))} "
                "(complete); nothing else was written")
    return f"{what}; nothing was written"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runner = sys.modules.get("model.runner")
    finished_before = len(runner.finished_folders) if runner else 0
    old_handlers = _install_signal_handlers()
    try:
        return args.func(args)
    except KeyboardInterrupt as exc:
        print(f"mpsim: {_interrupted_message(exc, finished_before)}", file=sys.stderr)
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        return 128 + int(signum)
    except MpsimError as exc:
        print(f"mpsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (mpsim params | head)
        sys.stdout = None
        return 0
    except OSError as exc:  # an output folder that cannot be made or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mpsim: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
