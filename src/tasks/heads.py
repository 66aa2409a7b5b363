"""Heads: what a task puts on an encoder's ``(sequence (batch, frames, features), lengths)``.

- :class:`ClipClassifierHead`: pooling over real frames, dropout, a linear classifier (keyword spotting).
- :class:`FrameClassifierHead`: dropout and a linear classifier on every frame (CTC phone recognition).
- :class:`EmbeddingHead`: pooling, a projection and L2 normalisation (speaker embeddings compared by
  cosine similarity).
- :class:`MaskHead`: a bounded gain per frame and frequency bin (spectral masks for denoising).

A head is configured in ``task.head`` with ``_partial_: true``; the task completes it with the encoder's
``out_features`` (and ``bidirectional``) and the data's label count.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from src.utils.config_values import positive_number
from src.utils.lengths import frame_mask, full_lengths

POOLINGS = ("last", "mean", "attention")
"""Ways to reduce ``(batch, frames, features)`` to ``(batch, features)``."""


class SequencePooling(nn.Module):
    """Reduce a frame sequence to one vector, over real frames only.

    ``(batch, frames, features), (batch,) -> (batch, features)``.

    - ``"last"``: the output at the last real frame; for a bidirectional encoder, the forward half at the
      last real frame and the backward half at the first frame, where each direction has seen every frame.
    - ``"mean"``: the mean over real frames (a plain mean when every frame is real).
    - ``"attention"``: a learned ``Linear(features, 1)`` scores each frame, a softmax over the real frames
      turns the scores into weights, and the result is the weighted sum of the frames.

    Args:
        pooling: ``"last"``, ``"mean"`` or ``"attention"``.
        features: features per frame.
        bidirectional: the frames are ``[forward half, backward half]`` of a bidirectional encoder
            (only ``"last"`` uses this).

    Raises:
        ValueError: for another ``pooling`` (``task.head.pooling``).
    """

    def __init__(self, pooling: str, features: int, bidirectional: bool = False) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"task.head.pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        self.pooling = pooling
        self.bidirectional = bidirectional
        self.score = nn.Linear(features, 1) if pooling == "attention" else None

    def forward(self, outputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, frames, features), (batch,) -> (batch, features)``; ``lengths=None``: every frame is
        real."""
        frames = outputs.shape[1]
        lengths = full_lengths(outputs.shape[0], frames) if lengths is None else lengths
        lengths = lengths.to(outputs.device)
        if self.pooling == "mean":
            if bool((lengths == frames).all()):
                return outputs.mean(dim=1)
            mask = frame_mask(lengths, frames).unsqueeze(-1)
            return (outputs * mask).sum(dim=1) / lengths.unsqueeze(-1).to(outputs.dtype)
        if self.pooling == "attention":
            scores = self.score(outputs).squeeze(-1)
            scores = scores.masked_fill(~frame_mask(lengths, frames), float("-inf"))
            weights = scores.softmax(dim=1)
            return (weights.unsqueeze(1) @ outputs).squeeze(1)
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
        last = outputs.gather(1, index).squeeze(1)
        if self.bidirectional:
            half = outputs.shape[-1] // 2
            last = torch.cat([last[:, :half], outputs[:, 0, half:]], dim=-1)
        return last


def _check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"task.head.dropout must be in [0, 1), got {dropout}")


class ClipClassifierHead(nn.Module):
    """``(batch, frames, in_features), (batch,) -> (batch, num_classes)`` logits: :class:`SequencePooling`,
    dropout, ``Linear(in_features, num_classes)``.

    Args:
        in_features: the encoder's ``out_features`` (set by the task).
        num_classes: output classes (set by the task).
        bidirectional: the encoder's ``bidirectional`` (set by the task; ``"last"`` pooling uses it).
        pooling: ``"last"``, ``"mean"`` or ``"attention"``.
        dropout: dropout probability before the classifier.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        bidirectional: bool = False,
        pooling: str = "mean",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        self.pooling = SequencePooling(pooling, in_features, bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_features, num_classes)

    def forward(self, sequence: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, frames, in_features), (batch,) -> (batch, num_classes)``."""
        return self.classifier(self.dropout(self.pooling(sequence, lengths)))


