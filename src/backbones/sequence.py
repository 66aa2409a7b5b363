"""Per-frame classifiers for CTC: ``(batch, in_features, frames)`` and frame counts -> one output per frame.

Every model here keeps the frame rate of its input and returns ``(batch, frames, num_outputs)`` logits; the
task builds it with ``in_features=frontend.out_features`` and ``num_outputs`` = phones + blank. Given
``lengths``, the padded frames of each example never reach the recurrent layers' outputs at real frames and
are zeroed before every convolution that mixes frames, so the outputs at an example's real frames do not
depend on how far it was padded (in eval mode; in training mode the batch statistics of BatchNorm include
padded frames). Outputs at padded frames are not meaningful.

- :class:`RecurrentFrameClassifier`: input BatchNorm, (bidirectional) LSTM layers, linear per frame.
- :class:`BCResNetFrameClassifier`: BC-ResNet without its pooling over time (it strides only in
  frequency), the mean over the remaining frequency rows, then LSTM layers and a linear per frame.
- :class:`CRNNFrameClassifier`: the CRNN's convolutional blocks and LSTM layers, a linear per frame.

MACs: as for the clip classifiers in :mod:`src.backbones.rnn`, each ``analytic_macs`` adds the recurrent
MACs that ptflops' ``aten`` backend does not see.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.backbones.bcresnet import BCResNetFeatures
from src.backbones.crnn import CRNNEncoder
from src.backbones.rnn import RecurrentEncoder, check_lengths


class RecurrentFrameClassifier(nn.Module):
    """Recurrent layers over the frame sequence with a linear classifier on every frame.

    ``(batch, in_features, frames) -> (batch, frames, num_outputs)``. Layout: ``BatchNorm1d(in_features)``
    over the features (optional), transpose to ``(batch, frames, in_features)``, a
    :class:`src.backbones.rnn.RecurrentEncoder` of ``num_layers`` ``cell`` layers (dropout between them),
    dropout and ``Linear(hidden_size * directions, num_outputs)`` on each frame.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_outputs: outputs per frame, e.g. phones + CTC blank (set by the task).
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        hidden_size: hidden units per direction.
        num_layers: stacked recurrent layers.
        bidirectional: also run each layer backwards in time; doubles the classifier's input width.
        dropout: dropout probability between recurrent layers and before the classifier.
        input_batchnorm: normalise each input feature with ``BatchNorm1d`` before the first layer.
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        cell: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 3,
        bidirectional: bool = True,
        dropout: float = 0.2,
        input_batchnorm: bool = True,
    ) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm1d(in_features) if input_batchnorm else nn.Identity()
        self.encoder = RecurrentEncoder(cell, in_features, hidden_size, num_layers, bidirectional, dropout)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.encoder.output_size, num_outputs)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Classify every frame of a batch of feature sequences.

        Args:
            features: ``(batch, in_features, frames)``, padded after each example's last real frame.
            lengths: ``(batch,)`` real frame counts, or ``None`` when every frame is real.

        Returns:
            Logits ``(batch, frames, num_outputs)``.
        """
        if lengths is not None:
            check_lengths(lengths, features.shape[0], features.shape[-1])
        sequence = self.input_norm(features).transpose(1, 2)
        return self.classifier(self.dropout(self.encoder(sequence, lengths)))

    def analytic_macs(self, in_features: int, frames: int) -> int:
        """MACs of the recurrent layers that ptflops' ``aten`` backend misses, for ``count_macs``."""
        return self.encoder.uncounted_macs(frames)


