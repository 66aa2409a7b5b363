"""The datasets of denoising pairs: training pairs drawn afresh, evaluation pairs fixed by a seed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from src.data.base import TaskDataModule
from src.data.denoising.noise import NoiseBank, NoiseChoice, mix_at_snr

Pair = tuple[torch.Tensor, int, torch.Tensor, float]
"""``(noisy (time,), length, clean (time,), snr_db)``."""
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(noisy (batch, time), lengths (batch,) int64, clean (batch, time), snr_db (batch,) float32)``."""


class TrainingPairs(Dataset[Pair]):
    """Each clean training example with noise drawn afresh on every access (global RNG)."""

    def __init__(self, speech: TaskDataModule, bank: NoiseBank, snr_db: tuple[float, float]) -> None:
        self.speech = speech
        self.bank = bank
        self.snr_db = snr_db
        self.files = list(speech.files("train"))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Pair:
        clean = self.speech.waveform("train", index)
        choice = self.bank.draw(index, len(clean))
        low, high = self.snr_db
        snr = low + (high - low) * float(torch.rand(()))
        noisy = mix_at_snr(clean, self.bank.noise(choice, len(clean)), snr)
        return noisy, len(clean), clean, snr


class FixedPairs(Dataset[Pair]):
    """``clips`` clean examples of ``split`` (seeded choice; ``None``: all), each at every SNR of
    ``snr_db`` with one noise drawn for it; item ``i`` is :attr:`files` ``[i]``."""

    def __init__(
        self,
        speech: TaskDataModule,
        split: str,
        bank: NoiseBank,
        snr_db: Sequence[float],
        clips: int | None,
        seed: int,
    ) -> None:
        self.speech = speech
        self.split = split
        self.bank = bank
        generator = torch.Generator().manual_seed(seed)
        names = speech.files(split)
        chosen = torch.randperm(len(names), generator=generator)[:clips].sort().values.tolist()
        self.pairs: list[tuple[int, float, NoiseChoice]] = []
        for index in chosen:
            choice = bank.draw(index, len(speech.waveform(split, index)), generator)
            self.pairs += [(index, float(snr), choice) for snr in snr_db]
        self.files = [f"{names[index]}@{snr:g}dB+{choice.describe()}" for index, snr, choice in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: int) -> Pair:
        index, snr, choice = self.pairs[item]
        clean = self.speech.waveform(self.split, index)
        return mix_at_snr(clean, self.bank.noise(choice, len(clean)), snr), len(clean), clean, snr


def collate_pairs(items: Sequence[Pair]) -> Batch:
    """Stack :data:`Pair` items into a :data:`Batch`, zero-padding to the longest."""
    lengths = torch.tensor([length for _, length, _, _ in items], dtype=torch.int64)
    time = int(lengths.max())
    noisy = torch.zeros(len(items), time)
    clean = torch.zeros(len(items), time)
    for row, (noisy_wave, length, clean_wave, _) in enumerate(items):
        noisy[row, :length] = noisy_wave[:length]
        clean[row, :length] = clean_wave[:length]
    return noisy, lengths, clean, torch.tensor([snr for *_, snr in items], dtype=torch.float32)
