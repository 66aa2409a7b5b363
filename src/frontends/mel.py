"""What the log-mel frontends share: their checked STFT settings (``MelFrontend``), the triangular filterbank
with its config check, and the mel <-> Hz conversions used to build filters differentiably from
trainable centres and bandwidths.

The conversions repeat torchaudio's formulas operation for operation, so that filters built from the
same mel points are bit-identical to ``torchaudio.functional.melscale_fbanks``.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor
from torchaudio.functional import melscale_fbanks

from src.frontends.base import Frontend

# Slaney (Auditory Toolbox) mel scale: linear below 1 kHz, logarithmic above, as in torchaudio and librosa.
_SLANEY_HZ_PER_MEL = 200.0 / 3
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


class MelFrontend(Frontend):
    """The STFT and mel settings every log-mel frontend takes, checked, and the frame count they give.

    Subclasses build their tensors from these attributes in ``__init__`` after calling this one; every
    argument is keyword-only and the defaults equal ``torchaudio.transforms.MelSpectrogram(hop_length=160,
    n_mels=80)``.

    Args:
        sample_rate: Sample rate of the input waveform in Hz.
        n_fft: FFT size; the spectrogram has ``n_fft // 2 + 1`` frequency bins.
        win_length: Hann window length, zero-padded on both sides to ``n_fft``. ``None`` means ``n_fft``.
        hop_length: Samples between successive frames. ``None`` means ``win_length // 2``.
        f_min: Lowest mel filter edge in Hz.
        f_max: Highest mel filter edge in Hz. ``None`` means ``sample_rate // 2`` (as in torchaudio).
        n_mels: Number of mel filters, i.e. features per frame (``out_features``).
        power: Exponent of the magnitude spectrogram (1.0 magnitude, 2.0 power); must be positive.
        center: Pad the waveform by ``n_fft // 2`` on both sides so that frame ``t`` is centred at
            ``t * hop_length``.
        pad_mode: Padding mode used when ``center`` is true (``"reflect"``, ``"constant"``, ...).
        norm: ``None``, or ``"slaney"`` to divide each triangular filter by its bandwidth.
        mel_scale: ``"htk"`` or ``"slaney"`` mel scale.
        log_offset: Constant added to the mel energies before the natural logarithm.

    Raises:
        ValueError: for settings that cannot work, naming the ``frontend.<key>=`` to change.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_fft: int = 400,
        win_length: int | None = None,
        hop_length: int | None = 160,
        f_min: float = 0.0,
        f_max: float | None = None,
        n_mels: int = 80,
        power: float = 2.0,
        center: bool = True,
        pad_mode: str = "reflect",
        norm: str | None = None,
        mel_scale: str = "htk",
        log_offset: float = 1e-6,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.win_length = win_length if win_length is not None else n_fft
        self.hop_length = hop_length if hop_length is not None else self.win_length // 2
        self.f_min = f_min
        self.f_max = f_max if f_max is not None else float(sample_rate // 2)
        self.n_mels = n_mels
        self.power = power
        self.center = center
        self.pad_mode = pad_mode
        self.norm = norm
        self.mel_scale = mel_scale
        self.log_offset = log_offset
        self.out_features: int = n_mels

        if not 0 < self.win_length <= n_fft:
            raise ValueError(
                f"win_length must be in (0, n_fft={n_fft}], got {self.win_length}: "
                "change frontend.win_length= or frontend.n_fft="
            )
        if self.hop_length <= 0:
            raise ValueError(f"hop_length must be positive, got {self.hop_length}: set frontend.hop_length=")
        if power <= 0:
            raise ValueError(f"power must be positive, got {power}: set frontend.power=")
        if f_min > self.f_max:
            raise ValueError(
                f"require f_min ({f_min}) <= f_max ({self.f_max}): change frontend.f_min= or frontend.f_max="
            )

    def triangular_mel_filters(self) -> Tensor:
        """Triangular mel filters of shape ``(n_fft // 2 + 1, n_mels)`` for these settings; one column per
        filter.

        Raises:
            ValueError: when some filter falls between two FFT bins and is all zero (``n_mels`` too
                large for ``n_fft`` and the ``f_min``-``f_max`` range): its feature would be constant.
        """
        return triangular_mel_fbanks(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            f_min=self.f_min,
            f_max=self.f_max,
            n_mels=self.n_mels,
            norm=self.norm,
            mel_scale=self.mel_scale,
        )

    def num_frames(self, num_samples: int | Tensor) -> int | Tensor:
        """Number of frames produced for a clip of ``num_samples`` samples: ``1 + time // hop_length``
        when ``center``, else ``1 + (time - n_fft) // hop_length``. Also elementwise for an integer tensor
        of sample counts, e.g. the ``(batch,)`` true lengths of padded clips."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return 1 + (num_samples - self.n_fft) // self.hop_length


def triangular_mel_fbanks(
    *,
    sample_rate: int,
    n_fft: int,
    f_min: float,
    f_max: float,
    n_mels: int,
    norm: str | None,
    mel_scale: str,
) -> Tensor:
    """Triangular mel filters of shape ``(n_fft // 2 + 1, n_mels)``; one column per filter.

    Exactly ``torchaudio.functional.melscale_fbanks`` on ``n_fft // 2 + 1`` bins, in the default dtype.

    Raises:
        ValueError: when some filter falls between two FFT bins and is all zero (``n_mels`` too
            large for ``n_fft`` and the ``f_min``-``f_max`` range): its feature would be constant.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # replaced by the error below
        fbanks = melscale_fbanks(
            n_freqs=n_fft // 2 + 1,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            sample_rate=sample_rate,
            norm=norm,
            mel_scale=mel_scale,
        )
    empty = int((fbanks.max(dim=0).values == 0).sum())
    if empty:
        raise ValueError(
            f"n_mels={n_mels} is too large for n_fft={n_fft} over "
            f"{f_min}-{f_max} Hz: {empty} mel filters fall between FFT bins and are all "
            "zero. Lower frontend.n_mels or raise frontend.n_fft."
        )
    return fbanks


def hz_to_mel(freq: float, mel_scale: str = "htk") -> float:
    """One frequency in Hz to mels (``"htk"`` or ``"slaney"`` scale), in double precision."""
    if mel_scale == "htk":
        return 2595.0 * math.log10(1.0 + freq / 700.0)
    if mel_scale == "slaney":
        if freq >= _SLANEY_MIN_LOG_HZ:
            return _SLANEY_MIN_LOG_MEL + math.log(freq / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOG_STEP
        return freq / _SLANEY_HZ_PER_MEL
    raise ValueError(f'mel_scale must be "htk" or "slaney", got {mel_scale!r}; set frontend.mel_scale=')


def mel_to_hz(mels: Tensor, mel_scale: str = "htk") -> Tensor:
    """Mels to Hz, elementwise and differentiable: ``(...) -> (...)``.

    Uses ``torch.where`` instead of torchaudio's masked assignment so that autograd sees both pieces of
    the Slaney scale; the values are the same.
    """
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    if mel_scale == "slaney":
        linear = 0.0 + _SLANEY_HZ_PER_MEL * mels
        logarithmic = _SLANEY_MIN_LOG_HZ * torch.exp(_SLANEY_LOG_STEP * (mels - _SLANEY_MIN_LOG_MEL))
        return torch.where(mels >= _SLANEY_MIN_LOG_MEL, logarithmic, linear)
    raise ValueError(f'mel_scale must be "htk" or "slaney", got {mel_scale!r}; set frontend.mel_scale=')


def triangular_filters(freqs: Tensor, left: Tensor, centre: Tensor, right: Tensor) -> Tensor:
    """Triangles rising from ``left`` to 1 at ``centre`` and falling to 0 at ``right`` (all in Hz).

    Args:
        freqs: Frequencies of the FFT bins, ``(n_freqs,)``.
        left: Lower edge of each filter, ``(n_mels,)``.
        centre: Peak of each filter, ``(n_mels,)``.
        right: Upper edge of each filter, ``(n_mels,)``.

    Returns:
        Filters of shape ``(n_freqs, n_mels)``, computed as torchaudio's ``_create_triangular_filterbank``
        does, so equal edges give equal filters.
    """
    up = (freqs.unsqueeze(1) - left) / (centre - left)  # rising slope, (n_freqs, n_mels)
    down = (right - freqs.unsqueeze(1)) / (right - centre)  # falling slope
    return torch.clamp_min(torch.minimum(up, down), 0.0)
