"""``folder``: your own images, one subfolder per class.

Layouts under ``data.root``:

- ``train/<class>/*.png|jpg|...`` and ``test/<class>/...``: the given split (every test class must also be a
  training class);
- ``<class>/*.png|jpg|...``: one tree, split once by a seeded, stratified ``data.test_fraction``.

Every image is decoded with Pillow once, converted to RGB (or grayscale with ``data.grayscale``), resized to
``data.image_size`` (bilinear, antialiased by Pillow) and stored as uint8. The decoded splits are cached as one
tensor file beside the data (``<root>/.trainlab-cache/folder-<key>.pt``, else under the data home when the root
is read-only); the key covers every image's path, size and modification time and the decoding options, so
changing, adding or removing an image rebuilds the cache. The cache is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pydantic import Field, PositiveInt, field_validator

from trainlab.data.base import Dataset, Split
from trainlab.data.options import HeldOutSplit, square_size
from trainlab.data.paths import cache_dir_for, cache_read_paths, files_fingerprint, write_cache_file
from trainlab.data.split import stratified_split
from trainlab.errors import ConfigError, DataError

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
CACHE_VERSION = 1  # bump when the decoding changes, so old caches are not reused
# Most the decoded splits may take (uint8, N x C x H x W): 32 GiB, e.g. 1.28 million 3x64x64 images (15.7 GB)
# twice over. A larger data.image_size is refused before anything is decoded or allocated.
MAX_DECODED_BYTES = 32 * 1024**3


class FolderOptions(HeldOutSplit):
    """``folder``'s options: the decoded image size and colour mode, and the split of a single tree."""

    image_size: list[PositiveInt] | None = Field(
        None,
        description="folder: size [H, W] (one number: square) every image is decoded and resized to once, "
        "then cached; required for folder.",
    )
    grayscale: bool = Field(False, description="folder: decode images as 1-channel grayscale instead of RGB.")

    @field_validator("image_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return square_size(v)

    def check(self, cfg: DataConfig) -> None:
        """``data.root`` and ``data.image_size`` are required."""
        if not cfg.root:
            raise ValueError("data.root is required for the folder dataset: the top folder of the image tree")
        if self.image_size is None:
            raise ValueError("data.image_size is required for the folder dataset, e.g. image_size = [64, 64]")


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def scan_tree(top: Path) -> dict[str, list[Path]]:
    """``{class name: sorted image files}`` of a class-per-subfolder tree; an empty class folder is an error."""
    if not top.is_dir():
        raise DataError(f"{top}: not a folder; expected one subfolder per class holding its images")
    classes = sorted(d for d in top.iterdir() if d.is_dir() and _visible(d))
    if not classes:
        raise DataError(f"{top}: no class subfolders; expected {top}/<class>/<image files>")
    tree: dict[str, list[Path]] = {}
    for d in classes:
        files = sorted(p for p in d.rglob("*") if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(
                f"{d}: class folder '{d.name}' holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                "add images or remove the folder"
            )
        tree[d.name] = files
    return tree


def decode_image(path: Path, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    """One image -> ``(C, H, W) uint8`` at ``size`` (H, W); a file Pillow cannot decode is a DataError naming it."""
    try:
        with Image.open(path) as img:
            img = img.convert("L" if grayscale else "RGB")
            if img.size != (size[1], size[0]):  # Pillow sizes are (W, H)
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot decode the image ({exc}); fix or remove the file") from None
    return arr[None, :, :] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _decode_all(files: list[Path], size: tuple[int, int], grayscale: bool) -> torch.Tensor:
    channels = 1 if grayscale else 3
    out = np.empty((len(files), channels, size[0], size[1]), dtype=np.uint8)  # (N, C, H, W)
    for i, p in enumerate(files):
        out[i] = decode_image(p, size, grayscale)
    return torch.from_numpy(out)


def load_folder(cfg: DataConfig) -> Dataset:
    """Load (or read from the cache) a class-per-subfolder image tree (options: :class:`FolderOptions`)."""
    opts = cfg.options
    assert isinstance(opts, FolderOptions)  # the registry gives folder these options
    if not cfg.root:
        raise DataError("folder: data.root must name the top folder of the image tree")
    if opts.image_size is None:
        raise DataError("folder: data.image_size is required, e.g. image_size = [64, 64]")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"folder: data.root {root} is not a folder")
    size = (int(opts.image_size[0]), int(opts.image_size[1]))
    presplit = (root / "train").is_dir() and (root / "test").is_dir()
    if presplit:
        train_tree, test_tree = scan_tree(root / "train"), scan_tree(root / "test")
        extra = sorted(set(test_tree) - set(train_tree))
        if extra:
            raise DataError(f"{root / 'test'}: classes {extra} have no folder in {root / 'train'}")
        classes = sorted(train_tree)
        all_files = [p for t in (train_tree, test_tree) for files in t.values() for p in files]
    else:
        tree = scan_tree(root)
        classes = sorted(tree)
        all_files = [p for files in tree.values() for p in files]

    channels = 1 if opts.grayscale else 3
    decoded = len(all_files) * channels * size[0] * size[1]  # bytes of uint8, Python ints
    if decoded > MAX_DECODED_BYTES:
        raise ConfigError(
            f"data.image_size {list(size)} for the {len(all_files)} images in {root} decodes to "
            f"{decoded / 1024**3:,.1f} GiB, more than the {MAX_DECODED_BYTES / 1024**3:,.0f} GiB allowed; choose a "
            "smaller data.image_size"
        )

    options = {
        "v": CACHE_VERSION,
        "size": size,
        "grayscale": opts.grayscale,
        "presplit": presplit,
        "test_fraction": None if presplit else opts.test_fraction,
        "split_seed": opts.split_seed,
    }
    key = files_fingerprint(all_files, extra=options, base=root)
    cache_dir = cache_dir_for(root)
    filename = f"folder-{key[:24]}.pt"
    cached = _read_cache(cache_read_paths(cache_dir, filename))
    if cached is not None and cached.get("classes") == classes:
        train = Split(cached["train_x"], cached["train_y"])
        test = Split(cached["test_x"], cached["test_y"])
    else:
        index = {c: i for i, c in enumerate(classes)}
        if presplit:
            tr_files = [p for c in classes for p in train_tree[c]]
            tr_labels = np.array([index[c] for c in classes for _ in train_tree[c]], dtype=np.int64)
            te_files = [p for c in sorted(test_tree) for p in test_tree[c]]
            te_labels = np.array([index[c] for c in sorted(test_tree) for _ in test_tree[c]], dtype=np.int64)
            # Files are in class order; a fixed shuffle makes head(n) (data.limit_*) a mix of classes.
            rng = np.random.default_rng(opts.split_seed)
            tr_order, te_order = rng.permutation(len(tr_files)), rng.permutation(len(te_files))
            tr_files = [tr_files[i] for i in tr_order]
            te_files = [te_files[i] for i in te_order]
            tr_labels, te_labels = tr_labels[tr_order], te_labels[te_order]
        else:
            files = [p for c in classes for p in tree[c]]
            labels = np.array([index[c] for c in classes for _ in tree[c]], dtype=np.int64)
            tr_idx, te_idx = stratified_split(labels, opts.test_fraction, opts.split_seed)
            tr_files, te_files = [files[i] for i in tr_idx], [files[i] for i in te_idx]
            tr_labels, te_labels = labels[tr_idx], labels[te_idx]
        train = Split(_decode_all(tr_files, size, opts.grayscale), torch.from_numpy(tr_labels))
        test = Split(_decode_all(te_files, size, opts.grayscale), torch.from_numpy(te_labels))
        payload = {
            "classes": classes,
            "train_x": train.x,
            "train_y": train.y,
            "test_x": test.x,
            "test_y": test.y,
        }
        write_cache_file(cache_dir, filename, lambda p: torch.save(payload, p))
    return Dataset(
        name="folder",
        train=train,
        test=test,
        classes=classes,
        source=str(root),
        fingerprint=key,
        cache_dir=cache_dir,
    )


def _read_cache(paths: list[Path]) -> dict | None:
    for p in paths:
        if p.is_file():
            try:
                data = torch.load(p, map_location="cpu", weights_only=True)
            except Exception:  # a corrupt or foreign cache is ignored and rebuilt
                continue
            if isinstance(data, dict) and {"classes", "train_x", "train_y", "test_x", "test_y"} <= set(data):
                return data
    return None
