"""Downloads against a local HTTP server on 127.0.0.1 (no real network): mirrors, checksum mismatch, truncated
transfers, interruption then resume, safe extraction, the offline message, and `trainlab data get/list`."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from test_data_helpers import cifar10_python_members, http_server, idx_bytes, tar_gz, write_idx_set

from trainlab.config import DataConfig
from trainlab.data import DATASETS, load_dataset
from trainlab.data.base import DatasetSource, Resource
from trainlab.data.download import download_dataset, fetch, safe_extract
from trainlab.errors import DataError

PAYLOAD = os.urandom(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "home"))
    monkeypatch.delenv("TRAINLAB_MIRROR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def quiet(_msg: str) -> None:
    pass


def test_fetch_ok_and_no_temp_left(tmp_path: Path) -> None:
    with http_server() as srv:
        srv.files["/f.bin"] = PAYLOAD
        dest = fetch([srv.url + "/f.bin"], tmp_path / "f.bin", MD5, log=quiet, backoff_s=0)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()


def test_fetch_checksum_mismatch_discards_and_tries_next_mirror(tmp_path: Path) -> None:
    with http_server() as srv:
        srv.files["/bad/f.bin"] = PAYLOAD[:-1] + b"X"  # same size, different content
        srv.files["/good/f.bin"] = PAYLOAD
        dest = fetch([srv.url + "/bad/f.bin", srv.url + "/good/f.bin"], tmp_path / "f.bin", MD5, log=quiet)
        assert [p for p, _ in srv.requests] == ["/bad/f.bin", "/good/f.bin"]
    assert dest.read_bytes() == PAYLOAD


def test_fetch_checksum_mismatch_everywhere_is_an_error(tmp_path: Path) -> None:
    with http_server() as srv:
        srv.files["/f.bin"] = b"wrong content"
        with pytest.raises(DataError, match=r"checksum mismatch \(MD5 [0-9a-f]{32}, expected " + MD5):
            fetch([srv.url + "/f.bin"], tmp_path / "f.bin", MD5, log=quiet)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_fetch_truncated_transfer_is_not_accepted(tmp_path: Path) -> None:
    with http_server() as srv:
        srv.files["/f.bin"] = PAYLOAD
        srv.truncate["/f.bin"] = 99  # every response is cut short
        with pytest.raises(DataError, match=r"connection closed after 150000 bytes, 150000 short"):
            fetch([srv.url + "/f.bin"], tmp_path / "f.bin", MD5, attempts=1, log=quiet)
    assert not (tmp_path / "f.bin").exists()  # never renamed into place
    assert (tmp_path / "f.bin.part").stat().st_size == 150_000  # kept for a resume


def test_fetch_interrupted_then_resumed_in_a_later_call(tmp_path: Path) -> None:
    with http_server() as srv:
        srv.files["/f.bin"] = PAYLOAD
        srv.truncate["/f.bin"] = 1  # the first response breaks off halfway
        with pytest.raises(DataError):
            fetch([srv.url + "/f.bin"], tmp_path / "f.bin", MD5, attempts=1, log=quiet)
        dest = fetch([srv.url + "/f.bin"], tmp_path / "f.bin", MD5, attempts=1, log=quiet)
        assert srv.requests == [("/f.bin", None), ("/f.bin", "bytes=150000-")]  # only the rest was asked for
    assert dest.read_bytes() == PAYLOAD


def test_fetch_retries_with_resume_within_one_call(tmp_path: Path) -> None:
    with http_server() as srv:
        srv.files["/f.bin"] = PAYLOAD
        srv.truncate["/f.bin"] = 2  # 150,000 then 75,000 bytes, then the rest
        dest = fetch([srv.url + "/f.bin"], tmp_path / "f.bin", MD5, attempts=3, backoff_s=0, log=quiet)
        assert [r for _, r in srv.requests] == [None, "bytes=150000-", "bytes=225000-"]
    assert dest.read_bytes() == PAYLOAD


def test_fetch_server_without_ranges_restarts(tmp_path: Path) -> None:
    (tmp_path / "f.bin.part").write_bytes(b"stale partial content")
    with http_server() as srv:
        srv.files["/f.bin"] = PAYLOAD
        srv.ranges = False  # answers 200 with the whole file
        dest = fetch([srv.url + "/f.bin"], tmp_path / "f.bin", MD5, log=quiet)
    assert dest.read_bytes() == PAYLOAD


def test_fetch_unreachable_names_every_url(tmp_path: Path) -> None:
    with http_server() as srv:
        dead = srv.url  # a port that is closed once the server stops
    urls = [dead + "/a/f.bin", dead + "/b/f.bin"]
    with pytest.raises(DataError) as err:
        fetch(urls, tmp_path / "f.bin", MD5, log=quiet, timeout=5)
    assert urls[0] in str(err.value) and urls[1] in str(err.value)


def _mnist_files() -> dict[str, bytes]:
    tmp = {}
    arrays = {
        "train-images-idx3-ubyte": bytes(20 * 28 * 28),
        "train-labels-idx1-ubyte": bytes(range(10)) * 2,
        "t10k-images-idx3-ubyte": bytes(10 * 28 * 28),
        "t10k-labels-idx1-ubyte": bytes(range(10)),
    }
    import numpy as np

    for stem, raw in arrays.items():
        a = np.frombuffer(raw, np.uint8)
        a = a.reshape(-1, 28, 28) if "images" in stem else a
        tmp[stem + ".gz"] = gzip.compress(idx_bytes(a), mtime=0)
    return tmp


def _fake_source(name: str, files: dict[str, bytes], extract: bool = False) -> DatasetSource:
    real = DATASETS[name]
    res = [Resource(f, hashlib.md5(d).hexdigest(), len(d), extract) for f, d in files.items()]
    return DatasetSource(
        name, real.description, real.load, home=True, files=real.files, present=real.present,
        mirrors=["http://127.0.0.1:9/unused/"], resources=res, layout=real.layout,
    )  # fmt: skip


def test_download_dataset_mnist_then_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _mnist_files()
    src = _fake_source("mnist", files)
    monkeypatch.setitem(DATASETS, "mnist", src)
    with http_server() as srv:
        for f, d in files.items():
            srv.files[f"/mirror/mnist/{f}"] = d
        monkeypatch.setenv("TRAINLAB_MIRROR", srv.url + "/mirror")
        # First use with download on: fetched into the default root, then loaded.
        ds = load_dataset(DataConfig(name="mnist"))
    assert ds.train.x.shape == (20, 1, 28, 28) and ds.test.y.tolist() == list(range(10))
    assert sorted(p.name for p in (tmp_path / "home" / "mnist").iterdir()) == sorted(files)


def test_download_dataset_extracts_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members, arrays = cifar10_python_members()
    files = {"cifar-10-python.tar.gz": tar_gz(members)}
    src = _fake_source("cifar10", files, extract=True)
    monkeypatch.setitem(DATASETS, "cifar10", src)
    root = tmp_path / "c10"
    with http_server() as srv:
        srv.files["/cifar-10-python.tar.gz"] = files["cifar-10-python.tar.gz"]
        download_dataset(src, root, mirrors=[srv.url + "/"], log=quiet)
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert not (root / "cifar-10-python.tar.gz").exists()  # archive removed after extraction
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no temp folder left
    ds = load_dataset(DataConfig(name="cifar10", root=str(root), download=False))
    assert ds.train.x.shape == (20, 3, 32, 32)
    assert ds.train.x.numpy().tobytes() == arrays["train"][0].tobytes()


def test_offline_error_names_url_files_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = DATASETS["cifar10"]
    with http_server() as srv:
        dead = srv.url
    monkeypatch.setitem(DATASETS, "cifar10", _fake_source("cifar10", {"cifar-10-python.tar.gz": b"x"}, extract=True))
    DATASETS["cifar10"].mirrors = [dead + "/"]
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path / "c")))
    msg = str(err.value)
    assert f"{dead}/cifar-10-python.tar.gz" in msg  # the URL tried
    assert str(tmp_path / "c") in msg  # the folder expected
    assert "cifar-10-batches-py/ (data_batch_1" in msg and "test_batch" in msg  # the exact files
    assert src.layout in msg


def test_download_disabled(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.download = false.*https://ossci-datasets.s3.amazonaws.com/mnist/"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path), download=False))


# ------------------------------------------------------------------------------------------------------
# Safe extraction


def _tar_with(build) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        build(tar)
    return buf.getvalue()


def _add_file(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str, kind=tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda t: _add_file(t, "/etc/evil"), "unsafe member path '/etc/evil'"),
        (lambda t: _add_file(t, "data/../../evil"), "unsafe member path 'data/../../evil'"),
        (lambda t: _add_link(t, "data/link", "../../outside"), "link 'data/link' -> '../../outside' points outside"),
        (lambda t: _add_link(t, "data/abs", "/etc/passwd"), "link 'data/abs' -> '/etc/passwd' points outside"),
        (lambda t: _add_link(t, "hard", "../x", tarfile.LNKTYPE), "link 'hard' -> '../x' points outside"),
    ],
)
def test_safe_extract_refuses_escapes(tmp_path: Path, build, message: str) -> None:
    archive = tmp_path / "a.tar.gz"

    def full(tar: tarfile.TarFile) -> None:
        _add_file(tar, "data/ok.txt")
        build(tar)

    archive.write_bytes(_tar_with(full))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        safe_extract(archive, dest)
    assert list(dest.iterdir()) == []  # checked before anything is written
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


def test_safe_extract_allows_links_inside(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"

    def build(tar: tarfile.TarFile) -> None:
        _add_file(tar, "data/real.txt", b"hello")
        _add_link(tar, "data/alias.txt", "real.txt")

    archive.write_bytes(_tar_with(build))
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "alias.txt").read_bytes() == b"hello"


# ------------------------------------------------------------------------------------------------------
# CLI


def test_cli_data_get_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trainlab.cli import main

    files = _mnist_files()
    monkeypatch.setitem(DATASETS, "fashion_mnist", _fake_source("fashion_mnist", files))
    assert main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert "fashion_mnist" in listing and "missing" in listing and str(tmp_path / "home" / "fashion_mnist") in listing
    with http_server() as srv:
        for f, d in files.items():
            srv.files[f"/m/fashion_mnist/{f}"] = d
        monkeypatch.setenv("TRAINLAB_MIRROR", srv.url + "/m")
        assert main(["data", "get", "fashion_mnist", "--root", str(tmp_path / "fm")]) == 0
    assert "ready in" in capsys.readouterr().out
    assert (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").is_file()
    assert main(["data", "get", "fashion_mnist", "--root", str(tmp_path / "fm")]) == 0
    assert "already present" in capsys.readouterr().out


def test_cli_data_get_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from trainlab.cli import main

    assert main(["data", "get", "mnsit"]) == 2
    assert "did you mean 'mnist'" in capsys.readouterr().err
    assert main(["data", "get", "digits"]) == 2
    assert "needs no download" in capsys.readouterr().err


def test_data_list_marks_present(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trainlab.data.commands import data_list

    write_idx_set(tmp_path / "home" / "kmnist")
    assert data_list() == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("kmnist"))
    assert "present" in line
