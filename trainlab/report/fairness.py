"""Whether a comparison of variants is fair to them: the ``untuned`` rule.

A learning rate that suits one optimizer, width, batch size or normalisation rarely suits another: Adam's best
rate is typically 10-100x below SGD's, a wider network or a larger batch shifts it, batch norm widens the range
that trains at all. A study whose variants differ in such a key but share one ``train.lr`` measures, in part,
how well that one rate happens to fit each variant — the course's optimizer lab ranking Adam last at lr 0.1 is
the textbook case. The rule says so in the verdict (folded into it, as the ``selection`` caveat is), and its
remedy is ``[tune]``: the same tuning budget for every variant on the validation split. A study whose ``[tune]``
tunes ``train.lr`` gave every variant its own rate, even where two variants' best rates happen to coincide.
"""

from __future__ import annotations

from trainlab.report import anchors
from trainlab.report.finding import Finding
from trainlab.report.study import StudyView, dotted_get
from trainlab.report.tuning import tuning
from trainlab.report.verdict import differing, performance_only

# Keys whose value moves the best learning rate: the optimizer and its own settings, the batch size, the input
# normalisation, the schedule and the loss; and any key of the model (its width, depth, normalisation, dropout or
# architecture). A key that only changes speed (performance_only, e.g. threads or data workers) never does.
LR_MOVING = (
    "train.optimizer",
    "train.momentum",
    "train.nesterov",
    "train.weight_decay",
    "train.scheduler",
    "train.loss",
    "data.batch_size",
    "data.normalize",
)
LR_MOVING_PREFIXES = ("model.",)
LR_KEY = "train.lr"
# The remedy, as a study file says it.
TUNE_EXAMPLE = '"train.lr" = { low = 1e-4, high = 1.0, log = true }'


def moves_best_lr(key: str) -> bool:
    """Whether changing ``key`` is known to move the best learning rate (see :data:`LR_MOVING`)."""
    if performance_only(key):
        return False
    return key in LR_MOVING or key.startswith(LR_MOVING_PREFIXES)


def untuned(study: StudyView) -> list[Finding]:
    """Variants that differ in a key moving the best learning rate, all trained at one ``train.lr``: the ranking
    may reflect that one rate. Nothing when the learning rate differs between variants (set per variant or
    swept) or is tuned per variant by ``[tune]``, or with fewer than two finished variants."""
    done = [v for v in study.variants if v.done]
    tuned = tuning(study)
    if len(done) < 2 or (tuned is not None and LR_KEY in tuned.config.params):
        return []
    movers = [k for k in differing(study) if moves_best_lr(k)]
    rates = {repr(dotted_get(r.config, LR_KEY)) for v in done for r in v.done}
    if not movers or len(rates) != 1:
        return []
    lr = dotted_get(done[0].done[0].config, LR_KEY)
    if not isinstance(lr, int | float):  # a record without its resolved config: nothing to say
        return []
    named = movers[0] if len(movers) == 1 else ", ".join(movers[:-1]) + " and " + movers[-1]
    remedy = (
        f"add train.lr to the study's [tune] section ({TUNE_EXAMPLE})"
        if tuned is not None
        else f"add a [tune] section, e.g. {TUNE_EXAMPLE},"
    )
    text = (
        f"The variants differ in {named} but were all trained at one learning rate (train.lr = {lr:g}), and the"
        " best rate depends on those settings: the ranking may reflect how well that one rate suits each variant"
        f" rather than the variants themselves. For a fair comparison {remedy} so that every variant gets the same"
        " tuning budget on the validation split."
    )
    figures = {"lr": lr, "lr_moving_keys": movers}
    return [Finding("untuned", "info", text, figures, anchors.COMPARISON)]


__all__ = ["LR_MOVING", "TUNE_EXAMPLE", "moves_best_lr", "untuned"]
