"""The decoded TIMIT splits on disk: per split an int16 ``.npy`` of every utterance's samples end to end,
and a ``.json`` index of where each one starts, its 61-phone transcription and which utterances are
digital silence.

A cache is checked whenever it is read (both files parse, and the samples file is as long as its index
says), so a truncated or overwritten one is rebuilt with a warning naming it instead of failing inside
numpy. It is written sequentially (a full disk is an ``OSError`` naming the folder and ``data.cache_dir``,
not a ``Bus error`` from a memory map) to temporary files renamed into place, the samples last; a
complete cache is read without taking the lock, so a read-only cache folder works.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

log = logging.getLogger(__name__)

SAMPLE_DTYPE = np.dtype("<i2")
CACHE_KEY = "data.cache_dir"
"""The config key that moves the cache (default ``<data.root>/.cache``)."""


class CorruptCacheError(ValueError):
    """A cache file that cannot be what its name says; the message names it."""


def index_file(samples_file: Path) -> Path:
    """The ``.json`` index beside ``samples_file``."""
    return samples_file.with_suffix(".json")


def read_split_cache(samples_file: Path, utterances: int) -> dict[str, Any]:
    """The index of a complete, intact cache of ``utterances`` utterances: ``offsets`` (``utterances + 1``
    sample offsets into ``samples_file``), ``phones`` (one list of 61-set phones per utterance) and
    ``silent`` (indices of utterances whose samples are all zero).

    Raises:
        FileNotFoundError: either file is missing (not built, or a build was interrupted).
        CorruptCacheError: a file is truncated, not JSON/``.npy``, or does not match the other.
    """
    index_path = index_file(samples_file)
    if not samples_file.is_file() or not index_path.is_file():
        raise FileNotFoundError(f"No complete cache at {samples_file}")
    try:
        index = json.loads(index_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptCacheError(f"Cache index {index_path} is not valid JSON ({error})") from error
    if not _index_is_valid(index, utterances):
        raise CorruptCacheError(f"Cache index {index_path} does not describe {utterances} utterances")
    total = index["offsets"][-1]
    try:
        with open(samples_file, "rb") as file:
            if np.lib.format.read_magic(file) != (1, 0):  # the version _write_split_cache writes
                raise ValueError("not a version 1.0 .npy header")
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
            data_start = file.tell()
    except (ValueError, SyntaxError) as error:
        raise CorruptCacheError(f"Cache file {samples_file} is not a .npy array ({error})") from error
    if dtype != SAMPLE_DTYPE or fortran_order or shape != (total,):
        raise CorruptCacheError(
            f"Cache file {samples_file} holds a {dtype} array of shape {shape}; its index {index_path} "
            f"needs int16 of shape ({total},)"
        )
    held = samples_file.stat().st_size - data_start
    if held != total * SAMPLE_DTYPE.itemsize:
        raise CorruptCacheError(
            f"Cache file {samples_file} holds {held} bytes of samples, its index needs "
            f"{total * SAMPLE_DTYPE.itemsize}: it is truncated or was overwritten"
        )
    return index


def _index_is_valid(index: Any, utterances: int) -> bool:
    """Whether ``index`` has the keys and shapes :func:`read_split_cache` promises."""
    if not isinstance(index, dict) or not {"offsets", "phones", "silent"} <= index.keys():
        return False
    offsets, phones, silent = index["offsets"], index["phones"], index["silent"]
    return (
        isinstance(offsets, list)
        and len(offsets) == utterances + 1
        and all(isinstance(o, int) for o in offsets)
        and offsets[0] == 0
        and all(a <= b for a, b in pairwise(offsets))
        and isinstance(phones, list)
        and len(phones) == utterances
        and all(isinstance(p, list) and all(isinstance(s, str) for s in p) for p in phones)
        and isinstance(silent, list)
        and all(isinstance(i, int) and 0 <= i < utterances for i in silent)
    )


def load_or_build_split_cache(
    samples_file: Path,
    utterances: int,
    build: Callable[[], tuple[Sequence[int], list[list[str]], Callable[[int], np.ndarray]]],
    what: str,
) -> dict[str, Any]:
    """The index of the cache at ``samples_file`` (:func:`read_split_cache`) of ``what`` (e.g. ``"TIMIT
    train split"``, for the log), built first when it is missing or damaged (a warning names the damaged
    file).

    ``build()`` checks the corpus and returns each utterance's length in samples, its transcription and
    ``decode(i)``, the ``(length_i,)`` int16 samples of utterance ``i`` (raising anything but
    ``OSError`` for a bad file); it is called under a file lock beside the cache, so concurrent runs
    decode once.

    Raises:
        OSError: the cache folder cannot be written (full, read-only), naming it and ``data.cache_dir``.
    """
    try:
        index = read_split_cache(samples_file, utterances)
    except (FileNotFoundError, CorruptCacheError):
        pass  # built (or reported and rebuilt) under the lock, unless another run does it first
    else:
        log.info("Reusing decoded %s from %s", what, samples_file)
        return index
    folder = samples_file.parent
    lock = FileLock(f"{samples_file}.lock")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as error:
        raise cache_write_error(error, folder) from error
    try:
        try:
            return read_split_cache(samples_file, utterances)
        except FileNotFoundError:
            pass
        except CorruptCacheError as error:
            log.warning("%s: rebuilding it", error)
        lengths, phones, decode = build()
        log.info("Decoding %s into %s", what, samples_file)
        try:
            _remove_cache(samples_file)
            _write_split_cache(samples_file, lengths, phones, decode)
        except OSError as error:
            raise cache_write_error(error, folder) from error
    finally:
        lock.release()
    return read_split_cache(samples_file, utterances)


def cache_write_error(error: OSError, folder: Path) -> OSError:
    """An ``OSError`` (same ``errno``) that names the cache ``folder``, the reason and ``data.cache_dir``."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free space there, or set {CACHE_KEY} to a folder on a disk with room"
    else:
        fix = f"make it writable, or set {CACHE_KEY} to a writable folder"
    return OSError(
        error.errno,
        f"Cannot write the decoded TIMIT cache in {folder} ({error.strerror or error}): {fix} "
        f"(default: <data.root>/.cache). Nothing half-written was left there",
    )


