"""Which clips make each split of a Speech Commands task, including the 12-class protocol's extra classes.

Words are split by the corpus's own lists (``validation_list.txt``, ``testing_list.txt``, training is the
rest), read strictly by :mod:`src.data.speech_commands.split_lists`. The 12-class protocol adds two
classes the way the dataset's reference pipeline (TensorFlow's ``speech_commands/input_data.py``) builds
them, per split, with ``K`` the number of clips of the chosen words in that split:

* ``_unknown_``: ``ceil(K * unknown_percentage / 100)`` clips drawn without replacement from the clips of
  every other word of the corpus in the same split (so unknown speakers follow the same split lists);
* ``_silence_``: ``ceil(K * silence_percentage / 100)`` one-clip windows cut from the
  ``_background_noise_`` recordings, each from a random recording at a random offset, scaled by a random
  gain in ``[0, 1]``. Each recording's timeline is divided so that training cuts come from its first
  80%, validation cuts from the next 10% and test cuts from the last 10%: no noise is shared across splits.

With both percentages at 10 (``data=kws12``) each extra class is about 10% of the known clips (about 8%
of a split). The draws use a generator seeded by ``SPLIT_SEED`` and the split, not the training seed, so
every run and every seed sees the same clips.

When the separate 12-class test archive (``speech_commands_test_set_v0.02``, or ``_v0.01``) lies beside
the corpus folder and its label folders are exactly the task's classes, it is the test split, as in the
published results; its clips are named relative to the corpus folder (``../speech_commands_test_set_v0.02/
yes/<file>.wav``). An archive with a class folder that holds no clips is refused as incomplete.

A silence cut is named ``_background_noise_/<recording>.wav#start=<sample>,gain=<gain>``: the recording,
the first sample of the window (at the task's sample rate) and the gain, enough to rebuild it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torchaudio.datasets.speechcommands import EXCEPT_FOLDER as NOISE_FOLDER

SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
# The reference pipeline's seed for the unknown/silence draws.
SPLIT_SEED = 59185
SPLIT_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}
# Fractions of each background-noise recording that silence cuts of each split come from.
NOISE_REGIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
_SILENCE_NAME = re.compile(rf"({NOISE_FOLDER}/[^#]+)#start=(\d+),gain=([0-9.]+)")


@dataclass(frozen=True)
class SilenceCut:
    """A ``clip_samples`` window of a background-noise recording starting at ``start``, times ``gain``."""

    recording: str
    start: int
    gain: float

    @property
    def name(self) -> str:
        """The clip's name in a split's file list."""
        return f"{self.recording}#start={self.start},gain={self.gain:.4f}"

    @classmethod
    def parse(cls, name: str) -> SilenceCut | None:
        """The cut a file-list name stands for, or ``None`` when ``name`` is an audio file."""
        match = _SILENCE_NAME.fullmatch(name)
        if match is None:
            return None
        return cls(match[1], int(match[2]), float(match[3]))


def official_test_set_dir(corpus_dir: Path) -> Path:
    """Where the separate 12-class test archive of ``corpus_dir``'s version is extracted to."""
    version = corpus_dir.name.removeprefix("speech_commands_")
    return corpus_dir.parent / f"speech_commands_test_set_{version}"


def draw_unknown(
    clips_by_word: dict[str, list[str]], words: Sequence[str], count: int, split: str
) -> list[str]:
    """``count`` clips (sorted) of the words not in ``words``, drawn without replacement."""
    candidates = sorted(name for word, names in clips_by_word.items() if word not in words for name in names)
    if count > len(candidates):
        raise ValueError(
            f"The {split} split needs {count} _unknown_ clips but the corpus has only {len(candidates)} "
            f"clips of words other than {list(words)} there; lower data.unknown_percentage."
        )
    rng = np.random.default_rng([SPLIT_SEED, list(SPLIT_SUBSETS).index(split), 0])
    return sorted(candidates[i] for i in rng.permutation(len(candidates))[:count])


def draw_silence(
    recording_lengths: dict[str, int], clip_samples: int, count: int, split: str
) -> list[SilenceCut]:
    """``count`` cuts from the ``split``'s region of the recordings (name relative to the corpus folder ->
    length in samples), in draw order."""
    if count == 0:
        return []
    low, high = NOISE_REGIONS[split]
    regions = {
        name: (math.ceil(length * low), math.floor(length * high) - clip_samples)
        for name, length in sorted(recording_lengths.items())
    }
    usable = [name for name, (first, last) in regions.items() if last >= first]
    if not usable:
        raise ValueError(
            f"No background-noise recording is long enough to cut {clip_samples}-sample _silence_ clips from "
            f"the {split} split's {high - low:.0%} of it (recordings: {recording_lengths}); add longer "
            f"recordings to {NOISE_FOLDER}/ or set data.silence_percentage=0."
        )
    rng = np.random.default_rng([SPLIT_SEED, list(SPLIT_SUBSETS).index(split), 1])
    cuts = []
    for _ in range(count):
        name = usable[int(rng.integers(len(usable)))]
        first, last = regions[name]
        cuts.append(SilenceCut(name, int(rng.integers(first, last + 1)), round(float(rng.uniform(0, 1)), 4)))
    return cuts


def extra_class_count(known_clips: int, percentage: float) -> int:
    """The reference pipeline's size of ``_silence_`` or ``_unknown_``: ``ceil(known * percentage / 100)``."""
    return math.ceil(known_clips * percentage / 100)


def list_official_test_set(test_dir: Path, class_names: Sequence[str]) -> list[tuple[str, str]] | None:
    """``(name relative to the corpus folder, label)`` of every clip of the 12-class test archive, sorted,
    or ``None`` when the archive is absent or its label folders are not exactly ``class_names``.

    Raises:
        ValueError: a label folder holds no ``.wav`` clips (an interrupted extraction).
    """
    if not test_dir.is_dir():
        return None
    folders = official_test_set_labels(test_dir)
    if sorted(class_names) != folders:
        return None
    clips = {label: sorted((test_dir / label).glob("*.wav")) for label in folders}
    empty = [label for label, paths in clips.items() if not paths]
    if empty:
        raise ValueError(
            f"The 12-class test archive {test_dir} is incomplete: {', '.join(empty)} hold no .wav clips. "
            f"Extract {test_dir.name}.tar.gz there again, or "
            "remove that folder to test on testing_list.txt instead."
        )
    return [
        (f"../{test_dir.name}/{label}/{path.name}", label) for label, paths in clips.items() for path in paths
    ]


def official_test_set_labels(test_dir: Path) -> list[str]:
    """The label folders of the 12-class test archive at ``test_dir``, sorted."""
    return sorted(path.name for path in test_dir.iterdir() if path.is_dir())
