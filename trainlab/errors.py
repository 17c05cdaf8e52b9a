"""Errors that describe a user's mistake.

Every error a user can cause by a config, a command-line argument or a data file derives from
:class:`TrainlabError`. The CLI prints its message (no traceback) and exits with code 2; the library raises it
so a notebook sees the same message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TrainlabError(Exception):
    """A user-facing error: the message says what is wrong and what is allowed."""

    exit_code = 2  # the CLI's exit code: a usage, configuration or data error (nothing was run)


class ConfigError(TrainlabError):
    """A study file or an override names an unknown key, a wrong type or an impossible value."""


class DataError(TrainlabError):
    """A dataset file is missing, truncated or not in the expected format."""


class OutputError(TrainlabError):
    """The output directory cannot be created or written."""


class DiskFull(OutputError):
    """The disk holding a study's output filled up while the study ran: the study stopped, everything finished
    is kept, and the same command resumes once space is freed."""

    exit_code = 1  # like a study whose runs failed: work was done and is stored


class TrackingError(TrainlabError):
    """A tracker cannot reach or write its destination (a tracking server down or silent, a full disk): a live
    study warns once and goes on without it; ``trainlab export`` stops with this message (exit 2)."""


class StoreDamaged(TrainlabError):
    """A study's store (``trainlab.db``) is not a readable SQLite database: truncated, overwritten or corrupt."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """Build the error for an unknown registry name, listing what is allowed."""
    choices = sorted(choices)
    return ConfigError(f"unknown {kind} '{name}'{did_you_mean(name, choices)}; allowed: {', '.join(choices)}")
