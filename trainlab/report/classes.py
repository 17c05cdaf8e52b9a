"""Per-class precision, recall and F1 of each variant from its confusion matrix (summed over its seeds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainlab.report.study import StudyView, VariantView


@dataclass
class ClassTable:
    """Per-class figures of one variant from its confusion matrix (summed over its finished seeds)."""

    variant: VariantView
    confusion: list[list[int]]  # rows = true class, columns = predicted class
    classes: list[str]
    rows: list[dict[str, Any]]  # class, support, precision, recall, f1 (fractions or None)
    macro: dict[str, float | None]
    accuracy: float | None
    seeds: int


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def class_metrics(confusion: Sequence[Sequence[int]], classes: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Precision, recall and F1 per class from a K×K confusion matrix (rows true, columns predicted)."""
    k = len(confusion)
    names = list(classes) if classes is not None and len(classes) == k else [str(i) for i in range(k)]
    col = [sum(confusion[i][j] for i in range(k)) for j in range(k)]
    out = []
    for i in range(k):
        tp = confusion[i][i]
        support = sum(confusion[i])
        p, r = _div(tp, col[i]), _div(tp, support)
        f1 = _div(2 * p * r, p + r) if p is not None and r is not None else None
        out.append({"class": names[i], "support": support, "precision": p, "recall": r, "f1": f1})
    return out


def class_tables(study: StudyView) -> list[ClassTable]:
    """One per variant whose finished runs recorded a confusion matrix."""
    out = []
    for v in study.variants:
        mats = [r.results["confusion"] for r in v.done if isinstance(r.results.get("confusion"), list)]
        mats = [m for m in mats if m and len(m) == len(mats[0])]
        if not mats:
            continue
        k = len(mats[0])
        total = [[sum(m[i][j] for m in mats) for j in range(k)] for i in range(k)]
        classes = next((r.results.get("classes") for r in v.done if r.results.get("classes")), None)
        rows = class_metrics(total, [str(c) for c in classes] if classes else None)
        macro = {key: _mean([r[key] for r in rows if r[key] is not None]) for key in ("precision", "recall", "f1")}
        n = sum(sum(row) for row in total)
        acc = _div(sum(total[i][i] for i in range(k)), n)
        out.append(ClassTable(v, total, [r["class"] for r in rows], rows, macro, acc, len(mats)))
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


__all__ = ["ClassTable", "class_metrics", "class_tables"]
