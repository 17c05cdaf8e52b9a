"""Splits given as Python objects, made into the in-memory :class:`~trainlab.data.base.Split` every source
produces, with the sample shape, the task and the classes inferred and checked.

A split is given as ``(x, y)`` tensors or NumPy arrays, or as a sequence of ``(x, y)`` items (a map-style
``torch.utils.data.Dataset``, a list of pairs), each ``x`` a tensor, an array, a number or a PIL image. Inputs:

- ``uint8`` ``(N, C, H, W)`` are images (pixel values 0..255), as every image source holds them; ``(N, H, W)``
  gets a channel, ``(N, 1, H, W)``; a PIL image becomes ``uint8 (C, H, W)`` (L: 1 channel, RGB: 3, RGBA: 4;
  other modes are converted to RGB, 32-bit integer and float modes to one float channel);
- anything else numeric is ``float32``: ``(N, F)`` feature vectors, ``(N,)`` one feature, ``(N, C, H, W)`` float
  images (``(N, H, W)`` gets a channel).

Targets: integers (or booleans) are class indices 0..K-1, a classification task; floats are a regression task
with ``(N,)`` or ``(N, T)`` targets. Every problem is a :class:`~trainlab.errors.DataError` starting with
``where`` (the data function, or the file), naming the split and what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from trainlab.data.base import Split
from trainlab.errors import DataError

# A split's name as messages say it, in order; "val" is optional.
SPLITS = ("train", "test", "val")
# PIL modes held as they are (uint8 channels), and those read as one float channel.
PIL_UINT8 = {"L": 1, "RGB": 3, "RGBA": 4}
PIL_FLOAT = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
MAX_NAMED = 5  # most classes or values one message lists


@dataclass(frozen=True)
class Materialized:
    """The splits of a dataset given as objects, converted and checked, with what was inferred from them."""

    train: Split
    test: Split
    val: Split | None
    classes: list[str]
    task: Literal["classification", "regression"]
    features: list[str] = field(default_factory=list)

    @property
    def splits(self) -> dict[str, Split]:
        """Every split by name (``val`` only when given)."""
        out = {"train": self.train, "test": self.test}
        return out if self.val is None else {**out, "val": self.val}


def describe(value: Any) -> str:
    """A few words for a value of the wrong kind: its type, and its length or keys."""
    if isinstance(value, dict):
        keys = ", ".join(map(str, list(value)[:MAX_NAMED]))
        return f"a dict (keys {keys})" if value else "an empty dict"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} value{'' if len(value) == 1 else 's'}"
    if isinstance(value, torch.Tensor | np.ndarray):
        return f"a {type(value).__name__} of shape {tuple(value.shape)}"
    return "None" if value is None else f"a {type(value).__module__}.{type(value).__qualname__}"


def is_array(value: Any) -> bool:
    """Whether ``value`` is a tensor or a NumPy array (one half of an ``(x, y)`` pair)."""
    return isinstance(value, torch.Tensor | np.ndarray)


def pil_tensor(img: Image.Image) -> torch.Tensor:
    """A PIL image as ``uint8 (C, H, W)`` (or ``float32 (1, H, W)`` for integer and float modes)."""
    if img.mode in PIL_FLOAT:
        arr = np.asarray(img, dtype=np.float32)[None]
    else:
        if img.mode not in PIL_UINT8:
            img = img.convert("L" if img.mode in ("1", "LA", "La", "I;16") else "RGB")
        arr = np.asarray(img, dtype=np.uint8)
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def as_tensor(value: Any, what: str) -> torch.Tensor:
    """``value`` (tensor, array, PIL image, number, nested list of numbers) as a CPU tensor; ``what`` names it."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
    elif isinstance(value, Image.Image):
        return pil_tensor(value)
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):  # ragged nested lists
            raise DataError(f"{what} is {describe(value)} of values of different lengths") from None
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{what} is {describe(value)}, not numbers (a tensor, an array, a number or an image)")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise DataError(f"{what} holds {t.dtype} values; give real numbers")
    return t


