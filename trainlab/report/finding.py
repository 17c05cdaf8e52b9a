"""What a finding is: its kind, severity, sentence, figures and evidence; the thresholds every rule uses; and
how figures are written inside a sentence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from trainlab.measure.format import fmt_value
from trainlab.measure.metrics import BY_KEY
from trainlab.report import anchors

# ---- thresholds -----------------------------------------------------------------------------------------------
# Overfitting: the test loss must have bottomed out before the last epoch and risen since by at least this
# fraction of its minimum (10%: well above the epoch-to-epoch jitter of test loss on small test sets).
OVERFIT_LOSS_RISE = 0.10
# ... and stayed up: at least this many epochs after the minimum, whose mean test loss is that much above it
# (one bad epoch at the end is noise, not overfitting).
OVERFIT_EPOCHS_AFTER = 2
# Fewer epochs than this tell no trend apart from noise.
MIN_EPOCHS_FOR_TREND = 4
# Underfitting: final train accuracy below this (classification) ...
UNDERFIT_TRAIN_ACC = 0.60
# ... or the train loss fell by less than this fraction from epoch 1 to the last epoch: training barely moved.
UNDERFIT_LOSS_DROP = 0.10
# Underfitting also when the final train loss (training mode: dropout active) exceeds this many times the test
# loss (eval mode): the regularisation costs more than generalising does (e.g. dropout 0.8 on an MLP).
UNDERFIT_TRAIN_OVER_TEST = 1.5
# A train loss ending above this multiple of epoch 1's is exploding even when the loop did not stop the run
# (the loop itself stops at 10^4 x, see train.EXPLODE_FACTOR).
EXPLODING_LOSS_FACTOR = 10.0
# Not converged: over the last part of training (this share of the epochs, at least MIN_EPOCHS_FOR_TREND), the
# least-squares line through the loss falls by at least this fraction of its mean: training longer would still
# lower it (2%: above the epoch-to-epoch jitter a straight-line fit leaves on small test sets).
NOT_CONVERGED_WINDOW = 0.25
NOT_CONVERGED_FALL = 0.02
# Data-bound: the loop waits for batches during more than this share of training time.
DATA_BOUND_SHARE = 0.30
# Low utilisation: achieved training FLOP/s below this fraction of the device's measured peak (MFU). Well-fed
# large models reach 30-50% on GPUs; below 10% the device mostly waits (model or batch too small, overheads).
LOW_MFU = 0.10
# Launch-bound (CUDA): the GPU runs kernels for less than this share of a training step's wall time; the rest
# it waits for the host to launch the next kernel (small models and batches on a big GPU).
LAUNCH_BOUND_SHARE = 0.5

Severity = Literal["problem", "warning", "info"]
SEVERITY_ORDER = {"problem": 0, "warning": 1, "info": 2}

# What a finding is about. Every kind has its rule (or rules) in trainlab.report.registry, whose order is the
# order the report shows them in; a test checks that this list and the registry's kinds are the same.
Kind = Literal[
    "progress",
    "verdict",
    "tuned",
    "settled",
    "untuned",
    "selection",
    "edge",
    "nondeterminism",
    "busy_machine",
    "best",
    "tradeoff",
    "diverged",
    "failed",
    "overfitting",
    "underfitting",
    "worse_than_mean",
    "not_converged",
    "fit",
    "data_bound",
    "low_utilisation",
    "launch_bound",
    "significance",
    "skipped",
    "noise",
]
KINDS: tuple[Kind, ...] = get_args(Kind)

# Metrics the "best variant" findings cover (those the study has).
BEST_METRICS = ("test_acc", "test_r2", "test_loss", "time_to_target_s", "train_time_s", "latency_p50_ms")


@dataclass
class Finding:
    """One plain-language finding: what kind, how serious, the sentence, its figures and where the evidence is.

    A rule returns ``text`` as its claim and ``advice`` apart; the registry's runner merges findings and then
    ends each sentence with its advice (:func:`trainlab.report.findings.study_findings`), so ``text`` of a
    finding the report shows is the whole sentence, advice included, and ``advice`` is that last part alone.
    """

    kind: Kind
    severity: Severity
    text: str
    figures: dict[str, Any] = field(default_factory=dict)
    anchor: str = anchors.COMPARISON  # id of the table, plot or run block in report.html
    variant: str | None = None
    run_id: str | None = None
    # The run-specific part in a few words (e.g. "train acc 45.1%"), used when findings of one kind across
    # several variants are merged into one sentence.
    detail: str = ""
    advice: str = ""
    metric: str | None = None  # the catalogue key the finding is about, when it is about one figure
    about: tuple[str, ...] = ()  # the variants a finding merged from several variants' findings names
    # Metric key -> the variants this finding states to be best by it (the verdict fills it): a finding that
    # states no more than that is superseded (see the registry).
    ranks: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:  # a misspelt kind would otherwise sort last, silently
            raise ValueError(f"finding kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.severity not in SEVERITY_ORDER:
            raise ValueError(f"finding severity {self.severity!r} is not one of {', '.join(SEVERITY_ORDER)}")


def figure_text(key: str, value: float | None) -> str:
    """A figure in its metric's display unit, with the unit (e.g. ``95.3%``, ``1.24 s``)."""
    m = BY_KEY.get(key)
    text = fmt_value(m, value)
    if m is None or not m.unit or value is None:
        return text
    return f"{text}{m.unit}" if m.unit == "%" else f"{text} {m.unit}"


def metric_label(key: str) -> str:
    m = BY_KEY.get(key)
    if m is None:
        return key
    # Lower-case the first word only when it is an ordinary word: "Test R²" -> "test R²", "MFU" stays.
    label = m.label
    return label[0].lower() + label[1:] if len(label) > 1 and label[1].islower() else label


def metric_title(key: str) -> str:
    """The metric's label starting a sentence: ``Test acc``, ``Test R²`` (str.capitalize would lower the R)."""
    label = metric_label(key)
    return label[:1].upper() + label[1:]


def rounded(x: float, digits: int = 4) -> float:
    """Round a figure for the figures dict (the text shows fewer digits)."""
    return float(f"{x:.{digits}g}")
