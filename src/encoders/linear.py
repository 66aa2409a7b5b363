"""The study's simplest model, as an encoder: the whole log-mel map flattened into one vector
(``model=linear``); with the task's clip head it is one linear layer over the flattened map."""

from __future__ import annotations

import torch

from src.encoders.base import Encoder
from src.utils.config_values import positive_int
from src.utils.lengths import full_lengths


class FlattenFrames(Encoder):
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

    keeps_time = False

    def __init__(self, in_features: int, num_frames: int | None) -> None:
        super().__init__()
        if num_frames is None:
            raise ValueError(
                "model.num_frames is not set: the task sets it from the frontend and the clip length, "
                "or give it explicitly"
            )
        positive_int("model.num_frames", num_frames, 101)
        self.in_features = in_features
        self.num_frames = num_frames
        self.out_features = in_features * num_frames

    def check_input_frames(self, num_frames: int) -> None:
        """Refuse any other frame count than ``num_frames``, the one the clip head's weights were sized for.

        Raises:
            ValueError: when ``num_frames != self.num_frames``.
        """
        if num_frames != self.num_frames:
            raise ValueError(
                f"model=linear reads exactly model.num_frames={self.num_frames} frames per example (its "
                f"weights are sized for them), but the examples give {num_frames} frames"
            )

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, in_features, num_frames) -> (batch, 1, in_features * num_frames)`` and ones."""
        expected = (self.in_features, self.num_frames)
        if features.dim() != 3 or tuple(features.shape[1:]) != expected:
            raise ValueError(
                f"model=linear expects features of shape (batch, {expected[0]}, {expected[1]}) "
                f"(in_features={expected[0]}, model.num_frames={expected[1]}), got {tuple(features.shape)}"
            )
        return features.flatten(1).unsqueeze(1), full_lengths(features.shape[0], 1, features.device)