def stack(values: Sequence[Any], what: str) -> torch.Tensor:
    """Stack per-sample values into one tensor ``(N, ...)``; samples of different shapes are an error.

    PIL images of different modes (some grey, some colour) are all converted to RGB first.
    """
    if values and all(isinstance(v, Image.Image) for v in values) and len({v.mode for v in values}) > 1:
        values = [v.convert("RGB") for v in values]
    tensors = []
    for i, value in enumerate(values):
        t = as_tensor(value, f"{what} of item {i}")
        if tensors and t.shape != tensors[0].shape:
            hint = " (resize the images to one size in your function)" if isinstance(value, Image.Image) else ""
            raise DataError(
                f"{what} of item {i} has shape {tuple(t.shape)} but that of item 0 {tuple(tensors[0].shape)}{hint}"
            )
        tensors.append(t)
    if not tensors:
        return torch.zeros(0)
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        common = torch.float32 if any(t.is_floating_point() for t in tensors) else torch.int64
        tensors = [t.to(common) for t in tensors]
    return torch.stack(tensors)


def items_split(items: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` stacked from a sequence of ``(x, y)`` items (a map-style torch ``Dataset``, a list of pairs)."""
    try:
        n = len(items)
    except TypeError:
        raise DataError(f"{where} is {describe(items)} without a length") from None
    xs, ys = [], []
    for i in range(n):
        try:
            item = items[i]
        except Exception as exc:  # the user's __getitem__ failed: a message, not a traceback
            raise DataError(f"{where}: reading item {i} raised {type(exc).__name__}: {exc}") from None
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise DataError(f"{where}: item {i} is {describe(item)}, not an (x, y) pair")
        xs.append(item[0])
        ys.append(item[1])
    return stack(xs, f"{where}: x"), stack(ys, f"{where}: y")


def _inputs(x: torch.Tensor, where: str) -> torch.Tensor:
    """``x`` as the loaders take it: uint8 ``(N, C, H, W)`` images, or float32 ``(N, F)`` / ``(N, C, H, W)``."""
    if x.dim() == 0:
        raise DataError(f"{where}: x is a single value, not one input per sample")
    if x.dim() == 1:
        x = x[:, None]  # one feature per sample
    if x.dim() == 3:
        x = x[:, None]  # (N, H, W) images: one channel
    if x.dim() > 4:
        raise DataError(
            f"{where}: samples of shape {tuple(x.shape[1:])}; give (C, H, W) images or (F,) feature vectors"
        )
    if x.dtype == torch.uint8 and x.dim() == 4:
        if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            raise DataError(
                f"{where}: images of shape {tuple(x.shape[1:])} look like (H, W, C); give (C, H, W), e.g."
                " x.permute(0, 3, 1, 2) or np.transpose(x, (0, 3, 1, 2))"
            )
        return x.contiguous()
    x = x.to(torch.float32).contiguous()
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).flatten(1).any(dim=1).nonzero()[0, 0])
        raise DataError(f"{where}: x holds NaN or infinite values (first in sample {bad})")
    return x


def _targets(y: torch.Tensor, where: str) -> torch.Tensor:
    """``y`` as int64 ``(N,)`` class indices (integers, booleans) or float32 ``(N,)`` / ``(N, T)`` targets."""
    if y.dim() == 0:
        raise DataError(f"{where}: y is a single value, not one label per sample")
    if not y.is_floating_point():
        if y.dim() == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.dim() != 1:
            raise DataError(
                f"{where}: integer labels of shape {tuple(y.shape[1:])} per sample; give one class index per"
                " sample, (N,) (or float targets for a regression with several outputs)"
            )
        return y.to(torch.int64).contiguous()
    if y.dim() > 2:
        raise DataError(f"{where}: targets of shape {tuple(y.shape[1:])} per sample; give (N,) or (N, T)")
    y = y.to(torch.float32).contiguous()
    if not bool(torch.isfinite(y).all()):
        raise DataError(f"{where}: y holds NaN or infinite targets")
    return y


def _kind(x: torch.Tensor) -> str:
    return "uint8 images" if x.dtype == torch.uint8 else "float32 values"


def finish(
    parts: dict[str, tuple[torch.Tensor, torch.Tensor]],
    where: str,
    classes: list[str] | None = None,
    features: list[str] | None = None,
    classes_hint: str = "",
) -> Materialized:
    """Convert and check each split's ``(x, y)`` (``parts``: train, test, optionally val) against the others:
    no split empty, as many labels as inputs, one sample shape and kind, one task, classes 0..K-1.

    ``classes_hint`` ends the message for a class without a sample (how to declare the class names)."""
    split: dict[str, Split] = {}
    for name in [s for s in SPLITS if s in parts]:
        raw_x, raw_y = parts[name]
        at = f"{where}, the {name} split"
        if len(raw_x) == 0:
            raise DataError(f"{where}: the {name} split is empty")
        if len(raw_x) != len(raw_y):
            raise DataError(f"{at} has {len(raw_x)} inputs but {len(raw_y)} labels")
        split[name] = Split(_inputs(raw_x, at), _targets(raw_y, at))
    train = split["train"]
    integer = not train.y.is_floating_point()
    for name, s in split.items():
        if s.x.shape[1:] != train.x.shape[1:]:
            raise DataError(
                f"{where}: train samples have shape {tuple(train.x.shape[1:])} but {name} samples"
                f" {tuple(s.x.shape[1:])}"
            )
        if s.x.dtype != train.x.dtype:
            raise DataError(f"{where}: train inputs are {_kind(train.x)} but {name} inputs {_kind(s.x)}")
        if s.y.is_floating_point() == integer:
            kinds = ("integers (classification)", "floats (regression)")
            raise DataError(
                f"{where}: train labels are {kinds[not integer]} but {name} labels {kinds[integer]}; give one kind"
            )
        if s.y.shape[1:] != train.y.shape[1:]:
            raise DataError(
                f"{where}: train targets have shape {tuple(train.y.shape[1:])} per sample but {name} targets"
                f" {tuple(s.y.shape[1:])}"
            )
    names: list[str] = []
    if integer:
        names = _classes(split, where, classes, classes_hint)
    return Materialized(
        split["train"],
        split["test"],
        split.get("val"),
        names,
        "classification" if integer else "regression",
        list(features or []),
    )


def _classes(split: dict[str, Split], where: str, classes: list[str] | None, hint: str) -> list[str]:
    """The class names: ``classes`` when given, else ``"0"``..``"K-1"``; every label must be one of them."""
    for name, s in split.items():
        low = int(s.y.min())
        if low < 0:
            raise DataError(f"{where}: class labels are 0..K-1, but the {name} split has label {low}")
    high = max(int(s.y.max()) for s in split.values())
    if classes is not None:
        if high >= len(classes):
            raise DataError(
                f"{where}: label {high} but {len(classes)} class names given; labels are 0..{len(classes) - 1}"
            )
        k = len(classes)
    else:
        present = torch.unique(torch.cat([s.y for s in split.values()]))
        k = high + 1
        missing = sorted(set(range(k)) - set(present.tolist()))
        if missing:
            shown = ", ".join(map(str, missing[:MAX_NAMED])) + (", ..." if len(missing) > MAX_NAMED else "")
            raise DataError(
                f"{where}: class labels are 0..K-1 with a sample of each, but the labels run"
                f" {int(present.min())}..{high} and class {shown} has no sample{hint}"
            )
    if k < 2:
        raise DataError(f"{where}: every label is 0; a classification needs at least 2 classes")
    return list(classes) if classes is not None else [str(i) for i in range(k)]


__all__ = ["SPLITS", "Materialized", "as_tensor", "describe", "finish", "is_array", "items_split", "stack"]
