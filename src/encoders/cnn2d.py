"""The audio-classification assignment's mel-CNN as an encoder (``model=cnn2d``): the feature map as a
one-channel image, 2D convolution blocks with growing channels and pooling, flattened into fully connected
layers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from src.encoders.base import FixedFramesEncoder, dense_layers
from src.utils.config_values import positive_int, positive_ints, probability
from src.utils.lengths import full_lengths


class CNN2d(FixedFramesEncoder):
    """``(batch, in_features, num_frames) -> (batch, 1, hidden[-1])``.

    Layout: the features become a ``(batch, 1, in_features, num_frames)`` image (frequency, time); for each
    width ``c`` of ``channels`` a block ``Conv2d(c_in, c, kernel_size, padding=kernel_size // 2) ->
    BatchNorm2d -> ReLU -> MaxPool2d(pool, ceil_mode=True)`` (each pooling divides both sizes by ``pool``,
    rounding up); the ``(channels[-1], rows, columns)`` map is flattened, then ``Linear -> ReLU -> Dropout``
    for each width of ``hidden``. The task's clip head (``Linear(hidden[-1], num_classes)``) gives the
    classes.

    The flattened size depends on the frame count, so every example must have exactly ``num_frames`` frames
    (the task sets it from the frontend's frame count for the data's example length); the encoder collapses
    time (``keeps_time = False``), so it cannot feed a per-frame (CTC) head. Padding is not masked.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_frames: frames per example (set by the task from the frontend and the example length).
        channels: output channels of each convolution block.
        kernel_size: odd size of every (square) convolution kernel.
        pool: size and stride of every max pooling.
        hidden: widths of the fully connected layers after flattening.
        dropout: dropout probability after each fully connected layer's ReLU.

    Raises:
        ValueError: for a setting that cannot work (a missing ``num_frames``, sizes or widths that are not
            integers >= 1, an even ``kernel_size``, a ``dropout`` outside ``[0, 1)``), naming the
            ``model.<key>``.
    """

    MODEL = "cnn2d"

    def __init__(
        self,
        in_features: int,
        num_frames: int | None,
        channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3,
        pool: int = 2,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__(in_features, num_frames)
        channels = positive_ints("model.channels", channels, [16, 32, 64])
        positive_int("model.kernel_size", kernel_size, 3)
        if kernel_size % 2 == 0:
            raise ValueError(
                f"model.kernel_size must be odd so padding keeps the size, got {kernel_size}: e.g. "
                f"model.kernel_size={kernel_size + 1}"
            )
        positive_int("model.pool", pool, 2)
        widths = positive_ints("model.hidden", hidden, [128])
        probability("model.dropout", dropout, 0.2)
        self.out_features = widths[-1]

        blocks: list[nn.Module] = []
        rows, columns, c_in = in_features, num_frames, 1
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(pool, ceil_mode=True),
            ]
            rows, columns, c_in = math.ceil(rows / pool), math.ceil(columns / pool), c_out
        self.convolutions = nn.Sequential(*blocks)
        self.flat_features = c_in * rows * columns
        self.fully_connected = dense_layers(self.flat_features, widths, dropout)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, in_features, num_frames) -> (batch, 1, hidden[-1])`` and ones (``lengths`` is not
        used: the fixed-length map is read whole).

        Raises:
            ValueError: for features of another shape, naming the expected one.
        """
        self.check_features(features)
        image = self.convolutions(features.unsqueeze(1))
        hidden = self.fully_connected(image.flatten(1))
        return hidden.unsqueeze(1), full_lengths(features.shape[0], 1, features.device)
