"""The data-module contract every task relies on, whatever the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import lightning as L
import torch


class TaskDataModule(L.LightningDataModule):
    """Base of every data module (``data=`` config group).

    What tasks and entry points read, and nothing more:

    - batches are tuples that start with ``(waveforms (batch, time) float32, lengths (batch,) int64)``:
      zero-padded waveforms at :attr:`sample_rate` and each one's true number of samples, then the task's
      targets (class labels, phone sequences, ...);
    - :attr:`label_names`: the names of the task's output labels in index order (classes, phones);
    - :attr:`example_samples`: samples of one example for sizing models and counting MACs;
    - :meth:`files`: each split's items in dataset order, for the files a test writes;
    - :meth:`speakers`, :meth:`texts`, :meth:`waveform` and :meth:`lengths`: each item's speaker, what it
      says, its audio and its true length, for tasks built on another data module's speech (denoising
      pairs, speaker-verification trials), and :attr:`cache_dir`, where that module keeps what it derives
      from the corpus (the trial lists);
    - :attr:`TARGETS`: what follows ``(waveforms, lengths)`` in a batch, e.g. ``"class"`` (one label per
      example, ``(batch,)``) or ``"sequence"`` (``targets (batch, max_len)``, ``target_lengths
      (batch,)``); a task trains only on data whose ``TARGETS`` equal its own.
    """

    TARGETS: ClassVar[str] = ""
    cache_dir: Path
    """Where the module caches decoded audio (``data.cache_dir``)."""

    @property
    def label_names(self) -> list[str]:
        """Output labels in index order (e.g. class names, or the phone set)."""
        raise NotImplementedError

    @property
    def example_samples(self) -> int:
        """Samples of one example: the fixed clip length, or one second of a corpus of utterances."""
        raise NotImplementedError

    @property
    def sample_rate(self) -> int:
        """Sample rate of the waveforms in Hz."""
        raise NotImplementedError

    def files(self, split: str) -> list[str]:
        """Names of ``split``'s items (``"train"``, ``"val"`` or ``"test"``) in dataset order."""
        raise NotImplementedError

    def speakers(self, split: str) -> list[str]:
        """The speaker of each of ``split``'s items, in :meth:`files` order (what keeps speaker-disjoint
        uses of the data, such as babble noise, apart)."""
        raise NotImplementedError

    def texts(self, split: str) -> list[str]:
        """What each of ``split``'s items says, as an id (equal ids: the same words), in :meth:`files` order
        (what tells text-dependent speaker-verification trials from text-independent ones)."""
        raise NotImplementedError

    def waveform(self, split: str, index: int) -> torch.Tensor:
        """Item ``index`` of ``split`` as ``(samples,)`` float32 at :attr:`sample_rate`, as a batch holds it
        before padding (a fixed-length clip, or a whole utterance); the split must be set up."""
        raise NotImplementedError

    def lengths(self, split: str) -> list[int]:
        """The true length in samples of each of ``split``'s items, in :meth:`files` order: the
        :meth:`waveform` of a fixed-length clip is zero after it."""
        raise NotImplementedError

    def utterance_targets(self, split: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """For ``"sequence"`` targets: ``(samples (utterances,) int64, one (labels,) int64 tensor per
        utterance)`` of ``split`` in :meth:`files` order, without decoding audio (what a CTC task checks
        its frame counts against before training).

        Raises:
            NotImplementedError: data that cannot list them (the task then skips that check).
        """
        raise NotImplementedError
