"""The speaker-verification data module's refusals, on a small in-memory speech module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.data.base import TaskDataModule
from src.data.verification.datamodule import SpeakerVerificationDataModule


class FakeSpeech(TaskDataModule):
    """Three words said twice by each speaker of each split, 0.1 s of noise each."""

    TARGETS = "class"

    def __init__(self, split_speakers: dict[str, list[str]], cache_dir: Path) -> None:
        super().__init__()
        self.cache_dir = cache_dir
        self.items = {
            split: [
                (speaker, word, n) for speaker in speakers for word in ("yes", "no", "up") for n in range(2)
            ]
            for split, speakers in split_speakers.items()
        }

    sample_rate = 16000
    example_samples = 1600

    def setup(self, stage: str | None = None) -> None:
        pass

    def files(self, split: str) -> list[str]:
        return [f"{word}/{speaker}_nohash_{n}.wav" for speaker, word, n in self.items[split]]

    def speakers(self, split: str) -> list[str]:
        return [speaker for speaker, _, _ in self.items[split]]

    def texts(self, split: str) -> list[str]:
        return [word for _, word, _ in self.items[split]]

    def lengths(self, split: str) -> list[int]:
        return [1600] * len(self.items[split])

    def waveform(self, split: str, index: int) -> torch.Tensor:
        return 0.1 * torch.randn(1600)


def test_a_validation_speaker_seen_in_training_is_refused(tmp_path: Path) -> None:
    speech = FakeSpeech({"train": ["a", "b", "c"], "val": ["c", "d"], "test": ["e", "f"]}, tmp_path)
    datamodule = SpeakerVerificationDataModule(speech, batch_size=8, utterances_per_speaker=4)
    with pytest.raises(ValueError, match=r"1 speakers of the val split are also in the training split"):
        datamodule.setup("fit")


def test_disjoint_splits_give_trials_and_labels_of_training_speakers(tmp_path: Path) -> None:
    speech = FakeSpeech({"train": ["a", "b", "c"], "val": ["d", "e"], "test": ["f", "g"]}, tmp_path)
    datamodule = SpeakerVerificationDataModule(speech, batch_size=8, utterances_per_speaker=4)
    datamodule.setup(None)
    assert datamodule.label_names == ["a", "b", "c"]
    for split in ("val", "test"):
        assert len(datamodule.trials(split)) > 0
        assert datamodule.trials_path(split).parent == tmp_path / "speaker_trials"
    # An epoch visits every training speaker (18 utterances in groups of 4: 5 groups).
    assert len(datamodule.train_dataloader().dataset) == 5


def test_trials_are_read_back_from_their_file(tmp_path: Path) -> None:
    speech = FakeSpeech({"train": ["a", "b"], "val": ["d", "e"], "test": ["f", "g"]}, tmp_path)
    first = SpeakerVerificationDataModule(speech, batch_size=8)
    first.setup("test")
    path = first.trials_path("test")
    kept = path.read_text().splitlines()[:2]
    path.write_text("\n".join(kept) + "\n")  # a shorter list: the file is what is scored
    second = SpeakerVerificationDataModule(speech, batch_size=8)
    second.setup("test")
    assert len(second.trials("test")) == 2


def test_a_batch_size_that_does_not_hold_whole_groups_is_refused(tmp_path: Path) -> None:
    speech = FakeSpeech({"train": ["a", "b"], "val": ["d", "e"], "test": ["f", "g"]}, tmp_path)
    with pytest.raises(ValueError, match=r"data\.batch_size=10 is not a multiple.*e\.g\. data\.batch_size=8"):
        SpeakerVerificationDataModule(speech, batch_size=10, utterances_per_speaker=4)
