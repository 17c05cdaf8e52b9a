"""The verdict: the study's question answered first, from its swept factors and its ``[study] columns``.

For each swept factor (a key whose value differs between variants) the verdict reads the study's columns (or
the quality metric and training time when it names none) along that factor:

- a numeric factor: the direction of the effect — steadily rising or falling, or best at an inner setting (an
  optimum) — with the values at the ends and at the best setting;
- a categorical factor: the ranking, and for times how many times faster the best setting is than the worst;
- either way, whether the differences exceed the noise the study measured: with repeats, the report's one
  comparison rule (``trainlab.report.comparison``: paired t-test on shared seeds, else Welch's, Holm-adjusted over
  the figure's family) for the best against the worst setting — the same result the tables and the significance
  findings read for that pair; with one seed, twice the figure's timing noise for times; for quality with one
  seed, that the run-to-run noise was not measured. A quantised figure (epochs, counts) that does not vary over
  the seeds is not judged: equal integers show no noise.

Factors that cannot change what is computed (marked performance-only on their fields, see
:func:`trainlab.config.performance_only_keys`: DataLoader workers, pinning, the
device, compilation, ...) are judged on their timing columns only: their accuracy and loss differences are
run-to-run nondeterminism, and :func:`nondeterminism` says so with the spread. A timing column with a run
timed on a busy machine is not judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from trainlab.config import NOT_IN_TRAINING, performance_only_reason
from trainlab.measure.format import fmt_delta, fmt_factor
from trainlab.measure.metrics import BY_KEY, INFER, QUALITY, SIZE, Metric
from trainlab.measure.stats import relative_gap
from trainlab.report import anchors
from trainlab.report.comparison import Comparison, family_of, judge, no_spread
from trainlab.report.finding import Finding, figure_text, metric_label, metric_title, rounded
from trainlab.report.study import StudyView, VariantView, dotted_get, scored_key


def performance_only(key: str) -> bool:
    """A factor that cannot change the computation, only its speed: marked so on its field (the schema's
    :func:`~trainlab.config.performance_only_keys`): same batches in the same order, same model, same
    arithmetic up to floating-point ordering and nondeterministic kernels."""
    return performance_only_reason(key) is not None


# Keys that change training but neither the inference network nor how it is run (device, threads, precision,
# layout and compilation do; and measure.* changes how inference is timed).
INFERENCE_CHANGING = ("train.device", "train.threads", "train.precision", "train.channels_last", "train.compile")
TRAINING_LOADER = ("data.num_workers", "data.pin_memory", "data.persistent_workers", "data.prefetch_factor")


def training_only(key: str) -> bool:
    """A key that only changes training: dropout, the optimisation, how the training batches are loaded."""
    if key in ("model.dropout", *TRAINING_LOADER, "data.loader", "data.pipeline") or key.startswith("track."):
        return True
    return key.startswith("train.") and key not in INFERENCE_CHANGING


def identical_inference(study: StudyView) -> bool:
    """The finished variants run the same inference network the same way, so their inference figures cannot
    differ: they differ only in :func:`training_only` keys and have the same parameter count and MACs."""
    keys, done = differing(study), [v for v in study.variants if v.done]
    if len(done) < 2 or not keys or not all(training_only(k) for k in keys):
        return False
    sizes = [{v.mean(k) for v in done} for k in ("params", "macs")]
    return sizes[0] != {None} and all(len(s) == 1 for s in sizes)


def _why(key: str) -> str:
    return performance_only_reason(key) or NOT_IN_TRAINING


@dataclass
class Level:
    """One setting of a factor: its value, the finished variants that have it, and the metric there."""

    value: Any
    variants: list[VariantView]
    mean: float
    values: list[float]  # every seed of every variant at this setting

    @property
    def label(self) -> str:
        if len(self.variants) == 1:
            return self.variants[0].name
        return f"{{{fmt_factor(self.value)}}}"


# The pseudo-factor of a study whose variants are not a grid over its swept keys (a [[variant]] list where each
# variant changes something else): the variants themselves are the settings compared.
VARIANT = "variant"


def differing(study: StudyView) -> list[str]:
    """The swept keys whose value differs between the study's finished variants."""
    out = []
    for key in study.swept_keys:
        vals = {repr(v.factors.get(key)) for v in study.variants if v.done}
        if len(vals) >= 2:
            out.append(key)
    return out


def factors(study: StudyView) -> list[str]:
    """What the verdict reads the study along: its swept keys when the finished variants form a full grid over
    them (a [sweep], or variants differing in one key), else the variants themselves (:data:`VARIANT`)."""
    keys = differing(study)
    done = [v for v in study.variants if v.done]
    if len(done) < 2:
        return []
    if keys:
        cells = 1
        for key in keys:
            cells *= len({repr(v.factors.get(key)) for v in done})
        if cells == len(done):
            return keys
    return [VARIANT]


