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

import torch
from torch import Tensor, nn

from src.frontends.mel import check_spectrogram_arguments, triangular_mel_fbanks


class LogMelFilterBanks(nn.Module):
    """Waveform to log mel filterbank energies: ``(batch, time) -> (batch, n_mels, frames)``.

    Args:
        sample_rate: Sample rate of the input waveform in Hz.
        n_fft: FFT size; the spectrogram has ``n_fft // 2 + 1`` frequency bins.
        win_length: Hann window length, zero-padded on both sides to ``n_fft``. ``None`` means ``n_fft``.
        hop_length: Samples between successive frames. ``None`` means ``win_length // 2``.
        f_min: Lowest mel filter edge in Hz.
        f_max: Highest mel filter edge in Hz. ``None`` means ``sample_rate // 2`` (as in torchaudio).
        n_mels: Number of mel filters, i.e. features per frame.
        power: Exponent of the magnitude spectrogram (1.0 magnitude, 2.0 power); must be positive.
        center: Pad the waveform by ``n_fft // 2`` on both sides so that frame ``t`` is centred at
            ``t * hop_length``.
        pad_mode: Padding mode used when ``center`` is true (``"reflect"``, ``"constant"``, ...).
        norm: ``None``, or ``"slaney"`` to divide each triangular filter by its bandwidth.
        mel_scale: ``"htk"`` or ``"slaney"`` mel scale.
        log_offset: Constant added to the mel energies before the natural logarithm.
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

        check_spectrogram_arguments(
            n_fft=n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            power=power,
            f_min=f_min,
            f_max=self.f_max,
        )

        self.register_buffer("window", torch.hann_window(self.win_length))
        self.register_buffer("mel_fbanks", self._init_melscale_fbanks())

    def _init_melscale_fbanks(self) -> Tensor:
        """Triangular mel filters of shape ``(n_fft // 2 + 1, n_mels)``; one column per filter.

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

    def spectrogram(self, x: Tensor) -> Tensor:
        """Magnitude spectrogram raised to ``power``: ``(batch, time) -> (batch, n_fft // 2 + 1, frames)``."""
        stft = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=self.center,
            pad_mode=self.pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
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

    def forward(self, x: Tensor) -> Tensor:
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

    def num_frames(self, num_samples: int) -> int:
        """Number of frames produced for a clip of ``num_samples`` samples."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return 1 + (num_samples - self.n_fft) // self.hop_length

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
