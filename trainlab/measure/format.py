"""How figures are printed: one set of formatters for the report, the terminal and the deployment table.

``Metric`` (the catalogue entry in ``trainlab.measure.metrics``) decides the unit and kind; these functions
turn a value of that kind into text.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainlab.measure.metrics import Metric


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _sig(v: float, digits: int = 3) -> str:
    """``v`` with ``digits`` significant digits, no exponent for everyday magnitudes."""
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    decimals = max(digits - 1 - mag, 0)
    if abs(v) >= 1e6 or abs(v) < 1e-4:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{decimals}f}"


def compact_count(v: float) -> str:
    """Counts: exact with thousands separators below 10^5, else 3 significant digits with k/M/G/T."""
    if abs(v) < 1e5:
        return f"{round(v):,}" if float(v).is_integer() else f"{v:,.1f}"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{_sig(v / div)} {suffix}"
    return f"{v:g}"


def fmt_value(metric: Metric | None, value: Any) -> str:
    """Display text of ``value`` in ``metric``'s unit (already scaled: fractions as %)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if metric is None:
        return compact_count(value) if float(value).is_integer() else _sig(value, 4)
    v = value * metric.scale
    match metric.kind:
        case "fraction":
            if 0 < abs(v) < 0.1:  # e.g. a small model's MFU: 0.008%, not 0.01
                return _sig(v, 2)
            return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
        case "count":
            return compact_count(v)
        case "epochs":
            return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
        case "rate" if metric.unit == "GFLOP/s":
            return _sig(v / 1e9)
        case "rate":
            return compact_count(v) if abs(v) >= 1e5 else (f"{v:,.0f}" if abs(v) >= 1000 else _sig(v))
        case "ratio":
            return f"{v:.3f}"
        case _:
            return _sig(v)


def fmt_ci(metric: Metric | None, half_width: float | None) -> str:
    """The ± part of a mean ± CI in the metric's display unit: two significant digits (percentages: the value's
    decimals); empty for figures fixed by the model, which do not vary with the seed."""
    if half_width is None or (metric is not None and metric.deterministic):
        return ""
    if metric is None:
        return _sig(half_width, 2)
    v = half_width * metric.scale
    match metric.kind:
        case "fraction":
            return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
        case "count":
            return compact_count(v)
        case "epochs":
            return f"{v:.1f}"
        case "rate" if metric.unit == "GFLOP/s":
            return _sig(v / 1e9, 2)
        case _:
            return _sig(v, 2)


def fmt_few(metric: Metric | None, values: list[float]) -> str:
    """Instead of ± with fewer than 3 seeds: ``n = 2: 11,900–13,300`` (the range of the values), or ``n = 1``;
    empty for figures fixed by the model. A t interval from 2 values (t = 12.7) would say nothing."""
    if not values or (metric is not None and metric.deterministic):
        return ""
    if len(values) == 1:
        return "n = 1"
    return f"n = {len(values)}: {fmt_value(metric, min(values))}–{fmt_value(metric, max(values))}"


def fmt_delta(metric: Metric, value: float | None, baseline: float | None) -> str:
    """Difference against the baseline: percentage points for percentages; the absolute difference for
    quantities that can cross zero (R²) or when the two have opposite signs (a relative change across zero
    means nothing); relative % otherwise."""
    if value is None or baseline is None:
        return ""
    if metric.delta_in_points:
        d = (value - baseline) * 100.0
        return f"{d:+.1f} pp" if abs(d) >= 0.05 else "±0 pp"
    if metric.delta_absolute or (value < 0) != (baseline < 0):
        d = value - baseline
        return f"{d:+.3g}" if d else "±0"
    if baseline == 0:
        return ""
    rel = (value - baseline) / abs(baseline) * 100.0
    if abs(rel) < 0.05:
        return "±0%"
    return f"{rel:+.0f}%" if abs(rel) >= 100 else f"{rel:+.1f}%"


def loss_unit(loss: str | None) -> str:
    """Unit note for the loss columns: cross-entropy in nats, MSE in squared target units."""
    return {"cross_entropy": "cross-entropy, nats", "mse": "MSE"}.get(loss or "", "")


def fmt_number(v: Any) -> str:
    """Generic display of a raw figure: ints with separators, floats with 4 significant digits, lists as JSON."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == 0:
            return "0"
        if 1e-3 <= abs(v) < 1e6:
            return f"{v:.4g}"
        return f"{v:.3e}"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def fmt_factor(v: Any, missing: str = "—") -> str:
    """A swept factor's value as it appears in a variant name and a settings line: 0.5, [32,64], adam."""
    if v is None:
        return missing
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def fmt_pct(x: Any, decimals: int = 1, missing: str = "—") -> str:
    """A fraction as a percentage number without the sign: 0.9234 -> '92.3' (``missing`` when not a number)."""
    return f"{x * 100:.{decimals}f}" if is_number(x) else missing


def pct2(x: float) -> str:
    """A fraction as a percentage with 2 significant digits, never in exponent form (0.00008 -> '0.008%',
    1.234 -> '120%')."""
    return f"{float(f'{x * 100:.2g}'):g}%"


def fmt_spec(v: Any, spec: str, missing: str = "—") -> str:
    """``format(v, spec)`` for numbers, ``missing`` otherwise."""
    return format(v, spec) if isinstance(v, int | float) and not isinstance(v, bool) else missing


# A spreadsheet reads a cell starting with one of these as a formula (CSV injection); tab and carriage return
# too, where a program strips them first. Such a text cell gets a leading apostrophe, the usual neutraliser.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v: Any) -> Any:
    """A value as a CSV cell: None empty, lists and dicts as compact JSON, numbers as they are, and text that
    a spreadsheet would run as a formula prefixed with ``'`` (a negative number is a number, not text)."""
    if v is None:
        return ""
    if isinstance(v, list | dict):
        v = json.dumps(v, separators=(",", ":"))
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def fmt_bytes(n: float) -> str:
    """A byte count in binary units, three significant digits: ``512 B``, ``3.10 MiB``, ``1.20 GiB``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while abs(n) >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.0f} B" if i == 0 else f"{_sig(n)} {units[i]}"
