"""Hostile or mistaken data files (issue 21): each is one DataError/ConfigError line naming the file or the key,
before anything large is allocated, never a traceback, a memory blow-up or a misleading message."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import assert_user_error, tiny_study, to_toml
from test_data_helpers import cifar10_python_members, idx_bytes, tar_gz, write_idx_set, write_members, write_tree

import trainlab.data.cifar as cifar
import trainlab.data.idx as idx
from trainlab.cli import main
from trainlab.config import DataConfig
from trainlab.data import load_dataset
from trainlab.errors import ConfigError, DataError
from trainlab.study import load_study

IMAGES = "train-images-idx3-ubyte"
MiB = 1024**2


@pytest.fixture(autouse=True)
def _isolated_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default roots and fallback caches under tmp_path; no test may download."""
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "home"))
    monkeypatch.delenv("TRAINLAB_MIRROR", raising=False)


def cfg(**kw: Any) -> DataConfig:
    kw.setdefault("download", False)
    return DataConfig(**kw)


def idx_header(*dims: int) -> bytes:
    """An unsigned-byte IDX header announcing ``dims`` (whatever data follows)."""
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def zeros_gzip(header: bytes, nbytes: int, member: int = 4 * MiB) -> bytes:
    """``header`` then ``nbytes`` zeros, gzip-compressed cheaply: one compressed member of zeros repeated
    (a valid multi-member gzip file; ~1 KB per MiB of zeros, so a 256 MiB bomb is a ~260 KB file)."""
    whole, rest = divmod(nbytes, member)
    block = gzip.compress(bytes(member), compresslevel=9)
    return gzip.compress(header) + block * whole + gzip.compress(bytes(rest))


def mnist_with(tmp_path: Path, name: str, data: bytes) -> Path:
    """A valid MNIST set in ``tmp_path`` whose file ``name`` is replaced by ``data``; returns that file."""
    write_idx_set(tmp_path, gz=name.endswith(".gz"))
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------------------
# 1. IDX headers whose size overflows


@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_size_that_overflows_int64(tmp_path: Path, gz: bool) -> None:
    # 2^31 x 2^31 x 4 = 2^64 bytes: NumPy's int64 product wrapped to 0, so a header-only file passed as empty.
    header = idx_header(2**31, 2**31, 4)
    mnist_with(tmp_path, IMAGES + (".gz" if gz else ""), gzip.compress(header) if gz else header)
    want = r"2147483648x2147483648x4 = 18446744073709551616 bytes of data"
    want += r", more than the 2\.0 GiB" if gz else r" but the file has 0"
    with pytest.raises(DataError, match=rf"{IMAGES}(\.gz)?: IDX header announces {want}") as err:
        load_dataset(cfg(name="mnist", root=str(tmp_path)))
    assert "\n" not in str(err.value)


