"""Scenario files: a description, an optional parent, parameter overrides, run settings.

A scenario is a TOML file in ``scenarios/`` (or anywhere, given by path)::

    description = "What question this scenario answers."
    extends = "baseline"          # optional: start from another scenario

    [run]                         # optional run settings
    replicates = 20

    [red_envelope]                # parameter overrides, by group
    strength = 0.0

Overrides apply on top of the parent's, which apply on top of the defaults in
``model/params.py``. Unknown keys, wrong types, out-of-range values and cycles of
``extends`` are refused with a one-line ``ScenarioError`` or ``ParameterError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ParameterError, ScenarioError
from .inputs import read_toml
from .params import BY_NAME, RUN_SETTINGS, _closest, check_param, check_run_setting, resolve, run_defaults

#: Folder of the shipped scenarios.
SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"

_TOP_KEYS = {"description", "extends", "run"}
_GROUPS = {name.split(".")[0] for name in BY_NAME}


@dataclass
class Scenario:
    """A loaded scenario: everything needed to run it, as plain data."""

    name: str
    path: Path
    description: str
    overrides: dict[str, Any]  # parameter overrides after the whole extends chain
    run: dict[str, Any]  # run settings after the chain, defaults filled in
    chain: list[str] = field(default_factory=list)  # this scenario, then its parents

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter's value for this scenario."""
        return resolve(self.overrides)


def available() -> dict[str, Path]:
    """Shipped scenarios by name."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.toml"))}


def find(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """Path of a scenario given by name (``baseline``) or by path."""
    text = str(name_or_path)
    candidate = Path(text)
    if text.endswith(".toml") or candidate.parent != Path("."):
        if relative_to is not None and not candidate.is_absolute():
            near = relative_to / candidate
            if near.is_file():
                return near
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise ScenarioError(f"{text}: is a folder; expected a scenario file (.toml)")
        if candidate.exists():
            raise ScenarioError(f"{text}: not a regular file; expected a scenario file (.toml)")
        raise ScenarioError(f"{text}: no such scenario file")
    if relative_to is not None and (relative_to / f"{text}.toml").is_file():
        return relative_to / f"{text}.toml"
    shipped = available()
    if text in shipped:
        return shipped[text]
    if candidate.is_dir():  # `mpsim run results`: a folder, not a scenario name
        raise ScenarioError(f"{text}: is a folder; expected a scenario name or file (.toml)")
    raise ScenarioError(f"{text}: no such scenario; {_closest(text, shipped)}")


def _read(path: Path) -> dict[str, Any]:
    return read_toml(path, "scenario file", ScenarioError)


def _flatten(table: dict[str, Any], prefix: str, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, name, path))
        else:
            out[name] = value
    return out


def _parse(path: Path) -> tuple[dict[str, Any], dict[str, Any], str, str | None]:
    """(parameter overrides, run settings, description, extends) of one file, checked."""
    raw = _read(path)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{path}: description: value {description!r} is not allowed; expected a string")
    extends = raw.get("extends")
    if extends is not None and not isinstance(extends, str):
        raise ScenarioError(f"{path}: extends: value {extends!r} is not allowed; "
                            "expected a scenario name or path")
    run_table = raw.get("run", {})
    if not isinstance(run_table, dict):
        raise ScenarioError(f"{path}: run: expected a table [run] of settings "
                            f"({', '.join(RUN_SETTINGS)})")
    run = {key: check_run_setting(key, value, str(path)) for key, value in run_table.items()}
    overrides: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _TOP_KEYS:
            continue
        if not isinstance(value, dict):
            if key in _GROUPS:
                names = sorted(n.split(".", 1)[1] for n in BY_NAME if n.split(".")[0] == key)
                raise ParameterError(
                    f"{path}: {key}: value {value!r} is not allowed; expected a table "
                    f"[{key}] of parameters ({', '.join(names)})")
            valid = sorted(_TOP_KEYS | _GROUPS)
            raise ParameterError(f"{path}: unknown key {key!r}; {_closest(key, valid)}")
        for name, item in _flatten(value, key, path).items():
            overrides[name] = check_param(name, item, str(path))
    return overrides, run, description, extends


def load(name_or_path: str | Path, where: str | None = None) -> Scenario:
    """Load a scenario and its ``extends`` chain; refuse cycles, and parameters that
    contradict each other (``model.params.resolve``).

    ``where`` (e.g. ``"calib.toml: scenario"``) prefixes every error, for a scenario
    named inside another file.
    """
    if where is None:
        return _load(name_or_path)
    try:
        return _load(name_or_path)
    except ScenarioError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    except ParameterError as exc:
        raise ParameterError(f"{where}: {exc}") from None


def _load(name_or_path: str | Path) -> Scenario:
    path = find(name_or_path).resolve()
    chain: list[Path] = []
    layers = []
    while True:
        if path in chain:
            names = " -> ".join(p.stem for p in [*chain, path])
            raise ScenarioError(f"{chain[0]}: extends forms a cycle: {names}")
        chain.append(path)
        overrides, run, description, extends = _parse(path)
        layers.append((overrides, run, description))
        if extends is None:
            break
        try:
            path = find(extends, relative_to=path.parent).resolve()
        except ScenarioError as exc:
            raise ScenarioError(f"{path}: extends {extends!r}: {exc}") from None
    overrides: dict[str, Any] = {}
    run = run_defaults()
    for layer_overrides, layer_run, _ in reversed(layers):
        overrides.update(layer_overrides)
        run.update(layer_run)
    if run["end"] <= run["start"]:
        raise ScenarioError(f"{chain[0]}: run.end {run['end']} must be after run.start {run['start']}")
    resolve(overrides, str(chain[0]))  # checks between parameters, before any work
    return Scenario(name=chain[0].stem, path=chain[0], description=layers[0][2],
                    overrides=overrides, run=run, chain=[p.stem for p in chain])
