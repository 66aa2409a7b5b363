"""Length arithmetic of padded batches, shared by frontends, encoders, heads and tasks.

A padded batch is ``(batch, ..., frames)`` (or ``(batch, frames, ...)``) with a ``(batch,)`` int64 tensor of
real frame counts; padding always comes after an example's last real frame.
"""

from __future__ import annotations

import torch


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``(batch,)`` frame counts -> ``(batch, frames)`` bool mask, true on real frames."""
    return torch.arange(frames, device=lengths.device) < lengths.unsqueeze(1)


def full_lengths(batch: int, frames: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(batch,)`` int64 lengths saying that all ``frames`` frames of every example are real."""
    return torch.full((batch,), frames, dtype=torch.int64, device=device)


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
