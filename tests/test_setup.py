"""`make demo` installs trainlab's own dependencies only; `make test` adds the extras the tests exercise."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("ray", "mlflow", "tensorboard", "onnx", "torchao")


def _recipe(makefile: str, target: str) -> tuple[str, str]:
    """A Makefile target's prerequisites and its recipe."""
    m = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, re.M)
    assert m, target
    return m.group(1).strip(), m.group(2)


def test_the_demo_installs_no_extra_and_the_tests_install_them() -> None:
    makefile = (ROOT / "Makefile").read_text()
    demo_needs, _ = _recipe(makefile, "demo")
    stamp = demo_needs.split()[0]
    _, install = _recipe(makefile, stamp)
    assert "pip install" in install and "-e .\n" in install and "[" not in install  # no extras for the demo
    test_needs, _ = _recipe(makefile, "test")
    _, dev = _recipe(makefile, test_needs.split()[0])
    assert '-e ".[dev]"' in dev
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert not [x for x in EXTRAS if x in core] and "torch==2.13.0" in core
    dev_deps = " ".join(project["optional-dependencies"]["dev"])
    assert all(x in dev_deps for x in EXTRAS)
