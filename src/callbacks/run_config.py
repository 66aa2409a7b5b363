"""Stores the run's resolved config in every checkpoint, so a checkpoint alone can be evaluated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L

RUN_CONFIG_KEY = "run_config"


class RunConfigInCheckpoint(L.Callback):
    """Adds ``checkpoint["run_config"]``: the resolved config (plain containers) of the run."""

    def __init__(self, run_config: Mapping[str, Any]) -> None:
        self.run_config = dict(run_config)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RUN_CONFIG_KEY] = self.run_config
