"""Study-file validation, --set overrides, sweep expansion, run ids and the JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import tiny_study

from trainlab.cli import main
from trainlab.config import json_schema
from trainlab.errors import ConfigError
from trainlab.study import load_study, parse_override


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def error_of(source, overrides=None) -> str:
    with pytest.raises(ConfigError) as exc:
        load_study(source, overrides)
    return str(exc.value)


def test_defaults_validate():
    study = load_study({})
    assert len(study.runs) == 1
    assert study.runs[0].variant == "base"
    assert study.runs[0].config.data.name == "digits"


def test_unknown_key_names_key_line_and_suggestion(tmp_path):
    p = write(tmp_path, '[study]\nname = "x"\n\n[train]\nepochs = 2\nlrr = 0.1\n')
    msg = error_of(p)
    assert "unknown key 'train.lrr'" in msg
    assert "did you mean 'lr'" in msg
    assert "line 6" in msg and str(p) in msg
    assert "allowed here:" in msg and "momentum" in msg


def test_unknown_section():
    msg = error_of({"trian": {"epochs": 1}})
    assert "unknown key 'trian'" in msg and "did you mean 'train'" in msg


def test_wrong_type_and_negative_batch_size():
    msg = error_of({"train": {"epochs": "ten"}, "data": {"batch_size": -4}})
    assert "train.epochs" in msg and "'ten'" in msg
    assert "data.batch_size" in msg and "greater than 0" in msg and "-4" in msg


@pytest.mark.parametrize(
    ("section", "value", "suggestion"),
    [("data", "mnsit", "mnist"), ("model", "simple_cn", "simple_cnn"), ("train", "adamm", "adam")],
)
def test_unknown_names_did_you_mean(section, value, suggestion):
    key = {"data": "name", "model": "name", "train": "optimizer"}[section]
    msg = error_of({section: {key: value}})
    assert f"'{suggestion}'" in msg and "did you mean" in msg
    assert "allowed" in msg or "Input should be" in msg


def test_model_kwargs_validated_against_the_model():
    msg = error_of({"model": {"name": "mlp", "dropuot": 0.5}})
    assert "model.dropuot" in msg and "did you mean 'dropout'" in msg
    msg = error_of({"model": {"name": "mlp", "dropout": 1.5}})
    assert "model.dropout" in msg and "1.5" in msg


def test_impossible_values():
    assert "momentum" in error_of({"train": {"optimizer": "nesterov"}})  # nesterov needs momentum
    assert "fraction" in error_of({"train": {"target_accuracy": 96}})
    assert "one per channel" in error_of({"data": {"normalize": {"mean": [0.1, 0.2], "std": [0.3]}}})


def test_set_overrides_are_validated_and_say_so():
    study = load_study(tiny_study(), ["train.lr=0.5", "data.batch_size=8", "model.hidden=[4, 4]"])
    cfg = study.runs[0].config
    assert cfg.train.lr == 0.5 and cfg.data.batch_size == 8 and cfg.model.kwargs["hidden"] == [4, 4]
    msg = error_of(tiny_study(), ["train.lr=fast"])
    assert "train.lr" in msg and "(from --set)" in msg
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_study(tiny_study(), ["train.lr"])


def test_parse_override_literals():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a=0.5") == ("a", 0.5)
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("train.optimizer=adam") == ("train.optimizer", "adam")  # bare word: a string
    assert parse_override('s="x=y"') == ("s", "x=y")


def test_sweep_grid_times_repeats():
    study = load_study(tiny_study(sweep={"model.dropout": [0.0, 0.5], "train.lr": [0.1, 0.01]}, repeats=2))
    assert len(study.runs) == 8
    names = [r.variant for r in study.runs]
    assert names[0] == "dropout=0,lr=0.1"
    assert len(set(names)) == 4
    seeds = [r.seed for r in study.runs if r.variant == names[0]]
    assert seeds == [3, 4]  # train.seed + repeat
    assert study.swept_keys == ["model.dropout", "train.lr"]
    assert {r.config.model.kwargs["dropout"] for r in study.runs} == {0.0, 0.5}


def test_variants_and_sweep_combine_and_baseline():
    study = load_study(
        tiny_study(
            variant=[{"name": "plain"}, {"name": "wide", "model.hidden": [64]}],
            sweep={"train.lr": [0.1, 0.2]},
            study={"name": "t", "baseline": "plain/lr=0.1"},
        )
    )
    assert [r.variant for r in study.runs] == ["plain/lr=0.1", "plain/lr=0.2", "wide/lr=0.1", "wide/lr=0.2"]
    assert study.baseline == "plain/lr=0.1"
    assert study.runs[2].config.model.kwargs["hidden"] == [64]


def test_bad_variants():
    assert "needs a name" in error_of(tiny_study(variant=[{"model.hidden": [3]}]))
    assert "unique" in error_of(tiny_study(variant=[{"name": "a"}, {"name": "a"}]))
    msg = error_of(tiny_study(variant=[{"name": "a", "train.lrr": 1}]))
    assert "variant 'a'" in msg and "train.lrr" in msg
    assert "no variant named" in error_of(tiny_study(variant=[{"name": "a"}], study={"name": "t", "baseline": "b"}))
    assert "has no values" in error_of(tiny_study(sweep={"train.lr": []}))


def test_run_ids_are_stable_and_distinct():
    a = load_study(tiny_study(sweep={"train.lr": [0.1, 0.2]}))
    b = load_study(tiny_study(sweep={"train.lr": [0.1, 0.2]}))
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]
    assert len({r.run_id for r in a.runs}) == 2
    c = load_study(tiny_study(sweep={"train.lr": [0.1, 0.2]}), ["train.epochs=3"])
    assert not {r.run_id for r in a.runs} & {r.run_id for r in c.runs}


def test_schema_has_every_section():
    schema = json_schema()
    assert {"study", "data", "model", "train", "measure", "sweep", "variant", "repeats"} <= set(schema["properties"])
    json.dumps(schema)


def test_cli_config_error_exit_2_no_traceback(tmp_path, capsys):
    p = write(tmp_path, '[data]\nname = "digits"\nbatch_size = -1\n')
    assert main(["run", str(p), "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "data.batch_size" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_cli_missing_data_exit_2(tmp_path, capsys):
    p = write(tmp_path, f'[data]\nname = "mnist"\nroot = "{tmp_path / "nothing"}"\ndownload = false\n')
    assert main(["run", str(p), "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and str(tmp_path / "nothing") in err
    assert not (tmp_path / "out").exists()


def test_cli_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = write(tmp_path, "[train]\nepochs = 1\n")
    assert main(["run", str(p), "--quiet", "--out", str(blocker / "sub")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_cli_check_and_schema(tmp_path, capsys):
    p = write(tmp_path, '[sweep]\n"model.name" = ["logreg", "mlp"]\n')
    assert main(["check", str(p)]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and "name=logreg" in out
    assert main(["schema", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "trainlab study"


def test_run_id_ignores_keys_left_at_their_defaults():
    # An upgrade that adds an option with a default must not orphan an existing study's runs.
    plain = load_study(tiny_study()).runs[0].run_id
    explicit = load_study(tiny_study(data={"download": True, "pin_memory": False})).runs[0].run_id
    assert plain == explicit
    assert load_study(tiny_study(data={"pin_memory": True})).runs[0].run_id != plain