class BCResNetFrameClassifier(nn.Module):
    """BC-ResNet-``tau`` without its pooling over time, then LSTM layers and a linear on every frame.

    ``(batch, in_features, frames) -> (batch, frames, num_outputs)``. The
    :class:`src.backbones.bcresnet.BCResNetFeatures` of BC-ResNet (head, 4 stages of broadcasted residual
    blocks, classifier convolution to ``c[5]`` channels; strides only in frequency, so every frame is kept)
    give ``(batch, c[5], rows, frames)``; the mean over the ``rows`` frequency rows (1 for 40 mel bands)
    leaves ``c[5]`` features per frame for a :class:`src.backbones.rnn.RecurrentEncoder` of ``num_layers``
    LSTM layers, then dropout and ``Linear(hidden_size * directions, num_outputs)``.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_outputs: outputs per frame, e.g. phones + CTC blank (set by the task).
        width_multiplier: ``tau`` of BC-ResNet-``tau``; widths as
            :func:`src.backbones.bcresnet.bcresnet_widths`.
        groups: ``groups`` of BC-ResNet's pointwise convolutions; must divide every width.
        sub_bands: frequency sub-bands of every SubSpectralNorm.
        conv_dropout: ``Dropout2d`` probability at the end of each block's temporal branch.
        hidden_size: LSTM hidden units per direction.
        num_layers: stacked LSTM layers.
        bidirectional: also run each LSTM layer backwards in time.
        dropout: dropout probability between LSTM layers and before the classifier.
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        width_multiplier: float = 4.0,
        groups: int = 1,
        sub_bands: int = 5,
        conv_dropout: float = 0.1,
        hidden_size: int = 256,
        num_layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.features = BCResNetFeatures(in_features, width_multiplier, groups, sub_bands, conv_dropout)
        channels = self.features.widths[5]
        self.encoder = RecurrentEncoder("lstm", channels, hidden_size, num_layers, bidirectional, dropout)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.encoder.output_size, num_outputs)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Classify every frame of a batch of log-mel maps.

        Args:
            features: ``(batch, in_features, frames)``, padded after each example's last real frame.
            lengths: ``(batch,)`` real frame counts, or ``None`` when every frame is real.

        Returns:
            Logits ``(batch, frames, num_outputs)``.
        """
        # (batch, c[5], rows, frames) -> (batch, frames, c[5])
        sequence = self.features(features, lengths).mean(dim=2).transpose(1, 2)
        return self.classifier(self.dropout(self.encoder(sequence, lengths)))

    def analytic_macs(self, in_features: int, frames: int) -> int:
        """MACs of the LSTM layers that ptflops' ``aten`` backend misses, for ``count_macs``."""
        return self.encoder.uncounted_macs(frames)


class CRNNFrameClassifier(nn.Module):
    """The CRNN's convolutional blocks and LSTM layers, then a linear on every frame.

    ``(batch, in_features, frames) -> (batch, frames, num_outputs)``: a
    :class:`src.backbones.crnn.CRNNEncoder` (convolutions that keep every frame, then LSTM layers), dropout
    and ``Linear(hidden_size * directions, num_outputs)``.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_outputs: outputs per frame, e.g. phones + CTC blank (set by the task).
        conv: ``"conv1d"`` or ``"conv2d"`` (see :class:`src.backbones.crnn.CRNNEncoder`).
        conv_channels: output channels of each convolutional block.
        hidden_size: LSTM hidden units per direction.
        num_layers: stacked LSTM layers.
        bidirectional: also run each LSTM layer backwards in time.
        dropout: dropout probability between LSTM layers and before the classifier.
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        conv: str = "conv2d",
        conv_channels: Sequence[int] = (16, 32),
        hidden_size: int = 256,
        num_layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.crnn = CRNNEncoder(
            in_features, conv, conv_channels, hidden_size, num_layers, bidirectional, dropout
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.crnn.output_size, num_outputs)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Classify every frame of a batch of feature sequences.

        Args:
            features: ``(batch, in_features, frames)``, padded after each example's last real frame.
            lengths: ``(batch,)`` real frame counts, or ``None`` when every frame is real.

        Returns:
            Logits ``(batch, frames, num_outputs)``.
        """
        return self.classifier(self.dropout(self.crnn(features, lengths)))

    def analytic_macs(self, in_features: int, frames: int) -> int:
        """MACs of the LSTM layers that ptflops' ``aten`` backend misses, for ``count_macs``."""
        return self.crnn.encoder.uncounted_macs(frames)