def _perf_only(study: StudyView, key: str) -> bool:
    if key == VARIANT:
        keys = differing(study)
        return bool(keys) and all(performance_only(k) for k in keys)
    return performance_only(key)


def _levels(study: StudyView, key: str, metric: str) -> list[Level]:
    groups: dict[str, list[VariantView]] = {}
    raw: dict[str, Any] = {}
    for v in study.variants:
        if v.mean(metric) is None:
            continue
        value = v.name if key == VARIANT else v.factors.get(key)
        k = repr(value)
        groups.setdefault(k, []).append(v)
        raw[k] = value
    levels = []
    for k, vs in groups.items():
        means = [m for v in vs if (m := v.mean(metric)) is not None]
        levels.append(Level(raw[k], vs, sum(means) / len(means), [x for v in vs for x in v.values(metric)]))
    return levels


def _numeric(levels: Sequence[Level]) -> bool:
    return all(isinstance(lv.value, int | float) and not isinstance(lv.value, bool) for lv in levels)


def _columns(study: StudyView, key: str) -> list[Metric]:
    """The (at most two) metrics the verdict on ``key`` reads: what the study is judged by, then what it costs.

    From the study's columns (else the quality metric and training time): the quality metric, or its first
    accuracy/loss column; then its first timing column, or else its first size/cost column (MACs, params).
    A performance-only factor is read on its first two timing columns. Steady-state data time stands in for
    data time when the loader's start-up was measured.
    """
    chosen = dotted_get(study.meta_study, "study.columns") or [study.quality_key, "train_time_s"]
    present = {m.key for m in study.present()}
    if "data_time_s" in chosen and "data_steady_s" in present and "data_steady_s" not in chosen:
        chosen = ["data_steady_s" if k == "data_time_s" else k for k in chosen]
    metrics = [BY_KEY[k] for k in chosen if k in BY_KEY and k in present and BY_KEY[k].better is not None]
    if identical_inference(study):
        metrics = [m for m in metrics if m.group != INFER]  # the same network: nothing to compare
    if _perf_only(study, key):
        return [m for m in metrics if m.timing][:2]
    quality = [m for m in metrics if m.group == QUALITY and not m.timing]
    judged = next((m for m in quality if m.key == study.quality_key), quality[0] if quality else None)
    if judged is not None and (chosen_on := study.choice_key(judged.key)) in present:
        judged = BY_KEY[chosen_on]  # a choice: on validation when the study has one (then scored on test)
    cost = next((m for m in metrics if m.timing), None) or next((m for m in metrics if m.group == SIZE), None)
    return [m for m in (judged, cost) if m is not None]


def _group(lv: Level, factor: str, metric: str) -> dict[Any, float | None]:
    """A setting's values keyed for pairing: by seed, and within a grid by the other factors' values too."""
    return {
        (tuple(repr(val) for k, val in sorted(v.factors.items()) if k != factor), r.seed): r.value(metric)
        for v in lv.variants
        for r in v.done
    }


def best_vs_worst(study: StudyView, factor: str, m: Metric, best: Level, worst: Level) -> Comparison | None:
    """The comparison rule for best against worst: between two variants, the result of the figure's family
    (the one the tables and the significance findings read); between settings that pool several variants (a
    grid), a paired or Welch test Holm-adjusted over the factors whose pooled best and worst are compared."""
    if len(best.variants) == 1 and len(worst.variants) == 1:
        found = family_of(study, m.key).pair(best.variants[0].name, worst.variants[0].name)
        if found is not None:
            return found
    pooled = {factor: (_group(best, factor, m.key), _group(worst, factor, m.key))}
    for key in factors(study):
        levels = _levels(study, key, m.key)
        if key != factor and len(levels) >= 2 and any(len(lv.variants) > 1 for lv in levels):
            hi, lo = max(levels, key=lambda lv: lv.mean), min(levels, key=lambda lv: lv.mean)
            b, w = (hi, lo) if m.better == "higher" else (lo, hi)
            pooled[key] = (_group(b, key, m.key), _group(w, key, m.key))
    return judge(pooled, quantised=m.quantised).get(factor)


