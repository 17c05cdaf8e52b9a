"""Every shipped recipe: listed, documented, and runnable end to end on its --smoke stand-in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainlab.api import run
from trainlab.cli import main
from trainlab.measure.metrics import derived
from trainlab.study import load_study
from trainlab.study.recipes import list_recipes, recipe_path, smoke_overrides

RECIPES = [name for name, _ in list_recipes()]
EXPECTED = {
    "quickstart", "mnist_logreg", "mnist_fc_dropout", "mnist_fc_normalization", "mnist_cnn_design",
    "mnist_cnn_regularization", "cifar10_resnet18", "cifar10_dataloader_workers", "cifar10_devices",
    "cifar10_optimizers", "cifar10_no_batchnorm", "resnet18_anatomy", "cifar10_mlp", "scene15_simplenet",
    "scene15_alexnet_finetune", "housing_mlp", "cifar10_precision", "mnist_optimizers", "mnist_optimizers_tuned",
    "cifar10_optimizers_tuned",
}  # fmt: skip


def test_all_recipes_are_listed_with_a_description_and_a_source(capsys):
    assert set(RECIPES) == EXPECTED
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert name in out
        text = recipe_path(name).read_text()
        assert text.startswith("#"), f"{name}: the recipe must open with a comment giving its source setting"
        assert "Source setting" in text or name == "quickstart"
        assert load_study(f"recipe:{name}").config.study.description


def test_unknown_recipe_suggests():
    with pytest.raises(Exception, match="did you mean 'mnist_logreg'"):
        load_study("recipe:mnist_logre")


# bf16 on a CPU without bf16 units is ~20x slower than fp32: the precision study's stand-in gets smaller images.
# The tuned ResNet-18 twin (5 variants x (2 trials + 2 seeds)) gets one seed and smaller images for the same reason.
SMALLER = {
    "cifar10_precision": ["data.shape=[3, 8, 8]"],
    "cifar10_optimizers_tuned": ["data.shape=[3, 8, 8]", "repeats=1"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_smoke(name, tmp_path):
    overrides = smoke_overrides(f"recipe:{name}", ["train.threads=1", *SMALLER.get(name, [])])
    result = run(f"recipe:{name}", overrides, out=tmp_path, isolate=False)
    statuses = {r.variant: (r.status, r.error) for r in result.records}
    assert result.records, name
    for variant, (status, error) in statuses.items():
        if status == "skipped":  # e.g. the cuda variant of cifar10_devices on a machine without CUDA
            assert "cuda" in variant and ("not available" in error or "needs the run on a GPU" in error)
        else:
            assert status == "done", f"{name}/{variant}: {status}: {error}"
    assert (tmp_path / "report.html").is_file() and (tmp_path / "results.csv").is_file()
    study = load_study(f"recipe:{name}", overrides)
    for r in result.records:
        res = {**r.results, **derived(r.results)}  # the report derives a few (data_share)
        if r.status != "done":
            continue
        for col in study.config.study.columns or []:  # the table the recipe asks for has every figure
            assert col in res, f"{name}: column {col} missing from results"


def test_smoke_through_the_cli_in_child_processes(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "trainlab", "run", "recipe:housing_mlp", "--smoke", "--quiet",
         "--set", "train.threads=1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 runs, 0 failed" in proc.stdout


def test_recipe_without_its_data_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "empty"))
    code = main(["run", "recipe:mnist_logreg", "--no-download", "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "train-images-idx3-ubyte" in err and "trainlab data get mnist" in err
    assert not (tmp_path / "out").exists()
