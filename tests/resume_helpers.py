"""Test-only callbacks for interrupting a training run, added from the command line:
``+callbacks.kill._target_=tests.resume_helpers.SignalAtStep +callbacks.kill.step=7``."""

from __future__ import annotations

import os
import signal
from typing import Any

import lightning as L


class SignalAtStep(L.Callback):
    """Sends ``signal_name`` (``"SIGKILL"``: killed at once, as by the OOM killer or a cluster's
    preemption; ``"SIGINT"``: Ctrl+C) to its own process once optimisation step ``step`` (1-based, as
    ``trainer.global_step`` counts them) has ended."""

    def __init__(self, step: int, signal_name: str = "SIGKILL") -> None:
        self.step = step
        self.signal = signal.Signals[signal_name]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signal)
