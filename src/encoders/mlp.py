"""The compression study's baseline as an encoder (``model=mlp``): the whole feature map flattened into one
vector, then fully connected hidden layers with ReLU and dropout; the task's clip head gives the classes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from src.encoders.base import FixedFramesEncoder, dense_layers
from src.utils.config_values import positive_ints, probability
from src.utils.lengths import full_lengths


class MLP(FixedFramesEncoder):
    """``(batch, in_features, num_frames) -> (batch, 1, hidden[-1])``: the map flattened to ``in_features *
    num_frames`` values, then ``Linear -> ReLU -> Dropout`` for each width of ``hidden``.

    With the default widths (five layers of 1024, dropout 0.2) and the task's clip head (``Linear(1024,
    num_classes)`` after the head's own dropout) it is the "Deep Learning Systems" assignment's baseline
    that ``compression=lowrank`` factorises. It sees a fixed number of frames, so every example must have
    exactly ``num_frames`` frames (the task sets it from the frontend's frame count for the data's example
    length); it collapses time (``keeps_time = False``), so it cannot feed a per-frame (CTC) head.
    Padding is not masked: every frame of the fixed-length map is read.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_frames: frames per example (set by the task from the frontend and the example length).
        hidden: width of each hidden layer, input side first.
        dropout: dropout probability after each hidden layer's ReLU.

    Raises:
        ValueError: for a missing or non-positive ``num_frames`` (``model.num_frames``), widths that are
            not integers >= 1 (``model.hidden``) or a ``dropout`` outside ``[0, 1)`` (``model.dropout``).
    """

    MODEL = "mlp"

    def __init__(
        self,
        in_features: int,
        num_frames: int | None,
        hidden: Sequence[int] = (1024,) * 5,
        dropout: float = 0.2,
    ) -> None:
        super().__init__(in_features, num_frames)
        widths = positive_ints("model.hidden", hidden, [1024] * 5)
        probability("model.dropout", dropout, 0.2)
        self.out_features = widths[-1]
        self.layers = dense_layers(in_features * num_frames, widths, dropout)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, in_features, num_frames) -> (batch, 1, hidden[-1])`` and ones (``lengths`` is not
        used: the fixed-length map is read whole).

        Raises:
            ValueError: for features of another shape, naming the expected one.
        """
        self.check_features(features)
        hidden = self.layers(features.flatten(1))
        return hidden.unsqueeze(1), full_lengths(features.shape[0], 1, features.device)
