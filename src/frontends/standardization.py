"""Per-feature standardisation with statistics measured once, on the training split."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from src.utils.lengths import frame_mask


class FeatureStandardizer(nn.Module):
    """``(batch, features, frames) -> (feature - mean) / std`` per feature, with ``mean`` and ``std``
    ``(features,)`` buffers set by :meth:`fit` over the real frames of the training split.

    The statistics are buffers, so a checkpoint carries them and validation, test and inference apply
    exactly what training measured. Before :meth:`fit` the module refuses to run rather than silently
    passing features through.

    Args:
        num_features: Features per frame (the frontend's ``out_features``).
        min_std: Floor on ``std``, so a constant feature is centred rather than divided by zero.
    """

    def __init__(self, num_features: int, min_std: float = 1e-5) -> None:
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.register_buffer("frames_seen", torch.zeros((), dtype=torch.int64))

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has set the statistics (also true after loading a fitted checkpoint)."""
        return bool(self.frames_seen > 0)

    @torch.no_grad()
    def fit(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Set ``mean`` and ``std`` from ``(features (batch, features, frames), frame_lengths (batch,))``
        batches, counting only each example's first ``frame_lengths[i]`` frames (in float64)."""
        total = torch.zeros_like(self.mean, dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        count = 0
        for features, lengths in batches:
            mask = frame_mask(lengths, features.shape[-1]).unsqueeze(1)
            values = features.double() * mask
            total += values.sum(dim=(0, 2))
            total_sq += (values * values).sum(dim=(0, 2))
            count += int(lengths.sum())
        if count == 0:
            raise ValueError("Cannot standardise features: the training split gave no frames")
        mean = total / count
        variance = (total_sq / count - mean * mean).clamp_min(0.0)
        self.mean.copy_(mean)
        self.std.copy_(variance.sqrt().clamp_min(self.min_std))
        self.frames_seen.fill_(count)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(batch, features, frames)`` -> standardised ``(batch, features, frames)``."""
        if not self.fitted:
            raise RuntimeError(
                "FeatureStandardizer has no statistics yet: they are measured on the training split when "
                "fitting starts (Trainer.fit), or loaded from a checkpoint"
            )
        return (features - self.mean[:, None]) / self.std[:, None]
