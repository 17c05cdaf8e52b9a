"""Reading a study: TOML, ``recipe:NAME``, ``--set KEY=VALUE`` overrides, and errors that name the key and line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trainlab.config import StudyConfig
from trainlab.errors import ConfigError, did_you_mean
from trainlab.models import set_study_folder
from trainlab.study.expand import expand
from trainlab.study.messages import format_validation_error
from trainlab.study.overrides import parse_override, set_dotted
from trainlab.study.recipes import resolve_study_path
from trainlab.study.source import check_structure, parse_toml, read_study_text
from trainlab.study.spec import Study
from trainlab.study.trials import check_tune


def load_study(source: str | Path | dict[str, Any], overrides: list[str] | dict[str, Any] | None = None) -> Study:
    """Read, override and validate a study; expand it into runs.

    ``source`` is a TOML path, ``recipe:NAME`` or an already-parsed dict. ``overrides`` are ``KEY=VALUE``
    strings (as from ``--set``) or a dict of dotted keys. Raises :class:`ConfigError` with every problem.
    """
    text: str | None = None
    path: Path | None = None
    if isinstance(source, dict):
        raw = copy.deepcopy(source)
        where = ""
    else:
        path = resolve_study_path(str(source))
        text = read_study_text(path)
        raw = parse_toml(text, str(path))
        where = str(path)

    items = list(overrides.items()) if isinstance(overrides, dict) else [parse_override(o) for o in overrides or []]
    for key, value in items:
        set_dotted(raw, key, value)
    from_cli = frozenset(k for k, _ in items)
    # After the overrides, so that a --set value (or a dict source) is held to the same limits as the file.
    check_structure(raw, where, from_cli)
    # A user model named in the study (model.name = "module:Class") may be a file beside the study file.
    set_study_folder(path.parent if path is not None else None)

    try:
        cfg = StudyConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, text, where, from_cli)) from None

    folder = path.parent.resolve() if path is not None else None
    runs = expand(cfg, raw, text, where, folder=folder, cli_keys=from_cli)
    if cfg.study.baseline is not None and cfg.study.baseline not in {r.variant for r in runs}:
        names = sorted({r.variant for r in runs})
        raise ConfigError(
            f"study.baseline: no variant named '{cfg.study.baseline}'{did_you_mean(cfg.study.baseline, names)};"
            f" variants: {', '.join(names)}"
        )
    study = Study(config=cfg, runs=runs, path=path, raw=raw)
    check_tune(study)  # a tuned value no run can take is refused now, not in the middle of the trials
    return study
