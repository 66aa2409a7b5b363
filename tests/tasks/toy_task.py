"""A task and its data written outside ``src/``, as a user adds one: random clips whose loudness level (an
integer 0..3) is regressed from the features, scored by mean absolute error (lower is better).

``tests/tasks/test_toy_task.py`` copies this file into a folder of its own, writes ``task/toy.yaml`` and
``data/toy.yaml`` into a config folder of its own, and runs the unchanged ``train.py`` and ``test.py`` on
them: nothing in the entry points knows this task.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanAbsoluteError

from src.data.base import TaskDataModule
from src.tasks.base import FrontendEncoderTask
from src.tasks.heads import SequencePooling

SPLITS = ("train", "val", "test")


class LoudnessDataModule(TaskDataModule):
    """Random noise clips of ``clip_samples`` samples, zero after a random true length, at one of
    ``levels`` loudness levels; batches ``(waveforms (batch, clip_samples), lengths (batch,), level
    (batch,) int64)``. The same clips for a ``seed``."""

    TARGETS = "loudness"

    def __init__(
        self,
        sample_rate: int = 16000,
        clip_samples: int = 4000,
        split_sizes: Sequence[int] = (16, 8, 8),
        levels: int = 4,
        batch_size: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self._sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.batch_size = batch_size
        generator = torch.Generator().manual_seed(seed)
        self.splits: dict[str, TensorDataset] = {}
        for split, size in zip(SPLITS, split_sizes, strict=True):
            level = torch.randint(0, levels, (size,), generator=generator)
            lengths = torch.randint(clip_samples // 2, clip_samples + 1, (size,), generator=generator)
            waveforms = torch.randn(size, clip_samples, generator=generator) * 0.1 * (1 + level[:, None])
            waveforms[torch.arange(clip_samples) >= lengths[:, None]] = 0
            self.splits[split] = TensorDataset(waveforms, lengths, level)

    @property
    def label_names(self) -> list[str]:
        return ["loudness"]

    @property
    def example_samples(self) -> int:
        return self.clip_samples

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def files(self, split: str) -> list[str]:
        return [f"{split}/{index:03d}" for index in range(len(self.splits[split]))]

    def targets(self, split: str) -> list[int]:
        return self.splits[split].tensors[2].tolist()

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=split == "train")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


class RegressionHead(nn.Module):
    """``(batch, frames, in_features), (batch,) -> (batch,)``: mean over the real frames, then a linear map
    to one number."""

    def __init__(self, in_features: int, bidirectional: bool = False, pooling: str = "mean") -> None:
        super().__init__()
        self.pooling = SequencePooling(pooling, in_features, bidirectional)
        self.linear = nn.Linear(in_features, 1)

    def forward(self, sequence: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.pooling(sequence, lengths)).squeeze(-1)


class LoudnessRegressionTask(FrontendEncoderTask):
    """Waveform -> frontend -> encoder -> :class:`RegressionHead` -> the loudness level, optimised with
    the mean squared error. Logs ``train/loss``, ``{val,test}/{loss,mae}``; its test writes
    ``predictions.csv``."""

    METRIC_MODES: ClassVar[dict[str, str]] = {"mae": "min", "loss": "min"}
    TEST_METRIC: ClassVar[str] = "mae"
    TARGETS: ClassVar[str] = "loudness"

    def __init__(
        self,
        frontend: Mapping[str, Any],
        encoder: Mapping[str, Any],
        head: Mapping[str, Any],
        label_names: Sequence[str],
        example_samples: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        monitor: str = "val/mae",
        mode: str = "min",
        standardize_features: bool = False,
        spec_augment: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            frontend,
            encoder,
            optimizer,
            scheduler,
            monitor,
            mode,
            standardize_features,
            spec_augment,
            example_samples,
        )
        self.save_hyperparameters(logger=False)
        self.head = self.build_head(head)
        self.criterion = nn.MSELoss()
        self.val_mae = MeanAbsoluteError()
        self.test_mae = MeanAbsoluteError()
        self.test_predictions: list[torch.Tensor] = []

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(*self.encode(waveforms, lengths))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        waveforms, lengths, level = batch
        loss = self.criterion(self(waveforms, lengths), level.float())
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_mae)

    def on_test_epoch_start(self) -> None:
        self.test_predictions = []

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.test_predictions.append(self._evaluate(batch, "test", self.test_mae).cpu())

    def _evaluate(self, batch: Any, stage: str, mae: MeanAbsoluteError) -> torch.Tensor:
        waveforms, lengths, level = batch
        predicted = self(waveforms, lengths)
        mae.update(predicted, level.float())
        self.log(f"{stage}/loss", self.criterion(predicted, level.float()), on_epoch=True)
        self.log(f"{stage}/mae", mae, on_epoch=True)
        return predicted

    def write_test_outputs(self, datamodule: Any, output_dir: Path, loggers: list[Logger]) -> dict[str, Any]:
        """``<output_dir>/predictions.csv``: each tested clip's file, level and predicted level."""
        predicted = torch.cat(self.test_predictions).tolist()
        rows = zip(datamodule.files("test"), datamodule.targets("test"), predicted, strict=False)
        output_dir.mkdir(parents=True, exist_ok=True)
        with (output_dir / "predictions.csv").open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["file", "level", "predicted"])
            writer.writerows(rows)
        return {"clips": len(predicted), "predictions": "predictions.csv"}
