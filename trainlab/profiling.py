"""``trainlab profile``: the anatomy and cost of a model, or of every variant of a study.

Targets:

- a registered model name (``simple_cnn``), with ``--input`` (``1x28x28`` or ``784``), ``--classes`` and
  ``--set model.KEY=VALUE`` for its keys;
- a user model ``package.module:ClassName`` (same options);
- a study file (``.toml`` or ``recipe:NAME``): every variant is built as its runs build it (the variant's
  seed, the dataset's input shape and class count), and ``--set`` takes study overrides. The one-step
  ``nonzero_grads`` uses each variant's ``train.optimizer``, as its runs record it.

Output: a layer table (name, type, output shape at batch 1, parameters, MACs) and the totals. ``--json``
prints one JSON object instead: for a model, its figures (``Profile.to_dict()``: ``params``,
``trainable_params``, ``frozen_params``, ``macs``, ``flops``, ``train_flops_per_sample``, ``size_mb``,
``saved_kb``, ``conv_layers``, ``linear_layers``, ``last_linear_in_features``, ``nonzero_grads``,
``optimizer``, ``input_shape``, ``layers``) plus ``model``, ``num_classes`` and ``weights`` (the pretrained
load report, or null); for a study, an object keyed by variant name whose values are such objects.
The counting convention is in :mod:`trainlab.measure.complexity`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from torch import nn

from trainlab.data import dataset_cache
from trainlab.errors import ConfigError, TrainlabError, unknown_name
from trainlab.measure.complexity import Profile, profile_model
from trainlab.models import ModelConfig, build_for, registry, validate_model_kwargs
from trainlab.models.weights import REPORT_ATTR
from trainlab.optim import check_optimizer_name
from trainlab.study import load_study, parse_override, set_dotted

DEFAULT_CLASSES = 10
DEFAULT_OPTIMIZER = "sgd"
_INPUT_RE = re.compile(r"^\s*\d+(\s*[x×X,]\s*\d+)*\s*$")


@dataclass
class ModelProfile:
    """One profiled model: what it is, what it was profiled for, and its figures."""

    label: str  # the target or the variant name
    model: str  # the model name (registry name or package.module:Class)
    num_classes: int
    profile: Profile
    weights: dict[str, Any] | None = None  # pretrained load report (trainlab.models.weights.LoadReport)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of one model: the profile's figures and layers, plus model, classes, weights."""
        return {"model": self.model, "num_classes": self.num_classes, **self.profile.to_dict(), "weights": self.weights}


# ------------------------------------------------------------------------------------------------------
# Parsing


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"1x28x28"`` -> ``(1, 28, 28)``; ``"784"`` -> ``(784,)``. Raises :class:`ConfigError` otherwise."""
    hint = "give CxHxW for images (e.g. --input 1x28x28) or F for feature vectors (e.g. --input 784)"
    if not _INPUT_RE.match(text or ""):
        raise ConfigError(f"--input '{text}' is not a shape: {hint}")
    dims = tuple(int(d) for d in re.split(r"[x×X,]", text.replace(" ", "")))
    if len(dims) not in (1, 3):
        raise ConfigError(f"--input '{text}' has {len(dims)} dimensions: {hint}")
    if any(d < 1 for d in dims):
        raise ConfigError(f"--input '{text}': every dimension must be at least 1")
    return dims


def _model_kwargs(overrides: list[str]) -> dict[str, Any]:
    """``["model.dropout=0.5"]`` -> ``{"dropout": 0.5}``; other sections are an error for a model target."""
    raw: dict[str, Any] = {}
    for text in overrides:
        key, value = parse_override(text)
        if not key.startswith("model.") or key == "model.name":
            raise ConfigError(
                f"--set {text}: for a model target, --set takes the model's keys as model.KEY=VALUE"
                " (e.g. model.dropout=0.5); the model itself is the target"
            )
        set_dotted(raw, key, value)
    return raw.get("model", {})


def _is_study(target: str) -> bool:
    if target in registry():  # a registered name wins over a file of the same name in the working directory
        return False
    return target.startswith("recipe:") or target.endswith(".toml") or Path(target).is_file()


# ------------------------------------------------------------------------------------------------------
# Library functions


def build_named_model(name: str, input_shape: tuple[int, ...], num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    """Validate ``name`` and ``kwargs`` as a study's ``[model]`` would be, and build it; errors are ConfigError."""
    if ":" not in name and name not in registry():
        raise unknown_name("model", name, registry())
    try:
        validate_model_kwargs(name, kwargs)
        cfg = ModelConfig.model_validate({"name": name, **kwargs})
    except ValueError as exc:  # includes pydantic's ValidationError
        msg = str(exc)
        if isinstance(exc, ValidationError):
            msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(msg) from None
    return build_for(cfg, _Input(input_shape, num_classes))


