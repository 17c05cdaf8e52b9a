"""Fuzzing ``trainlab check`` with mutated recipes: a user's mistake is exit 2 and one message, never a traceback.

Each case takes a shipped recipe and applies one to three seeded mutations (deterministic: case N is the same
study on every machine): a value replaced by a wrong type, a huge, negative or non-finite number, an empty, very
long or unicode string, a nested list or a table; a key deleted, renamed, added or moved to another table; or
the text itself truncated, a line deleted, duplicated or copied in, bytes flipped. ``trainlab check`` then runs
in-process and must exit 0 or 2 with no traceback and no exception escaping, in a few seconds and a bounded
amount of memory.

``check`` validates models by name and imports a user model named ``package.module:Class``: no mutated study
names a model with a ':' (see :func:`_imports_nothing`), so the fuzzer never imports a module.

Reproduce case N: ``pytest tests/test_fuzz_check.py -k 'case-N'``; its failure message holds the mutations
and the study text.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import random
import resource
import signal
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trainlab.cli import main
from trainlab.study import list_recipes, recipe_path

CASES = 300
# Bounds per case. A check takes milliseconds; the bounds are far above that (a loaded 2-core machine) and far
# below the minutes and gigabytes of the failures they guard against. Memory is the growth of the process's
# peak resident size (ru_maxrss): tracemalloc would be exact but makes the whole test five times slower.
TIME_BOUND_S = 5.0
HANG_S = 30  # a case still running after this is interrupted (SIGALRM), so a hang fails instead of blocking
MEMORY_BOUND = 256 * 2**20

RECIPES: dict[str, str] = {name: recipe_path(name).read_text(encoding="utf-8") for name, _ in list_recipes()}

# Names a mutation may use, so that some mutated values are valid choices in the wrong place.
NAMES = ["adam", "sgd", "cuda", "cpu", "mlp", "logreg", "simple_cnn", "resnet18", "synthetic", "digits", "folder"]
NAMES += ["csv", "cifar100", "dataloader", "bf16", "cuda-graph", "onecycle", "mse", "onnx", "mlflow", "base"]
# Dotted keys for new sweep or variant entries: real ones, and ones that are not.
DOTTED = ["train.lr", "train.seed", "train.threads", "train.epochs", "model.name", "model.hidden", "model.dropout"]
DOTTED += ["data.batch_size", "data.num_workers", "data.normalize", "measure.infer_limit", "train", "model"]
DOTTED += ["deploy.threads", "train.lr.x", "train.", ".lr", "", "study.name", "data.augment.hflip", "nonsense.key"]


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


def _hostile(rng: random.Random, nest: bool = True) -> Any:
    """A value a user (or a cat on the keyboard) might put anywhere: wrong type, extreme, odd or deep."""
    kind = rng.randrange(9 if nest else 8)
    if kind == 8:
        return [_hostile(rng, nest=False) for _ in range(rng.randrange(1, 3))]
    if kind == 0:
        return rng.choice([0, -1, 1, 3, 2**31, 2**63 - 1, 2**63, -(2**63), 10**18, 10**30, 1_000_000_000, 100_000])
    if kind == 1:
        return rng.choice([math.inf, -math.inf, math.nan, 1e308, -1e308, 5e-324, -0.0, 0.5, 1e10, 100.0, -2.5])
    if kind == 2:
        return rng.choice([True, False])
    if kind == 3:
        return rng.choice(
            ["", " ", "x" * 100_000, "Ünïcødé ✓ 日本語 🙂", "\u200b", "\n\t\\\"'", "None", "nan", "0", "../..", "\x7f"]
        )
    if kind == 4:
        return rng.choice(NAMES)
    if kind == 5:
        return rng.choice([[], [1, 2], ["a"], [[1]], [1, "a", True], _deep_list(6), _deep_list(40), [0.5] * 1000])
    if kind == 6:
        return rng.choice([{}, {"a": 1}, {"name": "mlp"}, {"mean": [0.5], "std": [0.0]}, {"x": {"y": {"z": []}}}])
    return rng.choice([datetime.date(1979, 5, 27), datetime.time(7, 32), datetime.datetime(1979, 5, 27, 7, 32)])


# ---- the parsed study: every table and every key in it -------------------------------------------------------


def _tables(node: Any) -> Iterator[dict[str, Any]]:
    """Every table in ``node``, the document first (variant tables and inline tables included)."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _tables(v)
    elif isinstance(node, list):
        for v in node:
            yield from _tables(v)


