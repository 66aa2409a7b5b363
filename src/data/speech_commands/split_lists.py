"""The split lists of a Speech Commands corpus, read strictly, and the clips of each split.

``validation_list.txt`` and ``testing_list.txt`` name clips relative to the corpus folder, one a line;
training is every other ``<word>/<speaker>_nohash_<n>.wav`` of the word folders. That is the rule of the
dataset's README and of ``torchaudio.datasets.SPEECHCOMMANDS``, which this reproduces on a well-formed
corpus (tested), but here no odd input changes a split silently:

* the lists are read as UTF-8 text whatever the locale; a byte-order mark, UTF-16 with its byte-order mark
  (what Windows tools write), CRLF line ends, blank lines and spaces around an entry are all read right
  (torchaudio keeps a leading byte-order mark in the first entry, which moves that clip into training);
* a list that is not text, or an entry not of the form ``<word>/<speaker>_nohash_<n>.wav``, is an error
  naming the file and line; so is a clip listed in both lists (it would be validated and tested on);
* an entry listed twice in one list is used once, with a warning;
* files of the word folders that are not ``<speaker>_nohash_<n>.wav`` (``.WAV``, no ``_nohash_``) are in
  no split, with a warning that counts them.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
CLIP_NAME = re.compile(r"[^/]+/[^/]+_nohash_\d+\.wav")
CLIP_FORM = "<word>/<speaker>_nohash_<n>.wav"
_EXAMPLES = 3


@dataclass(frozen=True)
class SplitLists:
    """The entries of each list file: ``split`` (``"val"``, ``"test"``) -> clip name -> line number."""

    entries: dict[str, dict[str, int]]

    def listed_split(self, name: str) -> str:
        """The split a clip ``name`` belongs to: the list that names it, else ``"train"``."""
        return next((split for split, entries in self.entries.items() if name in entries), "train")


@dataclass(frozen=True)
class WordClips:
    """The files of a corpus's word folders (folders not starting with ``_`` or ``.``), by word, sorted:
    ``clips`` are named ``<speaker>_nohash_<n>.wav``, ``skipped`` are the other (not hidden) files."""

    clips: dict[str, list[str]]
    skipped: dict[str, list[str]]


def read_list_file(list_file: Path) -> dict[str, int]:
    """The clips ``list_file`` names (relative to its folder), each with the line it is first named on.

    Raises:
        FileNotFoundError: ``list_file`` does not exist.
        ValueError: it is not UTF-8 (or UTF-16) text, or a non-blank line is not
            ``<word>/<speaker>_nohash_<n>.wav``.
    """
    if not list_file.is_file():
        raise FileNotFoundError(
            f"Split list {list_file} is missing; the Speech Commands splits need "
            f"{' and '.join(LIST_FILES.values())} in {list_file.parent}. Delete that folder and re-download "
            "it (data.download=true) or regenerate it (data.corpus=generated)."
        )
    raw = list_file.read_bytes()
    encoding = "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{list_file} is not UTF-8 text ({error}); save it as UTF-8 text, one {CLIP_FORM} a line."
        ) from error
    entries: dict[str, int] = {}
    repeated: list[str] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        entry = line.replace("\ufeff", "").strip()  # a byte-order mark inside: concatenated files
        if not entry:
            continue
        if not CLIP_NAME.fullmatch(entry):
            raise ValueError(
                f"{list_file} line {line_number}: {entry!r} is not of the form {CLIP_FORM} (relative to "
                f"{list_file.parent}, with '/'); fix or remove that line."
            )
        if entry in entries:
            repeated.append(f"{entry} (lines {entries[entry]} and {line_number})")
        else:
            entries[entry] = line_number
    if repeated:
        log.warning(
            "%s names %d clips more than once, each used once: %s",
            list_file,
            len(repeated),
            ", ".join(repeated[:_EXAMPLES]) + (", ..." if len(repeated) > _EXAMPLES else ""),
        )
    return entries


def read_split_lists(corpus_dir: Path) -> SplitLists:
    """Both list files of ``corpus_dir``, read by :func:`read_list_file`.

    Raises:
        ValueError: a clip is named by both lists (or what :func:`read_list_file` raises).
    """
    entries = {split: read_list_file(corpus_dir / name) for split, name in LIST_FILES.items()}
    both = sorted(entries["val"].keys() & entries["test"].keys())
    if both:
        examples = ", ".join(
            f"{name} ({LIST_FILES['val']} line {entries['val'][name]}, {LIST_FILES['test']} line "
            f"{entries['test'][name]})"
            for name in both[:_EXAMPLES]
        )
        more = ", ..." if len(both) > _EXAMPLES else ""
        raise ValueError(
            f"{len(both)} clips of {corpus_dir} are listed in both {LIST_FILES['val']} and "
            f"{LIST_FILES['test']}, so they would be validated and tested on: {examples}{more}. Remove each "
            "from one of the lists."
        )
    return SplitLists(entries)


def list_word_clips(corpus_dir: Path) -> WordClips:
    """The clips (and the skipped files) of every word folder of ``corpus_dir``; logs a warning that counts
    the skipped files."""
    clips: dict[str, list[str]] = {}
    skipped: dict[str, list[str]] = {}
    for folder in sorted(corpus_dir.iterdir()):
        if not folder.is_dir() or folder.name.startswith(("_", ".")):
            continue
        for path in sorted(folder.iterdir()):
            name = f"{folder.name}/{path.name}"
            if path.is_file() and CLIP_NAME.fullmatch(name):
                clips.setdefault(folder.name, []).append(name)
            elif not path.name.startswith("."):
                skipped.setdefault(folder.name, []).append(name)
    if skipped:
        names = [name for names in skipped.values() for name in names]
        log.warning(
            "%s: %d files of word folders are not %s clips and are in no split (rename them to use them), "
            "e.g. %s",
            corpus_dir,
            len(names),
            CLIP_FORM,
            ", ".join(names[:_EXAMPLES]),
        )
    return WordClips(clips, skipped)


def split_word_clips(lists: SplitLists, word_clips: WordClips) -> dict[str, dict[str, list[str]]]:
    """Split -> word -> the split's clips of that word, sorted: validation and test as listed (whether the
    files exist is the caller's to check), training every other clip on disk."""
    splits: dict[str, dict[str, list[str]]] = {"train": {}, "val": {}, "test": {}}
    for names in word_clips.clips.values():
        for name in names:
            if lists.listed_split(name) == "train":
                splits["train"].setdefault(name.split("/", 1)[0], []).append(name)
    for split, entries in lists.entries.items():
        for name in sorted(entries):
            splits[split].setdefault(name.split("/", 1)[0], []).append(name)
    return {split: dict(sorted(by_word.items())) for split, by_word in splits.items()}


def missing_listed_clips(corpus_dir: Path, lists: SplitLists, words: set[str] | None) -> list[str]:
    """``"<list file> line <n> names clip <name>"`` for each listed clip of ``words`` (of every word when
    ``None``) whose file does not exist."""
    return [
        f"{LIST_FILES[split]} line {line} names clip {name}"
        for split, entries in lists.entries.items()
        for name, line in entries.items()
        if (words is None or name.split("/", 1)[0] in words) and not (corpus_dir / name).is_file()
    ]
