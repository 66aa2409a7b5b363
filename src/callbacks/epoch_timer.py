"""Wall-clock time of each training epoch, validation excluded."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class EpochTrainingTimer(L.Callback):
    """Logs ``train/epoch_time_s``: seconds from the start of a training epoch to the end of its
    last optimisation step (data loading, forward, backward, optimiser; validation excluded).

    The per-epoch values of the run are kept in ``epoch_times`` for the run summary, and saved in every
    checkpoint: an epoch's time is recorded when its last batch ends, so the checkpoint written after its
    validation holds it, and a resumed run continues the list of the epochs trained before the
    interruption. Callback states loaded by ``trainer.test(ckpt_path=...)`` are ignored, so testing the
    best checkpoint leaves the list of a longer run whole.
    """

    def __init__(self) -> None:
        self.epoch_times: list[float] = []
        self._epoch_start: float | None = None
        self._last_batch_end: float | None = None
        self._measured: float | None = None
        self._stage: str | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Lightning calls setup before it loads a checkpoint's callback states.
        self._stage = stage

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_times": list(self.epoch_times)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self._stage == "fit":
            self.epoch_times = list(state_dict["epoch_times"])

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._last_batch_end = self._measured = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._last_batch_end = time.perf_counter()
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._record()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._measured is None:
            self._record()  # an epoch cut short (trainer.max_steps) has no last batch
        # A resumed run ends the interrupted epoch again without having timed it: nothing to log.
        if self._measured is not None:
            # The slowest process's time: with trainer=ddp the epoch ends when every process has.
            pl_module.log(
                "train/epoch_time_s",
                self._measured,
                on_step=False,
                on_epoch=True,
                sync_dist=True,
                reduce_fx="max",
            )
        self._epoch_start = None

    def _record(self) -> None:
        if self._epoch_start is None or self._last_batch_end is None or self._measured is not None:
            return
        self._measured = self._last_batch_end - self._epoch_start
        self.epoch_times.append(self._measured)