def _noise(
    study: StudyView, factor: str, m: Metric, best: Level, worst: Level
) -> tuple[str, bool | None, dict[str, Any]]:
    """Whether best vs worst exceeds the study's noise: (clause, exceeds or None when unknown, figures)."""
    test = best_vs_worst(study, factor, m, best, worst)
    if test is not None:
        word = "larger than" if test.significant else "within"
        figs = {"p": rounded(test.p, 3), "p_adjusted": rounded(test.p_adjusted, 3), "paired": test.paired}
        return f"{word} the noise ({test.p_text}, best vs worst)", test.significant, figs
    if m.quantised and no_spread(best.values) and no_spread(worst.values):
        return "every seed gave the same whole number, which shows no noise, so none was measured", None, {}
    if m.timing and study.timing_noise is not None and (noise := study.timing_noise_of(m.key)) is not None:
        # The gap as a share of the larger value (never above 100%) against twice the figure's noise: the
        # within-run variation, over sqrt(epochs - 1) for totals over epochs (StudyView.timing_noise_of).
        cv = study.timing_noise.cv_median
        gap = relative_gap(worst.mean, best.mean) or 0.0
        exceeds = not study.within_timing_noise(m.key, worst.mean, best.mean)
        word = "larger than" if exceeds else "within"
        detail = f", from the {cv * 100:.1f}% epoch-to-epoch variation" if noise != cv else " within-run variation"
        clause = f"{word} the timing noise ({gap * 100:.0f}% against twice ±{noise * 100:.1f}%{detail})"
        return clause, exceeds, {"gap": rounded(gap, 3), "timing_cv": rounded(cv, 3), "noise": rounded(noise, 3)}
    if m.timing:
        return "one seed and runs of fewer than 3 epochs, so the timing noise was not measured", None, {}
    return "one seed per setting, so the run-to-run noise was not measured", None, {}


def _name(key: str) -> str:
    """A factor as the sentences name it: the key's last part (``num_workers``), or ``variant``."""
    return key.split(".")[-1]


def _setting(key: str, lv: Level) -> str:
    """``at num_workers=2``, or ``for <variant>`` along the variants."""
    return f"for {lv.value}" if key == VARIANT else f"at {_name(key)}={fmt_factor(lv.value)}"


def _at(key: str, lv: Level, m: Metric) -> str:
    return f"{figure_text(m.key, lv.mean)} {_setting(key, lv)}"


def _numeric_sentence(key: str, m: Metric, levels: list[Level]) -> tuple[str, Level, Level, str]:
    levels = sorted(levels, key=lambda lv: lv.value)
    higher = m.better == "higher"
    best = max(levels, key=lambda lv: lv.mean) if higher else min(levels, key=lambda lv: lv.mean)
    worst = min(levels, key=lambda lv: lv.mean) if higher else max(levels, key=lambda lv: lv.mean)
    diffs = [b.mean - a.mean for a, b in pairwise(levels)]
    name = _name(key)
    label = metric_title(m.key)
    first, last = levels[0], levels[-1]
    if all(d > 0 for d in diffs) or all(d < 0 for d in diffs):
        shape = "monotonic"
        verb = "rises" if diffs[0] > 0 else "falls"
        text = (
            f"{label} {verb} at every step as {name} grows: {_at(key, first, m)} → {_at(key, last, m)} "
            f"({fmt_delta(m, last.mean, first.mean)}); best: {name}={fmt_factor(best.value)}"
        )
    elif best is not first and best is not last:
        shape = "optimum"
        text = (
            f"{label} is best at {name}={fmt_factor(best.value)} ({figure_text(m.key, best.mean)}), an optimum "
            f"inside the range: {_at(key, first, m)}, {_at(key, last, m)}"
        )
    else:
        shape = "no trend"
        text = f"{label} has no steady trend with {name}: best {_at(key, best, m)}, worst {_at(key, worst, m)}"
    return text, best, worst, shape


def _in_order(levels: list[Level]) -> list[Level]:
    return sorted(levels, key=lambda lv: lv.value) if _numeric(levels) else levels


def _categorical_sentence(key: str, m: Metric, levels: list[Level]) -> tuple[str, Level, Level, str]:
    ranked = sorted(levels, key=lambda lv: lv.mean, reverse=m.better == "higher")
    best, worst = ranked[0], ranked[-1]
    label = metric_label(m.key)
    order = ", ".join(f"{lv.label} {figure_text(m.key, lv.mean)}" for lv in ranked)
    if m.timing and best.mean > 0 and m.better == "lower":
        ratio = worst.mean / best.mean
        text = f"{best.label} is {ratio:.3g}× faster than {worst.label} by {label} ({order})"
    else:
        text = (
            f"By {label}: {order} — {best.label} is best, {fmt_delta(m, best.mean, worst.mean)} against {worst.label}"
        )
    return text, best, worst, "ranking"


