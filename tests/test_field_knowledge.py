"""Config fields carry their own knowledge: performance-only keys and --smoke stand-ins are marked on the fields
and read from the schema (trainlab.config), not kept in lists beside the code that uses them."""

from __future__ import annotations

import pytest

from trainlab.config import (
    RunConfig,
    StudyConfig,
    performance_only_keys,
    performance_only_reason,
    smoke_settings,
)
from trainlab.report.verdict import _why, performance_only
from trainlab.schema import field_at
from trainlab.study.recipes import list_recipes, smoke_overrides

# The hand-written list the report kept before the marks moved onto the fields (key -> why, for the text).
OLD_PERFORMANCE_ONLY = {
    "data.num_workers": "the batches are identical for every worker count",
    "data.pin_memory": "pinning only changes how batches are copied",
    "data.persistent_workers": "it only keeps the workers alive between epochs",
    "data.prefetch_factor": "it only changes how far ahead workers load",
    "data.loader": "both loaders yield the same batches",
    "data.pipeline": "both pipelines apply the same transforms with the same random choices",
    "data.test_batch_size": "it only changes how the test split is batched",
    "train.threads": "threads only split the same arithmetic",
    "train.device": "every device runs the same arithmetic",
    "train.compile": "compilation runs the same arithmetic",
    "train.channels_last": "the memory layout does not change the arithmetic",
    "train.deterministic": "it only chooses deterministic kernels",
    "train.checkpoint": "checkpoints are written outside the training step",
}
OLD_PREFIXES = ("measure.", "deploy.", "track.")


def test_performance_only_keys_are_the_old_list_and_prefixes():
    marked = performance_only_keys()
    assert {k: v for k, v in marked.items() if not k.endswith(".")} == OLD_PERFORMANCE_ONLY
    assert sorted(k for k in marked if k.endswith(".")) == sorted(OLD_PREFIXES)


def test_every_performance_only_key_names_a_real_field():
    for key in performance_only_keys():
        if key.endswith("."):
            assert key[:-1] in StudyConfig.model_fields, key
        else:
            field_at(StudyConfig, key)  # KeyError: the mark is on no field


@pytest.mark.parametrize(
    "key",
    [*OLD_PERFORMANCE_ONLY, "measure.mfu", "measure.infer_limit", "deploy.methods", "track.to", "train.lr",
     "train.epochs", "model.dropout", "data.batch_size", "data.augment.hflip", "measure", "train", "sweep.x"],
)  # fmt: skip
def test_the_report_judges_as_before(key):
    before = key in OLD_PERFORMANCE_ONLY or key.startswith(OLD_PREFIXES)
    assert performance_only(key) is before
    assert (performance_only_reason(key) is not None) is before
    assert _why(key) == OLD_PERFORMANCE_ONLY.get(key, "it does not enter training")


def test_a_renamed_field_would_take_its_mark_along():
    # The marks are read from the fields themselves: every one is a field of the composed schema.
    assert field_at(RunConfig, "data.num_workers").json_schema_extra["performance_only"]
    with pytest.raises(KeyError):
        field_at(RunConfig, "data.no_such_key")


def test_smoke_settings_declared_on_fields():
    assert smoke_settings({}) == {
        "data.batch_size": 8,
        "data.num_workers": 0,
        "train.epochs": 1,
        "measure.infer_limit": 4,
        "measure.latency_repeats": 3,
        "measure.latency_warmup": 1,
        "measure.throughput_batch": 4,
        "measure.throughput_time_s": 0.01,
    }
    capped = smoke_settings({"train": {"epochs": 0}, "data": {"num_workers": 4}})
    assert capped["train.epochs"] == 0 and capped["data.num_workers"] == 1  # 0 epochs stays: an anatomy study
    odd = smoke_settings({"train": {"epochs": "x"}, "data": {"num_workers": True}, "measure": 3})
    assert odd["train.epochs"] == 1 and odd["data.num_workers"] == 0  # malformed: validation names it later


# Keys every recipe's smoke run sets to the same value (the measure stand-ins, one short epoch).
SMOKE_COMMON = {
    "data.batch_size": 8,
    "data.num_workers": 0,
    "measure.infer_limit": 4,
    "measure.latency_repeats": 3,
    "measure.latency_warmup": 1,
    "measure.throughput_batch": 4,
    "measure.throughput_time_s": 0.01,
}
# What smoke_overrides gives for each shipped recipe (captured when the stand-ins moved to the fields, sizes
# halved since so that a ResNet-18 recipe's smoke run fits in seconds): its own keys.
OLD_SMOKE = {
    "cifar10_dataloader_workers": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [3, 32, 32],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
        "sweep.data.num_workers": [0, 1],
    },
    "cifar10_devices": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [3, 32, 32],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "cifar10_mlp": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [3, 32, 32],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "cifar10_no_batchnorm": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [3, 32, 32],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "cifar10_optimizers": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [3, 32, 32],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "cifar10_optimizers_tuned": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [3, 32, 32],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
        "tune.trials": 2,  # a tuned recipe smokes with two trials per variant
    },
    "cifar10_precision": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [3, 32, 32],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "cifar10_resnet18": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [3, 32, 32],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "housing_mlp": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [5],
        "data.num_classes": 2,
        "data.task": "regression",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "mnist_optimizers": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 28, 28],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "mnist_optimizers_tuned": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 28, 28],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
        "tune.trials": 2,
    },
    "mnist_cnn_design": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 28, 28],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "mnist_cnn_regularization": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 28, 28],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "mnist_fc_dropout": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 28, 28],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "mnist_fc_normalization": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 28, 28],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "mnist_logreg": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 28, 28],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "quickstart": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 8, 8],
        "data.num_classes": 10,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
    "resnet18_anatomy": {**SMOKE_COMMON, **{"train.epochs": 0}},
    "scene15_alexnet_finetune": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 64, 64],
        "data.num_classes": 15,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
        "model.resize": 64,
        "model.pretrained": None,
    },
    "scene15_simplenet": {
        **SMOKE_COMMON,
        "data.name": "synthetic",
        "data.shape": [1, 64, 64],
        "data.num_classes": 15,
        "data.task": "classification",
        "data.train_size": 16,
        "data.test_size": 8,
        "train.epochs": 1,
    },
}


def test_smoke_overrides_are_unchanged_for_every_recipe():
    assert sorted(OLD_SMOKE) == sorted(name for name, _ in list_recipes())
    for name, expected in OLD_SMOKE.items():
        assert smoke_overrides(f"recipe:{name}", []) == expected, name


def test_smoke_overrides_keep_edge_cases(tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('[data]\nname = "digits"\nnum_workers = 4\n[train]\nepochs = 0\n')
    got = smoke_overrides(str(study), ["data.batch_size=4"])
    assert got == {
        "data.batch_size": 4, "data.name": "synthetic", "data.shape": [1, 8, 8], "data.num_classes": 10,
        "data.task": "classification", "data.train_size": 16, "data.test_size": 8, "train.epochs": 0,
        "data.num_workers": 1, "measure.infer_limit": 4, "measure.latency_repeats": 3, "measure.latency_warmup": 1,
        "measure.throughput_batch": 4, "measure.throughput_time_s": 0.01,
    }  # fmt: skip
    study.write_text('[data]\nname = "digits"\nnum_workers = true\n[train]\nepochs = "x"\n')
    got = smoke_overrides(str(study), [])
    assert got["train.epochs"] == 1 and got["data.num_workers"] == 0 and got["data.batch_size"] == 8
