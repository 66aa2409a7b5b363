"""Recurrent encoders: stacked ``nn.RNN``/``nn.LSTM``/``nn.GRU`` layers whose outputs ignore padded frames.

:class:`RecurrentLayers` (the layers alone, ``(batch, frames, input_size) -> (batch, frames, output_size)``)
is also the back end of :class:`src.encoders.crnn.CRNN`; :class:`RecurrentEncoder` is the encoder of
``model=rnn|lstm|bilstm|gru``: input BatchNorm, then the layers.

MACs: ptflops' ``aten`` backend sees the recurrent layers only partly, depending on the CPU kernel (the
oneDNN LSTM kernel ``aten.mkldnn_rnn_layer`` is invisible, while GRU and RNN decompose into ``addmm``/``mm``
calls). :class:`RecurrentLayers` is therefore an :class:`src.utils.complexity.ExactMacs` module, counted
exactly by :meth:`RecurrentLayers.exact_macs` wherever it sits.
"""

from __future__ import annotations

import torch
from torch import nn

from src.encoders.base import Encoder
from src.utils.complexity import ExactMacs
from src.utils.config_values import flag, positive_int, probability
from src.utils.lengths import check_lengths, frame_mask, full_lengths

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
"""Recurrent layer of each ``cell`` choice (``rnn`` is the tanh Elman RNN)."""

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
"""Gate pre-activations per hidden unit of each cell: the row blocks of ``weight_ih`` and ``weight_hh``."""