def verdict(study: StudyView) -> list[Finding]:
    """One finding per swept factor answering the study's question, first in the report."""
    out = []
    keys = factors(study)
    if not keys:
        single = _single(study)
        return [single] if single else []
    for key in keys:
        sentences: list[str] = []
        figs: dict[str, Any] = {"factor": key, "performance_only": _perf_only(study, key)}
        ranks: dict[str, tuple[str, ...]] = {}  # metric -> the variant this sentence names best (see Finding)
        for m in _columns(study, key):
            levels = _levels(study, key, m.key)
            if len(levels) < 2:
                continue
            if len({figure_text(m.key, lv.mean) for lv in levels}) == 1:
                name = _name(key)
                sentences.append(
                    f"{metric_title(m.key)} is the same for every {name} setting "
                    f"({figure_text(m.key, levels[0].mean)})."
                )
                figs[f"{m.key}_shape"] = "flat"
                if scored := _scored_on_test(study, key, m):
                    sentences.append(scored)
                continue
            make = _numeric_sentence if _numeric(levels) else _categorical_sentence
            text, best, worst, shape = make(key, m, levels)
            busy = [v.name for lv in levels for v in lv.variants if v.busy_for(m)]
            if busy:
                text += (
                    f" — not judged: {', '.join(busy)} {'was' if len(busy) == 1 else 'were'} timed on a busy "
                    "machine (see below)"
                )
                figs[f"{m.key}_machine_affected"] = busy
            elif best.mean != worst.mean and m.deterministic:
                text += " (fixed by the model: exact, no noise)"
            elif best.mean != worst.mean:
                clause, exceeds, nfigs = _noise(study, key, m, best, worst)
                if exceeds is False:  # no direction or optimum to state: the differences are noise
                    shape = "within noise"
                    name = "the variant" if key == VARIANT else _name(key)
                    values = ", ".join(_at(key, lv, m) for lv in _in_order(levels))
                    text = f"{metric_title(m.key)} does not change beyond the noise with {name}: {values}"
                text += f"; {clause}"
                figs.update({f"{m.key}_{k}": v for k, v in nfigs.items()})
                figs[f"{m.key}_exceeds_noise"] = exceeds
            if not busy and shape != "within noise" and len(best.variants) == 1:
                ranks[m.key] = (best.variants[0].name,)
            figs[f"{m.key}_shape"] = shape
            figs[f"{m.key}_best"] = best.value if not isinstance(best.value, list | dict) else fmt_factor(best.value)
            sentences.append(text + ".")
            if scored := _scored_on_test(study, key, m):
                sentences.append(scored)
            if m.key == "data_steady_s":
                sentences.append(_startup_sentence(study, key))
        if sentences:
            text = " ".join(s for s in sentences if s)
            out.append(Finding("verdict", "info", text, figs, anchors.COMPARISON, ranks=ranks))
    return out


def _scored_on_test(study: StudyView, key: str, m: Metric) -> str:
    """After a sentence read on validation (``val_*``): the same settings' test figures, the score of the
    choice ("" for any other figure)."""
    test_key = scored_key(m.key)
    if test_key is None:
        return ""
    levels = [lv for lv in _in_order(_levels(study, key, test_key)) if lv.mean is not None]
    if not levels:
        return ""
    values = ", ".join(_at(key, lv, BY_KEY[test_key]) for lv in levels)
    return f"Chosen on the validation split; scored on test: {metric_label(test_key)} {values}."


def _startup_sentence(study: StudyView, key: str) -> str:
    levels = _levels(study, key, "data_startup_s")
    if not levels:
        return ""
    lo, hi = min(levels, key=lambda lv: lv.mean), max(levels, key=lambda lv: lv.mean)
    epochs = max((len(r.epochs) for v in study.variants for r in v.done), default=0)
    over = f" over {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else ""
    return (
        f"Waiting for each epoch's first batch (worker start-up) took {lo.mean:.2g} s in all{over} "
        f"{_setting(key, lo)} and {hi.mean:.2g} s {_setting(key, hi)}; it is counted apart from the steady-state "
        "figures."
    )


def _single(study: StudyView) -> Finding | None:
    """A study of one variant compares nothing: its answer is the variant's own figures in its columns."""
    done = [v for v in study.variants if v.done]
    if len(done) != 1:
        return None
    v = done[0]
    chosen = dotted_get(study.meta_study, "study.columns") or [study.quality_key, "train_time_s"]
    means = {k: mean for k in chosen if k in BY_KEY and (mean := v.mean(k)) is not None}
    if not means:
        return None
    parts = [f"{metric_label(k)} {figure_text(k, mean)}" for k, mean in means.items()]
    epochs = max((len(r.epochs) for r in v.done), default=0)
    seeds = f" (mean of {len(v.done)} seeds)" if len(v.done) > 1 else ""
    text = f"{v.name}, after {epochs} epoch{'s' if epochs != 1 else ''}{seeds}: " + ", ".join(parts) + "."
    figs = {k: rounded(mean) for k, mean in means.items()}
    return Finding("verdict", "info", text, figs, anchors.COMPARISON, variant=v.name)


__all__ = [
    "best_vs_worst",
    "differing",
    "factors",
    "identical_inference",
    "performance_only",
    "training_only",
    "verdict",
]
