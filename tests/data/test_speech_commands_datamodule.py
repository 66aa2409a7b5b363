"""Tests for ``SpeechCommandsDataModule`` on tiny fake Speech Commands trees and the real 300-clip sample."""

from __future__ import annotations

import logging
import os
import pickle
import tarfile
import urllib.error
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import RandomSampler, SequentialSampler

import src.data.speech_commands.datamodule as speech_commands
from src.data.base import TaskDataModule
from src.data.common.audio import AudioDecodeError, fit_length, read_clip
from src.data.common.augmentation import WaveformAugmentation
from src.data.common.clip_cache import lengths_file
from src.data.speech_commands.corpus import CORE_WORDS, WORDS
from src.data.speech_commands.datamodule import SpeechCommandsDataModule
from src.data.speech_commands.splits import NOISE_REGIONS, SilenceCut
from tests.conftest import REAL_SAMPLE, requires_real_sample

SAMPLE_RATE = 16000
CLIP_SECONDS = 0.25
CLIP_SAMPLES = 4000
WORD_FREQS = {"yes": 300.0, "no": 500.0, "up": 700.0}
SPEAKERS = ("0a1b2c3d", "1b2c3d4e", "2c3d4e5f", "3d4e5f60")  # speaker 2 -> validation, speaker 3 -> testing
UTTERANCES = 2
V2 = "speech_commands_v0.02"


def _clip(word: str, utterance: int, num_samples: int = 3200) -> np.ndarray:
    """A short PCM-16 tone per word (0.2 s at 16 kHz), slightly different per utterance."""
    t = np.arange(num_samples) / SAMPLE_RATE
    wave = 0.3 * np.sin(2 * np.pi * (WORD_FREQS[word] + 10 * utterance) * t)
    return np.round(wave * 32767).astype(np.int16)


