"""A study: a TOML file (or ``recipe:NAME``, or a dict) with ``--set`` overrides, validated and expanded into runs.

``load_study`` reads and validates (every error names the key, file and line), ``expand`` turns variants x
sweep grid x repeats into :class:`RunSpec` s with stable ids, and ``recipes`` finds the shipped studies.
"""

from __future__ import annotations

from trainlab.study.expand import expand, run_hash
from trainlab.study.load import load_study
from trainlab.study.overrides import parse_override, set_dotted
from trainlab.study.recipes import list_recipes, recipe_path, resolve_study_path, smoke_overrides
from trainlab.study.spec import RunSpec, Study

__all__ = [
    "RunSpec",
    "Study",
    "expand",
    "list_recipes",
    "load_study",
    "parse_override",
    "recipe_path",
    "resolve_study_path",
    "run_hash",
    "set_dotted",
    "smoke_overrides",
]
