"""Random waveform augmentations of training batches: speed change, time shift, background-noise mixing.

:class:`WaveformAugmentation` works on a whole batch on the batch's device; each augmentation is off by
default and the module is then the identity. Every random choice is drawn on the CPU (from the global RNG,
which ``lightning.seed_everything`` seeds, or from an explicit ``torch.Generator``), so a seed gives the same
augmentations on every device. Batches are ``waveforms (batch, time)`` zero-padded at the end and
``lengths (batch,)``, the true samples of each clip before the padding; both are kept consistent: audio
beyond a clip's new length is zero.

The augmentations, applied in this order:

* speed: resample the clip as if it were played ``factor`` times faster (tempo and pitch change together,
  as in Kaldi's speed perturbation), with ``factor`` a multiple of 0.01 so each factor is a small rational
  resampling ratio; a stretched clip longer than the window keeps its middle ``time`` samples;
* time shift: move the clip by a whole number of samples, zeros filling the vacated samples, as the
  Speech Commands reference pipeline's ``time_shift_ms`` does;
* noise: add a random window of a random background-noise recording, scaled to a random signal-to-noise
  ratio measured over the clip's true length (the padding stays zero). Silent clips stay silent.

Config keys are named ``augmentation.waveform.<key>`` (the `augmentation` config group) in error messages.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torchaudio.functional as AF
from torch import Tensor, nn

log = logging.getLogger(__name__)

CONFIG_PREFIX = "augmentation.waveform"
# Speed factors are drawn as whole percentages: factor = percent / SPEED_STEPS_PER_UNIT.
SPEED_STEPS_PER_UNIT = 100


class WaveformAugmentation(nn.Module):
    """Random speed change, time shift and background-noise mixing of a batch; the identity when all are
    off or in eval mode.

    ``(waveforms (batch, time), lengths (batch,)) -> (waveforms (batch, time), lengths (batch,))``.

    Args:
        sample_rate: Rate of the waveforms in Hz (turns ``time_shift_ms`` into samples).
        time_shift_ms: Each clip moves by a uniform random whole number of samples in
            ``[-time_shift_ms, time_shift_ms]`` milliseconds; 0 turns shifting off.
        noise_prob: Probability that a clip gets background noise added; 0 turns mixing off. Needs
            recordings from :meth:`set_noise`.
        noise_snr_db: ``(low, high)``: the signal-to-noise ratio of a noisy clip, uniform in this range (dB).
        speed_prob: Probability that a clip's speed changes; 0 turns it off.
        speed_range: ``(low, high)``: the speed factor of a changed clip, uniform over the multiples of 0.01
            in this range (> 1 is faster and shorter).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        time_shift_ms: float = 0.0,
        noise_prob: float = 0.0,
        noise_snr_db: Sequence[float] = (0.0, 20.0),
        speed_prob: float = 0.0,
        speed_range: Sequence[float] = (0.9, 1.1),
    ) -> None:
        super().__init__()
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if not time_shift_ms >= 0:
            raise ValueError(
                f"{CONFIG_PREFIX}.time_shift_ms must be >= 0 (the largest shift in milliseconds; 0 is off), "
                f"got {time_shift_ms}"
            )
        _check_probability("noise_prob", noise_prob)
        _check_probability("speed_prob", speed_prob)
        snr_low, snr_high = _check_range("noise_snr_db", noise_snr_db)
        speed_low, speed_high = _check_range("speed_range", speed_range)
        if speed_low <= 0:
            raise ValueError(
                f"{CONFIG_PREFIX}.speed_range must hold positive speed factors (1.0 is unchanged), "
                f"got {list(speed_range)}"
            )
        # Whole percentages inside the range; rounding first keeps 0.9 * 100 = 90.00000000000001 at 90.
        self.speed_percent_range = (
            math.ceil(round(speed_low * SPEED_STEPS_PER_UNIT, 6)),
            math.floor(round(speed_high * SPEED_STEPS_PER_UNIT, 6)),
        )
        if self.speed_percent_range[0] > self.speed_percent_range[1]:
            raise ValueError(
                f"{CONFIG_PREFIX}.speed_range {list(speed_range)} holds no multiple of 0.01 (speed factors "
                f"are drawn in steps of 0.01); widen it"
            )
        self.sample_rate = sample_rate
        self.time_shift_ms = float(time_shift_ms)
        self.max_shift = round(time_shift_ms * sample_rate / 1000)
        self.noise_prob = float(noise_prob)
        self.noise_snr_db = (snr_low, snr_high)
        self.speed_prob = float(speed_prob)
        self.speed_range = (speed_low, speed_high)
        # All recordings end to end, and where each starts and how long it is; set by set_noise.
        self.register_buffer("noise", torch.zeros(0), persistent=False)
        self.noise_starts = torch.zeros(0, dtype=torch.long)
        self.noise_lengths = torch.zeros(0, dtype=torch.long)

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is on."""
        return self.max_shift > 0 or self.noise_prob > 0 or self.speed_prob > 0

    def set_noise(self, recordings: Sequence[Tensor]) -> None:
        """Use ``recordings`` (1-D waveforms at ``sample_rate``, e.g. the data module's
        ``background_noise()``) as the background noise."""
        for index, recording in enumerate(recordings):
            if recording.dim() != 1 or recording.numel() == 0 or not recording.isfinite().all():
                raise ValueError(
                    f"noise recording {index} must be a non-empty 1-D tensor of finite samples, got shape "
                    f"{tuple(recording.shape)}"
                )
        lengths = torch.tensor([len(recording) for recording in recordings], dtype=torch.long)
        self.noise = torch.cat([r.float() for r in recordings]) if recordings else torch.zeros(0)
        self.noise_lengths = lengths
        self.noise_starts = torch.cumsum(lengths, 0) - lengths

    def forward(
        self, waveforms: Tensor, lengths: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Augment a batch: ``(batch, time), (batch,) -> (batch, time), (batch,)``.

        Args:
            waveforms: ``(batch, time)`` float clips, zero-padded at the end.
            lengths: ``(batch,)`` integer true lengths in samples.
            generator: CPU generator for the random choices; the global RNG when ``None``.

        Returns:
            The augmented clips and their new lengths, on the device of ``waveforms``; the inputs
            themselves when every augmentation is off or the module is in eval mode.
        """
        if waveforms.dim() != 2 or lengths.shape != waveforms.shape[:1]:
            raise ValueError(
                f"expected waveforms (batch, time) and lengths (batch,), got {tuple(waveforms.shape)} and "
                f"{tuple(lengths.shape)}"
            )
        if not self.training or not self.enabled:
            return waveforms, lengths
        if self.noise_prob > 0 and self.noise.numel() == 0:
            raise RuntimeError(
                f"{CONFIG_PREFIX}.noise_prob is {self.noise_prob} but no background-noise recordings were "
                f"given: call set_noise(recordings) "
                f"first, or set {CONFIG_PREFIX}.noise_prob=0"
            )
        batch = waveforms.shape[0]
        lengths = lengths.to(waveforms.device)
        if self.speed_prob > 0:
            changed = torch.rand(batch, generator=generator) < self.speed_prob
            low, high = self.speed_percent_range
            percents = torch.randint(low, high + 1, (batch,), generator=generator)
            waveforms, lengths = change_speed(
                waveforms, lengths, torch.where(changed, percents, SPEED_STEPS_PER_UNIT)
            )
        if self.max_shift > 0:
            shifts = torch.randint(-self.max_shift, self.max_shift + 1, (batch,), generator=generator)
            waveforms, lengths = time_shift(waveforms, lengths, shifts.to(waveforms.device))
        if self.noise_prob > 0:
            waveforms = self._mix_noise(waveforms, lengths, generator)
        return waveforms, lengths

    def _mix_noise(self, waveforms: Tensor, lengths: Tensor, generator: torch.Generator | None) -> Tensor:
        """Add noise at a random SNR to a random ``noise_prob`` share of the clips: ``(batch, time)``."""
        batch, time = waveforms.shape
        device = waveforms.device
        noisy = torch.rand(batch, generator=generator) < self.noise_prob
        recording = torch.randint(len(self.noise_lengths), (batch,), generator=generator)
        offset_fraction = torch.rand(batch, generator=generator, dtype=torch.float64)
        snr_low, snr_high = self.noise_snr_db
        snr_db = snr_low + (snr_high - snr_low) * torch.rand(batch, generator=generator, dtype=torch.float64)

        recording_lengths = self.noise_lengths[recording]
        # A window starts anywhere it fits; a recording shorter than the clip is repeated.
        offsets = (offset_fraction * ((recording_lengths - time).clamp(min=0) + 1)).long()
        if self.noise.device != device:
            self.noise = self.noise.to(device)
        window = offsets.to(device)[:, None] + torch.arange(time, device=device)
        positions = window % recording_lengths.to(device)[:, None]
        noise = self.noise[self.noise_starts[recording].to(device)[:, None] + positions]
        mixed = mix_at_snr(waveforms, lengths, noise, snr_db.to(device))
        return torch.where(noisy.to(device)[:, None], mixed, waveforms)


