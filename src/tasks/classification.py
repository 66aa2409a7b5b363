"""Clip classification: a frontend and a backbone trained with cross-entropy."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from src.frontends.spec_augment import SpecAugment
from src.frontends.standardization import FeatureStandardizer
from src.tasks.frontend_task import FrontendBackboneTask

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class ClassificationTask(FrontendBackboneTask):
    """Waveform -> frontend -> (standardisation) -> (SpecAugment, training only) -> backbone -> class
    logits, optimised with cross-entropy.

    Both parts are built here from their configs, so a checkpoint rebuilds itself from its saved
    hyperparameters alone: the backbone is created with ``in_features=frontend.out_features`` and
    ``num_classes=len(class_names)``, and a backbone config with ``num_frames: null`` (a model over a
    fixed number of frames, e.g. ``linear``) gets ``frontend.num_frames(clip_samples)``. The frontend
    runs inside the model, on the training device; a frontend with a ``constrain_()`` method (e.g. to
    keep trainable mel filters non-negative) has it called after every optimiser step.

    Batches are ``(waveforms (batch, time), lengths (batch,), labels (batch,))``. The true lengths become
    frame counts (``frontend.num_frames``) that a backbone whose ``forward`` takes ``lengths`` (the
    recurrent ones) uses to ignore padding; other backbones see the padded clip.

    Args:
        frontend: config (with ``_target_``) of a module ``(batch, time) -> (batch, features, frames)``
            that has an ``out_features`` attribute.
        backbone: config of a module ``(batch, features, frames) -> (batch, num_classes)``.
        class_names: class labels in index order.
        clip_samples: samples per clip (the data's fixed clip length), for backbones that need the
            number of frames.
        optimizer: partial config of a ``torch.optim`` optimizer (``_partial_: true``).
        scheduler: optional partial config of a ``torch.optim.lr_scheduler`` stepped every epoch.
        standardize_features: standardise each feature with the mean and std of the training split's
            features, measured once when fitting starts (with the frontend as initialised) and stored in
            the checkpoint.
        spec_augment: settings of :class:`~src.frontends.spec_augment.SpecAugment` (other keys, e.g. the
            waveform augmentations', are ignored), applied to training features only; ``None``: none.

    Logged: ``train/loss`` (step and epoch), ``train/acc``, ``{val,test}/{loss,acc,macro_f1}``. During
    :meth:`test_step` the softmax outputs are kept in :attr:`test_probabilities` (dataloader order).
    """

    monitor = "val/acc"
    test_metric = "test/acc"

    def __init__(
        self,
        frontend: Mapping[str, Any],
        backbone: Mapping[str, Any],
        class_names: Sequence[str],
        clip_samples: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        standardize_features: bool = False,
        spec_augment: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.class_names = list(class_names)
        self.frontend = instantiate(frontend)
        sizes = {"in_features": self.frontend.out_features, "num_classes": len(self.class_names)}
        if "num_frames" in backbone and backbone["num_frames"] is None:
            sizes["num_frames"] = self.frontend.num_frames(clip_samples)
        self.backbone = instantiate(backbone, **sizes)
        self.backbone_takes_lengths = "lengths" in inspect.signature(self.backbone.forward).parameters
        self.standardizer = FeatureStandardizer(self.frontend.out_features) if standardize_features else None
        self.spec_augment = SpecAugment.from_config(spec_augment or {})
        self.criterion = nn.CrossEntropyLoss()
        num_classes = len(self.class_names)
        # The share of clips classified correctly (torchmetrics' default average is "macro", the mean of
        # the per-class recalls, which is not accuracy on unbalanced splits such as kws12's).
        accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.train_metrics = MetricCollection({"acc": accuracy.clone()}, prefix="train/")
        metrics = MetricCollection(
            {
                "acc": accuracy.clone(),
                "macro_f1": MulticlassF1Score(num_classes, average="macro"),
            }
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_probabilities: list[torch.Tensor] = []

    def features(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, time)`` waveforms and ``(batch,)`` lengths -> the backbone's input ``(batch, features,
        frames)`` (standardised, and masked by SpecAugment in training) and ``(batch,)`` frame counts."""
        features = self.frontend(waveforms)
        frame_lengths = self.frame_lengths(lengths, features.shape[-1])
        if self.standardizer is not None:
            features = self.standardizer(features)
        return self.spec_augment(features), frame_lengths

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, time)`` waveforms and their ``(batch,)`` true lengths (``None``: all of ``time``) ->
        ``(batch, num_classes)`` logits."""
        if lengths is None:
            lengths = torch.full(waveforms.shape[:1], waveforms.shape[-1], device=waveforms.device)
        features, frame_lengths = self.features(waveforms, lengths)
        if self.backbone_takes_lengths:
            return self.backbone(features, frame_lengths)
        return self.backbone(features)

    def on_fit_start(self) -> None:
        """Measure the standardisation statistics on the training split (not augmented), unless a
        checkpoint already brought them."""
        if self.standardizer is None or self.standardizer.fitted:
            return
        loader = self.trainer.datamodule.train_dataloader()
        was_training = self.frontend.training
        self.frontend.eval()
        with torch.no_grad():
            self.standardizer.fit(self._frontend_outputs(loader))
        self.frontend.train(was_training)

    def _frontend_outputs(self, loader: Any) -> Any:
        for waveforms, lengths, _ in loader:
            features = self.frontend(waveforms.to(self.device))
            yield features, self.frame_lengths(lengths.to(self.device), features.shape[-1])

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        waveforms, lengths, labels = batch
        logits = self(waveforms, lengths)
        loss = self.criterion(logits, labels)
        self.train_metrics.update(logits, labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
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
        self.log(f"{stage}/loss", self.criterion(logits, labels), on_epoch=True, prog_bar=stage == "val")
        self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val")
        return logits
