"""Clip classification: a frontend and a backbone trained with cross-entropy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from src.utils.complexity import count_macs, count_parameters


class ClassificationTask(L.LightningModule):
    """Waveform -> frontend -> backbone -> class logits, optimised with cross-entropy.

    Both parts are built here from their configs, so a checkpoint rebuilds itself from its saved
    hyperparameters alone: the backbone is created with ``in_features=frontend.out_features`` and
    ``num_classes=len(class_names)``, and a backbone config with ``num_frames: null`` (a model over a
    fixed number of frames, e.g. ``linear``) gets ``frontend.num_frames(clip_samples)``. The frontend
    runs inside the model, on the training device; a frontend with a ``constrain_()`` method (e.g. to
    keep trainable mel filters non-negative) has it called after every optimiser step.

    Args:
        frontend: config (with ``_target_``) of a module ``(batch, time) -> (batch, features, frames)``
            that has an ``out_features`` attribute.
        backbone: config of a module ``(batch, features, frames) -> (batch, num_classes)``.
        class_names: class labels in index order.
        clip_samples: samples per clip (the data's fixed clip length), for backbones that need the
            number of frames.
        optimizer: partial config of a ``torch.optim`` optimizer (``_partial_: true``).
        scheduler: optional partial config of a ``torch.optim.lr_scheduler`` stepped every epoch.

    Logged: ``train/loss`` (step and epoch), ``train/acc``, ``val/loss``, ``val/acc``,
    ``test/loss``, ``test/acc``.
    """

    def __init__(
        self,
        frontend: Mapping[str, Any],
        backbone: Mapping[str, Any],
        class_names: Sequence[str],
        clip_samples: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.class_names = list(class_names)
        self.frontend = instantiate(frontend)
        sizes = {"in_features": self.frontend.out_features, "num_classes": len(self.class_names)}
        if "num_frames" in backbone and backbone["num_frames"] is None:
            sizes["num_frames"] = self.frontend.num_frames(clip_samples)
        self.backbone = instantiate(backbone, **sizes)
        self.criterion = nn.CrossEntropyLoss()
        metrics = MetricCollection({"acc": MulticlassAccuracy(num_classes=len(self.class_names))})
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(batch, time)`` waveforms -> ``(batch, num_classes)`` logits."""
        return self.backbone(self.frontend(waveforms))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        waveforms, labels = batch
        logits = self(waveforms)
        loss = self.criterion(logits, labels)
        self.train_metrics.update(logits, labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        constrain = getattr(self.frontend, "constrain_", None)
        if constrain is not None:
            constrain()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, metrics: MetricCollection
    ) -> None:
        waveforms, labels = batch
        logits = self(waveforms)
        metrics.update(logits, labels)
        self.log(f"{stage}/loss", self.criterion(logits, labels), on_epoch=True, prog_bar=stage == "val")
        self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val")

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optimizer)(params=self.parameters())
        if self.hparams.scheduler is None:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def complexity(self, clip_samples: int) -> dict[str, int]:
        """Parameters and MACs of frontend and backbone for one clip of ``clip_samples`` samples.

        Keys: ``complexity/{frontend,backbone,total}_{params,macs}``.
        """
        with torch.no_grad():
            features = self.frontend(torch.zeros(1, clip_samples, device=self.device))
        counts = {
            "frontend_params": count_parameters(self.frontend),
            "frontend_macs": count_macs(self.frontend, (clip_samples,)),
            "backbone_params": count_parameters(self.backbone),
            "backbone_macs": count_macs(self.backbone, tuple(features.shape[1:])),
        }
        counts["total_params"] = counts["frontend_params"] + counts["backbone_params"]
        counts["total_macs"] = counts["frontend_macs"] + counts["backbone_macs"]
        return {f"complexity/{name}": value for name, value in counts.items()}
