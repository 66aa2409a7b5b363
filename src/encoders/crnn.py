"""CRNN: a small convolutional front that keeps every frame, then LSTM layers (``model=crnn``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.encoders.base import Encoder
from src.encoders.recurrent import RecurrentLayers
from src.utils.config_values import positive_ints
from src.utils.lengths import check_lengths, frame_mask, full_lengths

CONVS = ("conv1d", "conv2d")
"""Kinds of convolutional front: over time with features as channels, or over (frequency, time)."""


class CRNN(Encoder):
    """Convolutional blocks that keep the time resolution, then LSTM layers: one output per frame.

    ``(batch, in_features, frames) -> (batch, frames, hidden_size * directions)``. One block per width
    ``c`` in ``conv_channels``, every convolution with kernel 3 and padding 1:

    - ``conv="conv2d"``: the features are a one-channel ``(frequency, time)`` image,
      ``Conv2d(c_in, c, 3) -> BatchNorm2d -> ReLU -> MaxPool2d((2, 1))``: frequency is halved (rounded up)
      per block, time is not pooled. The LSTM reads ``conv_channels[-1] * ceil(in_features / 2**blocks)``
      features per frame (32 * 10 = 320 for ``[16, 32]`` on 40 mel bands).
    - ``conv="conv1d"``: the features are channels, ``Conv1d(c_in, c, 3) -> BatchNorm1d -> ReLU``, no
      pooling; the LSTM reads ``conv_channels[-1]`` features per frame.

    Then :class:`src.encoders.recurrent.RecurrentLayers` of ``num_layers`` LSTM layers (dropout between
    them). Every frame is kept (``lengths' = lengths``).

    With ``lengths`` the padded frames of each example are ignored: they are set to zero before every
    convolution (so a real frame next to the padding sees the zeros that convolution padding would give an
    unpadded example) and never reach the LSTM's outputs at real frames; the outputs at padded frames are
    zero. The real frames' outputs then do not depend on how the example was padded (in eval mode; in training
    mode the BatchNorm batch statistics include the padded frames).

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        conv: ``"conv1d"`` or ``"conv2d"``.
        conv_channels: output channels of each convolutional block.
        hidden_size: LSTM hidden units per direction.
        num_layers: stacked LSTM layers.
        bidirectional: also run each LSTM layer backwards in time; doubles the output width.
        dropout: dropout probability between LSTM layers.

    Raises:
        ValueError: for a setting that cannot work, naming the ``model.<key>`` (the LSTM settings are
            checked by :class:`~src.encoders.recurrent.RecurrentLayers`).
    """

    def __init__(
        self,
        in_features: int,
        conv: str = "conv2d",
        conv_channels: Sequence[int] = (16, 32),
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if conv not in CONVS:
            raise ValueError(f"model.conv must be one of {list(CONVS)}, got {conv!r}")
        conv_channels = positive_ints("model.conv_channels", conv_channels, [16, 32])
        self.conv = conv
        blocks = []
        if conv == "conv2d":
            c_in, rows = 1, in_features
            for c_out in conv_channels:
                blocks.append(
                    nn.Sequential(
                        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                        nn.BatchNorm2d(c_out),
                        nn.ReLU(),
                        nn.MaxPool2d((2, 1), ceil_mode=True),
                    )
                )
                c_in, rows = c_out, -(-rows // 2)
            rnn_input = conv_channels[-1] * rows
        else:
            c_in = in_features
            for c_out in conv_channels:
                blocks.append(
                    nn.Sequential(
                        nn.Conv1d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()
                    )
                )
                c_in = c_out
            rnn_input = conv_channels[-1]
        self.conv_blocks = nn.ModuleList(blocks)
        self.layers = RecurrentLayers("lstm", rnn_input, hidden_size, num_layers, bidirectional, dropout)
        self.out_features = self.layers.output_size
        self.bidirectional = bidirectional

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch of feature sequences frame by frame.

        Args:
            features: ``(batch, in_features, frames)``, padded after each example's last real frame.
            lengths: ``(batch,)`` real frame counts, or ``None`` when every frame is real.

        Returns:
            ``(batch, frames, out_features)``, zero at padded frames, and ``lengths``.
        """
        batch, _, frames = features.shape
        if lengths is None:
            lengths = full_lengths(batch, frames, features.device)
        check_lengths(lengths, batch, frames)
        mask = frame_mask(lengths.to(features.device), frames).to(features.dtype)
        # conv2d: (batch, 1, in_features, frames); conv1d: (batch, in_features, frames).
        hidden = features.unsqueeze(1) if self.conv == "conv2d" else features
        for block in self.conv_blocks:
            hidden = block(hidden * mask.view(batch, *[1] * (hidden.dim() - 2), frames))
        # (batch, channels[, rows], frames) -> (batch, frames, channels * rows)
        sequence = hidden.flatten(1, -2).transpose(1, 2)
        return self.layers(sequence, lengths), lengths