class FrameClassifierHead(nn.Module):
    """``(batch, frames, in_features) -> (batch, frames, num_outputs)`` logits: dropout and
    ``Linear(in_features, num_outputs)`` on every frame (outputs at padded frames are not meaningful).

    Args:
        in_features: the encoder's ``out_features`` (set by the task).
        num_outputs: outputs per frame, e.g. phones + CTC blank (set by the task).
        bidirectional: unused (every head is completed with it).
        dropout: dropout probability before the classifier.
    """

    def __init__(
        self, in_features: int, num_outputs: int, bidirectional: bool = False, dropout: float = 0.2
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_features, num_outputs)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, in_features) -> (batch, frames, num_outputs)``."""
        return self.classifier(self.dropout(sequence))


class EmbeddingHead(nn.Module):
    """``(batch, frames, in_features), (batch,) -> (batch, embedding_dim)`` unit-norm embeddings:
    :class:`SequencePooling`, then ``Linear -> ReLU`` for each width of ``hidden``, a final
    ``Linear(.., embedding_dim)`` and L2 normalisation, so that the dot product of two embeddings is their
    cosine similarity (the Siamese speaker encoder of the "Deep Learning Systems" assignment: GRU outputs
    -> 512 -> 256).

    Args:
        in_features: the encoder's ``out_features`` (set by the task).
        bidirectional: the encoder's ``bidirectional`` (set by the task).
        embedding_dim: size of the embedding.
        hidden: widths of the hidden layers between pooling and the embedding.
        pooling: ``"last"``, ``"mean"`` or ``"attention"``.

    Raises:
        ValueError: for a width below 1 (``task.head.embedding_dim`` or ``task.head.hidden``).
    """

    def __init__(
        self,
        in_features: int,
        bidirectional: bool = False,
        embedding_dim: int = 256,
        hidden: Sequence[int] = (512,),
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        widths = [*hidden, embedding_dim]
        if min(widths) < 1:
            raise ValueError(f"task.head.hidden and task.head.embedding_dim must be >= 1, got {widths}")
        self.embedding_dim = embedding_dim
        self.pooling = SequencePooling(pooling, in_features, bidirectional)
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU()]
            in_features = width
        layers.append(nn.Linear(in_features, embedding_dim))
        self.projection = nn.Sequential(*layers)

    def forward(self, sequence: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, frames, in_features), (batch,) -> (batch, embedding_dim)``, each row of unit norm."""
        return F.normalize(self.projection(self.pooling(sequence, lengths)), dim=-1)


class MaskHead(nn.Module):
    """``(batch, frames, in_features) -> (batch, num_bins, frames)`` masks in ``(0, max_gain)``:
    ``max_gain * sigmoid(Linear(in_features, num_bins))`` on every frame, laid out as the STFT it
    multiplies. A bounded mask cannot amplify noise without limit; ``max_gain = 1`` is the ideal ratio
    mask's range (Wang et al., 2014, "On training targets for supervised speech separation").

    Args:
        in_features: the encoder's ``out_features`` (set by the task).
        num_bins: frequency bins of the STFT (set by the task).
        bidirectional: unused (every head is completed with it).
        max_gain: the mask's upper bound.

    Raises:
        ValueError: for a ``max_gain`` that is not positive (``task.head.max_gain``).
    """

    def __init__(
        self, in_features: int, num_bins: int, bidirectional: bool = False, max_gain: float = 1.0
    ) -> None:
        super().__init__()
        self.max_gain = positive_number("task.head.max_gain", max_gain, 1.0)
        self.projection = nn.Linear(in_features, num_bins)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, in_features) -> (batch, num_bins, frames)``."""
        return self.max_gain * torch.sigmoid(self.projection(sequence)).transpose(1, 2)
