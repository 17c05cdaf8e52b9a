"""What each downloadable dataset is: file names, official URLs and published checksums, on-disk layouts.

Plain data, no NumPy or torch, so that the registry (imported by config validation) stays cheap to import.
Checksums are the MD5 values the publishers list (and torchvision uses); the real MNIST files in this
project's shared data folder match them.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainlab.data.base import Resource

# ------------------------------------------------------------------------------------------------------
# The MNIST family (IDX files)

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# What the family's layout looks like under the root (for `data list` and error messages).
IDX_LAYOUT = ", ".join(f"{f}.gz" for f in FILES.values()) + " (plain or .gz; also looked for in raw/)"
MNIST_CLASSES = [str(i) for i in range(10)]
# MNIST's official mirrors, in the order tried.
MNIST_URLS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]


@dataclass(frozen=True)
class IdxFamily:
    """One member of the MNIST family: where it is published and what its classes are called."""

    name: str
    title: str
    torchvision_dir: str  # torchvision keeps the files in root/<this>/raw
    classes: list[str]
    mirrors: list[str]
    md5: dict[str, str]  # .gz file name -> MD5 as published (torchvision's resource lists)

    def resources(self) -> list[Resource]:
        """The four ``.gz`` files to download, with their published MD5s."""
        return [Resource(f + ".gz", self.md5[f + ".gz"]) for f in FILES.values()]


FAMILY: dict[str, IdxFamily] = {
    "mnist": IdxFamily(
        "mnist",
        "MNIST handwritten digits",
        "MNIST",
        MNIST_CLASSES,
        MNIST_URLS,
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion_mnist": IdxFamily(
        "fashion_mnist",
        "Fashion-MNIST clothing articles (Zalando)",
        "FashionMNIST",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        [
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ],
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "kmnist": IdxFamily(
        "kmnist",
        "Kuzushiji-MNIST cursive Japanese characters (ROIS-CODH)",
        "KMNIST",
        ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
        ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
        {
            "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    ),
}


# ------------------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100

IMAGE_BYTES = 3 * 32 * 32
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]


@dataclass(frozen=True)
class Layout:
    """One on-disk version of a CIFAR dataset: its folder, archive, member files and label format."""

    kind: str  # "python" | "binary"
    folder: str
    archive: str
    md5: str  # of the archive, as published
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: tuple[str, ...]  # class-name files (optional when reading: numbered names are used without them)


LAYOUTS: dict[str, tuple[Layout, Layout]] = {
    "cifar10": (
        Layout(
            "python",
            "cifar-10-batches-py",
            "cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
            tuple(f"data_batch_{i}" for i in range(1, 6)),
            ("test_batch",),
            ("batches.meta",),
        ),
        Layout(
            "binary",
            "cifar-10-batches-bin",
            "cifar-10-binary.tar.gz",
            "c32a1d4ab5d03f1284b67883e8d87530",
            tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
            ("test_batch.bin",),
            ("batches.meta.txt",),
        ),
    ),
    "cifar100": (
        Layout(
            "python",
            "cifar-100-python",
            "cifar-100-python.tar.gz",
            "eb9058c3a382ffc7106e4002c42a8d85",
            ("train",),
            ("test",),
            ("meta",),
        ),
        Layout(
            "binary",
            "cifar-100-binary",
            "cifar-100-binary.tar.gz",
            "03b5dce01913d631647c71ecec9e9cb8",
            ("train.bin",),
            ("test.bin",),
            ("fine_label_names.txt", "coarse_label_names.txt"),
        ),
    ),
}
ARCHIVE_BYTES = {"cifar10": 170_498_071, "cifar100": 169_001_437}  # python versions, for the download message


def resources(name: str) -> list[Resource]:
    """What ``trainlab data get`` downloads: the python version's archive, extracted after its check."""
    py = LAYOUTS[name][0]
    return [Resource(py.archive, py.md5, ARCHIVE_BYTES[name], extract=True)]


def expected_files(name: str) -> list[str]:
    """The python version's files under the root, for ``trainlab data list`` and messages."""
    py = LAYOUTS[name][0]
    return [f"{py.folder}/{f}" for f in (*py.train, *py.test, *py.meta)]


def layout_text(name: str) -> str:
    """One line naming both versions' folders and archives, for messages."""
    py, binary = LAYOUTS[name]
    return (
        f"{py.folder}/ ({', '.join((*py.train, *py.test, *py.meta))}) or {py.archive}; "
        f"or the binary version {binary.folder}/ or {binary.archive}"
    )
