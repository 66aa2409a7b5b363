"""The TIMIT corpus on disk: its layout, its transcription files and the standard phone-recognition splits.

TIMIT (LDC93S1) is laid out as ``TRAIN|TEST/DR1..DR8/<speaker>/<utterance>.{WAV,PHN,WRD,TXT}``, in upper
case on the original discs and in lower case in many copies (``train/dr1/fcjf0/sa1.wav``); both are read.
``.WAV`` files are NIST SPHERE (read by libsndfile through ``soundfile``), 16 kHz mono 16-bit. ``.PHN`` and
``.WRD`` lines are ``<start> <end> <label>`` in samples, ``.TXT`` holds one line ``<start> <end> <text>``.

Every speaker reads 2 dialect sentences (SA1, SA2: the same for all speakers), 5 compact sentences (SX)
and 3 diverse ones (SI). The standard protocol (Lee & Hon, 1989; Kaldi ``egs/timit/s5``) leaves out the SA
sentences and splits by speaker: training is the 462 speakers of TRAIN (3696 utterances), development is
50 speakers of TEST (400 utterances) and the core test set is 24 speakers of TEST (192 utterances), two
men and a woman per dialect region. The speaker lists below are Kaldi's ``conf/dev_spk.list`` and
``conf/test_spk.list`` (the core test set as published in the corpus documentation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from src.data.timit.phones import TIMIT_61

# Kaldi egs/timit/s5/conf/dev_spk.list, in its order.
DEV_SPEAKERS: tuple[str, ...] = (
    *("faks0", "fdac1", "fjem0", "mgwt0", "mjar0", "mmdb1", "mmdm2", "mpdf0", "fcmh0", "fkms0"),
    *("mbdg0", "mbwm0", "mcsh0", "fadg0", "fdms0", "fedw0", "mgjf0", "mglb0", "mrtk0", "mtaa0"),
    *("mtdt0", "mthc0", "mwjg0", "fnmr0", "frew0", "fsem0", "mbns0", "mmjr0", "mdls0", "mdlf0"),
    *("mdvc0", "mers0", "fmah0", "fdrw0", "mrcs0", "mrjm4", "fcal1", "mmwh0", "fjsj0", "majc0"),
    *("mjsw0", "mreb0", "fgjd0", "fjmg0", "mroa0", "mteb0", "mjfc0", "mrjr0", "fmml0", "mrws1"),
)
# Kaldi egs/timit/s5/conf/test_spk.list (the core test set), in its order: DR1 to DR8, three each.
CORE_TEST_SPEAKERS: tuple[str, ...] = (
    *("mdab0", "mwbt0", "felc0", "mtas1", "mwew0", "fpas0", "mjmp0", "mlnt0", "fpkt0", "mlll0"),
    *("mtls0", "fjlm0", "mbpm0", "mklt0", "fnlp0", "mcmj0", "mjdh0", "fmgd0", "mgrt0", "mnjm0"),
    *("fdhc0", "mjln0", "mpam0", "fmld0"),
)
# The dialect region (the DR<n> folder in TEST) of each development and core test speaker.
TEST_SPEAKER_REGIONS: dict[str, int] = {
    "faks0": 1, "fdac1": 1, "fjem0": 1, "mgwt0": 2, "mjar0": 2, "mmdb1": 2, "mmdm2": 2, "mpdf0": 2,
    "fcmh0": 3, "fkms0": 3, "mbdg0": 3, "mbwm0": 3, "mcsh0": 3, "fadg0": 4, "fdms0": 4, "fedw0": 4,
    "mgjf0": 3, "mglb0": 3, "mrtk0": 3, "mtaa0": 3, "mtdt0": 3, "mthc0": 3, "mwjg0": 3, "fnmr0": 4,
    "frew0": 4, "fsem0": 4, "mbns0": 4, "mmjr0": 3, "mdls0": 4, "mdlf0": 7, "mdvc0": 7, "mers0": 7,
    "fmah0": 5, "fdrw0": 6, "mrcs0": 7, "mrjm4": 7, "fcal1": 5, "mmwh0": 3, "fjsj0": 8, "majc0": 8,
    "mjsw0": 1, "mreb0": 1, "fgjd0": 4, "fjmg0": 4, "mroa0": 4, "mteb0": 4, "mjfc0": 6, "mrjr0": 6,
    "fmml0": 7, "mrws1": 5,
    "mdab0": 1, "mwbt0": 1, "felc0": 1, "mtas1": 2, "mwew0": 2, "fpas0": 2, "mjmp0": 3, "mlnt0": 3,
    "fpkt0": 3, "mlll0": 4, "mtls0": 4, "fjlm0": 4, "mbpm0": 5, "mklt0": 5, "fnlp0": 5, "mcmj0": 6,
    "mjdh0": 6, "fmgd0": 6, "mgrt0": 7, "mnjm0": 7, "fdhc0": 7, "mjln0": 8, "mpam0": 8, "fmld0": 8,
}  # fmt: skip
SPLITS = ("train", "val", "test")
# Utterances per split in the complete corpus: 462 x 8, 50 x 8 and 24 x 8.
STANDARD_SPLIT_SIZES: dict[str, int] = {"train": 3696, "val": 400, "test": 192}
SAMPLE_RATE = 16000

_UTTERANCE = re.compile(r"s[aix][0-9]+")
_REGION = re.compile(r"dr[1-8]")
_SET_FOLDERS = {"train": "TRAIN", "test": "TEST"}


class TimitLayoutError(FileNotFoundError):
    """A corpus folder that is not (or not all of) TIMIT; the message says what was expected."""


class TimitTranscriptionError(ValueError):
    """A ``.PHN``/``.WRD``/``.TXT`` file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class Utterance:
    """One utterance: ``path`` of its ``.WAV`` relative to the corpus folder (casing as on disk), the
    lower-case ``corpus_set`` (``"train"``/``"test"``), dialect ``region`` (1-8), ``speaker`` and ``name``
    (e.g. ``"si1027"``), and the path of its ``.PHN`` file relative to the corpus folder."""

    path: str
    corpus_set: str
    region: int
    speaker: str
    name: str
    phn_path: str

    @property
    def is_dialect_sentence(self) -> bool:
        """True for SA1/SA2, which every speaker reads and the standard protocol leaves out."""
        return self.name.startswith("sa")


