"""Turn the reported figures into the calibration targets, by explicit rules.

Reads ``calibration/data/reported_figures.csv`` and
``calibration/data/reported_figures_2019-03_to_2020-06.csv`` (copies of ``shared/data``:
the figures to February 2019 and those of March 2019 to June 2020), writes
``calibration/data/targets.csv`` in the targets format of ``calibration/data.py``, prints
every row it leaves out or changes, and rewrites the table of excluded rows in
``calibration/data/README.md``. Run it with ``python -m calibration.make_targets``.

The rules, in the order they apply to each row:

1. **Exclusion** (the row is not written to targets.csv; it is printed and listed, with
   its ``rule``, in the README's table of excluded rows):

   a. a series the model does not produce (``KNOWN_UNMODELLED`` in
      ``calibration/data.py`` gives each reason);
   b. a platform or unit the series does not allow (``SERIES`` in
      ``calibration/data.py``), e.g. Alipay red-envelope person-times;
   c. a date before the model's first day, 2014-01-01;
   d. the named exclusions in :data:`EXCLUDE` (a typo, a misread metric, accounts of
      two wallets together).

2. **Remapped series** (:data:`REMAP`): a figure filed under one series whose note says
   it is another (WeChat's 280 million "daily users" of February 2018 is the Spring
   Festival peak).

3. **Weight by tier** (:data:`TIER_WEIGHT`): S 4, A 2, B 1, C 0.5. Each step of trust
   doubles the weight: a seed figure counts as much as eight reposts.

4. **Seed figures** (:data:`SEED_FIGURES`): the seven figures of the first seed
   document (``shared/seeds/000_*.txt``) are tier S whatever tier the CSV gives them;
   one with no row in the CSV (WeChat's "1 billion users", read as WeChat app users in
   people at the end of 2018) is added. So is the second seed document's pattern
   (``shared/seeds/002_*.txt``, written in 2021): Alipay mini programs "still lagging
   behind" WeChat's as of 2021, read as a lower bound of one half on WeChat's share of
   mini-program daily users on 2021-01-01.

5. **Lower bounds**: a row whose note contains "lower bound", or a seed figure stated
   as "over" or "exceeded", becomes ``kind = lower``: the loss penalises only a
   simulated value below it.

6. **Conflicts** (:data:`DOWNWEIGHT`): of two rows that disagree about the same thing,
   the lower-tier side keeps :data:`CONFLICT_FACTOR` (one half) of its weight; with
   equal tiers both sides do, since nothing says which is right. A conflict with a
   seed figure is resolved for the seed (the other side is down-weighted). Every row
   whose note says CONFLICT must be settled by one of :data:`EXCLUDE`,
   :data:`DOWNWEIGHT` or :data:`SEED_FIGURES`, or the script stops: a new conflict
   needs a decision.

7. **Estimates quoted in notes** (:data:`NOTE_ESTIMATES`): a figure that a row's note
   quotes from another source as an estimate ("about 600 million") is added as an
   exact target at that source's tier, beside the row. A lower bound alone lets the
   model overshoot without limit; the estimate says where the figure actually was.

Every written row has a ``rule`` saying what was done to it, ``tier`` and ``source``,
and ``figures_line``, its line in reported_figures.csv ("added" for an added seed
figure).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

from model.errors import DataError, MpsimError
from model.params import run_defaults

from .data import KNOWN_UNMODELLED, SERIES, load_targets, parse_date, parse_number

DATA_DIR = Path(__file__).resolve().parent / "data"
FIGURES = DATA_DIR / "reported_figures.csv"
FIGURES_2020 = DATA_DIR / "reported_figures_2019-03_to_2020-06.csv"
#: The reported-figures files, in order; every rule applies to both alike.
FIGURE_FILES = (FIGURES, FIGURES_2020)
TARGETS = DATA_DIR / "targets.csv"
README = DATA_DIR / "README.md"

#: The model's horizon: figures before its first day cannot be matched.
START: dt.date = run_defaults()["start"]
END: dt.date = run_defaults()["end"]

#: Weight of a row by its tier: S seed document, A company figure via a major outlet,
#: B reputable media or named research firm, C repost, blog or garbled page.
TIER_WEIGHT = {"S": 4.0, "A": 2.0, "B": 1.0, "C": 0.5}
#: Share of its weight kept by the lower-tier side of a conflict (both sides if equal).
CONFLICT_FACTOR = 0.5

SEED = "seed 000_5988cd556318d3f2.txt"
SEED_2021 = "seed 002_a5feb14f51fee0b3.txt"

# A row is named by (date as written, platform, series, value).
Key = tuple[str, str, str, float]


@dataclass(frozen=True)
class SeedFigure:
    """A figure of the seed document, with the words it is stated in."""

    date: str
    platform: str
    series: str
    value: float
    unit: str
    kind: str
    quote: str
    source: str = SEED


@dataclass(frozen=True)
class NoteEstimate:
    """An estimate quoted in the note of a reported row (its line in the CSV)."""

    line: int
    date: str
    platform: str
    series: str
    value: float
    unit: str
    tier: str
    quote: str
    source: str


#: Estimates quoted in notes, added as exact targets (rule 7).
NOTE_ESTIMATES: tuple[NoteEstimate, ...] = (
    NoteEstimate(77, "2018-12", "wechat", "miniprogram_users_cumulative", 600, "million_users",
                 "B", "In 2018, the number of mini program users is expected to be about "
                      "600 million.",
                 "Aladdin 2018 mini-program white paper, quoted in the note of line 77"),
)


#: The seed document's figures: the targets the model is first of all calibrated to.
SEED_FIGURES: tuple[SeedFigure, ...] = (
    SeedFigure("2018-12", "wechat", "miniprogram_users_cumulative", 600, "million_users",
               "lower", "the total number of Mini Program users has exceeded 600 million"),
    SeedFigure("2018-12", "wechat", "miniprogram_dau", 210, "million_users", "exact",
               "The number of daily active users of Mini Programs has reached 210 million"),
    SeedFigure("2018-12", "wechat", "miniprogram_usage_frequency_growth_yoy", 54, "percent",
               "exact", "The average daily usage frequency increased by 54% compared with "
                        "last year"),
    SeedFigure("2019-01-28", "alipay", "miniprogram_users_cumulative", 500, "million_users",
               "lower", "the total number of users of Alipay Mini Programs exceeded 500 "
                        "million"),
    SeedFigure("2019-01", "alipay", "miniprogram_dau", 170, "million_users", "exact",
               "with daily active users reaching 170 million"),
    SeedFigure("2019-02-05", "alipay", "miniprogram_dau_peak", 280, "million_users", "exact",
               "the peak during the Spring Festival even reached 280 million"),
    SeedFigure("2018-12-31", "wechat", "app_users", 1000, "million_users", "exact",
               "What is the advantage of WeChat? It has 1 billion users"),
    # The second seed document, written in 2021, states a pattern rather than a figure:
    # WeChat still leads. Read as WeChat holding at least half of all mini-program daily
    # users at the start of 2021; it keeps the forecast honest past the last figure.
    SeedFigure("2021-01-01", "wechat", "miniprogram_dau_share", 0.5, "share", "lower",
               "as of 2021, although Alipay mini programs are still lagging behind, they "
               "are still chasing each other to catch up with WeChat mini programs",
               SEED_2021),
)

#: Rows left out although their series is modelled, and why.
EXCLUDE: dict[Key, str] = {
    ("2018-06", "wechat", "pay_users", 80.0):
        "excluded: a typo for 800 million (the note says so; WeChat's 2018 report says "
        "800 million); kept in reported_figures.csv because it is what the page says",
    ("2018-01", "wechat", "miniprogram_mau", 170.0):
        "excluded: misread metric; Tencent reported 170 million as DAILY users at Open "
        "Class Pro 2018, already a target (wechat miniprogram_dau 2018-01-15, tier A)",
    ("2016-12", "wechat", "pay_users", 600.0):
        "excluded: counts Weixin Pay and QQ Wallet accounts together; the model counts "
        "people paying with WeChat",
    **{("2019-03-31" if v == 1100.0 else d, "wechat", "app_mau", v):
       "excluded: WeChatWiki's 2019-2020 rows look shifted by about a quarter (note of "
       "its 2019-03-31 row); the quarter's other source is kept"
       for d, v in (("2019-03-31", 1100.0), ("2019-06-30", 1120.0), ("2019-09-30", 1130.0),
                    ("2019-12-31", 1150.0), ("2020-03-31", 1170.0))},
}

#: Figures filed under one series that their note says belong to another.
REMAP: dict[Key, tuple[str, str]] = {
    ("2018-02", "wechat", "miniprogram_dau", 280.0): (
        "miniprogram_dau_peak",
        "series miniprogram_dau -> miniprogram_dau_peak: the note says it is the peak "
        "value, read at the Spring Festival week of 2018 (New Year's Eve 2018-02-15)"),
}

#: Conflicting rows kept with CONFLICT_FACTOR of their weight, and the conflict.
DOWNWEIGHT: dict[Key, str] = {
    ("2019-01-29", "alipay", "miniprogram_dau", 230.0):
        "conflicts with the seed figure 170 million (2019-01, tier S), which wins",
    ("2018-12", "wechat", "miniprogram_dau", 230.0):
        "third-party estimate; conflicts with the seed figure 210 million (WeChat "
        "official, tier S), which wins",
    ("2018-03-31", "alipay", "app_users", 870.0):
        "conflicts with 700 million (2018-09, tier B) and 520 million (end-2017); "
        "probably counts registered or partner-wallet users",
    ("2014-01-30", "wechat", "red_envelope_participants", 5.0):
        "conflicts with 20 million (same night, tier C); equal tiers, both kept at "
        "reduced weight",
    ("2014-01-30", "wechat", "red_envelope_participants", 20.0):
        "conflicts with 5 million (same night, tier C); equal tiers, both kept at "
        "reduced weight",
    ("2019-09", "wechat", "mini_programs_count", 3.0):
        "conflicts with 'more than 2 million' (2020-01-09, tier B); equal tiers, both "
        "kept at reduced weight",
    ("2020-01-09", "wechat", "mini_programs_count", 2.0):
        "conflicts with 3 million as of September 2019 (tier B); equal tiers, both kept "
        "at reduced weight",
}

COLUMNS = ("date", "platform", "series", "value", "unit", "kind", "weight", "sigma",
           "tier", "rule", "source", "figures_file", "figures_line")


@dataclass
class Built:
    """The targets rows to write and the excluded rows, each a dict of text cells."""

    targets: list[dict[str, str]]
    excluded: list[dict[str, str]]


def _key(date: str, platform: str, series: str, value: float) -> Key:
    return (date, platform, series, float(value))


def _exclusion(figures: Path, line: int, row: dict[str, str], key: Key) -> str | None:
    """Why a row cannot be a target (rules 1a-1d), or None."""
    series, platform, unit = row["series"], row["platform"], row["unit"]
    if series in KNOWN_UNMODELLED:
        return f"excluded: not produced by the model: {KNOWN_UNMODELLED[series]}"
    spec = SERIES.get(series)
    if spec is None:
        raise DataError(f"{figures.name}: line {line}, column 'series': value {series!r} "
                        f"is neither modelled nor listed as unmodelled; add it to SERIES "
                        f"or KNOWN_UNMODELLED in calibration/data.py")
    if platform not in spec.platforms:
        return (f"excluded: the model produces {series} for "
                f"{', '.join(spec.platforms)} only (note: {row['note'] or 'none'})")
    if key in EXCLUDE:
        return EXCLUDE[key]
    if unit not in spec.units:
        return f"excluded: unit {unit} is not one of {', '.join(spec.units)} for {series}"
    date = parse_date(row["date"])
    if date is None:
        raise DataError(f"{figures.name}: line {line}, column 'date': value "
                        f"{row['date']!r} is not allowed; expected YYYY-MM-DD or YYYY-MM")
    if date < START:
        return f"excluded: dated before the model's first day {START}"
    return None


def _read_figures(files) -> list[tuple[Path, int, dict[str, str]]]:
    rows = []
    for figures in files:
        try:
            with figures.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                for row in reader:
                    rows.append((figures, reader.line_num,
                                 {k: (v or "").strip() for k, v in row.items()}))
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{figures}: cannot read the reported figures: {exc}") from None
    return rows


def build(files=FIGURE_FILES) -> Built:
    """Apply the rules to every row of the reported-figures ``files``."""
    if isinstance(files, (str, Path)):
        files = (Path(files),)
    rows = _read_figures([Path(f) for f in files])

    seeds = {_key(s.date, s.platform, s.series, s.value): s for s in SEED_FIGURES}
    seeds_found: set[Key] = set()
    named = set(EXCLUDE) | set(REMAP) | set(DOWNWEIGHT)
    named_found: set[Key] = set()
    targets, excluded = [], []
    for figures, line, row in rows:
        value = parse_number(row["value"])
        if value is None:
            raise DataError(f"{figures.name}: line {line}, column 'value': value "
                            f"{row['value']!r} is not allowed; expected a finite number")
        key = _key(row["date"], row["platform"], row["series"], value)
        named_found |= {key} & named
        reason = _exclusion(figures, line, row, key)
        if reason is not None:
            excluded.append({"figures_file": figures.name, "figures_line": str(line),
                             **{c: row[c] for c in (
                "date", "platform", "series", "value", "unit", "tier")}, "rule": reason})
            continue

        rules = []
        series, tier = row["series"], row["tier"]
        if key in REMAP:
            series, why = REMAP[key]
            rules.append(why)
        kind = "lower" if "lower bound" in row["note"].lower() else "exact"
        if kind == "lower":
            rules.append("lower bound (note)")
        source = row["source"]
        seed = seeds.get(key)
        if seed is not None:
            seeds_found.add(key)
            if tier != "S":
                rules.append(f"tier {tier} -> S: seed figure ({SEED}: '{seed.quote}')")
                tier = "S"
            else:
                rules.append("seed figure")
            if seed.kind != kind:
                kind = seed.kind
                rules.append(f"kind {kind}: as the seed states it")
            if SEED not in source and "seed document" not in source:
                source = f"{SEED}; also {source}"
        weight = TIER_WEIGHT[tier]
        if key in DOWNWEIGHT:
            weight *= CONFLICT_FACTOR
            rules.append(f"weight x{CONFLICT_FACTOR:g} for a conflict: {DOWNWEIGHT[key]}")
        elif "CONFLICT" in row["note"] and seed is None:
            raise DataError(f"{figures.name}: line {line}, column 'note': a CONFLICT with "
                            f"no rule; add the row to EXCLUDE, DOWNWEIGHT or SEED_FIGURES "
                            f"in calibration/make_targets.py")
        elif "CONFLICT" in row["note"]:
            rules.append("CONFLICT resolved for the seed figure (full weight)")
        rules.append(f"weight {weight:g} (tier {tier})")
        targets.append({
            "date": row["date"], "platform": row["platform"], "series": series,
            "value": row["value"], "unit": row["unit"], "kind": kind,
            "weight": f"{weight:g}", "sigma": "", "tier": tier, "rule": "; ".join(rules),
            "source": source, "figures_file": figures.name, "figures_line": str(line)})

    for key, seed in seeds.items():
        if key in seeds_found:
            continue
        targets.append({
            "date": seed.date, "platform": seed.platform, "series": seed.series,
            "value": f"{seed.value:g}", "unit": seed.unit, "kind": seed.kind,
            "weight": f"{TIER_WEIGHT['S']:g}", "sigma": "", "tier": "S",
            "rule": f"added: seed figure with no row in reported_figures.csv "
                    f"('{seed.quote}'); weight {TIER_WEIGHT['S']:g} (tier S)",
            "source": seed.source, "figures_file": "", "figures_line": "added"})
    for estimate in NOTE_ESTIMATES:
        weight = TIER_WEIGHT[estimate.tier]
        targets.append({
            "date": estimate.date, "platform": estimate.platform, "series": estimate.series,
            "value": f"{estimate.value:g}", "unit": estimate.unit, "kind": "exact",
            "weight": f"{weight:g}", "sigma": "", "tier": estimate.tier,
            "rule": f"added: estimate quoted in the note of line {estimate.line} "
                    f"('{estimate.quote}'); exact; weight {weight:g} (tier {estimate.tier})",
            "source": estimate.source, "figures_file": FIGURES.name,
            "figures_line": f"note of {estimate.line}"})
    unmatched = named - named_found
    if unmatched:  # a rule that matches nothing is a rule that silently does nothing
        raise DataError(f"{', '.join(f.name for f in files)}: no row matches the rule(s) for "
                        f"{', '.join(map(str, sorted(unmatched)))}; update "
                        f"calibration/make_targets.py")
    return Built(targets=targets, excluded=excluded)


def write_targets(rows: list[dict[str, str]], path: Path = TARGETS) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


README_START = "<!-- excluded-rows:start (written by python -m calibration.make_targets) -->"
README_END = "<!-- excluded-rows:end -->"


def excluded_table(excluded: list[dict[str, str]]) -> str:
    """The README's table of excluded rows, in markdown."""
    head = ("| file | line | date | platform | series | value | unit | tier | rule |\n"
            "|---|---:|---|---|---|---:|---|---|---|\n")
    body = "".join(
        "| " + " | ".join(row[c].replace("|", "\\|") for c in (
            "figures_file", "figures_line", "date", "platform", "series", "value", "unit",
            "tier", "rule"))
        + " |\n" for row in excluded)
    return head + body


