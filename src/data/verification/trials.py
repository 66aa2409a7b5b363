"""Speaker-verification trials: which pairs of utterances a split is scored on, drawn once by a seeded rule
and kept as a text file of ``label enroll test`` lines (the VoxCeleb trial-list format).

The rule (:func:`draw_trials`): up to ``max_enrollments`` enrolment utterances are chosen at random among
those whose speaker has another utterance in the split. For each of them and each condition,

- **text-dependent** (both utterances say the same words): one target trial (another utterance of the same
  speaker saying the same words) and one non-target trial (an utterance of another speaker saying the same
  words);
- **text-independent** (the two say different words): one target (the same speaker, other words) and one
  non-target trial (another speaker, other words);

a condition's pair of trials is kept only when both exist, so every condition holds exactly as many
target as non-target trials.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from src.data.common.cache_files import storage_errors
from src.utils.run_files import atomic_write

TEXT_DEPENDENT = "text_dependent"
TEXT_INDEPENDENT = "text_independent"
CONDITIONS = (TEXT_DEPENDENT, TEXT_INDEPENDENT)
TRIALS_FORMAT_VERSION = 1
_DRAWS = 64
"""Random draws tried for a non-target partner before a condition is given up for an enrolment."""


@dataclass(frozen=True)
class Trials:
    """A split's trials as indices into the split's items (:meth:`TaskDataModule.files` order).

    Attributes:
        enroll, test: ``(trials,)`` int64 item indices.
        target: ``(trials,)`` bool, true when both items are of the same speaker.
        same_text: ``(trials,)`` bool, true for text-dependent trials (both say the same words).
    """

    enroll: torch.Tensor
    test: torch.Tensor
    target: torch.Tensor
    same_text: torch.Tensor

    def __len__(self) -> int:
        return len(self.target)

    def condition(self, name: str) -> torch.Tensor:
        """``(trials,)`` bool mask of condition ``name`` (:data:`CONDITIONS`)."""
        return self.same_text if name == TEXT_DEPENDENT else ~self.same_text

    def items(self) -> torch.Tensor:
        """The sorted item indices that appear in any trial."""
        return torch.unique(torch.cat([self.enroll, self.test]))


def draw_trials(
    speakers: Sequence[str], texts: Sequence[str], max_enrollments: int | None, seed: int
) -> Trials:
    """The trials of one split by the module's rule, from each item's speaker and text id.

    A condition may have no trial (no speaker says a word twice: no text-dependent target).

    Raises:
        ValueError: when the split yields no trial at all (one speaker, or nobody with two utterances).
    """
    rng = random.Random(seed)
    by_speaker: dict[str, list[int]] = defaultdict(list)
    by_speaker_text: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_text: dict[str, list[int]] = defaultdict(list)
    for index, (speaker, text) in enumerate(zip(speakers, texts, strict=True)):
        by_speaker[speaker].append(index)
        by_speaker_text[speaker, text].append(index)
        by_text[text].append(index)
    candidates = [index for index, speaker in enumerate(speakers) if len(by_speaker[speaker]) > 1]
    rng.shuffle(candidates)
    enrolments = sorted(candidates[:max_enrollments])
    rows: list[tuple[int, int, bool, bool]] = []
    everyone = range(len(speakers))
    for enroll in enrolments:
        speaker, text = speakers[enroll], texts[enroll]
        for same_text in (True, False):
            if same_text:
                targets = [i for i in by_speaker_text[speaker, text] if i != enroll]
                impostor = _draw(rng, by_text[text], lambda i: speakers[i] != speaker)  # noqa: B023
            else:
                targets = [i for i in by_speaker[speaker] if texts[i] != text]
                impostor = _draw(rng, everyone, lambda i: speakers[i] != speaker and texts[i] != text)  # noqa: B023
            if targets and impostor is not None:
                rows += [(enroll, rng.choice(targets), True, same_text), (enroll, impostor, False, same_text)]
    trials = _as_trials(rows)
    if len(trials) == 0:
        raise ValueError(
            f"{len(speakers)} utterances of {len(by_speaker)} speakers give no trial: speaker verification "
            "needs several speakers, some with several utterances; use more of them (for data="
            "speaker_verification more words, data.speech.words, or another data.speech)"
        )
    return trials


def _draw(rng: random.Random, pool: Sequence[int], accept: Callable[[int], bool]) -> int | None:
    """A random item of ``pool`` that ``accept`` accepts (tried :data:`_DRAWS` times; called at once, so
    it may read the caller's loop variables), or ``None``."""
    for _ in range(_DRAWS):
        index = pool[rng.randrange(len(pool))]
        if accept(index):
            return index
    return None


def _as_trials(rows: Sequence[tuple[int, int, bool, bool]]) -> Trials:
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return Trials(
        enroll=torch.tensor(columns[0], dtype=torch.int64),
        test=torch.tensor(columns[1], dtype=torch.int64),
        target=torch.tensor(columns[2], dtype=torch.bool),
        same_text=torch.tensor(columns[3], dtype=torch.bool),
    )


def trials_file(
    folder: Path, split: str, files: Sequence[str], max_enrollments: int | None, seed: int
) -> Path:
    """Where the trials of ``split`` with these items and settings are kept:
    ``<folder>/<split>-<digest>.txt``, the digest covering the item list and the rule's settings (other
    settings get another file)."""
    settings = {"version": TRIALS_FORMAT_VERSION, "files": list(files), "max": max_enrollments, "seed": seed}
    digest = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:12]
    return folder / f"{split}-{digest}.txt"


def write_trials(path: Path, trials: Trials, files: Sequence[str]) -> None:
    """Write ``label enroll test`` lines (label 1: target, 0: non-target; the items' file names),
    atomically."""
    with storage_errors(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as stream:
            for enroll, test, target in zip(trials.enroll, trials.test, trials.target, strict=True):
                stream.write(f"{int(target)} {files[int(enroll)]} {files[int(test)]}\n")


def read_trials(path: Path, files: Sequence[str], speakers: Sequence[str], texts: Sequence[str]) -> Trials:
    """The trials of a ``label enroll test`` file over ``files`` (whose ``texts`` say which are
    text-dependent).

    Raises:
        ValueError: a line that is not ``<0|1> <file> <file>`` of ``files``, or whose label says otherwise
            than the files' ``speakers``, naming the file and line.
    """
    index = {name: i for i, name in enumerate(files)}
    rows: list[tuple[int, int, bool, bool]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if len(parts) != 3 or parts[0] not in ("0", "1") or parts[1] not in index or parts[2] not in index:
            raise ValueError(
                f"{path}:{number}: expected '<0|1> <enroll file> <test file>' with files of the split, got "
                f"{line!r}; delete {path} to draw the trials again"
            )
        enroll, test = index[parts[1]], index[parts[2]]
        if (parts[0] == "1") != (speakers[enroll] == speakers[test]):
            raise ValueError(
                f"{path}:{number}: label {parts[0]} but the speakers are {speakers[enroll]} and "
                f"{speakers[test]}; delete {path} to draw the trials again"
            )
        rows.append((enroll, test, parts[0] == "1", texts[enroll] == texts[test]))
    return _as_trials(rows)