def change_speed(waveforms: Tensor, lengths: Tensor, percents: Tensor) -> tuple[Tensor, Tensor]:
    """Play each clip ``percents / 100`` times as fast, keeping the window of ``time`` samples.

    A clip of ``n`` true samples becomes ``ceil(n * 100 / percent)`` samples long (band-limited resampling
    with :func:`torchaudio.functional.resample`, so its pitch scales by the same factor); when that is
    longer than the window its middle ``time`` samples are kept. Clips at 100 are returned unchanged.

    Args:
        waveforms: ``(batch, time)`` clips, zero-padded at the end.
        lengths: ``(batch,)`` true lengths in samples.
        percents: ``(batch,)`` positive integer speeds in percent (CPU or the clips' device).

    Returns:
        ``(batch, time)`` clips, zero beyond their new lengths, and the ``(batch,)`` new lengths.
    """
    time = waveforms.shape[1]
    device = waveforms.device
    percents = percents.cpu()
    if bool((percents == SPEED_STEPS_PER_UNIT).all()):
        return waveforms, lengths
    waveforms = waveforms.clone()
    lengths = lengths.clone()
    for percent in percents.unique().tolist():
        if percent == SPEED_STEPS_PER_UNIT:
            continue
        rows = (percents == percent).nonzero().squeeze(1).to(device)
        # Read at `percent` Hz and written at 100 Hz: percent / 100 times as fast.
        resampled = AF.resample(waveforms[rows], percent, SPEED_STEPS_PER_UNIT)
        content = (lengths[rows] * SPEED_STEPS_PER_UNIT + percent - 1) // percent
        start = (content - time).clamp(min=0) // 2
        resampled = nn.functional.pad(resampled, (0, max(0, time + int(start.max()) - resampled.shape[1])))
        kept = resampled.gather(1, start[:, None] + torch.arange(time, device=device))
        new_lengths = content.clamp(max=time)
        # The resampler rings a little past the end of the content: keep the padding silent.
        inside = torch.arange(time, device=device) < new_lengths[:, None]
        waveforms[rows] = kept * inside
        lengths[rows] = new_lengths
    return waveforms, lengths