def update_readme(excluded: list[dict[str, str]], path: Path = README) -> None:
    """Replace the table between the README's markers (the rest is left alone)."""
    text = path.read_text(encoding="utf-8")
    before, start, rest = text.partition(README_START)
    _, end, after = rest.partition(README_END)
    if not start or not end:
        raise DataError(f"{path}: markers {README_START!r} and {README_END!r} not found; "
                        f"expected both around the table of excluded rows")
    path.write_text(f"{before}{README_START}\n{excluded_table(excluded)}{README_END}{after}",
                    encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m calibration.make_targets",
        description="Turn reported figures into calibration targets by the rules in this "
                    "module's docstring (weights by tier S 4, A 2, B 1, C 0.5; notes saying "
                    "'lower bound' make lower bounds; conflicts down-weight the lower-tier "
                    "side by half; seed figures are tier S). Prints every excluded row.")
    parser.add_argument("--figures", type=Path, nargs="+", default=list(FIGURE_FILES),
                        help="reported figures CSV files (default: "
                             f"{', '.join(f.name for f in FIGURE_FILES)} in {DATA_DIR})")
    parser.add_argument("--out", type=Path, default=TARGETS,
                        help=f"targets CSV to write (default {TARGETS})")
    parser.add_argument("--readme", type=Path, default=README,
                        help="README whose table of excluded rows is rewritten "
                             f"(default {README})")
    parser.add_argument("--no-readme", action="store_true",
                        help="do not touch the README")
    args = parser.parse_args(argv)
    try:
        built = build(args.figures)
        for row in built.excluded:
            print(f"excluded line {row['figures_line']}: {row['platform']} {row['series']} "
                  f"{row['date']} = {row['value']}: {row['rule']}")
        for row in built.targets:
            if ";" in row["rule"] or row["figures_line"] == "added":  # more than a weight
                print(f"rule line {row['figures_line']}: {row['platform']} "
                      f"{row['series']} {row['date']} = {row['value']}: {row['rule']}")
        write_targets(built.targets, args.out)
        # the written file must load as targets over the model's horizon, with no row unused
        loaded = load_targets(args.out, start=START, end=END)
        if loaded.unused:
            raise DataError(f"{args.out}: line {loaded.unused[0][0]}: written but unused: "
                            f"{loaded.unused[0][1]}")
        if not args.no_readme:
            update_readme(built.excluded, args.readme)
    except MpsimError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(built.targets)} targets to {args.out}; excluded "
          f"{len(built.excluded)} of the rows of "
          f"{', '.join(f.name for f in args.figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
