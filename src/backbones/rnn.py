"""Recurrent keyword classifiers over the frame sequence, and the recurrent and pooling parts they share.

:class:`RecurrentEncoder` (a stack of ``nn.RNN``/``nn.LSTM``/``nn.GRU`` layers whose outputs ignore padded
frames) and :class:`SequencePooling` (last, mean or attention pooling over real frames) are also the back end
of :class:`src.backbones.crnn.CRNN`.

MACs: ptflops' ``aten`` backend sees the recurrent layers only partly, and how much depends on the CPU
kernel: the oneDNN LSTM kernel (``aten.mkldnn_rnn_layer``) is invisible, while GRU and RNN decompose into
``addmm``/``mm`` calls whose input-projection bias is seen or not depending on the input's memory layout.
The recurrent layers are therefore counted exactly by :meth:`RecurrentEncoder.recurrent_macs`, and each
classifier's ``analytic_macs`` adds the part of that count the ``aten`` backend did not see (see
:meth:`RecurrentEncoder.uncounted_macs`), so that :func:`src.utils.complexity.count_macs` neither misses
nor double-counts them.
"""

from __future__ import annotations

import torch
from torch import nn

from src.utils.complexity import count_macs

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
"""Recurrent layer of each ``cell`` choice (``rnn`` is the tanh Elman RNN)."""

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
"""Gate pre-activations per hidden unit of each cell: the row blocks of ``weight_ih`` and ``weight_hh``."""

POOLINGS = ("last", "mean", "attention")
"""Ways to reduce ``(batch, frames, features)`` to ``(batch, features)``."""


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``(batch,)`` frame counts -> ``(batch, frames)`` bool mask, true on real frames."""
    return torch.arange(frames, device=lengths.device) < lengths.unsqueeze(1)


def check_lengths(lengths: torch.Tensor, batch: int, frames: int) -> None:
    """Raise ``ValueError`` unless ``lengths`` is ``(batch,)`` integers in ``[1, frames]``."""
    if lengths.shape != (batch,) or lengths.is_floating_point() or lengths.is_complex():
        raise ValueError(
            f"lengths must be an integer tensor of shape ({batch},) (one frame count per example), got "
            f"{lengths.dtype} of shape {tuple(lengths.shape)}"
        )
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > frames):
        raise ValueError(
            f"lengths must lie in [1, {frames}] (the padded frame count), got {lengths.tolist()}"
        )


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


class RecurrentEncoder(nn.Module):
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
        if hidden_size < 1:
            raise ValueError(f"model.hidden_size must be >= 1, got {hidden_size}")
        if num_layers < 1:
            raise ValueError(f"model.num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout}")
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
        # uncounted_macs measures on a fresh contiguous input.
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

    def recurrent_macs(self, frames: int) -> int:
        """Exact MACs of the recurrent layers for one example of ``frames`` frames.

        Per frame, direction and layer with ``g`` gates (``GATES``), hidden size ``H`` and layer input size
        ``I`` (``input_size`` for the first layer, ``H`` times the directions above it): the input
        projection ``g*H*I`` plus the recurrent projection ``g*H*H``, and, as ``count_macs`` counts a
        ``Linear`` bias, one MAC per element of each bias, ``g*H`` for ``bias_ih`` and ``g*H`` for
        ``bias_hh``. Gate nonlinearities and element-wise products are not counted, like activations
        elsewhere.
        """
        gates, hidden = GATES[self.cell], self.hidden_size
        directions = 2 if self.bidirectional else 1
        total, layer_input = 0, self.input_size
        for _ in range(self.num_layers):
            per_frame = gates * hidden * (layer_input + hidden) + 2 * gates * hidden
            total += per_frame * frames * directions
            layer_input = hidden * directions
        return total

    def uncounted_macs(self, frames: int) -> int:
        """The part of :meth:`recurrent_macs` that ptflops' ``aten`` backend does not see.

        ``count_macs`` runs the model once under the ``aten`` counter, which sees some of the recurrent
        layers' matrix products (GRU, RNN) or none (oneDNN LSTM). Measuring the encoder alone on the same
        contiguous single-example input, with the same counter, gives what it saw; the rest is returned
        here for the owner's ``analytic_macs``.
        """
        return self.recurrent_macs(frames) - count_macs(self, (frames, self.input_size))


class SequencePooling(nn.Module):
    """Reduce a frame sequence to one vector, over real frames only.

    ``(batch, frames, features) -> (batch, features)``.

    - ``"last"``: the output at the last real frame; for a bidirectional encoder, the forward half at the
      last real frame and the backward half at the first frame, where each direction has seen every frame.
    - ``"mean"``: the mean over real frames.
    - ``"attention"``: a learned ``Linear(features, 1)`` scores each frame, a softmax over the real frames
      turns the scores into weights, and the result is the weighted sum of the frames.

    Args:
        pooling: ``"last"``, ``"mean"`` or ``"attention"``.
        features: features per frame.
        bidirectional: the frames are ``[forward half, backward half]`` of a bidirectional encoder
            (only ``"last"`` uses this).
    """

    def __init__(self, pooling: str, features: int, bidirectional: bool = False) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"model.pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        self.pooling = pooling
        self.bidirectional = bidirectional
        self.score = nn.Linear(features, 1) if pooling == "attention" else None

    def forward(self, outputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, frames, features) -> (batch, features)``; ``lengths`` ``(batch,)`` or ``None``."""
        if lengths is not None:
            lengths = lengths.to(outputs.device)
        if self.pooling == "mean":
            if lengths is None:
                return outputs.mean(dim=1)
            mask = frame_mask(lengths, outputs.shape[1]).unsqueeze(-1)
            return (outputs * mask).sum(dim=1) / lengths.unsqueeze(-1).to(outputs.dtype)
        if self.pooling == "attention":
            scores = self.score(outputs).squeeze(-1)
            if lengths is not None:
                scores = scores.masked_fill(~frame_mask(lengths, outputs.shape[1]), float("-inf"))
            weights = scores.softmax(dim=1)
            return (weights.unsqueeze(1) @ outputs).squeeze(1)
        if lengths is None:
            last = outputs[:, -1]
        else:
            index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
            last = outputs.gather(1, index).squeeze(1)
        if self.bidirectional:
            half = outputs.shape[-1] // 2
            last = torch.cat([last[:, :half], outputs[:, 0, half:]], dim=-1)
        return last


