"""Speech Commands keyword spotting as a LightningDataModule.

The corpus is downloaded through ``torchaudio.datasets.SPEECHCOMMANDS``; clips are split by its lists
(``validation_list.txt``, ``testing_list.txt``, training is the rest; read strictly by
:mod:`src.data.speech_commands.split_lists`; the 12-class protocol's ``_silence_`` and ``_unknown_`` as
:mod:`src.data.speech_commands.splits` builds them), decoded with soundfile, padded or truncated to a fixed
length, and cached as one memory-mapped int16 ``.npy`` per split with each clip's true length, so every
epoch after the first decoding run does no per-clip file I/O.
"""

from __future__ import annotations

import logging
import shutil
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
from src.data.speech_commands.layout import VERSIONS, is_real_corpus, real_corpus_elsewhere
from src.data.speech_commands.split_lists import (
    CLIP_FORM,
    LIST_FILES,
    list_word_clips,
    missing_listed_clips,
    read_split_lists,
    split_word_clips,
)
from src.data.speech_commands.splits import (
    NOISE_REGIONS,
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    SilenceCut,
    draw_silence,
    draw_unknown,
    extra_class_count,
    list_official_test_set,
    official_test_set_dir,
    official_test_set_labels,
)

log = logging.getLogger(__name__)

