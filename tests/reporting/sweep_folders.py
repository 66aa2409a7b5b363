"""Builders of fake Hydra multirun folders: job folders with ``.hydra/overrides.yaml``, ``metrics.json``
and, optionally, a TensorBoard training-loss curve, as ``train.py -m`` writes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from src.training import GENERATED_CORPUS_NOTE


def job_summary(
    test_acc: float,
    val_acc: float = 0.9,
    train_loss: float = 0.1,
    epoch_times: Sequence[float] = (1.0, 1.0),
    backbone_params: int = 1000,
    backbone_macs: int = 50_000,
) -> dict[str, Any]:
    """A successful job's ``metrics.json`` content."""
    return {
        "status": "ok",
        "corpus": "generated",
        "corpus_note": GENERATED_CORPUS_NOTE,
        "fast_dev_run": False,
        "metrics": {"test/acc": test_acc, "val/acc_best": val_acc, "train/loss_epoch": train_loss},
        "complexity": {
            "complexity/frontend_params": 0,
            "complexity/backbone_params": backbone_params,
            "complexity/frontend_macs": 20_000,
            "complexity/backbone_macs": backbone_macs,
        },
        "epoch_times_s": list(epoch_times),
        "split_sizes": {"train": 400, "val": 50, "test": 40},
        "wall_time_s": 10.0,
    }


def failed_summary(error: str) -> dict[str, Any]:
    return {"status": "failed", "corpus": "generated", "corpus_note": GENERATED_CORPUS_NOTE, "error": error}


def write_job(
    sweep_dir: Path,
    num: int,
    overrides: Sequence[str],
    summary: dict[str, Any] | None,
    train_losses: Sequence[float] = (),
) -> Path:
    """Job folder ``sweep_dir/<num>``; ``summary`` None leaves no ``metrics.json`` (a killed job)."""
    job_dir = sweep_dir / str(num)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(list(overrides)))
    if summary is not None:
        (job_dir / "metrics.json").write_text(json.dumps(summary))
    if train_losses:
        with SummaryWriter(job_dir / "tensorboard") as writer:
            for epoch, loss in enumerate(train_losses):
                writer.add_scalar("train/loss_epoch", loss, global_step=10 * (epoch + 1))
    return job_dir
