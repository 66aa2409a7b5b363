"""TIMIT phone recognition as a LightningDataModule: the standard splits, utterances with phone targets.

The corpus is the real TIMIT (``corpus="timit"``, licensed: ``root`` points at a copy) or the synthetic one
in the same format (``corpus="generated"``, made by :mod:`src.data.timit.corpus` on first use). Both are
read by :mod:`src.data.timit.reader` and split by speaker as the standard recipes do (training 3696,
development 400, core test 192 utterances, SA sentences never used). There is deliberately no option to
add the SA sentences or to split at random: results stay comparable with the literature.

Each split is decoded once into a cache (:mod:`src.data.timit.split_cache`: one memory-mapped int16
``.npy`` of all its samples end to end plus a ``.json`` of the utterance offsets and their 61-phone
transcriptions), so epochs do no per-file I/O; a damaged cache is rebuilt with a warning. Files that
cannot be right (truncated, corrupt, transcriptions beyond the audio) are errors naming them; utterances
that are merely odd (near-empty, digital silence) are counted in a warning.
Targets are the transcription folded to the 61-, 48- or 39-phone set (:func:`src.data.timit.phones.fold`,
which deletes ``q`` for 48 and 39); consecutive equal phones after folding are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from src.data.common.augmentation import WaveformAugmentation
from src.data.common.clip_cache import INT16_SCALE
from src.data.common.split_datamodule import SplitDataModule
from src.data.timit.audio import check_audio, decode_audio, resampled_length
from src.data.timit.corpus import ensure_generated_corpus, read_manifest
from src.data.timit.phones import PHONE_SETS, fold
from src.data.timit.reader import (
    SAMPLE_RATE,
    STANDARD_SPLIT_SIZES,
    Utterance,
    check_split_sizes,
    check_within_audio,
    find_corpus_dir,
    list_utterances,
    read_phones,
    standard_splits,
)
from src.data.timit.split_cache import load_or_build_split_cache

log = logging.getLogger(__name__)

CORPORA = ("generated", "timit")
# Bump when the cache contents change meaning, so old caches are not reused (v2: any sample format is
# read at full scale, and the index lists silent utterances).
CACHE_FORMAT = "timit-int16-v2"
# Utterances shorter than this are warned about: no TIMIT sentence is (the shortest last about a second).
SHORT_UTTERANCE_SECONDS = 0.5
RESTORE_ODD = "unless they are meant so, restore them from your TIMIT copy (or regenerate the corpus)"

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class CachedUtteranceDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Utterances read from a memory-mapped int16 ``(total_samples,)`` ``.npy`` holding them end to end.

    Item ``i`` is ``(waveform, targets)``: the ``(time,)`` float32 waveform in ``[-1, 1)`` of ``files[i]``,
    ``samples[offsets[i]:offsets[i + 1]]``, and its ``(phones,)`` int64 phone indices.
    """

    def __init__(
        self,
        samples_file: Path,
        offsets: Sequence[int],
        targets: Sequence[Sequence[int]],
        files: Sequence[str],
    ) -> None:
        self.samples_file = samples_file
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.targets = [torch.tensor(t, dtype=torch.int64) for t in targets]
        self.files = list(files)
        if not len(self.offsets) == len(self.targets) + 1 == len(self.files) + 1:
            raise ValueError("need one offset more than there are targets and files")
        self._samples: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._samples is None:
            self._samples = np.load(self.samples_file, mmap_mode="r")
        start, end = self.offsets[index], self.offsets[index + 1]
        wave = torch.from_numpy(self._samples[start:end].astype(np.float32)).div_(INT16_SCALE)
        return wave, self.targets[index]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers reopen the memmap instead of receiving a pickled copy of the whole array.
        state = self.__dict__.copy()
        state["_samples"] = None
        return state


