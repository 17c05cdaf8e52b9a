"""A variant's best trial, chosen on its validation figure, and whether the chosen value lies at its range's edge."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from trainlab.tune.config import Range

# A best value this close to an end of its range (a fraction of the range, in log space for a log range) may
# be cut off by it: the optimum could lie beyond. A tenth: with 12-16 trials the sequence puts about one trial
# in each tenth, so a best value there is the outermost one tried.
EDGE = 0.1


@dataclass(frozen=True)
class Trial:
    """One finished trial of a variant: its 0-based index, the settings it ran and its validation figure
    (None when it failed, diverged or recorded none)."""

    index: int
    settings: dict[str, Any]
    value: float | None


def best_trial(trials: list[Trial], higher_is_better: bool = True) -> Trial | None:
    """The trial with the best figure (the earliest of equal ones); None when no trial has one."""
    scored = [t for t in trials if t.value is not None and math.isfinite(t.value)]
    if not scored:
        return None
    sign = 1.0 if higher_is_better else -1.0
    return min(scored, key=lambda t: (-sign * t.value, t.index))  # type: ignore[operator]


def at_edge(space: Range | list[Any], value: Any) -> Literal["low", "high"] | None:
    """``low`` or ``high`` when ``value`` lies within :data:`EDGE` of that end of the range, or is the smallest
    or largest of a numeric choice list; None otherwise (and for a choice of names)."""
    if isinstance(space, list):
        numbers = [v for v in space if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) < 2 or len(numbers) != len(space) or not isinstance(value, int | float):
            return None
        return "low" if value == min(numbers) else "high" if value == max(numbers) else None
    p = space.position(float(value))
    return "low" if p <= EDGE else "high" if p >= 1 - EDGE else None


__all__ = ["EDGE", "Trial", "at_edge", "best_trial"]
