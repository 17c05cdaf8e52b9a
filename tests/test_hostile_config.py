"""Hostile study files through ``trainlab check``: each is one ``error:`` line naming the key or the file, exit 2.

Never a traceback, a hang or a memory blow-up (issue 21): a study too big to expand, seeds that are not whole
numbers, a sweep key without a field, bytes that are not UTF-8, arrays nested thousands deep, non-finite
floats and thread counts that crash torch.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from helpers import assert_user_error

from trainlab.cli import main


def _sweep(n_keys: int, n_values: int) -> str:
    """A ``[sweep]`` of ``n_keys`` keys with ``n_values`` values each (learning rate, momentum, weight decay)."""
    keys = ["train.lr", "train.momentum", "train.weight_decay"][:n_keys]
    lines = [f'"{k}" = [{", ".join(f"{(i + 1) * 1e-4:.4g}" for i in range(n_values))}]' for k in keys]
    return "[sweep]\n" + "\n".join(lines) + "\n"


# (id, study file text (str) or bytes, the text the error line must name; "{path}" is the study file's path)
CASES: list[tuple[str, str | bytes, str]] = [
    # 1. a study too big to expand: counted, not built
    ("repeats-1e9", 'repeats = 1000000000\n\n[study]\nname = "x"\n\n[train]\nepochs = 1\n', "study.max_runs"),
    ("sweep-1000x1000", _sweep(2, 1000), "study.max_runs"),
    ("sweep-1000^3", _sweep(3, 1000), "study.max_runs"),
    ("max-runs-bool", "[study]\nmax_runs = true\n", "study.max_runs"),
    # 2. seeds that are not whole numbers
    ("sweep-seed-strings", '[sweep]\n"train.seed" = ["a", "b"]\n', "train.seed"),
    ("variant-seed-string", '[[variant]]\nname = "v"\n"train.seed" = "1"\n', "train.seed"),
    ("variant-seed-bool", '[[variant]]\nname = "v"\n"train.seed" = true\n', "train.seed"),
    ("train-seed-bool", "[train]\nseed = true\n", "train.seed"),
    ("train-seed-float", "[train]\nseed = 1.0\n", "train.seed"),
    ("train-seed-negative", "[train]\nseed = -1\n", "train.seed"),
    ("repeats-bool", "repeats = true\n", "repeats"),
    # 3. a sweep or variant key without a field
    ("sweep-section-only", "[sweep]\ntrain = [1, 2]\n", "'train'"),
    ("sweep-not-a-run-section", '[sweep]\n"deploy.threads" = [1, 2]\n', "'deploy.threads'"),
    ("sweep-empty-field", '[sweep]\n"train." = [1, 2]\n', "'train.'"),
    ("variant-section-only", '[[variant]]\nname = "v"\nmodel = 3\n', "'model'"),
    # 4. not UTF-8: the file and the byte offset
    ("not-utf8", b'[study]\nname = "caf\xe9"\n', "{path}: not UTF-8 text: byte 0xe9 at byte offset 19"),
    # 5. nested beyond the parser's recursion limit, or beyond what a study needs
    ("arrays-5000-deep", '[sweep]\n"model.hidden" = ' + "[" * 5000 + "]" * 5000 + "\n", "{path}"),
    ("tables-5000-deep", "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", "{path}"),
    ("arrays-100-deep", '[sweep]\n"model.hidden" = ' + "[" * 100 + "]" * 100 + "\n", "sweep.model.hidden"),
    # 6. non-finite floats
    ("lr-inf", "[train]\nlr = inf\n", "train.lr"),
    ("lr-nan", "[train]\nlr = nan\n", "train.lr"),
    ("weight-decay-inf", "[train]\nweight_decay = +inf\n", "train.weight_decay"),
    ("l2-nan", "[train]\nl2 = nan\n", "train.l2"),
    ("throughput-time-inf", "[measure]\nthroughput_time_s = inf\n", "measure.throughput_time_s"),
    ("deploy-tolerance-inf", "[deploy]\nonnx_tolerance = inf\n", "deploy.onnx_tolerance"),
    ("sweep-lr-inf", '[sweep]\n"train.lr" = [0.1, inf]\n', "train.lr"),
    ("normalize-nan", "[data]\nnormalize = { mean = [nan], std = [0.5] }\n", "data.normalize"),
    # 7. thread counts that crash torch.set_num_threads
    ("threads-100000", "[train]\nthreads = 100000\n", "train.threads"),
    ("deploy-threads-100000", "[deploy]\nthreads = 100000\n", "deploy.threads"),
    ("sweep-threads-100000", '[sweep]\n"train.threads" = [1, 100000]\n', "train.threads"),
    ("num-workers-100000", "[data]\nnum_workers = 100000\n", "data.num_workers"),
    # dates have no key to go to, and would break a run's id (they are not JSON)
    ("sweep-date", '[sweep]\n"model.hidden" = [[1979-05-27]]\n', "sweep.model.hidden"),
]


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "study.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(("content", "names"), [pytest.param(c, n, id=i) for i, c, n in CASES])
def test_hostile_study_is_one_error_line(tmp_path, capsys, content, names):
    path = _write(tmp_path, content)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        code = main(["check", str(path)])
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_user_error(code, capsys.readouterr().err, names.replace("{path}", str(path)))
    # Refused before anything is expanded: well under the seconds and the hundreds of MB it used to take.
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_too_big_a_study_gives_the_count(tmp_path, capsys):
    path = _write(tmp_path, "repeats = 3\n\n[[variant]]\nname = 'a'\n\n[[variant]]\nname = 'b'\n\n" + _sweep(2, 100))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "60,000 runs" in err and "2 variant(s) x 100 values of train.lr x 100 values of train.momentum x 3" in err
    assert "more than study.max_runs = 10,000" in err


def test_max_runs_is_settable_in_the_file_and_with_set(tmp_path, capsys):
    path = _write(tmp_path, 'repeats = 6\n\n[study]\nname = "x"\nmax_runs = 5\n\n[train]\nepochs = 1\n')
    assert_user_error(main(["check", str(path)]), capsys.readouterr().err, "study.max_runs = 5")
    assert main(["check", str(path), "--set", "study.max_runs=6"]) == 0
    assert "6 runs" in capsys.readouterr().out
    assert_user_error(
        main(["check", str(path), "--set", "study.max_runs=0"]), capsys.readouterr().err, "study.max_runs"
    )


def test_set_values_are_held_to_the_same_limits(tmp_path, capsys):
    path = _write(tmp_path, "[train]\nepochs = 1\n")
    for override, names in [
        ("train.lr=inf", "train.lr"),
        ("train.threads=100000", "train.threads"),
        ("train.seed=true", "train.seed"),
        ("repeats=1000000000", "study.max_runs"),
        ("sweep.train=[1,2]", "'train'"),
        ("train.lr=" + "[" * 5000 + "]" * 5000, "--set train.lr"),
        ("model.hidden=" + "[" * 100 + "]" * 100, "model.hidden"),
    ]:
        code = main(["check", str(path), "--set", override])
        err = capsys.readouterr().err
        assert_user_error(code, err, names)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, capsys):
    path = _write(tmp_path, b'\xef\xbb\xbf[study]\nname = "bom"\n')
    assert main(["check", str(path)]) == 0
    assert "study 'bom'" in capsys.readouterr().out


def test_a_study_file_of_gigabytes_is_not_read(tmp_path, capsys):
    path = tmp_path / "huge.toml"
    with path.open("wb") as f:
        f.truncate(2**30)  # sparse: a gigabyte of zero bytes that takes no disk
    tracemalloc.start()
    try:
        code = main(["check", str(path)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_user_error(code, capsys.readouterr().err, str(path))
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_many_problems_are_listed_up_to_a_bound(tmp_path, capsys):
    # A thousand unknown keys: the first twenty named, the rest counted, and no quadratic search for lines.
    path = _write(tmp_path, "[train]\n" + "".join(f"bogus{i} = 1\n" for i in range(1000)))
    start = time.perf_counter()
    assert main(["check", str(path)]) == 2
    assert time.perf_counter() - start < 5.0
    err = capsys.readouterr().err
    assert err.count("unknown key") == 20 and "... and 980 more problems" in err


def test_two_sweep_points_of_one_name_are_refused(tmp_path, capsys):
    path = _write(tmp_path, '[sweep]\n"train.lr" = [1, 1.0]\n')
    assert_user_error(main(["check", str(path)]), capsys.readouterr().err, "lr=1")