def collate_utterances(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Batch:
    """Zero-pad a list of ``(waveform (time,), targets (phones,))`` into ``(waveforms (batch, max_time)
    float32, wave_lengths (batch,) int64, targets (batch, max_phones) int64, target_lengths (batch,) int64)``.
    """
    waves, targets = zip(*items, strict=True)
    return (*_pad(waves, torch.float32), *_pad(targets, torch.int64))


def _pad(sequences: Sequence[torch.Tensor], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(padded (batch, max_length), lengths (batch,) int64)`` of 1-D tensors, zero-padded at the end."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    return pad_sequence([s.to(dtype) for s in sequences], batch_first=True), lengths


class TimitDataModule(SplitDataModule):
    """TIMIT (real, or generated offline) for phone recognition with the standard splits.

    Batches are ``(waveforms, wave_lengths, targets, target_lengths)`` (see :func:`collate_utterances`):
    waveforms ``(batch, max_time)`` float32 zero-padded at ``sample_rate``, targets ``(batch, max_phones)``
    int64 indices into :attr:`phones`, zero-padded (0 is also a phone: use the lengths).

    Args:
        root: Folder holding ``TRAIN/`` and ``TEST/`` (or ``TIMIT/TRAIN`` ...); for the generated corpus the
            folder it is written to, as ``root/TIMIT``.
        corpus: ``"generated"`` (synthetic, made by ``prepare_data`` on first use) or ``"timit"`` (a copy of
            LDC93S1, which must be complete: 3696/400/192 utterances in the standard splits).
        phones: Training label set: 61 (TIMIT's symbols), 48 or 39 (Lee & Hon foldings; ``q`` deleted).
        sample_rate: Rate of the waveforms in Hz; the 16 kHz audio is resampled where it differs.
        batch_size: Utterances per batch.
        num_workers: DataLoader worker processes, started afresh each epoch (0: load in the main process).
        pin_memory: Pin batches in page-locked memory.
        generator: Keyword arguments for ``ensure_generated_corpus`` (``corpus="generated"`` only).
        cache_dir: Where the decoded splits go; default ``<root>/.cache``.
        augmentation: the ``augmentation.waveform`` partial of the run, accepted only when it is off:
            waveform augmentation is refused here rather than silently ignored.

    Raises:
        ValueError: for a setting that cannot work, naming the ``data.<key>`` (or ``augmentation=``).
    """

    collate_fn = staticmethod(collate_utterances)
    TARGETS = "sequence"

    def __init__(
        self,
        root: str | Path,
        corpus: str = "generated",
        phones: int = 61,
        sample_rate: int = SAMPLE_RATE,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
        generator: Mapping[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        augmentation: Callable[..., WaveformAugmentation] | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if corpus not in CORPORA:
            raise ValueError(f"data.corpus must be one of {list(CORPORA)}, got {corpus!r}")
        if phones not in PHONE_SETS:
            raise ValueError(f"data.phones must be 61, 48 or 39 (the TIMIT phone sets), got {phones!r}")
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(f"data.sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        # after data.sample_rate is checked: the partial would reject a bad rate without naming the key
        if augmentation is not None and augmentation(sample_rate=sample_rate).enabled:
            raise ValueError(
                "data=timit has no waveform augmentation (time shift, noise and speed are keyword-clip "
                "augmentations): use augmentation=none, or augmentation=specaugment for feature masking"
            )
        if generator and corpus != "generated":
            log.info("data.generator is ignored with data.corpus=%s", corpus)
        self.save_hyperparameters(ignore=["augmentation"], logger=False)
        self.root = Path(root).expanduser()
        self.corpus = corpus
        self.generator_kwargs = dict(generator or {})
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else self.root / ".cache"
        self._phone_set = PHONE_SETS[phones]
        self._num_phones = phones
        self._sample_rate = sample_rate
        self._splits: dict[str, list[Utterance]] | None = None

    @property
    def phones(self) -> list[str]:
        """The training label set in index order: target ``i`` is ``phones[i]``."""
        return list(self._phone_set)

    @property
    def label_names(self) -> list[str]:
        """The task's output labels: :attr:`phones` (the CTC blank is the task's)."""
        return self.phones

    @property
    def example_samples(self) -> int:
        """Samples of one second of speech, the unit TIMIT's MACs are counted per."""
        return self.sample_rate

    @property
    def sample_rate(self) -> int:
        """Sample rate of the waveforms in Hz."""
        return self._sample_rate

    @property
    def corpus_dir(self) -> Path:
        """The folder holding ``TRAIN``/``TEST``, which the paths from :meth:`files` are relative to."""
        if self.corpus == "generated":
            return self.root / "TIMIT"
        return find_corpus_dir(self.root)

    def prepare_data(self) -> None:
        """Generate the synthetic corpus if missing (``corpus="generated"``), then check the splits are
        complete. Lightning runs this once per node before ``setup``."""
        if self.corpus == "generated":
            ensure_generated_corpus(self.root, **self.generator_kwargs)
        self._list_splits()

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of the splits ``stage`` needs, from the cache or by decoding once."""
        splits = self._list_splits()
        for split in self.stage_splits(stage):
            if split not in self._datasets:
                self._datasets[split] = self._build_split(split, splits[split])

    def _list_splits(self) -> dict[str, list[Utterance]]:
        """The standard splits of the corpus, checked to hold exactly the utterances they should."""
        if self._splits is not None:
            return self._splits
        if self.corpus == "generated":
            corpus_dir = self.corpus_dir
            if not corpus_dir.is_dir():
                raise FileNotFoundError(
                    f"Generated corpus folder {corpus_dir} does not exist (data.root={self.root}). Run "
                    "prepare_data() first (Trainer.fit does) so that data.corpus=generated creates it."
                )
            expected, what = read_manifest(corpus_dir)["split_sizes"], "generated TIMIT-format corpus"
        else:
            corpus_dir, expected, what = self.corpus_dir, STANDARD_SPLIT_SIZES, "TIMIT copy"
        splits = standard_splits(list_utterances(corpus_dir))
        check_split_sizes(splits, expected, corpus_dir, what)
        self._splits = splits
        return splits

    def speakers(self, split: str) -> list[str]:
        """The speaker of each utterance of ``split`` (its folder, e.g. ``fcjf0``), in :meth:`files` order."""
        return [Path(path).parent.name.lower() for path in self.files(split)]

    def texts(self, split: str) -> list[str]:
        """The sentence of each utterance of ``split`` (its name, e.g. ``sa1``: TIMIT's SA sentences are read
        by every speaker, each SX sentence by about seven), in :meth:`files` order."""
        return [Path(path).stem.lower() for path in self.files(split)]

    def waveform(self, split: str, index: int) -> torch.Tensor:
        """Utterance ``index`` of ``split``: ``(samples,)`` float32."""
        return self._dataset(split)[index][0]

    def lengths(self, split: str) -> list[int]:
        """The length in samples of each utterance of ``split``."""
        return np.diff(self._dataset(split).offsets).tolist()

    def utterance_targets(self, split: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Each utterance's length and targets without reading audio: ``(samples (utterances,) int64 at
        :attr:`sample_rate`, one (phones,) int64 tensor of indices into :attr:`phones` per utterance)``,
        in :meth:`files` order (the split must be set up)."""
        dataset = self._dataset(split)
        return torch.from_numpy(np.diff(dataset.offsets)), list(dataset.targets)

    def _build_split(self, split: str, utterances: list[Utterance]) -> CachedUtteranceDataset:
        samples_file, index = self._cached_split(split, utterances)
        index_of = {phone: i for i, phone in enumerate(self._phone_set)}
        targets = [[index_of[p] for p in fold(phones, self._num_phones)] for phones in index["phones"]]
        files = [u.path for u in utterances]
        hours = index["offsets"][-1] / self._sample_rate / 3600
        speakers = len({u.speaker for u in utterances})
        log.info("TIMIT %s split: %d utterances of %d speakers, %.2f h", split, len(files), speakers, hours)
        self._warn_odd_utterances(split, files, np.diff(index["offsets"]), index["silent"])
        return CachedUtteranceDataset(samples_file, index["offsets"], targets, files)

    def _warn_odd_utterances(
        self, split: str, files: list[str], lengths: np.ndarray, silent: list[int]
    ) -> None:
        """One warning each, with counts and an example, for near-empty and digitally silent utterances:
        usable, but no TIMIT sentence is either."""
        short = np.flatnonzero(lengths < SHORT_UTTERANCE_SECONDS * self._sample_rate)
        if len(short):
            log.warning(
                "TIMIT %s split: %d of %d utterances are shorter than %.1f s (e.g. %s: %d samples); TIMIT's "
                "sentences all last longer, so these files are probably damaged: %s",
                split,
                len(short),
                len(files),
                SHORT_UTTERANCE_SECONDS,
                files[short[0]],
                lengths[short[0]],
                RESTORE_ODD,
            )
        if silent:
            log.warning(
                "TIMIT %s split: %d of %d utterances are digital silence (every sample 0, e.g. %s): %s",
                split,
                len(silent),
                len(files),
                files[silent[0]],
                RESTORE_ODD,
            )

    def _cached_split(self, split: str, utterances: list[Utterance]) -> tuple[Path, dict[str, Any]]:
        """The split's samples file and index (:func:`src.data.timit.split_cache.read_split_cache`),
        decoded first when it is not cached or the cache is damaged.

        The cache name hashes the file list with each ``.WAV``/``.PHN`` size and mtime and the sample rate,
        so any change to the corpus or the rate selects a new cache.
        """
        corpus_dir = self.corpus_dir
        key: dict[str, Any] = {"format": CACHE_FORMAT, "sample_rate": self._sample_rate, "files": []}
        for u in utterances:
            wav, phn = os.stat(corpus_dir / u.path), os.stat(corpus_dir / u.phn_path)
            key["files"].append((u.path, wav.st_size, wav.st_mtime_ns, phn.st_size, phn.st_mtime_ns))
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
        samples_file = self.cache_dir / f"timit-{split}-{digest}.npy"
        index = load_or_build_split_cache(
            samples_file,
            len(utterances),
            lambda: self._check_split(split, utterances),
            f"TIMIT {split} split",
        )
        return samples_file, index

    def _check_split(
        self, split: str, utterances: list[Utterance]
    ) -> tuple[list[int], list[list[str]], Callable[[int], np.ndarray]]:
        """Check every utterance's audio and transcription; return their lengths at :attr:`sample_rate`,
        their 61-phone transcriptions and a decoder of utterance ``i``."""
        corpus_dir = self.corpus_dir
        log.info("Checking %d TIMIT %s utterances", len(utterances), split)
        lengths, transcriptions = [], []
        for u in utterances:
            wav, phn = corpus_dir / u.path, corpus_dir / u.phn_path
            frames = check_audio(wav)
            segments = read_phones(phn)
            check_within_audio(segments, phn, wav, frames)
            transcriptions.append([s.label for s in segments])
            lengths.append(resampled_length(frames, SAMPLE_RATE, self._sample_rate))

        def decode(i: int) -> np.ndarray:
            return decode_audio(corpus_dir / utterances[i].path, self._sample_rate, lengths[i])

        return lengths, transcriptions, decode
