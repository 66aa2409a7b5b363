"""A long recording with known keyword positions, built from the clips of a corpus split, and the score of
detections against it.

**Building** (``python -m src.deployment.long_recording CORPUS_DIR --out long.wav``): the clips of one
split of a Speech Commands-layout corpus folder (``testing_list.txt`` for ``--split test``, as
:mod:`src.data.speech_commands.split_lists` reads it), optionally of some ``--words`` only, are shuffled
with ``--seed`` and laid end to end, each after a gap of digital silence drawn uniformly from ``--gap``
seconds, until the recording reaches ``--minutes`` (or the split runs out). Each clip is read whole with
:func:`src.data.common.audio.read_clip` at ``--sample-rate``. The recording is written as 16-bit PCM, and
``<out stem>_truth.csv`` beside it lists every clip: ``label`` (its word folder), ``start_s``, ``end_s``
(where the clip lies, seconds) and ``source`` (its name in the corpus). Clips of words a model does not
know stay in the truth as distractors: detecting a keyword there is a false alarm.

**Scoring** (:func:`score_detections`): a detection matches a truth clip of the same label when their
centres are at most ``tolerance_s`` apart; matching is one to one, detections taken by descending score,
each matched to the nearest unmatched truth clip. Precision = matched detections / detections; recall =
matched truth clips / truth clips of the keywords scored (the model's classes that are no background).
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from src.data.common.audio import read_clip
from src.data.speech_commands.split_lists import list_word_clips, read_split_lists, split_word_clips
from src.deployment.detection import Detection
from src.utils.run_files import atomic_write

log = logging.getLogger(__name__)

TRUTH_COLUMNS = ("label", "start_s", "end_s", "source")
"""Columns of a truth CSV."""
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TruthClip:
    """A clip of word ``label`` placed from ``start_s`` to ``end_s`` seconds; ``source`` is its name in the
    corpus (``<word>/<file>.wav``)."""

    label: str
    start_s: float
    end_s: float
    source: str = ""

    @property
    def centre_s(self) -> float:
        """Midpoint in seconds."""
        return (self.start_s + self.end_s) / 2


@dataclass(frozen=True)
class DetectionScore:
    """Detections scored against a truth: counts, precision and recall (``nan`` when undefined), and
    false alarms per hour of recording."""

    detections: int
    targets: int
    matched: int
    tolerance_s: float
    duration_s: float

    @property
    def precision(self) -> float:
        """Matched detections / detections."""
        return self.matched / self.detections if self.detections else math.nan

    @property
    def recall(self) -> float:
        """Matched truth clips / truth clips of the scored keywords."""
        return self.matched / self.targets if self.targets else math.nan

    @property
    def false_alarms_per_hour(self) -> float:
        """Unmatched detections per hour of recording."""
        return (self.detections - self.matched) * 3600 / self.duration_s if self.duration_s else math.nan


def score_detections(
    detections: Sequence[Detection],
    truth: Sequence[TruthClip],
    keywords: Iterable[str],
    tolerance_s: float,
    duration_s: float,
) -> DetectionScore:
    """Score ``detections`` in a recording of ``duration_s`` seconds against its ``truth`` by the rule of
    the module docstring; truth clips of words not in ``keywords`` only count as places of false alarms.

    Raises:
        ValueError: ``tolerance_s`` is not positive.
    """
    if not tolerance_s > 0:
        raise ValueError(f"tolerance_s must be positive, got {tolerance_s}")
    keywords = set(keywords)
    free = list(truth)
    matched = 0
    for detection in sorted(detections, key=lambda d: -d.score):
        centre = (detection.start_s + detection.end_s) / 2
        candidates = [
            (abs(clip.centre_s - centre), i)
            for i, clip in enumerate(free)
            if clip.label == detection.label and abs(clip.centre_s - centre) <= tolerance_s
        ]
        if candidates:
            free.pop(min(candidates)[1])
            matched += 1
    targets = sum(clip.label in keywords for clip in truth)
    return DetectionScore(len(detections), targets, matched, tolerance_s, duration_s)


def read_truth(path: str | Path) -> list[TruthClip]:
    """The clips of a truth CSV (:data:`TRUTH_COLUMNS`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a column is missing or a time is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Truth file {path} does not exist")
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        missing = set(TRUTH_COLUMNS[:3]) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"Truth file {path} lacks the columns {sorted(missing)} (it needs {TRUTH_COLUMNS})"
            )
        try:
            return [
                TruthClip(row["label"], float(row["start_s"]), float(row["end_s"]), row.get("source") or "")
                for row in reader
            ]
        except ValueError as error:
            raise ValueError(f"Truth file {path} line {reader.line_num}: {error}") from error


def split_clips(corpus_dir: Path, split: str, words: Sequence[str] | None = None) -> list[str]:
    """Names (``<word>/<file>.wav``, sorted) of the clips of ``split`` in a corpus folder, of ``words``
    only when given.

    Raises:
        ValueError: ``split`` is unknown, or no clip is left.
    """
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    by_word = split_word_clips(read_split_lists(corpus_dir), list_word_clips(corpus_dir))[split]
    names = sorted(
        name for word, names in by_word.items() if words is None or word in words for name in names
    )
    if not names:
        raise ValueError(f"{corpus_dir}: the {split} split has no clips of the words {words or 'any'}")
    return names


