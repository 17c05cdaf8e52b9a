"""What a run's deployment starts from: its trained float model and the data it is measured on, on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.config import DataConfig, DeployConfig, ModelConfig
from trainlab.data import DatasetCache, load_dataset
from trainlab.data.loaders import make_loaders
from trainlab.errors import TrainlabError
from trainlab.layout import StudyDir
from trainlab.models import build_for
from trainlab.records import RunRecord

CPU = torch.device("cpu")


class DeployInputs:
    """The trained float model of a run and the data it is measured on (all on the CPU).

    - ``model``: the run's architecture (from its stored config) with the weights it saved
      (:meth:`StudyDir.weights <trainlab.layout.StudyDir.weights>`), in eval mode; ``build()`` makes a fresh
      one (the architecture an int8 variant is reloaded on);
    - ``test_x``/``test_y``: the test samples as the model takes them (normalised, resized), at most
      ``cfg.eval_limit``;
    - ``calibration``: the first ``cfg.calibration_batches`` training batches in epoch 1's order (the run's
      loader, seeded as in training); ``example``: a batch of two test samples (graph capture).

    ``datasets``: where the run's dataset is taken from (the study's cache); None loads it.
    """

    def __init__(
        self,
        record: RunRecord,
        study: StudyDir | str | Path,
        cfg: DeployConfig,
        datasets: DatasetCache | None = None,
    ) -> None:
        study = study if isinstance(study, StudyDir) else StudyDir(study)
        config = record.config
        self.run_id: str = record.run_id
        self.data_cfg = DataConfig.model_validate(config["data"])
        self.model_cfg = ModelConfig.model_validate(config["model"])
        self.checkpoint = study.weights(self.run_id)
        if not self.checkpoint.is_file():
            raise TrainlabError(
                f"no trained model saved for run {self.run_id} ({self.checkpoint} is missing; runs save it when"
                " train.checkpoint = true)"
            )
        ds = datasets.get(self.data_cfg) if datasets is not None else load_dataset(self.data_cfg)
        self.task: str = ds.task
        self.input_shape: tuple[int, ...] = tuple(ds.input_shape)
        self.num_classes: int = ds.num_classes
        seed = int(config.get("train", {}).get("seed", 0))
        train_loader, test_loader = make_loaders(self.data_cfg, ds, CPU, seed)
        self.test_x, self.test_y = _test_samples(test_loader, cfg.eval_limit)
        self.calibration = _calibration_batches(train_loader, cfg.calibration_batches)
        x = self.test_x
        self.example = x[:2] if len(x) >= 2 else x.repeat(2, *[1] * (x.dim() - 1))

        self.model = self.build()
        self.model.load_state_dict(torch.load(self.checkpoint, map_location="cpu", weights_only=True))
        self.model.eval()

    def build(self) -> nn.Module:
        """A new float model of the run's architecture (random weights)."""
        return build_for(self.model_cfg, self)


def _test_samples(loader: Any, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, ...) float inputs and (N,) targets of the test split, in order, the first ``limit`` when given."""
    xs, ys, n = [], [], 0
    for xb, yb in loader:
        xs.append(xb.cpu())
        ys.append(yb.cpu())
        n += len(xb)
        if limit is not None and n >= limit:
            break
    return torch.cat(xs)[:limit], torch.cat(ys)[:limit]


def _calibration_batches(loader: Any, count: int) -> list[torch.Tensor]:
    """The first ``count`` input batches of epoch 1 (the order training saw first)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(1)
    batches: list[torch.Tensor] = []
    for xb, _ in loader:
        batches.append(xb.cpu())
        if len(batches) >= count:
            break
    return batches
