"""Speech Commands keyword spotting as a LightningDataModule.

Clips are listed through ``torchaudio.datasets.SPEECHCOMMANDS`` (its download and its split logic:
``validation_list.txt``, ``testing_list.txt``, training is the rest; the 12-class protocol's ``_silence_``
and ``_unknown_`` as :mod:`src.data.speech_commands.splits` builds them), decoded with soundfile, padded or
truncated to a fixed length, and cached as one memory-mapped int16 ``.npy`` per split with each clip's
true length, so every epoch after the first decoding run does no per-clip file I/O.
"""

from __future__ import annotations

import logging
import re
import tarfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torchaudio.datasets import SPEECHCOMMANDS
from torchaudio.datasets.speechcommands import EXCEPT_FOLDER as NOISE_FOLDER
from torchaudio.datasets.speechcommands import FOLDER_IN_ARCHIVE

from src.data.common.audio import AudioFixReport, read_clip
from src.data.common.augmentation import WaveformAugmentation
from src.data.common.clip_cache import CachedClipDataset, cached_clips
from src.data.common.split_datamodule import SplitDataModule
from src.data.speech_commands.corpus import ensure_generated_corpus
from src.data.speech_commands.splits import (
    NOISE_REGIONS,
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    SilenceCut,
    draw_silence,
    draw_unknown,
    extra_class_count,
    list_official_test_set,
    list_word_clips,
    official_test_set_dir,
)

log = logging.getLogger(__name__)

CORPORA = ("generated", "speechcommands")
VERSIONS = ("speech_commands_v0.01", "speech_commands_v0.02")
LIST_FILES = ("validation_list.txt", "testing_list.txt")
SPLIT_LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
TEST_SET_URL = "http://download.tensorflow.org/data/{name}.tar.gz"
_LIST_ENTRY = re.compile(r"[^/]+/[^/]+_nohash_\d+\.wav")


