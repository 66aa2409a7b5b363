"""Hand-written log-mel filterbank frontend, numerically identical to torchaudio's.

``LogMelFilterBanks()(x)`` equals ``torch.log(torchaudio.transforms.MelSpectrogram(hop_length=160,
n_mels=80)(x) + 1e-6)`` bit for bit on CPU, because it performs the same floating-point operations in the
same order: ``torch.stft`` with a periodic Hann window; ``|z|`` with the complex abs kernel, then
``** power`` (not ``re² + im²``, which rounds differently); the mel projection as
``(frames, freqs) @ (freqs, n_mels)``; then ``+ offset`` and ``log``. It is faster only because it skips
temporaries (complex abs into the STFT's own memory, in-place power, offset and log).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from src.frontends.mel import MelFrontend


class LogMelFilterBanks(MelFrontend):
    """Waveform to log mel filterbank energies: ``(batch, time) -> (batch, n_mels, frames)``.

    Args:
        **settings: The STFT and mel settings of :class:`~src.frontends.mel.MelFrontend` (``sample_rate``,
            ``n_fft``, ``win_length``, ``hop_length``, ``f_min``, ``f_max``, ``n_mels``, ``power``,
            ``center``, ``pad_mode``, ``norm``, ``mel_scale``, ``log_offset``), with its defaults.
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.register_buffer("window", torch.hann_window(self.win_length))
        self.register_buffer("mel_fbanks", self.triangular_mel_filters())

    def spectrogram(self, x: Tensor) -> Tensor:
        """Magnitude spectrogram raised to ``power``: ``(batch, time) -> (batch, n_fft // 2 + 1, frames)``."""
        stft = self.complex_stft(x, self.window)
        # |z| ** power via the complex abs kernel (hypot), as torchaudio does: re² + im² rounds differently
        if stft.requires_grad:
            magnitude = stft.abs()  # autograd cannot differentiate through out=
        else:
            # what stft.abs() computes, without its complex temporary: |z| into the real parts in place,
            # then a dense copy of them, laid out as stft.abs() would be
            magnitude = torch.view_as_real(torch.abs(stft, out=stft))[..., 0].clone()
        if self.power != 1.0:
            magnitude.pow_(self.power)
        return magnitude

    def features(self, x: Tensor) -> Tensor:
        """Log mel filterbank energies: ``(batch, time) -> (batch, n_mels, frames)``.

        ``frames = 1 + time // hop_length`` when ``center`` is true, else
        ``1 + (time - n_fft) // hop_length``.
        """
        if x.dim() != 2:
            raise ValueError(f"expected a waveform of shape (batch, time), got {tuple(x.shape)}")
        spec = self.spectrogram(x)
        # (batch, frames, freqs) @ (freqs, n_mels) -> (batch, frames, n_mels) -> (batch, n_mels, frames)
        mel = torch.matmul(spec.transpose(-1, -2), self.mel_fbanks).transpose(-1, -2)
        return mel.add_(self.log_offset).log_()

    def analytic_macs(self, num_samples: int) -> int:
        """Multiply-accumulates for one clip that ptflops' ``aten`` backend does not count.

        ptflops (``backend="aten"``) counts only matrix products and convolutions, so it sees the mel
        projection (``frames * (n_fft // 2 + 1) * n_mels`` MACs) but not ``torch.stft``. This returns the
        rest, per frame, with ``N = n_fft``:

        * windowing: ``N`` MACs;
        * real-input FFT: ``N * log2(N)`` real MACs (radix-2 estimate: ``(N / 2) * log2(N)`` butterflies,
          one complex multiply = 4 real MACs each, halved for real input);
        * magnitude to power: 2 MACs per frequency bin (``N // 2 + 1`` bins), whatever ``power`` is.

        Padding, the log offset and the logarithm are not MACs. The total is rounded to an int.

        Args:
            num_samples: Length of the clip in samples.
        """
        n = self.n_fft
        per_frame = n + n * math.log2(n) + 2 * (n // 2 + 1)
        return round(self.num_frames(num_samples) * per_frame)
