"""CIFAR-10 and CIFAR-100: the python version (pickled batches) and the binary version, extracted or as ``.tar.gz``.

Layouts (as published at https://www.cs.toronto.edu/~kriz/cifar.html), under ``data.root``:

- CIFAR-10 python: ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
  ``batches.meta``; or the archive ``cifar-10-python.tar.gz``.
- CIFAR-10 binary: ``cifar-10-batches-bin/`` with ``data_batch_1.bin`` .. ``data_batch_5.bin``,
  ``test_batch.bin``, ``batches.meta.txt``; or ``cifar-10-binary.tar.gz``. A record is 1 label byte then
  3,072 pixel bytes.
- CIFAR-100 python: ``cifar-100-python/`` with ``train``, ``test``, ``meta``; or ``cifar-100-python.tar.gz``.
- CIFAR-100 binary: ``cifar-100-binary/`` with ``train.bin``, ``test.bin``, ``fine_label_names.txt``,
  ``coarse_label_names.txt``; or ``cifar-100-binary.tar.gz``. A record is a coarse and a fine label byte,
  then 3,072 pixel bytes.

Pixels are stored channel-planar (1,024 red, 1,024 green, 1,024 blue, each row-major), so a row reshapes
directly to ``(3, 32, 32)``. ``data.root`` may also name one of the folders or archives itself.

The python batches are pickles. Unpickling runs whatever callables the file names, so they are read with a
restricted unpickler that admits only what those files contain (NumPy's array reconstructor, ``ndarray`` and
``dtype``): a hostile file fails with a :class:`DataError` instead of running code. Archives are read member by
member in memory, never extracted here.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pydantic import Field

from trainlab.data.base import Dataset, Split
from trainlab.data.catalog import CIFAR10_CLASSES, IMAGE_BYTES, LAYOUTS, MIRRORS, Layout, layout_text
from trainlab.data.idx import size_text
from trainlab.data.options import SourceOptions
from trainlab.data.paths import cache_dir_for, default_root, files_fingerprint
from trainlab.errors import DataError

try:
    from numpy._core.multiarray import _reconstruct  # NumPy >= 2
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig


# Largest file or archive member read into memory: 1 GiB, 6x CIFAR-100's training batch (154 MB, the largest).
# A bigger one is not a CIFAR batch (a wrong file, or an archive member that would inflate without bound).
MAX_MEMBER_BYTES = 1024**3


def _too_large(where: str, size: int) -> DataError:
    """The error for a file or member of ``size`` bytes over :data:`MAX_MEMBER_BYTES`."""
    return DataError(
        f"{where}: {size} bytes, more than the {size_text(MAX_MEMBER_BYTES)} a CIFAR batch may be (the largest, "
        "CIFAR-100's train, is 154 MB): not a CIFAR file, or a corrupt one"
    )


class Cifar100Options(SourceOptions):
    """``cifar100``'s option: fine or coarse labels."""

    cifar100_labels: Literal["fine", "coarse"] = Field(
        "fine", description="cifar100: the 100 fine classes or the 20 coarse superclasses."
    )


# ------------------------------------------------------------------------------------------------------
# Restricted unpickling

# (module, name) -> object: exactly the globals a CIFAR python batch refers to. The files were written by
# Python 2 with NumPy 1.x (numpy.core); a copy re-saved under NumPy 2 names numpy._core instead.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a callable or class a CIFAR batch does not contain."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR python batches: any global other than NumPy's array pieces is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(
                f"refusing to load global '{module}.{name}': a CIFAR batch only holds NumPy arrays, lists, "
                "numbers and strings"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobal("refusing a persistent id: not part of a CIFAR batch")


