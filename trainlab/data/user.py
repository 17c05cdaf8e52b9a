"""Your own data: ``data.name = "module:function"``, a function that returns the splits.

The module is found as a user model is (:mod:`trainlab.userload`): ``module.py`` (or the package ``module/``)
in the study file's folder, loaded by path, else an installed module. The ``[data]`` keys beyond
:class:`~trainlab.data.config.DataConfig`'s own are the function's keyword arguments, checked against its
signature (``data.label_column`` is trainlab's unless the function names it too). It returns

- ``(train, test)`` or ``(train, test, val)``, or
- a dict with the keys ``train`` and ``test``, optionally ``validation`` (or ``val``) and ``classes`` (the class
  names, when labels 0..K-1 should not be named "0".."K-1", or some class has no sample),

each split ``(x, y)`` tensors or NumPy arrays, a map-style ``torch.utils.data.Dataset`` (or a list) of
``(x, y)`` items, or a Hugging Face ``datasets.Dataset`` (:mod:`trainlab.data.hf`). The splits are converted
and checked by :mod:`trainlab.data.materialize`. A validation split is kept on ``Dataset.val`` and is the runs'
validation split (:func:`trainlab.data.load.carve_validation` refuses to carve another).

The function is called when the study is validated (so ``trainlab check`` reports a bad return), once per
process for the same arguments: the converted splits are kept (the last :data:`CACHE_SIZE` calls).
"""

from __future__ import annotations

import inspect
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from trainlab.data.base import Dataset
from trainlab.data.hf import hf_split, is_hf_dataset, is_hf_iterable
from trainlab.data.materialize import SPLITS, Materialized, as_tensor, describe, finish, is_array, items_split
from trainlab.data.options import LabelColumnOption
from trainlab.errors import ConfigError, DataError, TrainlabError, did_you_mean
from trainlab.userload import KeywordParams, import_user_module, keyword_params, study_folder

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig

USER_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
LABEL_COLUMN = "label_column"
RETURN_KEYS = ("train", "test", "validation", "val", "classes")
CACHE_SIZE = 8  # converted returns kept per process (validation, preflight and deployment share one call)
_returned: OrderedDict[str, Materialized] = OrderedDict()


class UserDataOptions(LabelColumnOption):
    """A data function's own option: the label column of the Hugging Face datasets it returns."""


