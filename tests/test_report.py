"""build_report on synthetic stores: every output, the comparison table, escaping, running studies, speed."""

from __future__ import annotations

import csv
import html as html_lib
import re
import time
from pathlib import Path

import pytest
from sample_study import sample_config, write_sample_store

from trainlab.errors import TrainlabError
from trainlab.report import ReportPaths, build_report
from trainlab.store import Store

XSS = "<script>alert(1)</script>"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _comparison_rows(page: str) -> list[str]:
    """The <tr> blocks of table#comparison's body."""
    table = page[page.index('<table id="comparison"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return re.findall(r"<tr\b.*?</tr>", body, flags=re.S)


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportPaths]:
    """Three variants (one overfits) plus a failed one, two seeds each; every format."""
    out = tmp_path_factory.mktemp("sample")
    variants = [
        {"name": "small", "model.name": "mlp", "model.hidden": [16]},
        {"name": "medium", "model.name": "mlp", "model.hidden": [64]},
        {"name": "large", "model.name": "mlp", "model.hidden": [256]},
        {"name": "broken", "model.name": "mlp", "model.hidden": [8]},
    ]
    write_sample_store(out, sample_config(variants=variants, repeats=2), {"large": "overfit", "broken": "failed"})
    return out, build_report(out, formats=["html", "md", "csv", "latex"])


def test_every_format_is_written_and_returned(sample_report: tuple[Path, ReportPaths]) -> None:
    out, paths = sample_report
    assert set(paths.written()) == {"html", "md", "results_csv", "epochs_csv", "latex", "plots"}
    assert paths.html == out / "report.html" and paths.md == out / "report.md"
    assert paths.results_csv == out / "results.csv" and paths.epochs_csv == out / "epochs.csv"
    assert paths.latex == out / "report.tex" and paths.plots == out / "plots"
    assert all(p.exists() for p in paths.written().values())
    pngs = sorted(p.name for p in paths.plots.glob("*.png"))
    assert {"curves.png", "time_split.png", "pareto.png", "confusion.png"} <= set(pngs)
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_default_formats_are_html_md_csv(tmp_path: Path) -> None:
    write_sample_store(tmp_path)
    paths = build_report(tmp_path)
    assert set(paths.written()) == {"html", "md", "results_csv", "epochs_csv", "plots"}
    only_csv = build_report(tmp_path, formats=["csv"])
    assert set(only_csv.written()) == {"results_csv", "epochs_csv"}
    with pytest.raises(TrainlabError, match="unknown report format"):
        build_report(tmp_path, formats=["pdf"])


def test_results_csv_has_one_row_per_run_and_every_scalar_figure(sample_report) -> None:
    out, paths = sample_report
    rows = _rows(paths.results_csv)
    header = list(rows[0])
    assert header[:5] == ["study", "variant", "seed", "status", "error"]
    swept = Store(out / "trainlab.db").meta("swept_keys")
    assert header[5 : 5 + len(swept)] == swept  # one column per swept key, right after the lead columns
    assert len(rows) == 8 and [r["variant"] for r in rows[::2]] == ["small", "medium", "large", "broken"]
    assert {"test_acc", "train_time_s", "latency_p50_ms", "macs", "custom_metric"} <= set(header)
    assert "confusion" not in header and "normalize_mean" not in header  # lists are left out
    done = rows[0]
    assert done["status"] == "done" and float(done["custom_metric"]) == 42.5 and done["model.hidden"] == "[16]"
    broken = [r for r in rows if r["variant"] == "broken"]
    assert all(r["status"] == "failed" and "RuntimeError" in r["error"] and r["test_acc"] == "" for r in broken)


def test_epochs_csv_has_one_row_per_run_and_epoch(sample_report) -> None:
    out, paths = sample_report
    rows = _rows(paths.epochs_csv)
    store = Store(out / "trainlab.db")
    assert len(rows) == sum(len(store.epochs(r.run_id)) for r in store.runs()) == 6 * 6
    assert {"variant", "seed", "run_id", "epoch", "train_loss", "test_acc", "data_time_s"} <= set(rows[0])


def test_html_comparison_table_marks_best_worst_delta_ci_and_failures(sample_report) -> None:
    _out, paths = sample_report
    page = paths.html.read_text()
    rows = _comparison_rows(page)
    assert len(rows) == 4
    assert 'class="vname">small' in rows[0] and "baseline" in rows[0]
    assert "Test acc (%)" in page and "Train time (s)" in page and "Latency p50 (ms)" in page  # units in headers
    assert "↑ better" in page and "↓ better" in page
    assert re.search(r'class="num best', page) and re.search(r'class="num worst', page)
    assert re.search(r"[+-]\d+\.\d pp", rows[2])  # Δ vs the baseline, in percentage points for accuracy
    assert "±" in rows[1]  # two seeds: mean ± CI
    assert "failed" in rows[3] and "RuntimeError: mat1 and mat2 shapes" in page  # the reason is shown
    assert "Welch" in page and "t distribution" in page  # the statistics used are stated


def test_html_is_self_contained_and_has_alt_text(sample_report) -> None:
    _out, paths = sample_report
    page = paths.html.read_text()
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from anywhere
    assert "@import" not in page and "url(" not in page and "<link" not in page
    imgs = re.findall(r"<img [^>]*>", page)
    assert imgs and all('src="data:image/png;base64,' in i for i in imgs)
    assert all(re.search(r'alt="[^"]{20,}"', i) for i in imgs)
    assert "@media print" in page
    for section in ("findings", "comparison", "plot-curves", "plot-time-split", "plot-pareto", "statistics", "runs"):
        assert f'id="{section}"' in page
    # Every finding links to an element of the page.
    ids = set(re.findall(r'id="([^"]+)"', page))
    assert {href for href in re.findall(r'href="#([^"]+)"', page)} <= ids


def test_html_findings_come_first_and_name_the_overfitting_variant(sample_report) -> None:
    _out, paths = sample_report
    page = paths.html.read_text()
    assert page.index('id="findings"') < page.index('id="comparison"') < page.index('id="plot-curves"')
    findings = page[page.index('id="findings"') : page.index('id="comparison"')]
    assert "large overfits" in findings and "seen in 2 of 2 seeds" in findings
    assert "broken failed" in findings


def test_html_per_run_detail_is_collapsible(sample_report) -> None:
    out, paths = sample_report
    page = paths.html.read_text()
    store = Store(out / "trainlab.db")
    for rec in store.runs():
        assert f'<details class="run" id="run-{rec.run_id}">' in page
    assert "Resolved config" in page and "Layers (profile" in page and "Per epoch" in page and "Environment" in page
    assert "fc1" in page and "Sample CPU @ 3.0GHz" in page  # layer table and machine


def test_markdown_has_the_same_tables_and_plot_files(sample_report) -> None:
    out, paths = sample_report
    md = paths.md.read_text()
    assert "## Findings" in md and "## Comparison" in md
    table = md[md.index("## Comparison") :]
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| Variant | Status | Test acc (%)") and lines[1].startswith("|---")
    assert [ln.split("|")[1].strip() for ln in lines[2:6]] == ["small (baseline)", "medium", "large", "broken"]
    for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / img).is_file(), img


