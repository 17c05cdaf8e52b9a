"""One rule for relative paths: a path the study file names is read from the study file's folder, whichever
folder trainlab runs from, in check, profile and run (each run in its own process); a --set path from the
current folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import to_toml, user_net_source

from trainlab.study import load_study

TINY_NET = user_net_source()


def _table(path: Path, rows: int = 60) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def study_elsewhere(tmp_path: Path) -> tuple[Path, Path]:
    """A study in project/ naming data/table.csv and mymodels:TinyNet beside it; and another working folder."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _table(project / "data" / "table.csv")
    (project / "mymodels.py").write_text(TINY_NET)
    study = {
        "study": {"name": "paths"},
        "data": {"name": "csv", "root": "data/table.csv", "target": "label", "batch_size": 16},
        "model": {"name": "mymodels:TinyNet", "width": 8},
        "train": {"epochs": 1, "lr": 0.05, "seed": 1, "threads": 1},
        "measure": {"latency_repeats": 3, "throughput_time_s": 0.05},
    }
    (project / "study.toml").write_text(to_toml(study))
    return project / "study.toml", elsewhere


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-m", "trainlab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_the_study_folder_anchors_data_root_and_a_user_model_in_check_profile_and_run(
    study_elsewhere: tuple[Path, Path],
) -> None:
    study, elsewhere = study_elsewhere
    rel = os.path.relpath(study, elsewhere)  # ../project/study.toml
    for args in (["check", rel], ["profile", rel]):
        done = _cli(*args, cwd=elsewhere)
        assert done.returncode == 0, (args, done.stderr)
    done = _cli("run", rel, "--out", "out", "--quiet", cwd=elsewhere)  # each run in its own process
    assert done.returncode == 0, done.stderr
    assert (elsewhere / "out" / "report.html").is_file()
    [spec] = load_study(study).runs
    assert spec.config.data.root == str(study.parent.resolve() / "data" / "table.csv")


def test_a_set_path_is_read_from_the_current_folder(study_elsewhere: tuple[Path, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    study, elsewhere = study_elsewhere
    _table(elsewhere / "mine.csv")
    monkeypatch.chdir(elsewhere)
    [spec] = load_study(study, ["data.root=mine.csv"]).runs
    assert spec.config.data.root == str(elsewhere / "mine.csv")
    [spec] = load_study(study, ["data.root=~/x.csv"]).runs  # home and absolute paths stay as they are
    assert spec.config.data.root == "~/x.csv"


def test_two_studies_with_their_own_mymodels_in_one_process_each_get_theirs(tmp_path: Path) -> None:
    # A notebook that runs two studies, each with a mymodels.py beside it: the second is not refused as if the
    # first were an installed library, and its own file is the one loaded.
    for name in ("one", "two"):
        folder = tmp_path / name
        _table(folder / "data" / "table.csv")
        (folder / "mymodels.py").write_text(TINY_NET + f"\nWHO = {name!r}\n")
        study = {"study": {"name": name}, "data": {"name": "csv", "root": "data/table.csv", "target": "label"},
                 "model": {"name": "mymodels:TinyNet"}, "train": {"epochs": 1}}  # fmt: skip
        (folder / "study.toml").write_text(to_toml(study))
        load_study(folder / "study.toml")
        assert name == sys.modules["mymodels"].WHO
