"""A validated study and its runs: what the loader produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab.config import RunConfig, StudyConfig
from trainlab.tune.prune import PruneRule


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: a variant at one seed, fully resolved."""

    study: str
    variant: str
    repeat: int  # 0-based index among the variant's seeds
    overrides: dict[str, Any]  # the dotted keys this variant changes (sweep values included)
    config: RunConfig
    run_id: str = field(default="")
    # A tuning trial's 0-based index among its variant's trials ([tune]); None for a run of the study itself.
    # A trial reads the validation split only: the engine seals the test split of its dataset.
    trial: int | None = None
    # The values [tune] set for this run (a trial's settings, or the variant's best for its final runs); they
    # are not among ``overrides``, so the report does not read a tuned value as a factor of the study.
    tuned: dict[str, Any] = field(default_factory=dict)
    # A trial of a study with [tune] prune = "median": the bar it stops at (fixed when planned; not part of its
    # identity, as it follows from the earlier rounds). None: the run trains every epoch.
    prune: PruneRule | None = None

    @property
    def seed(self) -> int:
        return self.config.train.seed


@dataclass
class Study:
    """A validated study: its config, the runs it expands to, and where it came from."""

    config: StudyConfig
    runs: list[RunSpec]
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.study.name

    @property
    def baseline(self) -> str:
        return self.config.study.baseline or self.runs[0].variant

    @property
    def swept_keys(self) -> list[str]:
        """Dotted keys that vary between runs, in first-seen order."""
        keys: list[str] = []
        for r in self.runs:
            for k in r.overrides:
                if k not in keys:
                    keys.append(k)
        return keys
