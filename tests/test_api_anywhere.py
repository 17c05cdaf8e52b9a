"""trainlab.run with the default executor (each run in its own spawned process) from wherever users call it: a
script without an ``if __name__ == "__main__":`` guard, code read from standard input, a Jupyter kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_study, user_net_source

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


def test_results_as_a_plain_table_and_a_dataframe(tmp_path: Path) -> None:
    from trainlab.api import run

    study = tiny_study()
    study["sweep"] = {"train.lr": [0.05, 0.1]}
    result = run(study, out=tmp_path / "out", executor="inline")
    rows = result.table()
    assert [(r["variant"], r["status"]) for r in rows] == [("lr=0.05", "done"), ("lr=0.1", "done")]
    assert [r["train.lr"] for r in rows] == [0.05, 0.1]  # the settings, then the catalogue's figures
    assert all(0 <= r["test_acc"] <= 1 and r["train_time_s"] > 0 for r in rows)
    keys = list(rows[0])
    assert keys[:6] == ["variant", "seed", "repeat", "status", "error", "train.lr"]
    assert keys.index("test_acc") < keys.index("train_time_s")  # catalogue order, as results.csv
    pd = pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == keys and len(frame) == 2


def test_a_model_class_passed_as_an_object(tmp_path: Path) -> None:
    # One class from an importable module (each run in its own process imports it), one defined in the script
    # itself (only this process can: the runs go inline, and the user is told why).
    (tmp_path / "mynets.py").write_text(user_net_source("Net"))
    study = tiny_study(train={"epochs": 1, "lr": 0.05, "seed": 1, "device": "cpu", "threads": 1})
    code = (
        user_net_source("LocalNet")
        + "\nimport trainlab, mynets\n"
        + f"study = {json.loads(json.dumps(study))!r}\n"
        + "study['variant'] = [{'name': 'imported', 'model.name': mynets.Net, 'model.width': 4}]\n"
        + f"r = trainlab.run(study, out={str(tmp_path / 'a')!r})\n"
        + "print('STATUSES', sorted(x.status for x in r.records), r.records[0].config['model']['name'])\n"
        + "study['variant'] = [{'name': 'local', 'model.name': LocalNet}]\n"
        + f"r = trainlab.run(study, out={str(tmp_path / 'b')!r})\n"
        + "print('STATUSES', sorted(x.status for x in r.records), r.records[0].config['model']['name'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-"], input=code, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("STATUSES")]
    assert lines == ["STATUSES ['done'] mynets:Net", "STATUSES ['done'] __main__:LocalNet"], done.stdout
    assert "LocalNet is defined in your script or notebook" in done.stderr and "the runs go inline" in done.stderr


DATA_FUNCTION = """
import torch


def {name}(n: int = 48):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) * 0.3 + y[:, None].float()
    cut = n * 3 // 4
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])
"""


def test_a_data_function_passed_as_an_object(tmp_path: Path) -> None:
    # As a model class: one from an importable module (run in child processes), one defined in the script
    # (the runs go inline, and the user is told why); a lambda cannot be named, which is a clear error.
    (tmp_path / "mydata.py").write_text(DATA_FUNCTION.format(name="blobs"))
    study = tiny_study(train={"epochs": 1, "lr": 0.05, "seed": 1, "device": "cpu", "threads": 1})
    study["data"] = {"batch_size": 16}
    code = (
        DATA_FUNCTION.format(name="local_blobs")
        + "\nimport trainlab, mydata\n"
        + f"study = {json.loads(json.dumps(study))!r}\n"
        + "study['data']['name'] = mydata.blobs\n"
        + "study['data']['n'] = 60\n"
        + f"r = trainlab.run(study, out={str(tmp_path / 'a')!r})\n"
        + "print('STATUSES', [x.status for x in r.records], r.records[0].config['data']['name'],"
        + " r.records[0].results['num_train'])\n"
        + "study['data'] = {'name': local_blobs, 'batch_size': 16}\n"
        + f"r = trainlab.run(study, out={str(tmp_path / 'b')!r})\n"
        + "print('STATUSES', [x.status for x in r.records], r.records[0].config['data']['name'])\n"
        + "study['data'] = {'name': lambda: None}\n"
        + "try:\n"
        + f"    trainlab.run(study, out={str(tmp_path / 'c')!r})\n"
        + "except trainlab.errors.ConfigError as exc:\n"
        + "    print('REFUSED', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-"], input=code, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(("STATUSES", "REFUSED"))]
    assert lines[:2] == ["STATUSES ['done'] mydata:blobs 45", "STATUSES ['done'] __main__:local_blobs"], done.stdout
    assert lines[2].startswith("REFUSED data.name:") and "top level of a module" in lines[2]
    assert "data function local_blobs is defined in your script or notebook" in done.stderr
