"""The README's examples work as written: its Python blocks run as scripts (the process
pool spawns fresh interpreters, so a missing ``__main__`` guard crashes), and every
``mpsim`` command of its shell blocks parses with today's subcommands and flags."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from model.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: Reductions applied to a Python block before it runs, so the test stays fast: the
#: same calls at a smaller size, results written to the test's folder.
REDUCTIONS = (
    (re.compile(r"agents=20_000"), "agents=2_000"),
    (re.compile(r"\brun_scenario\("), "_small_run("),
)
PRELUDE = """\
OUT = {out!r}


def _small_run(*args, **kwargs):
    from model.runner import run_scenario
    return run_scenario(*args, **{{**kwargs, "out": OUT, "plots": False}})


"""


def _blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def _reduced(code: str, out: Path) -> str:
    for pattern, replacement in REDUCTIONS:
        code = pattern.sub(replacement, code)
    return PRELUDE.format(out=str(out)) + code


def test_the_readme_has_python_and_shell_blocks():
    assert _blocks("python") and _blocks("bash")


@pytest.mark.parametrize("number", range(len(_blocks("python"))))
def test_each_python_block_runs_as_a_script(number, tmp_path):
    code = _blocks("python")[number]
    script = tmp_path / f"readme_block_{number}.py"
    script.write_text(_reduced(code, tmp_path / "results"), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_python_block_without_the_guard_would_be_caught(tmp_path):
    """The check above can fail: a pool started at import time, without the guard, dies."""
    script = tmp_path / "unguarded.py"
    script.write_text("from model import executor\n"
                      "with executor.executor(2) as pool:\n"
                      "    print(executor.run_tasks(abs, [-1, -2], pool, desc='x', "
                      "progress=False))\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0


def _mpsim_commands() -> list[list[str]]:
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):  # VAR=value
                words = words[1:]
            if words and words[0] in ("mpsim", ".venv/bin/mpsim"):
                commands.append(words[1:])
    return commands


def test_the_readme_shows_mpsim_commands():
    names = {words[0] for words in _mpsim_commands()}
    assert {"run", "compare", "sweep", "sensitivity", "calibrate"} <= names


@pytest.mark.parametrize("words", _mpsim_commands(), ids=" ".join)
def test_each_mpsim_command_of_the_readme_parses(words):
    try:
        args = build_parser().parse_args(words)
    except SystemExit as exc:  # argparse refuses an unknown command or flag
        pytest.fail(f"mpsim {' '.join(words)}: refused (exit {exc.code})")
    assert args.command == words[0]
    if args.command in ("sweep", "sensitivity"):  # names argparse does not check
        from model.sweep import parse_ranges, select_outcomes

        parse_ranges(args.param)
        select_outcomes(args.outcome)


def test_a_wrong_flag_is_refused_by_the_same_check():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sweep", "baseline", "--parm", "x=0:1"])
