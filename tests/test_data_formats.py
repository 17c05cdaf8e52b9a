"""Every source reads its real on-disk format (generated tiny files), and bad input is a DataError naming the file."""

from __future__ import annotations

import gzip
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data_helpers import (
    CIFAR10_NAMES,
    COLORS,
    cifar10_binary_members,
    cifar10_python_members,
    cifar100_binary_members,
    cifar100_python_members,
    idx_bytes,
    py2_pickle,
    tar_gz,
    write_idx_set,
    write_image,
    write_members,
    write_tree,
)

from trainlab.config import DataConfig
from trainlab.data import DATASETS, load_dataset
from trainlab.data.catalog import FAMILY
from trainlab.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parent.parent
MNIST_RAW = REPO.parent / "shared" / "data" / "mnist" / "raw"


@pytest.fixture(autouse=True)
def _isolated_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default roots and fallback caches under tmp_path; no test may download."""
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "home"))
    monkeypatch.delenv("TRAINLAB_MIRROR", raising=False)


def cfg(**kw) -> DataConfig:
    kw.setdefault("download", False)
    return DataConfig(**kw)


# ------------------------------------------------------------------------------------------------------
# MNIST family (IDX)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "kmnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_family_reads_plain_and_gz(tmp_path: Path, name: str, gz: bool) -> None:
    arrays = write_idx_set(tmp_path / "raw", gz=gz)  # in root/raw, one of the looked-in folders
    ds = load_dataset(cfg(name=name, root=str(tmp_path)))
    assert ds.train.x.shape == (40, 1, 28, 28) and ds.train.x.dtype == torch.uint8
    assert ds.test.x.shape == (12, 1, 28, 28)
    assert ds.train.y.dtype == torch.int64 and int(ds.train.y.max()) <= 9 and int(ds.train.y.min()) >= 0
    assert np.array_equal(ds.train.x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(ds.test.y.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert ds.classes == FAMILY[name].classes and len(ds.classes) == 10
    assert DATASETS[name].present(tmp_path)


def test_fashion_class_names(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    ds = load_dataset(cfg(name="fashion_mnist", root=str(tmp_path)))
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"


def test_idx_wrong_magic(tmp_path: Path) -> None:
    write_idx_set(tmp_path, gz=False)
    bad = tmp_path / "train-labels-idx1-ubyte"
    raw = bytearray(bad.read_bytes())
    raw[2] = 0x0D  # float type code instead of unsigned byte
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: wrong IDX magic number 0x00000d01"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


def test_idx_truncated_file(tmp_path: Path) -> None:
    write_idx_set(tmp_path, gz=False)
    p = tmp_path / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: IDX header announces 12x28x28 = 9408 bytes"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


def test_idx_truncated_gzip(tmp_path: Path) -> None:
    write_idx_set(tmp_path, gz=True)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-50])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: gzip data is truncated or corrupt"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


def test_idx_label_out_of_range(tmp_path: Path) -> None:
    write_idx_set(tmp_path, gz=True)
    labels = (np.arange(40) % 10).astype(np.uint8)
    labels[7] = 12
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError, match=r"label 12 at index 7 is out of range 0..9"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


def test_idx_count_mismatch(tmp_path: Path) -> None:
    write_idx_set(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(39, np.uint8)))
    with pytest.raises(DataError, match=r"has 40 images but .*train-labels-idx1-ubyte has 39 labels"):
        load_dataset(cfg(name="mnist", root=str(tmp_path)))


def test_idx_missing_offline_names_url_files_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(cfg(name="kmnist", root=str(tmp_path / "nowhere")))
    msg = str(err.value)
    assert "data.download = false" in msg and str(tmp_path / "nowhere") in msg
    assert "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, " in msg
    assert "t10k-labels-idx1-ubyte.gz from http://codh.rois.ac.jp/kmnist/dataset/kmnist/" in msg


@pytest.mark.slow
def test_real_mnist() -> None:
    if not (MNIST_RAW / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found in {MNIST_RAW}")
    ds = load_dataset(cfg(name="mnist", root=str(MNIST_RAW), normalize=True))
    assert ds.train.x.shape == (60000, 1, 28, 28) and ds.test.x.shape == (10000, 1, 28, 28)
    assert ds.train.y.bincount().tolist()[:2] == [5923, 6742]  # the published class counts
    assert ds.mean == pytest.approx([0.1307], abs=1e-4) and ds.std == pytest.approx([0.3081], abs=1e-4)
    assert not (MNIST_RAW / ".trainlab-cache").exists()  # the read-only shared folder is left untouched


# ------------------------------------------------------------------------------------------------------
# CIFAR


def _check_cifar10(ds, arrays) -> None:
    x, y = arrays["train"]
    assert ds.train.x.shape == (len(x), 3, 32, 32) and ds.train.x.dtype == torch.uint8
    assert ds.train.y.dtype == torch.int64
    assert np.array_equal(ds.train.x.numpy(), x) and np.array_equal(ds.train.y.numpy(), y)
    assert np.array_equal(ds.test.x.numpy(), arrays["test"][0])
    assert ds.classes == CIFAR10_NAMES
    assert int(ds.train.y.min()) >= 0 and int(ds.train.y.max()) < 10


def test_cifar10_python_folder(tmp_path: Path) -> None:
    members, arrays = cifar10_python_members()
    write_members(tmp_path, members)
    _check_cifar10(load_dataset(cfg(name="cifar10", root=str(tmp_path))), arrays)


def test_cifar10_python_folder_given_directly(tmp_path: Path) -> None:
    members, arrays = cifar10_python_members()
    write_members(tmp_path, members)
    _check_cifar10(load_dataset(cfg(name="cifar10", root=str(tmp_path / "cifar-10-batches-py"))), arrays)


def test_cifar10_python_tar_gz(tmp_path: Path) -> None:
    members, arrays = cifar10_python_members()
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(tar_gz(members))
    ds = load_dataset(cfg(name="cifar10", root=str(tmp_path)))
    _check_cifar10(ds, arrays)
    assert not (tmp_path / "cifar-10-batches-py").exists()  # read in memory, not extracted


def test_cifar10_python3_pickles_load(tmp_path: Path) -> None:
    """A copy re-saved by Python 3 / NumPy 2 (numpy._core names, bytes keys, protocol 4) is read too."""
    members, arrays = cifar10_python_members(per_batch=4)
    x, y = arrays["train"]
    for i in range(5):
        rows = slice(4 * i, 4 * i + 4)
        batch = {b"data": x[rows].reshape(4, -1), b"labels": y[rows].tolist()}
        members[f"cifar-10-batches-py/data_batch_{i + 1}"] = pickle.dumps(batch, protocol=4)
    write_members(tmp_path, members)
    _check_cifar10(load_dataset(cfg(name="cifar10", root=str(tmp_path))), arrays)


def test_cifar10_binary_folder_and_archive(tmp_path: Path) -> None:
    members, arrays = cifar10_binary_members()
    write_members(tmp_path / "a", members)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "cifar-10-binary.tar.gz").write_bytes(tar_gz(members))
    for root in ("a", "b"):
        _check_cifar10(load_dataset(cfg(name="cifar10", root=str(tmp_path / root))), arrays)


@pytest.mark.parametrize("version", ["python", "binary"])
@pytest.mark.parametrize("labels", ["fine", "coarse"])
def test_cifar100(tmp_path: Path, version: str, labels: str) -> None:
    members, arrays = cifar100_python_members() if version == "python" else cifar100_binary_members()
    write_members(tmp_path, members)
    ds = load_dataset(cfg(name="cifar100", root=str(tmp_path), cifar100_labels=labels))
    x, fine, coarse = arrays["train"]
    assert ds.train.x.shape == (len(x), 3, 32, 32) and np.array_equal(ds.train.x.numpy(), x)
    want = fine if labels == "fine" else coarse
    assert np.array_equal(ds.train.y.numpy(), want)
    assert len(ds.classes) == (100 if labels == "fine" else 20)
    assert ds.classes[3] == (f"{labels}3")


def test_cifar_hostile_pickle_is_refused_without_running_code(tmp_path: Path) -> None:
    members, _ = cifar10_python_members()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    members["cifar-10-batches-py/data_batch_3"] = pickle.dumps({"data": Evil(), "labels": []}, protocol=2)
    write_members(tmp_path, members)
    with pytest.raises(
        DataError, match=r"data_batch_3: not a CIFAR batch: refusing to load global '(posix|os)\.system'"
    ):
        load_dataset(cfg(name="cifar10", root=str(tmp_path)))
    assert not marker.exists()


def test_cifar_truncated_pickle(tmp_path: Path) -> None:
    members, _ = cifar10_python_members()
    members["cifar-10-batches-py/test_batch"] = members["cifar-10-batches-py/test_batch"][:-3000]
    write_members(tmp_path, members)
    with pytest.raises(DataError, match=r"test_batch: truncated or corrupt pickle"):
        load_dataset(cfg(name="cifar10", root=str(tmp_path)))


def test_cifar_label_out_of_range(tmp_path: Path) -> None:
    members, _ = cifar10_python_members()
    members["cifar-10-batches-py/data_batch_2"] = py2_pickle(
        {"labels": [1, 2, 10, 3], "data": np.zeros((4, 3072), np.uint8)}
    )
    write_members(tmp_path, members)
    with pytest.raises(DataError, match=r"data_batch_2: label 10 of image 2 is out of range 0..9"):
        load_dataset(cfg(name="cifar10", root=str(tmp_path)))


def test_cifar_binary_truncated(tmp_path: Path) -> None:
    members, _ = cifar10_binary_members()
    members["cifar-10-batches-bin/data_batch_4.bin"] = members["cifar-10-batches-bin/data_batch_4.bin"][:-10]
    write_members(tmp_path, members)
    with pytest.raises(DataError, match=r"data_batch_4.bin: 9209 bytes is not a whole number of 3073-byte records"):
        load_dataset(cfg(name="cifar10", root=str(tmp_path)))


def test_cifar_truncated_archive(tmp_path: Path) -> None:
    members, _ = cifar10_python_members()
    data = tar_gz(members)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz: cannot read the archive"):
        load_dataset(cfg(name="cifar10", root=str(tmp_path)))


def test_cifar_missing_names_url_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(cfg(name="cifar100", root=str(tmp_path)))
    msg = str(err.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in msg
    assert "cifar-100-python/" in msg and str(tmp_path) in msg


# ------------------------------------------------------------------------------------------------------
# Image folders


def test_folder_presplit_rgb(tmp_path: Path) -> None:
    write_tree(tmp_path / "train", per_class=4)
    write_tree(tmp_path / "test", per_class=2, ext=".jpg")
    ds = load_dataset(cfg(name="folder", root=str(tmp_path), image_size=[8, 6]))
    assert ds.classes == ["blue", "green", "red"]
    assert ds.train.x.shape == (12, 3, 8, 6) and ds.train.x.dtype == torch.uint8
    assert ds.test.x.shape == (6, 3, 8, 6) and ds.train.y.dtype == torch.int64
    assert sorted(ds.train.y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    # Pixels agree with the class colours (away from the white corner mark).
    for img, label in zip(ds.train.x, ds.train.y):
        rgb = tuple(int(v) for v in img[:, 4, 3])
        want = COLORS[ds.classes[int(label)]]
        assert max(abs(a - b) for a, b in zip(rgb, want)) <= 3


def test_folder_single_tree_stratified_split_grayscale(tmp_path: Path) -> None:
    write_tree(tmp_path, per_class=10)
    ds = load_dataset(cfg(name="folder", root=str(tmp_path), image_size=6, grayscale=True, test_fraction=0.3))
    assert ds.train.x.shape == (21, 1, 6, 6) and ds.test.x.shape == (9, 1, 6, 6)
    assert ds.test.y.bincount().tolist() == [3, 3, 3]  # stratified
    again = load_dataset(cfg(name="folder", root=str(tmp_path), image_size=6, grayscale=True, test_fraction=0.3))
    assert torch.equal(ds.train.y, again.train.y) and torch.equal(ds.test.x, again.test.x)
    other = load_dataset(
        cfg(name="folder", root=str(tmp_path), image_size=6, grayscale=True, test_fraction=0.3, split_seed=1)
    )
    assert not torch.equal(ds.test.x, other.test.x)


def test_folder_cache_is_used_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainlab.data import folder as folder_mod

    write_tree(tmp_path / "train", per_class=3)
    write_tree(tmp_path / "test", per_class=1)
    c = cfg(name="folder", root=str(tmp_path), image_size=[5, 5])
    first = load_dataset(c)
    caches = list((tmp_path / ".trainlab-cache").glob("folder-*.pt"))
    assert len(caches) == 1

    calls = []
    real = folder_mod.decode_image
    monkeypatch.setattr(folder_mod, "decode_image", lambda *a: calls.append(a) or real(*a))
    second = load_dataset(c)
    assert calls == [] and torch.equal(first.train.x, second.train.x)  # served from the cache

    write_image(tmp_path / "train" / "red" / "new.png", (250, 0, 0))  # a new file changes the key
    third = load_dataset(c)
    assert len(calls) == 10 + 3 and len(third.train) == 10
    assert len(list((tmp_path / ".trainlab-cache").glob("folder-*.pt"))) == 2


def test_folder_corrupt_image_named(tmp_path: Path) -> None:
    write_tree(tmp_path, per_class=3)
    (tmp_path / "green" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(DataError, match=r"broken.png: cannot decode the image"):
        load_dataset(cfg(name="folder", root=str(tmp_path), image_size=4))


def test_folder_empty_class_named(tmp_path: Path) -> None:
    write_tree(tmp_path, per_class=3)
    (tmp_path / "yellow").mkdir()
    (tmp_path / "yellow" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"yellow: class folder 'yellow' holds no images"):
        load_dataset(cfg(name="folder", root=str(tmp_path), image_size=4))


def test_folder_test_class_unknown_to_train(tmp_path: Path) -> None:
    write_tree(tmp_path / "train", per_class=2)
    write_tree(tmp_path / "test", per_class=1)
    write_image(tmp_path / "test" / "purple" / "0.png", (100, 0, 100))
    with pytest.raises(DataError, match=r"classes \['purple'\] have no folder"):
        load_dataset(cfg(name="folder", root=str(tmp_path), image_size=4))


def test_folder_config_requires_root_and_size() -> None:
    with pytest.raises(ValueError, match=r"data.image_size is required for the folder dataset"):
        DataConfig(name="folder", root="/x")
    with pytest.raises(ValueError, match=r"data.root is required for the folder dataset"):
        DataConfig(name="folder", image_size=[4, 4])


# ------------------------------------------------------------------------------------------------------
# CSV tables

CSV = """age,smoker,color,income,label
30,yes,red,1000,a
40,no,blue,2000,b
50,yes,green,1500,a
20,no,red,1200,b
35,yes,blue,1800,a
45,no,green,2200,b
25,yes,red,900,a
55,no,blue,2500,b
60,yes,green,3000,a
33,no,red,1100,b
"""


def test_csv_classification_encodes_and_scales_on_train_only(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    ds = load_dataset(cfg(name="csv", root=str(path), target="label", test_fraction=0.2, scaling="standard"))
    assert ds.task == "classification" and ds.classes == ["a", "b"]
    assert ds.features == ["age", "smoker", "color=blue", "color=green", "color=red", "income"]
    assert ds.train.x.dtype == torch.float32 and ds.train.x.shape == (8, 6) and ds.test.x.shape == (2, 6)
    assert ds.train.y.dtype == torch.int64 and ds.test.y.bincount(minlength=2).tolist() == [1, 1]
    # Standard scaling was fitted on the training rows: there they have mean 0 and std 1 ...
    assert ds.train.x[:, 0].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert ds.train.x[:, 0].std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    # ... and yes/no and one-hot columns stay 0/1.
    assert set(ds.train.x[:, 1].tolist()) <= {0.0, 1.0} and set(ds.train.x[:, 2].tolist()) <= {0.0, 1.0}
    assert (ds.train.x[:, 2:5].sum(1) == 1).all()


def test_csv_minmax_regression_features_by_name(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    ds = load_dataset(
        cfg(
            name="csv", root=str(path), target="income", features=["age", "smoker"], task="regression", scaling="minmax"
        )
    )
    assert ds.task == "regression" and ds.num_classes == 1 and ds.features == ["age", "smoker"]
    assert ds.train.y.dtype == torch.float32 and ds.train.x.shape[1] == 2
    assert ds.train.x[:, 0].min().item() == 0.0 and ds.train.x[:, 0].max().item() == 1.0
    assert set(ds.train.y.tolist() + ds.test.y.tolist()) == {1000, 2000, 1500, 1200, 1800, 2200, 900, 2500, 3000, 1100}


def test_csv_train_and_test_files(tmp_path: Path) -> None:
    lines = CSV.strip().splitlines()
    (tmp_path / "train.csv").write_text("\n".join(lines[:8]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join([lines[0], *lines[8:]]) + "\n")
    ds = load_dataset(cfg(name="csv", root=str(tmp_path), target="label", scaling="none"))
    assert len(ds.train) == 7 and len(ds.test) == 3
    assert ds.test.x[:, 0].tolist() == [55.0, 60.0, 33.0]  # unscaled, in file order


def test_csv_missing_target_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    with pytest.raises(DataError, match=r"t.csv: no target column 'lable' \(did you mean 'label'\?\)"):
        load_dataset(cfg(name="csv", root=str(path), target="lable"))


def test_csv_non_numeric_regression_target_names_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    with pytest.raises(DataError, match=r"t.csv, line 2: target 'color' = 'red' is not a number"):
        load_dataset(cfg(name="csv", root=str(path), target="color", task="regression"))


def test_csv_missing_cell_error_or_drop(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV.replace("50,yes,green,1500", "50,yes,green,NA"))
    with pytest.raises(DataError, match=r"t.csv, line 4: column 'income' is empty or NA"):
        load_dataset(cfg(name="csv", root=str(path), target="label"))
    ds = load_dataset(cfg(name="csv", root=str(path), target="label", missing="drop"))
    assert len(ds.train) + len(ds.test) == 9


def test_csv_ragged_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV + "1,2\n")
    with pytest.raises(DataError, match=r"t.csv, line 12: 2 cells but the header has 5 columns"):
        load_dataset(cfg(name="csv", root=str(path), target="label"))


def test_csv_config_requires_target() -> None:
    with pytest.raises(ValueError, match=r"data.target is required for the csv dataset"):
        DataConfig(name="csv", root="t.csv")


def test_csv_config_error_through_study_loader() -> None:
    from trainlab.study import load_study

    with pytest.raises(ConfigError, match=r"data.target is required"):
        load_study({"data": {"name": "csv", "root": "x.csv"}})


# ------------------------------------------------------------------------------------------------------
# digits


def test_digits_without_sklearn_import_same_as_with() -> None:
    from trainlab.data.digits import bundled_csv, read_digits

    if bundled_csv() is None:
        pytest.skip("scikit-learn's digits.csv.gz not installed")
    code = (
        "import sys; from trainlab.config import DataConfig; from trainlab.data import load_dataset; "
        "ds = load_dataset(DataConfig(name='digits')); "
        "print('sklearn' in sys.modules, len(ds.train), len(ds.test))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "1347", "450"]
    a_img, a_lab = read_digits(prefer_csv=True)
    b_img, b_lab = read_digits(prefer_csv=False)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)


def test_digits_split_fixed_and_stratified() -> None:
    a = load_dataset(DataConfig(name="digits"))
    b = load_dataset(DataConfig(name="digits"))
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.train.y, b.train.y)
    totals = (a.train.y.bincount() + a.test.y.bincount()).tolist()
    assert a.test.y.bincount().tolist() == [round(n * 0.25) for n in totals]  # 25% of every class
    assert len(a.train) + len(a.test) == 1797
    assert a.train.x.dtype == torch.uint8 and int(a.train.x.max()) == 255
