"""Clip classification (``task=classification``): keyword spotting with cross-entropy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from src.reporting.test_analysis import analyse_test_predictions
from src.tasks.base import FrontendEncoderTask
from src.utils.lengths import full_lengths

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(waveforms (batch, time) float, lengths (batch,) int64, labels (batch,) int64)``."""


class ClassificationTask(FrontendEncoderTask):
    """Waveform -> frontend -> encoder -> clip head -> class logits, optimised with cross-entropy.

    The head (``task.head``, by default :class:`src.tasks.heads.ClipClassifierHead`: pooling over the real
    frames, dropout, linear) is built with ``num_classes=len(label_names)``. Everything else is
    :class:`src.tasks.base.FrontendEncoderTask`'s.

    Args:
        frontend, encoder, optimizer, scheduler, monitor, mode, standardize_features, spec_augment,
            example_samples, compile, compression: as :class:`~src.tasks.base.FrontendEncoderTask`.
        head: partial config of the clip head.
        label_names: class labels in index order (the data module's ``label_names``).

    Logged: ``train/loss`` (step and epoch), ``train/acc``, ``{val,test}/{loss,acc,macro_f1}``; ``acc``
    is the share of clips classified correctly; on several processes every epoch value covers all of
    them (:meth:`~src.tasks.base.FrontendEncoderTask.log_loss`, torchmetrics). During
    :meth:`test_step` the softmax outputs are kept in :attr:`test_probabilities` (dataloader order).
    """

    METRIC_MODES: ClassVar[dict[str, str]] = {"acc": "max", "macro_f1": "max", "loss": "min"}
    TEST_METRIC: ClassVar[str] = "acc"
    TARGETS: ClassVar[str] = "class"

    def __init__(
        self,
        frontend: Mapping[str, Any],
        encoder: Mapping[str, Any],
        head: Mapping[str, Any],
        label_names: Sequence[str],
        example_samples: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        monitor: str = "val/acc",
        mode: str = "max",
        standardize_features: bool = False,
        spec_augment: Mapping[str, Any] | None = None,
        compile: bool = False,
        compression: Mapping[str, Any] | None = None,
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
            compile,
            compression,
        )
        if not label_names:
            raise ValueError("label_names must list the classes (the data module's label_names), got none")
        self.save_hyperparameters(logger=False)
        self.class_names = list(label_names)
        num_classes = len(self.class_names)
        self.head = self.build_head(head, num_classes=num_classes)
        self.compress_backbone()
        self.criterion = nn.CrossEntropyLoss()
        # The share of clips classified correctly (torchmetrics' default average is "macro", the mean of
        # the per-class recalls, which is not accuracy on unbalanced splits such as kws12's).
        accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.train_metrics = MetricCollection({"acc": accuracy.clone()}, prefix="train/")
        metrics = MetricCollection(
            {"acc": accuracy.clone(), "macro_f1": MulticlassF1Score(num_classes, average="macro")}
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_probabilities: list[torch.Tensor] = []

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, time)`` waveforms and their ``(batch,)`` true lengths (``None``: all of ``time``) ->
        ``(batch, num_classes)`` logits."""
        if lengths is None:
            lengths = full_lengths(waveforms.shape[0], waveforms.shape[-1], waveforms.device)
        return self.head(*self.encode(waveforms, lengths))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        waveforms, lengths, labels = batch
        logits = self(waveforms, lengths)
        loss = self.criterion(logits, labels)
        self.train_metrics.update(logits, labels)
        self.log_loss("train", loss, len(labels))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def on_test_epoch_start(self) -> None:
        self.test_probabilities = []

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        logits = self._evaluate(batch, "test", self.test_metrics)
        self.test_probabilities.append(logits.softmax(dim=-1).cpu())

    def _evaluate(self, batch: Batch, stage: str, metrics: MetricCollection) -> torch.Tensor:
        waveforms, lengths, labels = batch
        logits = self(waveforms, lengths)
        metrics.update(logits, labels)
        self.log_loss(stage, self.criterion(logits, labels), len(labels))
        self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val")
        return logits

    def example_title(self, batch: Batch, index: int) -> str:
        """The class name of example ``index`` of ``batch``."""
        return self.class_names[int(batch[2][index])]

    def write_test_outputs(self, datamodule: Any, output_dir: Path, loggers: list[Logger]) -> dict[str, Any]:
        """The error analysis of the last test (:func:`src.reporting.test_analysis.analyse_test_predictions`)
        in ``<output_dir>/error_analysis/``, with the confusion matrix in TensorBoard."""
        probabilities = torch.cat(self.test_probabilities)
        count = probabilities.shape[0]
        return analyse_test_predictions(
            probabilities,
            labels=datamodule.labels("test")[:count],
            files=datamodule.files("test")[:count],
            class_names=self.class_names,
            output_dir=output_dir,
            loggers=loggers,
        )