def time_shift(waveforms: Tensor, lengths: Tensor, shifts: Tensor) -> tuple[Tensor, Tensor]:
    """Move each clip ``shifts`` samples later (earlier when negative), filling with zeros.

    Samples moved past either end are dropped. A clip's length grows or shrinks with the shift (within
    ``[1, time]`` for a non-empty clip), so its padding stays at the end.

    Args:
        waveforms: ``(batch, time)`` clips, zero-padded at the end.
        lengths: ``(batch,)`` true lengths in samples.
        shifts: ``(batch,)`` integer shifts in samples, on the clips' device.

    Returns:
        ``(batch, time)`` shifted clips and the ``(batch,)`` new lengths.
    """
    time = waveforms.shape[1]
    source = torch.arange(time, device=waveforms.device) - shifts[:, None]
    inside = (source >= 0) & (source < time)
    shifted = waveforms.gather(1, source.clamp(0, time - 1)) * inside
    new_lengths = torch.maximum((lengths + shifts).clamp(max=time), lengths.clamp(max=1))
    return shifted, new_lengths


def mix_at_snr(waveforms: Tensor, lengths: Tensor, noise: Tensor, snr_db: Tensor) -> Tensor:
    """Add ``noise`` scaled so each clip's signal-to-noise ratio over its true length is ``snr_db``.

    SNR is ``10 log10(mean(clip²) / mean((scale * noise)²))`` over the first ``lengths`` samples; the noise
    beyond them is dropped, so the padding stays zero. A silent clip (or silent noise) gets no noise.

    Args:
        waveforms: ``(batch, time)`` clips, zero-padded at the end.
        lengths: ``(batch,)`` true lengths in samples.
        noise: ``(batch, time)`` noise, one row per clip.
        snr_db: ``(batch,)`` target signal-to-noise ratios in dB.

    Returns:
        ``(batch, time)`` noisy clips.
    """
    time = waveforms.shape[1]
    inside = torch.arange(time, device=waveforms.device) < lengths[:, None]
    noise = noise * inside
    # Energies in float64, so the achieved SNR matches the target to far better than 0.01 dB.
    clip_energy = (waveforms.double() * inside).square().sum(1)
    noise_energy = noise.double().square().sum(1)
    ratio = 10.0 ** (snr_db.double() / 10.0)
    scale = torch.where(
        noise_energy > 0, (clip_energy / (noise_energy.clamp(min=1e-300) * ratio)).sqrt(), 0.0
    )
    return waveforms + (scale[:, None] * noise).to(waveforms.dtype)


def _check_probability(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{CONFIG_PREFIX}.{key} must be a probability in [0, 1] (0 is off), got {value}")


def _check_range(key: str, value: Sequence[float]) -> tuple[float, float]:
    """``value`` as ``(low, high)`` with finite ``low <= high``, else a ``ValueError`` naming the key."""
    try:
        bounds = tuple(float(bound) for bound in value) if not isinstance(value, str) else ()
    except (TypeError, ValueError):
        bounds = ()
    if len(bounds) != 2 or not all(math.isfinite(bound) for bound in bounds) or bounds[0] > bounds[1]:
        raise ValueError(
            f"{CONFIG_PREFIX}.{key} must be a pair [low, high] of finite numbers, low <= high, got {value}"
        )
    return bounds