@dataclass(frozen=True)
class _Input:
    """What a model is built for when no dataset is at hand: ``--input`` and ``--classes``."""

    input_shape: tuple[int, ...]
    num_classes: int


def _profile(
    label: str, name: str, model: nn.Module, input_shape: tuple[int, ...], num_classes: int, optimizer: str
) -> ModelProfile:
    try:
        prof = profile_model(model, input_shape, num_classes, optimizer=optimizer)
    except TrainlabError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:  # the forward pass rejected the input
        raise ConfigError(
            f"model '{name}' cannot run on input {list(input_shape)} with {num_classes} classes: {exc}"
        ) from None
    report = getattr(model, REPORT_ATTR, None)
    return ModelProfile(label, name, num_classes, prof, report.to_dict() if report is not None else None)


def profile_model_name(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int = DEFAULT_CLASSES,
    kwargs: dict[str, Any] | None = None,
    optimizer: str = DEFAULT_OPTIMIZER,
    seed: int = 0,
) -> ModelProfile:
    """Build model ``name`` (registered or ``package.module:Class``) with ``kwargs`` and profile it."""
    if num_classes < 1:
        raise ConfigError(f"--classes must be at least 1, got {num_classes}")
    check_optimizer_name(optimizer)
    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is left as it was
        torch.manual_seed(seed)  # the same initial weights every time: nonzero_grads depends on them
        model = build_named_model(name, tuple(input_shape), num_classes, kwargs or {})
    return _profile(name, name, model, tuple(input_shape), num_classes, optimizer)


def profile_study(source: str | Path, overrides: list[str] | None = None) -> dict[str, ModelProfile]:
    """Profile every variant of a study as its first run builds it; keyed by variant name, in study order.

    The input shape and class count come from the variant's dataset; the model is built after seeding with the
    run's ``train.seed`` (as the training loop does), and ``nonzero_grads`` uses its ``train.optimizer``.
    """
    study = load_study(source, overrides)
    datasets = dataset_cache()
    out: dict[str, ModelProfile] = {}
    for spec in study.runs:
        if spec.variant in out:  # repeats differ only by seed
            continue
        cfg = spec.config
        ds = datasets.get(cfg.data)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.train.seed)  # as the training loop seeds before building
                model = build_for(cfg.model, ds)
            out[spec.variant] = _profile(
                spec.variant, cfg.model.name, model, ds.input_shape, ds.num_classes, cfg.train.optimizer
            )
        except TrainlabError as exc:
            raise ConfigError(f"variant '{spec.variant}': {exc}") from None
    return out


# ------------------------------------------------------------------------------------------------------
# Rendering


