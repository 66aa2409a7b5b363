"""Derived-data cache files that survive full disks, read-only folders, crashes and corruption.

:func:`ensure_cached` is the one way a data module builds a cache: a complete cache is read without
taking a lock or writing anything (so a read-only ``data.root`` works once its cache is built); an
incomplete or damaged one is rebuilt under a file lock into temporary files that are renamed into place,
so no reader ever sees half a file and an interrupted build leaves only temporaries, which the next build
removes. :func:`write_npy` writes ``.npy`` arrays with plain file writes (a memory map of a sparse file
dies with SIGBUS when the disk fills up), and every failure to write names the folder and
``data.cache_dir``, the key that moves it. :func:`npy_problem` says what is wrong with an ``.npy`` file.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock

log = logging.getLogger(__name__)

CACHE_DIR_KEY = "data.cache_dir"
_DEFAULT_NOTE = "(it defaults to <data.root>/.cache)"
_ROOMY_FOLDER = f"set {CACHE_DIR_KEY} to a folder on a disk with room {_DEFAULT_NOTE}"
_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def npy_problem(path: Path, shape: tuple[int, ...], dtype: np.dtype | type) -> str | None:
    """What keeps ``path`` from being a complete C-order ``.npy`` array of ``shape`` and ``dtype``
    (e.g. ``"it is truncated: 1024 bytes instead of 64128"``), or ``None`` when it is one.

    Only the header and the file size are read: a file cut short, a garbage header, another shape or
    dtype are found, bytes overwritten in place are not.
    """
    dtype = np.dtype(dtype)
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            found_shape, fortran_order, found_dtype = read_header(file)
            data_offset = file.tell()
            size = os.fstat(file.fileno()).st_size
    except FileNotFoundError:
        return "it is missing"
    except (OSError, ValueError) as error:  # numpy raises ValueError for a bad magic string or header
        return f"it is not a readable .npy file ({error})"
    if found_dtype != dtype or fortran_order or tuple(found_shape) != tuple(shape):
        return (
            f"it holds {'a Fortran-order' if fortran_order else 'an'} array of {found_dtype} and shape "
            f"{tuple(found_shape)}, expected {dtype} and shape {tuple(shape)}"
        )
    expected = data_offset + math.prod(shape) * dtype.itemsize
    if size != expected:
        return f"it is {'truncated' if size < expected else 'too long'}: {size} bytes instead of {expected}"
    return None


def write_npy(
    path: Path, shape: tuple[int, ...], dtype: np.dtype | type, blocks: Iterable[np.ndarray]
) -> None:
    """Write a C-order ``.npy`` array of ``shape`` and ``dtype`` to ``path`` from ``blocks``, consecutive
    slices along the first axis, with plain file writes: a full disk raises ``OSError`` here.

    Errors raised while ``blocks`` produces a block (e.g. a clip that does not decode) pass unchanged; a
    failing write raises ``OSError`` (same ``errno``) naming the folder and ``data.cache_dir``.

    Raises:
        ValueError: ``blocks`` do not hold exactly ``shape``.
        OSError: the file cannot be written.
    """
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    folder = path.parent
    written = 0
    # Not a `with open(...)`: errors of `blocks` must pass unchanged, and closing can fail too (full disk).
    with storage_errors(folder):
        file = open(path, "wb")  # noqa: SIM115
    try:
        with storage_errors(folder):
            np.lib.format.write_array_header_1_0(file, header)
        for block in blocks:
            data = np.ascontiguousarray(block, dtype=dtype)
            with storage_errors(folder):
                file.write(data.tobytes())
            written += data.size
    finally:
        with storage_errors(folder):
            file.close()
    if written != math.prod(shape):
        raise ValueError(f"{path}: the blocks held {written} values, expected {math.prod(shape)} for {shape}")


def ensure_cached(
    files: Sequence[Path],
    problem: Callable[[], str | None],
    build: Callable[[list[Path]], None],
    needed_bytes: int,
) -> None:
    """Make ``files`` (all in one folder) a complete cache, building it with ``build`` if needed.

    When every file exists and ``problem()`` (what is wrong with them, or ``None``) finds nothing, this
    returns at once without locking or writing. Otherwise, under the file lock ``<files[-1]>.lock``, it
    checks again (another process may have built them meanwhile), removes temporaries left by an
    interrupted build and the files of a damaged cache (with a warning naming what was wrong), calls
    ``build(temporaries)`` (one temporary path per file, to be written by it) and renames the temporaries
    into place in the order of ``files``. Temporaries are removed however the build ends.

    Args:
        files: The cache's files; the last one renamed is ``files[-1]``.
        problem: What is wrong with the existing files (all of which exist when it is called), or ``None``.
        build: Writes the cache into the temporary paths it is given.
        needed_bytes: About how many bytes the files take: a folder with less free space fails at once.

    Raises:
        OSError: the folder cannot be created or written, or lacks space (the message names the folder
            and ``data.cache_dir``).
        RuntimeError: the files just built are not complete (a bug in ``build``).
    """
    found = _cache_problem(files, problem)
    if found is None:
        log.info("Reusing the cache %s", files[-1])
        return
    folder = files[-1].parent
    with storage_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{files[-1]}.lock")
        lock.acquire()
    try:
        found = _cache_problem(files, problem)
        if found is None:
            return
        damaged = [path for path in files if path.exists()]
        if damaged:
            log.warning("Rebuilding a damaged cache: %s", found)
        with storage_errors(folder):
            for path in damaged + _stale_temporaries(files):  # the lock holder's to remove
                path.unlink(missing_ok=True)
        _check_free_space(folder, needed_bytes)
        temporaries = [path.with_name(f"{path.name}.{os.getpid()}.tmp") for path in files]
        try:
            build(temporaries)
            with storage_errors(folder):
                for temporary, path in zip(temporaries, files, strict=True):
                    os.replace(temporary, path)
        finally:
            for temporary in temporaries:
                temporary.unlink(missing_ok=True)
    finally:
        lock.release()
    found = _cache_problem(files, problem)
    if found is not None:
        raise RuntimeError(f"The cache {files[-1]} just built is not complete: {found}")


@contextmanager
def storage_errors(folder: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block as one (same ``errno``, so the same subclass) whose message
    names ``folder``, what is wrong (full, read-only) and ``data.cache_dir``."""
    try:
        yield
    except OSError as error:
        if error.errno in _FULL:
            free = _free_bytes(folder)
            reason = "no space is left on its disk" + ("" if free is None else f" ({free / 1e6:.1f} MB free)")
            advice = f"free space there, or {_ROOMY_FOLDER}"
        elif error.errno in _READ_ONLY:
            reason = f"it is read-only or not writable by this user ({error.strerror})"
            advice = f"set {CACHE_DIR_KEY} to a writable folder {_DEFAULT_NOTE}"
        else:
            reason, advice = str(error), f"set {CACHE_DIR_KEY} to another folder {_DEFAULT_NOTE}"
        raise OSError(
            error.errno, f"Cannot write the data cache in {folder}: {reason}. To fix it, {advice}."
        ) from error


def _cache_problem(files: Sequence[Path], problem: Callable[[], str | None]) -> str | None:
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    return problem()


def _stale_temporaries(files: Sequence[Path]) -> list[Path]:
    """Temporaries of ``files`` left by interrupted builds (killed, or out of power)."""
    stale = [temporary for path in files for temporary in path.parent.glob(f"{path.name}.*.tmp")]
    for temporary in stale:
        log.info("Removing %s, left by an interrupted build", temporary)
    return stale


def _check_free_space(folder: Path, needed_bytes: int) -> None:
    free = _free_bytes(folder)
    if free is not None and free < needed_bytes:
        raise OSError(
            errno.ENOSPC,
            f"Cannot write the data cache in {folder}: it needs {needed_bytes / 1e6:.1f} MB but its disk has "
            f"{free / 1e6:.1f} MB free. To fix it, free space there, or {_ROOMY_FOLDER}.",
        )


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
