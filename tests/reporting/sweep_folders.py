"""Builders of fake Hydra multirun folders: job folders with ``.hydra/overrides.yaml``,
``.hydra/config.yaml``, ``metrics.json`` and, optionally, a TensorBoard training-loss curve, as
``train.py -m`` writes them; and a stand-in data module for the jobs' ``data`` config."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter

CORPUS_NOTE = "generated corpus: synthetic espeak-ng speech, not real recordings"
QUESTION = "Which configuration is best?"
# What metrics.json says a classifier and a phone recogniser are scored and selected by.
CLASSIFICATION = {
    "test_metric": "test/acc",
    "test_metric_mode": "max",
    "monitor": "val/acc",
    "monitor_mode": "max",
    "best_metric": "val/acc_best",
}
PHONE_RECOGNITION = {
    "test_metric": "test/per",
    "test_metric_mode": "min",
    "monitor": "val/per",
    "monitor_mode": "min",
    "best_metric": "val/per_best",
}
TONE_DATA = "tests.reporting.sweep_folders.ToneDataModule"
# The data of a keyword sweep (clips of a fixed length) and of a phone recognition sweep (utterances).
CLIP_DATA = {
    "_target_": TONE_DATA,
    "corpus": "generated",
    "words": ["yes", "no"],
    "clip_seconds": 1.0,
    "sample_rate": 16000,
    "batch_size": 64,
}
UTTERANCE_DATA = {
    "_target_": TONE_DATA,
    "corpus": "generated",
    "phones": 61,
    "sample_rate": 16000,
    "batch_size": 8,
}


class ToneDataModule:
    """Stands in for a job's data module: its test split is one example, from the file ``tone.wav``: a
    440 Hz tone of a second, zero-padded to two (so batches are ``(waveforms, lengths, labels)``). Refuses
    to prepare data (which would generate or download a corpus). Takes (and ignores) any other setting."""

    def __init__(self, sample_rate: int = 16000, **settings: Any) -> None:
        self.sample_rate = sample_rate
        self._test: list[tuple[torch.Tensor, int, int]] = []

    def prepare_data(self) -> None:
        raise AssertionError("the report must not generate or download the jobs' corpus")

    def setup(self, stage: str) -> None:
        tone = 0.5 * torch.sin(2 * math.pi * 440 * torch.arange(self.sample_rate) / self.sample_rate)
        self._test = [(torch.cat([tone, torch.zeros(self.sample_rate)]), self.sample_rate, 0)]

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self._test)

    def files(self, split: str) -> list[str]:
        return ["tone.wav"]


def job_config(question: str | None = QUESTION, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A job's ``.hydra/config.yaml`` content: its question and the groups the report describes."""
    return {
        "task_name": "sweep",
        "question": question,
        "data": data or CLIP_DATA,
        "frontend": {"_target_": "src.frontends.LogMelFilterBanks", "n_mels": 20},
        "model": {"_target_": "fake.Encoder", "channels": [8, 8]},
        "optimizer": {"_target_": "torch.optim.AdamW", "lr": 0.001},
        "scheduler": {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": 2},
        "trainer": {"max_epochs": 2},
    }


def job_summary(
    test_value: float,
    best_value: float = 0.9,
    train_loss: float = 0.1,
    epoch_times: Sequence[float] = (1.0, 1.0),
    backbone_params: int = 1000,
    backbone_macs: int = 50_000,
    scoring: dict[str, str] = CLASSIFICATION,
    frontend_setting: str | None = None,
) -> dict[str, Any]:
    """A successful job's ``metrics.json`` content, scored as ``scoring`` says (the test metric is
    ``test_value``, the best monitored value ``best_value``)."""
    return {
        "status": "ok",
        "corpus": "generated",
        "corpus_note": CORPUS_NOTE,
        "fast_dev_run": False,
        **scoring,
        "question": QUESTION,
        "frontend_setting": frontend_setting,
        "metrics": {
            scoring["test_metric"]: test_value,
            scoring["best_metric"]: best_value,
            "test/loss": 1.0,
            "train/loss_epoch": train_loss,
        },
        "complexity": {
            "complexity/frontend_params": 0,
            "complexity/backbone_params": backbone_params,
            "complexity/frontend_macs": 20_000,
            "complexity/backbone_macs": backbone_macs,
        },
        "epoch_times_s": list(epoch_times),
        "split_sizes": {"train": 400, "val": 50, "test": 40},
        "wall_time_s": 10.0,
        "hardware": {"cpu": "CPU", "cpu_cores": 2, "gpu": None, "torch": "2", "torch_threads": 2},
    }


def failed_summary(error: str) -> dict[str, Any]:
    return {"status": "failed", "corpus": "generated", "corpus_note": CORPUS_NOTE, "error": error}


def write_job(
    sweep_dir: Path,
    num: int,
    overrides: Sequence[str],
    summary: dict[str, Any] | None,
    train_losses: Sequence[float] = (),
    config: dict[str, Any] | None = None,
) -> Path:
    """Job folder ``sweep_dir/<num>`` with ``config`` (default :func:`job_config`) as its composed config;
    ``summary`` None leaves no ``metrics.json`` (a killed job)."""
    job_dir = sweep_dir / str(num)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(list(overrides)))
    (job_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(config or job_config()))
    if summary is not None:
        (job_dir / "metrics.json").write_text(json.dumps(summary))
    if train_losses:
        with SummaryWriter(job_dir / "tensorboard") as writer:
            for epoch, loss in enumerate(train_losses):
                writer.add_scalar("train/loss_epoch", loss, global_step=10 * (epoch + 1))
    return job_dir


def write_per_sweep(sweep: Path, question: str | None = QUESTION) -> None:
    """A phone recognition sweep over n_mels on utterance data: test PER 0.3 at 20 mels, 0.2 at 40 (seeds
    1 and 2 each), the best validation PER 0.01 lower."""
    config = job_config(question, UTTERANCE_DATA)
    for num, (n_mels, per) in enumerate([(20, 0.31), (20, 0.29), (40, 0.21), (40, 0.19)]):
        summary = job_summary(per, best_value=per - 0.01, scoring=PHONE_RECOGNITION)
        write_job(sweep, num, [f"frontend.n_mels={n_mels}", f"seed={num % 2 + 1}"], summary, config=config)