def is_user_name(name: Any) -> bool:
    """Whether ``data.name`` names a data function (``module:function``) rather than a registered dataset."""
    return isinstance(name, str) and ":" in name


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a well-formed ``module:function`` name, or None."""
    if USER_NAME.fullmatch(name) is None:
        return (
            f"'{name}' is not a data function's name: write 'module:function' (a module beside the study file,"
            " or an installed one, and the function in it)"
        )
    return None


def _label(name: str) -> str:
    return f"data.name '{name}'"


def user_function(name: str) -> Callable[..., Any]:
    """The function ``data.name`` names, its module imported from the study's folder or the installed packages."""
    module_name, _, attr = name.partition(":")
    module = import_user_module(module_name, _label(name))
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        functions = [n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")]
        what = f"has no function '{attr}'" if fn is None else f"has '{attr}', but it is {describe(fn)}"
        where = getattr(module, "__file__", None) or module_name
        raise ConfigError(
            f"{_label(name)}: module '{module_name}' ({where}) {what}{did_you_mean(attr, functions)}; its functions:"
            f" {', '.join(functions) or 'none'}"
        )
    return fn


def sort_keys(name: str, given: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Check the ``[data]`` keys beyond DataConfig's fields against the function ``name`` names.

    Returns the keys kept (the function's keyword arguments and ``label_column``) and the problems, each
    ``(key, message)``: a key the function does not take (naming what it takes), a required parameter left unset.
    """
    params = keyword_params(user_function(name))
    kept: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in given.items():
        if _takes(params, key) or key == LABEL_COLUMN:
            kept[key] = value
        else:
            problems.append(
                (
                    key,
                    f"unknown key 'data.{key}' for {name}{did_you_mean(key, params.names)}; its parameters:"
                    f" {', '.join(params.names) or 'none'} (besides [data]'s own keys and label_column)",
                )
            )
    for p in params.required:
        if p not in given:
            problems.append((p, f"required by {name}: its parameter '{p}' has no default; set data.{p}"))
    for p in params.positional:
        problems.append(("name", f"{name}'s parameter '{p}' is positional-only without a default; trainlab"
                                 " passes the [data] keys by keyword"))  # fmt: skip
    return kept, problems


def function_kwargs(cfg: DataConfig) -> dict[str, Any]:
    """The keyword arguments ``cfg`` passes to its data function."""
    params = keyword_params(user_function(cfg.name))
    return {k: v for k, v in (cfg.__pydantic_extra__ or {}).items() if _takes(params, k)}


def _takes(params: KeywordParams, key: str) -> bool:
    """Whether ``data.<key>`` goes to the function: ``label_column`` is trainlab's, and reaches the function
    only when the function names it (not through ``**kwargs``)."""
    return key in params.names or (params.any_keyword and key != LABEL_COLUMN)


def _call(fn: Callable[..., Any], kwargs: dict[str, Any], name: str) -> Any:
    try:
        return fn(**kwargs)
    except TrainlabError:
        raise
    except (Exception, SystemExit) as exc:  # the user's function failed: a message, not a traceback
        raise DataError(f"{_label(name)}: the function raised {type(exc).__name__}: {exc}") from None


def _split_parts(
    value: Any, where: str, label_column: str | None
) -> tuple[torch.Tensor, Any, list[str] | None, list[str]]:
    """``(x, y, class names or None, feature names)`` of one returned split."""
    if is_hf_dataset(value):
        return hf_split(value, label_column, where)
    if is_hf_iterable(value) or isinstance(value, torch.utils.data.IterableDataset):
        raise DataError(
            f"{where} is {describe(value)}, a stream without a length; give a map-style dataset, or (x, y) tensors"
        )
    if isinstance(value, tuple | list) and len(value) == 2 and is_array(value[0]):
        return as_tensor(value[0], f"{where}: x"), as_tensor(value[1], f"{where}: y"), None, []
    if isinstance(value, torch.utils.data.Dataset | list | tuple):
        x, y = items_split(value, where)
        return x, y, None, []
    raise DataError(
        f"{where} is {describe(value)}; give (x, y) tensors or arrays, a torch.utils.data.Dataset of (x, y) pairs,"
        " or a datasets.Dataset"
    )


def _returned_splits(out: Any, where: str) -> tuple[dict[str, Any], list[str] | None]:
    """The splits a function returned, by name (train, test, val), and the class names it gave."""
    forms = "return (train, test), (train, test, val) or a dict with keys train and test (and validation)"
    if isinstance(out, Mapping):
        unknown = [k for k in out if k not in RETURN_KEYS]
        if unknown:
            raise DataError(
                f"{where} returned a dict with the key {unknown[0]!r}; its keys are train, test, validation (or"
                " val) and classes"
            )
        missing = [k for k in ("train", "test") if k not in out]
        if missing:
            raise DataError(f"{where} returned a dict without the key '{missing[0]}'; {forms}")
        if "validation" in out and "val" in out:
            raise DataError(f"{where} returned both 'validation' and 'val'; give one validation split")
        splits = {"train": out["train"], "test": out["test"], "val": out.get("validation", out.get("val"))}
        classes = out.get("classes")
        if classes is not None and not (
            isinstance(classes, list | tuple) and classes and all(isinstance(c, str) for c in classes)
        ):
            raise DataError(f"{where} returned 'classes' as {describe(classes)}; give a list of class names")
        kept = {k: v for k, v in splits.items() if v is not None or k != "val"}
        return kept, list(classes) if classes is not None else None
    if isinstance(out, tuple | list) and len(out) == 2 and is_array(out[0]) and is_array(out[1]):
        raise DataError(f"{where} returned one (x, y) pair; return the train and test splits, (train, test), each"
                        " an (x, y) pair")  # fmt: skip
    if isinstance(out, tuple | list) and len(out) in (2, 3):
        return {k: v for k, v in zip(SPLITS, out) if v is not None or k != "val"}, None
    raise DataError(f"{where} returned {describe(out)}; {forms}")


def materialize_return(out: Any, name: str, label_column: str | None = None) -> Materialized:
    """A data function's return value converted and checked; :class:`DataError` naming ``name`` otherwise."""
    where = _label(name)
    splits, classes = _returned_splits(out, where)
    parts, names, features = {}, None, []
    for split, value in splits.items():
        x, y, hf_names, cols = _split_parts(value, f"{where}, the {split} split", label_column)
        parts[split] = (x, as_tensor(y, f"{where}, the {split} split: y"))
        if split == "train":
            names, features = hf_names, cols
    hint = " (return a dict with 'classes', the class names, to declare classes without samples)"
    return finish(parts, where, classes if classes is not None else names, features, hint)


def materialize_user(cfg: DataConfig) -> Materialized:
    """Call ``cfg``'s data function (once per process for the same arguments) and convert what it returns."""
    kwargs = function_kwargs(cfg)
    label_column = (cfg.__pydantic_extra__ or {}).get(LABEL_COLUMN)
    key = json.dumps([cfg.name, str(study_folder()), kwargs, label_column], sort_keys=True, default=repr)
    if key in _returned:
        _returned.move_to_end(key)
        return _returned[key]
    out = _call(user_function(cfg.name), kwargs, cfg.name)
    done = materialize_return(out, cfg.name, label_column)
    _returned[key] = done
    while len(_returned) > CACHE_SIZE:
        _returned.popitem(last=False)
    return done


def load_user_data(cfg: DataConfig) -> Dataset:
    """The data function source: the splits ``cfg.name``'s function returns, as a :class:`Dataset`."""
    m = materialize_user(cfg)
    fn = user_function(cfg.name)
    file = getattr(inspect.getmodule(fn), "__file__", None)
    return Dataset(
        name=cfg.name,
        train=m.train,
        test=m.test,
        val=m.val,
        classes=list(m.classes),
        task=m.task,
        source=f"your function {cfg.name}" + (f" ({file})" if file else ""),
        features=list(m.features),
    )


__all__ = [
    "UserDataOptions",
    "function_kwargs",
    "is_user_name",
    "load_user_data",
    "materialize_return",
    "materialize_user",
    "name_problem",
    "sort_keys",
    "user_function",
]
