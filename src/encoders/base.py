"""The encoder contract: ``(features (batch, in_features, frames), lengths (batch,)) -> (sequence (batch,
frames', out_features), lengths' (batch,))``.

An encoder turns a frontend's features into a sequence of vectors and knows nothing of the task: the
heads that pool, classify per frame or embed, and the losses, belong to the task (as SpeechBrain keeps
``embedding_model`` and ``classifier`` apart). Every encoder is built as
``Encoder(in_features=frontend.out_features, **its config)``.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from src.utils.config_values import positive_int


class Encoder(nn.Module):
    """Base of every encoder (``model=`` config group).

    Attributes:
        out_features: features per output frame (``dim`` of the sequence).
        bidirectional: the output frames are ``[forward half, backward half]`` of a bidirectional
            recurrence, each half having seen the sequence from one end (``"last"`` pooling uses this).
        keeps_time: every output frame stands for an input frame at a fixed stride, so a per-frame head
            (CTC) can read it; false for an encoder that collapses a fixed number of frames into one
            vector (``model=linear``).
    """

    out_features: int
    bidirectional: bool = False
    keeps_time: bool = True

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Encode a padded batch.

        Args:
            features: ``(batch, in_features, frames)``, padded after each example's last real frame.
            lengths: ``(batch,)`` int64 real frame counts in ``[1, frames]``; ``None``: every frame is
                real.

        Returns:
            ``sequence (batch, frames', out_features)`` and ``lengths' (batch,)``: the output frames that
            heads and losses must read. An encoder that ignores padding says so in its docstring and
            reports every output frame as real.
        """
        raise NotImplementedError

    def check_input_frames(self, num_frames: int) -> None:
        """Refuse examples of ``num_frames`` frames that this encoder cannot read (e.g. another length than
        an encoder of a fixed input size was built for). Default: any ``num_frames >= 1``.

        Raises:
            ValueError: naming the ``model.<key>`` that fixes the length, or the example length.
        """
        if num_frames < 1:
            raise ValueError(
                f"examples of {num_frames} frames leave {type(self).__name__} nothing to read: lengthen "
                "data.clip_seconds"
            )


class FixedFramesEncoder(Encoder):
    """Base of the encoders that read a whole ``(in_features, num_frames)`` map of one fixed size
    (``model=linear``, ``mlp``, ``cnn2d``): their weights are sized for ``num_frames`` frames, which the task
    sets from the frontend's frame count for the data's example length. They collapse time
    (``keeps_time = False``), so they cannot feed a per-frame (CTC) head, and they do not mask padding.

    Args:
        in_features: features per frame delivered by the frontend (set by the task).
        num_frames: frames per example (set by the task).

    Raises:
        ValueError: when ``num_frames`` is missing or below 1 (``model.num_frames``).
    """

    MODEL: ClassVar[str]
    """The ``model=`` choice, for messages."""
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

    def check_input_frames(self, num_frames: int) -> None:
        """Refuse any other frame count than ``num_frames``, the one the weights were sized for.

        Raises:
            ValueError: when ``num_frames != self.num_frames``.
        """
        if num_frames != self.num_frames:
            raise ValueError(
                f"model={self.MODEL} reads exactly model.num_frames={self.num_frames} frames per example "
                f"(its weights are sized for them), but the examples give {num_frames} frames"
            )

    def check_features(self, features: Tensor) -> None:
        """Refuse features of another shape than ``(batch, in_features, num_frames)``.

        Raises:
            ValueError: naming the expected shape.
        """
        expected = (self.in_features, self.num_frames)
        if features.dim() != 3 or tuple(features.shape[1:]) != expected:
            raise ValueError(
                f"model={self.MODEL} expects features of shape (batch, {expected[0]}, {expected[1]}) "
                f"(in_features={expected[0]}, model.num_frames={expected[1]}), got {tuple(features.shape)}"
            )


def dense_layers(in_features: int, widths: list[int], dropout: float) -> nn.Sequential:
    """``Linear -> ReLU -> Dropout`` for each width of ``widths``, the first reading ``in_features``:
    ``(batch, in_features) -> (batch, widths[-1])`` (the fully connected part of ``model=mlp`` and
    ``model=cnn2d``)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), nn.ReLU(), nn.Dropout(dropout)]
        in_features = width
    return nn.Sequential(*layers)
