"""Explore a Speech Commands-layout corpus: what is in it, per class and split, before training on it.

Reads the header of every clip (sample rate, channels, frames; only the few clips drawn for the waveform
plot are decoded) and writes to the output folder:

    waveforms.png      a few clips per class (chosen at random with a seed), one row per class
    durations.png      histogram of clip durations, the 1 s line marked
    class_counts.png   clips per class, one bar per split (train / val / test)
    summary.md         the numbers for a reader: per-split counts, sample rates and channels (and the
                       clips that differ from the majority), durations, background noise, unreadable files
    summary.json       the same numbers for a program

The corpus folder holds ``<word>/<speaker>_nohash_<n>.wav``, ``validation_list.txt`` and
``testing_list.txt`` (training is every clip in neither) and ``_background_noise_/*.wav``; the command
accepts that folder or a root holding ``SpeechCommands/<version>/``. Usage::

    python -m src.explore data/generated [--out DIR] [--clips-per-class 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
from matplotlib.figure import Figure
from torchaudio.datasets.speechcommands import EXCEPT_FOLDER as NOISE_FOLDER
from torchaudio.datasets.speechcommands import FOLDER_IN_ARCHIVE

from src.data.speech_commands.split_lists import read_list_file
from src.utils.run_files import atomic_write, write_json_atomic

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
SPLIT_COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
# Lists of files (clips of another format, unreadable files, ...) show this many entries and a count.
LIST_CAP = 20
DEFAULT_OUT_ROOT = Path("data") / "exploration"


@dataclass(frozen=True)
class ClipHeader:
    """What a clip's header says; ``path`` is relative to the corpus folder (``<word>/<file>.wav``)."""

    path: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def is_corpus_folder(path: Path) -> bool:
    """True when ``path`` holds at least one ``<word>/<speaker>_nohash_<n>.wav`` clip."""
    return next(path.glob("*/*_nohash_*.wav"), None) is not None