def reverse_within_lengths(sequence: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each example's real frames in time, leaving its padded frames where they are.

    ``(batch, frames, features) -> (batch, frames, features)``: frame ``t < lengths[b]`` of example ``b``
    becomes frame ``lengths[b] - 1 - t``; with ``lengths=None`` every frame is real (a plain flip). The
    permutation is its own inverse.
    """
    if lengths is None:
        return sequence.flip(1)
    steps = torch.arange(sequence.shape[1], device=sequence.device)
    lengths = lengths.to(sequence.device).unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return sequence.gather(1, index.unsqueeze(-1).expand_as(sequence))


class RecurrentLayers(ExactMacs):
    """A stack of recurrent layers over the frame sequence whose outputs at real frames ignore padding.

    ``(batch, frames, input_size) -> (batch, frames, output_size)`` with
    ``output_size = hidden_size * (2 if bidirectional else 1)``; a bidirectional layer concatenates the
    forward half ``[..., :hidden_size]`` and the backward half ``[..., hidden_size:]``, and layers after the
    first read both halves of the layer below (dropout between layers), as in a multi-layer
    ``nn.LSTM(bidirectional=True)``.

    Each layer and direction is a one-layer ``nn.RNN``/``nn.LSTM``/``nn.GRU`` run over the padded batch,
    which is many times faster on CPU than a packed sequence (``benchmarks/recurrent_encoder.py``).
    Padding is always after an example's last real frame, so the forward direction reaches every real
    frame before any padded one; the backward direction runs forward over each example reversed within
    its ``lengths`` (:func:`reverse_within_lengths`) and is reversed back, so it starts at the last real
    frame. The outputs at real frames are therefore those of a packed sequence (tested against
    ``pack_padded_sequence`` through ``nn.LSTM``); the outputs at padded frames are zero. The layers are
    created in ``nn.LSTM``'s parameter order, so a seeded encoder starts from the weights a seeded
    ``nn.LSTM(..., bidirectional=True)`` of the same shape would.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        input_size: features per frame.
        hidden_size: hidden units per direction.
        num_layers: stacked recurrent layers.
        bidirectional: also run each layer backwards in time.
        dropout: dropout probability between recurrent layers (unused with one layer).

    Raises:
        ValueError: for a setting that cannot work, naming the ``model.<key>``.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"model.cell must be one of {sorted(CELLS)}, got {cell!r}")
        positive_int("model.hidden_size", hidden_size, 64)
        positive_int("model.num_layers", num_layers, 2)
        probability("model.dropout", dropout, 0.1)
        flag("model.bidirectional", bidirectional)
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        self.layers = nn.ModuleList(
            nn.ModuleList(
                CELLS[cell](
                    input_size if layer == 0 else hidden_size * directions, hidden_size, batch_first=True
                )
                for _ in range(directions)
            )
            for layer in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

    @property
    def output_size(self) -> int:
        """Features per output frame: ``hidden_size`` times the number of directions."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def forward(self, sequence: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Run the recurrent layers.

        Args:
            sequence: ``(batch, frames, input_size)``, padded after each example's last real frame.
            lengths: ``(batch,)`` real frame counts, or ``None`` when every frame is real.

        Returns:
            ``(batch, frames, output_size)``, zero at padded frames.
        """
        # Contiguous, so that the kernels run (and what the aten counter sees of them) are those that
        # count_macs measures on a fresh contiguous input.
        outputs = sequence.contiguous()
        for layer, directions in enumerate(self.layers):
            if layer > 0:
                outputs = self.dropout(outputs)
            halves = [directions[0](outputs)[0]]
            if self.bidirectional:
                backward = directions[1](reverse_within_lengths(outputs, lengths))[0]
                halves.append(reverse_within_lengths(backward, lengths))
            outputs = torch.cat(halves, dim=-1)
        if lengths is None:
            return outputs
        return outputs * frame_mask(lengths.to(outputs.device), outputs.shape[1]).unsqueeze(-1)

    def exact_macs(self, input_shape: tuple[int, ...]) -> int:
        """Exact MACs of the recurrent layers for one example of ``input_shape = (frames, input_size)``.

        Per frame, direction and layer with ``g`` gates (``GATES``), hidden size ``H`` and layer input size
        ``I`` (``input_size`` for the first layer, ``H`` times the directions above it): the input
        projection ``g*H*I`` plus the recurrent projection ``g*H*H``, and, as ``count_macs`` counts a
        ``Linear`` bias, one MAC per element of each bias, ``g*H`` for ``bias_ih`` and ``g*H`` for
        ``bias_hh``. Gate nonlinearities and element-wise products are not counted, like activations
        elsewhere.
        """
        frames = input_shape[0]
        gates, hidden = GATES[self.cell], self.hidden_size
        directions = 2 if self.bidirectional else 1
        total, layer_input = 0, self.input_size
        for _ in range(self.num_layers):
            per_frame = gates * hidden * (layer_input + hidden) + 2 * gates * hidden
            total += per_frame * frames * directions
            layer_input = hidden * directions
        return total


class RecurrentEncoder(Encoder):
    """The recurrent encoder of ``model=rnn|lstm|bilstm|gru``: input BatchNorm, then recurrent layers.

    ``(batch, in_features, frames) -> (batch, frames, hidden_size * directions)``:
    ``BatchNorm1d(in_features)`` over the features (optional), transpose to ``(batch, frames, in_features)``,
    and
    :class:`RecurrentLayers` of ``num_layers`` ``cell`` layers with dropout between them. Every frame is
    kept (``lengths' = lengths``).

    With ``lengths`` the padded frames of each example never reach the outputs at its real frames, and the
    outputs at padded frames are zero, so an example's outputs do not depend on how far it was padded (in
    eval mode; in training mode the input BatchNorm's batch statistics include the padded frames).

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        hidden_size: hidden units per direction.
        num_layers: stacked recurrent layers.
        bidirectional: also run each layer backwards in time; doubles ``out_features``.
        dropout: dropout probability between recurrent layers.
        input_batchnorm: normalise each input feature with ``BatchNorm1d`` before the first layer.

    Raises:
        ValueError: for a setting that cannot work, naming the ``model.<key>``.
    """

    def __init__(
        self,
        in_features: int,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 2,
        bidirectional: bool = False,
        dropout: float = 0.1,
        input_batchnorm: bool = True,
    ) -> None:
        super().__init__()
        self.input_norm = (
            nn.BatchNorm1d(in_features) if flag("model.input_batchnorm", input_batchnorm) else nn.Identity()
        )
        self.layers = RecurrentLayers(cell, in_features, hidden_size, num_layers, bidirectional, dropout)
        self.out_features = self.layers.output_size
        self.bidirectional = bidirectional

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, in_features, frames), (batch,) -> (batch, frames, out_features), (batch,)``; zero at
        padded frames."""
        batch, _, frames = features.shape
        if lengths is None:
            lengths = full_lengths(batch, frames, features.device)
        check_lengths(lengths, batch, frames)
        sequence = self.input_norm(features).transpose(1, 2)
        return self.layers(sequence, lengths), lengths
