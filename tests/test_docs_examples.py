"""The study files shown in the README pass ``trainlab check``: users copy these first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trainlab.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
STUDIES = [block for block in re.findall(r"```toml\n(.*?)```", README.read_text(), re.S) if "[study]" in block]


def test_the_readme_shows_a_study() -> None:
    assert STUDIES


@pytest.mark.parametrize("index", range(len(STUDIES)))
def test_each_readme_study_passes_check(tmp_path, capsys, index) -> None:
    path = tmp_path / "study.toml"
    path.write_text(STUDIES[index])
    assert main(["check", str(path)]) == 0, capsys.readouterr().err
