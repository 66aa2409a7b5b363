"""The data exploration command on the tiny generated corpus, a hand-made corpus with a clip at another
sample rate and broken files, and the real sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from src.explore import LIST_CAP, explore_corpus, main, resolve_corpus_dir
from tests.conftest import REAL_SAMPLE, requires_real_sample, run_python

OUTPUTS = ("waveforms.png", "durations.png", "class_counts.png", "summary.md", "summary.json")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def corpus_dir(tiny_corpus_root: Path) -> Path:
    return tiny_corpus_root / "SpeechCommands" / "speech_commands_v0.02"


@pytest.fixture(scope="module")
def tiny_summary(tiny_corpus_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The summary of the tiny corpus (given by its root) and the folder the outputs went to."""
    out_dir = tmp_path_factory.mktemp("explore_tiny")
    return explore_corpus(tiny_corpus_root, out_dir, clips_per_class=2, seed=0), out_dir


def write_wav(path: Path, seconds: float, sample_rate: int = 16000, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = round(seconds * sample_rate)
    tone = 0.3 * np.sin(np.linspace(0, 200 * np.pi * seconds, frames, dtype=np.float32))
    sf.write(path, np.repeat(tone[:, None], channels, axis=1), sample_rate, subtype="PCM_16")


@pytest.fixture
def odd_corpus(tmp_path: Path) -> Path:
    """yes: 3 clips at 16 kHz (one of 0.5 s), 1 at 8 kHz; no: 2 clips, 1 corrupt, 1 with no frames;
    lists naming one val and one test clip and a clip that does not exist; one noise file of 3 s."""
    corpus = tmp_path / "odd_corpus"
    for n in range(3):
        write_wav(corpus / "yes" / f"a{n}_nohash_0.wav", 0.5 if n == 0 else 1.0)
    write_wav(corpus / "yes" / "b_nohash_0.wav", 1.0, sample_rate=8000)
    write_wav(corpus / "no" / "a0_nohash_0.wav", 1.0)
    write_wav(corpus / "no" / "a1_nohash_0.wav", 1.0)
    (corpus / "no" / "c_nohash_0.wav").write_bytes(b"this is not a wav file" * 10)
    write_wav(corpus / "no" / "d_nohash_0.wav", 0.0)
    write_wav(corpus / "_background_noise_" / "hum.wav", 3.0)
    (corpus / "validation_list.txt").write_text("yes/a1_nohash_0.wav\nno/gone_nohash_0.wav\n")
    (corpus / "testing_list.txt").write_text("no/a0_nohash_0.wav\n\n")
    return corpus


def expected_split_counts(corpus_dir: Path) -> dict[str, dict[str, int]]:
    """Class -> split -> clips, straight from the list files and the word folders."""
    listed = {
        split: set((corpus_dir / name).read_text().split())
        for split, name in (("val", "validation_list.txt"), ("test", "testing_list.txt"))
    }
    counts: dict[str, dict[str, int]] = {}
    for word_dir in sorted(p for p in corpus_dir.iterdir() if p.is_dir() and not p.name.startswith("_")):
        clips = {f"{word_dir.name}/{p.name}" for p in word_dir.glob("*.wav")}
        val, test = len(clips & listed["val"]), len(clips & listed["test"])
        counts[word_dir.name] = {"train": len(clips) - val - test, "val": val, "test": test}
    return counts


def test_split_counts_match_the_list_files(tiny_summary: tuple[dict, Path], corpus_dir: Path) -> None:
    summary, _ = tiny_summary
    expected = expected_split_counts(corpus_dir)
    assert summary["split_counts"] == expected
    assert summary["classes"] == sorted(expected)
    assert summary["split_totals"]["val"] == len((corpus_dir / "validation_list.txt").read_text().split())
    assert summary["split_totals"]["test"] == len((corpus_dir / "testing_list.txt").read_text().split())
    assert summary["corpus_dir"] == str(corpus_dir.resolve())


def test_summary_numbers_match_the_files(tiny_summary: tuple[dict, Path], corpus_dir: Path) -> None:
    summary, out_dir = tiny_summary
    clips = sorted(p for p in corpus_dir.glob("*/*.wav") if p.parent.name != "_background_noise_")
    infos = [sf.info(p) for p in clips]
    durations = np.array([info.frames / info.samplerate for info in infos])
    assert summary["num_clips"] == summary["num_readable_clips"] == len(clips)
    assert summary["sample_rates"] == {"16000": len(clips)}
    assert summary["channels"] == {"1": len(clips)}
    assert summary["differing_format"] == {"count": 0, "first": []}
    assert summary["unreadable"]["count"] == 0
    stats = summary["durations_s"]
    assert stats["shorter_than_1s"] == int((durations < 1).sum()) > 0
    assert stats["exactly_1s"] == int((durations == 1).sum())
    assert stats["longer_than_1s"] == 0
    assert stats["min"] == pytest.approx(durations.min())
    assert stats["median"] == pytest.approx(np.median(durations))
    noise = sorted(corpus_dir.glob("_background_noise_/*.wav"))
    assert [n["file"] for n in summary["background_noise"]] == [p.name for p in noise]
    assert all(
        n["duration_s"] == pytest.approx(sf.info(p).duration)
        for n, p in zip(summary["background_noise"], noise, strict=True)
    )

    assert json.loads((out_dir / "summary.json").read_text()) == summary
    for name in OUTPUTS[:3]:
        assert (out_dir / name).read_bytes()[:8] == PNG_SIGNATURE, name
    markdown = (out_dir / "summary.md").read_text()
    totals = summary["split_totals"]
    assert f"| **all** | {totals['train']} | {totals['val']} | {totals['test']} | {len(clips)} |" in markdown
    assert f"{stats['shorter_than_1s']} clips shorter than 1 s" in markdown
    assert all(f"| {n['file']} |" in markdown for n in summary["background_noise"])


def test_waveform_clips_are_seeded_draws_from_each_class(
    tiny_summary: tuple[dict, Path], tiny_corpus_root: Path, tmp_path: Path
) -> None:
    summary, out_dir = tiny_summary
    chosen = summary["waveform_clips"]
    assert sorted(chosen) == summary["classes"]
    for word, paths in chosen.items():
        assert len(paths) == min(2, sum(summary["split_counts"][word].values()))
        assert all(path.startswith(f"{word}/") for path in paths)
    again = explore_corpus(tiny_corpus_root, tmp_path / "again", clips_per_class=2, seed=0)
    assert again["waveform_clips"] == chosen
    assert (tmp_path / "again" / "waveforms.png").read_bytes() == (out_dir / "waveforms.png").read_bytes()
    other_seed = explore_corpus(tiny_corpus_root, tmp_path / "other", clips_per_class=2, seed=1)
    assert other_seed["waveform_clips"] != chosen


def test_other_formats_and_broken_files_are_reported(odd_corpus: Path, tmp_path: Path) -> None:
    summary = explore_corpus(odd_corpus, tmp_path / "out")
    assert summary["num_clips"] == 8
    assert summary["num_readable_clips"] == 6
    assert summary["split_counts"] == {
        "no": {"train": 3, "val": 0, "test": 1},
        "yes": {"train": 3, "val": 1, "test": 0},
    }
    assert summary["sample_rates"] == {"8000": 1, "16000": 5}
    assert summary["majority_format"] == {"sample_rate": 16000, "channels": 1}
    assert summary["differing_format"] == {
        "count": 1,
        "first": [{"path": "yes/b_nohash_0.wav", "sample_rate": 8000, "channels": 1}],
    }
    reasons = {item["path"]: item["reason"] for item in summary["unreadable"]["first"]}
    assert set(reasons) == {"no/c_nohash_0.wav", "no/d_nohash_0.wav"}
    assert reasons["no/c_nohash_0.wav"].startswith("not readable audio")
    assert reasons["no/d_nohash_0.wav"] == "empty (0 frames)"
    assert summary["listed_but_missing"] == {"count": 1, "first": ["no/gone_nohash_0.wav"]}
    assert summary["durations_s"]["shorter_than_1s"] == 1
    assert summary["durations_s"]["min"] == pytest.approx(0.5)
    assert summary["background_noise"] == [
        {"file": "hum.wav", "duration_s": pytest.approx(3.0), "sample_rate": 16000, "channels": 1}
    ]
    assert summary["waveform_clips"]["no"] == ["no/a0_nohash_0.wav", "no/a1_nohash_0.wav"]
    assert len(summary["waveform_clips"]["yes"]) == 3

    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "`yes/b_nohash_0.wav`: 8000 Hz, 1 channel(s)" in markdown
    assert "`no/c_nohash_0.wav`: not readable audio" in markdown
    assert "`no/d_nohash_0.wav`: empty (0 frames)" in markdown
    assert "`no/gone_nohash_0.wav`" in markdown


def test_a_corpus_of_unreadable_clips_still_gets_a_summary(tmp_path: Path) -> None:
    (tmp_path / "corpus" / "yes").mkdir(parents=True)
    (tmp_path / "corpus" / "yes" / "a_nohash_0.wav").write_bytes(b"RIFF")
    summary = explore_corpus(tmp_path / "corpus", tmp_path / "out")
    assert summary["num_clips"] == summary["unreadable"]["count"] == 1
    assert summary["num_readable_clips"] == 0
    assert summary["durations_s"] is None and summary["majority_format"] is None
    assert summary["waveform_clips"] == {}
    assert summary["missing_list_files"] == ["testing_list.txt", "validation_list.txt"]
    assert summary["split_counts"] == {"yes": {"train": 1, "val": 0, "test": 0}}
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "No readable clips." in markdown
    assert "- validation_list.txt is missing: read as empty" in markdown
    assert all((tmp_path / "out" / name).is_file() for name in OUTPUTS)


def test_long_lists_are_capped_with_their_count(odd_corpus: Path, tmp_path: Path) -> None:
    for n in range(LIST_CAP + 5):
        (odd_corpus / "no" / f"z{n:02d}_nohash_0.wav").write_bytes(b"")
    summary = explore_corpus(odd_corpus, tmp_path / "out")
    assert summary["unreadable"]["count"] == LIST_CAP + 7
    assert len(summary["unreadable"]["first"]) == LIST_CAP
    assert "  - ... and 7 more" in (tmp_path / "out" / "summary.md").read_text()


def test_corpus_folder_is_resolved_from_a_root(
    tiny_corpus_root: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    assert resolve_corpus_dir(tiny_corpus_root) == corpus_dir.resolve()
    assert resolve_corpus_dir(corpus_dir) == corpus_dir.resolve()
    for version in ("speech_commands_v0.01", "speech_commands_v0.02"):
        write_wav(tmp_path / "SpeechCommands" / version / "yes" / "a_nohash_0.wav", 1.0)
    with pytest.raises(ValueError, match=r"several corpora.*speech_commands_v0.01, speech_commands_v0.02"):
        resolve_corpus_dir(tmp_path)


def test_missing_or_wrong_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"Corpus folder {tmp_path / 'absent'} does not exist"):
        explore_corpus(tmp_path / "absent", tmp_path / "out")
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"neither a corpus folder .* nor a root holding SpeechCommands"):
        explore_corpus(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_command_line_writes_its_outputs(tiny_corpus_root: Path, corpus_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "cli"
    args = ("-m", "src.explore", str(tiny_corpus_root), "--out", str(out_dir), "--clips-per-class", "1")
    result = run_python(*args, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"corpus folder: {corpus_dir.resolve()} (found in {tiny_corpus_root})" in result.stdout
    assert all((out_dir / name).is_file() for name in OUTPUTS)
    summary: dict[str, Any] = json.loads((out_dir / "summary.json").read_text())
    assert summary["clips_per_class"] == 1
    assert all(len(paths) == 1 for paths in summary["waveform_clips"].values())

    missing = run_python("-m", "src.explore", str(tmp_path / "absent"), timeout=60)
    assert missing.returncode == 2
    assert f"Corpus folder {tmp_path / 'absent'} does not exist" in missing.stderr


def test_default_output_folder_is_named_after_the_corpus(
    odd_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(odd_corpus), "--seed", "3"]) == 0
    out_dir = tmp_path / "data" / "exploration" / "odd_corpus"
    assert all((out_dir / name).is_file() for name in OUTPUTS)
    assert json.loads((out_dir / "summary.json").read_text())["seed"] == 3
    assert "(2 unreadable files, 1 clips differ from the majority format)" in capsys.readouterr().out
    assert main([str(odd_corpus), "--clips-per-class", "0"]) == 2


@requires_real_sample
def test_real_sample_has_30_words_and_6_noise_files(tmp_path: Path) -> None:
    summary = explore_corpus(REAL_SAMPLE, tmp_path)
    assert len(summary["classes"]) == 30
    assert summary["num_clips"] == summary["num_readable_clips"] == 300
    assert len(summary["background_noise"]) == 6
    assert all(noise["duration_s"] >= 60 for noise in summary["background_noise"])
    assert summary["split_counts"] == expected_split_counts(REAL_SAMPLE)
    assert summary["sample_rates"] == {"16000": 300}
    assert summary["unreadable"]["count"] == summary["listed_but_missing"]["count"] == 0
