"""Speech Commands keyword spotting as a LightningDataModule.

Clips are listed through ``torchaudio.datasets.SPEECHCOMMANDS`` (its download and its split logic:
``validation_list.txt``, ``testing_list.txt``, training is the rest), decoded with soundfile, padded or
truncated to a fixed length, and cached as one memory-mapped int16 ``.npy`` per split, so every epoch
after the first decoding run (and every later run on an unchanged corpus) does no per-clip file I/O.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import DataLoader, Dataset
from torchaudio.datasets import SPEECHCOMMANDS
from torchaudio.datasets.speechcommands import FOLDER_IN_ARCHIVE

from src.data.audio import AudioFixReport, fit_length, read_clip
from src.data.speech_commands_corpus import ensure_generated_corpus

log = logging.getLogger(__name__)

CORPORA = ("generated", "speechcommands")
VERSIONS = ("speech_commands_v0.01", "speech_commands_v0.02")
LIST_FILES = ("validation_list.txt", "testing_list.txt")
SPLIT_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}
SPLIT_LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
STAGE_SPLITS = {
    None: ("train", "val", "test"),
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}
# Bump when the cache contents change meaning, so old caches are not reused.
CACHE_FORMAT = "int16-pcm-v1"
INT16_SCALE = 32768.0
_LIST_ENTRY = re.compile(r"[^/]+/[^/]+_nohash_\d+\.wav")


class CachedClipDataset(Dataset[tuple[torch.Tensor, int]]):
    """Fixed-length clips read from a memory-mapped int16 ``(clips, time)`` ``.npy`` file.

    Item ``i`` is ``(waveform, label)``: a ``(time,)`` float32 tensor in ``[-1, 1)`` and the class index of
    ``files[i]`` (a path relative to the corpus folder, e.g. ``"yes/0a7c2a8d_nohash_0.wav"``).
    """

    def __init__(self, cache_file: Path, files: Sequence[str], labels: Sequence[int]) -> None:
        self.cache_file = cache_file
        self.files = list(files)
        self.labels = list(labels)
        self._waves: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._waves is None:
            self._waves = np.load(self.cache_file, mmap_mode="r")
        wave = torch.from_numpy(self._waves[index].astype(np.float32)).div_(INT16_SCALE)
        return wave, self.labels[index]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers reopen the memmap instead of receiving a pickled copy of the whole array.
        state = self.__dict__.copy()
        state["_waves"] = None
        return state


class SpeechCommandsDataModule(L.LightningDataModule):
    """Speech Commands (real, or generated offline) restricted to ``words``; batches are
    ``(waveforms (batch, clip_samples) float32, labels (batch,) int64)``, label ``i`` being ``words[i]``.

    Args:
        root: Folder that holds ``SpeechCommands/<version>/`` (or will, after download/generation).
        corpus: ``"generated"`` (offline espeak-ng corpus, made by ``prepare_data`` on first use) or
            ``"speechcommands"`` (the real dataset).
        version: ``"speech_commands_v0.01"`` or ``"speech_commands_v0.02"``.
        download: With ``corpus="speechcommands"``, download and extract ``version`` in ``prepare_data``
            when its folder is missing. Ignored for the generated corpus.
        words: Label set; the order gives the class indices. Clips of other words are left out.
        sample_rate: Rate in Hz the clips are resampled to where they differ.
        clip_seconds: Clip length; clips are zero-padded at the end or truncated to
            ``round(sample_rate * clip_seconds)`` samples.
        batch_size: Clips per batch.
        num_workers: DataLoader worker processes (persistent when > 0).
        pin_memory: Pin batches in page-locked memory.
        generator: Keyword arguments for ``ensure_generated_corpus`` (``corpus="generated"`` only).
        cache_dir: Where the decoded-clip caches go; default ``<root>/.cache``.
    """

    def __init__(
        self,
        root: str | Path,
        corpus: str = "generated",
        version: str = "speech_commands_v0.02",
        download: bool = False,
        words: Sequence[str] = ("yes", "no"),
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        generator: Mapping[str, Any] | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        if corpus not in CORPORA:
            raise ValueError(f"data.corpus must be one of {list(CORPORA)}, got {corpus!r}")
        if version not in VERSIONS:
            raise ValueError(f"data.version must be one of {list(VERSIONS)}, got {version!r}")
        if isinstance(words, str):
            raise ValueError(f"data.words must be a list of words, got the string {words!r}")
        words = list(words)
        for word in words:
            if not isinstance(word, str):
                raise ValueError(
                    f"data.words: {word!r} is a {type(word).__name__}, not a word. YAML reads unquoted "
                    'yes/no/on/off as booleans: quote them, e.g. words: ["yes", "no"]'
                )
            if not word or "/" in word or word.startswith("_"):
                raise ValueError(f"data.words: {word!r} is not a Speech Commands word folder name")
        if not words or len(set(words)) != len(words):
            raise ValueError(f"data.words must be a non-empty list without duplicates, got {words}")
        if sample_rate <= 0 or clip_seconds <= 0 or round(sample_rate * clip_seconds) <= 0:
            raise ValueError(
                f"data.sample_rate ({sample_rate}) and data.clip_seconds ({clip_seconds}) must give a "
                "positive number of samples per clip"
            )
        if batch_size <= 0:
            raise ValueError(f"data.batch_size must be positive, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        self.save_hyperparameters(logger=False)

        self.root = Path(root).expanduser()
        self.corpus = corpus
        self.version = version
        self.download = download
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.generator_kwargs = dict(generator or {})
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else self.root / ".cache"
        self._words = words
        self._sample_rate = sample_rate
        self._clip_samples = round(sample_rate * clip_seconds)
        self._datasets: dict[str, CachedClipDataset] = {}
        self._corpus_checked = False

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(words)``."""
        return len(self._words)

    @property
    def class_names(self) -> list[str]:
        """Class names in class-index order (a copy of ``words``)."""
        return list(self._words)

    @property
    def clip_samples(self) -> int:
        """Samples per clip, ``round(sample_rate * clip_seconds)``: the ``time`` size of every batch."""
        return self._clip_samples

    @property
    def sample_rate(self) -> int:
        """Sample rate of the waveforms in Hz."""
        return self._sample_rate

    @property
    def corpus_dir(self) -> Path:
        """``<root>/SpeechCommands/<version>``: the folder the paths from :meth:`files` are relative to."""
        return self.root / FOLDER_IN_ARCHIVE / self.version

    def prepare_data(self) -> None:
        """Generate (``corpus="generated"``) or download (``download=True``) the corpus if missing, then
        check its layout. Lightning runs this once per node before ``setup``."""
        if self.corpus == "generated":
            made = Path(ensure_generated_corpus(self.root, **self.generator_kwargs))
            if made.resolve() != self.corpus_dir.resolve():
                raise ValueError(
                    f"data.corpus=generated wrote its corpus to {made}, but data.root={self.root} and "
                    f"data.version={self.version} read {self.corpus_dir}; set data.version={made.name}"
                )
        elif self.download and not self.corpus_dir.is_dir():
            log.info("Downloading %s into %s", self.version, self.root)
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                SPEECHCOMMANDS(self.root, url=self.version, download=True)
            except OSError as error:  # URLError, DNS and socket errors, a full disk
                raise RuntimeError(
                    f"Downloading {self.version} into {self.root} failed ({error}). Check the network, or "
                    f"download and extract {self.version}.tar.gz into {self.corpus_dir} yourself, or use "
                    "data.corpus=generated for the offline corpus."
                ) from error
        self._check_corpus()

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of the splits ``stage`` needs, from the cache or by decoding once."""
        if stage not in STAGE_SPLITS:
            raise ValueError(f"Unknown stage {stage!r}; expected one of {list(STAGE_SPLITS)}")
        missing = [split for split in STAGE_SPLITS[stage] if split not in self._datasets]
        if not missing:
            return
        if not self._corpus_checked:  # prepare_data checked it already in this process
            self._check_corpus()
        for split in missing:
            self._datasets[split] = self._build_split(split)

    def files(self, split: str) -> list[str]:
        """Clip paths of ``split`` (``"train"``, ``"val"`` or ``"test"``) relative to :attr:`corpus_dir`, in
        dataset order: item ``i`` of the split (and row ``i`` of its predictions) is ``files(split)[i]``."""
        return list(self._dataset(split).files)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (the order follows the seed set by ``seed_everything``)."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in :meth:`files` order."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in :meth:`files` order."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The test split in :meth:`files` order, so predictions map back to ``files("test")``."""
        return self._loader("test", shuffle=False)

    def _dataset(self, split: str) -> CachedClipDataset:
        if split not in SPLIT_SUBSETS:
            raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLIT_SUBSETS)}")
        if split not in self._datasets:
            raise RuntimeError(f"Split {split!r} is not set up; call setup() with a stage that includes it")
        return self._datasets[split]

    def _loader(self, split: str, *, shuffle: bool) -> DataLoader:
        return DataLoader(
            self._dataset(split),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=False,
            persistent_workers=self.num_workers > 0,
        )

    def _check_corpus(self) -> None:
        """Fail early, naming the path and the fix, when the corpus cannot give every split and word."""
        corpus_dir = self.corpus_dir
        if not corpus_dir.is_dir():
            where = f"data.root={self.root}" + ("" if self.root.is_dir() else " (which does not exist)")
            if self.corpus == "generated":
                raise FileNotFoundError(
                    f"Generated corpus folder {corpus_dir} does not exist ({where}). Run prepare_data() "
                    "first (Trainer.fit does) so that data.corpus=generated creates it."
                )
            raise FileNotFoundError(
                f"Speech Commands folder {corpus_dir} does not exist ({where}). Set data.download=true to "
                f"download {self.version}, or point data.root at the folder that holds SpeechCommands/, or "
                "use data.corpus=generated for the offline corpus."
            )
        for list_name in LIST_FILES:
            self._check_list_file(corpus_dir / list_name)
        for word in self._words:
            word_dir = corpus_dir / word
            if not word_dir.is_dir() or next(word_dir.glob("*_nohash_*.wav"), None) is None:
                present = sorted(
                    p.name for p in corpus_dir.iterdir() if p.is_dir() and not p.name.startswith("_")
                )
                raise ValueError(
                    f"No clips for word {word!r}: {word_dir} is missing or holds no <speaker>_nohash_<n>.wav "
                    f"files. Change data.words (words in this corpus: {present}) or fix the corpus."
                )
        self._corpus_checked = True

    def _check_list_file(self, list_file: Path) -> None:
        """Each entry must be ``<word>/<speaker>_nohash_<n>.wav``; entries of ``words`` must exist."""
        if not list_file.is_file():
            raise FileNotFoundError(
                f"Split list {list_file} is missing; the Speech Commands splits need validation_list.txt and "
                f"testing_list.txt in {list_file.parent}. Delete that folder and re-download it "
                "(data.download=true) or regenerate it (data.corpus=generated)."
            )
        words = set(self._words)
        for line_number, line in enumerate(list_file.read_text().splitlines(), start=1):
            entry = line.strip()
            if not entry:
                continue
            if not _LIST_ENTRY.fullmatch(entry):
                raise ValueError(
                    f"{list_file} line {line_number}: {entry!r} is not of the form "
                    "<word>/<speaker>_nohash_<n>.wav; fix or remove that line."
                )
            if entry.split("/", 1)[0] in words and not (list_file.parent / entry).is_file():
                raise FileNotFoundError(
                    f"{list_file} line {line_number} names clip {entry}, but {list_file.parent / entry} does "
                    f"not exist. Restore the clip or remove that line from {list_file.name}."
                )

    def _list_split(self, split: str) -> list[str]:
        """Sorted paths (relative to the corpus folder) of the clips of ``words`` in ``split``, as
        torchaudio's split logic assigns them."""
        subset = SPEECHCOMMANDS(self.root, url=self.version, download=False, subset=SPLIT_SUBSETS[split])
        words = set(self._words)
        files = set()
        for n in range(len(subset)):
            try:
                relpath, _, label, _, _ = subset.get_metadata(n)
            except ValueError:
                # torchaudio maps a blank list-file line to the corpus folder itself, which has no
                # "_nohash_" name; every non-blank entry was checked by _check_list_file.
                continue
            if label in words:
                files.add(Path(relpath).relative_to(self.version).as_posix())
        return sorted(files)

    def _build_split(self, split: str) -> CachedClipDataset:
        files = self._list_split(split)
        if not files:
            source = (
                self.corpus_dir / SPLIT_LIST_FILES[split] if split in SPLIT_LIST_FILES else self.corpus_dir
            )
            raise ValueError(
                f"Split {split!r} has no clips of data.words={self._words} (from {source}); fix that split "
                "or data.words."
            )
        labels = [self._words.index(name.split("/", 1)[0]) for name in files]
        counts = Counter(labels)
        per_class = ", ".join(f"{word}={counts[i]}" for i, word in enumerate(self._words))
        log.info("Speech Commands %s split: %d clips (%s)", split, len(files), per_class)
        for i, word in enumerate(self._words):
            if counts[i] == 0:
                log.warning("Speech Commands %s split has no clips of word %r", split, word)
        return CachedClipDataset(self._cache_file(split, files), files, labels)

    def _cache_file(self, split: str, files: list[str]) -> Path:
        """Path of the split's int16 cache, built (under a file lock, atomically) if it does not exist yet.

        The name hashes the sorted file list with each file's size and mtime, the sample rate and the clip
        length, so any change to the corpus or to those settings selects a new cache.
        """
        stats = [os.stat(self.corpus_dir / name) for name in files]
        key = {
            "format": CACHE_FORMAT,
            "sample_rate": self._sample_rate,
            "clip_samples": self._clip_samples,
            "files": [(name, st.st_size, st.st_mtime_ns) for name, st in zip(files, stats, strict=True)],
        }
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cache_file = self.cache_dir / f"speech_commands-{split}-{digest}.npy"
        with FileLock(f"{cache_file}.lock"):
            if cache_file.is_file():
                log.info("Reusing decoded %s clips from %s", split, cache_file)
            else:
                self._write_cache(split, files, cache_file)
        shape = np.load(cache_file, mmap_mode="r").shape
        if shape != (len(files), self._clip_samples):
            raise RuntimeError(
                f"Cache {cache_file} holds an array of shape {shape}, expected "
                f"{(len(files), self._clip_samples)}; delete it to rebuild it."
            )
        return cache_file

    def _write_cache(self, split: str, files: list[str], cache_file: Path) -> None:
        """Decode ``files`` into an int16 ``(clips, clip_samples)`` ``.npy``, written to a temporary file and
        renamed into place so an interrupted run never leaves a half-written cache.

        int16 is lossless for the corpus (16-bit PCM, which soundfile scales by 1/32768) and halves the size
        of float32; clips that were resampled or stored as float are quantised at 16 bits (about -96 dBFS).
        """
        log.info("Decoding %d %s clips into %s", len(files), split, cache_file)
        tmp_file = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        report = AudioFixReport()
        try:
            waves = np.lib.format.open_memmap(
                tmp_file, mode="w+", dtype=np.int16, shape=(len(files), self._clip_samples)
            )
            for row, name in enumerate(files):
                wave = read_clip(self.corpus_dir / name, self._sample_rate, report=report)
                wave = fit_length(wave, self._clip_samples, report=report)
                waves[row] = np.clip(np.rint(wave.numpy() * INT16_SCALE), -INT16_SCALE, INT16_SCALE - 1)
            waves.flush()
            del waves
            os.replace(tmp_file, cache_file)
        finally:
            tmp_file.unlink(missing_ok=True)
        report.log_summary(f"Speech Commands {split} split", self._sample_rate, self._clip_samples)
