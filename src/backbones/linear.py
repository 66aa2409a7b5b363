"""The study's simplest classifier: one linear layer over the whole flattened log-mel map."""

from __future__ import annotations

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """Flatten ``(in_features, num_frames)`` and apply one ``Linear(in_features * num_frames, num_classes)``.

    ``(batch, in_features, num_frames) -> (batch, num_classes)``. The model sees a fixed number of frames,
    so every input must have exactly ``num_frames`` frames; the task sets it from the frontend's frame
    count for the configured clip length.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_classes: number of output classes (set by the task).
        num_frames: frames per example (set by the task from the frontend and the clip length).
    """

    def __init__(self, in_features: int, num_classes: int, num_frames: int | None) -> None:
        super().__init__()
        if num_frames is None:
            raise ValueError(
                "model.num_frames is not set: the task sets it from the frontend and the clip length, "
                "or give it explicitly"
            )
        if num_frames < 1:
            raise ValueError(f"model.num_frames must be >= 1, got {num_frames}")
        self.in_features = in_features
        self.num_frames = num_frames
        self.classifier = nn.Linear(in_features * num_frames, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Classify a batch of feature maps.

        Args:
            features: ``(batch, in_features, num_frames)``.

        Returns:
            Logits ``(batch, num_classes)``.
        """
        expected = (self.in_features, self.num_frames)
        if features.dim() != 3 or tuple(features.shape[1:]) != expected:
            raise ValueError(
                f"LinearClassifier expects features of shape (batch, {expected[0]}, {expected[1]}) "
                f"(in_features={expected[0]}, model.num_frames={expected[1]}), got {tuple(features.shape)}"
            )
        return self.classifier(features.flatten(1))
