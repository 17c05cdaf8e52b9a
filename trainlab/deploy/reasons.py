"""Why a deployment step failed, in one line: what a failed or skipped row of the store says."""

from __future__ import annotations

from trainlab.errors import TrainlabError


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (library errors can run to pages; a row keeps one line)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def reason(exc: BaseException) -> str:
    """A :class:`TrainlabError`'s message as it is (written for the user), anything else by :func:`first_line`."""
    return str(exc) if isinstance(exc, TrainlabError) else first_line(exc)