def resolve_corpus_dir(path: str | Path) -> Path:
    """The corpus folder ``path`` names: ``path`` itself when it holds ``<word>/*_nohash_*.wav`` clips,
    else the single corpus folder ``path/SpeechCommands/<version>``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is neither a corpus folder nor a root holding exactly one.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"Corpus folder {path} does not exist; pass an existing folder.")
    if is_corpus_folder(path):
        return path
    archive = path / FOLDER_IN_ARCHIVE
    versions = (
        sorted(p for p in archive.iterdir() if p.is_dir() and is_corpus_folder(p)) if archive.is_dir() else []
    )
    if len(versions) == 1:
        return versions[0]
    if versions:
        raise ValueError(
            f"{archive} holds several corpora ({', '.join(p.name for p in versions)}); pass one of those "
            "folders instead of the root."
        )
    raise ValueError(
        f"{path} is neither a corpus folder (one holding <word>/<speaker>_nohash_<n>.wav clips) nor a "
        f"root holding {FOLDER_IN_ARCHIVE}/<version>/ with such clips; pass the folder that holds the word "
        "folders."
    )


def corpus_path(path: Path) -> str:
    """``<folder>/<file>``: the path of a clip as the list files write it."""
    return f"{path.parent.name}/{path.name}"


def read_header(path: Path) -> ClipHeader | str:
    """The header of the audio file at ``path`` (path kept relative to its corpus: ``<word>/<file>``),
    or why it cannot be read. Opens the file with libsndfile, which parses the header only (several
    times faster than ``soundfile.info``, which also collects libsndfile's log text)."""
    try:
        with sf.SoundFile(path) as audio:
            header = ClipHeader(corpus_path(path), audio.samplerate, audio.channels, audio.frames)
    except (sf.SoundFileError, OSError) as err:
        return f"not readable audio ({err})"
    return header if header.frames > 0 else "empty (0 frames)"


def read_split_lists(corpus_dir: Path) -> tuple[dict[str, str], list[str]]:
    """Clip path -> ``"val"`` / ``"test"`` from the list files (read as training does, by
    :func:`~src.data.speech_commands.split_lists.read_list_file`: a byte-order mark or UTF-16 is read
    right), and the list files that are missing or unreadable (read as empty, with a warning). A clip in
    both lists counts as validation here; training refuses it."""
    split_of: dict[str, str] = {}
    missing: list[str] = []
    for split in ("test", "val"):
        list_file = corpus_dir / SPLIT_LIST_FILES[split]
        try:
            split_of.update(dict.fromkeys(read_list_file(list_file), split))
        except (FileNotFoundError, ValueError) as error:
            log.warning("%s", error)
            missing.append(list_file.name)
    return split_of, missing


def choose_waveform_clips(
    headers: Sequence[ClipHeader], clips_per_class: int, seed: int
) -> dict[str, list[str]]:
    """Class -> up to ``clips_per_class`` readable clips drawn at random; each class has its own generator
    seeded by ``(seed, class)``, so the choice of one class does not depend on the others."""
    by_class: dict[str, list[str]] = {}
    for header in headers:
        by_class.setdefault(header.path.split("/", 1)[0], []).append(header.path)
    return {
        word: sorted(random.Random(f"{seed}/{word}").sample(sorted(paths), min(clips_per_class, len(paths))))
        for word, paths in sorted(by_class.items())
    }


def capped(items: Sequence[Any]) -> dict[str, Any]:
    """``{"count": len(items), "first": items[:LIST_CAP]}``."""
    return {"count": len(items), "first": list(items[:LIST_CAP])}


def plot_waveforms(corpus_dir: Path, chosen: dict[str, list[str]], clips_per_class: int) -> Figure:
    """One row per class, one panel per chosen clip (decoded now, mixed to mono), titled by file name;
    all panels share the time axis (from 0 to the longest chosen clip) and the amplitude range [-1, 1]."""
    rows = max(len(chosen), 1)
    # Margins in inches (a layout engine costs seconds on a grid of a hundred panels).
    width, height = 3.0 * clips_per_class + 1.3, 0.9 * rows + 1.2
    figure, axes = plt.subplots(
        rows, clips_per_class, figsize=(width, height), squeeze=False, sharex=True, sharey=True
    )
    figure.subplots_adjust(
        left=1.2 / width, right=1 - 0.1 / width, bottom=0.5 / height, top=1 - 0.7 / height, hspace=0.55
    )
    longest_s = 1.0
    for row, (word, paths) in zip(axes, chosen.items(), strict=False):
        row[0].set_ylabel(word, rotation=0, ha="right", va="center", fontsize=9)
        for panel, relpath in zip(row, paths, strict=False):
            data, sample_rate = sf.read(corpus_dir / relpath, dtype="float32", always_2d=True)
            wave = data.mean(axis=1)
            panel.plot(np.arange(len(wave)) / sample_rate, wave, linewidth=0.4, color="tab:blue")
            panel.set_title(Path(relpath).name, fontsize=7, pad=2)
            longest_s = max(longest_s, len(wave) / sample_rate)
    axes[0, 0].set_xlim(0, longest_s)
    axes[0, 0].set_ylim(-1, 1)
    axes[0, 0].set_yticks([-1, 0, 1])
    for panel in axes.flat:
        panel.tick_params(labelsize=6)
        if not panel.lines:
            panel.set_axis_off()
    for panel in axes[-1]:
        panel.set_xlabel("time (s)", fontsize=7)
    figure.suptitle(
        f"{corpus_dir.name}: waveforms of up to {clips_per_class} random clips per class",
        y=1 - 0.15 / height,
        va="top",
    )
    return figure


def plot_durations(durations: np.ndarray) -> Figure:
    """Histogram of clip durations (log count axis), the 1 s line and the counts either side of it."""
    figure, axes = plt.subplots(figsize=(7, 4), layout="constrained")
    if durations.size:
        axes.hist(durations, bins=50, color="tab:blue")
        axes.set_yscale("log")
    axes.axvline(1.0, color="tab:red", linestyle="--", label="1 s")
    shorter, longer = int((durations < 1.0).sum()), int((durations > 1.0).sum())
    axes.set_title(
        f"{durations.size} readable clips: {shorter} shorter than 1 s, "
        f"{durations.size - shorter - longer} exactly 1 s, {longer} longer"
    )
    axes.set_xlabel("duration (s)")
    axes.set_ylabel("clips")
    axes.legend()
    axes.grid(alpha=0.3)
    return figure


def plot_class_counts(split_counts: dict[str, dict[str, int]]) -> Figure:
    """Clips per class, one bar per split side by side."""
    words = sorted(split_counts)
    figure, axes = plt.subplots(figsize=(max(6.0, 0.35 * len(words) + 2), 4), layout="constrained")
    x = np.arange(len(words))
    width = 0.8 / len(SPLITS)
    for index, split in enumerate(SPLITS):
        counts = [split_counts[word][split] for word in words]
        axes.bar(x + (index - 1) * width, counts, width, label=split, color=SPLIT_COLOURS[split])
    axes.set_xticks(x, words, rotation=60, ha="right", fontsize=8)
    axes.set_ylabel("clips")
    axes.set_title("clips per class and split")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    return figure


def save_png(figure: Figure, path: Path) -> None:
    """Write ``figure`` as PNG (the same bytes for the same figure) atomically, then close it."""
    with atomic_write(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=100)
    plt.close(figure)


def capped_lines(listed: dict[str, Any], describe: Callable[[Any], str], indent: str = "") -> list[str]:
    """Markdown list items for a :func:`capped` list, and how many were left out."""
    lines = [f"{indent}- {describe(item)}" for item in listed["first"]]
    if listed["count"] > len(listed["first"]):
        lines.append(f"{indent}- ... and {listed['count'] - len(listed['first'])} more")
    return lines


def markdown_summary(summary: dict[str, Any]) -> str:
    """``summary.md``: the numbers of :func:`explore_corpus`'s summary as tables and lists."""
    totals, durations = summary["split_totals"], summary["durations_s"]
    majority = summary["majority_format"]
    lines = [
        f"# Data exploration: {Path(summary['corpus_dir']).name}",
        "",
        f"- Corpus folder: `{summary['corpus_dir']}`"
        + (
            "" if summary["given_path"] == summary["corpus_dir"] else f" (found in `{summary['given_path']}`)"
        ),
        f"- Clips: {summary['num_clips']} in {len(summary['classes'])} classes, "
        f"{summary['num_readable_clips']} readable; "
        f"background-noise files: {len(summary['background_noise'])}",
        f"- Headers read in {summary['header_read_s']:.2f} s "
        f"({summary['header_read_ms_per_1000_clips']:.1f} ms per 1000 clips)",
        "",
        "## Clips per class and split",
        "",
        "| class | train | val | test | total |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {word} | {counts['train']} | {counts['val']} | {counts['test']} | {sum(counts.values())} |"
            for word, counts in summary["split_counts"].items()
        ),
        f"| **all** | {totals['train']} | {totals['val']} | {totals['test']} | {sum(totals.values())} |",
        "",
        "## Sample rates and channels",
        "",
        "| sample rate (Hz) | clips |",
        "|---:|---:|",
        *(f"| {rate} | {count} |" for rate, count in summary["sample_rates"].items()),
        "",
        "| channels | clips |",
        "|---:|---:|",
        *(f"| {channels} | {count} |" for channels, count in summary["channels"].items()),
        "",
    ]
    if majority:
        differing = summary["differing_format"]
        lines.append(
            f"Most clips are {majority['sample_rate']} Hz with {majority['channels']} channel(s); "
            f"{differing['count']} differ" + (":" if differing["count"] else ".")
        )
        lines += capped_lines(
            differing,
            lambda clip: f"`{clip['path']}`: {clip['sample_rate']} Hz, {clip['channels']} channel(s)",
        )
    lines += ["", "## Durations", ""]
    if durations:
        lines += [
            f"min {durations['min']:.3f} s, median {durations['median']:.3f} s, "
            f"mean {durations['mean']:.3f} s, max {durations['max']:.3f} s; "
            f"{durations['shorter_than_1s']} clips shorter than 1 s, {durations['exactly_1s']} exactly 1 s, "
            f"{durations['longer_than_1s']} longer."
        ]
    else:
        lines.append("No readable clips.")
    lines += [
        "",
        "## Background noise",
        "",
        "| file | duration (s) | sample rate (Hz) | channels |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {noise['file']} | {noise['duration_s']:.1f} | {noise['sample_rate']} | {noise['channels']} |"
        for noise in summary["background_noise"]
    ]
    lines += ["", "## Problems", ""]
    unreadable, unlisted = summary["unreadable"], summary["listed_but_missing"]
    lines.append(f"- Unreadable files: {unreadable['count']}")
    lines += capped_lines(unreadable, lambda item: f"`{item['path']}`: {item['reason']}", indent="  ")
    lines.append(f"- List-file entries without a clip: {unlisted['count']}")
    lines += capped_lines(unlisted, lambda path: f"`{path}`", indent="  ")
    lines += [f"- {name} is missing: read as empty" for name in summary["missing_list_files"]]
    lines += [
        "",
        "## Figures",
        "",
        "![clips per class and split](class_counts.png)",
        "",
        "![durations](durations.png)",
        "",
        f"![waveforms (seed {summary['seed']})](waveforms.png)",
        "",
    ]
    return "\n".join(lines)