def _int(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "—"


def _si(v: float | None) -> str:
    """3869824 -> '3.87 M' (decimal prefixes)."""
    if v is None:
        return "—"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{v / factor:.3g} {prefix}"
    return f"{v:g}"


def _shape(s: list[int] | None) -> str:
    return "×".join(str(d) for d in s) if s else "—"


def render(mp: ModelProfile, console: Any) -> None:
    """Print the layer table and the totals of one profiled model."""
    p = mp.profile
    any_frozen = p.frozen_params > 0
    title = f"{mp.label}: {mp.model}, input {_shape(p.input_shape)}, {mp.num_classes} classes"
    table = Table(title=title, title_justify="left", show_footer=True)
    table.add_column("layer", footer="total")
    table.add_column("type")
    table.add_column("output (batch 1)")
    table.add_column("params", justify="right", footer=_int(p.params))
    if any_frozen:
        table.add_column("frozen", justify="right", footer=_int(p.frozen_params))
    table.add_column("MACs", justify="right", footer=_int(p.macs))
    for row in p.layers:
        cells = [row.name, row.type, _shape(row.output_shape), _int(row.params) if row.params else ""]
        if any_frozen:
            frozen = row.params - row.trainable_params
            cells.append(_int(frozen) if frozen else "")
        cells.append(_int(row.macs) if row.macs else "")
        table.add_row(*cells)
    console.print(table)

    grads = "—"
    if p.nonzero_grads is not None:
        grads = f"{_int(p.nonzero_grads)} of {_int(p.trainable_params)} (after one {p.optimizer} step, batch 2)"
    totals = [
        ("params", f"{_int(p.params)} (trainable {_int(p.trainable_params)}, frozen {_int(p.frozen_params)})"),
        ("MACs", f"{_int(p.macs)} ({_si(p.macs)}; FLOPs = 2 × MACs = {_si(p.flops)})"),
        ("train FLOPs / sample", f"{_si(p.train_flops_per_sample)} (forward + backward, batch-1 equivalent)"),
        ("size in memory", f"{p.size_mb:.3f} MB (params + buffers / 2^20)"),
        ("saved state_dict", f"{p.saved_kb:,.1f} KB (/ 2^10)"),
        ("conv / linear layers", f"{p.conv_layers} / {p.linear_layers}"),
        ("last linear in_features", _int(p.last_linear_in_features)),
        ("non-zero gradients", grads),
    ]
    if mp.weights:
        w = mp.weights
        loaded = f"{w['loaded']} tensors from {w['path']}"
        if w["replaced"]:
            loaded += f"; new head: {', '.join(w['replaced'])}"
        if w["adapted"]:
            loaded += f"; RGB->grey summed: {', '.join(w['adapted'])}"
        skipped = len(w["missing"]) + len(w["unexpected"]) + len(w["mismatched"])
        if skipped:
            loaded += f"; {skipped} keys not loaded (see the warning above)"
        totals.append(("pretrained", loaded))
    width = max(len(k) for k, _ in totals)
    for key, value in totals:
        console.print(f"  {key:<{width}}  {value}", highlight=False, markup=False)
    console.print()


def render_study_summary(profiles: dict[str, ModelProfile], console: Any) -> None:
    """One row per variant: model, input, params, trainable, MACs, size, non-zero gradients."""
    table = Table(title="variants", title_justify="left")
    for col, just in [
        ("variant", "left"),
        ("model", "left"),
        ("input", "left"),
        ("params", "right"),
        ("trainable", "right"),
        ("MACs", "right"),
        ("size MB", "right"),
        ("non-zero grads", "right"),
    ]:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for name, mp in profiles.items():
        p = mp.profile
        table.add_row(
            name,
            mp.model,
            _shape(p.input_shape),
            _int(p.params),
            _int(p.trainable_params),
            _int(p.macs),
            f"{p.size_mb:.3f}",
            _int(p.nonzero_grads),
        )
    console.print(table)


def _console() -> Any:
    # Piped output (not a terminal) gets a fixed width wide enough for a ResNet layer table instead of 80.
    return Console(width=None if sys.stdout.isatty() else 120)


# ------------------------------------------------------------------------------------------------------
# The command


def profile_command(args: argparse.Namespace) -> int:
    """``trainlab profile TARGET [--input S] [--classes K] [--optimizer O] [--set K=V] [--json]``; returns 0."""
    target: str = args.target
    overrides: list[str] = list(getattr(args, "overrides", None) or [])
    classes = getattr(args, "classes", None)
    optimizer = getattr(args, "optimizer", None)
    if _is_study(target):
        if args.input:
            raise ConfigError(
                "--input does not apply to a study: each variant's dataset gives the input shape"
                " (change the data with --set data.KEY=VALUE)"
            )
        if classes not in (None, DEFAULT_CLASSES):
            raise ConfigError("--classes does not apply to a study: each variant's dataset gives the class count")
        if optimizer not in (None, DEFAULT_OPTIMIZER):
            raise ConfigError(
                "--optimizer does not apply to a study: each variant uses its train.optimizer"
                f" (override it with --set train.optimizer={optimizer})"
            )
        profiles = profile_study(target, overrides)
        if args.json:
            print(json.dumps({name: mp.to_dict() for name, mp in profiles.items()}, indent=2))
            return 0
        console = _console()
        seen: dict[str, str] = {}
        for name, mp in profiles.items():
            # Variants that share the model and its input (e.g. differ by learning rate only) are drawn once.
            key = json.dumps([mp.model, mp.profile.input_shape, mp.num_classes, [r.name for r in mp.profile.layers]])
            if key in seen and mp.profile.to_dict() == profiles[seen[key]].profile.to_dict():
                console.print(f"{name}: same model and figures as variant '{seen[key]}'\n", highlight=False)
                continue
            seen.setdefault(key, name)
            render(mp, console)
        render_study_summary(profiles, console)
        return 0

    if not args.input:
        raise ConfigError(
            f"profiling model '{target}' needs --input, the shape of one sample: CxHxW for images"
            " (e.g. --input 1x28x28) or F for feature vectors (e.g. --input 784)"
        )
    mp = profile_model_name(
        target,
        parse_input_shape(args.input),
        DEFAULT_CLASSES if classes is None else classes,
        _model_kwargs(overrides),
        optimizer or DEFAULT_OPTIMIZER,
    )
    if args.json:
        print(json.dumps(mp.to_dict(), indent=2))
    else:
        render(mp, _console())
    return 0