CORPORA = ("generated", "speechcommands")
TEST_SET_URL = "http://download.tensorflow.org/data/{name}.tar.gz"
_EXAMPLES = 3


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
            when its folder is missing (or its extraction was interrupted). Refused with the generated
            corpus, which is never downloaded.
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
        num_workers: DataLoader worker processes, started afresh each epoch (0: load in the main process).
        pin_memory: Pin batches in page-locked memory.
        generator: Keyword arguments for ``ensure_generated_corpus`` (``corpus="generated"`` only).
        cache_dir: Where the decoded-clip caches go; default ``<root>/.cache``. A complete cache is only
            read (the folder may be read-only); building one needs a writable folder with room.
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
        if download and corpus == "generated":
            raise ValueError(
                "data.download=true downloads the real Speech Commands, but data.corpus=generated makes a "
                "synthetic one: set data.corpus=speechcommands to download the real corpus, or "
                "data.download=false."
            )
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
        self._split_clips: dict[str, dict[str, list[str]]] = {}
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
            self._refuse_real_corpus()
            made = Path(ensure_generated_corpus(self.root, **self.generator_kwargs))
            if made.resolve() != self.corpus_dir.resolve():
                raise ValueError(
                    f"data.corpus=generated wrote its corpus to {made}, but data.root={self.root} and "
                    f"data.version={self.version} read {self.corpus_dir}; set data.version={made.name}"
                )
        elif self.download and (not self.corpus_dir.is_dir() or self._extraction_marker.exists()):
            self._download_corpus()
        if (
            self.corpus == "speechcommands"
            and self.download
            and self.silence_percentage
            and self.unknown_percentage
        ):
            self._download_official_test_set()
        self._check_corpus()

    @property
    def _extraction_marker(self) -> Path:
        """Present while :meth:`_download_corpus` extracts the corpus: left behind, the extraction was
        interrupted and the corpus folder is incomplete."""
        return self.corpus_dir.with_name(f".{self.version}.extracting")

    def _download_corpus(self) -> None:
        """Download (unless the archive is there) and extract the corpus with torchaudio; a folder left
        incomplete by an interrupted extraction is extracted again."""
        marker = self._extraction_marker
        if marker.exists():
            log.warning(
                "The extraction of %s into %s was interrupted; extracting it again",
                self.version,
                self.corpus_dir,
            )
            shutil.rmtree(self.corpus_dir, ignore_errors=True)
        log.info("Downloading %s into %s", self.version, self.root)
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            SPEECHCOMMANDS(self.root, url=self.version, download=True)
        except OSError as error:  # URLError, DNS and socket errors, a full disk, a read-only root
            raise RuntimeError(
                f"Downloading {self.version} into {self.root} failed ({error}). Check the network and the "
                f"disk, or download and extract {self.version}.tar.gz into {self.corpus_dir} yourself, or "
                "use data.corpus=generated for the offline corpus."
            ) from error
        marker.unlink()

    def _refuse_real_corpus(self) -> None:
        """With ``data.corpus=generated``, fail (before generating anything into it) when ``data.root``
        holds a real Speech Commands copy where the generated corpus goes, or holds one elsewhere and the
        generated corpus is not there yet; the message names the overrides that read it."""
        if not self.corpus_dir.exists():
            elsewhere = real_corpus_elsewhere(self.root, self.version)
        elif is_real_corpus(self.corpus_dir):
            elsewhere = (f"data.root={self.root} holds a corpus not generated by this project", "")
        else:
            return
        if elsewhere is not None:
            found, fix = elsewhere
            raise ValueError(
                f"data.corpus=generated makes a synthetic corpus under data.root, but {found}. To train on "
                f"it, set data.corpus=speechcommands{f' and {fix}' if fix else ''}; for the generated "
                "corpus, point data.root at another folder."
            )

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

    def speakers(self, split: str) -> list[str]:
        """The speaker id of each clip of ``split`` (the ``<speaker>`` of ``<word>/<speaker>_nohash_<n>.wav``;
        ``_silence_`` for clips cut from background noise), in :meth:`files` order."""
        return [speaker_of(name) for name in self.files(split)]

    def texts(self, split: str) -> list[str]:
        """The word of each clip of ``split`` (its folder; ``_silence_`` for cuts of background noise), in
        :meth:`files` order."""
        return [
            SILENCE_LABEL if speaker_of(name) == SILENCE_LABEL else Path(name).parent.name
            for name in self.files(split)
        ]

    def waveform(self, split: str, index: int) -> torch.Tensor:
        """Clip ``index`` of ``split``: ``(clip_samples,)``, zero after its true length."""
        return self._dataset(split)[index][0]

    def lengths(self, split: str) -> list[int]:
        """The true length in samples of each clip of ``split`` (at most :attr:`clip_samples`)."""
        return list(self._dataset(split).lengths)

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
        self._check_corpus_folder()
        self._split_clips = self._checked_split_clips()
        if self.silence_percentage or self.augmentation.noise_prob > 0:
            if not self._noise_recordings():
                raise FileNotFoundError(
                    f"{self.corpus_dir / NOISE_FOLDER} holds no .wav recordings, which the _silence_ class "
                    "and noise augmentation are cut from. Restore them (they come with the corpus), or set "
                    "data.silence_percentage=0 and turn noise augmentation off."
                )
            self.augmentation.set_noise(self.background_noise())
        self._corpus_checked = True

    def _check_corpus_folder(self) -> None:
        """Fail when the corpus folder is missing, saying where a corpus was found instead, if anywhere."""
        corpus_dir = self.corpus_dir
        if corpus_dir.is_dir():
            return
        where = f"data.root={self.root}" + ("" if self.root.is_dir() else " (which does not exist)")
        if self.corpus == "generated":
            raise FileNotFoundError(
                f"Generated corpus folder {corpus_dir} does not exist ({where}). Run prepare_data() "
                "first (Trainer.fit does) so that data.corpus=generated creates it."
            )
        elsewhere = real_corpus_elsewhere(self.root, self.version)
        found = "" if elsewhere is None else f" {elsewhere[0]}: to read it, {elsewhere[1]}."
        raise FileNotFoundError(
            f"Speech Commands folder {corpus_dir} does not exist ({where}).{found} Set data.download=true "
            f"to download {self.version}, or point data.root at the folder that holds SpeechCommands/, or "
            "use data.corpus=generated for the offline corpus."
        )

    def _checked_split_clips(self) -> dict[str, dict[str, list[str]]]:
        """Split -> word -> clips, by :mod:`src.data.speech_commands.split_lists`; fails when a word of
        ``words`` has no clips or a listed clip that is used (of ``words``, or of any word when
        ``_unknown_`` is drawn) does not exist."""
        corpus_dir = self.corpus_dir
        lists = read_split_lists(corpus_dir)
        word_clips = list_word_clips(corpus_dir)
        for word in self._words:
            if word not in word_clips.clips:
                skipped = word_clips.skipped.get(word, [])
                others = f" (it holds {len(skipped)} other files, e.g. {skipped[0]})" if skipped else ""
                raise ValueError(
                    f"No clips for word {word!r}: {corpus_dir / word} is missing or holds no {CLIP_FORM} "
                    f"files{others}. Change data.words (words in this corpus: {sorted(word_clips.clips)}) or "
                    "fix the corpus."
                )
        missing = missing_listed_clips(
            corpus_dir, lists, None if self.unknown_percentage else set(self._words)
        )
        if missing:
            more = "; ..." if len(missing) > _EXAMPLES else ""
            raise FileNotFoundError(
                f"{corpus_dir}: {len(missing)} list entries name clips that do not exist: "
                f"{'; '.join(missing[:_EXAMPLES])}{more}. Restore the clips or remove those lines from the "
                "list files."
            )
        return split_word_clips(lists, word_clips)

    def _list_split(self, split: str) -> tuple[list[str], list[int]]:
        """Names (relative to the corpus folder) and labels of the clips of ``split``, as the module
        docstring of :mod:`src.data.speech_commands.splits` states the rule."""
        official = self._official_test_clips() if split == "test" else None
        if split == "test":
            test_dir = official_test_set_dir(self.corpus_dir)
            source = test_dir if official is not None else LIST_FILES["test"]
            log.info("Speech Commands test split: %s", source)
            if official is None and self.silence_percentage and self.unknown_percentage and test_dir.is_dir():
                log.warning(
                    "The 12-class test archive %s is not the test split: its label folders %s are not the "
                    "task's classes %s; the test split follows %s",
                    test_dir,
                    official_test_set_labels(test_dir),
                    sorted(self.class_names),
                    LIST_FILES["test"],
                )
        if official is not None:
            return [name for name, _ in official], [self.class_names.index(label) for _, label in official]
        clips_by_word = self._split_clips[split]
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
            self._noise = {
                path.relative_to(self.corpus_dir).as_posix(): read_clip(path, self._sample_rate)
                for path in self._noise_paths()
            }
        return self._noise

    def _noise_paths(self) -> list[Path]:
        """The ``.wav`` recordings of ``_background_noise_``, sorted; warns about audio files it skips
        because their names end in another case (``.WAV``)."""
        noise_dir = self.corpus_dir / NOISE_FOLDER
        files = sorted(noise_dir.iterdir()) if noise_dir.is_dir() else []
        skipped = [path.name for path in files if path.suffix.lower() == ".wav" and path.suffix != ".wav"]
        if skipped:
            log.warning(
                "%s: %d recordings are skipped because their names do not end in .wav (rename them to use "
                "them): %s",
                noise_dir,
                len(skipped),
                ", ".join(skipped[:_EXAMPLES]),
            )
        return [path for path in files if path.suffix == ".wav" and path.is_file()]

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
            source = self.corpus_dir / LIST_FILES[split] if split in LIST_FILES else self.corpus_dir
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


def speaker_of(name: str) -> str:
    """The speaker of a clip name of :meth:`SpeechCommandsDataModule.files`: ``<speaker>`` of
    ``<word>/<speaker>_nohash_<n>.wav``; ``_silence_`` for a cut of background noise."""
    if SilenceCut.parse(name) is not None:
        return SILENCE_LABEL
    return Path(name).name.split("_nohash_", 1)[0]
