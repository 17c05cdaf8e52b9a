"""trainlab.run with the default executor (each run in its own spawned process) from wherever users call it: a
script without an ``if __name__ == "__main__":`` guard, code read from standard input, a Jupyter kernel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_study

# The same few lines a user would write, with no main guard: the study's runs each go to a spawned child.
SCRIPT = """
import trainlab
result = trainlab.run({study!r}, out={out!r})
print("STATUSES", sorted(r.status for r in result.records))
"""


def _code(tmp_path: Path) -> str:
    study = tiny_study(train={"epochs": 1, "lr": 0.05, "seed": 1, "device": "cpu", "threads": 1})
    study["sweep"] = {"train.lr": [0.05, 0.1]}
    return SCRIPT.format(study=json.loads(json.dumps(study)), out=str(tmp_path / "out"))


def _statuses(output: str) -> str:
    return next((line for line in output.splitlines() if line.startswith("STATUSES")), output[-2000:])


def test_a_script_without_a_main_guard(tmp_path: Path) -> None:
    script = tmp_path / "study_script.py"
    script.write_text(_code(tmp_path))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _statuses(done.stdout) == "STATUSES ['done', 'done']"


def test_code_read_from_standard_input(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-"], input=_code(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert _statuses(done.stdout) == "STATUSES ['done', 'done']"


def test_a_jupyter_kernel(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_code(tmp_path))])
    # A real ipykernel process, started and driven by nbclient as Jupyter does (no server, no network).
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = "".join(o.get("text", "") for o in notebook.cells[0].outputs if o.get("output_type") == "stream")
    assert _statuses(outputs) == "STATUSES ['done', 'done']", outputs[-2000:]
