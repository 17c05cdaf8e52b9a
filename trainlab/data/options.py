"""The base of a dataset source's own options, and the pieces several sources share.

A source that takes options of its own (``synthetic``, ``folder``, ``csv``, ``cifar100``, ``hf``) defines a
:class:`SourceOptions` model in its module and names it in its registry entry; ``[data]`` accepts those keys
beside the options every dataset shares, and validates each against the model that owns it
(:class:`~trainlab.data.config.DataConfig`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, StrictInt

from trainlab.schema import Strict

if TYPE_CHECKING:
    from trainlab.data.config import DataConfig


def square_size(v: Any) -> Any:
    """``[H, W]`` from one number (a square) or a one-element list; other values are left for the type check.

    A list of any other length than one or two is a ``ValueError`` (for ``data.resize`` and ``data.image_size``).
    """
    if isinstance(v, int) and not isinstance(v, bool):
        return [v, v]
    if isinstance(v, list) and len(v) == 1:
        return [v[0], v[0]]
    if isinstance(v, list) and len(v) != 2:
        raise ValueError(f"give one size or [H, W], got {len(v)} values {v}")
    return v


class SourceOptions(Strict):
    """Options of one dataset source: the ``[data]`` keys only that source reads."""

    def check(self, cfg: DataConfig) -> None:
        """Raise ``ValueError`` when the source cannot do without an option ``cfg`` leaves unset.

        Called only for the source ``cfg.name`` selects: a study whose dataset is swapped (``--smoke``) keeps
        the other source's keys, which are then type-checked but not required.
        """


class TaskOption(SourceOptions):
    """``task``: what the target is (``csv`` and ``synthetic``)."""

    task: Literal["classification", "regression"] = Field(
        "classification",
        description="csv and synthetic: classify the target's distinct values, or regress a numeric target.",
    )


class HeldOutSplit(SourceOptions):
    """``test_fraction`` and ``split_seed``: the held-out split of a source without a given test split."""

    test_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="folder (one tree, no train/ and test/) and csv: fraction held out as the test split, "
        "per class (stratified) for classification.",
    )
    split_seed: StrictInt = Field(
        0, ge=0, le=2**63 - 1, description="folder and csv: seed of the fixed train/test split (not train.seed)."
    )


class LabelColumnOption(SourceOptions):
    """``label_column``: which column of a Hugging Face dataset holds the labels (``hf`` and a data function)."""

    label_column: str | None = Field(
        None,
        min_length=1,
        description="hf, and a data function returning Hugging Face datasets: the label column (default: the "
        "column named label, else labels); every other column is a feature.",
    )
