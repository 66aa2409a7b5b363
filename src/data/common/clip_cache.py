"""Decoded clips cached as one memory-mapped int16 ``.npy`` per split, with each clip's true length.

After the first decoding run (and in every later run on an unchanged corpus) an epoch does no per-clip
file I/O: items are rows of the memory map.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

# Bump when the cache contents change meaning, so old caches are not reused.
CACHE_FORMAT = "int16-pcm-lengths-v2"
INT16_SCALE = 32768.0


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
    length) and zero-padded or truncated to ``clip_samples``; built under a file lock if it does not exist.

    The cache's name hashes ``names``, the size and mtime of each of their ``sources`` (the files they are
    read from), ``clip_samples`` and ``settings``, so any change to the corpus or to the decoding settings
    selects a new cache.
    """
    stats = [os.stat(path) for path in sources]
    key = {
        "format": CACHE_FORMAT,
        "clip_samples": clip_samples,
        "settings": settings,
        "files": [(name, st.st_size, st.st_mtime_ns) for name, st in zip(names, stats, strict=True)],
    }
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / f"{prefix}-{digest}.npy"
    with FileLock(f"{cache_file}.lock"):
        if cache_file.is_file() and lengths_file(cache_file).is_file():
            log.info("Reusing decoded clips from %s", cache_file)
        else:
            _write_cache(names, clip_samples, load, cache_file)
    shape = np.load(cache_file, mmap_mode="r").shape
    if shape != (len(names), clip_samples):
        raise RuntimeError(
            f"Cache {cache_file} holds an array of shape {shape}, expected {(len(names), clip_samples)}; "
            "delete it to rebuild it."
        )
    return cache_file


def to_int16(wave: np.ndarray) -> np.ndarray:
    """Float samples in ``[-1, 1)`` -> int16 samples of the same shape, rounded and clipped to the int16
    range (the inverse of reading int16 as ``samples / INT16_SCALE``)."""
    return np.clip(np.rint(wave * INT16_SCALE), -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)


def _write_cache(
    names: Sequence[str], clip_samples: int, load: Callable[[str], torch.Tensor], cache_file: Path
) -> None:
    """Decode ``names`` into an int16 ``(clips, clip_samples)`` ``.npy`` and their lengths, each written to a
    temporary file and renamed into place so an interrupted run never leaves a half-written cache.

    int16 is lossless for 16-bit PCM (which soundfile scales by 1/32768) and halves the size of float32;
    clips that were resampled, scaled or stored as float are quantised at 16 bits (about -96 dBFS).
    """
    log.info("Decoding %d clips into %s", len(names), cache_file)
    pid = os.getpid()
    tmp_waves = cache_file.with_name(f"{cache_file.name}.{pid}.tmp")
    tmp_lengths = cache_file.with_name(f"{lengths_file(cache_file).name}.{pid}.tmp")
    try:
        waves = np.lib.format.open_memmap(
            tmp_waves, mode="w+", dtype=np.int16, shape=(len(names), clip_samples)
        )
        lengths = np.zeros(len(names), dtype=np.int64)
        for row, name in enumerate(names):
            wave = load(name)
            lengths[row] = min(wave.shape[-1], clip_samples)
            waves[row, : lengths[row]] = to_int16(wave[: lengths[row]].numpy())
        waves.flush()
        del waves
        with open(tmp_lengths, "wb") as file:
            np.save(file, lengths)
        os.replace(tmp_lengths, lengths_file(cache_file))
        os.replace(tmp_waves, cache_file)
    finally:
        tmp_waves.unlink(missing_ok=True)
        tmp_lengths.unlink(missing_ok=True)
