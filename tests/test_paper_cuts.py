"""Small things a new user tripped over: each stays fixed."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import to_toml

from trainlab.cli import main
from trainlab.data.tabular import CsvOptions

ROOT = Path(__file__).resolve().parent.parent


def test_every_csv_option_is_in_the_data_docs() -> None:
    table = (ROOT / "docs" / "data.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)`", table, re.M)) | {
        k for row in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)+) \|", table, re.M) for k in re.findall(r"`(\w+)`", row)
    }
    missing = [k for k in CsvOptions.model_fields if k not in documented]
    assert not missing, f"docs/data.md does not document the csv options {missing}"


def test_the_terminal_table_of_a_regression_shows_r2_not_accuracy(tmp_path: Path, capsys) -> None:
    rows = ["x,y"] + [f"{i / 10},{2 * i / 10 + 1}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    study = {"study": {"name": "reg"}, "data": {"name": "csv", "root": "t.csv", "target": "y", "task": "regression",
             "batch_size": 16}, "model": {"name": "mlp", "hidden": [8]},
             "train": {"epochs": 1, "lr": 0.01, "loss": "mse", "threads": 1},
             "measure": {"latency_repeats": 3, "throughput_time_s": 0.05}}  # fmt: skip
    (tmp_path / "s.toml").write_text(to_toml(study))
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--executor", "inline"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "variant" in line and "status" in line)
    assert "R²" in header and "acc" not in header.lower(), header
    assert " R² " in out and "acc —" not in out  # the epoch lines too


def test_an_unknown_model_key_given_with_set_is_blamed_on_set_and_one_in_the_file_on_its_line(
    tmp_path: Path, capsys
) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[study]\nname = "x"\n\n[data]\nname = "digits"\n\n[model]\nname = "mlp"\nhidden = [16]\n')
    assert main(["check", str(path), "--set", "model.widht=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'model.widht'" in err and "(from --set)" in err and "line" not in err
    path.write_text(path.read_text() + "widht = 4\n")
    assert main(["check", str(path)]) == 2
    assert "line 10)" in capsys.readouterr().err  # the key's own line, not the [model] table's
