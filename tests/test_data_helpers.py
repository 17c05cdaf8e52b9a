"""Writers of tiny datasets in their real on-disk formats (IDX, CIFAR python pickles and binary records,
class-folder image trees, CSV), and a local HTTP server for download tests. Imported by the other
``test_data_*`` files; the few tests here check that the writers produce the real formats.
"""

from __future__ import annotations

import gzip
import io
import pickletools
import re
import struct
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

# ------------------------------------------------------------------------------------------------------
# IDX (MNIST family)


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: 0, 0, 0x08, ndim, big-endian sizes, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx_set(root: Path, n_train: int = 40, n_test: int = 12, gz: bool = True, seed: int = 0) -> dict:
    """The four MNIST-family files (28x28, labels 0..9) in ``root``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, arr in arrays.items():
        data = idx_bytes(arr)
        if gz:
            (root / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (root / stem).write_bytes(data)
    return arrays


# ------------------------------------------------------------------------------------------------------
# CIFAR python batches, written like Python 2's cPickle did (protocol 2, byte strings, numpy.core names)


def py2_pickle(obj: object) -> bytes:
    """Protocol-2 pickle of dicts/lists/ints/strings/uint8 arrays as the CIFAR files are: Python 2 ``str``
    (SHORT_BINSTRING/BINSTRING), and ndarrays via ``numpy.core.multiarray._reconstruct``."""
    out = bytearray(b"\x80\x02")

    def string(b: bytes) -> None:
        out.extend(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def integer(v: int) -> None:
        if 0 <= v < 256:
            out.extend(b"K" + bytes([v]))
        elif 0 <= v < 65536:
            out.extend(b"M" + struct.pack("<H", v))
        else:
            out.extend(b"J" + struct.pack("<i", v))

    def emit(o: object) -> None:
        if o is None:
            out.extend(b"N")
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            integer(o)
        elif isinstance(o, str | bytes):
            string(o.encode("latin1") if isinstance(o, str) else o)
        elif isinstance(o, list):
            out.extend(b"]")
            if o:
                out.extend(b"(")
                for v in o:
                    emit(v)
                out.extend(b"e")
        elif isinstance(o, dict):
            out.extend(b"}")
            if o:
                out.extend(b"(")
                for k, v in o.items():
                    emit(k)
                    emit(v)
                out.extend(b"u")
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            out.extend(b"K\x00\x85")  # (0,)
            string(b"b")
            out.extend(b"\x87R(")  # _reconstruct(ndarray, (0,), 'b'), then the state tuple
            integer(1)
            out.extend(b"(")
            for d in o.shape:
                integer(d)
            out.extend(b"t")
            out.extend(b"cnumpy\ndtype\n")
            string(b"u1")
            integer(0)
            integer(1)
            out.extend(b"\x87R(")
            integer(3)
            string(b"|")
            out.extend(b"NNN")
            integer(-1)
            integer(-1)
            integer(0)
            out.extend(b"tb\x89")  # dtype state; is_fortran False
            string(np.ascontiguousarray(o).tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(o))

    emit(obj)
    out.extend(b".")
    return bytes(out)


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10_python_members(per_batch: int = 4, seed: int = 0) -> tuple[dict[str, bytes], dict]:
    """``{member path: bytes}`` of a tiny cifar-10-batches-py, and the arrays: {"train": (x, y), "test": ...}."""
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        batch = {"batch_label": f"training batch {i} of 5", "labels": y, "data": x, "filenames": ["a.png"] * per_batch}
        members[f"cifar-10-batches-py/data_batch_{i}"] = py2_pickle(batch)
        xs.append(x)
        ys += y
    xt = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
    yt = [int(v) for v in rng.integers(0, 10, per_batch)]
    members["cifar-10-batches-py/test_batch"] = py2_pickle(
        {"batch_label": "testing batch 1 of 1", "labels": yt, "data": xt}
    )
    members["cifar-10-batches-py/batches.meta"] = py2_pickle(
        {"num_cases_per_batch": per_batch, "label_names": CIFAR10_NAMES, "num_vis": 3072}
    )
    arrays = {
        "train": (np.concatenate(xs).reshape(-1, 3, 32, 32), np.array(ys)),
        "test": (xt.reshape(-1, 3, 32, 32), np.array(yt)),
    }
    return members, arrays


def cifar100_python_members(n: int = 6, seed: int = 1) -> tuple[dict[str, bytes], dict]:
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    arrays = {}
    for split in ("train", "test"):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        coarse = [f // 5 for f in fine]
        out[f"cifar-100-python/{split}"] = py2_pickle(
            {"filenames": ["x.png"] * n, "batch_label": split, "fine_labels": fine, "coarse_labels": coarse, "data": x}
        )
        arrays[split] = (x.reshape(-1, 3, 32, 32), np.array(fine), np.array(coarse))
    out["cifar-100-python/meta"] = py2_pickle(
        {"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": [f"coarse{i}" for i in range(20)]}
    )
    return out, arrays


def cifar10_binary_members(per_batch: int = 3, seed: int = 2) -> tuple[dict[str, bytes], dict]:
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    xs, ys = [], []

    def records(x: np.ndarray, y: np.ndarray) -> bytes:
        return np.concatenate([y[:, None].astype(np.uint8), x.reshape(len(x), -1)], axis=1).tobytes()

    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, per_batch)
        out[f"cifar-10-batches-bin/data_batch_{i}.bin"] = records(x, y)
        xs.append(x)
        ys.append(y)
    xt, yt = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, per_batch)
    out["cifar-10-batches-bin/test_batch.bin"] = records(xt, yt)
    out["cifar-10-batches-bin/batches.meta.txt"] = ("\n".join(CIFAR10_NAMES) + "\n\n").encode()
    return out, {"train": (np.concatenate(xs), np.concatenate(ys)), "test": (xt, yt)}


def cifar100_binary_members(n: int = 5, seed: int = 3) -> tuple[dict[str, bytes], dict]:
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    arrays = {}
    for split in ("train", "test"):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        fine = rng.integers(0, 100, n)
        coarse = fine // 5
        rec = np.concatenate([coarse[:, None], fine[:, None], x.reshape(n, -1)], axis=1).astype(np.uint8)
        out[f"cifar-100-binary/{split}.bin"] = rec.tobytes()
        arrays[split] = (x, fine, coarse)
    out["cifar-100-binary/fine_label_names.txt"] = "\n".join(f"fine{i}" for i in range(100)).encode()
    out["cifar-100-binary/coarse_label_names.txt"] = "\n".join(f"coarse{i}" for i in range(20)).encode()
    return out, arrays


def write_members(root: Path, members: dict[str, bytes]) -> None:
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------------
# Class-folder image trees


def write_image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (10, 12)) -> None:
    """An RGB image of (W, H) ``size``: ``color`` with a one-pixel white mark at the top-left corner."""
    from PIL import Image

    img = Image.new("RGB", size, color)
    img.putpixel((0, 0), (255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


COLORS = {"red": (200, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 200)}


def write_tree(top: Path, per_class: int = 5, ext: str = ".png") -> None:
    """``top/<class>/<i>.<ext>`` for the classes red, green, blue."""
    for name, color in COLORS.items():
        for i in range(per_class):
            write_image(top / name / f"{i}{ext}", color, size=(10 + i, 12))


# ------------------------------------------------------------------------------------------------------
# Local HTTP server


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        srv = self.server
        data = srv.files.get(self.path)
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        if data is None:
            self.send_error(404)
            return
        start = 0
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if m and srv.ranges:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.truncate.get(self.path, 0) > 0:
            srv.truncate[self.path] -= 1
            self.wfile.write(body[: len(body) // 2])  # announce everything, send half, hang up
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.truncate: dict[str, int] = {}  # path -> how many more responses to cut in half
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = True  # honour Range headers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def http_server() -> Iterator[_Server]:
    """A threaded HTTP server on 127.0.0.1 (a free port) serving ``server.files``; Range supported."""
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


# ------------------------------------------------------------------------------------------------------
# Checks of the writers themselves


def test_py2_pickle_is_protocol_2_with_only_numpy_globals() -> None:
    data = py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 2]})
    ops = list(pickletools.genops(data))
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    assert globals_ == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    assert not any(op.name in ("BINUNICODE", "BINBYTES") for op, _, _ in ops)  # Python 2 str only


def test_idx_bytes_header() -> None:
    raw = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    assert raw[:4] == b"\x00\x00\x08\x03" and struct.unpack(">3I", raw[4:16]) == (2, 28, 28)
    assert len(raw) == 16 + 2 * 28 * 28
