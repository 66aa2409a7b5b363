"""What every task of a frontend and a backbone shares: optimiser and schedule from config, frontend
constraints after each step, frame counts of true lengths, parameter and MAC counts."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate

from src.utils.complexity import count_macs, count_parameters


class FrontendBackboneTask(L.LightningModule):
    """Base of the tasks with a ``frontend`` (``(batch, time) -> (batch, features, frames)``) and a
    ``backbone`` module, and ``optimizer``/``scheduler`` partial configs in their hyperparameters.

    A frontend with a ``constrain_()`` method (e.g. to keep trainable mel filters non-negative) has it
    called after every optimiser step; the scheduler is stepped every epoch.
    """

    frontend: torch.nn.Module
    backbone: torch.nn.Module
    # The validation metric checkpoints are chosen by, and the test metric a run reports.
    monitor: str
    test_metric: str

    def frame_lengths(self, lengths: torch.Tensor, frames: int) -> torch.Tensor:
        """``(batch,)`` true sample counts -> ``(batch,)`` int64 frame counts in ``[1, frames]``, the
        frontend's ``num_frames`` of each."""
        return self.frontend.num_frames(lengths.long()).clamp(1, frames)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        constrain = getattr(self.frontend, "constrain_", None)
        if constrain is not None:
            constrain()

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optimizer)(params=self.parameters())
        if self.hparams.scheduler is None:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def complexity(self, num_samples: int) -> dict[str, int]:
        """Parameters and MACs of frontend and backbone for an input of ``num_samples`` samples (MACs of
        sequence models grow linearly with it).

        Keys: ``complexity/{frontend,backbone,total}_{params,macs}``.
        """
        with torch.no_grad():
            features = self.frontend(torch.zeros(1, num_samples, device=self.device))
        counts = {
            "frontend_params": count_parameters(self.frontend),
            "frontend_macs": count_macs(self.frontend, (num_samples,)),
            "backbone_params": count_parameters(self.backbone),
            "backbone_macs": count_macs(self.backbone, tuple(features.shape[1:])),
        }
        counts["total_params"] = counts["frontend_params"] + counts["backbone_params"]
        counts["total_macs"] = counts["frontend_macs"] + counts["backbone_macs"]
        return {f"complexity/{name}": value for name, value in counts.items()}
