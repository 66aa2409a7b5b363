"""Log-mel frontend with a trainable STFT and/or mel filterbank, after nnAudio.

Reproduces the front-end of Heung, Cheuk & Herremans (2022), "Understanding Audio Features via Trainable
Basis Functions", which trains nnAudio's STFT kernels and mel filters with the classifier, without that
code's known pitfalls:

* the power spectrum is ``re² + im²``, never ``|z| ** 2`` through ``sqrt``, so silence (``z = 0``) gives
  finite gradients instead of NaN;
* frequency bins are masked out by multiplying with a fixed mask, not by writing zeros in place into
  tensors that autograd needs;
* fixed and trainable settings differ in which tensors are ``nn.Parameter`` and which are buffers, and in
  how a fixed STFT is computed: by the FFT while its kernels are the windowed DFT basis.

The four settings of the study map onto two flags:

* A: ``trainable_stft=False, trainable_mel=False``: no parameters;
* B: ``trainable_stft=False, trainable_mel=True``: ``mel_fbanks``;
* C: ``trainable_stft=True, trainable_mel=False``: ``stft_real``, ``stft_imag``;
* D: ``trainable_stft=True, trainable_mel=True``: ``stft_real``, ``stft_imag``, ``mel_fbanks``.

With ``filterbank="parametric"``, ``mel_fbanks`` is replaced by ``mel_centres`` and ``mel_bandwidths``.
At initialisation every setting computes the same features as ``LogMelFilterBanks`` with the same
arguments, up to float32 rounding: settings A and B take the FFT as it does, C and D a direct (conv1d)
sum over each frame, the fastest exact form measured for arbitrary kernels (docs/frontends.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.frontends.mel import (
    MelFrontend,
    hz_to_mel,
    mel_to_hz,
    triangular_filters,
)
from src.utils.config_values import choice, flag

FILTERBANKS = ("matrix", "parametric")
# Parametric filters never get narrower than this (in mel), so their slopes stay finite; far below the
# spacing of any usable mel filterbank (about 2840 mel / (n_mels + 1) up to 8 kHz).
MIN_BANDWIDTH_MEL = 0.01


def fourier_kernels(n_fft: int, win_length: int, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """Windowed DFT kernels, the real and imaginary parts of ``torch.stft``'s basis.

    The periodic Hann window of ``win_length`` is zero-padded on both sides to ``n_fft`` exactly as
    ``torch.stft`` pads it (``(n_fft - win_length) // 2`` zeros on the left). Computed in float64 with the
    angle reduced modulo ``n_fft`` in integers, then cast.

    Args:
        n_fft: Kernel length and DFT size.
        win_length: Hann window length, at most ``n_fft``.
        dtype: dtype of the result; ``None`` means the default dtype.

    Returns:
        ``(real, imag)``, each ``(n_fft // 2 + 1, n_fft)``: ``real[k, n] = w[n] cos(2 pi k n / n_fft)`` and
        ``imag[k, n] = -w[n] sin(2 pi k n / n_fft)``, so that ``x @ real.T + 1j * x @ imag.T`` is the
        one-sided DFT of a windowed frame ``x``.
    """
    window = torch.hann_window(win_length, dtype=torch.float64)
    left = (n_fft - win_length) // 2
    window = F.pad(window, (left, n_fft - win_length - left))
    bins = torch.arange(n_fft // 2 + 1).unsqueeze(1)
    samples = torch.arange(n_fft).unsqueeze(0)
    angle = (2 * math.pi / n_fft) * ((bins * samples) % n_fft).to(torch.float64)
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    return (window * torch.cos(angle)).to(dtype), (-window * torch.sin(angle)).to(dtype)


class TrainableLogMel(MelFrontend):
    """Waveform to log mel energies with trainable parts: ``(batch, time) -> (batch, n_mels, frames)``.

    The STFT is ``torch.stft`` (an FFT) while it is fixed (settings A and B; :attr:`stft_by_fft`, unless
    loaded kernels differ from the DFT basis) and, once its kernels are trainable (C and D), a strided
    ``conv1d`` with ``2 * (n_fft // 2 + 1)`` windowed Fourier kernels of length ``n_fft`` (real parts
    ``stft_real``, imaginary parts ``stft_imag``, each ``(n_fft // 2 + 1, n_fft)``) after padding by
    ``n_fft // 2`` when ``center``. Both compute the same DFT of the same windowed frames (they differ by
    float32 rounding only, see :meth:`spectrogram`); then ``re² + im²`` (raised to ``power / 2`` when
    ``power != 2``), the mel projection, and ``log(mel + log_offset)``.

    Tensors (parameters when trainable, buffers otherwise; the state-dict keys are the same in every
    setting):

    * ``stft_real``, ``stft_imag``: ``(n_fft // 2 + 1, n_fft)``, trainable when ``trainable_stft``;
    * ``filterbank="matrix"``: ``mel_fbanks`` ``(n_fft // 2 + 1, n_mels)``, trainable when ``trainable_mel``;
    * ``filterbank="parametric"``: ``mel_centres`` ``(n_mels,)`` and ``mel_bandwidths`` ``(2, n_mels)``,
      trainable when ``trainable_mel`` (see :meth:`mel_filters`);
    * always buffers: ``freq_mask`` ``(n_fft // 2 + 1,)``, ``fft_freqs`` ``(n_fft // 2 + 1,)``, and the
      initial values ``stft_real_init``, ``stft_imag_init``, ``mel_fbanks_init`` used by
      :meth:`filter_distance`.

    Args:
        **settings: The STFT and mel settings of :class:`~src.frontends.mel.MelFrontend` (``sample_rate``,
            ``n_fft``, ``win_length``, ``hop_length``, ``f_min``, ``f_max``, ``n_mels``,
            ``power``, ``center``, ``pad_mode``, ``norm``, ``mel_scale``, ``log_offset``), with its defaults.
            ``power`` 2.0 is ``re² + im²`` with no root; other values compute
            ``max(re² + im², tiny) ** (power / 2)``, which keeps gradients finite at silence (``tiny`` is the
            dtype's smallest normal number, far below ``log_offset``).
        trainable_stft: Make the STFT kernels parameters (settings C and D).
        trainable_mel: Make the mel filterbank (or its centres and bandwidths) parameters (B and D).
        random_mel: Initialise the ``"matrix"`` filterbank with values uniform in ``[0, max]`` of the
            triangular filterbank, drawn from the global torch RNG, instead of triangular filters.
        nonnegative_mel: Let :meth:`constrain_` clamp a trainable ``"matrix"`` filterbank to ``>= 0``.
        maskout: ``[low_bin, high_bin)``: STFT bins set to zero by a fixed multiplicative mask, or ``None``.
        filterbank: ``"matrix"`` (a free ``(n_freqs, n_mels)`` matrix) or ``"parametric"`` (triangles from
            trainable centres and bandwidths, FastAudio-style).

    Raises:
        ValueError: for an argument that cannot work, naming the ``frontend.<key>=`` to change.
    """

    def __init__(
        self,
        *,
        trainable_stft: bool = False,
        trainable_mel: bool = False,
        random_mel: bool = False,
        nonnegative_mel: bool = False,
        maskout: Sequence[int] | None = None,
        filterbank: str = "matrix",
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        self.trainable_stft = flag("frontend.trainable_stft", trainable_stft)
        self.trainable_mel = flag("frontend.trainable_mel", trainable_mel)
        self.random_mel = flag("frontend.random_mel", random_mel)
        self.nonnegative_mel = flag("frontend.nonnegative_mel", nonnegative_mel)
        self.filterbank = choice("frontend.filterbank", filterbank, FILTERBANKS)
        self.n_freqs = self.n_fft // 2 + 1

        if random_mel and filterbank != "matrix":
            raise ValueError(
                "frontend.random_mel=true initialises a free filter matrix; it needs "
                f"frontend.filterbank=matrix, got frontend.filterbank={filterbank}"
            )
        self.maskout = self._check_maskout(maskout)

        triangular = self.triangular_mel_filters()  # fails, as LogMelFilterBanks does, for n_mels too large
        real, imag = fourier_kernels(self.n_fft, self.win_length)
        self._register("stft_real", real, trainable_stft)
        self._register("stft_imag", imag, trainable_stft)
        # a fixed STFT takes the FFT while its kernels are the DFT basis (checked again after every load)
        self.stft_by_fft = not trainable_stft
        self.register_load_state_dict_post_hook(TrainableLogMel._check_loaded_kernels)

        mask = torch.ones(self.n_freqs)
        if self.maskout is not None:
            mask[self.maskout[0] : self.maskout[1]] = 0.0
        self.register_buffer("freq_mask", mask)
        self.register_buffer("fft_freqs", torch.linspace(0, self.sample_rate // 2, self.n_freqs))

        if filterbank == "matrix":
            fbanks = torch.rand_like(triangular) * triangular.max() if random_mel else triangular
            self._register("mel_fbanks", fbanks, trainable_mel)
        else:
            # centres and lower/upper half-widths in mel, from the points torchaudio places its edges at
            mel_min, mel_max = hz_to_mel(self.f_min, self.mel_scale), hz_to_mel(self.f_max, self.mel_scale)
            points = torch.linspace(mel_min, mel_max, self.n_mels + 2)
            centres = points[1:-1].clone()
            bandwidths = torch.stack([points[1:-1] - points[:-2], points[2:] - points[1:-1]])
            self._register("mel_centres", centres, trainable_mel)
            self._register("mel_bandwidths", bandwidths, trainable_mel)

        # the fixed STFT's FFT window (not saved: the kernels hold it, and checkpoints keep their keys)
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        self.register_buffer("stft_real_init", real.clone())
        self.register_buffer("stft_imag_init", imag.clone())
        with torch.no_grad():
            self.register_buffer("mel_fbanks_init", self.mel_filters().clone())

    def _check_loaded_kernels(self, incompatible_keys: object) -> None:
        """After ``load_state_dict``: a fixed STFT keeps the FFT only if the loaded kernels are the windowed
        DFT basis; kernels that differ (e.g. trained in setting C, then frozen) are used as they are, by
        the direct sum, so a fixed part always computes what its buffers hold."""
        if self.trainable_stft:
            return
        real, imag = fourier_kernels(self.n_fft, self.win_length, dtype=self.stft_real.dtype)
        device = self.stft_real.device
        self.stft_by_fft = torch.equal(self.stft_real, real.to(device)) and torch.equal(
            self.stft_imag, imag.to(device)
        )

    def _check_maskout(self, maskout: Sequence[int] | None) -> list[int] | None:
        """``maskout`` as ``[low_bin, high_bin]`` ints, or ``None``."""
        if maskout is None:
            return None
        bounds = list(maskout) if isinstance(maskout, Sequence) else [maskout]
        if (
            len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            or not 0 <= bounds[0] < bounds[1] <= self.n_freqs
        ):
            raise ValueError(
                f"frontend.maskout={bounds} must be [low_bin, high_bin] with "
                f"0 <= low_bin < high_bin <= n_fft // 2 + 1 = {self.n_freqs}, or null"
            )
        if bounds == [0, self.n_freqs]:
            raise ValueError(
                f"frontend.maskout={bounds} masks every STFT bin, so every feature is constant: mask a band, "
                f"e.g. frontend.maskout=[0, {self.n_freqs // 2}], or set frontend.maskout=null"
            )
        return bounds

    def _register(self, name: str, tensor: Tensor, trainable: bool) -> None:
        """Register ``tensor`` as a parameter when ``trainable``, else as a buffer, under ``name``."""
        if trainable:
            self.register_parameter(name, nn.Parameter(tensor))
        else:
            self.register_buffer(name, tensor)

    def mel_filters(self) -> Tensor:
        """The current mel filterbank, ``(n_fft // 2 + 1, n_mels)``; one column per filter.

        ``"matrix"``: ``mel_fbanks`` itself. ``"parametric"``: triangles built (differentiably, on every call)
        from ``mel_centres`` (in mel) and ``mel_bandwidths`` (row 0: centre minus lower edge, row 1: upper
        edge minus centre, in mel, floored at ``MIN_BANDWIDTH_MEL``): edges and centre are converted to Hz
        and the filters computed as ``torchaudio.functional.melscale_fbanks`` does, including its
        ``norm="slaney"`` scaling by ``2 / (upper - lower)`` Hz. At initialisation the edges are the mel
        points torchaudio uses, so the filters equal the triangular filterbank to float rounding.
        """
        if self.filterbank == "matrix":
            return self.mel_fbanks
        widths = self.mel_bandwidths.clamp_min(MIN_BANDWIDTH_MEL)
        edges = torch.stack([self.mel_centres - widths[0], self.mel_centres, self.mel_centres + widths[1]])
        lower, centre, upper = mel_to_hz(edges, self.mel_scale)
        filters = triangular_filters(self.fft_freqs, lower, centre, upper)
        if self.norm == "slaney":
            filters = filters * (2.0 / (upper - lower))
        return filters

    def stft_kernels(self) -> Tensor:
        """The current real-part STFT kernels, ``(n_fft // 2 + 1, n_fft)``; row ``k`` analyses bin ``k``."""
        return self.stft_real

    def spectrogram(self, x: Tensor) -> Tensor:
        """Power spectrogram: ``(batch, time) -> (batch, n_fft // 2 + 1, frames)``.

        A fixed STFT whose kernels are the windowed DFT basis (``stft_by_fft``) is ``torch.stft`` with the
        Hann window of ``win_length`` (the FFT, about a quarter of the direct sum's time); a trainable one,
        or fixed kernels loaded from a trained model, is the ``conv1d`` of the padded waveform with
        ``stft_real`` and ``stft_imag``. At initialisation the two agree to float32 rounding (a few eps
        times the frame's power). Bins in ``maskout`` are zero (multiplied by the fixed ``freq_mask``).
        """
        if not self.stft_by_fft:
            real, imag = self._direct_stft(x).split(self.n_freqs, dim=1)
        else:
            stft = self.complex_stft(x, self.window)
            real, imag = stft.real, stft.imag
        spec = torch.addcmul(real.square(), imag, imag)  # re² + im², no sqrt: finite gradient at z = 0
        if self.power != 2.0:
            spec = spec.clamp_min(torch.finfo(spec.dtype).tiny).pow(self.power / 2)
        if self.maskout is not None:
            spec = spec * self.freq_mask.unsqueeze(-1)
        return spec

    def _direct_stft(self, x: Tensor) -> Tensor:
        """The trainable STFT: ``(batch, time) -> (batch, 2 * (n_fft // 2 + 1), frames)``, the real parts
        of every bin, then the imaginary parts: one ``conv1d`` of the padded waveform with both kernel
        sets."""
        signal = x.unsqueeze(1)  # (batch, 1, time)
        if self.center:
            signal = F.pad(signal, (self.n_fft // 2, self.n_fft // 2), mode=self.pad_mode)
        kernels = torch.cat([self.stft_real, self.stft_imag]).unsqueeze(1)  # (2 * n_freqs, 1, n_fft)
        return F.conv1d(signal, kernels, stride=self.hop_length)

    def features(self, x: Tensor) -> Tensor:
        """Log mel energies: ``(batch, time) -> (batch, n_mels, frames)``.

        ``frames = 1 + time // hop_length`` when ``center`` is true, else
        ``1 + (time - n_fft) // hop_length``.
        """
        if x.dim() != 2:
            raise ValueError(f"expected a waveform of shape (batch, time), got {tuple(x.shape)}")
        spec = self.spectrogram(x)
        # (batch, frames, freqs) @ (freqs, n_mels) -> (batch, frames, n_mels) -> (batch, n_mels, frames):
        # one matrix product over every frame of the batch (torch.stft's frames are already its rows)
        mel = torch.matmul(spec.transpose(-1, -2), self.mel_filters()).transpose(-1, -2)
        return torch.log(mel + self.log_offset)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Clamp a trainable ``"matrix"`` filterbank to ``>= 0`` in place when ``nonnegative_mel``.

        Meant to run after each optimiser step. A no-op when ``nonnegative_mel`` is off, the mel filters
        are fixed, or the filterbank is ``"parametric"`` (its triangles are non-negative by construction).
        """
        if self.nonnegative_mel and self.trainable_mel and self.filterbank == "matrix":
            self.mel_fbanks.clamp_(min=0.0)

    def trainable_filters(self) -> tuple[Tensor, Tensor]:
        """The mel filters (:meth:`mel_filters`) and the real STFT kernels (:meth:`stft_kernels`)."""
        return self.mel_filters(), self.stft_kernels()

    def setting_name(self) -> str:
        """The study's setting letter: A (nothing trainable), B (mel), C (STFT), D (both)."""
        return "ABCD"[2 * self.trainable_stft + self.trainable_mel]

    @torch.no_grad()
    def filter_distance(self) -> dict[str, float]:
        """How far the trainable parts moved from initialisation: ``||W - W0||_F / ||W0||_F``.

        Keys: ``"mel"`` (the filters of :meth:`mel_filters` against ``mel_fbanks_init``) and ``"stft"``
        (real and imaginary kernels together against ``stft_real_init``/``stft_imag_init``); 0.0 for a
        fixed part.
        """

        def relative(current: Tensor, initial: Tensor) -> float:
            return float(torch.linalg.norm(current - initial) / torch.linalg.norm(initial))

        stft = 0.0
        if self.trainable_stft:
            stft = relative(
                torch.cat([self.stft_real, self.stft_imag]),
                torch.cat([self.stft_real_init, self.stft_imag_init]),
            )
        mel = relative(self.mel_filters(), self.mel_fbanks_init) if self.trainable_mel else 0.0
        return {"mel": mel, "stft": stft}

    def analytic_macs(self, num_samples: int) -> int:
        """Multiply-accumulates for one clip that ptflops' ``aten`` backend does not count.

        ptflops (``backend="aten"``) sees the mel projection (``frames * F * n_mels`` MACs, with
        ``F = n_fft // 2 + 1``) and, for a trainable STFT, its ``conv1d`` (``frames * 2 * F * n_fft`` MACs,
        windowing included since the window is baked into the kernels), but not ``torch.stft``. This
        returns the rest, with ``N = n_fft``:

        * fixed STFT (``torch.stft``): windowing, ``N`` MACs per frame, and the real-input FFT,
          ``N * log2(N)`` per frame, the estimate ``LogMelFilterBanks.analytic_macs`` uses;
        * power ``re² + im²``: 2 MACs per bin and frame, whatever ``power`` is (as ``LogMelFilterBanks``);
        * ``maskout``: 1 MAC per bin and frame for the mask multiply, when set;
        * ``filterbank="parametric"``: building the filters, once per clip: 2 MACs per entry of the
          ``(F, n_mels)`` matrix (the rising and the falling slope), plus 1 per entry for ``norm="slaney"``.

        Padding, the root for ``power != 2``, the mel-to-Hz conversion of ``3 * n_mels`` edges, the log
        offset and the logarithm are not MACs. The total is rounded to an int.

        Args:
            num_samples: Length of the clip in samples.
        """
        per_frame = 2 * self.n_freqs + (self.n_freqs if self.maskout is not None else 0)
        per_clip = 0
        if self.stft_by_fft:
            per_frame += self.n_fft + self.n_fft * math.log2(self.n_fft)
        if self.filterbank == "parametric":
            per_clip += (3 if self.norm == "slaney" else 2) * self.n_freqs * self.n_mels
        return round(self.num_frames(num_samples) * per_frame + per_clip)