def make_fake_corpus(corpus_dir: Path, words: tuple[str, ...] = tuple(WORD_FREQS)) -> Path:
    """Write a Speech Commands tree: ``<word>/<speaker>_nohash_<n>.wav``, split lists, background noise."""
    val, test = [], []
    for word in words:
        (corpus_dir / word).mkdir(parents=True)
        for speaker_index, speaker in enumerate(SPEAKERS):
            for utterance in range(UTTERANCES):
                name = f"{word}/{speaker}_nohash_{utterance}.wav"
                sf.write(corpus_dir / name, _clip(word, utterance), SAMPLE_RATE, subtype="PCM_16")
                if speaker_index == 2:
                    val.append(name)
                elif speaker_index == 3:
                    test.append(name)
    (corpus_dir / "validation_list.txt").write_text("".join(f"{name}\n" for name in val))
    (corpus_dir / "testing_list.txt").write_text("".join(f"{name}\n" for name in test))
    (corpus_dir / "_background_noise_").mkdir()
    noise = np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE).astype(np.float32)
    sf.write(corpus_dir / "_background_noise_" / "white_noise.wav", noise, SAMPLE_RATE)
    return corpus_dir


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A fake v0.02 corpus under ``tmp_path/data``; returns the corpus folder."""
    return make_fake_corpus(tmp_path / "data" / "SpeechCommands" / V2)


def make_dm(root: Path, **kwargs: object) -> SpeechCommandsDataModule:
    options: dict[str, object] = {
        "corpus": "speechcommands",
        "sample_rate": SAMPLE_RATE,
        "clip_seconds": CLIP_SECONDS,
        "batch_size": 5,
    }
    options.update(kwargs)
    return SpeechCommandsDataModule(str(root), **options)


def root_of(corpus_dir: Path) -> Path:
    return corpus_dir.parent.parent


def test_properties_available_before_setup(tmp_path: Path) -> None:
    dm = SpeechCommandsDataModule(str(tmp_path / "nowhere"), words=["no", "yes", "up"], clip_seconds=0.5)
    assert isinstance(dm, TaskDataModule)
    assert dm.num_classes == 3
    assert dm.class_names == ["no", "yes", "up"] == dm.label_names
    assert dm.clip_samples == 8000 == dm.example_samples
    assert dm.sample_rate == 16000
    assert dm.cache_dir == tmp_path / "nowhere" / ".cache"


def test_splits_follow_lists_and_labels_follow_words_order(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = make_dm(root_of(corpus), words=["no", "yes"])
    dm.prepare_data()
    with caplog.at_level(logging.INFO, logger="src.data.speech_commands.datamodule"):
        dm.setup()

    val_list = set((corpus / "validation_list.txt").read_text().split())
    test_list = set((corpus / "testing_list.txt").read_text().split())
    expected = {
        split: sorted(
            f"{word}/{speaker}_nohash_{u}.wav"
            for word in ("yes", "no")
            for speaker in speakers
            for u in range(UTTERANCES)
        )
        for split, speakers in {"train": SPEAKERS[:2], "val": SPEAKERS[2:3], "test": SPEAKERS[3:]}.items()
    }
    for split in ("train", "val", "test"):
        assert dm.files(split) == expected[split]
    assert not set(dm.files("train")) & (val_list | test_list)
    assert set(dm.files("val")) == {name for name in val_list if not name.startswith("up/")}

    for split in ("train", "val", "test"):
        dataset = dm._datasets[split]
        assert dataset.files == dm.files(split)
        assert dataset.labels == [0 if name.startswith("no/") else 1 for name in dataset.files]
    assert "train split: 8 clips (no=4, yes=4)" in caplog.text
    assert "test split: 4 clips (no=2, yes=2)" in caplog.text


def test_batches_have_fixed_length_and_match_decoded_files(corpus: Path) -> None:
    dm = make_dm(root_of(corpus))
    dm.setup("fit")

    waves, lengths, labels = next(iter(dm.train_dataloader()))
    assert waves.shape == (5, CLIP_SAMPLES)
    assert waves.dtype == torch.float32
    assert lengths.tolist() == [3200] * 5  # 0.2 s clips, padded to 0.25 s
    assert labels.shape == (5,)
    assert labels.dtype == torch.int64
    assert waves.abs().max() <= 1.0

    val = dm._datasets["val"]
    for index, name in enumerate(val.files):
        wave, length, label = val[index]
        assert length == 3200
        expected = fit_length(read_clip(corpus / name, SAMPLE_RATE), CLIP_SAMPLES)
        torch.testing.assert_close(wave, expected, rtol=0, atol=0)
        assert label == ["yes", "no"].index(name.split("/")[0])
        assert torch.all(wave[3200:] == 0)  # 0.2 s clips zero-padded to 0.25 s
    assert sum(len(batch[2]) for batch in dm.val_dataloader()) == len(val) == 4


def test_truncates_clips_longer_than_clip_seconds(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    dm = make_dm(root_of(corpus), clip_seconds=0.1)
    with caplog.at_level(logging.WARNING):
        dm.setup("test")

    wave, length, _ = dm._datasets["test"][0]
    assert wave.shape == (1600,)
    assert length == 1600
    torch.testing.assert_close(wave, read_clip(corpus / dm.files("test")[0], SAMPLE_RATE)[:1600])
    assert "truncated 4 clips longer than 1600 samples" in caplog.text


def test_dataloader_settings(corpus: Path) -> None:
    dm = make_dm(root_of(corpus), num_workers=1)
    dm.setup()
    train, val, test = dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()
    assert isinstance(train.sampler, RandomSampler)
    assert isinstance(val.sampler, SequentialSampler)
    assert isinstance(test.sampler, SequentialSampler)
    # Workers start afresh each epoch, so a resumed run draws what the uninterrupted one drew.
    assert all(not loader.persistent_workers and not loader.drop_last for loader in (train, val, test))
    in_process = make_dm(root_of(corpus))
    in_process.setup("fit")
    assert not in_process.train_dataloader().persistent_workers
    with pytest.raises(RuntimeError, match="not set up"):
        make_dm(root_of(corpus)).train_dataloader()


def test_dataset_pickles_without_the_array(corpus: Path) -> None:
    dm = make_dm(root_of(corpus))
    dm.setup("fit")
    dataset = dm._datasets["train"]
    first = dataset[0][0]  # opens the memmap
    pickled = pickle.dumps(dataset)
    assert len(pickled) < np.load(dataset.cache_file, mmap_mode="r").nbytes / 10
    torch.testing.assert_close(pickle.loads(pickled)[0][0], first)


def test_cache_is_reused_without_decoding(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_dm(root_of(corpus))
    first.setup()
    cache_files = sorted(first.cache_dir.glob("*[0-9a-f].npy"))
    assert [path.name.split("-")[1] for path in cache_files] == ["test", "train", "val"]
    assert all(lengths_file(path).is_file() for path in cache_files)
    assert np.load(cache_files[0], mmap_mode="r").dtype == np.int16
    assert not list(first.cache_dir.glob("*.tmp"))

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded a clip although the cache is valid")

    monkeypatch.setattr(speech_commands, "read_clip", no_decoding)
    monkeypatch.setattr(sf, "read", no_decoding)
    second = make_dm(root_of(corpus))
    second.setup()
    for split in ("train", "val", "test"):
        assert second.files(split) == first.files(split)
        for index in range(len(second._datasets[split])):
            torch.testing.assert_close(second._datasets[split][index], first._datasets[split][index])
    assert sorted(second.cache_dir.glob("*[0-9a-f].npy")) == cache_files


def test_changed_corpus_or_settings_invalidate_cache(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_dm(root_of(corpus))
    first.setup("test")
    name = first.files("test")[0]
    old_wave = first._datasets["test"][0][0]

    sf.write(corpus / name, np.full(3200, 1000, np.int16), SAMPLE_RATE, subtype="PCM_16")
    stat = os.stat(corpus / name)
    os.utime(corpus / name, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    decoded: list[Path] = []

    def counting_read_clip(path: Path, *args: object, **kwargs: object) -> torch.Tensor:
        decoded.append(Path(path))
        return read_clip(path, *args, **kwargs)

    monkeypatch.setattr(speech_commands, "read_clip", counting_read_clip)
    second = make_dm(root_of(corpus))
    second.setup("test")
    assert len(decoded) == len(second.files("test"))
    new_wave = second._datasets["test"][0][0]
    assert not torch.equal(new_wave, old_wave)
    torch.testing.assert_close(new_wave[:3200], torch.full((3200,), 1000 / 32768))
    assert len(list(second.cache_dir.glob("speech_commands-test-*[0-9a-f].npy"))) == 2

    decoded.clear()
    make_dm(root_of(corpus), clip_seconds=0.3).setup("test")
    assert len(decoded) == len(second.files("test"))


def test_resamples_and_mixes_down_in_corpus(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    dm = make_dm(root_of(corpus))
    names = [f"yes/{SPEAKERS[3]}_nohash_0.wav", f"no/{SPEAKERS[3]}_nohash_0.wav"]
    narrow = np.full(1600, 0.25, np.float32)  # 0.2 s at 8 kHz
    sf.write(corpus / names[0], narrow, 8000, subtype="FLOAT")
    stereo = np.stack([np.full(3200, 0.5, np.float32), np.full(3200, -0.25, np.float32)], axis=1)
    sf.write(corpus / names[1], stereo, SAMPLE_RATE, subtype="FLOAT")

    with caplog.at_level(logging.WARNING):
        dm.setup("test")

    test = dm._datasets["test"]
    resampled = test[test.files.index(names[0])][0]
    assert resampled.shape == (CLIP_SAMPLES,)
    assert resampled[100:3000].sub(0.25).abs().max() < 1e-3  # 3200 resampled samples, away from the edges
    assert torch.all(resampled[3200:] == 0)
    mixed = test[test.files.index(names[1])][0]
    torch.testing.assert_close(mixed[:3200], torch.full((3200,), 0.125), rtol=0, atol=1 / 32768)
    assert "resampled 1 clips to 16000 Hz (1 at 8000 Hz)" in caplog.text
    assert "mixed 1 clips down to mono" in caplog.text


def test_generated_corpus_calls_generator_with_kwargs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, dict[str, object]]] = []

    def fake_ensure_generated_corpus(root: str | Path, **kwargs: object) -> Path:
        calls.append((Path(root), kwargs))
        corpus_dir = Path(root) / "SpeechCommands" / V2
        if not corpus_dir.exists():
            make_fake_corpus(corpus_dir, words=("yes", "no"))
        return corpus_dir

    monkeypatch.setattr(speech_commands, "ensure_generated_corpus", fake_ensure_generated_corpus)
    root = tmp_path / "generated"
    dm = make_dm(root, corpus="generated", generator={"num_speakers": 4, "seed": 3})

    with pytest.raises(FileNotFoundError, match="prepare_data"):
        dm.setup()
    dm.prepare_data()
    dm.setup()

    assert calls == [(root, {"num_speakers": 4, "seed": 3})]
    assert len(dm.files("train")) == 8
    with pytest.raises(ValueError, match=r"data\.version=speech_commands_v0\.02"):
        make_dm(root, corpus="generated", version="speech_commands_v0.01").prepare_data()


def serve_as_download(source: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make torchaudio's Speech Commands download write a tarball of ``source`` instead of fetching it;
    returns the list the downloaded URLs are appended to."""
    downloads: list[str] = []

    def fake_download(url: str, archive: str, hash_prefix: str | None = None) -> None:
        downloads.append(url)
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(source.rglob("*")):
                tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)

    monkeypatch.setattr("torchaudio.datasets.speechcommands.download_url_to_file", fake_download)
    return downloads