def test_idx_plain_file_larger_than_its_header_says(tmp_path: Path) -> None:
    path = mnist_with(tmp_path, IMAGES, idx_header(40, 28, 28) + bytes(40 * 784 + 5))
    with pytest.raises(DataError, match=rf"{path}: IDX header announces 40x28x28 = 31360 bytes .* file has 31365"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


def test_idx_plain_file_over_the_limit_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 1000)
    mnist_with(tmp_path, IMAGES, idx_bytes(np.zeros((40, 28, 28), np.uint8)))
    with pytest.raises(DataError, match=r"announces 40x28x28 = 31360 bytes of data, more than the 1000 bytes"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


# ------------------------------------------------------------------------------------------------------
# 2. gzip bombs: the header's claim is checked first, and the stream is inflated with a bound


def test_gzip_header_claiming_4_5_gb_is_refused_by_the_default_limit(tmp_path: Path) -> None:
    # 5,740,000 x 28 x 28 = 4.5 GB announced; refused from the header, before a byte of data is inflated.
    mnist_with(tmp_path, IMAGES + ".gz", zeros_gzip(idx_header(5_740_000, 28, 28), 8 * MiB))
    assert idx.MAX_IDX_BYTES < 4_500_160_000
    with pytest.raises(DataError, match=r"5740000x28x28 = 4500160000 bytes of data, more than the 2\.0 GiB"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


def test_gzip_honest_bomb_over_a_lowered_limit_is_not_inflated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real 256 MiB stream whose header says so; the limit (lowered here) refuses it from the header alone.
    n = 256 * MiB
    mnist_with(tmp_path, IMAGES + ".gz", zeros_gzip(idx_header(n // 784, 28, 28), n // 784 * 784))
    assert (tmp_path / f"{IMAGES}.gz").stat().st_size < 400_000  # a small file ...
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 64 * MiB)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"bytes of data, more than the 64\.0 MiB an IDX file may hold"):
            idx.read_idx(tmp_path / f"{IMAGES}.gz", expect_ndim=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB  # ... that was never inflated


def test_gzip_bomb_behind_a_small_header_stops_after_the_announced_size(tmp_path: Path) -> None:
    # The header announces 40 images, the stream holds 256 MiB more: inflated no further than 40 x 784 + 1 bytes.
    path = mnist_with(tmp_path, IMAGES + ".gz", zeros_gzip(idx_header(40, 28, 28), 256 * MiB))
    start = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(
            DataError, match=rf"{path}: IDX header announces 40x28x28 = 31360 .* gzip stream holds more"
        ):
            load_dataset(cfg(name="mnist", root=str(tmp_path)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB and time.perf_counter() - start < 5.0


def test_gzip_header_claiming_more_than_deflate_can_hold(tmp_path: Path) -> None:
    # 1 GB announced (under the limit) by a file of a few dozen bytes: deflate cannot expand that much.
    mnist_with(tmp_path, IMAGES + ".gz", gzip.compress(idx_header(1_000_000, 28, 28) + bytes(100)))
    with pytest.raises(DataError, match=r"784000000 bytes of data but a \d+-byte gzip file inflates to at most"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


def test_gzip_stream_shorter_than_its_header(tmp_path: Path) -> None:
    mnist_with(tmp_path, IMAGES + ".gz", gzip.compress(idx_header(40, 28, 28) + bytes(1000)))
    with pytest.raises(DataError, match=r"announces 40x28x28 = 31360 bytes of data but the file has 1000"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


# ------------------------------------------------------------------------------------------------------
# 3. images without pixels


@pytest.mark.parametrize("dims", [(40, 28, 0), (40, 0, 28)])
def test_idx_images_with_a_zero_dimension(tmp_path: Path, dims: tuple[int, int, int]) -> None:
    path = mnist_with(tmp_path, IMAGES, idx_header(*dims))
    with pytest.raises(DataError, match=rf"{path}: images are {dims[1]}x{dims[2]} pixels; each image needs"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


# ------------------------------------------------------------------------------------------------------
# 4-5. CSV: a text cell in a numeric column; values that overflow


def write_csv(path: Path, xs: list[str], extra: str = "") -> Path:
    """``x,label`` (plus ``extra`` columns' header) with one row per value of ``xs``, labels alternating."""
    path.write_text("x,label\n" + "".join(f"{x},{'ab'[i % 2]}\n" for i, x in enumerate(xs)))
    return path


@pytest.mark.parametrize(("cell", "why"), [("abc", "is not a number"), ("inf", "is not a finite number")])
def test_csv_text_cell_in_a_numeric_column_names_line_and_value(tmp_path: Path, cell: str, why: str) -> None:
    xs = [str(i) for i in range(150)]
    xs[16] = cell  # line 18: the header is line 1
    path = write_csv(tmp_path / "t.csv", xs)
    with pytest.raises(DataError) as err:
        load_dataset(cfg(name="csv", root=str(path), target="label"))
    assert str(err.value).startswith(
        f"{path}, line 18: column 'x' = '{cell}' {why}, but the column is otherwise numeric (149 of 150 values"
    )


def test_csv_free_text_column_keeps_its_message(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [f"id{i}" for i in range(150)])
    with pytest.raises(DataError, match=r"column 'x' has \d+ distinct non-numeric values \(more than 100\)"):
        load_dataset(cfg(name="csv", root=str(path), target="label"))


@pytest.mark.parametrize("scaling", ["standard", "minmax", "none"])
def test_csv_values_near_float64_max_are_refused_naming_the_column(tmp_path: Path, scaling: str) -> None:
    path = write_csv(tmp_path / "t.csv", ["1e308", "-1e308", "1", "2"] * 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from the overflow either
        with pytest.raises(DataError, match=rf"{path}: column 'x' has values up to 1e\+308 in magnitude, too large"):
            load_dataset(cfg(name="csv", root=str(path), target="label", scaling=scaling))


def test_csv_large_values_that_standardise_fine_are_kept(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["1e100", "-1e100", "3e99", "0"] * 5)
    ds = load_dataset(cfg(name="csv", root=str(path), target="label", scaling="standard"))
    assert bool(ds.train.x.isfinite().all()) and float(ds.train.x.abs().max()) < 10


def test_csv_regression_target_beyond_float32(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'1e300' if i == 3 else i}\n" for i in range(10)))
    with pytest.raises(DataError, match=rf"{path}, line 5: target 'y' = '1e300' is beyond float32's range"):
        load_dataset(cfg(name="csv", root=str(path), target="y", task="regression"))


def test_csv_regression_target_that_overflows_when_scaled(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'-' if i % 2 else ''}3e38\n" for i in range(10)))
    with pytest.raises(DataError, match=rf"{path}: target 'y' overflows float32 when scaled"):
        load_dataset(cfg(name="csv", root=str(path), target="y", task="regression", target_scaling="minmax"))


# ------------------------------------------------------------------------------------------------------
# 6. synthetic sizes, and the same class of problem in CIFAR and folder


def test_synthetic_huge_shape_refused_at_validation() -> None:
    with pytest.raises(ConfigError) as err:
        load_study(tiny_study(data={"shape": [3, 100000, 100000]}))
    msg = str(err.value)
    assert "data.shape [3, 100000, 100000]" in msg and "GiB of float32" in msg and "8.0 GiB allowed" in msg


def test_synthetic_shape_of_two_dimensions_refused_at_validation() -> None:
    with pytest.raises(ConfigError, match=r"data.shape must be \(C, H, W\) or \(F,\), got \[3, 8\]"):
        load_study(tiny_study(data={"shape": [3, 8]}))


@pytest.mark.parametrize("archive", [True, False])
def test_cifar_file_over_the_limit_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive: bool) -> None:
    members, _ = cifar10_python_members()
    if archive:
        (tmp_path / "cifar-10-python.tar.gz").write_bytes(tar_gz(members))
    else:
        write_members(tmp_path, members)
    monkeypatch.setattr(cifar, "MAX_MEMBER_BYTES", 1000)  # the tiny batches are ~12 KB
    where = r"cifar-10-python.tar.gz:cifar-10-batches-py" if archive else r"cifar-10-batches-py"
    with pytest.raises(DataError, match=rf"{where}/\w+: \d+ bytes, more than the 1000 bytes a CIFAR batch may be"):
        load_dataset(cfg(name="cifar10", root=str(tmp_path)))


def test_folder_image_size_too_large_refused_before_decoding(tmp_path: Path) -> None:
    write_tree(tmp_path, per_class=2)
    with pytest.raises(ConfigError, match=r"data.image_size \[100000, 100000\] for the 6 images in .* GiB"):
        load_dataset(cfg(name="folder", root=str(tmp_path), image_size=[100000, 100000]))


# ------------------------------------------------------------------------------------------------------
# The CLI: exit 2, one `error:` line naming the file or the key, no traceback


def _case(tmp_path: Path, case: str) -> tuple[dict[str, Any], str]:
    """``([data] of the case, what its error line must name)``."""
    mnist = {"name": "mnist", "root": str(tmp_path), "download": False}
    if case == "idx-overflow":
        mnist_with(tmp_path, IMAGES, idx_header(2**31, 2**31, 4))
        return mnist, IMAGES
    if case == "idx-bomb":
        mnist_with(tmp_path, IMAGES + ".gz", zeros_gzip(idx_header(40, 28, 28), 64 * MiB))
        return mnist, IMAGES + ".gz"
    if case == "idx-zero-width":
        mnist_with(tmp_path, IMAGES, idx_header(40, 28, 0))
        return mnist, IMAGES
    if case in ("csv-text-cell", "csv-1e308"):
        xs = [str(i) for i in range(150)]
        xs[16:18] = ["abc", "17"] if case == "csv-text-cell" else ["1e308", "-1e308"]
        path = write_csv(tmp_path / "t.csv", xs)
        return {"name": "csv", "root": str(path), "target": "label"}, "column 'x'"
    assert case == "synthetic-shape"
    return {"shape": [3, 100000, 100000]}, "data.shape"


@pytest.mark.parametrize(
    "case", ["idx-overflow", "idx-bomb", "idx-zero-width", "csv-text-cell", "csv-1e308", "synthetic-shape"]
)
def test_cli_reports_each_case_as_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    data, names = _case(tmp_path, case)
    study = tmp_path / "study.toml"
    study.write_text(to_toml(tiny_study(data=data)))
    code = main(["run", str(study), "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert_user_error(code, err, names=names)
    if case.startswith("csv"):
        assert str(tmp_path / "t.csv") in err
