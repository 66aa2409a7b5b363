"""Stores the run's resolved config in every checkpoint, so a checkpoint alone can be evaluated."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

RUN_CONFIG_KEY = "run_config"
FORMAT_KEY = "checkpoint_format"
CHECKPOINT_FORMAT = 2
"""Format 2: a task config (``task=``) with frontend, encoder and head; format 1 (no key) had backbones
with built-in classifiers and is refused."""


class RunConfigInCheckpoint(L.Callback):
    """Adds ``checkpoint["run_config"]``: the resolved config (plain containers) of the run, and
    ``checkpoint["checkpoint_format"]``: :data:`CHECKPOINT_FORMAT`."""

    def __init__(self, run_config: Mapping[str, Any]) -> None:
        self.run_config = dict(run_config)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RUN_CONFIG_KEY] = self.run_config
        checkpoint[FORMAT_KEY] = CHECKPOINT_FORMAT


def load_run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved config that :class:`RunConfigInCheckpoint` stored in a checkpoint.

    Raises:
        FileNotFoundError: when ``ckpt_path`` is not a file.
        ValueError: for a checkpoint without a run config, or one of an older format (written before
            tasks became configuration), which this code cannot rebuild.
    """
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path} is not a file: pass a checkpoint written by train.py, "
            "e.g. logs/train/runs/<run>/checkpoints/last.ckpt"
        )
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if RUN_CONFIG_KEY not in checkpoint:
        raise ValueError(f"{ckpt_path} holds no run config: it was not written by this project's train.py")
    if checkpoint.get(FORMAT_KEY) != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{ckpt_path} predates tasks as configuration (checkpoint format "
            f"{checkpoint.get(FORMAT_KEY, 1)}, this code reads {CHECKPOINT_FORMAT}): its backbone held the "
            "classifier that the task's head now holds. Retrain it with train.py, or evaluate it with the "
            "commit it was trained with (git checkout edacde1)"
        )
    return OmegaConf.create(checkpoint[RUN_CONFIG_KEY])
