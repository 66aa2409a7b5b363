"""MFCC frontend: the type-II orthonormal DCT of ``LogMelFilterBanks``' log-mel energies.

``MFCC(n_mfcc=k, **kwargs)(x)`` equals ``torchaudio.transforms.MFCC(sample_rate, n_mfcc=k, dct_type=2,
norm="ortho", log_mels=True, melkwargs=kwargs)(x)``: torchaudio takes ``log(mel + 1e-6)`` when
``log_mels=True`` (``LogMelFilterBanks``' default ``log_offset``), then multiplies by the same
``torchaudio.functional.create_dct`` matrix in the same order.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchaudio.functional import create_dct

from src.frontends.base import Frontend
from src.frontends.log_mel import LogMelFilterBanks


class MFCC(Frontend):
    """Waveform to mel-frequency cepstral coefficients: ``(batch, time) -> (batch, n_mfcc, frames)``.

    Args:
        n_mfcc: Number of cepstral coefficients kept (the first ``n_mfcc`` DCT-II outputs), at most
            ``n_mels``.
        **log_mel_kwargs: Keyword arguments of :class:`LogMelFilterBanks` (``sample_rate``, ``n_fft``,
            ``win_length``, ``hop_length``, ``f_min``, ``f_max``, ``n_mels``, ``power``, ``center``,
            ``pad_mode``, ``norm``, ``mel_scale``, ``log_offset``), with its defaults.

    Raises:
        ValueError: when ``n_mfcc`` is not an integer in ``[1, n_mels]`` (naming ``frontend.n_mfcc=``), or for
            ``LogMelFilterBanks``' own configuration errors.
    """

    def __init__(self, *, n_mfcc: int = 40, **log_mel_kwargs: object) -> None:
        super().__init__()
        self.log_mel = LogMelFilterBanks(**log_mel_kwargs)
        n_mels = self.log_mel.n_mels
        if isinstance(n_mfcc, bool) or not isinstance(n_mfcc, int) or not 0 < n_mfcc <= n_mels:
            more_mels = f" or frontend.n_mels={n_mfcc}" if isinstance(n_mfcc, int) and n_mfcc > n_mels else ""
            raise ValueError(
                f"frontend.n_mfcc={n_mfcc!r} must be an integer between 1 and n_mels={n_mels}: set "
                f"frontend.n_mfcc={min(20, n_mels)}{more_mels}"
            )
        self.n_mfcc = n_mfcc
        self.out_features: int = n_mfcc
        self.register_buffer("dct_mat", create_dct(n_mfcc, n_mels, "ortho"))  # (n_mels, n_mfcc)

    def features(self, x: Tensor) -> Tensor:
        """Cepstral coefficients: ``(batch, time) -> (batch, n_mfcc, frames)``."""
        log_mel = self.log_mel.features(x)  # (batch, n_mels, frames)
        # (batch, frames, n_mels) @ (n_mels, n_mfcc) -> (batch, frames, n_mfcc) -> (batch, n_mfcc, frames)
        return torch.matmul(log_mel.transpose(-1, -2), self.dct_mat).transpose(-1, -2)

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Number of frames produced for a clip of ``num_samples`` samples (an int or an integer tensor)."""
        return self.log_mel.num_frames(num_samples)

    def check_input_samples(self, num_samples: int) -> None:
        """:meth:`LogMelFilterBanks.check_input_samples`: refuse examples too short for the STFT."""
        self.log_mel.check_input_samples(num_samples)

    def analytic_macs(self, num_samples: int) -> int:
        """Multiply-accumulates for one clip that ptflops' ``aten`` backend does not count.

        Those of :meth:`LogMelFilterBanks.analytic_macs` (windowing, FFT, power); ptflops sees the mel
        projection and the DCT (``frames * n_mels * n_mfcc`` MACs), both matrix products.
        """
        return self.log_mel.analytic_macs(num_samples)
