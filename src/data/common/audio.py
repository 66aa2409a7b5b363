"""Decode speech clips with soundfile into mono float32 waveforms at a fixed sample rate and length.

``torchaudio.load`` needs torchcodec + FFmpeg, so decoding goes through soundfile (libsndfile) only.
Fixable problems (another sample rate, extra channels, too long) are fixed and reported; the rest (missing,
corrupt, empty or non-finite clips) raise an error that names the file and says what to do about it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

log = logging.getLogger(__name__)

_REPLACE_HINT = "Delete or replace it (re-download or regenerate the corpus it belongs to)."


class AudioDecodeError(ValueError):
    """A clip that cannot become a waveform (corrupt, not audio, empty, non-finite); the message names it."""


@dataclass
class AudioFixReport:
    """Tally of the fixes applied while decoding many clips, logged as one warning per kind of fix.

    Pass one instance to every :func:`read_clip` / :func:`fit_length` call of a bulk decode, then call
    :meth:`log_summary`; without a report each fix is logged per clip.
    """

    resampled: Counter[int] = field(default_factory=Counter)
    """Source sample rate -> number of clips resampled from it."""
    mixed_down: Counter[int] = field(default_factory=Counter)
    """Channel count -> number of clips mixed down from it."""
    truncated: int = 0
    """Number of clips cut to the target length."""
    examples: dict[str, str] = field(default_factory=dict)
    """Kind of fix -> first file it was applied to."""

    def log_summary(self, what: str, sample_rate: int, num_samples: int) -> None:
        """Log one warning per kind of fix applied to the clips of ``what`` (e.g. ``"split 'train'"``)."""
        if self.resampled:
            rates = ", ".join(f"{count} at {rate} Hz" for rate, count in sorted(self.resampled.items()))
            log.warning(
                "%s: resampled %d clips to %d Hz (%s), e.g. %s",
                what,
                self.resampled.total(),
                sample_rate,
                rates,
                self.examples["resampled"],
            )
        if self.mixed_down:
            layouts = ", ".join(
                f"{count} with {ch} channels" for ch, count in sorted(self.mixed_down.items())
            )
            log.warning(
                "%s: mixed %d clips down to mono by averaging channels (%s), e.g. %s",
                what,
                self.mixed_down.total(),
                layouts,
                self.examples["mixed_down"],
            )
        if self.truncated:
            log.warning(
                "%s: truncated %d clips longer than %d samples (%.3f s) to that length",
                what,
                self.truncated,
                num_samples,
                num_samples / sample_rate,
            )


def read_clip(path: str | Path, sample_rate: int, *, report: AudioFixReport | None = None) -> torch.Tensor:
    """Decode one audio file into a mono waveform at ``sample_rate``.

    Multi-channel audio is mixed down by averaging channels; audio at another rate is resampled with
    :func:`torchaudio.functional.resample`. Both are logged (per clip, or tallied in ``report``).

    Args:
        path: Audio file in any format libsndfile reads (WAV, FLAC, OGG, ...).
        sample_rate: Target sample rate in Hz.
        report: Tally to record fixes in instead of logging them per clip.

    Returns:
        ``(time,)`` float32 waveform in ``[-1, 1]``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        AudioDecodeError: the file is corrupt or not audio, has no samples, or holds NaN/inf samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Audio file {path} does not exist.")
    try:
        data, source_rate = sf.read(path, dtype="float32", always_2d=True)
    except sf.SoundFileError as err:
        raise AudioDecodeError(
            f"Cannot decode audio file {path}: {err}. The file is corrupt or not audio. {_REPLACE_HINT}"
        ) from err
    frames, channels = data.shape
    if frames == 0:
        raise AudioDecodeError(f"Audio file {path} is empty (0 frames). {_REPLACE_HINT}")
    if not np.isfinite(data).all():
        raise AudioDecodeError(f"Audio file {path} contains NaN or infinite samples. {_REPLACE_HINT}")

    if channels > 1:
        _note_fix(report, "mixed_down", channels, path, f"{path}: mixing {channels} channels down to mono")
        wave = torch.from_numpy(data.mean(axis=1, dtype=np.float32))
    else:
        wave = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if source_rate != sample_rate:
        _note_fix(
            report, "resampled", source_rate, path, f"{path}: resampling {source_rate} -> {sample_rate} Hz"
        )
        # The band-limited resampler can overshoot full-scale peaks slightly.
        wave = AF.resample(wave, source_rate, sample_rate).clamp_(-1.0, 1.0)
    return wave


def fit_length(wave: torch.Tensor, num_samples: int, *, report: AudioFixReport | None = None) -> torch.Tensor:
    """Zero-pad at the end or truncate ``(..., time) -> (..., num_samples)``.

    Truncation drops audio, so it is logged (per call, or counted in ``report``); padding is not.
    """
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    length = wave.shape[-1]
    if length < num_samples:
        return torch.nn.functional.pad(wave, (0, num_samples - length))
    if length > num_samples:
        if report is None:
            log.warning("Truncating a clip of %d samples to %d samples", length, num_samples)
        else:
            report.truncated += 1
        return wave[..., :num_samples]
    return wave


def _note_fix(report: AudioFixReport | None, kind: str, key: int, path: Path, message: str) -> None:
    """Record a fix of ``kind`` in ``report``, or log ``message`` when there is none."""
    if report is None:
        log.warning(message)
        return
    getattr(report, kind)[key] += 1
    report.examples.setdefault(kind, str(path))
