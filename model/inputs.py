"""One reading path for every input file: scenario and calibration files (TOML), data
files (CSV), run manifests (JSON).

Every reader refuses, with one line naming the file, what a person can get wrong:
a path that does not exist or is a folder, a file that is not UTF-8 text (Latin-1 or
GBK saved from Excel, UTF-16, a binary file), with the byte offset and line of the
first bad byte. A UTF-8 byte-order mark is dropped. Text is returned with its line
endings as they are (``csv`` needs them)::

    from model.inputs import read_text, read_toml, read_json

    text = read_text(path, "data file", DataError)
    table = read_toml(path, "scenario file", ScenarioError)

``what`` names the kind of file in messages; ``error`` is the ``MpsimError`` subclass
to raise (default :class:`~model.errors.InputFileError`).
"""

from __future__ import annotations

import codecs
import json
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputFileError, MpsimError

#: Byte-order marks of encodings a person may save a file in by mistake.
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def read_bytes(path: str | Path, what: str = "file",
               error: type[MpsimError] = InputFileError) -> bytes:
    """The bytes of a regular file; a one-line ``error`` if it is missing, a folder,
    not a regular file or unreadable."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder; expected a {what}")
    if not path.exists():
        raise error(f"{path}: no such file; expected a {what}")
    if not path.is_file():
        raise error(f"{path}: not a regular file; expected a {what}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None


def decode(data: bytes, path: str | Path, what: str = "file",
           error: type[MpsimError] = InputFileError) -> str:
    """``data`` decoded as UTF-8 (a leading byte-order mark dropped), or a one-line
    ``error`` naming the byte offset and line of the first byte that is not UTF-8."""
    advice = f"save the {what} as UTF-8"
    if data.startswith(_UTF32_BOMS):  # before UTF-16: a UTF-32-LE mark begins like one
        raise error(f"{path}: the file is UTF-32 text, not UTF-8; {advice}")
    if data.startswith(_UTF16_BOMS):
        raise error(f"{path}: the file is UTF-16 text, not UTF-8; {advice}")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise error(f"{path}: byte {nul} (line {line}) is a NUL byte: a binary or UTF-16 "
                    f"file, not a {what}; {advice}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)
        line = data.count(b"\n", 0, start) + 1
        raise error(f"{path}: byte {start} (line {line}) is {data[start:start + 1]!r}, not "
                    f"UTF-8 (Latin-1, GBK or another encoding?); {advice}") from None


def read_text(path: str | Path, what: str = "file",
              error: type[MpsimError] = InputFileError) -> str:
    """The UTF-8 text of an input file (see the module docstring)."""
    return decode(read_bytes(path, what, error), path, what, error)


def read_toml(path: str | Path, what: str = "TOML file",
              error: type[MpsimError] = InputFileError) -> dict[str, Any]:
    """A TOML file's table; a one-line ``error`` naming the line of a syntax error."""
    text = read_text(path, what, error)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{path}: not valid TOML: nested too deeply") from None


def read_json(path: str | Path, what: str = "JSON file",
              error: type[MpsimError] = InputFileError) -> Any:
    """A JSON file's value; a one-line ``error`` naming the line of a syntax error."""
    text = read_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column "
                    f"{exc.colno}; the {what} is corrupt") from None
    except RecursionError:
        raise error(f"{path}: not valid JSON: nested too deeply; the {what} is "
                    "corrupt") from None
