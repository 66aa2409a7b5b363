"""Noisy/clean speech pairs for spectral denoising as a LightningDataModule (``data=denoising``).

Clean speech comes from another data module of the project (``data.speech``: Speech Commands or TIMIT,
generated or real), whose splits are speaker-disjoint; noise comes from recordings in ``data.noise_dir``
(each cut into split-disjoint regions, as the 12-class protocol cuts ``_background_noise_``: the first 80 %
for training, the next 10 % for validation, the last 10 % for testing) or, without recordings,
synthesised white, pink and brown noise (generated afresh per split), plus babble summed from other
speakers of the same split.

- Training pairs are drawn afresh for every example each epoch: a random noise kind, recording window
  and SNR uniform in ``data.train_snr_db`` (from the global RNG that ``seed_everything`` seeds).
- Validation and test pairs are fixed by ``data.mix_seed``: ``data.eval_clips`` clean examples of the
  split (all with ``null``), each mixed at every SNR of ``data.eval_snr_db`` with the same noise, so the
  SNRs compare the same utterances.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from src.data.base import TaskDataModule
from src.data.common.speech_datamodule import SpeechDerivedDataModule
from src.data.common.split_datamodule import SPLITS
from src.data.denoising.noise import NoiseBank, noise_recordings, split_noise
from src.data.denoising.pairs import FixedPairs, TrainingPairs, collate_pairs

log = logging.getLogger(__name__)


class DenoisingDataModule(SpeechDerivedDataModule):
    """Pairs of noisy and clean speech. Batches are :data:`src.data.denoising.pairs.Batch`: zero-padded
    noisy and clean waveforms at the speech module's rate, each example's true length and the SNR it was
    mixed at (dB).

    Args:
        speech: the data module the clean speech comes from (``data.speech``, e.g. Speech Commands); its
            own splits are used, so speakers never cross them.
        corpus: the speech's corpus (``data.speech.corpus``), which results are labelled with.
        sample_rate: the speech's rate in Hz (``data.speech.sample_rate``, which frontends read as
            ``data.sample_rate``); ``None``: the speech's.
        noise_dir: folder of ``.wav`` noise recordings (e.g. a corpus's ``_background_noise_``), read at the
            speech's rate; ``None``: synthesised white, pink and brown noise.
        babble_talkers: other-speaker examples summed into babble noise (0: no babble).
        train_snr_db: ``(low, high)``: training SNRs are uniform in this range.
        eval_snr_db: the SNRs every validation and test example is mixed at.
        eval_clips: clean examples per validation and test split (a seeded choice); ``None``: all.
        synthetic_noise_seconds: length of each synthesised noise per split.
        mix_seed: seeds the validation and test pairs and the synthesised noise.
        batch_size, num_workers, pin_memory: as every data module.

    Raises:
        ValueError: for SNR ranges, counts or sizes that cannot work, or a ``sample_rate`` other than the
            speech's, naming ``data.<key>``.
        FileNotFoundError: a ``noise_dir`` that is missing or holds no ``.wav`` file.
    """

    TARGETS = "clean_speech"
    collate_fn = staticmethod(collate_pairs)

    def __init__(
        self,
        speech: TaskDataModule,
        corpus: str | None = None,
        sample_rate: int | None = None,
        noise_dir: str | Path | None = None,
        babble_talkers: int = 3,
        train_snr_db: Sequence[float] = (0.0, 15.0),
        eval_snr_db: Sequence[float] = (0.0, 5.0, 10.0, 15.0),
        eval_clips: int | None = 200,
        synthetic_noise_seconds: float = 30.0,
        mix_seed: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(speech, corpus, sample_rate, batch_size, num_workers, pin_memory)
        if len(train_snr_db) != 2 or not train_snr_db[0] <= train_snr_db[1]:
            raise ValueError(
                f"data.train_snr_db must be [low, high] in dB with low <= high, got {list(train_snr_db)}: "
                "e.g. data.train_snr_db=[0,15]"
            )
        if not eval_snr_db:
            raise ValueError("data.eval_snr_db must list at least one SNR in dB, e.g. [0, 5, 10, 15]")
        if babble_talkers < 0:
            raise ValueError(f"data.babble_talkers must be >= 0 (0: no babble), got {babble_talkers}")
        if eval_clips is not None and eval_clips < 1:
            raise ValueError(f"data.eval_clips must be >= 1 or null (all), got {eval_clips}")
        if synthetic_noise_seconds <= 0:
            raise ValueError(f"data.synthetic_noise_seconds must be positive, got {synthetic_noise_seconds}")
        self.save_hyperparameters(ignore=["speech"], logger=False)
        self.noise_dir = Path(noise_dir).expanduser() if noise_dir is not None else None
        self.babble_talkers = babble_talkers
        self.train_snr_db = (float(train_snr_db[0]), float(train_snr_db[1]))
        self.eval_snr_db = [float(snr) for snr in eval_snr_db]
        self.eval_clips = eval_clips
        self.synthetic_noise_seconds = synthetic_noise_seconds
        self.mix_seed = mix_seed

    @property
    def label_names(self) -> list[str]:
        """No labels: the targets are waveforms."""
        return []

    def prepare_data(self) -> None:
        """Prepare the speech (generate or download it as its module does) and check the noise folder."""
        super().prepare_data()
        self._noise_paths()

    def setup(self, stage: str | None = None) -> None:
        """Set up the speech splits ``stage`` needs and build their pairs."""
        self.speech.setup(stage)
        for split in self.stage_splits(stage):
            if split not in self._datasets:
                self._datasets[split] = self._build_split(split)

    def _build_split(self, split: str) -> Dataset:
        count = len(self.speech.files(split))
        bank = NoiseBank(
            self._recordings(split),
            self.babble_talkers,
            self.speech.speakers(split),
            lambda index: self.speech.waveform(split, index),
        )
        if split == "train":
            log.info("Denoising training split: %d clean examples, noise %s", count, bank.kinds)
            return TrainingPairs(self.speech, bank, self.train_snr_db)
        pairs = FixedPairs(self.speech, split, bank, self.eval_snr_db, self.eval_clips, self._seed(split))
        log.info(
            "Denoising %s split: %d pairs (%d clean examples x SNRs %s dB), noise %s",
            split,
            len(pairs),
            len(pairs) // len(self.eval_snr_db),
            self.eval_snr_db,
            bank.kinds,
        )
        return pairs

    def _seed(self, split: str) -> int:
        return 1000 * self.mix_seed + SPLITS.index(split)

    def _noise_paths(self) -> list[Path]:
        return [] if self.noise_dir is None else noise_recordings(self.noise_dir, "data.noise_dir")

    def _recordings(self, split: str) -> dict[str, list[torch.Tensor]]:
        """Noise recordings of ``split`` (:func:`src.data.denoising.noise.split_noise`), synthesised
        noise seeded per split."""
        generator = torch.Generator().manual_seed(self._seed(split))
        paths = self._noise_paths()
        return split_noise(split, self.sample_rate, paths, self.synthetic_noise_seconds, generator)