def test_download_runs_torchaudio_download_in_prepare_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_fake_corpus(tmp_path / "tarball_contents", words=("yes", "no"))
    downloads = serve_as_download(source, monkeypatch)
    root = tmp_path / "fresh"
    dm = make_dm(root, download=True)
    dm.prepare_data()
    dm.prepare_data()  # the corpus is there now: no second download
    dm.setup()

    assert downloads == ["http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"]
    assert len(dm.files("val")) == len(dm.files("test")) == 4


def test_failed_download_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline_download(url: str, archive: str, hash_prefix: str | None = None) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr("torchaudio.datasets.speechcommands.download_url_to_file", offline_download)
    with pytest.raises(
        RuntimeError, match=r"Downloading speech_commands_v0\.02 .* failed .*data\.corpus=generated"
    ):
        make_dm(tmp_path / "offline", download=True).prepare_data()


def test_invalid_config_values_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.corpus.*'librispeech'"):
        SpeechCommandsDataModule(str(tmp_path), corpus="librispeech")
    with pytest.raises(ValueError, match=r"data\.version"):
        SpeechCommandsDataModule(str(tmp_path), version="speech_commands_v0.03")
    with pytest.raises(ValueError, match=r"data\.words"):
        SpeechCommandsDataModule(str(tmp_path), words="yes")
    with pytest.raises(ValueError, match=r"data\.words"):
        SpeechCommandsDataModule(str(tmp_path), words=["yes", "yes"])
    with pytest.raises(ValueError, match=r"data\.words: True is a bool.*quote"):
        SpeechCommandsDataModule(str(tmp_path), words=OmegaConf.create("words: [yes, 'no']").words)
    with pytest.raises(ValueError, match=r"data\.clip_seconds"):
        SpeechCommandsDataModule(str(tmp_path), clip_seconds=0.0)


