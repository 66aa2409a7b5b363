"""A temporal convolutional network: dilated residual Conv1d blocks that keep every frame (``model=tcn``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from src.encoders.base import Encoder
from src.utils.config_values import positive_int, probability
from src.utils.lengths import check_lengths, frame_mask, full_lengths


class ResidualDilatedBlock(nn.Module):
    """``x + Dropout(ReLU(BatchNorm(Conv1d(x, dilation))))`` over ``(batch, channels, frames)``; the
    padding keeps ``frames``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        padding = dilation * (kernel_size // 2)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm1d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.dropout(torch.relu(self.norm(self.conv(x))))


class TemporalConvNet(Encoder):
    """``(batch, in_features, frames) -> (batch, frames, channels)``: a 1x1 input projection, then
    ``num_blocks`` residual blocks whose dilation doubles each block (1, 2, 4, ...) and restarts after
    ``blocks_per_stack``, as the TCN of Bai et al. (2018, "An empirical evaluation of generic convolutional
    and recurrent networks for sequence modeling") and Conv-TasNet's separator (Luo & Mesgarani, 2019) stack
    them. Non-causal: each output frame sees ``1 + (kernel_size - 1) * sum(dilations)`` frames around it.

    Frames stay aligned one to one with the input (a mask per STFT frame can be read from them). Padded
    frames are zeroed before each block, so the padding of a batch acts on the real frames as each
    example's own zero padding would.

    Args:
        in_features: features per frame (set by the task).
        channels: width of every block.
        kernel_size: odd temporal kernel of every block.
        num_blocks: residual blocks.
        blocks_per_stack: the dilation restarts at 1 after this many blocks.
        dropout: after each block's activation.

    Raises:
        ValueError: for sizes that are not integers >= 1, an even ``kernel_size`` or a dropout outside
            ``[0, 1)``, naming ``model.<key>``; in :meth:`forward`, for lengths outside ``[1, frames]``.
    """

    def __init__(
        self,
        in_features: int,
        channels: int = 128,
        kernel_size: int = 3,
        num_blocks: int = 6,
        blocks_per_stack: int = 6,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        positive_int("model.channels", channels, 128)
        positive_int("model.kernel_size", kernel_size, 3)
        if kernel_size % 2 == 0:
            raise ValueError(
                f"model.kernel_size must be odd so padding keeps the frames, got {kernel_size}: e.g. "
                f"model.kernel_size={kernel_size + 1}"
            )
        positive_int("model.num_blocks", num_blocks, 6)
        positive_int("model.blocks_per_stack", blocks_per_stack, 6)
        probability("model.dropout", dropout, 0.1)
        self.input_projection = nn.Conv1d(in_features, channels, 1)
        self.blocks = nn.ModuleList(
            ResidualDilatedBlock(channels, kernel_size, 2 ** (index % blocks_per_stack), dropout)
            for index in range(num_blocks)
        )
        self.out_features = channels

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        frames = features.shape[-1]
        lengths = full_lengths(features.shape[0], frames, features.device) if lengths is None else lengths
        check_lengths(lengths, features.shape[0], frames)
        mask = frame_mask(lengths.to(features.device), frames).unsqueeze(1).to(features.dtype)
        x = self.input_projection(features)
        for block in self.blocks:
            x = block(x * mask)
        return (x * mask).transpose(1, 2), lengths
