"""The encoder contract: ``(features (batch, in_features, frames), lengths (batch,)) -> (sequence (batch,
frames', out_features), lengths' (batch,))``.

An encoder turns a frontend's features into a sequence of vectors and knows nothing of the task: the
heads that pool, classify per frame or embed, and the losses, belong to the task (as SpeechBrain keeps
``embedding_model`` and ``classifier`` apart). Every encoder is built as
``Encoder(in_features=frontend.out_features, **its config)``.
"""

from __future__ import annotations

from torch import Tensor, nn


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
