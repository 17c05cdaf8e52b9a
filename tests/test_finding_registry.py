"""The finding registry: one list of rules, checked against the kinds, and the quickstart's findings it yields."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainlab.api import run
from trainlab.report import registry
from trainlab.report.finding import KINDS, Finding
from trainlab.report.findings import study_findings
from trainlab.report.study import StudyView

ROOT = Path(__file__).resolve().parents[1]


def test_every_kind_has_a_rule_and_every_rule_a_known_kind() -> None:
    assert {r.kind for r in registry.RULES} == set(KINDS)
    # The report shows kinds in registry order, and that order is the one the Kind list documents.
    assert sorted(KINDS, key=registry.KIND_ORDER.__getitem__) == list(KINDS)


def test_a_misspelt_kind_or_severity_is_refused_not_sorted_last() -> None:
    with pytest.raises(ValueError, match="'overfiting' is not one of"):
        Finding("overfiting", "warning", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="severity 'error'"):
        Finding("fit", "error", "x")  # type: ignore[arg-type]


def test_rules_sharing_a_kind_agree_and_a_superseding_rule_comes_first() -> None:
    for kind in KINDS:
        rules = [r for r in registry.RULES if r.kind == kind]
        assert len({id(r.merge) for r in rules if r.merge}) <= 1, kind
        assert len({id(r.advise) for r in rules if r.advise}) <= 1, kind
        assert len({r.fold_into for r in rules if r.fold_into}) <= 1, kind
    for i, rule in enumerate(registry.RULES):
        for kind in rule.superseded_by:
            assert registry.KIND_ORDER[kind] < i, f"{rule.kind} is superseded by {kind}, which must run first"
            assert {r.scope for r in registry.RULES if r.kind == kind} == {rule.scope}, (rule.kind, kind)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quickstart")
    result = run(ROOT / "recipes" / "quickstart.toml", out=out, isolate=False)
    assert {r.status for r in result.records} == {"done"}, [(r.variant, r.error) for r in result.records]
    return out


def test_the_quickstart_report_has_at_most_eight_findings_the_verdict_first(quickstart: Path) -> None:
    findings = study_findings(StudyView.load(quickstart))
    # On a machine busy with other work the report rightly says more: which timings cannot be compared. Those
    # findings are the machine's, not the study's, and are not counted.
    machine = [f for f in findings if f.kind == "busy_machine" or "machine_affected" in f.figures]
    assert 3 <= len(findings) - len(machine) <= 8, [f.text for f in findings]
    assert len(machine) <= 2, [f.text for f in machine]
    assert findings[0].kind == "verdict"
    # The best test accuracy and train time are the verdict's own statements: no second sentence says them.
    assert not [f for f in findings if f.kind == "best" and f.metric in ("test_acc", "train_time_s")]
    # The other winners in one sentence, each named once (besides, on a busy machine, the spoiled rankings).
    assert sum(f.kind == "best" and f not in machine for f in findings) <= 1
    merged = [f for f in findings if f.about]
    for f in merged:  # a merged finding names each of its variants once
        assert all(f.text.count(f"{v} (") == 1 for v in f.about), f.text
    md = (quickstart / "report.md").read_text()
    section = md[md.index("## Findings") : md.index("## Comparison")]
    assert section.count("\n- ") == len(findings)
    assert " = —" not in section and "_exceeds_noise" not in section  # sentences, not figure dumps
