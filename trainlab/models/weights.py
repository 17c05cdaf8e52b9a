"""Pretrained weights and frozen layers, shared by the families that take them (``alexnet``, ``resnet18``).

Loading is by parameter name: a checkpoint saved by torchvision (``alexnet-owt-*.pth``, ``resnet18-*.pth``)
loads because those families keep torchvision's names. The file is read with ``torch.load(...,
weights_only=True)``, which unpickles tensors and plain containers only, never arbitrary objects.

Every key of the checkpoint and of the model ends in exactly one bucket of a :class:`LoadReport`:

- ``loaded``: same name, same shape: copied.
- ``replaced``: a key of the model's new head whose shape differs (the checkpoint's head was trained for
  another class count): kept freshly initialised. This is what fine-tuning expects, not an error.
- ``adapted``: the first convolution of an RGB checkpoint loaded into a one-channel model: the weights are
  summed over the three input channels, which is exactly the RGB network applied to the grey image
  repeated on three channels (a convolution is linear in its input).
- ``missing`` (in the model, not in the file), ``unexpected`` (in the file, not in the model) and
  ``mismatched`` (same name, other shape, not the head): errors when ``strict``; otherwise skipped, the
  model keeps its initial values there, and the report says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from trainlab.errors import ConfigError, did_you_mean
from trainlab.schema import study_relative

log = logging.getLogger(__name__)

# Attribute under which a built model keeps the report of its pretrained load (read by `trainlab profile`).
REPORT_ATTR = "trainlab_weights"

# Containers under which common checkpoint formats keep the state_dict (trainlab's own checkpoints use "model").
_NESTED_KEYS = ("state_dict", "model_state_dict", "model")


@dataclass
class LoadReport:
    """What happened to each key when a checkpoint was loaded (see the module docstring)."""

    path: str
    loaded: int = 0
    replaced: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "name: file [..] vs model [..]"

    def problems(self) -> list[str]:
        """One line per key that could not be loaded, for error messages and warnings."""
        lines = []
        if self.missing:
            lines.append(f"missing from the file ({len(self.missing)}): {_short(self.missing)}")
        if self.unexpected:
            lines.append(f"not in the model ({len(self.unexpected)}): {_short(self.unexpected)}")
        if self.mismatched:
            lines.append(f"shape differs ({len(self.mismatched)}): {_short(self.mismatched)}")
        return lines

    def summary(self) -> str:
        """One line: loaded / replaced / adapted counts and any problems."""
        parts = [f"{self.loaded} tensors loaded from {self.path}"]
        if self.replaced:
            parts.append(f"new head (kept initialised): {', '.join(self.replaced)}")
        if self.adapted:
            parts.append(f"RGB->grey summed: {', '.join(self.adapted)}")
        parts += self.problems()
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _short(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state_dict from ``path`` with ``weights_only=True``.

    Accepts a bare state_dict or one nested under ``state_dict`` / ``model_state_dict`` / ``model``, and strips
    the ``module.`` prefix that ``nn.DataParallel`` adds.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"model.pretrained: file not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; the message is what matters
        raise ConfigError(
            f"model.pretrained: cannot read {p} as a weights-only checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"model.pretrained: {p} does not hold a state_dict (a mapping of names to tensors)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_pretrained(
    model: nn.Module,
    path: str | Path,
    head: Iterable[str] = (),
    first_conv: str | None = None,
    strict: bool = True,
) -> LoadReport:
    """Load the checkpoint at ``path`` into ``model`` by name and return what happened to each key.

    ``head``: module names of the classifier head (e.g. ``["classifier.6"]``); their keys may differ in shape
    (another class count) and are then kept as initialised. ``first_conv``: the stem convolution's module name,
    whose RGB weights are summed to one channel when the model takes one. ``strict``: missing, unexpected or
    mismatched keys are a :class:`ConfigError` naming them; when False they are skipped and logged.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    head_prefixes = tuple(h + "." for h in head)
    report = LoadReport(path=str(path))
    to_load: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name not in own:
            report.unexpected.append(name)
            continue
        target = own[name]
        if tensor.shape == target.shape:
            to_load[name] = tensor
        elif name.startswith(head_prefixes):
            report.replaced.append(name)
        elif (
            first_conv is not None
            and name == first_conv + ".weight"
            and tensor.dim() == 4
            and tensor.shape[1] == 3
            and target.shape[1] == 1
            and tensor.shape[0] == target.shape[0]
            and tensor.shape[2:] == target.shape[2:]
        ):
            # (O, 3, kH, kW) -> (O, 1, kH, kW): conv(w, [g, g, g]) == conv(sum_c w_c, g).
            to_load[name] = tensor.sum(dim=1, keepdim=True)
            report.adapted.append(name)
        else:
            report.mismatched.append(f"{name}: file {list(tensor.shape)} vs model {list(target.shape)}")
    # A missing num_batches_tracked is normal for checkpoints saved before PyTorch 0.4.1 (the original
    # torchvision files): batch norm then keeps its counter; it only matters for momentum=None.
    report.missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if strict and report.problems():
        raise ConfigError(
            f"model.pretrained: {path} does not match this model: "
            + "; ".join(report.problems())
            + ". Set model.pretrained_strict = false to load the matching tensors and keep the rest initialised."
        )
    model.load_state_dict(to_load, strict=False)
    report.loaded = len(to_load)
    if report.problems():
        log.warning("model.pretrained: %s", report.summary())
    setattr(model, REPORT_ATTR, report)
    return report