@dataclass(frozen=True)
class Segment:
    """``label`` (a phone or a word) from sample ``start`` up to, not including, sample ``end``."""

    start: int
    end: int
    label: str


def find_corpus_dir(root: str | Path) -> Path:
    """The folder holding ``TRAIN`` and ``TEST`` (any casing): ``root`` itself or ``root/TIMIT``.

    Raises:
        TimitLayoutError: neither holds both folders.
    """
    root = Path(root)
    nested = _child(root, "timit")
    for candidate in (root,) if nested is None else (root, nested):
        if _child(candidate, "train") and _child(candidate, "test"):
            return candidate
    where = "does not exist" if not root.is_dir() else f"holds {sorted(p.name for p in root.iterdir())[:10]}"
    raise TimitLayoutError(
        f"No TIMIT corpus at data.root={root} ({where}): expected TRAIN/ and TEST/ (or train/ and test/) "
        "in it or in its TIMIT/ subfolder, each with DR1..DR8/<speaker>/<utterance>.WAV and .PHN files. "
        "TIMIT is licensed by the LDC (LDC93S1) and cannot be downloaded here: point data.root at your "
        "copy, or use data.corpus=generated for the synthetic corpus."
    )


def list_utterances(corpus_dir: str | Path) -> list[Utterance]:
    """Every utterance of TRAIN and TEST that has a ``.WAV`` and a ``.PHN``, sorted by lower-case path.

    Folder and file names are matched in any casing. A ``.WAV`` without a ``.PHN`` is an error.
    """
    corpus_dir = Path(corpus_dir)
    utterances = []
    for corpus_set in _SET_FOLDERS:
        set_dir = _child(corpus_dir, corpus_set)
        if set_dir is None:
            continue
        for region_dir in sorted(p for p in set_dir.iterdir() if _REGION.fullmatch(p.name.lower())):
            for speaker_dir in sorted(p for p in region_dir.iterdir() if p.is_dir()):
                files = {p.name.lower(): p.name for p in speaker_dir.iterdir() if p.is_file()}
                for lower, name in sorted(files.items()):
                    stem, _, extension = lower.rpartition(".")
                    if extension != "wav" or not _UTTERANCE.fullmatch(stem):
                        continue
                    phn = files.get(f"{stem}.phn")
                    wav_path = speaker_dir / name
                    if phn is None:
                        raise TimitLayoutError(
                            f"{wav_path} has no transcription {stem}.PHN beside it; restore it from your "
                            "TIMIT copy (or regenerate the synthetic corpus)."
                        )
                    utterances.append(
                        Utterance(
                            path=wav_path.relative_to(corpus_dir).as_posix(),
                            corpus_set=corpus_set,
                            region=int(region_dir.name[2]),
                            speaker=speaker_dir.name.lower(),
                            name=stem,
                            phn_path=(speaker_dir / phn).relative_to(corpus_dir).as_posix(),
                        )
                    )
    return sorted(utterances, key=lambda u: u.path.lower())


def standard_splits(utterances: Iterable[Utterance]) -> dict[str, list[Utterance]]:
    """The standard speaker-disjoint splits, SA sentences left out: ``train`` is every TRAIN speaker,
    ``val`` the :data:`DEV_SPEAKERS` and ``test`` the :data:`CORE_TEST_SPEAKERS` of TEST. Other TEST
    speakers are in no split. The order of ``utterances`` is kept."""
    dev, core = set(DEV_SPEAKERS), set(CORE_TEST_SPEAKERS)
    splits: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    for utterance in utterances:
        if utterance.is_dialect_sentence:
            continue
        if utterance.corpus_set == "train":
            splits["train"].append(utterance)
        elif utterance.speaker in dev:
            splits["val"].append(utterance)
        elif utterance.speaker in core:
            splits["test"].append(utterance)
    return splits


