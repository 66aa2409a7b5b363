"""TIMIT at the data boundary (issue 12, items 9-12): audio that is not what its header or its
transcription says, odd but usable utterances, damaged caches, a full disk and a read-only cache folder,
and transcription files with bad lines. Each case is an error naming the file and the fix, or a warning
with counts."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from src.data.timit import split_cache
from src.data.timit.audio import TimitAudioError, header_sample_count
from src.data.timit.datamodule import TimitDataModule
from src.data.timit.reader import TimitTranscriptionError, read_phones
from tests.conftest import TINY_TIMIT_SPEAKERS
from tests.data.test_timit import write_timit_wav

HALF_SECOND = 8000


@pytest.fixture
def corpus(tiny_timit_root: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny generated corpus: ``<tmp_path>/TIMIT``, cache in ``<tmp_path>/.cache``."""
    shutil.copytree(tiny_timit_root / "TIMIT", tmp_path / "TIMIT")
    return tmp_path


def datamodule(root: Path, **kwargs) -> TimitDataModule:
    module = TimitDataModule(root, generator=TINY_TIMIT_SPEAKERS, **kwargs)
    module.prepare_data()
    return module


def first_training_wav(root: Path) -> Path:
    return sorted((root / "TIMIT" / "TRAIN").glob("DR*/*/SI*.WAV"))[0]


def first_val_wave(root: Path) -> torch.Tensor:
    module = datamodule(root)
    module.setup("validate")
    return module.val_dataloader().dataset[0][0]


# --- audio that is not what its header says ---------------------------------------------------------


def test_header_sample_counts_of_nist_and_riff_files(tmp_path: Path) -> None:
    samples = np.arange(500, dtype=np.int16)
    write_timit_wav(tmp_path / "timit.wav", samples)  # TIMIT's own header: sample_count -i 500
    soundfile.write(tmp_path / "nist.wav", samples, 16000, format="NIST", subtype="PCM_16")
    soundfile.write(tmp_path / "riff.wav", samples, 16000, format="WAV", subtype="PCM_16")
    soundfile.write(tmp_path / "flac.flac", samples, 16000)
    assert [header_sample_count(tmp_path / n) for n in ("timit.wav", "nist.wav", "riff.wav")] == [500] * 3
    assert header_sample_count(tmp_path / "flac.flac") is None
    streamed = bytearray((tmp_path / "riff.wav").read_bytes())
    streamed[40:44] = struct.pack("<I", 0xFFFFFFFF)  # data size "unknown", as a stream writer leaves it
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert header_sample_count(tmp_path / "streamed.wav") is None


def truncate_nist(wav: Path) -> None:
    """Keep TIMIT's header (it still promises the whole utterance) and the first 500 samples."""
    samples, _ = soundfile.read(wav, dtype="int16")
    header = wav.read_bytes()[:1024].replace(
        b"end_head", f"sample_count -i {len(samples)}\nend_head".encode()
    )
    wav.write_bytes(header[:1024] + samples[:500].astype("<i2").tobytes())


def truncate_riff(wav: Path) -> None:
    samples, _ = soundfile.read(wav, dtype="int16")
    riff = wav.with_suffix(".riff")
    soundfile.write(riff, samples, 16000, format="WAV", subtype="PCM_16")
    wav.write_bytes(riff.read_bytes()[: 44 + 1000])  # the data chunk still declares every sample
    riff.unlink()


@pytest.mark.parametrize("truncate", [truncate_nist, truncate_riff], ids=["NIST", "RIFF"])
def test_a_wav_holding_fewer_samples_than_its_header_promises_is_an_error_naming_it(
    corpus: Path, truncate
) -> None:
    wav = first_training_wav(corpus)
    promised = soundfile.info(wav).frames
    truncate(wav)
    assert soundfile.info(wav).frames == 500  # libsndfile alone counts what is there
    with pytest.raises(
        TimitAudioError, match=rf"{wav.name} is truncated: its header promises {promised} samples"
    ):
        datamodule(corpus).setup("fit")
    assert not list((corpus / ".cache").glob("*.npy*tmp"))