class SpeechCommandsDataModule(SplitDataModule):
    """Speech Commands (real, or generated offline): ``words``, plus ``_silence_`` and ``_unknown_`` with the
    12-class protocol. Batches are ``(waveforms (batch, clip_samples) float32, lengths (batch,) int64,
    labels (batch,) int64)``: each waveform is zero after its true length ``lengths[i]`` (at most
    ``clip_samples``), and label ``i`` is ``class_names[i]``.

    Args:
        root: Folder that holds ``SpeechCommands/<version>/`` (or will, after download/generation).
        corpus: ``"generated"`` (offline espeak-ng corpus, made by ``prepare_data`` on first use) or
            ``"speechcommands"`` (the real dataset).
        version: ``"speech_commands_v0.01"`` or ``"speech_commands_v0.02"``.
        download: With ``corpus="speechcommands"``, download and extract ``version`` in ``prepare_data``
            when its folder is missing. Ignored for the generated corpus.
        words: The words to recognise; the order gives their class indices. Clips of other words are left
            out, or drawn as ``_unknown_``.
        silence_percentage: Size of a ``_silence_`` class (cut from ``_background_noise_``) in percent of the
            clips of ``words`` in each split; 0 leaves it out. See :mod:`src.data.speech_commands.splits`.
        unknown_percentage: Size of an ``_unknown_`` class (clips of the other words) in percent of the
            clips of ``words`` in each split; 0 leaves it out.
        sample_rate: Rate in Hz the clips are resampled to where they differ.
        clip_seconds: Clip length; clips are zero-padded at the end or truncated to
            ``round(sample_rate * clip_seconds)`` samples.
        batch_size: Clips per batch.
        num_workers: DataLoader worker processes (persistent when > 0).
        pin_memory: Pin batches in page-locked memory.
        generator: Keyword arguments for ``ensure_generated_corpus`` (``corpus="generated"`` only).
        cache_dir: Where the decoded-clip caches go; default ``<root>/.cache``.
        augmentation: A partial of :class:`~src.data.common.augmentation.WaveformAugmentation` (the run's
            ``augmentation.waveform``, ``_partial_: true``), completed here with ``sample_rate`` and applied
            to training batches only, after they reach the training device; noise comes from the training
            part of ``_background_noise_``. ``None``: none.
    """

    def __init__(
        self,
        root: str | Path,
        corpus: str = "generated",
        version: str = "speech_commands_v0.02",
        download: bool = False,
        words: Sequence[str] = ("yes", "no"),
        silence_percentage: float = 0.0,
        unknown_percentage: float = 0.0,
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        generator: Mapping[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        augmentation: Callable[..., WaveformAugmentation] | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
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
        for key, value in (
            ("silence_percentage", silence_percentage),
            ("unknown_percentage", unknown_percentage),
        ):
            if not 0 <= value <= 100:
                raise ValueError(f"data.{key} must be a percentage in [0, 100], got {value}")
        self.save_hyperparameters(ignore=["augmentation"], logger=False)

        self.root = Path(root).expanduser()
        self.corpus = corpus
        self.version = version
        self.download = download
        self.generator_kwargs = dict(generator or {})
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else self.root / ".cache"
        self._words = words
        self._sample_rate = sample_rate
        self._clip_samples = round(sample_rate * clip_seconds)
        self.silence_percentage = silence_percentage
        self.unknown_percentage = unknown_percentage
        self.augmentation = (augmentation or WaveformAugmentation)(sample_rate=sample_rate)
        self._corpus_checked = False
        self._noise: dict[str, torch.Tensor] | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        """Class names in class-index order: ``words``, then ``_silence_`` and ``_unknown_`` when used."""
        extra = [SILENCE_LABEL] if self.silence_percentage else []
        return self._words + extra + ([UNKNOWN_LABEL] if self.unknown_percentage else [])

    TARGETS = "class"

    @property
    def label_names(self) -> list[str]:
        """The task's output labels: :attr:`class_names`."""
        return self.class_names

    @property
    def example_samples(self) -> int:
        """Samples of one example: :attr:`clip_samples`."""
        return self.clip_samples

    @property
    def uses_official_test_set(self) -> bool:
        """Whether the test split is the separate 12-class test archive beside the corpus: when the task
        has ``_silence_`` and ``_unknown_`` and the archive's label folders are :attr:`class_names`."""
        return self._official_test_clips() is not None

    def _official_test_clips(self) -> list[tuple[str, str]] | None:
        if not (self.silence_percentage and self.unknown_percentage):
            return None
        return list_official_test_set(official_test_set_dir(self.corpus_dir), self.class_names)

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
        if (
            self.corpus == "speechcommands"
            and self.download
            and self.silence_percentage
            and self.unknown_percentage
        ):
            self._download_official_test_set()
        self._check_corpus()

    def _download_official_test_set(self) -> None:
        """Download and extract the separate 12-class test archive beside the corpus if it is missing."""
        test_dir = official_test_set_dir(self.corpus_dir)
        if test_dir.is_dir():
            return
        url = TEST_SET_URL.format(name=test_dir.name)
        archive = test_dir.with_name(f"{test_dir.name}.tar.gz")
        log.info("Downloading the 12-class test set %s into %s", url, test_dir)
        try:
            torch.hub.download_url_to_file(url, str(archive))
            with tarfile.open(archive) as tar:
                tar.extractall(f"{test_dir}.partial", filter="data")
            Path(f"{test_dir}.partial").rename(test_dir)
        except OSError as error:
            raise RuntimeError(
                f"Downloading {url} failed ({error}). Download it and extract it into {test_dir} yourself, "
                "or train without it: the test split then follows testing_list.txt."
            ) from error
        finally:
            archive.unlink(missing_ok=True)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of the splits ``stage`` needs, from the cache or by decoding once."""
        missing = [split for split in self.stage_splits(stage) if split not in self._datasets]
        if not missing:
            return
        if not self._corpus_checked:  # prepare_data checked it already in this process
            self._check_corpus()
        for split in missing:
            self._datasets[split] = self._build_split(split)

    def labels(self, split: str) -> list[int]:
        """Class indices of ``split``'s clips, in :meth:`files` order."""
        return list(self._dataset(split).labels)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment training batches on the training device; other batches pass unchanged."""
        if self.trainer is None or not self.trainer.training or not self.augmentation.enabled:
            return batch
        waveforms, lengths, labels = batch
        waveforms, lengths = self.augmentation(waveforms, lengths)
        return waveforms, lengths, labels

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
        if self.silence_percentage or self.augmentation.noise_prob > 0:
            noise_dir = corpus_dir / NOISE_FOLDER
            if next(noise_dir.glob("*.wav"), None) is None:
                raise FileNotFoundError(
                    f"{noise_dir} holds no .wav recordings, which the _silence_ class and noise "
                    "augmentation are cut from. Restore them (they come with the corpus), or set "
                    "data.silence_percentage=0 and turn noise augmentation off."
                )
            self.augmentation.set_noise(self.background_noise())
        self._corpus_checked = True

    def _check_list_file(self, list_file: Path) -> None:
        """Each entry must be ``<word>/<speaker>_nohash_<n>.wav``; entries of ``words`` (of every word when
        ``_unknown_`` is drawn from them) must exist."""
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
            used = self.unknown_percentage or entry.split("/", 1)[0] in words
            if used and not (list_file.parent / entry).is_file():
                raise FileNotFoundError(
                    f"{list_file} line {line_number} names clip {entry}, but {list_file.parent / entry} does "
                    f"not exist. Restore the clip or remove that line from {list_file.name}."
                )

    def _list_split(self, split: str) -> tuple[list[str], list[int]]:
        """Names (relative to the corpus folder) and labels of the clips of ``split``, as the module
        docstring of :mod:`src.data.speech_commands.splits` states the rule."""
        official = self._official_test_clips() if split == "test" else None
        if split == "test":
            source = official_test_set_dir(self.corpus_dir) if official is not None else "testing_list.txt"
            log.info("Speech Commands test split: %s", source)
        if official is not None:
            return [name for name, _ in official], [self.class_names.index(label) for _, label in official]
        clips_by_word = list_word_clips(self.root, self.version, split)
        known = sorted(name for word in self._words for name in clips_by_word.get(word, []))
        names = list(known)
        labels = [self._words.index(name.split("/", 1)[0]) for name in known]
        if self.silence_percentage:
            count = extra_class_count(len(known), self.silence_percentage)
            cuts = draw_silence(self._noise_lengths(), self._clip_samples, count, split)
            names += [cut.name for cut in cuts]
            labels += [self.class_names.index(SILENCE_LABEL)] * len(cuts)
        if self.unknown_percentage:
            count = extra_class_count(len(known), self.unknown_percentage)
            unknown = draw_unknown(clips_by_word, self._words, count, split)
            names += unknown
            labels += [self.class_names.index(UNKNOWN_LABEL)] * len(unknown)
        return names, labels

    def _noise_lengths(self) -> dict[str, int]:
        """Length in samples (at ``sample_rate``) of each background-noise recording, by name relative to
        the corpus folder."""
        return {name: len(wave) for name, wave in self._noise_recordings().items()}

    def _noise_recordings(self) -> dict[str, torch.Tensor]:
        """The ``_background_noise_`` recordings at ``sample_rate``, decoded once, by name relative to the
        corpus folder."""
        if self._noise is None:
            paths = sorted((self.corpus_dir / NOISE_FOLDER).glob("*.wav"))
            self._noise = {
                path.relative_to(self.corpus_dir).as_posix(): read_clip(path, self._sample_rate)
                for path in paths
            }
        return self._noise

    def background_noise(self) -> list[torch.Tensor]:
        """The training part (first 80%, see :mod:`src.data.speech_commands.splits`) of each
        background-noise recording, ``(time,)`` at ``sample_rate``: what noise augmentation mixes in, so that
        it never overlaps the validation and test ``_silence_`` clips."""
        low, high = NOISE_REGIONS["train"]
        return [
            wave[round(len(wave) * low) : round(len(wave) * high)]
            for wave in self._noise_recordings().values()
        ]

    def _build_split(self, split: str) -> CachedClipDataset:
        names, labels = self._list_split(split)
        if not names:
            source = (
                self.corpus_dir / SPLIT_LIST_FILES[split] if split in SPLIT_LIST_FILES else self.corpus_dir
            )
            raise ValueError(
                f"Split {split!r} has no clips of data.words={self._words} (from {source}); fix that split "
                "or data.words."
            )
        counts = Counter(labels)
        per_class = ", ".join(f"{name}={counts[i]}" for i, name in enumerate(self.class_names))
        log.info("Speech Commands %s split: %d clips (%s)", split, len(names), per_class)
        for i, name in enumerate(self.class_names):
            if counts[i] == 0:
                log.warning("Speech Commands %s split has no clips of class %r", split, name)
        report = AudioFixReport()
        cache_file = cached_clips(
            self.cache_dir,
            f"speech_commands-{split}",
            names,
            [self._source_file(name) for name in names],
            self._clip_samples,
            {"sample_rate": self._sample_rate},
            lambda name: self._load_clip(name, report),
        )
        report.log_summary(f"Speech Commands {split} split", self._sample_rate, self._clip_samples)
        return CachedClipDataset(cache_file, names, labels)

    def _source_file(self, name: str) -> Path:
        """The audio file a split's clip ``name`` is read from."""
        cut = SilenceCut.parse(name)
        return self.corpus_dir / (cut.recording if cut is not None else name)

    def _load_clip(self, name: str, report: AudioFixReport) -> torch.Tensor:
        """The ``(time,)`` waveform of a clip of a split: a decoded file, or a cut of background noise."""
        cut = SilenceCut.parse(name)
        if cut is not None:
            noise = self._noise_recordings()[cut.recording]
            return noise[cut.start : cut.start + self._clip_samples] * cut.gain
        wave = read_clip(self.corpus_dir / name, self._sample_rate, report=report)
        if len(wave) > self._clip_samples:
            report.truncated += 1
        return wave
