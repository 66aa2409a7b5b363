"""What the data modules built on another data module's speech share (``data.speech``: denoising pairs,
speaker-verification trials): the speech module, its corpus and rate, and preparing it."""

from __future__ import annotations

from src.data.base import TaskDataModule
from src.data.common.split_datamodule import SplitDataModule


class SpeechDerivedDataModule(SplitDataModule):
    """A data module whose examples are made from the items of ``speech``, another data module.

    Args:
        speech: the data module the speech comes from (``data.speech``); its own splits are used.
        corpus: the speech's corpus (``data.speech.corpus``), which results are labelled with.
        sample_rate: the speech's rate in Hz (``data.speech.sample_rate``, which frontends read as
            ``data.sample_rate``); ``None``: the speech's.
        batch_size, num_workers, pin_memory: as every data module.

    Raises:
        ValueError: a ``sample_rate`` other than the speech's, naming ``data.speech.sample_rate``.
    """

    def __init__(
        self,
        speech: TaskDataModule,
        corpus: str | None,
        sample_rate: int | None,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if sample_rate is not None and sample_rate != speech.sample_rate:
            raise ValueError(
                f"data.sample_rate={sample_rate} differs from the speech's data.speech.sample_rate="
                f"{speech.sample_rate}: set data.speech.sample_rate (data.sample_rate follows it)"
            )
        self.speech = speech
        self.corpus = corpus

    @property
    def example_samples(self) -> int:
        """The speech module's example length."""
        return self.speech.example_samples

    @property
    def sample_rate(self) -> int:
        """The speech module's rate in Hz."""
        return self.speech.sample_rate

    def prepare_data(self) -> None:
        """Prepare the speech (generate or download it as its module does)."""
        self.speech.prepare_data()
