"""The numerics of a run: which precision matmuls and convolutions really run in, set and recorded.

``train.precision``:

- ``default``: torch's own settings, untouched, and recorded as they are. On CUDA torch runs fp32 matmuls
  exactly (TF32 off) but cuDNN convolutions in TF32 — which is why an fp32-matmul peak was the wrong
  denominator for a ResNet's MFU. On CPU: fp32.
- ``fp32``: no TF32 anywhere (matmuls and convolutions in IEEE fp32).
- ``tf32``: TF32 matmuls and convolutions on CUDA (the CPU has no TF32: it runs fp32, and says so).
- ``bf16`` / ``fp16``: autocast to that type for the forward pass and the loss (matmuls and convolutions in
  it, reductions and the loss in fp32 as autocast decides); weights, gradients and optimizer state stay fp32.
  fp16 adds a gradient scaler (its small range underflows gradients otherwise); bf16 needs none.

:func:`precision_scope` sets the backend flags for the run and restores them afterwards, so an inline run does
not leak its settings into the next. The plan it yields says what matmuls and convolutions run in; that is what
the run records and what its MFU's peak is probed in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from trainlab.measure.peak import set_tf32, tf32_state

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_SHOW = {"fp32": "fp32", "tf32": "TF32", "bf16": "bf16", "fp16": "fp16"}


@dataclass(frozen=True)
class Precision:
    """What a run's precision setting means on its device."""

    name: str  # train.precision as asked
    device_type: str
    matmul: str  # what matmuls run in: fp32 | tf32 | bf16 | fp16
    conv: str  # what convolutions run in
    autocast_dtype: torch.dtype | None = None

    @property
    def scaled(self) -> bool:
        """Whether gradients need a scaler (fp16)."""
        return self.autocast_dtype is torch.float16

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast region of the forward pass and loss (a no-op without autocast)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        """A gradient scaler for fp16, else None."""
        return torch.amp.GradScaler(self.device_type) if self.scaled else None

    def describe(self) -> str:
        """One line for the report, e.g. 'default: fp32 matmuls, TF32 convolutions'."""
        if self.autocast_dtype is not None:
            return f"{self.name} autocast: matmuls and convolutions in {self.matmul}; weights and optimizer fp32"
        if self.name == "tf32" and self.matmul == "fp32":
            return "tf32 asked, but this device has no TF32: matmuls and convolutions in fp32"
        if self.matmul == self.conv:
            return f"{self.name}: matmuls and convolutions in {_SHOW[self.matmul]}"
        return f"{self.name}: {_SHOW[self.matmul]} matmuls, {_SHOW[self.conv]} convolutions"

    def figures(self) -> dict[str, str]:
        """What the run records about its numerics."""
        return {
            "precision": self.name,
            "precision_effective": self.describe(),
            "matmul_precision": self.matmul,
            "conv_precision": self.conv,
        }


def plan(name: str, device: torch.device) -> Precision:
    """What ``train.precision = name`` means on ``device``, given the backends' current settings."""
    if name in DTYPES:
        short = name
        return Precision(name, device.type, short, short, DTYPES[name])
    if device.type != "cuda":  # the CPU has no TF32: everything that is not autocast runs in fp32
        return Precision(name, device.type, "fp32", "fp32")
    if name == "fp32":
        return Precision(name, device.type, "fp32", "fp32")
    if name == "tf32":
        return Precision(name, device.type, "tf32", "tf32")
    mm, cv = tf32_state()  # default: whatever torch is set to
    return Precision(name, device.type, "tf32" if mm else "fp32", "tf32" if cv else "fp32")


@contextlib.contextmanager
def precision_scope(name: str, device: torch.device) -> Iterator[Precision]:
    """Set the backends for ``train.precision = name`` on ``device``; restore them on exit."""
    if device.type != "cuda" or name not in ("fp32", "tf32"):
        yield plan(name, device)
        return
    saved = tf32_state()
    set_tf32(name == "tf32", name == "tf32")
    try:
        yield plan(name, device)
    finally:
        set_tf32(*saved)