def test_latex_tables_are_escaped(sample_report) -> None:
    _out, paths = sample_report
    tex = paths.latex.read_text()
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and tex.count(r"\begin{table}") >= 2
    assert r"Test acc (\%)" in tex and r"\textbf{" in tex and "$\\pm$" in tex
    assert "_" not in tex.replace(r"\_", "").split("\n", 3)[-1].replace("\\label{tab:", "")  # underscores escaped


def test_user_text_is_escaped_everywhere(tmp_path: Path) -> None:
    variants = [
        {"name": "plain", "model.name": "mlp", "model.hidden": [16]},
        {"name": f"v{XSS}", "model.name": "mlp", "model.hidden": [32]},
    ]
    cfg = sample_config(name=XSS, description=f"desc {XSS} & <b>bold</b>", variants=variants)
    write_sample_store(tmp_path, cfg, {"plain": "failed"}, classes=["a", XSS, "c"])
    paths = build_report(tmp_path, formats=["html", "md", "latex"])
    page = paths.html.read_text()
    assert "<script" not in page.lower() and "<b>bold</b>" not in page
    assert f'<h1 id="title">{html_lib.escape(XSS, quote=False)}</h1>' in page
    assert html_lib.escape(XSS, quote=False) in page.split("<title>")[1]
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # name, variant, class name, ...
    md = paths.md.read_text()
    assert "<script>" not in md
    assert "<script>" not in paths.latex.read_text()


