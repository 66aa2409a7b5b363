"""Clip classifiers built in-process from composed configs, without training: cheap models of every
frontend and encoder for the deployment tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from src.deployment.classifier import WaveformClassifier
from src.training import build_task
from tests.conftest import compose_config

SAMPLE_RATE = 16000

# The study's trainable-frontend settings A-D (conf/frontend/trainable.yaml) and the fixed frontends.
FRONTENDS: dict[str, list[str]] = {
    "logmel": ["frontend=logmel"],
    "mfcc": ["frontend=mfcc"],
    "trainable_A": ["frontend=trainable"],
    "trainable_B": ["frontend=trainable", "frontend.trainable_mel=true"],
    "trainable_C": ["frontend=trainable", "frontend.trainable_stft=true"],
    "trainable_D": ["frontend=trainable", "frontend.trainable_stft=true", "frontend.trainable_mel=true"],
}


@dataclass
class _Labels:
    """What :func:`src.training.build_task` reads of a data module."""

    label_names: list[str]
    example_samples: int = SAMPLE_RATE
    TARGETS: str = "class"


def untrained_classifier(
    *overrides: str, num_classes: int = 2, logit_scale: float = 100.0
) -> WaveformClassifier:
    """A seeded, untrained :class:`WaveformClassifier` of ``config.yaml`` with ``overrides`` (one-second
    clips at 16 kHz), with standardisation statistics set when ``task.standardize_features=true``.

    Its classifier weights are multiplied by ``logit_scale`` so that logits are tens, as a trained model's
    are: parity tolerances relative to the logit scale then bite as they would on a trained model.
    """
    torch.manual_seed(0)
    config = compose_config("config", list(overrides))
    task = build_task(config, _Labels([f"class{index}" for index in range(num_classes)]))
    model = WaveformClassifier(task, SAMPLE_RATE)
    with torch.no_grad():
        model.head.classifier.weight.mul_(logit_scale)
        if model.standardizer is not None:
            model.standardizer.mean.normal_()
            model.standardizer.std.uniform_(1.0, 3.0)
            model.standardizer.frames_seen.fill_(1)
    return model.eval()
