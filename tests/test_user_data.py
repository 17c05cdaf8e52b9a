"""Your own data: ``data.name = "module:function"`` beside the study (tensors, a torch Dataset, a Hugging Face
dataset), its keyword arguments checked against the signature, bad returns as one error line, a run in a child
process from another folder; and ``data.name = "hf"`` on a dataset saved on disk or as parquet files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_user_error, to_toml

from trainlab.cli import main
from trainlab.data import DataConfig, load_dataset
from trainlab.errors import DataError
from trainlab.study import load_study

MYDATA = '''
import numpy as np
import torch

CALLS = []


def blobs(n: int = 60, features: int = 4, seed: int = 0):
    """Three classes of Gaussian blobs, as (x, y) tensors; a validation split too."""
    CALLS.append({"n": n, "features": features, "seed": seed})
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, features, generator=g) * 0.3 + y[:, None].float()
    cut, val = int(n * 0.6), int(n * 0.8)
    return (x[:cut], y[:cut]), (x[cut:val], y[cut:val]), (x[val:], y[val:])


def regression():
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float64)
    y = x @ np.array([1.0, -2.0, 0.5])
    return {"train": (x[:30], y[:30]), "test": (x[30:], y[30:]), "validation": (x[:4], y[:4])}


class Squares(torch.utils.data.Dataset):
    """Grey 6x6 images: class 1 has a bright square, class 0 not."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        img = torch.full((1, 6, 6), 20, dtype=torch.uint8)
        if i % 2:
            img[:, 1:4, 1:4] = 230
        return img, i % 2


def squares(train_size: int = 24):
    return {"train": Squares(train_size), "test": Squares(8), "classes": ["plain", "square"]}


def needs_size(size):
    return blobs(size)


def bad_empty():
    return (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), (torch.zeros(4, 3), torch.arange(4) % 2)


def bad_shapes():
    return (torch.zeros(4, 3), torch.arange(4) % 2), (torch.zeros(4, 5), torch.arange(4) % 2)


def bad_labels():
    return (torch.zeros(4, 3), torch.tensor([1, 2, 3, 1])), (torch.zeros(2, 3), torch.tensor([1, 2]))


def bad_item():
    return [({"x": 1}, 0)] * 3, [(torch.zeros(3), 0)] * 2