def freeze(model: nn.Module, prefixes: Sequence[str]) -> int:
    """Set ``requires_grad = False`` on every parameter under the module-name ``prefixes``; return how many.

    A prefix matches at a name boundary: ``classifier.1`` freezes ``classifier.1.weight`` but not
    ``classifier.10.weight``; ``""`` is not allowed (freezing everything leaves nothing to train). A prefix
    that matches no parameter is an error listing the module names that hold parameters.
    """
    names = [n for n, _ in model.named_parameters()]
    frozen = 0
    for prefix in prefixes:
        prefix = prefix.strip().rstrip(".")
        if not prefix:
            raise ConfigError("model.freeze: an empty prefix would freeze every parameter")
        hits = [(n, p) for n, p in model.named_parameters() if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            # Suggest from every module path ("layer1", "layer1.0", "layer1.0.conv1"); list the top level only.
            paths = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
            top = list(dict.fromkeys(n.split(".")[0] for n in names if "." in n))
            raise ConfigError(
                f"model.freeze: '{prefix}' matches no parameter{did_you_mean(prefix, sorted(paths))};"
                f" top-level modules with parameters: {', '.join(top)}"
            )
        for _, p in hits:
            if p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(
            "model.freeze: every parameter is frozen, nothing would train; leave the head (new layer) trainable"
        )
    return frozen


class PretrainedOptions(BaseModel):
    """Model keys shared by the families that take pretrained weights and frozen layers."""

    model_config = ConfigDict(extra="forbid")

    pretrained: str | None = Field(
        None,
        description="Path of a state_dict file (e.g. torchvision's alexnet-owt-*.pth) loaded by parameter name with"
        " weights_only=True; a head of another class count is replaced by a new one. A relative path is read from"
        " the study file's folder.",
        json_schema_extra=study_relative(),
    )
    pretrained_strict: bool = Field(
        True,
        description="Missing, unexpected or mismatched keys in the pretrained file are an error (false: skip them"
        " and keep those tensors initialised).",
    )
    freeze: list[str] = Field(
        [],
        description='Module-name prefixes whose parameters are not trained, e.g. ["features", "classifier.1"].',
    )


def apply_pretrained_and_freeze(
    model: nn.Module, params: PretrainedOptions, head: Iterable[str], first_conv: str | None
) -> nn.Module:
    """Load ``params.pretrained`` (if set) into ``model``, then freeze ``params.freeze``; return the model."""
    if params.pretrained:
        load_pretrained(model, params.pretrained, head=head, first_conv=first_conv, strict=params.pretrained_strict)
    if params.freeze:
        freeze(model, params.freeze)
    return model
