"""The synthetic Speech Commands corpus: the real on-disk format, the real split rule, determinism,
reuse and safe concurrent generation."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from filelock import FileLock
from torchaudio.datasets import SPEECHCOMMANDS

from src.data.speech_commands import corpus
from src.data.speech_commands.corpus import WORDS, ensure_generated_corpus, which_set
from tests.conftest import REAL_SAMPLE, requires_real_sample

CLIP_NAME = re.compile(rf"^({'|'.join(WORDS)})/[0-9a-f]{{8}}_nohash_\d+\.wav$")
SMALL = 6  # speakers in the corpora generated here to compare runs


def clips_of(corpus_dir: Path) -> list[str]:
    """Relative paths of all clips (not the background noise), sorted."""
    paths = corpus_dir.glob("*/*.wav")
    return sorted(
        p.relative_to(corpus_dir).as_posix() for p in paths if p.parent.name != "_background_noise_"
    )


def file_bytes(corpus_dir: Path) -> dict[str, bytes]:
    """Every file of the corpus by relative path."""
    return {
        p.relative_to(corpus_dir).as_posix(): p.read_bytes() for p in corpus_dir.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus_dir(tiny_corpus_root: Path) -> Path:
    """The session's tiny corpus (tests/conftest.py), generated with seed 0."""
    return tiny_corpus_root / "SpeechCommands" / "speech_commands_v0.02"


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with a corpus of ``SMALL`` speakers, seed 0, made by 2 workers."""
    root = tmp_path_factory.mktemp("small")
    ensure_generated_corpus(root, num_speakers=SMALL, seed=0, num_workers=2)
    return root


def test_layout_matches_the_real_corpus(corpus_dir: Path) -> None:
    clips = clips_of(corpus_dir)
    assert clips and all(CLIP_NAME.match(clip) for clip in clips), [
        c for c in clips if not CLIP_NAME.match(c)
    ]
    assert {clip.split("/")[0] for clip in clips} == set(WORDS) and len(WORDS) == 35
    expected = {*WORDS, "_background_noise_", "validation_list.txt", "testing_list.txt"}
    assert {p.name for p in corpus_dir.iterdir()} == expected | {"README.md", "generator.json"}
    assert "synthetic" in (corpus_dir / "README.md").read_text().lower()
    manifest = json.loads((corpus_dir / "generator.json").read_text())
    assert manifest["espeakng_loader_version"] == "0.2.4"
    assert sum(manifest["clips"].values()) == len(clips)


def test_clips_are_16khz_mono_int16_of_at_most_a_second(corpus_dir: Path) -> None:
    frames = []
    for clip in clips_of(corpus_dir):
        info = soundfile.info(corpus_dir / clip)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert (corpus_dir / clip).stat().st_size == 44 + 2 * info.frames  # the canonical 44-byte header
        frames.append(info.frames)
    frames = np.array(frames)
    assert frames.max() == 16000 and frames.min() >= 8000
    assert 0.03 < np.mean(frames < 16000) < 0.2  # about 10% are shorter, as in the real data


def test_clips_are_loud_enough_and_not_clipped(corpus_dir: Path) -> None:
    for clip in clips_of(corpus_dir)[::7]:
        samples, _ = soundfile.read(corpus_dir / clip, dtype="int16")
        peak_dbfs = 20 * np.log10(np.abs(samples.astype(np.int32)).max() / 32767)
        assert -24.5 < peak_dbfs < -0.9


def test_split_lists_follow_which_set_and_name_existing_clips(corpus_dir: Path) -> None:
    clips = clips_of(corpus_dir)
    listed = {}
    for split in ("validation", "testing"):
        lines = (corpus_dir / f"{split}_list.txt").read_text().splitlines()
        assert lines == sorted(set(lines))
        assert all((corpus_dir / line).is_file() for line in lines)
        listed[split] = lines
    for split in ("validation", "testing", "training"):
        expected = [clip for clip in clips if which_set(clip, 10, 10) == split]
        if split == "training":
            assert set(clips) - set(listed["validation"]) - set(listed["testing"]) == set(expected)
        else:
            assert listed[split] == expected


def test_torchaudio_reads_the_corpus(corpus_dir: Path, tiny_corpus_root: Path) -> None:
    sizes = {
        subset: len(SPEECHCOMMANDS(tiny_corpus_root, subset=subset)) for subset in ("validation", "testing")
    }
    training = SPEECHCOMMANDS(tiny_corpus_root, subset="training")
    assert len(training) + sum(sizes.values()) == len(clips_of(corpus_dir))
    _, sample_rate, label, speaker_id, utterance = training.get_metadata(0)
    assert sample_rate == 16000 and label in WORDS and re.fullmatch("[0-9a-f]{8}", speaker_id)
    assert utterance >= 0


def test_background_noise_is_a_minute_or_more_of_16khz_mono(corpus_dir: Path) -> None:
    noises = sorted((corpus_dir / "_background_noise_").glob("*.wav"))
    assert [p.name for p in noises] == ["brown_noise.wav", "pink_noise.wav", "white_noise.wav"]
    for noise in noises:
        info = soundfile.info(noise)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames >= 60 * 16000


def test_speakers_are_unique_with_distinct_voices() -> None:
    speakers = corpus.plan_speakers(2000, seed=0)
    assert len({s.speaker_id for s in speakers}) == 2000
    assert all(re.fullmatch("[0-9a-f]{8}", s.speaker_id) for s in speakers)
    assert len({(s.voice, s.pitch, s.pitch_range, s.rate) for s in speakers}) == 2000
    assert len({s.voice.split("+")[0] for s in speakers}) == len(corpus.VOICES)


def test_core_words_are_said_more_often_than_auxiliary_words() -> None:
    plan = corpus.plan_utterances(1000, seed=0)
    speakers_per_word = Counter(word for clips in plan for word in {w for w, _ in clips})
    repeats = Counter((word, n) for clips in plan for word, n in clips)
    for word in corpus.CORE_WORDS:
        assert 0.85 < speakers_per_word[word] / 1000 < 0.95
        assert repeats[word, 2] > 0 and repeats[word, 3] == 0
    for word in corpus.AUXILIARY_WORDS:
        assert 0.35 < speakers_per_word[word] / 1000 < 0.45
        assert repeats[word, 1] > 0 and repeats[word, 2] == 0


def test_every_word_is_said_even_by_few_speakers() -> None:
    plan = corpus.plan_utterances(1, seed=0)
    assert {word for word, _ in plan[0]} == set(WORDS)


@requires_real_sample
def test_which_set_reproduces_the_real_split() -> None:
    clips = clips_of(REAL_SAMPLE)
    assert clips
    for split in ("validation", "testing"):
        real = set((REAL_SAMPLE / f"{split}_list.txt").read_text().split()) & set(clips)
        assert real == {clip for clip in clips if which_set(clip, 10, 10) == split}, split


def test_same_parameters_give_identical_bytes_whatever_the_worker_count(
    small_root: Path, tmp_path: Path
) -> None:
    again = ensure_generated_corpus(tmp_path, num_speakers=SMALL, seed=0, num_workers=1)
    assert file_bytes(again) == file_bytes(small_root / "SpeechCommands" / "speech_commands_v0.02")


def test_another_seed_gives_another_corpus(small_root: Path, tmp_path: Path) -> None:
    other = ensure_generated_corpus(tmp_path, num_speakers=2, seed=1, num_workers=1)
    first = small_root / "SpeechCommands" / "speech_commands_v0.02"
    assert not set(clips_of(other)) & set(clips_of(first))
    noise = "_background_noise_/white_noise.wav"
    assert (other / noise).read_bytes() != (first / noise).read_bytes()


def test_second_call_reuses_the_corpus(small_root: Path) -> None:
    corpus_dir = small_root / "SpeechCommands" / "speech_commands_v0.02"
    before = {p: p.stat().st_mtime_ns for p in corpus_dir.rglob("*")}
    assert ensure_generated_corpus(small_root, num_speakers=SMALL, seed=0, num_workers=1) == corpus_dir
    assert {p: p.stat().st_mtime_ns for p in corpus_dir.rglob("*")} == before


def test_other_parameters_are_a_clear_error(small_root: Path) -> None:
    with pytest.raises(RuntimeError, match=r"num_speakers=6 \(asked for 7\).*delete .*data\.root"):
        ensure_generated_corpus(small_root, num_speakers=7, seed=0)
    with pytest.raises(RuntimeError, match=r"seed=0 \(asked for 3\)"):
        ensure_generated_corpus(small_root, num_speakers=SMALL, seed=3)


def test_a_corpus_not_generated_here_is_refused(tmp_path: Path) -> None:
    (tmp_path / "SpeechCommands" / "speech_commands_v0.02").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="not generated by this project"):
        ensure_generated_corpus(tmp_path, num_speakers=2)


def test_interrupted_generation_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = tmp_path / "SpeechCommands"
    stale = parent / ".speech_commands_v0.02.partial-1"
    stale.mkdir(parents=True)

    def interrupted(partial: Path, *args: object) -> None:
        (partial / "yes").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus, "_generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_generated_corpus(tmp_path, num_speakers=2)
    assert [p.name for p in parent.iterdir() if p.suffix != ".lock"] == []


def test_a_waiting_caller_reuses_what_the_lock_holder_made(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus, "_generate", lambda *args: pytest.fail("generated twice"))
    corpus_dir = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    corpus_dir.parent.mkdir()
    results: list[Path] = []
    with FileLock(f"{corpus_dir}.lock"):
        waiter = threading.Thread(
            target=lambda: results.append(ensure_generated_corpus(tmp_path, num_speakers=SMALL, seed=0))
        )
        waiter.start()
        waiter.join(timeout=0.5)
        assert waiter.is_alive()  # blocked on the lock
        corpus_dir.mkdir()
        manifest = small_root / "SpeechCommands" / "speech_commands_v0.02" / "generator.json"
        (corpus_dir / "generator.json").write_bytes(manifest.read_bytes())
    waiter.join(timeout=10)
    assert results == [corpus_dir]


@requires_real_sample
def test_real_background_noise_is_copied_and_recorded(tmp_path: Path) -> None:
    noise_dir = REAL_SAMPLE / "_background_noise_"
    corpus_dir = ensure_generated_corpus(tmp_path, num_speakers=2, seed=0, noise_dir=noise_dir, num_workers=1)
    copied = sorted((corpus_dir / "_background_noise_").glob("*.wav"))
    assert [p.name for p in copied] == sorted(p.name for p in noise_dir.glob("*.wav"))
    assert all(p.read_bytes() == (noise_dir / p.name).read_bytes() for p in copied)
    manifest = json.loads((corpus_dir / "generator.json").read_text())
    assert manifest["parameters"]["noise_dir"] == str(noise_dir.resolve())