def restricted_loads(data: bytes, where: str) -> dict[str, Any]:
    """Unpickle one CIFAR python batch (a dict) with :class:`RestrictedUnpickler`; keys come back as ``str``."""
    try:
        # latin1: the files are Python 2 pickles; their byte strings (array buffers included) load unchanged.
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except RefusedGlobal as exc:
        raise DataError(f"{where}: not a CIFAR batch: {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
    ) as exc:
        raise DataError(f"{where}: truncated or corrupt pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


# ------------------------------------------------------------------------------------------------------
# Finding the files: a folder or an archive, python or binary


@dataclass
class Found:
    """Where one layout's members are: read with ``read(member)``."""

    layout: Layout
    where: Path  # the folder or the archive
    members: dict[str, bytes] | None = None  # archive members read in memory (None: read from the folder)

    def read(self, member: str) -> bytes:
        """The bytes of ``member`` (a file in the folder, or an archive member held in memory)."""
        if self.members is None:
            path = self.where / member
            try:
                size = path.stat().st_size
                if size > MAX_MEMBER_BYTES:  # checked before reading it into memory
                    raise _too_large(str(path), size)
                return path.read_bytes()
            except OSError as exc:
                raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        key = f"{self.layout.folder}/{member}"
        if key not in self.members:
            raise DataError(f"{self.where}: the archive has no member {key}")
        return self.members[key]

    def has(self, member: str) -> bool:
        """Whether ``member`` is there."""
        if self.members is None:
            return (self.where / member).is_file()
        return f"{self.layout.folder}/{member}" in self.members

    def label(self, member: str) -> str:
        """Where ``member`` was read from, for error messages."""
        return f"{self.where}/{member}" if self.members is None else f"{self.where}:{self.layout.folder}/{member}"

    def files(self) -> list[Path]:
        """The files on disk this data comes from (for the fingerprint)."""
        if self.members is not None:
            return [self.where]
        return [self.where / m for m in (*self.layout.train, *self.layout.test, *self.layout.meta) if self.has(m)]


def _folder_complete(folder: Path, layout: Layout) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in (*layout.train, *layout.test))


def locate(root: Path, name: str) -> tuple[Layout, Path, bool] | None:
    """(layout, folder or archive, is_archive) of the first complete version found, python before binary."""
    for layout in LAYOUTS[name]:
        for folder in (root / layout.folder, root):
            if _folder_complete(folder, layout):
                return layout, folder, False
    for layout in LAYOUTS[name]:
        archive = root if root.is_file() and root.name == layout.archive else root / layout.archive
        if archive.is_file():
            return layout, archive, True
    return None


def cifar_present(root: Path, name: str) -> bool:
    """Whether a complete version of ``name`` is found under ``root``."""
    return locate(root, name) is not None


def _read_archive(archive: Path, layout: Layout) -> dict[str, bytes]:
    """Every member this layout needs, read in one sequential pass (a .tar.gz cannot seek cheaply)."""
    wanted = {f"{layout.folder}/{m}" for m in (*layout.train, *layout.test, *layout.meta)}
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    if member.size > MAX_MEMBER_BYTES:  # the header's size, before a byte is inflated
                        raise _too_large(f"{archive}:{name}", member.size)
                    f = tar.extractfile(member)
                    if f is not None:
                        out[name] = f.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive}: cannot read the archive ({exc}); it is truncated or corrupt") from None
    missing = sorted(w for w in wanted if w not in out and not w.endswith(layout.meta))
    if missing:
        raise DataError(f"{archive}: the archive lacks {', '.join(missing)}")
    return out


# ------------------------------------------------------------------------------------------------------
# Reading batches


def _check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = int(np.argmax((labels < 0) | (labels >= num_classes)))
        raise DataError(f"{where}: label {int(labels[bad])} of image {bad} is out of range 0..{num_classes - 1}")


def read_python_batch(data: bytes, where: str, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> ``(images (n, 3, 32, 32) uint8, labels (n,) int64)``."""
    batch = restricted_loads(data, where)
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{where}: a CIFAR batch needs keys 'data' and '{label_key}'; found {sorted(batch)}")
    images = batch["data"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2:
        raise DataError(f"{where}: 'data' must be a 2-D uint8 array, got {type(images).__name__}")
    if images.shape[1] != IMAGE_BYTES:
        raise DataError(f"{where}: 'data' rows have {images.shape[1]} values; expected {IMAGE_BYTES} (3x32x32)")
    try:
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: '{label_key}' is not a list of integers") from None
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{where}: {len(images)} images but {labels.size} labels in '{label_key}'")
    _check_labels(labels, num_classes, where)
    return images.reshape(-1, 3, 32, 32), labels


def read_binary_batch(
    data: bytes, where: str, label_bytes: int, label_index: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One binary file of fixed-size records -> ``(images (n, 3, 32, 32) uint8, labels (n,) int64)``."""
    record = label_bytes + IMAGE_BYTES
    if len(data) == 0 or len(data) % record:
        raise DataError(
            f"{where}: {len(data)} bytes is not a whole number of {record}-byte records "
            f"({label_bytes} label byte{'s' if label_bytes > 1 else ''} + {IMAGE_BYTES} pixels): truncated or "
            "not a CIFAR binary file"
        )
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = rows[:, label_index].astype(np.int64)
    _check_labels(labels, num_classes, where)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32).copy(), labels


