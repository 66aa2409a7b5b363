"""Wall-clock time of each training epoch, validation excluded."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class EpochTrainingTimer(L.Callback):
    """Logs ``train/epoch_time_s``: seconds from the start of a training epoch to the end of its
    last optimisation step (data loading, forward, backward, optimiser; validation excluded).

    The per-epoch values of this run are kept in ``epoch_times`` for the run summary.
    """

    def __init__(self) -> None:
        self.epoch_times: list[float] = []
        self._epoch_start: float | None = None
        self._last_batch_end: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._last_batch_end = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._epoch_start is None or self._last_batch_end is None:
            return
        seconds = self._last_batch_end - self._epoch_start
        self.epoch_times.append(seconds)
        pl_module.log("train/epoch_time_s", seconds, on_step=False, on_epoch=True)
