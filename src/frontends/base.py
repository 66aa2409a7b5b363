"""The frontend contract: ``(waveform (batch, time), lengths (batch,)) -> (features (batch, feature,
frames), lengths (batch,))``.

Everything between the waveform and the encoder's input belongs to a frontend, and its length
arithmetic too, so nothing downstream recomputes frame counts (as NeMo's ``AudioPreprocessor``:
``forward(input_signal, length) -> (processed_signal, processed_length)``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from src.utils.lengths import full_lengths


class Frontend(nn.Module):
    """Base of every frontend (``frontend=`` config group).

    Subclasses set ``out_features`` (features per frame) and implement :meth:`features` and
    :meth:`num_frames`; :meth:`forward` joins them. The optional capabilities below have working defaults
    (nothing to constrain, no uncounted MACs, no trainable filters), so callers never ask what a frontend
    can do.
    """

    out_features: int

    def features(self, waveforms: Tensor) -> Tensor:
        """``(batch, time)`` waveforms -> ``(batch, out_features, frames)`` features."""
        raise NotImplementedError

    def num_frames(self, num_samples: int | Tensor) -> int | Tensor:
        """Frames produced for ``num_samples`` samples: an int, or elementwise for an integer tensor."""
        raise NotImplementedError

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Features of a zero-padded batch and each example's real frame count.

        Args:
            waveforms: ``(batch, time)``, zero-padded after each example's ``lengths`` samples.
            lengths: ``(batch,)`` real samples per example; ``None``: all ``time`` samples are real.

        Returns:
            ``features (batch, out_features, frames)`` and ``(batch,)`` int64 frame counts
            ``num_frames(lengths)``, clamped to ``[1, frames]``.
        """
        features = self.features(waveforms)
        frames = features.shape[-1]
        if lengths is None:
            return features, full_lengths(features.shape[0], frames, features.device)
        frame_lengths = self.num_frames(lengths.to(features.device).long())
        return features, torch.as_tensor(frame_lengths).clamp(1, frames)

    def check_input_samples(self, num_samples: int) -> None:
        """Refuse examples of ``num_samples`` samples that this frontend cannot turn into features.

        Called before training and testing with the data's example length (``datamodule.example_samples``).
        Default: at least one frame (``num_frames(num_samples) >= 1``); subclasses that pad or window the
        waveform refuse what their padding cannot take and say which length works.

        Raises:
            ValueError: naming ``data.clip_seconds`` (the example length).
        """
        if self.num_frames(num_samples) < 1:
            raise ValueError(
                f"examples of {num_samples} samples give no frame of {type(self).__name__}: lengthen "
                "data.clip_seconds"
            )

    def constrain_(self) -> None:
        """Project trainable parameters back onto their allowed set; called after every optimiser step.

        Default: nothing to constrain."""

    def analytic_macs(self, num_samples: int) -> int:
        """MACs for one clip of ``num_samples`` samples that ptflops' ``aten`` backend does not see
        (e.g. ``torch.stft``); added to its count by the task. Default: 0."""
        return 0

    def trainable_filters(self) -> tuple[Tensor, Tensor] | None:
        """For figures of a frontend whose filters can be trained: its mel filters ``(n_freqs, n_mels)``
        and STFT kernels (real parts, ``(n_freqs, n_fft)``). Default: ``None`` (no such filters)."""
        return None

    def filter_distance(self) -> dict[str, float]:
        """How far each trainable part moved from its initialisation (``part -> relative distance``).
        Default: empty."""
        return {}

    def setting_name(self) -> str | None:
        """A short name of this configuration that sweeps report (e.g. the trainable-frontend study's
        setting letter). Default: ``None``."""
        return None
