"""Deploying a run, and every finished run of a study: make the variants, measure them, write the store's rows.

For each run: measure the float model (the baseline, in the same process and conditions as the variants),
then each method asked for (:mod:`trainlab.deploy.variants`), and record one row per (run, method) in the
store's ``deployments`` table. A variant that cannot be made gets its reason in its row and the others go on.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from trainlab.config import DEPLOY_BASELINE, DEPLOY_METHODS, DeployConfig
from trainlab.data import DatasetCache, dataset_cache
from trainlab.deploy.inputs import DeployInputs
from trainlab.deploy.measure import measure
from trainlab.deploy.reasons import reason
from trainlab.deploy.variants import float_variant, int8_variant, onnx_mismatch, onnx_variant, unavailable
from trainlab.errors import TrainlabError
from trainlab.layout import StudyDir
from trainlab.records import RunRecord
from trainlab.store import Store
from trainlab.userload import set_study_folder

BASELINE = DEPLOY_BASELINE  # the method of the float model's row in the store's deployments table

Progress = Callable[[str], None]


def deploy_run(
    record: RunRecord,
    study: StudyDir | str | Path,
    cfg: DeployConfig,
    methods: list[str],
    store: Store,
    datasets: DatasetCache | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Measure the float model of one run and each of its ``methods`` variants; store and return the records.

    Every record of this call carries the same ``session`` stamp: timings are compared with the float row of
    the same session only (a variant measured earlier, under other load, is not timed against a new baseline).
    """
    study = study if isinstance(study, StudyDir) else StudyDir(study)
    say = progress or (lambda _m: None)
    run_id = record.run_id
    name = record.variant
    written: list[dict[str, Any]] = []
    session = f"{time.time_ns():x}"

    def put(method: str, figures: dict[str, Any], status: str, error: str | None = None) -> None:
        figures = {**figures, "session": session}
        store.add_deployment(run_id, method, figures, status, error)
        written.append({"run_id": run_id, "method": method, "status": status, "figures": figures, "error": error})

    say(f"{name}: float baseline")
    try:
        inputs = DeployInputs(record, study, cfg, datasets)
        model, known = float_variant(inputs)
        base, reference = measure(model, inputs, cfg)
        base.update(known)
    except Exception as exc:
        error = reason(exc)
        put(BASELINE, {"detail": traceback.format_exc(limit=5)}, "failed", error)
        for method in methods:
            put(method, {}, "skipped", f"the float model could not be measured: {error}")
        return written
    put(BASELINE, base, "done")

    study.deploy.mkdir(parents=True, exist_ok=True)
    for method in methods:
        say(f"{name}: {method}")
        why = unavailable(method)
        if why is not None:
            put(method, {}, "skipped", why)
            continue
        path = study.deployed(run_id, method)
        try:
            if method == "onnx":
                model, figures = onnx_variant(inputs, cfg, path)
            else:
                model, figures = int8_variant(method, inputs, cfg, path)
            measured, _ = measure(model, inputs, cfg, reference)
            figures.update(measured)
        except Exception as exc:
            put(method, {"detail": traceback.format_exc(limit=5)}, "failed", f"{method}: {reason(exc)}")
            continue
        error = onnx_mismatch(figures, reference, cfg) if method == "onnx" else None
        put(method, figures, "done" if error is None else "failed", error)
    return written


def deploy_study(
    out_dir: str | Path,
    cfg: DeployConfig | None = None,
    methods: list[str] | None = None,
    *,
    datasets: DatasetCache | None = None,
    progress: Progress | None = None,
    skip_deployed: bool = False,
) -> list[dict[str, Any]]:
    """Deploy every finished run of the study in ``out_dir``; return the deployment records written.

    ``cfg``: the deploy settings (default: the study's ``[deploy]`` section from the store); ``methods``
    (default: ``cfg.methods``, else all of :data:`~trainlab.config.DEPLOY_METHODS`). ``datasets``: the
    study's dataset cache (the runner's), so a dataset is not loaded twice; None: a new one.
    ``skip_deployed``: leave alone a run whose float row and every asked method are already stored as done
    (a re-run study does not redo them; ``trainlab deploy`` always measures afresh).
    """
    study = StudyDir(out_dir)
    store = Store(study.require_db())
    # A user model or data function beside the study file is found there, as in the run that trained it
    # (`trainlab deploy OUT` starts from the output folder alone: the store names the study file).
    if (path := store.meta("study_path")) and Path(path).is_file():
        set_study_folder(Path(path).parent)
    if cfg is None:
        cfg = DeployConfig.model_validate((store.meta("study") or {}).get("deploy") or {})
    chosen = list(dict.fromkeys(methods or cfg.methods or DEPLOY_METHODS))
    unknown = [m for m in chosen if m not in DEPLOY_METHODS]
    if unknown:
        raise TrainlabError(f"unknown deployment method(s) {', '.join(unknown)}; allowed: {', '.join(DEPLOY_METHODS)}")
    cache = datasets if datasets is not None else dataset_cache()
    written: list[dict[str, Any]] = []
    done = {(d.run_id, d.method) for d in store.deployments() if d.status == "done"}
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        for record in store.runs():
            if record.status != "done":
                continue
            if skip_deployed and all((record.run_id, m) in done for m in (BASELINE, *chosen)):
                continue
            # A dataset that cannot be loaded fails the run's float row, with the reason (DeployInputs).
            written += deploy_run(record, study, cfg, chosen, store, cache, progress)
    finally:
        torch.set_num_threads(threads)
    return written