def read_background_noise(corpus_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """File, duration, sample rate and channels of each ``_background_noise_/*.wav``, and the
    unreadable ones with the reason."""
    noise, unreadable = [], []
    for path in sorted((corpus_dir / NOISE_FOLDER).glob("*.wav")):
        header = read_header(path)
        if isinstance(header, str):
            unreadable.append({"path": corpus_path(path), "reason": header})
            continue
        noise.append(
            {
                "file": path.name,
                "duration_s": header.duration_s,
                "sample_rate": header.sample_rate,
                "channels": header.channels,
            }
        )
    return noise, unreadable


def count_splits(relpaths: Sequence[str], split_of: dict[str, str]) -> dict[str, dict[str, int]]:
    """Class -> split -> number of clips; a clip in no list file is a training clip."""
    counts: dict[str, dict[str, int]] = {}
    for relpath in relpaths:
        word_counts = counts.setdefault(relpath.split("/", 1)[0], dict.fromkeys(SPLITS, 0))
        word_counts[split_of.get(relpath, "train")] += 1
    return dict(sorted(counts.items()))


def format_summary(headers: Sequence[ClipHeader]) -> dict[str, Any]:
    """Clips per sample rate and per channel count, the most common (rate, channels) pair and the clips
    that differ from it."""
    formats = Counter((header.sample_rate, header.channels) for header in headers)
    majority = formats.most_common(1)[0][0] if formats else None
    differing = [
        {"path": header.path, "sample_rate": header.sample_rate, "channels": header.channels}
        for header in headers
        if (header.sample_rate, header.channels) != majority
    ]
    return {
        "sample_rates": {str(rate): n for rate, n in sorted(Counter(h.sample_rate for h in headers).items())},
        "channels": {str(ch): n for ch, n in sorted(Counter(h.channels for h in headers).items())},
        "majority_format": {"sample_rate": majority[0], "channels": majority[1]} if majority else None,
        "differing_format": capped(differing),
    }


def duration_summary(durations: np.ndarray) -> dict[str, float | int] | None:
    """Min, median, mean and max of ``(clips,)`` durations in seconds and the counts below, at and above
    1 s; None without clips."""
    if not durations.size:
        return None
    return {
        "min": float(durations.min()),
        "median": float(np.median(durations)),
        "mean": float(durations.mean()),
        "max": float(durations.max()),
        "shorter_than_1s": int((durations < 1.0).sum()),
        "exactly_1s": int((durations == 1.0).sum()),
        "longer_than_1s": int((durations > 1.0).sum()),
    }


def explore_corpus(
    corpus_dir: str | Path, out_dir: str | Path, clips_per_class: int = 3, seed: int = 0
) -> dict[str, Any]:
    """Read every clip's header in ``corpus_dir`` (or the one corpus under ``corpus_dir/SpeechCommands``)
    and write ``waveforms.png``, ``durations.png``, ``class_counts.png``, ``summary.md`` and
    ``summary.json`` to ``out_dir``. Only the clips drawn for ``waveforms.png`` are decoded.

    Split counts count every clip file, readable or not; formats and durations count readable clips.
    Lists of files (differing format, unreadable, listed but missing) keep their first ``LIST_CAP``
    entries and a count.

    Returns:
        The content of ``summary.json``.

    Raises:
        FileNotFoundError, ValueError: see :func:`resolve_corpus_dir`; ``clips_per_class`` below 1.
    """
    if clips_per_class < 1:
        raise ValueError(f"clips_per_class must be at least 1, got {clips_per_class}")
    given_path = Path(corpus_dir).expanduser().resolve()
    corpus_dir = resolve_corpus_dir(given_path)
    out_dir = Path(out_dir)
    clip_files = sorted(path for path in corpus_dir.glob("*/*.wav") if path.parent.name != NOISE_FOLDER)
    relpaths = [corpus_path(path) for path in clip_files]

    started = time.perf_counter()
    results = [read_header(path) for path in clip_files]
    header_read_s = time.perf_counter() - started
    headers = [result for result in results if isinstance(result, ClipHeader)]
    unreadable = [
        {"path": relpath, "reason": result}
        for relpath, result in zip(relpaths, results, strict=True)
        if isinstance(result, str)
    ]
    noise, unreadable_noise = read_background_noise(corpus_dir)
    split_of, missing_list_files = read_split_lists(corpus_dir)
    split_counts = count_splits(relpaths, split_of)
    durations = np.array([header.duration_s for header in headers])
    chosen = choose_waveform_clips(headers, clips_per_class, seed)

    summary: dict[str, Any] = {
        "corpus_dir": str(corpus_dir),
        "given_path": str(given_path),
        "num_clips": len(clip_files),
        "num_readable_clips": len(headers),
        "classes": list(split_counts),
        "split_counts": split_counts,
        "split_totals": {split: sum(counts[split] for counts in split_counts.values()) for split in SPLITS},
        **format_summary(headers),
        "durations_s": duration_summary(durations),
        "background_noise": noise,
        "unreadable": capped(unreadable + unreadable_noise),
        "listed_but_missing": capped(sorted(set(split_of) - set(relpaths))),
        "missing_list_files": missing_list_files,
        "header_read_s": header_read_s,
        "header_read_ms_per_1000_clips": 1e6 * header_read_s / max(len(clip_files), 1),
        "seed": seed,
        "clips_per_class": clips_per_class,
        "waveform_clips": chosen,
    }
    save_png(plot_waveforms(corpus_dir, chosen, clips_per_class), out_dir / "waveforms.png")
    save_png(plot_durations(durations), out_dir / "durations.png")
    save_png(plot_class_counts(split_counts), out_dir / "class_counts.png")
    with atomic_write(out_dir / "summary.md") as stream:
        stream.write(markdown_summary(summary))
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: explore a corpus, print where the outputs went; exit status 2 on a bad corpus path."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Outputs: waveforms.png, durations.png, class_counts.png, summary.md, summary.json.",
    )
    parser.add_argument(
        "corpus_dir",
        type=Path,
        help="the corpus folder (holding <word>/<speaker>_nohash_<n>.wav) or a root holding "
        f"{FOLDER_IN_ARCHIVE}/<version>/",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default: {DEFAULT_OUT_ROOT}/<corpus folder name> under the current folder)",
    )
    parser.add_argument(
        "--clips-per-class", type=int, default=3, help="waveforms drawn per class (default 3)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the choice of waveforms (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        corpus_dir = resolve_corpus_dir(args.corpus_dir)
        out_dir = args.out if args.out is not None else DEFAULT_OUT_ROOT / corpus_dir.name
        print(
            f"corpus folder: {corpus_dir}"
            + ("" if corpus_dir == args.corpus_dir.resolve() else f" (found in {args.corpus_dir})")
        )
        summary = explore_corpus(args.corpus_dir, out_dir, args.clips_per_class, args.seed)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    print(
        f"{summary['num_clips']} clips in {len(summary['classes'])} classes "
        f"({summary['unreadable']['count']} unreadable files, {summary['differing_format']['count']} clips "
        f"differ from the majority format); headers read at "
        f"{summary['header_read_ms_per_1000_clips']:.0f} ms per 1000 clips"
    )
    print(f"wrote {out_dir}/summary.md, summary.json, waveforms.png, durations.png, class_counts.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
