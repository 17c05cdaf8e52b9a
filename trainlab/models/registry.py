"""The model registry: each family is one module; a user's own model is named ``package.module:ClassName``.

Every registered model has a pydantic parameter model, so ``[model]`` keys are validated like the rest of the
study (an unknown or mistyped key names itself). Builders receive the dataset's input shape and class count.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from torch import nn

from trainlab.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from trainlab.models.config import ModelConfig


@dataclass
class ModelEntry:
    """A registered model: its parameters' schema and a builder ``(params, input_shape, num_classes)``."""

    name: str
    description: str
    params: type[BaseModel]
    build: Callable[[Any, tuple[int, ...], int], nn.Module]


MODELS: dict[str, ModelEntry] = {}


def register(name: str, description: str, params: type[BaseModel]) -> Callable:
    """Decorator registering a builder under ``name``."""

    def deco(fn: Callable[[Any, tuple[int, ...], int], nn.Module]) -> Callable:
        MODELS[name] = ModelEntry(name, description, params, fn)
        return fn

    return deco


def registry() -> dict[str, ModelEntry]:
    """All registered models by name (the family modules register themselves when ``trainlab.models`` loads)."""
    return MODELS


# The folder of the study being loaded or run: the one place a user model named ``module:Class`` may come from
# besides the installed packages. Only the module the study names is loaded from it, by file path: the folder is
# never put on ``sys.path``, so a ``numpy.py`` or ``torch.py`` planted beside a study is never imported.
_study_folder: Path | None = None
# Top-level module name -> the file beside a study it was loaded from in this process.
_loaded_beside: dict[str, Path] = {}


def set_study_folder(folder: Path | None) -> None:
    """Where ``model.name = "module:Class"`` finds ``module.py`` (or the package ``module/``) besides the
    installed packages: the study file's folder (None: installed packages only)."""
    global _study_folder
    _study_folder = Path(folder).resolve() if folder is not None else None


def _beside_study(top: str) -> Path | None:
    """The file of the top-level module ``top`` in the study's folder (``top.py`` or ``top/__init__.py``)."""
    if _study_folder is None or not top.isidentifier():
        return None
    for candidate in (_study_folder / f"{top}.py", _study_folder / top / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _installed_origin(top: str) -> str | None:
    """Where the module ``top`` comes from on the ordinary import path: its file, ``built in``, or None when no
    loaded or installed module has that name."""
    loaded = sys.modules.get(top)
    if loaded is not None:
        return getattr(loaded, "__file__", None) or "built in"
    spec = importlib.util.find_spec(top)
    return None if spec is None else (spec.origin or "built in")


def _load_beside_study(top: str, file: Path, name: str) -> None:
    """Load the study folder's module ``top`` from ``file`` (once per process), refusing a name that an
    installed module already has: a file beside a study never stands in for a library. A module of that name
    which an earlier study of this process loaded from its own folder is not a library: it gives way."""
    earlier = _loaded_beside.get(top)
    if earlier is not None:
        if earlier == file.resolve():
            return
        for loaded in [m for m in sys.modules if m == top or m.startswith(f"{top}.")]:
            del sys.modules[loaded]  # e.g. a notebook that runs two studies, each with its own mymodels.py
        del _loaded_beside[top]
    origin = _installed_origin(top)
    if origin is not None and origin != "built in" and Path(origin).resolve() == file.resolve():
        return  # this very file is on the import path already (run from the study's folder): imported as usual
    if origin is not None:
        raise ConfigError(
            f"model.name '{name}': {file} has the name of the installed module '{top}' ({origin});"
            " rename the file so that it cannot shadow the library"
        )
    package = [str(file.parent)] if file.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(top, file, submodule_search_locations=package)
    if spec is None or spec.loader is None:
        raise ConfigError(f"model.name '{name}': cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module  # before exec, as the import system does: the module may import its submodules
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's module failed: a message, not a traceback (or an exit)
        del sys.modules[top]
        raise ConfigError(f"model.name '{name}': {file} failed to import: {type(exc).__name__}: {exc}") from None
    _loaded_beside[top] = file.resolve()


def _import_user_class(name: str) -> type[nn.Module]:
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"model.name '{name}': a user model is written 'package.module:ClassName'")
    top = module_name.split(".")[0]
    file = _beside_study(top)
    if file is not None:
        _load_beside_study(top, file, name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked beside the study in {_study_folder} and in the installed packages)" if _study_folder else ""
        raise ConfigError(f"model.name '{name}': cannot import module '{module_name}' ({exc}){where}") from None
    cls = getattr(module, attr, None)
    if cls is None or not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ConfigError(f"model.name '{name}': '{attr}' is not an nn.Module class in module '{module_name}'")
    return cls


def validate_model_kwargs(name: str, kwargs: dict[str, Any]) -> BaseModel | None:
    """Check a model name and its keyword arguments; raise ``ValueError`` naming the key and what is allowed."""
    if ":" in name:
        cls = _import_user_class(name)
        sig = inspect.signature(cls.__init__)
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        allowed = [p for p in sig.parameters if p not in ("self", "input_shape", "num_classes")]
        for key in kwargs:
            if not accepts_any and key not in allowed:
                raise ValueError(
                    f"unknown key 'model.{key}' for {name}{did_you_mean(key, allowed)}; "
                    f"its __init__ accepts: {', '.join(allowed) or 'nothing'}"
                )
        return None
    models = registry()
    if name not in models:
        raise ValueError(f"unknown model '{name}'{did_you_mean(name, models)}; allowed: {', '.join(sorted(models))}")
    params = models[name].params
    try:
        return params.model_validate(kwargs)
    except ValidationError as err:
        msgs = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                allowed = sorted(params.model_fields)
                msgs.append(
                    f"unknown key 'model.{key}' for model '{name}'{did_you_mean(key, allowed)}; "
                    f"allowed: name, {', '.join(allowed)}"
                )
            else:
                msg = e["msg"].removeprefix("Value error, ")
                msgs.append(f"model.{key}: {msg} (got {e.get('input')!r})")
        raise ValueError("; ".join(msgs)) from None


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the model named by ``cfg`` for samples of ``input_shape`` and ``num_classes`` outputs."""
    if ":" in cfg.name:
        cls = _import_user_class(cfg.name)
        sig = inspect.signature(cls.__init__)
        extra = {}
        if "input_shape" in sig.parameters:
            extra["input_shape"] = tuple(input_shape)
        if "num_classes" in sig.parameters:
            extra["num_classes"] = num_classes
        return cls(**extra, **cfg.kwargs)
    entry = registry()[cfg.name]
    params = entry.params.model_validate(cfg.kwargs)
    return entry.build(params, tuple(input_shape), num_classes)


def flat_features(input_shape: tuple[int, ...]) -> int:
    """Number of input features once a sample is flattened."""
    n = 1
    for d in input_shape:
        n *= d
    return n