def build_long_recording(
    corpus_dir: Path,
    names: Sequence[str],
    sample_rate: int,
    minutes: float,
    gap_s: tuple[float, float],
    seed: int,
) -> tuple[torch.Tensor, list[TruthClip]]:
    """Lay clips of ``names`` (shuffled with ``seed``) end to end after gaps of silence drawn uniformly
    from ``gap_s`` until ``minutes`` are reached: ``((time,) float32 waveform, truth clips)``.

    Raises:
        ValueError: ``minutes`` is not positive or ``gap_s`` is not ``0 <= low <= high``.
        FileNotFoundError, AudioDecodeError: a clip cannot be read (from ``read_clip``).
    """
    if not minutes > 0:
        raise ValueError(f"--minutes must be positive, got {minutes}: e.g. --minutes 5")
    low, high = gap_s
    if not 0 <= low <= high:
        raise ValueError(f"--gap must be two seconds 0 <= low <= high, got {low} {high}: e.g. --gap 0.5 1.5")
    rng = np.random.default_rng(seed)
    target = round(minutes * 60 * sample_rate)
    pieces: list[torch.Tensor] = []
    truth: list[TruthClip] = []
    position = 0
    for index in rng.permutation(len(names)):
        if position >= target:
            break
        gap = round(float(rng.uniform(low, high)) * sample_rate)
        clip = read_clip(corpus_dir / names[index], sample_rate)
        pieces += [torch.zeros(gap), clip]
        start = position + gap
        position = start + len(clip)
        label = names[index].split("/", 1)[0]
        truth.append(TruthClip(label, start / sample_rate, position / sample_rate, names[index]))
    if position < target:
        log.warning(
            "The split ran out after %d clips: the recording lasts %.1f s", len(truth), position / sample_rate
        )
    pieces.append(torch.zeros(round(high * sample_rate)))
    return torch.cat(pieces), truth


def write_truth_csv(path: Path, truth: Sequence[TruthClip]) -> None:
    """Write ``truth`` to ``path`` atomically (:data:`TRUTH_COLUMNS`; seconds with 6 decimals, exact to the
    sample)."""
    with atomic_write(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        writer.writerows(
            (clip.label, f"{clip.start_s:.6f}", f"{clip.end_s:.6f}", clip.source) for clip in truth
        )


def truth_path(recording: Path) -> Path:
    """Where the truth CSV of ``recording`` goes: ``<stem>_truth.csv`` beside it."""
    return recording.with_name(f"{recording.stem}_truth.csv")


def main(argv: Sequence[str] | None = None) -> int:
    """Build a long recording and its truth CSV from the command line; prints what it wrote."""
    parser = argparse.ArgumentParser(
        prog="python -m src.deployment.long_recording",
        description="A long recording with known keyword positions from the clips of a corpus split, and "
        "its truth CSV (<out stem>_truth.csv: label, start_s, end_s, source) for predict.py mode=detect "
        "detect.truth=...",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "corpus_dir", type=Path, help="a Speech Commands-layout corpus folder (with testing_list.txt)"
    )
    parser.add_argument("--out", type=Path, required=True, help="the WAV to write (refused if it exists)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="the split whose clips are used")
    parser.add_argument("--words", default=None, help="comma-separated words to use (default: every word)")
    parser.add_argument("--minutes", type=float, default=5.0, help="length to reach (or the split runs out)")
    parser.add_argument(
        "--gap", type=float, nargs=2, default=(0.5, 1.5), metavar=("LOW", "HIGH"), help="silence, seconds"
    )
    parser.add_argument("--sample-rate", type=int, default=16000, help="Hz of the recording")
    parser.add_argument("--seed", type=int, default=0, help="shuffles the clips and draws the gaps")
    args = parser.parse_args(argv)
    if args.sample_rate < 1000:
        parser.error(f"--sample-rate must be at least 1000 Hz, got {args.sample_rate}: e.g. 16000")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    truth_file = truth_path(args.out)
    for path in (args.out, truth_file):
        if path.exists():
            parser.error(f"{path} exists: choose another --out")
    words = args.words.split(",") if args.words else None
    names = split_clips(args.corpus_dir, args.split, words)
    wave, truth = build_long_recording(
        args.corpus_dir, names, args.sample_rate, args.minutes, tuple(args.gap), args.seed
    )
    with atomic_write(args.out, "wb") as stream:
        sf.write(stream, wave.numpy(), args.sample_rate, format="WAV", subtype="PCM_16")
    write_truth_csv(truth_file, truth)
    seconds = len(wave) / args.sample_rate
    print(f"{args.out}: {seconds:.1f} s, {len(truth)} clips of the {args.split} split; truth: {truth_file}")
    if seconds < 60 * args.minutes:
        print(f"the {args.split} split ran out before --minutes={args.minutes}: every clip is used once")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
