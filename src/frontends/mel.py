"""What the log-mel frontends share: their checked STFT settings (``MelFrontend``), the triangular filterbank
with its config check, and the mel <-> Hz conversions used to build filters differentiably from
trainable centres and bandwidths.

The conversions repeat torchaudio's formulas operation for operation, so that filters built from the
same mel points are bit-identical to ``torchaudio.functional.melscale_fbanks``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor
from torchaudio.functional import melscale_fbanks

from src.frontends.base import Frontend
from src.utils.config_values import choice, flag, positive_int, real_number

PAD_MODES = ("reflect", "constant", "replicate", "circular")
"""``pad_mode`` choices: the padding modes of ``torch.nn.functional.pad`` that ``torch.stft`` accepts."""

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
        ValueError: for settings that cannot work (a size that is not a positive integer, ``win_length >
            n_fft``, ``f_min``/``f_max`` outside ``0 <= f_min < f_max <= sample_rate / 2``, ``power`` or
            ``log_offset`` not positive, a ``pad_mode``/``norm``/``mel_scale`` that does not exist, a
            non-boolean ``center``), naming the ``frontend.<key>=`` to change and a value that works.
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
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
            raise ValueError(
                f"frontend.sample_rate={sample_rate!r} must be a positive integer in Hz: it is "
                "${data.sample_rate} in a run, so set data.sample_rate, e.g. data.sample_rate=16000"
            )
        self.sample_rate = sample_rate
        self.n_fft = positive_int("frontend.n_fft", n_fft, round(0.025 * sample_rate))
        self.win_length = self._check_win_length(win_length)
        self.hop_length = self._check_hop_length(hop_length)
        self.n_mels = positive_int("frontend.n_mels", n_mels, 40)
        self.f_min, self.f_max = self._check_frequency_range(f_min, f_max)
        self.power = real_number("frontend.power", power, 2.0)
        if power <= 0:
            raise ValueError(
                f"frontend.power={power} must be positive: e.g. frontend.power=2.0 (power) or "
                "frontend.power=1.0 (magnitude)"
            )
        self.center = flag("frontend.center", center)
        self.pad_mode = choice("frontend.pad_mode", pad_mode, PAD_MODES)
        self.norm = choice("frontend.norm", norm, (None, "slaney"))
        self.mel_scale = choice("frontend.mel_scale", mel_scale, ("htk", "slaney"))
        self.log_offset = real_number("frontend.log_offset", log_offset, 1e-6)
        if log_offset <= 0:
            raise ValueError(
                f"frontend.log_offset={log_offset} must be positive: log(mel + log_offset) of a silent or "
                "zero-padded frame is otherwise -inf or NaN; e.g. frontend.log_offset=1e-6"
            )
        self.out_features: int = self.n_mels

    def _check_win_length(self, win_length: object) -> int:
        """``win_length`` (``None``: ``n_fft``), an integer in ``[1, n_fft]``."""
        if win_length is None:
            return self.n_fft
        if isinstance(win_length, bool) or not isinstance(win_length, int) or win_length < 1:
            raise ValueError(
                f"frontend.win_length={win_length!r} must be a positive integer at most "
                f"frontend.n_fft={self.n_fft}, or null (which means n_fft)"
            )
        if win_length > self.n_fft:
            raise ValueError(
                f"frontend.win_length={win_length} is longer than frontend.n_fft={self.n_fft}: set "
                f"frontend.win_length={self.n_fft} (or null, which means n_fft) or "
                f"frontend.n_fft={win_length}"
            )
        return win_length

    def _check_hop_length(self, hop_length: object) -> int:
        """``hop_length`` (``None``: ``win_length // 2``), an integer ``>= 1``."""
        example = max(1, self.sample_rate // 100)  # 10 ms
        if hop_length is None:
            if self.win_length // 2 < 1:
                raise ValueError(
                    f"frontend.hop_length=null means win_length // 2 = 0 for frontend.win_length="
                    f"{self.win_length}: set frontend.hop_length={example}"
                )
            return self.win_length // 2
        return positive_int("frontend.hop_length", hop_length, example)

    def _check_frequency_range(self, f_min: object, f_max: object) -> tuple[int | float, int | float]:
        """``(f_min, f_max)`` in Hz (``f_max=None``: ``sample_rate // 2``) with ``0 <= f_min < f_max`` and
        ``f_max`` at most the Nyquist frequency ``sample_rate / 2``."""
        nyquist = self.sample_rate / 2
        low = real_number("frontend.f_min", f_min, 0.0)
        high = (
            float(self.sample_rate // 2) if f_max is None else real_number("frontend.f_max", f_max, nyquist)
        )
        if low < 0:
            raise ValueError(f"frontend.f_min={f_min} must be at least 0 Hz, e.g. frontend.f_min=0.0")
        if high > nyquist:
            raise ValueError(
                f"frontend.f_max={f_max} is above the Nyquist frequency sample_rate / 2 = {nyquist} Hz of "
                f"frontend.sample_rate={self.sample_rate} (data.sample_rate): set frontend.f_max={nyquist} "
                "(or null, which means sample_rate // 2)"
            )
        if low >= high:
            fixes = (["frontend.f_min=0.0"] if low > 0 else []) + (
                [f"frontend.f_max={nyquist} (or null)"] if high < nyquist else []
            )
            raise ValueError(
                f"frontend.f_min={low} must be below frontend.f_max={high}: set {' or '.join(fixes)}"
            )
        return low, high

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

    def complex_stft(self, x: Tensor, window: Tensor) -> Tensor:
        """One-sided STFT with these settings (``torch.stft``, not normalised):
        ``(batch, time) -> (batch, n_fft // 2 + 1, frames)``, complex.

        Args:
            x: waveforms, ``(batch, time)``.
            window: the analysis window, ``(win_length,)``, zero-padded to ``n_fft`` by ``torch.stft``.
        """
        return torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=window,
            center=self.center,
            pad_mode=self.pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )

    def min_input_samples(self) -> int:
        """The fewest samples an example may have: ``n_fft`` without ``center``; with it, what padding by
        ``n_fft // 2`` on both sides needs (``reflect``: more than ``n_fft // 2``, ``circular``: at least
        ``n_fft // 2``, ``constant`` and ``replicate``: one)."""
        if not self.center:
            return self.n_fft
        pad = self.n_fft // 2
        return max(1, {"reflect": pad + 1, "circular": pad}.get(self.pad_mode, 1))

    def check_input_samples(self, num_samples: int) -> None:
        """Refuse examples shorter than :meth:`min_input_samples`, naming ``data.clip_seconds`` and
        ``frontend.n_fft`` with values that work.

        Raises:
            ValueError: when ``num_samples < min_input_samples()``.
        """
        shortest = self.min_input_samples()
        if num_samples >= shortest:
            return
        if num_samples < 1:
            raise ValueError(
                f"examples of {num_samples} samples hold no audio: data.clip_seconds must be positive"
            )
        padding = f"centred {self.pad_mode} padding by n_fft // 2 = {self.n_fft // 2} samples"
        if not self.center:
            why, longest_fft = "an uncentred frame (frontend.center=false) needs n_fft samples", num_samples
        elif self.pad_mode == "reflect":
            why, longest_fft = f"{padding} needs more than that", 2 * num_samples - 1
        else:  # circular: the only other padding that needs more than one sample
            why, longest_fft = f"{padding} needs at least that", 2 * num_samples + 1
        seconds = math.ceil(shortest / self.sample_rate * 1e4) / 1e4
        raise ValueError(
            f"examples of {num_samples} samples ({num_samples / self.sample_rate:.4g} s at "
            f"{self.sample_rate} Hz) are too short for frontend.n_fft={self.n_fft}: {why}. Set "
            f"data.clip_seconds to at least {seconds} ({shortest} samples), or frontend.n_fft (and "
            f"frontend.win_length) to at most {longest_fft}"
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
            large for ``n_fft`` and the ``f_min``-``f_max`` range): its feature would be constant. The
            message gives the largest ``frontend.n_mels`` and the smallest power-of-two multiple of
            ``frontend.n_fft`` that work.
    """
    settings = {
        "sample_rate": sample_rate,
        "f_min": f_min,
        "f_max": f_max,
        "norm": norm,
        "mel_scale": mel_scale,
    }
    fbanks = _melscale_fbanks(n_fft, n_mels, **settings)
    empty = _empty_filters(fbanks)
    if empty:
        instead = _settings_without_empty_filters(n_fft, n_mels, settings)
        raise ValueError(
            f"n_mels={n_mels} is too large for n_fft={n_fft} over {f_min}-{f_max} Hz: {empty} mel filters "
            f"fall between FFT bins and are all zero. {instead}"
        )
    return fbanks


def _settings_without_empty_filters(n_fft: int, n_mels: int, settings: dict[str, Any]) -> str:
    """What to set instead: the largest ``n_mels`` below ``n_mels`` and the smallest ``n_fft * 2 ** k``
    (``k`` up to 7) whose filters are all non-zero, with the other ``settings`` unchanged."""
    fewer = next(
        (m for m in range(n_mels - 1, 0, -1) if not _empty_filters(_melscale_fbanks(n_fft, m, **settings))),
        None,
    )
    larger = next(
        (
            n
            for n in (n_fft * 2**k for k in range(1, 8))
            if not _empty_filters(_melscale_fbanks(n, n_mels, **settings))
        ),
        None,
    )
    lower = f"Lower frontend.n_mels to {fewer}" if fewer else "Lower frontend.n_mels"
    return lower + (f" or raise frontend.n_fft to {larger}." if larger else " or widen frontend.f_min-f_max.")


def _melscale_fbanks(
    n_fft: int, n_mels: int, *, sample_rate: int, f_min: float, f_max: float, norm: str | None, mel_scale: str
) -> Tensor:
    """``torchaudio.functional.melscale_fbanks`` on ``n_fft // 2 + 1`` bins, its all-zero warning silenced
    (the callers raise an error instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return melscale_fbanks(
            n_freqs=n_fft // 2 + 1,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            sample_rate=sample_rate,
            norm=norm,
            mel_scale=mel_scale,
        )


def _empty_filters(fbanks: Tensor) -> int:
    """How many columns (filters) of ``(n_freqs, n_mels)`` filters are all zero."""
    return int((fbanks.max(dim=0).values == 0).sum())


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
