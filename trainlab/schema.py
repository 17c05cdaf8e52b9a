"""The base of every typed config section (study file sections and the layers' own configs), and the marks
a field carries about itself: whether it can change what is computed, what a ``--smoke`` run sets it to.

A mark lives in the field's ``json_schema_extra`` (so it also shows in ``trainlab schema``) and is read back by
:func:`marked_fields`, which walks a composed config model: a renamed field keeps its mark.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

# A key whose value changes how fast a run goes, never what it computes; the mark's value says why (for text).
PERFORMANCE_ONLY = "performance_only"
# The value a --smoke run sets the key to.
SMOKE = "smoke"
# The most a --smoke run lets the key be: the study's own value when it is an integer at most this, else this.
SMOKE_AT_MOST = "smoke_at_most"
# A path whose relative value is read from the study file's folder (not the current one): data.root,
# model.pretrained. One rule for every relative path a study names, wherever the study is run from.
STUDY_RELATIVE = "study_relative"


def study_relative() -> dict[str, Any]:
    """The mark of a path field read relative to the study file's folder
    (``Field(..., json_schema_extra=study_relative())``)."""
    return {STUDY_RELATIVE: True}


def perf_only(why: str) -> dict[str, Any]:
    """The mark of a performance-only field (``Field(..., json_schema_extra=perf_only("..."))``): ``why`` says
    why its value cannot change what is computed."""
    return {PERFORMANCE_ONLY: why}


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored.

    Non-finite floats (``inf``, ``nan``, which TOML writes as literals) are refused in every float field: no
    config key gives them a meaning, and one that slips through is a learning rate that diverges at once or a
    ``throughput_time_s = inf`` that never ends.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def marked_fields(model: type[BaseModel], mark: str, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> the value of ``mark`` for every field of ``model`` that carries it, descending into fields
    that are config models themselves (``data.augment.hflip``); a marked section is one entry, a prefix with its
    dot (``measure.``): the mark holds for every key in it."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        extra = info.json_schema_extra
        section = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        if isinstance(extra, dict) and mark in extra:
            out[f"{key}." if section else key] = extra[mark]
        elif section:
            out.update(marked_fields(info.annotation, mark, f"{key}."))
    return out


def field_at(model: type[BaseModel], key: str) -> FieldInfo:
    """The field of the dotted ``key`` (``data.num_workers``) in the composed ``model``; KeyError: none."""
    *sections, name = key.split(".")
    for part in sections:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise KeyError(key)
        model = annotation
    return model.model_fields[name]
