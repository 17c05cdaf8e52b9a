"""Every study file shown in the README and docs/*.md passes ``trainlab check``: users copy these first."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import user_net_source

from trainlab import examples
from trainlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# (page, n-th study on it, the TOML): every ```toml block holding a [study] table is a whole study file.
STUDIES = [
    (page.relative_to(ROOT).as_posix(), i, block)
    for page in PAGES
    for i, block in enumerate(b for b in re.findall(r"```toml\n(.*?)```", page.read_text(), re.S) if "[study]" in b)
]


def test_the_readme_shows_a_study() -> None:
    assert any(page == "README.md" for page, _i, _b in STUDIES)


# The data function the docs show (docs/data.md, "Your own data"): the ```python block that starts "# mydata.py".
MYDATA = [
    block
    for page in PAGES
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    if block.startswith("# mydata.py")
]


def test_the_docs_data_function_is_the_shipped_example_and_works_beside_a_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The documented study names trainlab.examples:spirals, so that it runs as copied; the docs say a user's
    # mydata.py with the function shown is the same thing: it is, and it works as data.name = "mydata:spirals".
    [code] = MYDATA
    (tmp_path / "mydata.py").write_text(code)
    shown: dict[str, Any] = {"__file__": str(tmp_path / "mydata.py")}
    exec(compile(code, "mydata.py", "exec"), shown)  # the docs' own code, as a user would save it
    mine, shipped = shown["spirals"](n=50, noise=0.1, seed=3), examples.spirals(n=50, noise=0.1, seed=3)
    assert mine.keys() == shipped.keys() and mine["classes"] == shipped["classes"]
    for split in ("train", "test"):
        assert all(np.array_equal(a, b) for a, b in zip(mine[split], shipped[split], strict=True))
    [study] = [t for p, _i, t in STUDIES if p == "docs/data.md" and "trainlab.examples:spirals" in t]
    path = tmp_path / "study.toml"
    path.write_text(study.replace('"trainlab.examples:spirals"', '"mydata:spirals"'))
    assert main(["check", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(("page", "index", "toml"), STUDIES, ids=[f"{p}#{i}" for p, i, _t in STUDIES])
def test_each_documented_study_passes_check(tmp_path: Path, capsys: pytest.CaptureFixture[str], page: str,
                                            index: int, toml: str) -> None:  # fmt: skip
    path = tmp_path / "study.toml"  # nothing beside it: a study is checked as a user copies it
    path.write_text(toml)
    assert main(["check", str(path)]) == 0, f"{page}, study {index + 1}: {capsys.readouterr().err}"


# Fragments (one or more tables, no [study]) are shown as parts of a study: on a minimal study they pass too.
FRAGMENTS = [
    (page.relative_to(ROOT).as_posix(), i, block)
    for page in PAGES
    for i, block in enumerate(
        b for b in re.findall(r"```toml\n(.*?)```", page.read_text(), re.S) if "[study]" not in b and b.startswith("[")
    )
]


def test_the_docs_show_fragments() -> None:
    assert len(FRAGMENTS) >= 4


@pytest.mark.parametrize(("page", "index", "toml"), FRAGMENTS, ids=[f"{p}#{i}" for p, i, _t in FRAGMENTS])
def test_each_documented_fragment_passes_check_on_a_minimal_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], page: str, index: int, toml: str
) -> None:
    if "mymodels:" in toml:
        (tmp_path / "mymodels.py").write_text(user_net_source())  # the model docs/models.md names
    path = tmp_path / "study.toml"
    path.write_text('[study]\nname = "doc"\n\n' + toml)
    assert main(["check", str(path)]) == 0, f"{page}, fragment {index + 1}: {capsys.readouterr().err}"
