"""The base of every typed config section (study file sections and the layers' own configs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored.

    Non-finite floats (``inf``, ``nan``, which TOML writes as literals) are refused in every float field: no
    config key gives them a meaning, and one that slips through is a learning rate that diverges at once or a
    ``throughput_time_s = inf`` that never ends.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