def _slots(node: Any) -> Iterator[tuple[dict[str, Any] | list[Any], Any]]:
    """Every (container, key or index) that holds a value below ``node``."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield node, k
            yield from _slots(v)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield node, i
            yield from _slots(v)


def _name(container: Any, key: Any) -> str:
    return f"[{key}]" if isinstance(container, list) else repr(key)


def _set_value(raw: dict[str, Any], rng: random.Random) -> str:
    container, key = rng.choice(list(_slots(raw)))
    value = _hostile(rng)
    container[key] = value
    return f"set {_name(container, key)} = {_brief(value)}"


def _wrap_value(raw: dict[str, Any], rng: random.Random) -> str:
    container, key = rng.choice(list(_slots(raw)))
    container[key] = rng.choice([[container[key]], [[container[key]]], {"value": container[key]}])
    return f"wrap {_name(container, key)}"


def _delete_key(raw: dict[str, Any], rng: random.Random) -> str:
    tables = [t for t in _tables(raw) if t]
    table = rng.choice(tables)
    key = rng.choice(list(table))
    del table[key]
    return f"delete {key!r}"


def _rename_key(raw: dict[str, Any], rng: random.Random) -> str:
    tables = [t for t in _tables(raw) if t]
    table = rng.choice(tables)
    key = rng.choice(list(table))
    new = rng.choice([key + "x", key[:-1], key.upper(), "", "ключ", "k" * 5000, f"{key}.{key}", f"train.{key}"])
    table[new] = table.pop(key)
    return f"rename {key!r} -> {_brief(new)}"


def _add_key(raw: dict[str, Any], rng: random.Random) -> str:
    # The document itself a third of the time: it holds repeats, and the tables are keys of it.
    table = raw if rng.random() < 0.33 else rng.choice(list(_tables(raw)))
    key = rng.choice(["bogus", "lr", "seed", "name", "threads", "repeats", "sweep", "variant", "max_runs", "ü"])
    value = _hostile(rng)
    table[key] = value
    return f"add {key!r} = {_brief(value)}"


def _move_key(raw: dict[str, Any], rng: random.Random) -> str:
    tables = list(_tables(raw))
    source = rng.choice([t for t in tables if t])
    key = rng.choice(list(source))
    value = source.pop(key)
    target = rng.choice(tables)
    target[key] = value
    return f"move {key!r} to another table"


def _sweep_or_variant(raw: dict[str, Any], rng: random.Random) -> str:
    key = rng.choice(DOTTED)
    values = [_hostile(rng) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.5 or not isinstance(raw.get("sweep", {}), dict):
        sweep = raw["sweep"] = raw.get("sweep") if isinstance(raw.get("sweep"), dict) else {}
        sweep[key] = values
        return f"sweep {key!r} = {_brief(values)}"
    variants = raw["variant"] = raw.get("variant") if isinstance(raw.get("variant"), list) else []
    variants.append({"name": rng.choice(["v", "base", "", "v/x", "ü" * 3]), key: values[0]})
    return f"variant {key!r} = {_brief(values[0])}"


def _replace_table(raw: dict[str, Any], rng: random.Random) -> str:
    key = rng.choice(["study", "data", "model", "train", "measure", "sweep", "variant", "deploy", "track"])
    value = rng.choice([3, "x", [], [1], [{}], {"name": 5}, True])
    raw[key] = value
    return f"replace table {key!r} with {_brief(value)}"


TREE_MUTATIONS: list[Callable[[dict[str, Any], random.Random], str]] = [
    _set_value,
    _set_value,
    _set_value,
    _wrap_value,
    _delete_key,
    _rename_key,
    _add_key,
    _move_key,
    _sweep_or_variant,
    _sweep_or_variant,
    _replace_table,
]


# ---- the text: truncated, lines deleted, duplicated or copied in, bytes flipped -----------------------------


def _truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.randrange(len(data) + 1)
    return data[:cut], f"truncate at byte {cut}"


def _flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    where = []
    for _ in range(rng.randrange(1, 6)):
        i = rng.randrange(len(out))
        out[i] = rng.randrange(256) if rng.random() < 0.5 else out[i] ^ (1 << rng.randrange(8))
        where.append(i)
    return bytes(out), f"flip bytes at {where}"


def _lines_op(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    op = rng.randrange(3)
    if op == 0:
        del lines[i]
        return b"\n".join(lines), f"delete line {i + 1}"
    if op == 1:
        lines.insert(i, lines[i])  # a duplicate key, or a duplicate table header
        return b"\n".join(lines), f"duplicate line {i + 1}"
    donor = RECIPES[rng.choice(sorted(RECIPES))].encode().split(b"\n")
    j = rng.randrange(len(donor))
    lines.insert(i, donor[j])
    return b"\n".join(lines), f"copy another recipe's line {j + 1} before line {i + 1}"


TEXT_MUTATIONS: list[Callable[[bytes, random.Random], tuple[bytes, str]]] = [_truncate, _flip_bytes, _lines_op]


# ---- writing a mutated study back as TOML --------------------------------------------------------------------


def _toml_string(s: str) -> str:
    # json's escapes are TOML's (\" \\ \n \t \uXXXX); DEL is a control character TOML requires escaped.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # inf, -inf, nan and 1e+308 are TOML as repr writes them
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, datetime.date | datetime.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_string(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def _to_toml(raw: dict[str, Any]) -> str:
    """``raw`` as a study file is written: top-level values first, then ``[table]`` and ``[[variant]]`` blocks."""

    def body(table: dict[str, Any]) -> str:
        return "".join(f"{_toml_string(str(k))} = {_toml_value(v)}\n" for k, v in table.items())

    head, blocks = [], []
    for k, v in raw.items():
        key = _toml_string(str(k))
        if isinstance(v, dict):
            blocks.append(f"[{key}]\n{body(v)}")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            blocks.extend(f"[[{key}]]\n{body(x)}" for x in v)
        else:
            head.append(f"{key} = {_toml_value(v)}\n")
    return "".join(head) + "\n" + "\n".join(blocks)


def _imports_nothing(raw: Any) -> bool:
    """Whether no model name in ``raw`` has a ':' (``check`` would import ``package.module`` for one)."""
    names: list[Any] = []
    if isinstance(raw, dict):
        model = raw.get("model")
        if isinstance(model, dict):
            names.append(model.get("name"))
        for v in raw.get("variant") if isinstance(raw.get("variant"), list) else []:
            if isinstance(v, dict):
                names.append(v.get("model.name"))
        sweep = raw.get("sweep")
        if isinstance(sweep, dict) and isinstance(sweep.get("model.name"), list):
            names.extend(sweep["model.name"])
    return not any(isinstance(n, str) and ":" in n for n in names)


def _no_colons(node: Any) -> Any:
    """``node`` with ':' taken out of every string (so no mutation can move one into a model name)."""
    if isinstance(node, str):
        return node.replace(":", "_")
    if isinstance(node, list):
        return [_no_colons(v) for v in node]
    if isinstance(node, dict):
        return {k: _no_colons(v) for k, v in node.items()}
    return node


def _brief(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else f"{text[:57]}..."


def mutated_study(case: int) -> tuple[bytes, str]:
    """Case ``case``'s study file and a description of how it was made (deterministic in ``case``)."""
    rng = random.Random(case)
    name = rng.choice(sorted(RECIPES))
    steps = [f"recipe {name}"]
    if rng.random() < 0.7:
        raw = _no_colons(tomllib.loads(RECIPES[name]))
        for _ in range(rng.randrange(1, 4)):
            steps.append(rng.choice(TREE_MUTATIONS)(raw, rng))
        return _to_toml(_no_colons(raw)).encode(), "; ".join(steps)
    for _ in range(10):  # a mutation that would name a user model (a ':' in model.name) is drawn again
        data, step = rng.choice(TEXT_MUTATIONS)(RECIPES[name].encode(), rng)
        try:
            raw = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
            raw = None  # never reaches a model name
        if _imports_nothing(raw):
            return data, "; ".join([*steps, step])
    raise AssertionError(f"case {case}: no mutation without a user model in 10 draws")


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Raise :class:`_Hang` in the running code after ``seconds`` (a hang fails the case, not the suite)."""

    def alarm(signum: int, frame: Any) -> None:
        raise _Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_mutations_are_deterministic_and_import_nothing():
    assert mutated_study(7) == mutated_study(7)
    for case in range(CASES):
        data, _ = mutated_study(case)
        with contextlib.suppress(UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
            assert _imports_nothing(tomllib.loads(data.decode("utf-8"))), case


def _peak_rss() -> int:
    """The process's peak resident memory so far (bytes; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cases' folder, once a first check has imported what ``check`` imports (torch among it): the memory
    bound is on each case's own growth, not on the imports."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["check", str(recipe_path("quickstart"))]) == 0
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("case", [pytest.param(c, id=f"case-{c}") for c in range(CASES)])
def test_check_survives_a_mutated_recipe(case: int, study_dir: Path) -> None:
    data, how = mutated_study(case)
    path = study_dir / f"case{case}.toml"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    escaped: BaseException | None = None
    code: Any = None
    rss_before = _peak_rss()
    start = time.perf_counter()
    try:
        with _deadline(HANG_S), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", str(path)])
    except BaseException as exc:  # anything escaping main() is the failure this test looks for
        escaped = exc
    finally:
        elapsed = time.perf_counter() - start
        growth = _peak_rss() - rss_before
    text = data.decode("utf-8", errors="replace")
    context = (
        f"case {case}: {how}\n--- study ({len(data)} bytes) ---\n{text[:1500]}\n"
        f"--- stderr ---\n{err.getvalue()[-1500:]}"
    )
    assert escaped is None, f"{type(escaped).__name__}: {escaped}\n{context}"
    assert code in (0, 2), f"exit {code}\n{context}"
    assert "Traceback" not in err.getvalue() + out.getvalue(), context
    if code == 2:
        assert err.getvalue().startswith("error: "), context
    assert elapsed < TIME_BOUND_S, f"{elapsed:.1f} s\n{context}"
    assert growth < MEMORY_BOUND, f"peak memory grew by {growth / 2**20:.0f} MiB\n{context}"
