"""Speaker verification on the speech of another data module (``data=speaker_verification``).

The speakers come from the speech module (``data.speech``): the ``<speaker>`` of Speech Commands' file
names, TIMIT's speaker folders, and in the generated corpora the synthetic speakers (an espeak-ng voice
with its own pitch, pitch range and rate, the same for every clip of that speaker). Its own splits are
used, and they must be speaker-disjoint: no speaker of the validation or test trials is seen in training
(checked at setup).

- Training batches are groups of ``data.utterances_per_speaker`` utterances of one speaker each, drawn
  afresh on every access (global RNG), so a batch holds the target pairs a pair loss needs; an epoch
  visits every training speaker (with at least two utterances) about equally often (4 or 5 times on
  the default corpus), dropping a short last batch.
- Validation and test are every utterance of the split that a trial uses; the trials
  (:mod:`src.data.verification.trials`) are drawn once per split by ``data.trial_seed`` and kept as
  ``<trials_dir>/<split>-<digest>.txt`` (``label enroll test``), beside the speech module's cache.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from src.data.base import TaskDataModule
from src.data.common.speech_datamodule import SpeechDerivedDataModule
from src.data.verification.trials import (
    CONDITIONS,
    Trials,
    draw_trials,
    read_trials,
    trials_file,
    write_trials,
)
from src.utils.config_values import positive_int

log = logging.getLogger(__name__)

Item = tuple[torch.Tensor, int, int, int]
"""``(waveform (time,), length in samples, speaker index, item index in the split)``."""
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(waveforms (batch, time), lengths (batch,) int64, speakers (batch,) int64, items (batch,) int64)``:
speakers index the split's speaker list (for training, :attr:`SpeakerVerificationDataModule.label_names`),
items the split's :meth:`~SpeakerVerificationDataModule.files`."""
NOT_A_SPEAKER = "_silence_"
"""Items of this speaker (cuts of background noise) are no one's speech and take no part."""


