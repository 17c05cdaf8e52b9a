"""The nondeterminism finding: accuracy and loss differences along a factor that cannot change what is computed
(marked so on its field: :func:`trainlab.config.performance_only_keys`) are run-to-run nondeterminism, stated
with their spread."""

from __future__ import annotations

from trainlab.measure.format import fmt_delta
from trainlab.measure.metrics import BY_KEY
from trainlab.report import anchors
from trainlab.report.finding import Finding, figure_text, metric_label, rounded
from trainlab.report.study import StudyView
from trainlab.report.verdict import VARIANT, _name, _perf_only, _why, differing, factors


def nondeterminism(study: StudyView) -> list[Finding]:
    """Quality differences along a performance-only factor: run-to-run nondeterminism, with the spread."""
    out: list[Finding] = []
    if not performance_only_study(study):
        return out
    for key in factors(study):
        parts, figs = [], {"factor": key}
        for mk in (study.quality_key, "test_loss"):
            vals = [(v.name, mean) for v in study.variants if (mean := v.mean(mk)) is not None]
            if len(vals) < 2:
                continue
            lo, hi = min(vals, key=lambda nv: nv[1]), max(vals, key=lambda nv: nv[1])
            figs[f"{mk}_spread"] = rounded(hi[1] - lo[1])
            if figure_text(mk, lo[1]) == figure_text(mk, hi[1]):
                continue
            spread = fmt_delta(BY_KEY[mk], hi[1], lo[1]).lstrip("+")
            parts.append(
                f"{metric_label(mk)} {figure_text(mk, lo[1])} ({lo[0]}) to {figure_text(mk, hi[1])} ({hi[0]}), "
                f"a spread of {spread}"
            )
        keys_of = differing(study) if key == VARIANT else [key]
        name = ", ".join(_name(k) for k in keys_of)
        what = f"The factor {name}" if len(keys_of) == 1 else f"The settings {name}"
        why = "; ".join(_why(k) for k in keys_of)
        if parts:
            text = (
                f"{what} cannot change what is computed ({why}), so the differences across "
                f"{'it' if len(keys_of) == 1 else 'them'} — "
                + "; ".join(parts)
                + f" — are run-to-run nondeterminism (e.g. nondeterministic GPU kernels), not an effect of {name}."
            )
        else:
            text = (
                f"{what} cannot change what is computed ({why}), and accuracy and loss are the same at every "
                "setting, as they must be: the differences are in time only."
            )
        out.append(Finding("nondeterminism", "info", text, figs, anchors.COMPARISON))
    return out


def performance_only_study(study: StudyView) -> bool:
    """Every factor of the study is performance-only: accuracy and loss cannot differ by design."""
    keys = factors(study)
    return bool(keys) and all(_perf_only(study, k) for k in keys)


__all__ = ["nondeterminism", "performance_only_study"]