def _class_names(found: Found, name: str, coarse: bool, num_classes: int) -> list[str]:
    layout = found.layout
    names: list[str] | None = None
    if layout.kind == "python" and found.has(layout.meta[0]):
        meta = restricted_loads(found.read(layout.meta[0]), found.label(layout.meta[0]))
        key = "label_names" if name == "cifar10" else ("coarse_label_names" if coarse else "fine_label_names")
        value = meta.get(key)
        if isinstance(value, list):
            names = [v.decode() if isinstance(v, bytes) else str(v) for v in value]
    elif layout.kind == "binary":
        member = layout.meta[0] if name == "cifar10" or not coarse else layout.meta[1]
        if found.has(member):
            names = [line.strip() for line in found.read(member).decode("utf-8", "replace").splitlines()]
            names = [n for n in names if n]
    if names is None or len(names) != num_classes:
        names = CIFAR10_CLASSES if name == "cifar10" else [f"class{i}" for i in range(num_classes)]
    return names


def load_cifar(cfg: DataConfig, name: str) -> Dataset:
    """Load ``cifar10`` or ``cifar100`` from ``data.root`` (default: the trainlab data folder)."""
    root = Path(cfg.root).expanduser() if cfg.root else default_root(name)
    hit = locate(root, name)
    if hit is None:
        raise DataError(missing_message(name, root))
    layout, where, is_archive = hit
    found = Found(layout, where, _read_archive(where, layout) if is_archive else None)
    # cifar10 has no options; its fingerprint has always carried cifar100_labels' default ("fine"), kept so
    # that statistics cached beside the data stay valid.
    opts = cfg.options if name == "cifar100" else Cifar100Options()
    assert isinstance(opts, Cifar100Options)  # the registry gives cifar100 these options
    coarse = name == "cifar100" and opts.cifar100_labels == "coarse"
    num_classes = 10 if name == "cifar10" else (20 if coarse else 100)

    def read(members: tuple[str, ...]) -> Split:
        xs, ys = [], []
        for m in members:
            data, label = found.read(m), found.label(m)
            if layout.kind == "python":
                key = "labels" if name == "cifar10" else ("coarse_labels" if coarse else "fine_labels")
                x, y = read_python_batch(data, label, key, num_classes)
            else:
                label_bytes = 1 if name == "cifar10" else 2
                index = 0 if (name == "cifar10" or coarse) else 1
                x, y = read_binary_batch(data, label, label_bytes, index, num_classes)
            xs.append(x)
            ys.append(y)
        return Split(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)))

    train, test = read(layout.train), read(layout.test)
    return Dataset(
        name=name,
        train=train,
        test=test,
        classes=_class_names(found, name, coarse, num_classes),
        source=str(where),
        fingerprint=files_fingerprint(found.files(), extra=[name, layout.kind, opts.cifar100_labels]),
        cache_dir=cache_dir_for(root),
    )


def missing_message(name: str, root: Path, reason: str = "") -> str:
    """What is missing, where it was looked for, where to get it and where to put it."""
    py = LAYOUTS[name][0]
    why = f" ({reason})" if reason else ""
    return (
        f"{name}: no CIFAR files found in {root}{why}. Expected {layout_text(name)}. Download "
        f"{MIRRORS[0]}{py.archive} and place it in {root} (as it is, or extracted), or run "
        f"`trainlab data get {name} --root {root}`, or set data.root to the folder that holds it."
    )