def test_a_near_empty_wav_with_its_transcription_is_an_error_naming_both(corpus: Path) -> None:
    wav = first_training_wav(corpus)
    samples, _ = soundfile.read(wav, dtype="int16")
    soundfile.write(wav, samples[:10], 16000, format="NIST", subtype="PCM_16")
    with pytest.raises(
        TimitTranscriptionError,
        match=rf"{wav.stem}.PHN runs to sample \d+ .*{wav.name} holds only 10 samples .*truncated",
    ):
        datamodule(corpus).setup("fit")


def test_near_empty_and_silent_utterances_that_match_their_transcriptions_are_counted_in_warnings(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wavs = sorted((corpus / "TIMIT" / "TRAIN").glob("DR*/*/S[IX]*.WAV"))
    for wav in wavs[:2]:  # 10 samples, and a transcription of 10 samples
        soundfile.write(wav, np.full(10, 300, np.int16), 16000, format="NIST", subtype="PCM_16")
        wav.with_suffix(".PHN").write_text("0 10 h#\n")
    silent = wavs[2]
    length = soundfile.info(silent).frames
    soundfile.write(silent, np.zeros(length, np.int16), 16000, format="NIST", subtype="PCM_16")
    with caplog.at_level(logging.WARNING, logger="src.data.timit.datamodule"):
        module = datamodule(corpus)
        module.setup("fit")
    messages = [r.getMessage() for r in caplog.records]
    assert any("2 of 16 utterances are shorter than 0.5 s" in m and "10 samples" in m for m in messages)
    assert any("1 of 16 utterances are digital silence" in m and silent.name in m for m in messages)
    samples, targets = module.utterance_targets("train")
    assert sorted(samples.tolist())[:2] == [10, 10] and len(targets) == 16
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="src.data.timit.datamodule"):
        datamodule(corpus).setup("fit")  # from the cache: still counted
    assert sum("digital silence" in r.getMessage() for r in caplog.records) == 1


def test_float_wavs_are_read_at_full_scale_and_beyond_it_are_an_error(corpus: Path) -> None:
    wav = sorted((corpus / "TIMIT" / "TEST").glob("DR*/*/S[IX]*.WAV"))[0]
    original = first_val_wave(corpus)
    samples, _ = soundfile.read(wav, dtype="float32")
    soundfile.write(wav, samples, 16000, format="WAV", subtype="FLOAT")
    shutil.rmtree(corpus / ".cache")
    torch.testing.assert_close(first_val_wave(corpus), original, rtol=0, atol=0)  # not silence
    soundfile.write(wav, samples * 201.8 / np.abs(samples).max(), 16000, format="WAV", subtype="FLOAT")
    with pytest.raises(TimitAudioError, match=rf"{wav.name} holds float samples up to 201.8, beyond full"):
        first_val_wave(corpus)


# --- the cache --------------------------------------------------------------------------------------


def cache_files(root: Path, suffix: str) -> list[Path]:
    return sorted((root / ".cache").glob(f"timit-val-*{suffix}"))