def bad_pairs():
    class Triples(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.zeros(3), 0, "extra"

    return Triples(), Triples()


def bad_one_pair():
    return torch.zeros(4, 3), torch.arange(4) % 2


def bad_return():
    return "train.csv"


def bad_raises():
    raise FileNotFoundError("data/x.npy")
'''

HFDATA = """
import datasets
import numpy as np
from PIL import Image


def pictures(n: int = 20):
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(n)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])})
    ds = datasets.Dataset.from_dict({"image": imgs, "label": [i % 2 for i in range(n)]}, features=features)
    return ds.select(range(14)), ds.select(range(14, n))


def table():
    rows = {"age": [20 + i for i in range(30)], "height": [1.5 + i / 100 for i in range(30)],
            "kind": [i % 3 for i in range(30)]}
    return datasets.Dataset.from_dict(rows).train_test_split(test_size=0.3, seed=0)
"""

FAST = {
    "train": {"epochs": 1, "lr": 0.05, "seed": 1, "threads": 1, "device": "cpu"},
    "measure": {"latency_repeats": 3, "throughput_time_s": 0.05},
}


def _study(folder: Path, data: dict[str, Any], model: dict[str, Any] | None = None, code: str = MYDATA) -> Path:
    """``folder/study.toml`` on ``data`` with ``mydata.py`` (``code``) beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mydata.py").write_text(code)
    study = {"study": {"name": "mine"}, "data": {"batch_size": 8, **data},
             "model": model or {"name": "mlp", "hidden": [8]}, **FAST}  # fmt: skip
    (folder / "study.toml").write_text(to_toml(study))
    return folder / "study.toml"


def _dataset(path: Path):
    [spec] = load_study(path).runs
    return spec.config.data, load_dataset(spec.config.data)


def test_a_function_returning_tensors(tmp_path: Path) -> None:
    cfg, ds = _dataset(_study(tmp_path, {"name": "mydata:blobs"}))
    assert (ds.task, ds.classes, ds.input_shape) == ("classification", ["0", "1", "2"], (4,))
    assert (len(ds.train), len(ds.test), len(ds.val)) == (36, 12, 12)  # the function's validation split
    assert ds.train.x.dtype.is_floating_point and str(ds.train.y.dtype) == "torch.int64"
    assert "mydata.py" in ds.source
    # the dump validates back to the same config, without calling the function again
    calls = len(sys.modules["mydata"].CALLS)
    assert DataConfig.model_validate(cfg.model_dump(mode="json")) == cfg
    load_dataset(cfg)
    assert len(sys.modules["mydata"].CALLS) == calls


def test_a_regression_from_numpy_arrays(tmp_path: Path) -> None:
    _, ds = _dataset(_study(tmp_path, {"name": "mydata:regression"}))
    assert (ds.task, ds.num_classes, ds.input_shape, len(ds.val)) == ("regression", 1, (3,), 4)
    assert str(ds.train.y.dtype) == "torch.float32"


def test_a_torch_dataset_of_images(tmp_path: Path) -> None:
    _, ds = _dataset(_study(tmp_path, {"name": "mydata:squares", "normalize": True}, {"name": "simple_cnn"}))
    assert ds.is_image and ds.input_shape == (1, 6, 6) and ds.classes == ["plain", "square"]
    assert ds.val is None and len(ds.train) == 24 and ds.mean is not None


def test_a_hugging_face_dataset(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    _, ds = _dataset(_study(tmp_path, {"name": "mydata:pictures"}, code=HFDATA))
    assert ds.is_image and ds.input_shape == (3, 8, 8) and ds.classes == ["cat", "dog"]
    assert (len(ds.train), len(ds.test)) == (14, 6)
    _, ds = _dataset(_study(tmp_path / "table", {"name": "mydata:table", "label_column": "kind"}, code=HFDATA))
    assert ds.features == ["age", "height"] and ds.input_shape == (2,) and ds.num_classes == 3


def test_keyword_arguments_are_checked_and_passed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _study(tmp_path, {"name": "mydata:blobs", "n": 50, "sede": 3})
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    assert_user_error(code, err, "unknown key 'data.sede' for mydata:blobs (did you mean 'seed'?)")
    assert "its parameters: n, features, seed" in err
    _, ds = _dataset(_study(tmp_path, {"name": "mydata:blobs", "n": 50, "features": 2}))
    assert sys.modules["mydata"].CALLS[-1] == {"n": 50, "features": 2, "seed": 0}
    assert (len(ds.train) + len(ds.test) + len(ds.val), ds.input_shape) == (50, (2,))
    path = _study(tmp_path, {"name": "mydata:needs_size"})
    assert_user_error(main(["check", str(path)]), capsys.readouterr().err, "data.size")


@pytest.mark.parametrize(
    ("function", "says"),
    [
        ("bad_empty", "the train split is empty"),
        ("bad_shapes", "train samples have shape (3,) but test samples (5,)"),
        ("bad_labels", "labels run 1..3 and class 0 has no sample"),
        ("bad_item", "x of item 0 is a dict"),
        ("bad_pairs", "item 0 is a tuple of 3 values, not an (x, y) pair"),
        ("bad_one_pair", "returned one (x, y) pair"),
        ("bad_return", "returned a builtins.str"),
        ("bad_raises", "the function raised FileNotFoundError: data/x.npy"),
        ("nothere", "has no function 'nothere'"),
    ],
)
def test_a_bad_return_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], function: str,
                                        says: str) -> None:  # fmt: skip
    path = _study(tmp_path, {"name": f"mydata:{function}"})
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    assert_user_error(code, err, f"data.name 'mydata:{function}'")
    assert says in err, err


def test_a_malformed_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _study(tmp_path, {"name": "my-data:f"})
    assert_user_error(main(["check", str(path)]), capsys.readouterr().err, "'my-data:f' is not a data function")


def test_one_file_beside_the_study_holds_the_model_and_the_data(tmp_path: Path) -> None:
    code = MYDATA + "\n\nclass Net(torch.nn.Linear):\n    def __init__(self, input_shape, num_classes):\n" \
        "        super().__init__(input_shape[0], num_classes)\n"  # fmt: skip
    path = _study(tmp_path, {"name": "mydata:blobs"}, {"name": "mydata:Net"}, code=code)
    [spec] = load_study(path).runs
    assert spec.config.model.name == "mydata:Net"


def test_a_study_on_a_function_runs_in_a_child_process_from_another_folder(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    study = _study(project, {"name": "mydata:blobs", "n": 48})
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "trainlab", "run", os.path.relpath(study, elsewhere), "--out", "out", "--quiet"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from trainlab.store import Store

    [record] = Store(elsewhere / "out" / "trainlab.db", readonly=True).runs()
    assert record.status == "done"
    assert record.config["data"]["n"] == 48
    # `trainlab deploy OUT` later, in a fresh process, finds the function beside the study as the run did.
    done = subprocess.run([sys.executable, "-m", "trainlab", "deploy", str(elsewhere / "out"), "--method", "dynamic"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = Store(elsewhere / "out" / "trainlab.db", readonly=True).deployments()
    assert {(d.method, d.status) for d in rows} == {("float", "done"), ("dynamic", "done")}, [d.error for d in rows]


def _pictures(n: int = 20) -> tuple[Any, Any]:
    """A Hugging Face image dataset (8x8 RGB, two named classes), as 14 training and 6 test rows."""
    datasets = pytest.importorskip("datasets")
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(n)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])})
    ds = datasets.Dataset.from_dict({"image": imgs, "label": [i % 2 for i in range(n)]}, features=features)
    return ds.select(range(14)), ds.select(range(14, n))


def test_hf_reads_a_saved_dataset_and_parquet_files(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    train, test = _pictures()
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "pq" / "data").mkdir(parents=True)
    train.to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    test.to_parquet(str(tmp_path / "pq" / "data" / "test-00000-of-00001.parquet"))
    # a folder of save_to_disk, a folder of parquet files, and one file (its test split held out, stratified)
    for root, sizes in [("saved", (14, 6)), ("pq", (14, 6)), ("pq/data/train-00000-of-00001.parquet", (12, 2))]:
        ds = load_dataset(DataConfig.model_validate({"name": "hf", "root": str(tmp_path / root), "normalize": True}))
        assert (len(ds.train), len(ds.test)) == sizes, root
        assert ds.is_image and ds.classes == ["cat", "dog"] and ds.fingerprint and ds.mean is not None


def test_hf_needs_a_root_and_says_what_it_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "study.toml"
    path.write_text('[study]\nname = "hf"\n\n[data]\nname = "hf"\n')
    assert_user_error(main(["check", str(path)]), capsys.readouterr().err, "data.root is required for the hf")
    pytest.importorskip("datasets")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither a folder written by save_to_disk"):
        load_dataset(DataConfig.model_validate({"name": "hf", "root": str(tmp_path / "empty")}))


def test_smoke_keeps_the_function_and_its_arguments_on_a_few_samples(tmp_path: Path) -> None:
    # --smoke stands in generated data for a dataset trainlab knows; the user's own function has no stand-in
    # (its keys are its arguments): the smoke run uses a few of its samples.
    from trainlab.cli import main
    from trainlab.store import Store

    study = _study(tmp_path, {"name": "mydata:blobs", "n": 96})
    assert main(["run", str(study), "--smoke", "--executor", "inline", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    [record] = Store(tmp_path / "out" / "trainlab.db", readonly=True).runs()
    assert record.status == "done" and record.config["data"]["name"] == "mydata:blobs"
    assert record.config["data"]["limit_train"] == 32 and record.config["data"]["n"] == 96


def test_the_editor_schema_takes_a_data_functions_arguments_and_refuses_unknown_keys_elsewhere() -> None:
    # An editor validating a study against `trainlab schema` must not flag a data function's keyword arguments
    # (only its signature knows them), and must still flag a misspelt key of a registered dataset.
    jsonschema = pytest.importorskip("jsonschema")
    from trainlab.config import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    errors = lambda data: [e.message for e in validator.iter_errors({"data": data})]  # noqa: E731
    assert errors({"name": "mydata:blobs", "n": 60, "features": 4}) == []
    assert errors({"name": "digits", "val_fraction": 0.1}) == []
    [message] = errors({"name": "digits", "bacth_size": 8})
    assert "'bacth_size' is not one of" in message and "'batch_size'" in message
