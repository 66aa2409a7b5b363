"""Whether CTC can align an utterance at all: the frames the encoder emits for it against the frames its
labels need.

A CTC alignment emits every label on at least one frame and puts a blank between two equal adjacent
labels, so a target of ``n`` labels with ``r`` adjacent repeats needs ``n + r`` output frames. With fewer,
the loss is infinite; ``torch.nn.CTCLoss(zero_infinity=True)`` counts it as zero instead, so such an
utterance silently teaches nothing. The frame counts come from the contracts alone: the frontend's
``num_frames`` (samples -> frames) and the lengths the encoder reports for an input of that many frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn.utils.rnn import pad_sequence


def required_frames(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Fewest output frames a CTC alignment of each target needs: its length plus its adjacent repeats.

    Args:
        targets: ``(batch, max_labels)`` label indices, zero-padded after each target's length.
        target_lengths: ``(batch,)`` int64 labels per target.

    Returns:
        ``(batch,)`` int64, ``target_lengths + (number of i < length with targets[i] == targets[i - 1])``.
    """
    lengths = target_lengths.to(targets.device)
    repeated = targets[:, 1:] == targets[:, :-1]
    inside = torch.arange(1, targets.shape[1], device=targets.device) < lengths.unsqueeze(1)
    return lengths + (repeated & inside).sum(dim=1)


class EncoderOutputLength:
    """The output length ``encoder`` reports for one input of ``frames`` frames, remembered per length.

    Each new length runs the encoder once on zeros ``(1, in_features, frames)`` in eval mode without
    gradients (no dropout, no BatchNorm statistics updated, no random numbers drawn), so it applies
    whatever the encoder does to lengths (strides, pooling, nothing) without knowing its type.
    """

    def __init__(self, encoder: nn.Module, in_features: int, device: torch.device | str) -> None:
        self.encoder = encoder
        self.in_features = in_features
        self.device = device
        self.known: dict[int, int] = {}

    def __call__(self, frames: int) -> int:
        if frames not in self.known:
            was_training = self.encoder.training
            self.encoder.eval()
            with torch.no_grad():
                features = torch.zeros(1, self.in_features, frames, device=self.device)
                _, lengths = self.encoder(features, torch.tensor([frames], device=self.device))
            self.encoder.train(was_training)
            self.known[frames] = int(lengths[0])
        return self.known[frames]


def feasible(
    output_length: Callable[[int], int], frame_lengths: torch.Tensor, required: torch.Tensor
) -> torch.Tensor:
    """Which utterances have at least as many encoder output frames as their labels need.

    Assumes more input frames never give fewer output frames (true of striding, pooling and of encoders
    that keep every frame), so ``output_length`` is evaluated only where the bounds from the distinct
    lengths around an utterance leave its answer open: bisection over the sorted distinct lengths, a few
    encoder runs when every utterance fits by far (or none does).

    Args:
        output_length: input frames -> output frames of the encoder (:class:`EncoderOutputLength`).
        frame_lengths: ``(utterances,)`` int64 input frames of each utterance (at least 1).
        required: ``(utterances,)`` int64 output frames each one needs (:func:`required_frames`).

    Returns:
        ``(utterances,)`` bool, true where CTC can align the utterance.
    """
    values, position = torch.unique(frame_lengths.cpu(), sorted=True, return_inverse=True)
    required = required.cpu()
    fits = torch.zeros(len(frame_lengths), dtype=torch.bool)
    ranges = [(0, len(values) - 1)] if len(values) else []
    while ranges:
        low, high = ranges.pop()
        fewest, most = output_length(int(values[low])), output_length(int(values[high]))
        inside = (position >= low) & (position <= high)
        fits |= inside & (required <= fewest)
        fits |= (position == high) & (required <= most)
        undecided = inside & (position > low) & (position < high) & (required > fewest) & (required <= most)
        if undecided.any():
            middle = (low + high) // 2
            ranges += [(low, middle), (middle, high)]
    return fits


@dataclass(frozen=True)
class SplitFeasibility:
    """CTC feasibility of every utterance of a split, in its ``files`` order."""

    split: str
    fits: torch.Tensor
    """``(utterances,)`` bool: CTC can align the utterance."""
    frames: torch.Tensor
    """``(utterances,)`` int64 frontend frames."""
    required: torch.Tensor
    """``(utterances,)`` int64 encoder output frames its labels need."""

    @property
    def infeasible(self) -> int:
        """Utterances CTC cannot align."""
        return int((~self.fits).sum())

    @property
    def fraction(self) -> float:
        """Fraction of the split's utterances CTC cannot align (0 for an empty split)."""
        return self.infeasible / len(self.fits) if len(self.fits) else 0.0


def split_feasibility(
    split: str,
    frontend: Any,
    output_length: Callable[[int], int],
    samples: torch.Tensor,
    targets: Sequence[torch.Tensor],
) -> SplitFeasibility:
    """:class:`SplitFeasibility` of utterances of ``samples`` samples and label sequences ``targets``
    through ``frontend`` (its ``num_frames``, at least one frame) and the encoder's ``output_length``."""
    frames = torch.as_tensor(frontend.num_frames(samples.long())).clamp(min=1)
    if targets:
        padded = pad_sequence(list(targets), batch_first=True)
        lengths = torch.tensor([len(t) for t in targets], dtype=torch.int64)
        required = required_frames(padded, lengths)
    else:
        required = torch.zeros(0, dtype=torch.int64)
    return SplitFeasibility(split, feasible(output_length, frames, required), frames, required)


def largest_fitting_hop(
    frontend: Mapping[str, Any],
    output_length: Callable[[int], int],
    samples: torch.Tensor,
    targets: Sequence[torch.Tensor],
) -> int | None:
    """The largest ``hop_length`` below the frontend config's own at which CTC can align every utterance
    (the frontend rebuilt from ``frontend`` with only that key changed; smaller hops give more frames).
    The global random state is left as it was.

    Returns ``None`` when the config has no integer ``hop_length`` or even a hop of one sample is not
    enough (then the encoder or the labels, not the frame rate, are the problem).
    """
    hop = frontend.get("hop_length")
    if not isinstance(hop, int) or isinstance(hop, bool) or hop <= 1:
        return None

    def fits_all(candidate: int) -> bool:
        with torch.random.fork_rng(devices=[]):  # a frontend may draw its initial filters
            rebuilt = instantiate({**frontend, "hop_length": candidate})
        return bool(split_feasibility("", rebuilt, output_length, samples, targets).fits.all())

    if not fits_all(1):
        return None
    low, high = 1, hop - 1  # fits_all(low) holds; find the largest such hop in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits_all(middle) else (low, middle - 1)
    return low
