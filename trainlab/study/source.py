"""Reading a study file's text and TOML safely: every way a file can be unreadable is a one-line ConfigError.

A study file is a few kilobytes of UTF-8 TOML nested a few tables deep. Anything else — a binary file, a
gigabyte, arrays nested thousands deep — is refused here with the file's name, before it reaches the parser's
recursion limit, the validators or the sweep expansion.
"""

from __future__ import annotations

import codecs
import datetime
import tomllib
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError

# The largest study file read: the biggest shipped recipe is 3 KB; a bigger file is a wrong path (a dataset,
# a checkpoint), and reading it whole would take its size in memory before the TOML parser says no.
MAX_STUDY_BYTES = 16 * 2**20
# The deepest nesting of tables and arrays accepted (the document itself is level 1). A study needs about 5
# (variant list -> variant -> "model.hidden" -> a list of lists); deeper structures reach the recursion limits
# of copy.deepcopy, json and repr later on, so they are refused here with their key.
MAX_DEPTH = 32


def read_study_text(path: Path) -> str:
    """The text of study file ``path``: at most :data:`MAX_STUDY_BYTES` bytes of UTF-8 (a leading BOM allowed)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_STUDY_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read study file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_STUDY_BYTES:
        raise ConfigError(
            f"{path}: more than {MAX_STUDY_BYTES // 2**20} MiB; a study file is a few kilobytes of TOML"
            " (is this the right file?)"
        )
    # Editors on Windows may save UTF-8 with a byte-order mark, which tomllib would reject as a stray character.
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data[:offset].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{data[offset]:02x} at byte offset {offset} (line {line}) cannot be"
            " decoded; save the study file as UTF-8"
        ) from None


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """``tomllib.loads(text)``, its errors as :class:`ConfigError` naming ``where`` (the file)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a few hundred levels exhaust the stack.
        raise ConfigError(
            f"{where}: arrays or inline tables nested too deeply to parse; a study needs at most {MAX_DEPTH} levels"
        ) from None


def read_study_file(path: Path) -> tuple[str, dict[str, Any]]:
    """The text and the parsed TOML of study file ``path``, checked by :func:`check_structure`."""
    text = read_study_text(path)
    raw = parse_toml(text, str(path))
    check_structure(raw, str(path))
    return text, raw


def check_structure(raw: dict[str, Any], where: str = "", from_cli: frozenset[str] = frozenset()) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and TOML dates and times, naming the key and where it is
    (``where``, the file, or ``--set`` for a key in ``from_cli`` and below it).

    Iterative, so that the check itself has no recursion limit. No study key takes a date or a time (they are
    not JSON either, so a run's id could not be computed from one).
    """

    def refuse(key: str, problem: str) -> ConfigError:
        if key in from_cli or any(key.startswith(f"{k}.") for k in from_cli):
            place = " (from --set)"
        else:
            place = f" ({where})" if where else ""
        return ConfigError(f"{key or '(top level)'}: {problem}{place}")

    stack: list[tuple[Any, int, str]] = [(raw, 1, "")]
    while stack:
        node, depth, key = stack.pop()
        if isinstance(node, datetime.date | datetime.time):
            raise refuse(key, "a TOML date or time is not a value any key takes; quote it to make it a string")
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise refuse(key, f"tables or arrays nested more than {MAX_DEPTH} levels deep; a study needs a few")
        if isinstance(node, dict):
            stack.extend((v, depth + 1, f"{key}.{k}" if key else str(k)) for k, v in node.items())
        else:
            stack.extend((v, depth + 1, key) for v in node)
