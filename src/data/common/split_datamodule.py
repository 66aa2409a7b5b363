"""What the data modules share: three splits, their datasets built on demand, and their loaders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader, Dataset

from src.data.base import TaskDataModule

SPLITS = ("train", "val", "test")
STAGE_SPLITS = {
    None: ("train", "val", "test"),
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}


class SplitDataModule(TaskDataModule):
    """A data module whose subclass builds each split's dataset (with a ``files`` list) in ``setup``.

    Subclasses set ``batch_size``, ``num_workers``, ``pin_memory`` and fill ``_datasets``; ``collate_fn``
    (``None``: the default collation) turns a list of items into a batch.
    """

    collate_fn: Callable[[list[Any]], Any] | None = None

    def __init__(self, batch_size: int, num_workers: int, pin_memory: bool) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"data.batch_size must be positive, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self._datasets: dict[str, Dataset] = {}

    @staticmethod
    def stage_splits(stage: str | None) -> tuple[str, ...]:
        """The splits Lightning's ``stage`` needs."""
        if stage not in STAGE_SPLITS:
            raise ValueError(f"Unknown stage {stage!r}; expected one of {list(STAGE_SPLITS)}")
        return STAGE_SPLITS[stage]

    def files(self, split: str) -> list[str]:
        """Paths of ``split``'s items (``"train"``, ``"val"`` or ``"test"``) relative to the corpus folder, in
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

    def _dataset(self, split: str) -> Any:
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLITS)}")
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
            collate_fn=type(self).collate_fn,
            drop_last=False,
            # Workers start afresh each epoch: a persistent loader draws its workers' base seed only in
            # its first epoch, so a resumed run would draw one number more than the uninterrupted one.
            persistent_workers=False,
        )