def test_a_running_study_is_reported_as_far_as_it_got(tmp_path: Path) -> None:
    write_sample_store(tmp_path, behaviour={"medium": "running", "large": "pending"})
    paths = build_report(tmp_path)
    page = paths.html.read_text()
    rows = _comparison_rows(page)
    assert len(rows) == 3
    assert "running (epoch 3/6)" in rows[1] and ">pending<" in rows[2]
    assert "still running" in page
    curves_alt = re.search(r'<figure id="plot-curves">.*?alt="([^"]+)"', page, flags=re.S).group(1)
    assert "medium" in curves_alt and "large" not in curves_alt  # the running run's finished epochs are plotted
    results = _rows(paths.results_csv)
    assert [r["status"] for r in results] == ["done", "running", "pending"]


def test_an_empty_store_still_builds(tmp_path: Path) -> None:
    write_sample_store(tmp_path, behaviour={"small": "pending", "medium": "pending", "large": "pending"})
    paths = build_report(tmp_path)
    page = paths.html.read_text()
    assert len(_comparison_rows(page)) == 3 and "<img" not in page


def test_no_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainlabError, match=r"no trainlab\.db"):
        build_report(tmp_path)


def test_numeric_sweep_gets_a_factor_plot(tmp_path: Path) -> None:
    cfg = sample_config(variants=[], sweep={"train.lr": [0.01, 0.1, 1.0]})
    cfg.pop("variant", None)
    write_sample_store(tmp_path, cfg)
    paths = build_report(tmp_path)
    page = paths.html.read_text()
    assert 'id="plot-factors-train-lr-' in page
    assert next(paths.plots.glob("factor_*.png")).stat().st_size > 1000
    # Sweep points are named after their values: no extra settings line is needed.
    assert 'class="vname">lr=0.01' in page and 'class="settings"' not in page


def test_regression_studies_are_judged_by_r2(tmp_path: Path) -> None:
    store = write_sample_store(tmp_path)
    for i, rec in enumerate(store.runs()):
        res = dict(rec.results)
        res.update(test_acc=None, train_acc=None, best_test_acc=None, confusion=None, test_r2=0.5 + 0.1 * i,
                   test_mae=0.3 - 0.05 * i)  # fmt: skip
        store.finish_run(rec.run_id, "done", results=res)
        for e in store.epochs(rec.run_id):
            store.add_epoch(rec.run_id, {**e, "train_acc": None, "test_acc": None, "test_r2": 0.4 + 0.02 * e["epoch"]})
    page = build_report(tmp_path).html.read_text()
    header = page[page.index('<table id="comparison"') : page.index("</thead>", page.index('<table id="comparison"'))]
    assert "Test R²" in header and "Test MAE" in header and "Test acc" not in header
    assert "By test R²: large 0.700, medium 0.600, small 0.500 — large is best" in page  # the verdict
    assert 'id="confusion"' not in page


def test_rebuild_removes_plots_of_variants_no_longer_reported(tmp_path: Path) -> None:
    write_sample_store(tmp_path)
    paths = build_report(tmp_path)
    stale = paths.plots / "confusion_old.png"
    stale.write_bytes(b"x")
    build_report(tmp_path)
    assert not stale.exists() and (paths.plots / "curves.png").exists()


def test_a_ten_run_study_of_25_epochs_reports_in_seconds(tmp_path: Path) -> None:
    variants = [{"name": f"w{w}", "model.name": "mlp", "model.hidden": [w]} for w in (8, 16, 24, 32, 48)]
    write_sample_store(tmp_path, sample_config(variants=variants, repeats=2, epochs=25, num_classes=10))
    build_report(tmp_path, formats=["csv"])  # warm imports (matplotlib, scipy) outside the timing
    # CPU time of this process, not wall time: other processes on a busy CI machine must not fail the test.
    start, wall = time.process_time(), time.perf_counter()
    build_report(tmp_path)
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    assert cpu < 8.0, f"report took {cpu:.1f} s of CPU ({wall:.1f} s wall)"  # ~1.5-3 s on a 2-core machine


def test_the_user_doc_defines_every_curated_figure_and_threshold() -> None:
    from trainlab.measure.metrics import METRICS
    from trainlab.report import finding as findings  # the thresholds

    doc = (Path(__file__).resolve().parent.parent / "docs" / "report.md").read_text()
    assert [m.key for m in METRICS if f"`{m.key}`" not in doc] == []
    for name in (
        "OVERFIT_LOSS_RISE",
        "UNDERFIT_TRAIN_ACC",
        "UNDERFIT_LOSS_DROP",
        "DATA_BOUND_SHARE",
        "LOW_MFU",
        "NOT_CONVERGED_WINDOW",
        "NOT_CONVERGED_FALL",
    ):
        assert f"`{name} = {getattr(findings, name):g}" in doc, name
