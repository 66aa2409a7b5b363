"""Decode speech clips with soundfile into mono float32 waveforms at a fixed sample rate and length.

``torchaudio.load`` needs torchcodec + FFmpeg, so decoding goes through soundfile (libsndfile) only.
Fixable problems are fixed and reported (another sample rate, extra channels, too long, float samples
slightly beyond full scale) or only reported (clips too short to hold a word, digital silence); the rest
(missing, corrupt, truncated, empty or non-finite clips, float samples far beyond full scale) raise an
error that names the file and says what to do about it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

log = logging.getLogger(__name__)

_REPLACE_HINT = "Delete or replace it (re-download or regenerate the corpus it belongs to)."
# Float samples up to this peak are clipped to [-1, 1] (with a warning); beyond it (+6 dBFS) the file was
# written at another scale (e.g. int16 values stored as float) and clipping would leave a square wave.
MAX_FLOAT_PEAK = 2.0
# Clips shorter than this cannot hold a spoken word; they are kept (zero-padded) but reported.
SHORT_CLIP_SECONDS = 0.1


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
    clipped: int = 0
    """Number of float clips with samples beyond ``[-1, 1]`` (at most :data:`MAX_FLOAT_PEAK`), clipped."""
    clipped_peak: float = 0.0
    """The largest absolute sample among the clipped clips."""
    short: int = 0
    """Number of clips shorter than :data:`SHORT_CLIP_SECONDS` (kept, zero-padded)."""
    shortest: int | None = None
    """Samples (at the target rate) of the shortest of them."""
    silent: int = 0
    """Number of clips whose samples are all zero (digital silence; kept)."""
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
        if self.clipped:
            log.warning(
                "%s: clipped %d float clips with samples beyond [-1, 1] (largest %.3f) to [-1, 1], e.g. %s",
                what,
                self.clipped,
                self.clipped_peak,
                self.examples["clipped"],
            )
        if self.short:
            log.warning(
                "%s: %d clips are shorter than %.2f s (the shortest has %d samples), too short to hold a "
                "word; they are kept, zero-padded. e.g. %s",
                what,
                self.short,
                SHORT_CLIP_SECONDS,
                self.shortest,
                self.examples["short"],
            )
        if self.silent:
            log.warning(
                "%s: %d clips are digital silence (every sample is zero); they are kept. e.g. %s",
                what,
                self.silent,
                self.examples["silent"],
            )


def read_clip(path: str | Path, sample_rate: int, *, report: AudioFixReport | None = None) -> torch.Tensor:
    """Decode one audio file into a mono waveform at ``sample_rate``.

    Multi-channel audio is mixed down by averaging channels; audio at another rate is resampled with
    :func:`torchaudio.functional.resample`; float samples beyond ``[-1, 1]`` (up to :data:`MAX_FLOAT_PEAK`)
    are clipped. These, clips shorter than :data:`SHORT_CLIP_SECONDS` and clips of digital silence are
    logged (per clip, or tallied in ``report``).

    Args:
        path: Audio file in any format libsndfile reads (WAV, FLAC, OGG, ...).
        sample_rate: Target sample rate in Hz.
        report: Tally to record fixes in instead of logging them per clip.

    Returns:
        ``(time,)`` float32 waveform in ``[-1, 1]``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        AudioDecodeError: the file is corrupt or not audio, truncated (a WAV holding fewer samples than its
            header declares), has no samples, holds NaN/inf samples or float samples beyond
            ``±MAX_FLOAT_PEAK``.
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
    declared = declared_wav_frames(path)
    if declared is not None and declared > frames:
        raise AudioDecodeError(
            f"Audio file {path} is truncated: its header declares {declared} samples per channel but it "
            f"holds {frames} (an incomplete copy or download). {_REPLACE_HINT}"
        )
    if not np.isfinite(data).all():
        raise AudioDecodeError(f"Audio file {path} contains NaN or infinite samples. {_REPLACE_HINT}")
    peak = float(np.abs(data).max())
    if peak == 0.0:
        if report is None:
            log.warning("%s: every sample is zero (digital silence)", path)
        else:
            report.silent += 1
            report.examples.setdefault("silent", str(path))
    if peak > MAX_FLOAT_PEAK:
        raise AudioDecodeError(
            f"Audio file {path} holds float samples up to {peak:.4g}, far outside [-1, 1]: it was written at "
            "another scale (e.g. int16 values stored as float), and clipping would destroy it. Rescale it "
            f"into [-1, 1] (divide int16-scale values by 32768) or replace it."
        )
    if peak > 1.0:
        if report is None:
            log.warning("%s: clipping float samples up to %.3f to [-1, 1]", path, peak)
        else:
            report.clipped += 1
            report.clipped_peak = max(report.clipped_peak, peak)
            report.examples.setdefault("clipped", str(path))
        data = np.clip(data, -1.0, 1.0)

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
    if len(wave) < round(sample_rate * SHORT_CLIP_SECONDS):
        if report is None:
            log.warning("%s: only %d samples, too short to hold a word", path, len(wave))
        else:
            report.short += 1
            report.shortest = min(len(wave), report.shortest or len(wave))
            report.examples.setdefault("short", str(path))
    return wave


def declared_wav_frames(path: Path) -> int | None:
    """Frames per channel that the ``data`` chunk of a RIFF/WAVE file's header declares, or ``None`` when
    ``path`` is not a RIFF/WAVE file, its header is cut short, or the size is left open (0 or 0xFFFFFFFF,
    as streaming writers leave it). libsndfile reads only the frames present, so a header that declares
    more than that is the sign of a truncated file."""
    with open(path, "rb") as file:
        riff = file.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:] != b"WAVE":
            return None
        block_align = 0
        while len(chunk := file.read(8)) == 8:
            chunk_id, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if chunk_id == b"data":
                if size in (0, 0xFFFFFFFF) or block_align == 0:
                    return None
                return size // block_align
            if chunk_id == b"fmt ":
                block_align = int.from_bytes(file.read(size)[12:14], "little")
                file.seek(size & 1, os.SEEK_CUR)
            else:
                file.seek(size + (size & 1), os.SEEK_CUR)
    return None


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