def truncate_file(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(b"\x93NUMPY garbage" * 50)


@pytest.mark.parametrize(
    ("suffix", "damage", "reason"),
    [
        (".npy", truncate_file, "it is truncated"),
        (".npy", garbage, "is not a .npy array"),
        (".json", truncate_file, "is not valid JSON"),
        (".json", lambda path: path.write_text('{"offsets": [0]}'), "does not describe 8 utterances"),
    ],
    ids=["truncated-npy", "garbage-npy", "truncated-json", "foreign-json"],
)
def test_a_damaged_cache_is_rebuilt_with_a_warning_naming_the_file(
    corpus: Path, caplog: pytest.LogCaptureFixture, suffix: str, damage, reason: str
) -> None:
    original = first_val_wave(corpus)
    [damaged] = cache_files(corpus, suffix)
    damage(damaged)
    with caplog.at_level(logging.WARNING, logger="src.data.timit.split_cache"):
        rebuilt = first_val_wave(corpus)
    [warning] = [r.getMessage() for r in caplog.records]
    assert str(damaged) in warning and reason in warning and "rebuilding it" in warning
    assert torch.equal(rebuilt, original)
    assert cache_files(corpus, suffix) == [damaged]


def test_a_full_disk_while_writing_the_cache_names_the_folder_and_the_key_and_leaves_no_temporary_files(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(split_cache.os, "write", full_disk)
    with pytest.raises(
        OSError, match=r"Cannot write the decoded TIMIT cache in .*\.cache .*No space left"
    ) as raised:
        datamodule(corpus).setup("validate")
    assert raised.value.errno == errno.ENOSPC and "data.cache_dir" in str(raised.value)
    assert [p.name for p in (corpus / ".cache").iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.undo()
    assert len(first_val_wave(corpus)) > 0  # room again: the next run builds it


def test_temporary_files_of_an_interrupted_build_are_removed_by_the_next(corpus: Path) -> None:
    first_val_wave(corpus)
    [samples_file] = cache_files(corpus, ".npy")
    stale = samples_file.with_name(f"{samples_file.name}.99999.tmp")
    stale.write_bytes(b"half a cache")
    samples_file.unlink()  # killed before the rename
    first_val_wave(corpus)
    assert not stale.exists() and samples_file.is_file()


class ReadOnlyLock:
    """A ``FileLock`` in a folder where nothing can be created."""

    def __init__(self, path: str) -> None:
        self.path = path

    def acquire(self) -> None:
        raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), self.path)

    def release(self) -> None:
        raise AssertionError("never acquired")


def test_a_complete_cache_in_a_read_only_folder_is_used_and_a_missing_one_is_a_clear_error(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = first_val_wave(corpus)
    monkeypatch.setattr(split_cache, "FileLock", ReadOnlyLock)
    assert torch.equal(first_val_wave(corpus), original)
    for path in cache_files(corpus, ""):
        path.unlink()
    with pytest.raises(
        OSError, match=r"Cannot write the decoded TIMIT cache in .*make it writable, or set data.cache_dir"
    ):
        first_val_wave(corpus)


# --- transcriptions ---------------------------------------------------------------------------------


def test_a_byte_order_mark_before_the_first_phn_line_is_ignored(tmp_path: Path) -> None:
    phn = tmp_path / "X.PHN"
    phn.write_bytes(b"\xef\xbb\xbf0 100 h#\r\n100 200 sh\r\n")
    assert [(s.start, s.end, s.label) for s in read_phones(phn)] == [(0, 100, "h#"), (100, 200, "sh")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"0 100 h#\n100 -5 sh\n", r"line 2: '100 -5 sh' is not '<start sample> <end sample> <label>'"),
        (b"0 100 h#\n100 200.5 sh\n", r"line 2: .* is not '<start sample> <end sample> <label>'"),
        (b"0 100 h# extra\n", r"line 1: .* is not '<start sample> <end sample> <label>'"),
        (b"0 100 h#\n50 200 sh\n100 300 iy\n40 50 aa\n", r"line 4: segment 40-50 .* starts before"),
        (b"0 100 h\xe9\n", r"'h.' \(it holds bytes that are not ASCII\) .* not one of the 61 TIMIT phones"),
        (b"\n  \n", r"is empty"),
    ],
    ids=["negative", "fraction", "extra-field", "out-of-order", "non-ascii", "blank"],
)
def test_bad_phn_lines_are_errors_naming_the_file_and_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    phn = tmp_path / "X.PHN"
    phn.write_bytes(content)
    with pytest.raises(TimitTranscriptionError, match=rf"X.PHN.*{message}"):
        read_phones(phn)
