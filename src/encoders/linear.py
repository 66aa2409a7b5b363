"""The study's simplest model, as an encoder: the whole log-mel map flattened into one vector
(``model=linear``); with the task's clip head it is one linear layer over the flattened map."""

from __future__ import annotations

import torch

from src.encoders.base import FixedFramesEncoder
from src.utils.lengths import full_lengths


class FlattenFrames(FixedFramesEncoder):
    """Flatten ``(in_features, num_frames)`` into one frame: ``(batch, in_features, num_frames) -> (batch, 1,
    in_features * num_frames)``.

    The encoder has no parameters; the clip head's ``Linear(in_features * num_frames, num_classes)`` is
    the study's linear classifier. It sees a fixed number of frames, so every input must have exactly
    ``num_frames`` frames; the task sets it from the frontend's frame count for the data's example length.
    It collapses time (``keeps_time = False``), so it cannot feed a per-frame (CTC) head.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_frames: frames per example (set by the task from the frontend and the example length).

    Raises:
        ValueError: when ``num_frames`` is missing or below 1 (``model.num_frames``).
    """

    MODEL = "linear"

    def __init__(self, in_features: int, num_frames: int | None) -> None:
        super().__init__(in_features, num_frames)
        self.out_features = in_features * num_frames

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, in_features, num_frames) -> (batch, 1, in_features * num_frames)`` and ones."""
        self.check_features(features)
        return features.flatten(1).unsqueeze(1), full_lengths(features.shape[0], 1, features.device)