class RecurrentClassifier(nn.Module):
    """A recurrent keyword classifier: input BatchNorm, recurrent layers, pooling over frames, linear.

    ``(batch, in_features, frames) -> (batch, num_classes)``. Layout: ``BatchNorm1d(in_features)`` over
    the features (optional), transpose to ``(batch, frames, in_features)``, a :class:`RecurrentEncoder`
    of ``num_layers`` ``cell`` layers (dropout between them), :class:`SequencePooling`, dropout and
    ``Linear(hidden_size * directions, num_classes)``.

    With ``lengths`` the padded frames of each example are ignored: the recurrence never carries them
    into a real frame's output (:class:`RecurrentEncoder`) and the pooling leaves them out, so an
    example's logits do not depend on how it was padded (in eval mode; in training mode the input
    BatchNorm's batch statistics include the padded frames).

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_classes: number of output classes (set by the task).
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        hidden_size: hidden units per direction.
        num_layers: stacked recurrent layers.
        bidirectional: also run each layer backwards in time; doubles the pooled width.
        dropout: dropout probability between recurrent layers and before the classifier.
        input_batchnorm: normalise each input feature with ``BatchNorm1d`` before the first layer.
        pooling: ``"last"``, ``"mean"`` or ``"attention"`` (see :class:`SequencePooling`).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 2,
        bidirectional: bool = False,
        dropout: float = 0.1,
        input_batchnorm: bool = True,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm1d(in_features) if input_batchnorm else nn.Identity()
        self.encoder = RecurrentEncoder(cell, in_features, hidden_size, num_layers, bidirectional, dropout)
        self.pooling = SequencePooling(pooling, self.encoder.output_size, bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.encoder.output_size, num_classes)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Classify a batch of feature sequences.

        Args:
            features: ``(batch, in_features, frames)``, padded after each example's last real frame.
            lengths: ``(batch,)`` real frame counts, or ``None`` when every frame is real.

        Returns:
            Logits ``(batch, num_classes)``.
        """
        if lengths is not None:
            check_lengths(lengths, features.shape[0], features.shape[-1])
        sequence = self.input_norm(features).transpose(1, 2)
        pooled = self.pooling(self.encoder(sequence, lengths), lengths)
        return self.classifier(self.dropout(pooled))

    def analytic_macs(self, in_features: int, frames: int) -> int:
        """MACs of the recurrent layers that ptflops' ``aten`` backend misses, for ``count_macs``."""
        return self.encoder.uncounted_macs(frames)
