"""Decoded clips cached as one memory-mapped int16 ``.npy`` per split, with each clip's true length.

After the first decoding run (and in every later run on an unchanged corpus) an epoch does no per-clip
file I/O: items are rows of the memory map. Building, reuse and repair follow
:mod:`src.data.common.cache_files`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from src.data.common.cache_files import ensure_cached, npy_problem, write_npy

log = logging.getLogger(__name__)

# Bump when the cache contents change meaning, so old caches are not reused. v3: clips are checked
# (truncated WAVs and float clips far beyond full scale are refused) before they are cached.
CACHE_FORMAT = "int16-pcm-lengths-v3"
INT16_SCALE = 32768.0
# Clips decoded and written at a time (16,000-sample clips: 8 MB).
_BLOCK_CLIPS = 256


class CachedClipDataset(Dataset[tuple[torch.Tensor, int, int]]):
    """Fixed-length clips read from a memory-mapped int16 ``(clips, time)`` ``.npy`` file.

    Item ``i`` is ``(waveform, length, label)``: a ``(time,)`` float32 tensor in ``[-1, 1)``, zero after
    its first ``length`` samples (the clip's true length, at most ``time``), and the class index of
    ``files[i]`` (a name relative to the corpus folder, e.g. ``"yes/0a7c2a8d_nohash_0.wav"``).
    """

    def __init__(self, cache_file: Path, files: Sequence[str], labels: Sequence[int]) -> None:
        self.cache_file = cache_file
        self.files = list(files)
        self.labels = list(labels)
        self.lengths = np.load(lengths_file(cache_file)).tolist()
        self._waves: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        if self._waves is None:
            self._waves = np.load(self.cache_file, mmap_mode="r")
        wave = torch.from_numpy(self._waves[index].astype(np.float32)).div_(INT16_SCALE)
        return wave, self.lengths[index], self.labels[index]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers reopen the memmap instead of receiving a pickled copy of the whole array.
        state = self.__dict__.copy()
        state["_waves"] = None
        return state


def lengths_file(cache_file: Path) -> Path:
    """The ``(clips,)`` int64 true-length array stored beside ``cache_file``."""
    return cache_file.with_name(f"{cache_file.stem}.lengths.npy")


def cached_clips(
    cache_dir: Path,
    prefix: str,
    names: Sequence[str],
    sources: Sequence[Path],
    clip_samples: int,
    settings: dict[str, Any],
    load: Callable[[str], torch.Tensor],
) -> Path:
    """Path of the int16 cache of ``names``, decoded with ``load`` (name -> ``(time,)`` waveform of any
    length) and zero-padded or truncated to ``clip_samples``; built if it does not exist or is damaged.

    The cache's name hashes ``names``, the size and mtime of each of their ``sources`` (the files they are
    read from), ``clip_samples`` and ``settings``, so any change to the corpus or to the decoding settings
    selects a new cache. A complete cache is reused without writing anything (a read-only ``cache_dir``
    works); a truncated or garbage one is rebuilt with a warning naming it (see
    :func:`~src.data.common.cache_files.ensure_cached`).

    Raises:
        OSError: ``cache_dir`` cannot be written or its disk is full; the message names it and
            ``data.cache_dir``.
        Whatever ``load`` raises for a clip that cannot be decoded.
    """
    stats = [os.stat(path) for path in sources]
    key = {
        "format": CACHE_FORMAT,
        "clip_samples": clip_samples,
        "settings": settings,
        "files": [(name, st.st_size, st.st_mtime_ns) for name, st in zip(names, stats, strict=True)],
    }
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
    cache_file = cache_dir / f"{prefix}-{digest}.npy"
    # The lengths first: a cache is complete once its waveforms file, the last one renamed, exists.
    files = [lengths_file(cache_file), cache_file]

    def build(temporaries: list[Path]) -> None:
        lengths_temporary, waves_temporary = temporaries
        _write_cache(names, clip_samples, load, waves_temporary, lengths_temporary)

    ensure_cached(
        files,
        lambda: _cache_problem(cache_file, len(names), clip_samples),
        build,
        needed_bytes=len(names) * (clip_samples * 2 + 8),
    )
    return cache_file


def to_int16(wave: np.ndarray) -> np.ndarray:
    """Float samples in ``[-1, 1)`` -> int16 samples of the same shape, rounded and clipped to the int16
    range (the inverse of reading int16 as ``samples / INT16_SCALE``)."""
    return np.clip(np.rint(wave * INT16_SCALE), -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)


def _cache_problem(cache_file: Path, num_clips: int, clip_samples: int) -> str | None:
    """What is wrong with the waveforms or lengths file of ``cache_file``, naming the file, or ``None``."""
    for path, shape, dtype in (
        (cache_file, (num_clips, clip_samples), np.int16),
        (lengths_file(cache_file), (num_clips,), np.int64),
    ):
        problem = npy_problem(path, shape, dtype)
        if problem is not None:
            return f"{path}: {problem}"
    lengths = np.load(lengths_file(cache_file))
    if num_clips and not 0 <= lengths.min() <= lengths.max() <= clip_samples:
        return f"{lengths_file(cache_file)}: it holds clip lengths outside [0, {clip_samples}]"
    return None


def _write_cache(
    names: Sequence[str],
    clip_samples: int,
    load: Callable[[str], torch.Tensor],
    waves_file: Path,
    lengths_path: Path,
) -> None:
    """Decode ``names`` into an int16 ``(clips, clip_samples)`` ``.npy`` at ``waves_file`` and their true
    lengths into an int64 ``(clips,)`` one at ``lengths_path``, a block of clips at a time.

    int16 is lossless for 16-bit PCM (which soundfile scales by 1/32768) and halves the size of float32;
    clips that were resampled, scaled or stored as float are quantised at 16 bits (about -96 dBFS).
    """
    log.info("Decoding %d clips into %s", len(names), waves_file.parent)
    lengths = np.zeros(len(names), dtype=np.int64)

    def blocks() -> Iterator[np.ndarray]:
        for start in range(0, len(names), _BLOCK_CLIPS):
            block = np.zeros((min(_BLOCK_CLIPS, len(names) - start), clip_samples), dtype=np.int16)
            for row, name in enumerate(names[start : start + _BLOCK_CLIPS]):
                wave = load(name)
                length = min(wave.shape[-1], clip_samples)
                lengths[start + row] = length
                block[row, :length] = to_int16(wave[:length].numpy())
            yield block

    write_npy(waves_file, (len(names), clip_samples), np.int16, blocks())
    write_npy(lengths_path, (len(names),), np.int64, [lengths])
