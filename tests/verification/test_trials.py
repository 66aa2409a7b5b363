"""The trial rule: balanced target and non-target trials per condition, seeded, kept as a text file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.data.verification.trials import (
    CONDITIONS,
    TEXT_DEPENDENT,
    draw_trials,
    read_trials,
    trials_file,
    write_trials,
)

# Six speakers saying three words twice each: item 6 * s + 2 * w + n.
SPEAKERS = [f"spk{s}" for s in range(6) for _ in range(6)]
TEXTS = [word for _ in range(6) for word in ("yes", "yes", "no", "no", "up", "up")]
FILES = [
    f"{text}/{speaker}_nohash_{i % 2}.wav"
    for i, (speaker, text) in enumerate(zip(SPEAKERS, TEXTS, strict=True))
]


def test_every_condition_holds_as_many_targets_as_non_targets() -> None:
    trials = draw_trials(SPEAKERS, TEXTS, max_enrollments=None, seed=0)
    for condition in CONDITIONS:
        mask = trials.condition(condition)
        assert int(trials.target[mask].sum()) == int((~trials.target[mask]).sum()) > 0
    # Every item has a same-word and an other-word utterance of its speaker: four trials each.
    assert len(trials) == 4 * len(SPEAKERS)


def test_labels_and_conditions_follow_the_speakers_and_words() -> None:
    trials = draw_trials(SPEAKERS, TEXTS, max_enrollments=None, seed=0)
    for enroll, test, target, same_text in zip(
        trials.enroll, trials.test, trials.target, trials.same_text, strict=True
    ):
        enroll, test = int(enroll), int(test)
        assert enroll != test
        assert bool(target) == (SPEAKERS[enroll] == SPEAKERS[test])
        assert bool(same_text) == (TEXTS[enroll] == TEXTS[test])


def test_the_seed_fixes_the_trials_and_max_enrollments_bounds_them() -> None:
    first = draw_trials(SPEAKERS, TEXTS, max_enrollments=5, seed=3)
    again = draw_trials(SPEAKERS, TEXTS, max_enrollments=5, seed=3)
    other = draw_trials(SPEAKERS, TEXTS, max_enrollments=5, seed=4)
    assert torch.equal(first.enroll, again.enroll) and torch.equal(first.test, again.test)
    assert not (torch.equal(first.enroll, other.enroll) and torch.equal(first.test, other.test))
    assert len(torch.unique(first.enroll)) == 5


def test_a_condition_without_candidates_has_no_trials_but_the_other_keeps_its_own() -> None:
    # Nobody says a word twice: no text-dependent target, so no text-dependent trial at all.
    speakers = ["a", "a", "b", "b", "c", "c"]
    trials = draw_trials(speakers, ["yes", "no"] * 3, max_enrollments=None, seed=0)
    assert not bool(trials.same_text.any())
    assert int(trials.target.sum()) == int((~trials.target).sum()) == len(speakers)


def test_a_split_of_one_speaker_gives_no_trials_and_says_so() -> None:
    with pytest.raises(ValueError, match="give no trial"):
        draw_trials(["a"] * 4, ["yes", "yes", "no", "no"], max_enrollments=None, seed=0)


def test_trials_round_trip_through_the_label_enroll_test_file(tmp_path: Path) -> None:
    trials = draw_trials(SPEAKERS, TEXTS, max_enrollments=None, seed=0)
    path = trials_file(tmp_path, "val", FILES, None, 0)
    write_trials(path, trials, FILES)
    first = path.read_text().splitlines()[0].split()
    assert first[0] in ("0", "1") and first[1] in FILES and first[2] in FILES
    back = read_trials(path, FILES, SPEAKERS, TEXTS)
    for name in ("enroll", "test", "target", "same_text"):
        assert torch.equal(getattr(back, name), getattr(trials, name))
    assert int(back.condition(TEXT_DEPENDENT).sum()) == int(trials.condition(TEXT_DEPENDENT).sum())


def test_other_settings_get_another_trials_file(tmp_path: Path) -> None:
    names = {trials_file(tmp_path, "val", FILES, None, seed) for seed in (0, 1)}
    names |= {
        trials_file(tmp_path, "val", FILES[:-1], None, 0),
        trials_file(tmp_path, "test", FILES, None, 0),
    }
    assert len(names) == 4


def test_a_trials_file_whose_label_contradicts_the_speakers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "val.txt"
    path.write_text(f"1 {FILES[0]} {FILES[6]}\n")  # items 0 and 6 are spk0 and spk1
    with pytest.raises(ValueError, match="label 1 but the speakers are spk0 and spk1"):
        read_trials(path, FILES, SPEAKERS, TEXTS)


def test_a_trials_file_naming_unknown_files_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "val.txt"
    path.write_text(f"1 {FILES[0]} missing.wav\n")
    with pytest.raises(ValueError, match=r"val.txt:1: expected"):
        read_trials(path, FILES, SPEAKERS, TEXTS)
