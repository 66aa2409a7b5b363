"""A TensorBoard image of the frontend's features for a few validation clips."""

from __future__ import annotations

from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import TensorBoardLogger


class SpectrogramLogger(L.Callback):
    """Once per run, on the first validation batch after sanity checking, logs the features the
    task's ``frontend`` computes for ``num_examples`` examples (their real frames) as the figure
    ``features/validation``, each titled by the task's ``example_title``.

    Skipped when no TensorBoard logger is attached.
    """

    def __init__(self, num_examples: int = 4) -> None:
        self.num_examples = num_examples
        self._logged = False

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._logged or trainer.sanity_checking or batch_idx != 0:
            return
        experiments = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not experiments:
            return
        waveforms, lengths = batch[0][: self.num_examples], batch[1][: self.num_examples]
        with torch.no_grad():
            features, frames = pl_module.frontend(waveforms, lengths)
        features = features.float().cpu()
        figure, axes = plt.subplots(1, len(features), figsize=(3 * len(features), 3), squeeze=False)
        for index, (axis, feature) in enumerate(zip(axes[0], features, strict=False)):
            image = axis.imshow(feature[:, : int(frames[index])].numpy(), origin="lower", aspect="auto")
            axis.set_title(pl_module.example_title(batch, index))
            axis.set_xlabel("frame")
            figure.colorbar(image, ax=axis)
        axes[0][0].set_ylabel("feature")
        figure.tight_layout()
        for experiment in experiments:
            experiment.add_figure("features/validation", figure, global_step=trainer.global_step)
        plt.close(figure)
        self._logged = True
