"""``trainlab compare A B``: one table across two studies' matching variants."""

from __future__ import annotations

from pathlib import Path

import pytest
from sample_study import sample_config, write_sample_store

from trainlab.cli import main
from trainlab.errors import TrainlabError
from trainlab.report.compare import compare_command, compare_rows, config_differences
from trainlab.report.study import StudyView


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    write_sample_store(a, sample_config(repeats=3))
    variants = [
        {"name": "medium", "model.name": "mlp", "model.hidden": [64]},
        {"name": "large", "model.name": "mlp", "model.hidden": [256]},
        {"name": "only_in_b", "model.name": "mlp", "model.hidden": [8]},
    ]
    write_sample_store(b, sample_config(variants=variants, repeats=3), {"large": "failed"}, seed=7)
    return a, b


def test_rows_match_variants_by_name(two_studies: tuple[Path, Path]) -> None:
    a, b = two_studies
    rows = compare_rows(StudyView.load(a), StudyView.load(b))
    assert list(dict.fromkeys(r.variant for r in rows)) == ["medium", "large"]
    acc = next(r for r in rows if r.variant == "medium" and r.metric.key == "test_acc")
    assert "±" in acc.a and "±" in acc.b and acc.delta.endswith("pp") and acc.p is not None
    failed = next(r for r in rows if r.variant == "large" and r.metric.key == "test_acc")
    assert failed.b == "3 failed" and failed.delta == "" and failed.p is None
    params = next(r for r in rows if r.variant == "medium" and r.metric.key == "params")
    assert params.p is None and params.delta == "±0%" and "±" not in params.a  # fixed by the model: not tested


def test_command_prints_and_writes_markdown(two_studies, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = two_studies
    out = tmp_path / "cmp" / "comparison.md"
    assert compare_command(a, b, out) == 0
    printed = capsys.readouterr().out
    assert "medium" in printed and "Welch" in printed and "only_in_b" not in printed
    md = out.read_text()
    assert md.startswith("# Comparison: sample study (A) vs sample study (B)")
    # issue 22: compare reads the report's one rule (paired on shared seeds, Holm-adjusted), not always Welch's
    assert "| Variant | Metric | A | B | Δ (B vs A) | p (Holm) |" in md and "| medium | Test acc (%) |" in md


def test_cli_compare_and_its_errors(two_studies, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = two_studies
    assert main(["compare", str(a), str(b)]) == 0
    assert main(["compare", str(a), str(tmp_path)]) == 2
    assert "holds no trainlab.db" in capsys.readouterr().err
    with pytest.raises(TrainlabError, match=r"no trainlab\.db"):
        compare_command(tmp_path, a, None)


def test_no_common_variant_is_a_clear_error(two_studies, tmp_path: Path) -> None:
    a, _b = two_studies
    other = tmp_path / "other"
    write_sample_store(other, sample_config(variants=[{"name": "zzz", "model.name": "mlp", "model.hidden": [4]}]))
    with pytest.raises(TrainlabError, match=r"no variant names in common.*zzz"):
        compare_command(a, other, None)


def test_a_side_timed_on_a_busy_machine_is_marked_not_tested(two_studies: tuple[Path, Path]) -> None:
    from trainlab.report.tables import BUSY_MARK

    a, b = two_studies
    va, vb = StudyView.load(a), StudyView.load(b)
    for run in vb.variants[0].runs:  # "medium" in B: every epoch shared its CPUs with another job
        for e in run.epochs:
            e.cpu_cores, e.other_cores, e.cores = 1.0, 1.0, 2
    rows = [r for r in compare_rows(va, vb) if r.variant == "medium"]
    train_time = next(r for r in rows if r.metric.key == "train_time_s")
    assert train_time.mark == BUSY_MARK
    acc = next(r for r in rows if r.metric.key == "test_acc")
    assert acc.mark != BUSY_MARK  # accuracy is not a timing


def test_two_studies_of_one_name_show_the_config_key_they_differ_in(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_sample_store(a, sample_config())
    limited = sample_config()
    limited["data"]["limit_train"] = 64
    write_sample_store(b, limited)
    [diff] = config_differences(StudyView.load(a), StudyView.load(b))
    assert (diff.key, diff.a, diff.b) == ("data.limit_train", None, 64) and len(diff.variants) == 3
    assert compare_command(a, b, tmp_path / "c.md") == 0
    assert "config differs: data.limit_train: None (A) → 64 (B), in every variant" in capsys.readouterr().out
    assert "data.limit\\_train: None (A) → 64 (B), in every variant" in (tmp_path / "c.md").read_text()
    write_sample_store(tmp_path / "a2", sample_config())
    assert config_differences(StudyView.load(a), StudyView.load(tmp_path / "a2")) == []
