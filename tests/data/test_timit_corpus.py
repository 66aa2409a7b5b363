"""The synthetic TIMIT-format corpus: layout, consistent .PHN/.WRD/.TXT files, NIST audio, the standard
split rule selecting it, determinism and reuse; and the espeak-ng phoneme events it is built from."""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile

from src.data.synthesis import espeak
from src.data.timit.corpus import ensure_generated_corpus, plan_speakers, read_manifest
from src.data.timit.espeak_alignment import (
    ESPEAK_TO_TIMIT,
    UnknownEspeakPhoneme,
    align,
    timit_phones_of,
    words_of,
)
from src.data.timit.phones import TIMIT_61
from src.data.timit.reader import (
    CORE_TEST_SPEAKERS,
    DEV_SPEAKERS,
    TEST_SPEAKER_REGIONS,
    list_utterances,
    read_phones,
    read_segments,
    read_text,
    standard_splits,
)
from src.data.timit.sentences import DIALECT_SENTENCES

SMALL = {"num_train_speakers": 4, "num_dev_speakers": 3, "num_core_speakers": 2}
TINY = {"num_train_speakers": 2, "num_dev_speakers": 1, "num_core_speakers": 1}
TINY_PLAN = {"num_train": 2, "num_dev": 1, "num_core": 1}
SPEAKER_FOLDER = re.compile(r"^[FM][A-Z]{3}[0-9]$")
UTTERANCE_NAMES = re.compile(r"^(SA[12]|SI[0-9]+|SX[0-9]+)$")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated corpus: 4 TRAIN speakers, 3 development and 2 core test speakers."""
    return ensure_generated_corpus(tmp_path_factory.mktemp("timit_generated"), **SMALL, num_workers=2)


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_layout_is_timits(corpus_dir: Path) -> None:
    assert {p.name for p in corpus_dir.iterdir()} == {"TRAIN", "TEST", "README.md", "generator.json"}
    assert "NOT the TIMIT" in (corpus_dir / "README.md").read_text()
    speakers = defaultdict(set)
    for wav in corpus_dir.glob("*/DR*/*/*.WAV"):
        corpus_set, region, speaker, _ = wav.relative_to(corpus_dir).parts
        assert re.fullmatch(r"DR[1-8]", region) and SPEAKER_FOLDER.match(speaker)
        assert UTTERANCE_NAMES.match(wav.stem)
        assert {wav.with_suffix(s).is_file() for s in (".PHN", ".WRD", ".TXT")} == {True}
        speakers[(corpus_set, int(region[2:]), speaker.lower())].add(wav.stem)
    assert sum(s[0] == "TRAIN" for s in speakers) == 4
    test_speakers = {s[2]: s[1] for s in speakers if s[0] == "TEST"}
    assert len(test_speakers) == 5 and set(test_speakers) <= set(DEV_SPEAKERS) | set(CORE_TEST_SPEAKERS)
    assert len(set(test_speakers) & set(CORE_TEST_SPEAKERS)) == 2
    assert all(TEST_SPEAKER_REGIONS[s] == region for s, region in test_speakers.items())
    for names in speakers.values():
        assert len(names) == 10 and {"SA1", "SA2"} <= names
        assert sum(n.startswith("SI") for n in names) == 3 and sum(n.startswith("SX") for n in names) == 5


def test_standard_split_rule_selects_the_synthetic_speakers(corpus_dir: Path) -> None:
    utterances = list_utterances(corpus_dir)
    splits = standard_splits(utterances)
    assert {k: len(v) for k, v in splits.items()} == {"train": 32, "val": 24, "test": 16}
    assert read_manifest(corpus_dir)["split_sizes"] == {"train": 32, "val": 24, "test": 16}
    assert all(not u.is_dialect_sentence for split in splits.values() for u in split)
    assert {u.speaker for u in splits["val"]} <= set(DEV_SPEAKERS)
    assert {u.speaker for u in splits["test"]} <= set(CORE_TEST_SPEAKERS)


def test_audio_is_nist_sphere_16khz_mono_int16(corpus_dir: Path) -> None:
    for wav in sorted(corpus_dir.rglob("*.WAV"))[:20]:
        info = soundfile.info(wav)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("NIST", "PCM_16", 16000, 1)
        assert wav.read_bytes().startswith(b"NIST_1A\n   1024\n")
        samples, _ = soundfile.read(wav, dtype="int16")
        assert 1.5 < len(samples) / 16000 < 6 and np.abs(samples).max() > 8000


def test_phn_wrd_txt_are_consistent(corpus_dir: Path) -> None:
    seen_phones = set()
    for utterance in list_utterances(corpus_dir):
        wav = corpus_dir / utterance.path
        frames = soundfile.info(wav).frames
        phones = read_phones(wav.with_suffix(".PHN"))  # labels in TIMIT_61
        assert phones[0].start == 0 and phones[-1].end == frames
        assert phones[0].label == phones[-1].label == "h#"
        assert all(a.end == b.start for a, b in itertools.pairwise(phones))  # contiguous
        assert all(s.end > s.start for s in phones)
        for closure, release in itertools.pairwise(phones):
            if release.label in ("p", "t", "k", "b", "d", "g"):
                assert closure.label == release.label + "cl", (utterance, release)
        seen_phones |= {p.label for p in phones}
        start, end, text = read_text(wav.with_suffix(".TXT"))
        assert (start, end) == (0, frames)
        words = read_segments(wav.with_suffix(".WRD"))
        assert [w.label for w in words] == [word for _, _, word in words_of(text)]
        assert all(a.end <= b.start for a, b in itertools.pairwise(words))
        assert phones[0].end <= words[0].start and words[-1].end <= phones[-1].start
        if utterance.name.startswith("sa"):
            assert text == DIALECT_SENTENCES[int(utterance.name[2]) - 1]
    assert {"h#", "pau", "tcl", "ax", "iy", "dx", "el"} <= seen_phones <= set(TIMIT_61)


def test_sentences_sx_shared_within_a_set_si_unique_and_no_text_in_both_sets(corpus_dir: Path) -> None:
    texts = defaultdict(set)  # (set, kind) -> texts
    readers = defaultdict(set)
    for utterance in list_utterances(corpus_dir):
        text = read_text(corpus_dir / Path(utterance.path).with_suffix(".TXT"))[2]
        texts[(utterance.corpus_set, utterance.name[:2])].add(text)
        readers[(utterance.name, text)].add(utterance.speaker)
    assert texts[("train", "si")].isdisjoint(texts[("test", "si")] | texts[("test", "sx")])
    assert texts[("train", "sx")].isdisjoint(texts[("test", "si")] | texts[("test", "sx")])
    assert max(len(s) for (name, _), s in readers.items() if name.startswith("sx")) > 1
    assert all(len(s) == 1 for (name, _), s in readers.items() if name.startswith("si"))


def test_manifest_records_the_generation(corpus_dir: Path) -> None:
    manifest = json.loads((corpus_dir / "generator.json").read_text())
    assert manifest["parameters"] == {**SMALL, "seed": 0}
    assert manifest["utterances"] == 90 and len(manifest["speakers"]) == 9
    assert manifest["espeakng_loader_version"] == "0.2.4"


def test_same_seed_gives_identical_files_whatever_the_worker_count(tmp_path: Path) -> None:
    one = ensure_generated_corpus(tmp_path / "one", **TINY, num_workers=1)
    two = ensure_generated_corpus(tmp_path / "two", **TINY, num_workers=2)
    assert file_bytes(one) == file_bytes(two)
    assert plan_speakers(**TINY_PLAN, seed=1) != plan_speakers(**TINY_PLAN, seed=0)


def test_reuse_and_parameter_mismatch(corpus_dir: Path, tmp_path: Path) -> None:
    mtime = (corpus_dir / "generator.json").stat().st_mtime_ns
    assert ensure_generated_corpus(corpus_dir.parent, **SMALL) == corpus_dir
    assert (corpus_dir / "generator.json").stat().st_mtime_ns == mtime
    with pytest.raises(RuntimeError, match=r"num_train_speakers=4 \(asked for 5\)"):
        ensure_generated_corpus(corpus_dir.parent, **{**SMALL, "num_train_speakers": 5})
    (tmp_path / "TIMIT").mkdir()
    with pytest.raises(RuntimeError, match="not generated by this project"):
        ensure_generated_corpus(tmp_path, **TINY)
    with pytest.raises(ValueError, match="num_dev_speakers <= 50"):
        ensure_generated_corpus(tmp_path / "new", num_dev_speakers=51)


def test_speakers_have_distinct_voices_matching_their_sex() -> None:
    speakers = plan_speakers(150, 50, 24, seed=0)
    assert len({s.speaker_id for s in speakers}) == 224
    assert len({(s.voice, s.pitch, s.pitch_range, s.rate) for s in speakers}) == 224
    assert [s.speaker_id for s in speakers if s.corpus_set == "test"].count("mdab0") == 1
    male = [s for s in speakers if s.speaker_id[0] == "m"]
    assert all(re.search(r"\+(m\d|Mike|robert|quincy|grandpa|max|rob|michel|Alex)$", s.voice) for s in male)
    assert 0.55 < len(male) / len(speakers) < 0.85


def test_espeak_phoneme_events_name_phonemes_in_order() -> None:
    synthesis = espeak.synthesize("yes no", "en-us")
    events = [e for e in synthesis.events if e.type == espeak.EVENT_PHONEME]
    assert [e.phoneme.lstrip("',") for e in events if not e.phoneme.startswith("_")] == [
        "j",
        "E",
        "s",
        "n",
        "oU",
    ]
    samples = [e.sample for e in events]
    assert samples == sorted(samples) and samples[-1] <= len(synthesis.samples)
    assert all(e.phoneme == "" for e in synthesis.events if e.type != espeak.EVENT_PHONEME)


def test_espeak_mapping_covers_timit_and_names_unknown_phonemes() -> None:
    assert {p for phones in ESPEAK_TO_TIMIT.values() for p in phones} <= set(TIMIT_61)
    assert timit_phones_of("'aI") == ("ay",) and timit_phones_of("tS") == ("tcl", "ch")
    assert timit_phones_of("_:") == ("pau",)
    with pytest.raises(UnknownEspeakPhoneme, match="'Q9' has no TIMIT mapping"):
        timit_phones_of("Q9")


def test_align_splits_stops_and_covers_the_audio() -> None:
    synthesis = espeak.synthesize("The big dog waited, then paused.", "en-us")
    phones, words = align(synthesis, "The big dog waited, then paused.")
    labels = [p.label for p in phones]
    assert labels[:5] == ["h#", "dh", "ax", "bcl", "b"] and labels[-1] == "h#" and "pau" in labels
    assert phones[-1].end == len(synthesis.samples)
    assert [w.label for w in words] == ["the", "big", "dog", "waited", "then", "paused"]