class SpeakerVerificationDataModule(SpeechDerivedDataModule):
    """Speaker-labelled utterances and each evaluation split's trials. Batches are :data:`Batch`.

    Args:
        speech: the data module the utterances come from (``data.speech``); its splits must not share a
            speaker.
        corpus: the speech's corpus (``data.speech.corpus``), which results are labelled with.
        sample_rate: the speech's rate in Hz; ``None``: the speech's.
        utterances_per_speaker: utterances of one speaker per training group; ``batch_size`` must be a
            multiple of it.
        max_enrollments: enrolment utterances per evaluation split (a seeded choice; ``None``: every
            utterance whose speaker has another); each gives up to four trials.
        trial_seed: seeds the trials.
        trials_dir: where the trial lists go; ``None``: ``<speech cache_dir>/speaker_trials``.
        batch_size, num_workers, pin_memory: as every data module.

    Raises:
        ValueError: for sizes that cannot work, a ``sample_rate`` other than the speech's, or (at setup)
            splits that share a speaker, naming the key to change.
    """

    TARGETS = "speaker"

    def __init__(
        self,
        speech: TaskDataModule,
        corpus: str | None = None,
        sample_rate: int | None = None,
        utterances_per_speaker: int = 4,
        max_enrollments: int | None = 500,
        trial_seed: int = 0,
        trials_dir: str | Path | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(speech, corpus, sample_rate, batch_size, num_workers, pin_memory)
        self.group_size = positive_int("data.utterances_per_speaker", utterances_per_speaker, 4)
        if batch_size % self.group_size:
            example = self.group_size * max(1, batch_size // self.group_size)
            raise ValueError(
                f"data.batch_size={batch_size} is not a multiple of data.utterances_per_speaker="
                f"{self.group_size}: e.g. data.batch_size={example}"
            )
        if max_enrollments is not None:
            positive_int("data.max_enrollments", max_enrollments, 500)
        self.save_hyperparameters(ignore=["speech"], logger=False)
        self.max_enrollments = max_enrollments
        self.trial_seed = trial_seed
        self.trials_dir = Path(trials_dir).expanduser() if trials_dir is not None else None
        self._trials: dict[str, Trials] = {}
        self._trial_paths: dict[str, Path] = {}
        self._train_speakers: list[str] | None = None

    @property
    def label_names(self) -> list[str]:
        """The training speakers (with at least two utterances), in index order: the classes of a
        classification objective."""
        if self._train_speakers is None:
            self.prepare_data()  # the task is built (with these) before fitting prepares the data
            self.speech.setup("fit")
            self._train_speakers = sorted(_speech_items(self.speech, "train"))
        return list(self._train_speakers)

    def speakers(self, split: str) -> list[str]:
        """The speaker of each item of ``split``, in :meth:`files` order."""
        return list(self._dataset(split).speakers)

    def trials(self, split: str) -> Trials:
        """The trials of ``split`` (``"val"`` or ``"test"``, set up), as indices into :meth:`files`."""
        return self._trials[split]

    def trials_path(self, split: str) -> Path:
        """The ``label enroll test`` file of ``split``'s trials."""
        return self._trial_paths[split]

    def setup(self, stage: str | None = None) -> None:
        """Set up the speech splits ``stage`` needs, check that they share no speaker, and build the
        training groups or each evaluation split's trials."""
        self.speech.setup(stage)
        for split in self.stage_splits(stage):
            if split not in self._datasets:
                self._datasets[split] = self._build_split(split)

    def _build_split(self, split: str) -> Dataset:
        by_speaker = _speech_items(self.speech, split)
        if split == "train":
            groups = SpeakerGroups(self.speech, by_speaker, self.group_size)
            log.info(
                "Speaker verification training split: %d speakers, %d utterances, groups of %d",
                len(by_speaker),
                sum(len(items) for items in by_speaker.values()),
                self.group_size,
            )
            return groups
        self._check_disjoint(split, by_speaker)
        trials = self._split_trials(split)
        dataset = TrialItems(self.speech, split, trials.items().tolist())
        counts = {c: int(trials.condition(c).sum()) for c in CONDITIONS}
        log.info(
            "Speaker verification %s split: %d trials (%s; half of each are targets) over %d utterances "
            "of %d speakers, listed in %s",
            split,
            len(trials),
            ", ".join(f"{count} {name}" for name, count in counts.items()),
            len(dataset),
            len(set(dataset.speakers)),
            self._trial_paths[split],
        )
        return dataset

    def _check_disjoint(self, split: str, by_speaker: dict[str, list[int]]) -> None:
        self.speech.setup("fit")
        seen = set(self.speech.speakers("train")) - {NOT_A_SPEAKER}
        shared = sorted(seen & set(by_speaker))
        if shared:
            raise ValueError(
                f"{len(shared)} speakers of the {split} split are also in the training split (e.g. "
                f"{shared[:3]}), so its trials would score speakers the model was trained on: give "
                "data.speech speaker-disjoint splits (Speech Commands' own validation/testing lists are)"
            )

    def _split_trials(self, split: str) -> Trials:
        files = self.speech.files(split)
        speakers, texts = self.speech.speakers(split), self.speech.texts(split)
        folder = self.trials_dir or Path(self.speech.cache_dir) / "speaker_trials"
        path = trials_file(folder, split, files, self.max_enrollments, self.trial_seed)
        if path.is_file():
            trials = read_trials(path, files, speakers, texts)
        else:
            kept = [i for i, speaker in enumerate(speakers) if speaker != NOT_A_SPEAKER]
            drawn = draw_trials(
                [speakers[i] for i in kept], [texts[i] for i in kept], self.max_enrollments, self.trial_seed
            )
            index = torch.tensor(kept, dtype=torch.int64)
            trials = Trials(index[drawn.enroll], index[drawn.test], drawn.target, drawn.same_text)
            write_trials(path, trials, files)
        self._trials[split], self._trial_paths[split] = trials, path
        return trials

    def _loader(self, split: str, *, shuffle: bool) -> DataLoader:
        """Training: ``batch_size / utterances_per_speaker`` shuffled groups per batch; else ``batch_size``
        items."""
        dataset = self._dataset(split)
        batch = self.batch_size // self.group_size if split == "train" else self.batch_size
        return DataLoader(
            dataset,
            batch_size=batch,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate_groups if split == "train" else collate_items,
            persistent_workers=False,  # as every data module's (SplitDataModule._loader says why)
            # A short last training batch could hold one speaker's group: no non-target pair.
            drop_last=split == "train",
        )


def _speech_items(speech: TaskDataModule, split: str) -> dict[str, list[int]]:
    """``split``'s item indices by speaker; for training only speakers with two or more utterances."""
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for index, speaker in enumerate(speech.speakers(split)):
        if speaker != NOT_A_SPEAKER:
            by_speaker[speaker].append(index)
    if split == "train":
        return {speaker: items for speaker, items in by_speaker.items() if len(items) > 1}
    return dict(by_speaker)


class SpeakerGroups(Dataset[list[Item]]):
    """Item ``i``: ``group_size`` utterances of training speaker ``i mod speakers`` (sorted ids), drawn
    without replacement on every access (global RNG; with replacement for a speaker with fewer)."""

    def __init__(self, speech: TaskDataModule, by_speaker: dict[str, list[int]], group_size: int) -> None:
        self.speech = speech
        self.speaker_names = sorted(by_speaker)
        self.by_speaker = [by_speaker[name] for name in self.speaker_names]
        self.group_size = group_size
        self.item_lengths = speech.lengths("train")
        self.files = list(speech.files("train"))
        self.speakers = speech.speakers("train")
        utterances = sum(len(items) for items in self.by_speaker)
        self._length = max(len(self.by_speaker), math.ceil(utterances / group_size))

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> list[Item]:
        speaker = index % len(self.by_speaker)
        items = self.by_speaker[speaker]
        if len(items) >= self.group_size:
            chosen = [items[i] for i in torch.randperm(len(items))[: self.group_size].tolist()]
        else:
            chosen = [items[i] for i in torch.randint(len(items), (self.group_size,)).tolist()]
        return [(self.speech.waveform("train", i), self.item_lengths[i], speaker, i) for i in chosen]


class TrialItems(Dataset[Item]):
    """The utterances of an evaluation split that its trials use; :attr:`files` and :attr:`speakers`
    cover the whole split (trials index it), items come in ``items`` order."""

    def __init__(self, speech: TaskDataModule, split: str, items: Sequence[int]) -> None:
        self.speech = speech
        self.split = split
        self.items = list(items)
        self.files = list(speech.files(split))
        self.speakers = speech.speakers(split)
        names = sorted(set(self.speakers))
        self.speaker_index = {name: i for i, name in enumerate(names)}
        self.item_lengths = speech.lengths(split)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> Item:
        index = self.items[position]
        speaker = self.speaker_index[self.speakers[index]]
        return self.speech.waveform(self.split, index), self.item_lengths[index], speaker, index


def collate_items(items: Sequence[Item]) -> Batch:
    """Stack :data:`Item` s into a :data:`Batch`, each waveform cut to its length, zero-padded to the
    longest."""
    lengths = torch.tensor([length for _, length, _, _ in items], dtype=torch.int64)
    waves = torch.zeros(len(items), int(lengths.max()))
    for row, (wave, length, _, _) in enumerate(items):
        waves[row, :length] = wave[:length]
    speakers = torch.tensor([speaker for _, _, speaker, _ in items], dtype=torch.int64)
    indices = torch.tensor([index for _, _, _, index in items], dtype=torch.int64)
    return waves, lengths, speakers, indices


def collate_groups(groups: Sequence[list[Item]]) -> Batch:
    """Flatten the groups of :class:`SpeakerGroups` into one :data:`Batch`."""
    return collate_items([item for group in groups for item in group])
