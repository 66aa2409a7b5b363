"""A clip classifier checkpoint as one plain module: waveform -> frontend -> (standardisation) -> encoder
-> head -> logits, for predictions, quantisation and export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from src.callbacks.run_config import load_task_checkpoint
from src.tasks.base import FrontendEncoderTask
from src.utils.lengths import full_lengths


class WaveformClassifier(nn.Module):
    """``(batch, clip_samples)`` float32 waveforms in ``[-1, 1]`` at :attr:`sample_rate` Hz (clips padded
    or cut to ``clip_samples`` before), with optional true lengths -> ``(batch, num_classes)`` logits.
    The task's own frontend, standardiser, encoder and head, in eval mode; no SpecAugment.

    Attributes:
        frontend, standardizer (or ``None``), encoder, head: the task's modules (shared, not copied).
        class_names: labels in logit order.
        sample_rate: Hz the frontend was built for.
        clip_samples: samples per clip the model was trained on.
    """

    def __init__(self, task: FrontendEncoderTask, sample_rate: int) -> None:
        super().__init__()
        self.frontend = task.frontend
        self.standardizer = task.standardizer
        self.encoder = task.encoder
        self.head = task.head
        self.class_names: list[str] = list(task.hparams.label_names)
        self.sample_rate = int(sample_rate)
        self.clip_samples = int(task.hparams.example_samples)
        self.eval()

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, clip_samples)`` waveforms and their ``(batch,)`` true lengths in samples before
        zero-padding (``None``: every sample is real) -> ``(batch, num_classes)`` logits. Encoders that mask
        padded frames (BC-ResNet, the recurrent ones) read the lengths, as in training and ``test.py``."""
        if lengths is None:
            lengths = full_lengths(waveforms.shape[0], waveforms.shape[-1], waveforms.device)
        features, frame_lengths = self.frontend(waveforms, lengths)
        if self.standardizer is not None:
            features = self.standardizer(features)
        return self.head(*self.encoder(features, frame_lengths))

    def backbone(self) -> nn.Module:
        """Everything after the frontend (standardiser, encoder, head), as one module for size counts and
        quantisation."""
        parts = (self.standardizer, self.encoder, self.head)
        return nn.ModuleList(part for part in parts if part is not None)


@dataclass(frozen=True)
class LoadedClassifier:
    """A checkpoint read for inference: the model and the run config it was trained with."""

    model: WaveformClassifier
    run_config: DictConfig
    ckpt_path: Path


def load_classifier(ckpt_path: str | Path, key: str = "ckpt_path") -> LoadedClassifier:
    """The clip classifier of a ``train.py`` checkpoint, on the CPU, in eval mode.

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: from
            :func:`src.callbacks.run_config.load_run_config` for a file that is no checkpoint of this
            project.
        ValueError: for a checkpoint of a task whose targets are not clip classes (e.g. ``task=ctc``),
            naming ``key`` (the command's config key of the checkpoint), the task and what to pass instead.
    """
    task, run_config = load_task_checkpoint(
        ckpt_path,
        "class",
        "not a keyword classifier: this command serves clip classifiers (keyword spotting, "
        "task=classification); test other tasks with test.py",
        key,
    )
    model = WaveformClassifier(task, sample_rate=int(run_config.data.sample_rate))
    return LoadedClassifier(model=model, run_config=run_config, ckpt_path=Path(ckpt_path))
