"""Noise for denoising pairs: recordings cut into split-disjoint regions, synthesised coloured noise,
babble from other speakers, and mixing at a signal-to-noise ratio.

Signal-to-noise ratios are measured over the whole example: ``10 log10(sum(clean²) / sum(noise²))`` dB,
the definition ``torchmetrics``' SNR applies to the noisy input, so the SNR a pair is labelled with is the
SNR its noisy input scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from src.data.common.audio import read_clip
from src.data.speech_commands.splits import NOISE_REGIONS

COLOUR_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
"""Synthesised noise colours: power spectral density proportional to ``1 / f ** exponent``."""
LOW_CUT_HZ = 50.0
"""Synthesised noise has no power below this frequency (Hz): below the audible band and speech's lowest
fundamentals."""
BABBLE = "babble"
RECORDED = "recorded"
POWER_FLOOR = 1e-10
"""Mean power below which a clean example counts as silent (its noise is scaled as if it had this power)."""


def coloured_noise(
    colour: str,
    num_samples: int,
    generator: torch.Generator,
    sample_rate: int,
    low_cut_hz: float = LOW_CUT_HZ,
) -> Tensor:
    """``(num_samples,)`` Gaussian noise of ``colour`` (``white``, ``pink``, ``brown``) at unit RMS: white
    noise shaped in the frequency domain by ``f ** (-exponent / 2)`` above ``low_cut_hz`` and zero below it
    (DC included). Without the cut, pink and brown noise put most of their power below the audible and
    the speech band (brown noise of 30 s: 99.9 % below 20 Hz), so an SNR measured over the whole band
    would overstate how loud the noise is where the speech is.

    Raises:
        ValueError: for another colour.
    """
    if colour not in COLOUR_EXPONENTS:
        raise ValueError(f"noise colour must be one of {sorted(COLOUR_EXPONENTS)}, got {colour!r}")
    spectrum = torch.fft.rfft(torch.randn(num_samples, generator=generator))
    frequencies = torch.fft.rfftfreq(num_samples, d=1 / sample_rate)
    gains = frequencies.clamp_min(low_cut_hz).pow(-COLOUR_EXPONENTS[colour] / 2)
    gains[frequencies < low_cut_hz] = 0
    noise = torch.fft.irfft(spectrum * gains, n=num_samples)
    return noise / noise.pow(2).mean().sqrt().clamp_min(1e-12)


def noise_recordings(noise_dir: str | Path, key: str) -> list[Path]:
    """The ``.wav`` files of ``noise_dir``, sorted.

    Raises:
        FileNotFoundError: for a folder that is missing or holds none, naming the config ``key``.
    """
    folder = Path(noise_dir).expanduser()
    paths = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    if not paths:
        raise FileNotFoundError(
            f"{key}={folder} holds no .wav recordings: point it at a folder of noise recordings (e.g. "
            f"<corpus>/_background_noise_), or set {key}=null for synthesised noise"
        )
    return paths


def split_noise(
    split: str,
    sample_rate: int,
    recordings: Sequence[Path],
    synthetic_seconds: float,
    generator: torch.Generator,
) -> dict[str, list[Tensor]]:
    """The noise of ``split`` by kind: the split's region (:data:`NOISE_REGIONS`: 80/10/10 %) of each of
    ``recordings`` read at ``sample_rate`` (kind ``recorded``), or without recordings one noise of each
    colour (:func:`coloured_noise`), ``synthetic_seconds`` long, drawn from ``generator``."""
    if recordings:
        low, high = NOISE_REGIONS[split]
        waves = [read_clip(path, sample_rate) for path in recordings]
        return {RECORDED: [wave[round(len(wave) * low) : round(len(wave) * high)] for wave in waves]}
    samples = round(synthetic_seconds * sample_rate)
    return {
        colour: [coloured_noise(colour, samples, generator, sample_rate)]
        for colour in sorted(COLOUR_EXPONENTS)
    }


def mean_power(waveform: Tensor) -> Tensor:
    """Mean of the squared samples along the last dimension."""
    return waveform.pow(2).mean(dim=-1)


def mix_at_snr(clean: Tensor, noise: Tensor, snr_db: float) -> Tensor:
    """``clean + g * noise`` with ``g`` such that ``10 log10(sum(clean²) / sum((g * noise)²)) = snr_db``;
    both ``(time,)``. A silent ``clean`` gets noise as if it had mean power :data:`POWER_FLOOR`."""
    speech_power = mean_power(clean).clamp_min(POWER_FLOOR)
    gain = (speech_power / mean_power(noise).clamp_min(1e-20) / 10 ** (snr_db / 10)).sqrt()
    return clean + gain * noise


@dataclass(frozen=True)
class NoiseChoice:
    """What is mixed into one example: the noise ``kind`` (a colour, ``recorded`` or ``babble``), the
    recording (index into the split's recordings of that kind) and the sample it starts at, or for babble
    the indices of the other examples that talk."""

    kind: str
    recording: int = 0
    start: int = 0
    talkers: tuple[int, ...] = ()

    def describe(self) -> str:
        """A short name for file lists, e.g. ``pink[0]@1234`` or ``babble(3,17,40)``."""
        if self.kind == BABBLE:
            return f"babble({','.join(map(str, self.talkers))})"
        return f"{self.kind}[{self.recording}]@{self.start}"


class NoiseBank:
    """The noise of one split: recordings per kind (already cut to the split's region), and babble made
    from the split's own speech.

    Args:
        recordings: kind -> 1-D waveforms (e.g. ``{"recorded": [...]}`` or one per colour); each at least
            one example long (shorter ones are tiled).
        babble_talkers: how many other examples are summed into babble (0: no babble).
        speakers: the speaker of each example of the split (babble never uses the target's speaker).
        speech: example index -> its ``(time,)`` clean waveform (for babble).
    """

    def __init__(
        self,
        recordings: dict[str, list[Tensor]],
        babble_talkers: int,
        speakers: Sequence[str],
        speech: Callable[[int], Tensor],
    ) -> None:
        self.recordings = {kind: list(waves) for kind, waves in recordings.items() if waves}
        self.babble_talkers = babble_talkers
        self.speakers = list(speakers)
        self.speech = speech
        self.kinds = sorted(self.recordings) + ([BABBLE] if babble_talkers > 0 else [])
        if not self.kinds:
            raise ValueError("no noise to mix: give noise recordings or data.babble_talkers >= 1")
        largest_speaker = max(Counter(self.speakers).values(), default=0)
        if babble_talkers > 0 and len(self.speakers) - largest_speaker < babble_talkers:
            raise ValueError(
                f"babble of {babble_talkers} talkers needs that many examples of other speakers than any "
                "target's, which this split does not have: lower data.babble_talkers (0: no babble)"
            )

    def draw(self, target: int, num_samples: int, generator: torch.Generator | None = None) -> NoiseChoice:
        """A random noise for example ``target`` of ``num_samples`` samples (``generator=None``: the global
        RNG)."""
        kind = self.kinds[int(torch.randint(len(self.kinds), (1,), generator=generator))]
        if kind == BABBLE:
            talkers: list[int] = []
            while len(talkers) < self.babble_talkers:  # other speakers, each example at most once
                pick = int(torch.randint(len(self.speakers), (1,), generator=generator))
                if self.speakers[pick] != self.speakers[target] and pick not in talkers:
                    talkers.append(pick)
            return NoiseChoice(kind, talkers=tuple(talkers))
        waves = self.recordings[kind]
        recording = int(torch.randint(len(waves), (1,), generator=generator))
        room = max(len(waves[recording]) - num_samples, 0)
        start = int(torch.randint(room + 1, (1,), generator=generator))
        return NoiseChoice(kind, recording, start)

    def noise(self, choice: NoiseChoice, num_samples: int) -> Tensor:
        """The ``(num_samples,)`` noise waveform of ``choice`` (babble: the talkers' clips at equal power,
        summed; a recording shorter than ``num_samples`` is tiled)."""
        if choice.kind == BABBLE:
            babble = torch.zeros(num_samples)
            for talker in choice.talkers:
                speech = _fit(self.speech(talker), num_samples)
                babble += speech / mean_power(speech).clamp_min(POWER_FLOOR).sqrt()
            return babble
        wave = self.recordings[choice.kind][choice.recording]
        return _fit(wave[choice.start : choice.start + num_samples], num_samples, wave)


def _fit(wave: Tensor, num_samples: int, source: Tensor | None = None) -> Tensor:
    """``wave`` cut or tiled (from ``source``, default ``wave``) to ``num_samples`` samples."""
    if len(wave) >= num_samples:
        return wave[:num_samples]
    source = wave if source is None else source
    repeats = -(-num_samples // max(len(source), 1))
    return source.repeat(repeats)[:num_samples]
