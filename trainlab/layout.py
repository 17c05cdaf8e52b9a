"""The layout of a study's output folder: every path the runner, the engine, deployment and the report use.

::

    <out>/trainlab.db                     the store (SQLite): plan, runs, epochs, deployments
    <out>/checkpoints/<run_id>.pt         the last completed epoch's checkpoint (resume)
    <out>/checkpoints/<run_id>.model.pt   the trained weights (a plain state_dict) once the run is done
    <out>/deploy/<run_id>.<method>.pt     an int8 variant; <run_id>.onnx for ONNX; deployment.md, deployment.png
    <out>/plots/*.png                     the report's figures
    <out>/report.html, report.md, report.tex, results.csv, epochs.csv

Computed here only, so a stage that writes a file and one that reads it cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from trainlab.errors import OutputError, TrainlabError

DB_NAME = "trainlab.db"


@dataclass(frozen=True)
class StudyDir:
    """One study's output folder and the paths inside it."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    # ---- the store ---------------------------------------------------------------------------------------------
    @property
    def db(self) -> Path:
        return self.root / DB_NAME

    def require_db(self) -> Path:
        """The store's path, or a :class:`TrainlabError` saying this is not a study's output folder."""
        if not self.db.is_file():
            raise TrainlabError(
                f"{self.root} holds no {DB_NAME}: give the output folder of a study (e.g. runs/quickstart)"
            )
        return self.db

    # ---- runs --------------------------------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, run_id: str) -> Path:
        """The run's last completed epoch (model, optimizer, scheduler, RNG states and its epoch rows)."""
        return self.checkpoints / f"{run_id}.pt"

    def weights(self, run_id: str) -> Path:
        """The run's trained weights: a plain ``state_dict`` (read with ``weights_only=True``)."""
        return self.checkpoints / f"{run_id}.model.pt"

    # ---- deployment --------------------------------------------------------------------------------------------
    @property
    def deploy(self) -> Path:
        return self.root / "deploy"

    def deployed(self, run_id: str, method: str) -> Path:
        """The saved deployment variant ``method`` of a run (``.onnx`` for ONNX, ``.pt`` for int8)."""
        return self.deploy / (f"{run_id}.onnx" if method == "onnx" else f"{run_id}.{method}.pt")

    @property
    def deployment_md(self) -> Path:
        return self.deploy / "deployment.md"

    @property
    def deployment_plot(self) -> Path:
        return self.deploy / "deployment.png"

    # ---- report ------------------------------------------------------------------------------------------------
    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def report_file(self, name: str) -> Path:
        """A report output: ``report.html``, ``report.md``, ``report.tex``, ``results.csv``, ``epochs.csv``."""
        return self.root / name

    def prepare(self) -> None:
        """Create the folder and prove it is writable, or raise :class:`OutputError`."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".trainlab-write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise OutputError(f"output directory {self.root} is not writable: {exc.strerror or exc}") from None


@dataclass
class ReportPaths:
    """The files a report build wrote (``trainlab.report.build_report``); None for each it did not write.

    Which are written depends on the formats asked for: ``csv`` writes ``results_csv`` and ``epochs_csv`` (and
    ``deployments_csv`` when the study has deployments), ``latex`` ``latex``, ``md`` and ``html`` the plots folder
    and their page. The fields are in the order the files are written.
    """

    results_csv: Path | None = None
    epochs_csv: Path | None = None
    deployments_csv: Path | None = None
    latex: Path | None = None  # report.tex
    plots: Path | None = None  # the folder of the figures' PNGs
    md: Path | None = None  # report.md
    html: Path | None = None  # report.html

    def written(self) -> dict[str, Path]:
        """Each written output by its kind (a field's name), in the order written."""
        return {f.name: path for f in fields(self) if (path := getattr(self, f.name)) is not None}
