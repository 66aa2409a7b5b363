"""An invertible STFT analysis/synthesis pair (``frontend=stft``), for tasks that rebuild a waveform.

The features are the log magnitude of the STFT; :meth:`StftAnalysis.stft` and :meth:`StftAnalysis.istft`
are ``torch.stft`` / ``torch.istft`` with the same window, hop and centring, so ``istft(stft(x), len(x))``
returns ``x`` within float32 rounding for any window that satisfies the nonzero-overlap-add condition (the
periodic Hann window at a hop of at most ``n_fft / 2`` does). Spectral denoising (``data=denoising``)
masks the magnitude of :meth:`stft` and resynthesises with the noisy phase.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.frontends.base import Frontend
from src.utils.config_values import positive_int

WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}
"""Window functions by config name (periodic, as ``torch.stft`` expects)."""


class StftAnalysis(Frontend):
    """``(batch, time)`` waveforms -> ``(batch, n_fft // 2 + 1, frames)`` log magnitudes
    ``log(|STFT| + log_offset)``, with the exact inverse of the complex STFT.

    ``frames = 1 + time // hop_length`` (centred frames, reflect padding, as ``torchaudio``'s
    spectrograms).

    Args:
        n_fft: FFT size in samples; the window spans all of it.
        hop_length: samples between frames; ``None``: ``n_fft // 2`` (50 % overlap).
        window: ``"hann"``, ``"hamming"`` or ``"blackman"`` (periodic).
        log_offset: added to the magnitude before the logarithm.

    Raises:
        ValueError: for sizes that are not positive integers, a ``hop_length`` above ``n_fft`` or an
            unknown ``window``, naming ``frontend.<key>`` and a value that works.
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int | None = None,
        window: str = "hann",
        log_offset: float = 1e-5,
    ) -> None:
        super().__init__()
        self.n_fft = positive_int("frontend.n_fft", n_fft, 1024)
        hop_length = n_fft // 2 if hop_length is None else hop_length
        self.hop_length = positive_int("frontend.hop_length", hop_length, n_fft // 2)
        if self.hop_length > self.n_fft:
            raise ValueError(
                f"frontend.hop_length={hop_length} skips samples between frames of frontend.n_fft={n_fft}, "
                f"which the inverse cannot rebuild: use at most n_fft, e.g. frontend.hop_length={n_fft // 2}"
            )
        if window not in WINDOWS:
            raise ValueError(f"frontend.window must be one of {sorted(WINDOWS)}, got {window!r}")
        self.window_name = window
        self.log_offset = float(log_offset)
        self.out_features = self.n_fft // 2 + 1
        self.register_buffer("window", WINDOWS[window](self.n_fft))

    def stft(self, waveforms: Tensor) -> Tensor:
        """``(batch, time)`` -> the complex STFT ``(batch, n_fft // 2 + 1, frames)``."""
        return torch.stft(
            waveforms,
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )

    def istft(self, spectrum: Tensor, num_samples: int) -> Tensor:
        """The inverse of :meth:`stft`: ``(batch, n_fft // 2 + 1, frames)`` complex -> ``(batch,
        num_samples)`` waveforms (overlap-add, divided by the summed squared window)."""
        return torch.istft(
            spectrum, self.n_fft, self.hop_length, window=self.window, center=True, length=num_samples
        )

    def log_magnitude(self, spectrum: Tensor) -> Tensor:
        """The features of a complex spectrum: ``log(|spectrum| + log_offset)``, same shape, real."""
        return (spectrum.abs() + self.log_offset).log()

    def features(self, waveforms: Tensor) -> Tensor:
        """``(batch, time) -> (batch, n_fft // 2 + 1, frames)`` log magnitudes."""
        if waveforms.dim() != 2:
            raise ValueError(f"expected a waveform of shape (batch, time), got {tuple(waveforms.shape)}")
        return self.log_magnitude(self.stft(waveforms))

    def num_frames(self, num_samples: int | Tensor) -> int | Tensor:
        """``1 + num_samples // hop_length`` (centred frames)."""
        return 1 + num_samples // self.hop_length

    def check_input_samples(self, num_samples: int) -> None:
        """Reflect padding needs more than ``n_fft // 2`` samples.

        Raises:
            ValueError: naming ``frontend.n_fft`` and ``data.clip_seconds``.
        """
        if num_samples <= self.n_fft // 2:
            raise ValueError(
                f"examples of {num_samples} samples are too short for frontend.n_fft={self.n_fft} (centred "
                f"frames pad by n_fft // 2 = {self.n_fft // 2} samples): lower frontend.n_fft or lengthen "
                "data.clip_seconds"
            )

    def analytic_macs(self, num_samples: int) -> int:
        """MACs of the windowed real FFT and the magnitude per frame (``n_fft`` for the window,
        ``n_fft * log2(n_fft)`` for the FFT, 2 per bin for the magnitude), which ptflops does not see."""
        n = self.n_fft
        per_frame = n + n * torch.log2(torch.tensor(float(n))).item() + 2 * (n // 2 + 1)
        return round(self.num_frames(num_samples) * per_frame)