def test_missing_root_names_it_and_the_fixes(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_root"
    dm = make_dm(missing)
    with pytest.raises(FileNotFoundError, match="no_such_root") as err:
        dm.prepare_data()
    for hint in ("data.download=true", "data.root", "data.corpus=generated", "does not exist"):
        assert hint in str(err.value)
    with pytest.raises(FileNotFoundError, match="no_such_root"):
        dm.setup()


def test_missing_version_folder_names_it(corpus: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"SpeechCommands/speech_commands_v0\.01.*data\.download=true"
    ):
        make_dm(root_of(corpus), version="speech_commands_v0.01").prepare_data()


@pytest.mark.parametrize("list_name", ["validation_list.txt", "testing_list.txt"])
def test_missing_list_file_names_it(corpus: Path, list_name: str) -> None:
    (corpus / list_name).unlink()
    with pytest.raises(FileNotFoundError, match=list_name.replace(".", r"\.")):
        make_dm(root_of(corpus)).setup()


def test_list_naming_missing_clip_names_list_and_clip(corpus: Path) -> None:
    with (corpus / "testing_list.txt").open("a") as list_file:
        list_file.write("yes/ffffffff_nohash_7.wav\n")
    with pytest.raises(FileNotFoundError, match=r"testing_list\.txt.*yes/ffffffff_nohash_7\.wav"):
        make_dm(root_of(corpus)).prepare_data()


def test_malformed_list_entry_names_it(corpus: Path) -> None:
    with (corpus / "validation_list.txt").open("a") as list_file:
        list_file.write("yes/no_hash_here.wav\n")
    with pytest.raises(ValueError, match=r"validation_list\.txt line 7.*yes/no_hash_here\.wav"):
        make_dm(root_of(corpus)).setup()


def test_blank_lines_in_lists_are_ignored(corpus: Path) -> None:
    val_list = corpus / "validation_list.txt"
    val_list.write_text("\n" + val_list.read_text() + "\n\n")
    dm = make_dm(root_of(corpus))
    dm.setup("validate")
    assert len(dm.files("val")) == 4


def test_word_without_clips_names_it(corpus: Path) -> None:
    with pytest.raises(ValueError, match=r"'left'.*SpeechCommands/speech_commands_v0\.02/left"):
        make_dm(root_of(corpus), words=["yes", "left"]).setup()


def test_split_without_clips_names_its_list(corpus: Path) -> None:
    (corpus / "validation_list.txt").write_text("")
    with pytest.raises(ValueError, match=r"Split 'val'.*validation_list\.txt"):
        make_dm(root_of(corpus)).setup("validate")


def test_corrupt_clip_names_it(corpus: Path) -> None:
    bad = corpus / "no" / f"{SPEAKERS[0]}_nohash_1.wav"
    bad.write_bytes(b"RIFF....WAVEgarbage")
    dm = make_dm(root_of(corpus))
    with pytest.raises(AudioDecodeError, match=rf"no/{SPEAKERS[0]}_nohash_1\.wav.*corrupt"):
        dm.setup("fit")
    assert not list(dm.cache_dir.glob("*.tmp"))
    assert not list(dm.cache_dir.glob("speech_commands-train-*.npy"))


def test_empty_clip_names_it(corpus: Path) -> None:
    sf.write(corpus / "yes" / f"{SPEAKERS[2]}_nohash_0.wav", np.zeros(0, np.int16), SAMPLE_RATE)
    with pytest.raises(AudioDecodeError, match=rf"yes/{SPEAKERS[2]}_nohash_0\.wav.*empty"):
        make_dm(root_of(corpus)).setup("validate")


@requires_real_sample
def test_real_speech_commands_v001_sample(tmp_path: Path) -> None:
    (tmp_path / "SpeechCommands").mkdir()
    (tmp_path / "SpeechCommands" / "speech_commands_v0.01").symlink_to(REAL_SAMPLE, target_is_directory=True)
    dm = SpeechCommandsDataModule(str(tmp_path), corpus="speechcommands", version="speech_commands_v0.01")
    dm.prepare_data()
    dm.setup()

    for split, list_name in (("val", "validation_list.txt"), ("test", "testing_list.txt")):
        listed = [
            line.strip()
            for line in (REAL_SAMPLE / list_name).read_text().splitlines()
            if line.startswith(("yes/", "no/"))
        ]
        assert dm.files(split) == sorted(listed)
    on_disk = {f"{word}/{p.name}" for word in ("yes", "no") for p in (REAL_SAMPLE / word).glob("*.wav")}
    assert set(dm.files("train")) == on_disk - set(dm.files("val")) - set(dm.files("test"))
    waves, _, labels = next(iter(dm.test_dataloader()))
    assert waves.shape == (len(dm.files("test")), 16000)
    assert labels.tolist() == [0 if name.startswith("yes/") else 1 for name in dm.files("test")]
    assert waves.abs().amax(dim=1).min() > 0.01  # real speech, not silence


@pytest.mark.parametrize("task", ["kws10", "kws35"])
def test_multiclass_tasks_have_their_label_sets_and_clips_of_every_word(
    make_config: Callable[..., DictConfig], task: str
) -> None:
    datamodule = instantiate(make_config(f"data={task}").data)
    expected = list(CORE_WORDS[:10]) if task == "kws10" else sorted(WORDS)
    assert datamodule.class_names == expected and datamodule.num_classes == len(expected)
    assert datamodule.label_names == expected and datamodule.example_samples == 16000
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert {name.split("/", 1)[0] for name in datamodule.files("train")} == set(expected)
    # the tiny corpus's 24 speakers leave some rare words out of validation, never other words in
    assert {name.split("/", 1)[0] for name in datamodule.files("val")} <= set(expected)


def _long_noise(corpus: Path, seconds: float = 10.0) -> torch.Tensor:
    """Replace the fake corpus's background noise by one ``seconds`` long recording; returns it."""
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, round(SAMPLE_RATE * seconds)).astype(np.float32)
    sf.write(corpus / "_background_noise_" / "white_noise.wav", noise, SAMPLE_RATE, subtype="FLOAT")
    return torch.from_numpy(noise)


