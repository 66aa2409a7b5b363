"""TIMIT ``.WAV`` files: checked against their own headers, decoded into int16 samples at a target rate.

TIMIT's audio is NIST SPHERE, 16 kHz mono 16-bit; copies converted to RIFF WAV or to another sample format
(24-bit, float) are read too. libsndfile counts the samples a file holds, not those its header promises,
so a truncated copy would otherwise pass as a shorter recording: the header is read here as well.
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from src.data.common.clip_cache import to_int16
from src.data.timit.reader import SAMPLE_RATE

REPLACE_HINT = (
    "Restore it from your TIMIT copy (data.corpus=timit) or delete the corpus folder to regenerate it."
)
_NIST_SAMPLE_COUNT = re.compile(rb"^sample_count -i (\d+)\s*$", re.MULTILINE)


class TimitAudioError(ValueError):
    """A ``.WAV`` that cannot be used (corrupt, truncated, empty, not 16 kHz mono, beyond full scale); the
    message names it and the fix."""


def header_sample_count(path: Path) -> int | None:
    """Samples per channel that the NIST SPHERE or RIFF WAV header of ``path`` promises; ``None`` for
    another format or a header that does not say (or says "unknown", as streamed WAVs do)."""
    with open(path, "rb") as file:
        head = file.read(1024)
        if head.startswith(b"NIST_1A"):
            fields = head.split(b"\n")
            size = int(fields[1]) if len(fields) > 1 and fields[1].strip().isdigit() else len(head)
            count = _NIST_SAMPLE_COUNT.search(head[:size] + file.read(max(size - len(head), 0)))
            return int(count.group(1)) if count else None
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return _riff_sample_count(file)
    return None


def _riff_sample_count(file: BinaryIO) -> int | None:
    """Frames of the ``data`` chunk of a RIFF WAV (``file`` read from any position): its declared size
    over the block size of the ``fmt `` chunk before it."""
    file.seek(12)
    block_align = None
    while len(chunk := file.read(8)) == 8:
        name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if name == b"fmt ":
            block_align = struct.unpack("<H", file.read(16)[12:14])[0]
            file.seek(size - 16 + size % 2, 1)
        elif name == b"data":
            unknown = size in (0, 0xFFFFFFFF) or not block_align
            return None if unknown else size // block_align
        else:
            file.seek(size + size % 2, 1)
    return None


def check_audio(path: Path) -> int:
    """Samples of a usable TIMIT ``.WAV`` (16 kHz, mono, not empty, as many samples as its header says).

    Raises:
        TimitAudioError: naming the file and what to do.
    """
    try:
        info = soundfile.info(path)
    except (soundfile.SoundFileError, RuntimeError) as error:
        raise TimitAudioError(
            f"Cannot decode audio file {path}: {error}. It is corrupt or not audio. {REPLACE_HINT}"
        ) from error
    if info.frames == 0:
        raise TimitAudioError(f"Audio file {path} is empty (0 samples). {REPLACE_HINT}")
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        raise TimitAudioError(
            f"Audio file {path} is {info.samplerate} Hz with {info.channels} channels; TIMIT audio is "
            f"{SAMPLE_RATE} Hz mono and its .PHN sample offsets assume that rate. {REPLACE_HINT} "
            "(data.sample_rate resamples the waveforms after reading; it does not change this.)"
        )
    promised = header_sample_count(path)
    if promised is not None and promised > info.frames:
        raise TimitAudioError(
            f"Audio file {path} is truncated: its header promises {promised} samples "
            f"({promised / SAMPLE_RATE:.2f} s) but it holds {info.frames} "
            f"({info.frames / SAMPLE_RATE:.2f} s), as an interrupted copy or download leaves it. "
            f"{REPLACE_HINT}"
        )
    return info.frames


def decode_audio(path: Path, sample_rate: int, length: int) -> np.ndarray:
    """The ``(length,)`` int16 samples of ``path`` (checked by :func:`check_audio`) at ``sample_rate``.

    Any sample format is read as floats in full scale ``[-1, 1]`` (16-bit PCM exactly), so a float or
    24-bit copy gives the same waveform as the 16-bit original.

    Raises:
        TimitAudioError: the file cannot be decoded, holds NaN/inf or samples beyond full scale (which
            16-bit PCM cannot hold: it would be clipped), or decodes to another length.
    """
    try:
        samples, _ = soundfile.read(path, dtype="float32")
    except (soundfile.SoundFileError, RuntimeError) as error:
        raise TimitAudioError(f"Cannot decode audio file {path}: {error}. {REPLACE_HINT}") from error
    if not np.isfinite(samples).all():
        raise TimitAudioError(f"Audio file {path} holds NaN or infinite samples. {REPLACE_HINT}")
    peak = float(np.abs(samples).max())
    if peak > 1.0:
        raise TimitAudioError(
            f"Audio file {path} holds float samples up to {peak:.4g}, beyond full scale (1.0): TIMIT audio "
            "is 16-bit PCM, and these would be clipped. Convert the file back to 16-bit PCM at its original "
            f"level, or {REPLACE_HINT[0].lower()}{REPLACE_HINT[1:]}"
        )
    if sample_rate != SAMPLE_RATE:
        samples = AF.resample(torch.from_numpy(samples), SAMPLE_RATE, sample_rate).numpy()
    if samples.shape != (length,):
        raise TimitAudioError(
            f"Audio file {path} decodes to {samples.shape[0]} samples at {sample_rate} Hz, expected "
            f"{length}. {REPLACE_HINT}"
        )
    return to_int16(samples)


def resampled_length(frames: int, source_rate: int, target_rate: int) -> int:
    """Length of ``frames`` samples after :func:`torchaudio.functional.resample` to ``target_rate``."""
    gcd = math.gcd(source_rate, target_rate)
    return -(-frames * (target_rate // gcd) // (source_rate // gcd))