def _remove_cache(samples_file: Path) -> None:
    """Delete the cache files of ``samples_file`` and temporary files of interrupted builds (the lock is
    held, so no other process is writing them)."""
    for path in (samples_file, index_file(samples_file)):
        path.unlink(missing_ok=True)
        for stale in path.parent.glob(f"{path.name}.*.tmp"):
            log.info("Removing %s, left by an interrupted cache build", stale)
            stale.unlink(missing_ok=True)


def _write_split_cache(
    samples_file: Path,
    lengths: Sequence[int],
    phones: list[list[str]],
    decode: Callable[[int], np.ndarray],
) -> None:
    """Decode every utterance into the samples file and write the index, each to a temporary file
    renamed into place (index first, samples last); the temporary files are gone whatever happens."""
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).tolist()
    index_path = index_file(samples_file)
    tmp_samples = samples_file.with_name(f"{samples_file.name}.{os.getpid()}.tmp")
    tmp_index = index_path.with_name(f"{index_path.name}.{os.getpid()}.tmp")
    silent = []
    try:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": SAMPLE_DTYPE.str, "fortran_order": False, "shape": (offsets[-1],)}
        )
        with open(tmp_samples, "wb", buffering=0) as file:
            _write_all(file.fileno(), header.getvalue())
            for i in range(len(lengths)):
                samples = decode(i)
                if not samples.any():
                    silent.append(i)
                _write_all(file.fileno(), samples.astype(SAMPLE_DTYPE).tobytes())
        with open(tmp_index, "wb", buffering=0) as file:
            index = {"offsets": offsets, "phones": phones, "silent": silent}
            _write_all(file.fileno(), json.dumps(index).encode())
        os.replace(tmp_index, index_path)
        os.replace(tmp_samples, samples_file)
    finally:
        tmp_samples.unlink(missing_ok=True)
        tmp_index.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write fewer); a full disk raises."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