def test_silence_and_unknown_follow_the_reference_rule(corpus: Path) -> None:
    noise = _long_noise(corpus)
    dm = make_dm(root_of(corpus), words=["yes", "no"], silence_percentage=30, unknown_percentage=50)
    assert dm.class_names == ["yes", "no", "_silence_", "_unknown_"] == dm.label_names
    dm.setup()
    lists = {"val": "validation_list.txt", "test": "testing_list.txt"}
    for split, known in (("train", 8), ("val", 4), ("test", 4)):
        dataset = dm._datasets[split]
        by_label = {
            name: [f for f, y in zip(dataset.files, dataset.labels, strict=True) if y == i]
            for i, name in enumerate(dm.class_names)
        }
        assert len(by_label["yes"]) + len(by_label["no"]) == known
        assert len(by_label["_silence_"]) == -(-known * 30 // 100)  # ceil
        assert len(by_label["_unknown_"]) == known * 50 // 100
        assert all(name.startswith("up/") for name in by_label["_unknown_"])
        if split in lists:
            assert set(by_label["_unknown_"]) <= set((corpus / lists[split]).read_text().split())
        low, high = NOISE_REGIONS[split]
        for name in by_label["_silence_"]:
            cut = SilenceCut.parse(name)
            assert cut is not None and cut.recording == "_background_noise_/white_noise.wav"
            assert len(noise) * low <= cut.start <= len(noise) * high - CLIP_SAMPLES
            wave, length, _ = dataset[dataset.files.index(name)]
            assert length == CLIP_SAMPLES
            expected = noise[cut.start : cut.start + CLIP_SAMPLES] * cut.gain
            torch.testing.assert_close(wave, expected, rtol=0, atol=1 / 32768)
    again = make_dm(root_of(corpus), words=["yes", "no"], silence_percentage=30, unknown_percentage=50)
    again.setup()
    assert all(again.files(split) == dm.files(split) for split in ("train", "val", "test"))


def test_too_few_unknown_clips_or_short_noise_fail_with_the_setting_to_change(corpus: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.unknown_percentage"):
        make_dm(root_of(corpus), words=["yes", "no"], unknown_percentage=100).setup("fit")
    with pytest.raises(ValueError, match=r"data\.silence_percentage=0"):  # the fixture's noise is 1 s
        make_dm(root_of(corpus), words=["yes", "no"], silence_percentage=10).setup("fit")
    (corpus / "_background_noise_" / "white_noise.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"_background_noise_ holds no \.wav"):
        make_dm(root_of(corpus), words=["yes", "no"], silence_percentage=10).setup("fit")
    with pytest.raises(ValueError, match="percentage in"):
        make_dm(root_of(corpus), silence_percentage=-1)


def test_official_test_archive_is_the_test_split_when_its_labels_match(corpus: Path) -> None:
    _long_noise(corpus)
    archive = corpus.parent / "speech_commands_test_set_v0.02"
    for label, source in (("yes", "yes"), ("no", "no"), ("_unknown_", "up"), ("_silence_", "yes")):
        (archive / label).mkdir(parents=True)
        sf.write(archive / label / "clip0.wav", _clip(source, 5), SAMPLE_RATE, subtype="PCM_16")
    options = {"words": ["yes", "no"], "silence_percentage": 10, "unknown_percentage": 10}
    dm = make_dm(root_of(corpus), **options)
    dm.setup("test")
    assert dm.uses_official_test_set
    expected = [f"../speech_commands_test_set_v0.02/{label}/clip0.wav" for label in sorted(dm.class_names)]
    assert dm.files("test") == expected
    assert dm._datasets["test"].labels == [dm.class_names.index(label) for label in sorted(dm.class_names)]
    _, length, _ = dm._datasets["test"][0]
    assert length == 3200

    without_silence = make_dm(root_of(corpus), words=["yes", "no"], unknown_percentage=10)
    without_silence.setup("test")
    assert not without_silence.uses_official_test_set
    assert all(not name.startswith("..") for name in without_silence.files("test"))


@pytest.mark.parametrize("task", ["kws10", "kws12", "kws35"])
def test_multiclass_split_sizes_on_the_generated_corpus(
    make_config: Callable[..., DictConfig], task: str
) -> None:
    datamodule = instantiate(make_config(f"data={task}").data)
    datamodule.prepare_data()
    datamodule.setup()
    words = datamodule.class_names[:10] if task != "kws35" else datamodule.class_names
    for split in ("train", "val", "test"):
        labels = [datamodule.class_names[i] for i in datamodule._datasets[split].labels]
        known = sum(label in words for label in labels)
        listed = datamodule.files(split)
        assert len(listed) == len(set(listed)) == len(labels)
        if task == "kws12":
            assert labels.count("_silence_") == labels.count("_unknown_") == -(-known // 10)
        else:
            assert known == len(labels)


@requires_real_sample
def test_kws12_on_the_real_sample_cuts_real_background_noise(tmp_path: Path) -> None:
    (tmp_path / "SpeechCommands").mkdir()
    (tmp_path / "SpeechCommands" / "speech_commands_v0.01").symlink_to(REAL_SAMPLE, target_is_directory=True)
    dm = SpeechCommandsDataModule(
        str(tmp_path),
        corpus="speechcommands",
        version="speech_commands_v0.01",
        words=list(CORE_WORDS[:10]),
        silence_percentage=10,
        unknown_percentage=10,
    )
    dm.prepare_data()
    dm.setup("fit")
    train = dm._datasets["train"]
    silence = [i for i, label in enumerate(train.labels) if dm.class_names[label] == "_silence_"]
    recordings = {SilenceCut.parse(train.files[i]).recording for i in silence}
    assert recordings <= {
        f"_background_noise_/{p.name}" for p in (REAL_SAMPLE / "_background_noise_").glob("*.wav")
    }
    assert len(silence) == -(-sum(label < 10 for label in train.labels) // 10)
    unknown_words = {train.files[i].split("/")[0] for i, label in enumerate(train.labels) if label == 11}
    assert unknown_words and not unknown_words & set(CORE_WORDS[:10])


def test_augmentation_changes_training_batches_only(corpus: Path) -> None:
    _long_noise(corpus)
    augmentation = partial(WaveformAugmentation, noise_prob=1.0, time_shift_ms=20)
    dm = make_dm(root_of(corpus), augmentation=augmentation)
    assert dm.augmentation.sample_rate == SAMPLE_RATE and dm.augmentation.max_shift == 320
    dm.setup()
    noise = dm.augmentation.noise
    assert len(noise) == round(0.8 * 10 * SAMPLE_RATE)  # only the training part of the recording
    batch = next(iter(dm.train_dataloader()))
    for training, changed in ((True, True), (False, False)):
        dm.trainer = SimpleNamespace(training=training)
        waves, _, labels = dm.on_after_batch_transfer(batch, 0)
        assert torch.equal(labels, batch[2])
        assert (not torch.equal(waves, batch[0])) == changed
    dm.trainer = None
    assert dm.on_after_batch_transfer(batch, 0) is batch
    for plain in (make_dm(root_of(corpus)), make_dm(root_of(corpus), augmentation=None)):
        assert isinstance(plain.augmentation, WaveformAugmentation) and not plain.augmentation.enabled
        plain.trainer = SimpleNamespace(training=True)
        assert plain.on_after_batch_transfer(batch, 0) is batch


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("none", {"noise_prob": 0.0, "max_shift": 0}), ("noise", {"noise_prob": 0.8, "max_shift": 0})],
)
def test_the_run_config_hands_its_waveform_augmentation_to_the_data_module(
    make_config: Callable[..., DictConfig], preset: str, expected: dict[str, float]
) -> None:
    # ${augmentation.waveform} is a partial the data module completes with its own sample rate
    config = make_config(f"augmentation={preset}")
    datamodule = instantiate(config.data)
    assert {key: getattr(datamodule.augmentation, key) for key in expected} == expected
    resampled = instantiate(make_config("augmentation=time_shift", "data.sample_rate=8000").data)
    assert resampled.augmentation.sample_rate == 8000 and resampled.augmentation.max_shift == 800


def test_an_unknown_augmentation_key_fails_when_the_data_module_is_built(
    make_config: Callable[..., DictConfig],
) -> None:
    config = make_config("augmentation=noise", "+augmentation.waveform.noise_probability=0.5")
    with pytest.raises(InstantiationException, match="noise_probability"):
        instantiate(config.data)