def check_split_sizes(
    splits: Mapping[str, list[Utterance]], expected: Mapping[str, int], corpus_dir: Path, what: str
) -> None:
    """Raise :class:`TimitLayoutError` unless every split holds exactly its ``expected`` utterances."""
    wrong = [
        f"{split}: {len(splits[split])} utterances of {len({u.speaker for u in splits[split]})} speakers "
        f"(expected {expected[split]})"
        for split in SPLITS
        if len(splits[split]) != expected[split]
    ]
    if wrong:
        raise TimitLayoutError(
            f"Incomplete {what} at {corpus_dir}: {'; '.join(wrong)}. The standard splits need all 462 "
            "speakers of TRAIN (8 SI/SX utterances each), and in TEST the 50 development speakers and the 24 "
            "core test speakers (src/data/timit/reader.py lists them), each utterance as .WAV and .PHN in "
            "<TRAIN|TEST>/DR<n>/<speaker>/. Restore the missing files from your copy."
        )


def read_segments(path: str | Path) -> list[Segment]:
    """Read a ``.PHN`` or ``.WRD`` file: lines ``<start> <end> <label>`` with ``0 <= start < end``, starts
    in non-decreasing order (a UTF-8 byte-order mark before the first line is ignored).

    Raises:
        TimitTranscriptionError: a malformed line, a segment out of order, or no lines.
    """
    path = Path(path)
    segments = []
    for number, line in enumerate(_read_ascii(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise TimitTranscriptionError(
                f"{path} line {number}: {line!r} is not '<start sample> <end sample> <label>'; "
                "restore the file from your TIMIT copy."
            )
        start, end = int(fields[0]), int(fields[1])
        if start >= end or (segments and start < segments[-1].start):
            raise TimitTranscriptionError(
                f"{path} line {number}: segment {start}-{end} is empty or starts before the previous one; "
                "restore the file from your TIMIT copy."
            )
        segments.append(Segment(start, end, fields[2]))
    if not segments:
        raise TimitTranscriptionError(f"{path} is empty; restore it from your TIMIT copy.")
    return segments


def read_phones(path: str | Path) -> list[Segment]:
    """Read a ``.PHN`` file (see :func:`read_segments`); every label must be one of the 61 TIMIT phones."""
    segments = read_segments(path)
    known = set(TIMIT_61)
    for segment in segments:
        if segment.label not in known:
            bytes_note = " (it holds bytes that are not ASCII)" if "\ufffd" in segment.label else ""
            raise TimitTranscriptionError(
                f"{path}: {segment.label!r}{bytes_note} (at samples {segment.start}-{segment.end}) is not "
                "one of the 61 TIMIT phones (src/data/timit/phones.py); correct the label in that file."
            )
    return segments


def check_within_audio(
    segments: list[Segment], path: str | Path, audio: str | Path, num_samples: int
) -> None:
    """Raise :class:`TimitTranscriptionError` naming both files when a segment of ``path`` (a ``.PHN`` or
    ``.WRD``) ends after the ``num_samples`` samples of its ``audio`` file: the audio is truncated (a
    near-empty ``.WAV`` with a whole utterance's phones), or the transcription belongs to another one."""
    number, last = max(enumerate(segments, 1), key=lambda item: item[1].end)
    if last.end > num_samples:
        raise TimitTranscriptionError(
            f"{path} runs to sample {last.end} ({last.end / SAMPLE_RATE:.3f} s, segment {number}) but "
            f"{audio} holds only {num_samples} samples ({num_samples / SAMPLE_RATE:.3f} s): the audio is "
            "truncated, or the transcription belongs to another recording. Restore both from your TIMIT "
            "copy (or regenerate the synthetic corpus)."
        )


def read_text(path: str | Path) -> tuple[int, int, str]:
    """Read a ``.TXT`` file: ``(start, end, text)`` from its line ``<start> <end> <text>``."""
    path = Path(path)
    fields = _read_ascii(path).strip().split(maxsplit=2)
    if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
        raise TimitTranscriptionError(
            f"{path} is not one line '<start sample> <end sample> <text>'; restore it from your TIMIT copy."
        )
    return int(fields[0]), int(fields[1]), fields[2]


def _read_ascii(path: Path) -> str:
    """The text of a transcription file, without a UTF-8 byte-order mark an editor may have added;
    other non-ASCII bytes become U+FFFD, which no label or number matches."""
    return path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("ascii", errors="replace")


def _child(folder: Path, lower_name: str) -> Path | None:
    """The sub-folder of ``folder`` whose lower-cased name is ``lower_name`` (None if there is none)."""
    if not folder.is_dir():
        return None
    return next((p for p in sorted(folder.iterdir()) if p.is_dir() and p.name.lower() == lower_name), None)
