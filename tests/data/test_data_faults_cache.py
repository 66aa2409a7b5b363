"""The decoded-clip cache under storage faults (issue 12, items 10, 11 and 12): a full disk, a stale
temporary of a killed run, a read-only ``data.root`` and damaged cache files.

Storage faults are simulated in-process (no tmpfs or mount needed): a disk that fills up after a number
of bytes, and a folder in which every attempt to create, write, rename or remove a file fails with EROFS.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

import src.data.speech_commands.datamodule as speech_commands
from src.data.common.clip_cache import lengths_file
from src.data.speech_commands.corpus import ensure_generated_corpus
from src.data.speech_commands.datamodule import SpeechCommandsDataModule
from tests.conftest import TINY_CORPUS_SPEAKERS
from tests.data.test_speech_commands_datamodule import V2, make_dm, make_fake_corpus, root_of

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A fake v0.02 corpus under ``tmp_path/data``; returns the corpus folder."""
    return make_fake_corpus(tmp_path / "data" / "SpeechCommands" / V2)


def _cache_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("speech_commands-*.npy"))


class _FillingFile:
    """A file object whose writes fail with ENOSPC once ``budget`` bytes have been written in total."""

    def __init__(self, file: Any, budget: list[int]) -> None:
        self._file, self._budget = file, budget

    def write(self, data: bytes) -> int:
        if len(data) > self._budget[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget[0] -= len(data)
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


@pytest.fixture
def disk_fills_up(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Files opened for writing under a folder named ``.cache`` hold ``budget[0]`` bytes in all, then
    writing fails with ENOSPC (free space is not reported low, so only the writes find out)."""
    budget = [10_000]
    real_open = builtins.open

    def open_filling(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened = real_open(file, mode, *args, **kwargs)
        if ".cache" in Path(os.fsdecode(file)).parts and any(m in mode for m in "wax+"):
            return _FillingFile(opened, budget)
        return opened

    monkeypatch.setattr(builtins, "open", open_filling)
    yield budget


def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make creating, writing, renaming and removing anything under ``folder`` fail with EROFS, as on a
    read-only mount (chmod does not stop root, which the tests may run as)."""
    folder = folder.resolve()

    def inside(path: Any) -> bool:
        return Path(os.path.abspath(os.fsdecode(path))).is_relative_to(folder)

    def refuse(path: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open, real_os_open = builtins.open, os.open

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | bytes | os.PathLike) and inside(file) and any(m in mode for m in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS and inside(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(os, "open", os_open)
    for name in ("mkdir", "unlink", "remove", "rmdir"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os, name, lambda path, *a, _real=real, **k: refuse(path) if inside(path) else _real(path, *a, **k)
        )
    for name in ("replace", "rename"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os,
            name,
            lambda src, dst, *a, _real=real, **k: (
                refuse(dst) if inside(src) or inside(dst) else _real(src, dst, *a, **k)
            ),
        )


def test_a_full_disk_is_an_oserror_naming_the_folder_and_leaves_nothing_behind(
    corpus: Path, disk_fills_up: list[int]
) -> None:
    dm = make_dm(root_of(corpus))
    with pytest.raises(OSError, match=r"Cannot write the data cache in .*\.cache: no space is left") as err:
        dm.setup("fit")
    assert err.value.errno == errno.ENOSPC
    assert "data.cache_dir" in str(err.value)
    assert not list(dm.cache_dir.glob("*.tmp")) and not _cache_files(dm.cache_dir)

    disk_fills_up[0] = 10**9  # space freed: the next run builds the cache
    again = make_dm(root_of(corpus))
    again.setup("fit")
    assert len(again._datasets["train"]) == 8 and len(_cache_files(dm.cache_dir)) == 4


def test_too_little_free_space_fails_before_decoding(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.disk_usage", lambda path: _Usage())
    monkeypatch.setattr(speech_commands, "read_clip", lambda *a, **k: pytest.fail("decoded with no room"))
    with pytest.raises(
        OSError, match=r"needs [\d.]+ MB but its disk has 0\.0 MB free.*data\.cache_dir"
    ) as err:
        make_dm(root_of(corpus)).setup("test")
    assert err.value.errno == errno.ENOSPC


class _Usage:
    total, used, free = 10**9, 10**9, 1000


def test_a_stale_temporary_of_a_killed_run_is_removed(corpus: Path) -> None:
    dm = make_dm(root_of(corpus))
    dm.setup("test")
    files = _cache_files(dm.cache_dir)
    stale = [path.with_name(f"{path.name}.999999.tmp") for path in files]
    for path, temporary in zip(files, stale, strict=True):
        path.rename(temporary)  # killed after writing, before renaming (SIGKILL, power loss)
    again = make_dm(root_of(corpus))
    again.setup("test")
    assert not any(path.exists() for path in stale)
    assert _cache_files(dm.cache_dir) == files


def test_a_complete_cache_is_read_from_a_read_only_root(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_dm(root_of(corpus))
    first.setup()
    for lock in first.cache_dir.glob("*.lock"):
        lock.unlink()  # a cache copied without its lock files
    _read_only(monkeypatch, root_of(corpus))

    second = make_dm(root_of(corpus))
    second.setup()
    for split in ("train", "val", "test"):
        torch.testing.assert_close(second._datasets[split][0], first._datasets[split][0])
    assert not list(first.cache_dir.glob("*.lock"))


def test_the_generated_corpus_and_its_cache_are_read_from_a_read_only_root(
    tiny_corpus_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"corpus": "generated", "generator": {"num_speakers": TINY_CORPUS_SPEAKERS}}
    first = SpeechCommandsDataModule(str(tiny_corpus_root), **options)
    first.prepare_data()
    first.setup("test")
    _read_only(monkeypatch, tiny_corpus_root)
    second = SpeechCommandsDataModule(str(tiny_corpus_root), **options)
    second.prepare_data()
    second.setup("test")
    assert second.files("test") == first.files("test")


@pytest.mark.parametrize("cache_exists", [False, True])
def test_an_unwritable_cache_dir_names_it_and_data_cache_dir(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, cache_exists: bool
) -> None:
    if cache_exists:
        (root_of(corpus) / ".cache").mkdir()
    _read_only(monkeypatch, root_of(corpus))
    with pytest.raises(OSError, match=r"Cannot write the data cache in .*\.cache: it is read-only") as err:
        make_dm(root_of(corpus)).setup("test")
    assert err.value.errno == errno.EROFS
    assert "set data.cache_dir to a writable folder" in str(err.value)
    elsewhere = make_dm(root_of(corpus), cache_dir=corpus.parents[3] / "writable_cache")
    elsewhere.setup("test")
    assert len(elsewhere._datasets["test"]) == 4


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _wrong_lengths(path: Path) -> None:
    np.save(path, np.full(4, 10**6, np.int64))


def _other_shape(path: Path) -> None:
    np.save(path, np.zeros((4, 10), np.int16))


@pytest.mark.parametrize(
    ("damage", "which", "reason"),
    [
        (_truncate, "waves", "it is truncated: 16064 bytes instead of 32128"),
        (_garbage, "waves", "it is not a readable .npy file (the magic string is not correct"),
        (_truncate, "lengths", "it is not a readable .npy file (EOF: reading array header"),
        (_garbage, "lengths", "it is not a readable .npy file"),
        (_wrong_lengths, "lengths", "it holds clip lengths outside [0, 4000]"),
        (
            _other_shape,
            "waves",
            "it holds an array of int16 and shape (4, 10), expected int16 and shape (4, 4000)",
        ),
    ],
)
def test_a_damaged_cache_file_is_rebuilt_with_a_warning_naming_it(
    corpus: Path, caplog: pytest.LogCaptureFixture, damage: Any, which: str, reason: str
) -> None:
    first = make_dm(root_of(corpus))
    first.setup("test")
    expected = [first._datasets["test"][i] for i in range(4)]
    cache_file = first._datasets["test"].cache_file
    damaged = cache_file if which == "waves" else lengths_file(cache_file)
    damage(damaged)

    with caplog.at_level(logging.WARNING):
        again = make_dm(root_of(corpus))
        again.setup("test")
    assert f"Rebuilding a damaged cache: {damaged}: {reason}" in caplog.text
    for index, item in enumerate(expected):
        torch.testing.assert_close(again._datasets["test"][index], item)


def test_generating_into_a_read_only_root_names_data_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _read_only(monkeypatch, tmp_path)
    with pytest.raises(
        OSError, match=r"Cannot generate the corpus speech_commands_v0\.02 .*set data\.root"
    ) as err:
        ensure_generated_corpus(tmp_path / "data", num_speakers=2)
    assert err.value.errno == errno.EROFS


@pytest.mark.parametrize("data", ["yesno", "kws10", "kws12", "kws35"])
def test_every_keyword_config_moves_the_cache_with_data_cache_dir(
    make_config: Callable[..., DictConfig], tmp_path: Path, data: str
) -> None:
    config = make_config(f"data={data}", f"data.cache_dir={tmp_path / 'elsewhere'}")
    assert instantiate(config.data).cache_dir == tmp_path / "elsewhere"
    assert make_config(f"data={data}").data.cache_dir is None  # the default: <data.root>/.cache
