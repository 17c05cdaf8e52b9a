"""Validation errors as a user reads them: one line per problem with the dotted key, what is allowed and where."""

from __future__ import annotations

import re
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from trainlab.config import StudyConfig
from trainlab.errors import did_you_mean

# The most problems listed, and the longest value quoted, in one error: a file with a thousand mistakes (or a
# megabyte string) gives a readable message, and locating each problem's line stays cheap.
MAX_PROBLEMS = 20
MAX_VALUE_CHARS = 80
# The names pydantic puts in an error's location for the member of a union it tried: not keys of the file.
UNION_MEMBERS = ("bool", "NormalizeStats", "Range", "TuneConfig", "int", "float", "str")


def _locate(text: str | None, loc: tuple[Any, ...]) -> str:
    """Best-effort 'line N' for a validation error location in the TOML text (tomllib keeps no positions)."""
    if not text or not loc:
        return ""
    lines = text.splitlines()
    section = str(loc[0])
    start = 0
    header = re.compile(rf"^\s*\[\[?\s*{re.escape(section)}\s*\]?\]\s*$")
    for i, line in enumerate(lines):
        if header.match(line):
            start = i
            break
    if len(loc) > 1:
        key = str(loc[-1])
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(start, len(lines)):
            if pattern.match(lines[i]):
                return f"line {i + 1}"
    return f"line {start + 1}" if start else ""


def format_validation_error(
    err: ValidationError, text: str | None, where: str, from_cli: frozenset[str] = frozenset()
) -> str:
    """One line per problem: the dotted key, what is wrong and allowed, and where (file and line, or --set)."""
    msgs = []
    errors = err.errors()
    for e in errors[:MAX_PROBLEMS]:
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # pydantic reports union members as extra loc parts ("bool", "NormalizeStats"): drop them.
        loc = tuple(p for p in loc if p not in UNION_MEMBERS and not (isinstance(p, str) and p.startswith("list[")))
        if loc[:2] == ("tune", "params"):  # the keys to tune are written in [tune] itself ("train.lr" = {...})
            loc = ("tune", *loc[2:])
        key = ".".join(str(p) for p in loc) or "(top level)"
        # A section's own validator (the model's keyword arguments) names the key it refuses: place the
        # message where that key was given (--set or its line), not where its table starts.
        named = re.findall(r"\b(" + re.escape(key) + r"\.[A-Za-z_]\w*)", str(e["msg"])) if loc else []
        if named and named[0] in from_cli:
            key = named[0]
        elif named and text is not None and _locate(text, tuple(named[0].split("."))):
            loc = tuple(named[0].split("."))
        if key in from_cli:
            place = " (from --set)"
        else:
            line = _locate(text, loc)
            place = f" ({where}{', ' + line if line else ''})" if where else (f" ({line})" if line else "")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            hint = did_you_mean(str(loc[-1]), allowed)
            msg = f"unknown key '{key}'{hint}; allowed here: {', '.join(allowed)}"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            if e["type"] == "literal_error" and isinstance(got, str):
                choices = re.findall(r"'([^']+)'", e.get("ctx", {}).get("expected", ""))
                msg += did_you_mean(got, choices)
            # Our own validators already quote the value; pydantic's built-in messages do not.
            if e["type"] not in ("missing", "value_error") and not isinstance(got, dict | list):
                msg += f" (got {_short(got)})"
            # Messages from nested validators (model kwargs) already name their full key.
            if not msg.startswith(("unknown key", f"{key}.", "model.")):
                msg = f"{key}: {msg}"
        msgs.append(f"{msg}{place}")
    if len(errors) > MAX_PROBLEMS:
        msgs.append(f"... and {len(errors) - MAX_PROBLEMS} more problems")
    return "\n".join(msgs)


def _short(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_VALUE_CHARS` characters: a message quotes a value, not a megabyte."""
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else f"{text[: MAX_VALUE_CHARS - 3]}..."


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = StudyConfig
    for p in parent:
        f = model.model_fields.get(str(p))
        ann = getattr(f, "annotation", None) if f else None
        # An optional section (tune: TuneConfig | None) is the model in it.
        ann = next((a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            break
    return sorted(model.model_fields)
