"""User code beside a study: the module a study names (``model.name = "module:Class"``, ``data.name =
"module:function"``), loaded from the study file's folder or the installed packages.

The folder of the study being loaded or run is the one place such a module may come from besides the installed
packages. Only the module the study names is loaded from it, by file path: the folder is never put on
``sys.path``, so a ``numpy.py`` or ``torch.py`` planted beside a study is never imported. The model registry
and the data function source share this state, so one file beside a study may hold both a model and a data
function.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from trainlab.errors import ConfigError

_study_folder: Path | None = None
# Top-level module name -> the file beside a study it was loaded from in this process.
_loaded_beside: dict[str, Path] = {}


def set_study_folder(folder: Path | None) -> None:
    """Where ``model.name = "module:Class"`` (and ``data.name = "module:function"``) finds ``module.py`` (or
    the package ``module/``) besides the installed packages: the study file's folder (None: installed packages
    only)."""
    global _study_folder
    _study_folder = Path(folder).resolve() if folder is not None else None


def study_folder() -> Path | None:
    """The folder :func:`set_study_folder` set last (None: installed packages only)."""
    return _study_folder


def beside_study(top: str) -> Path | None:
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


def load_beside_study(top: str, file: Path, label: str) -> None:
    """Load the study folder's module ``top`` from ``file`` (once per process), refusing a name that an
    installed module already has: a file beside a study never stands in for a library. A module of that name
    which an earlier study of this process loaded from its own folder is not a library: it gives way.

    ``label`` starts each error message: the key and the name the study gave (``model.name 'm:Net'``).
    """
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
            f"{label}: {file} has the name of the installed module '{top}' ({origin});"
            " rename the file so that it cannot shadow the library"
        )
    package = [str(file.parent)] if file.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(top, file, submodule_search_locations=package)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{label}: cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module  # before exec, as the import system does: the module may import its submodules
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's module failed: a message, not a traceback (or an exit)
        del sys.modules[top]
        raise ConfigError(f"{label}: {file} failed to import: {type(exc).__name__}: {exc}") from None
    _loaded_beside[top] = file.resolve()


def import_user_module(module_name: str, label: str) -> ModuleType:
    """Import ``module_name`` (dotted), its top-level module from the study's folder when a file of that name
    is there, else from the installed packages; a :class:`ConfigError` starting with ``label`` otherwise."""
    top = module_name.split(".")[0]
    file = beside_study(top)
    if file is not None:
        load_beside_study(top, file, label)
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked beside the study in {_study_folder} and in the installed packages)" if _study_folder else ""
        raise ConfigError(f"{label}: cannot import module '{module_name}' ({exc}){where}") from None


@dataclass(frozen=True)
class KeywordParams:
    """What a user's callable (a model's ``__init__``, a data function) accepts as keyword arguments."""

    names: list[str]  # parameters that can be passed by keyword
    required: list[str]  # of those, the ones without a default
    positional: list[str]  # positional-only parameters without a default: trainlab cannot pass them
    any_keyword: bool  # it has **kwargs


def keyword_params(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> KeywordParams:
    """The keyword parameters of ``fn`` but those in ``skip`` (the ones trainlab passes itself, e.g. ``self``,
    ``input_shape``); a callable whose signature cannot be read takes any keyword."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return KeywordParams([], [], [], any_keyword=True)
    ps = [p for p in sig.parameters.values() if p.name not in skip]
    keyword = [p for p in ps if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return KeywordParams(
        [p.name for p in keyword],
        [p.name for p in keyword if p.default is p.empty],
        [p.name for p in ps if p.kind is p.POSITIONAL_ONLY and p.default is p.empty],
        any(p.kind is p.VAR_KEYWORD for p in ps),
    )


__all__ = [
    "KeywordParams",
    "beside_study",
    "import_user_module",
    "keyword_params",
    "load_beside_study",
    "set_study_folder",
    "study_folder",
]
