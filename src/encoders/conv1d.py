"""A 1-D convolutional encoder: features are channels, convolution runs over time (``model=conv1d``)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from src.encoders.base import Encoder
from src.encoders.config_values import common_divisors
from src.utils.config_values import positive_int, positive_ints
from src.utils.lengths import full_lengths


class Conv1dCNN(Encoder):
    """Stacked Conv1d blocks over time: ``(batch, in_features, frames) -> (batch, frames', channels[-1])``.

    Layout: a stem ``Conv1d(in_features, channels[0])`` with ``groups=1`` (``in_features`` is
    ``n_mels``, which need not be divisible by ``groups``), then one block per following width
    ``Conv1d(c_in, c_out, groups=groups) -> BatchNorm1d -> ReLU -> MaxPool1d(2)`` (``ceil_mode``, so
    ``frames' = ceil(frames / 2 ** (len(channels) - 1))``). ``groups`` is what the groups sweep varies: it
    divides the parameters and MACs of every block after the stem. With the task's mean-pooling clip head
    this is the study's Conv1d CNN (mean over time, dropout, ``Linear(channels[-1], num_classes)``).

    It ignores ``lengths``: padding is part of the fixed-length clip it convolves, so every output frame
    is reported as real.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        channels: output width of the stem and of each block.
        kernel_size: temporal kernel size of every convolution (odd, so padding keeps length).
        groups: ``groups`` of each block's convolution; must divide every width in ``channels``.

    Raises:
        ValueError: for a setting that cannot work (widths or sizes that are not integers >= 1, an even
            ``kernel_size``, ``groups`` that does not divide every width), naming the ``model.<key>``.
    """

    def __init__(
        self,
        in_features: int,
        channels: Sequence[int] = (64, 64, 128, 128),
        kernel_size: int = 3,
        groups: int = 1,
    ) -> None:
        super().__init__()
        channels = positive_ints("model.channels", channels, [64, 64, 128, 128])
        positive_int("model.kernel_size", kernel_size, 3)
        if kernel_size % 2 == 0:
            raise ValueError(
                f"model.kernel_size must be odd so padding keeps the length, got {kernel_size}: e.g. "
                f"model.kernel_size={kernel_size + 1}"
            )
        positive_int("model.groups", groups, 1)
        not_divisible = [c for c in channels if c % groups]
        if not_divisible:
            divisors = common_divisors(channels)
            example = max(d for d in divisors if d < groups)
            raise ValueError(
                f"model.groups={groups} does not divide the channel widths {not_divisible} "
                f"of model.channels={channels}: choose groups among the common divisors of the widths "
                f"({', '.join(map(str, divisors))}; e.g. model.groups={example}), "
                "or widths that are multiples of groups"
            )
        padding = kernel_size // 2
        layers: list[nn.Module] = [
            nn.Conv1d(in_features, channels[0], kernel_size, padding=padding, bias=False),
            nn.BatchNorm1d(channels[0]),
            nn.ReLU(),
        ]
        for c_in, c_out in pairwise(channels):
            layers += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=padding, groups=groups, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
                nn.MaxPool1d(2, ceil_mode=True),
            ]
        self.features = nn.Sequential(*layers)
        self.out_features = channels[-1]

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, in_features, frames) -> (batch, frames', channels[-1])`` and ``frames'`` for every
        example (``lengths`` is not used)."""
        sequence = self.features(features).transpose(1, 2)
        return sequence, full_lengths(sequence.shape[0], sequence.shape[1], sequence.device)
