"""Checkpoints written so that a full disk or a kill never leaves a half-written file under a
checkpoint's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from src.utils.run_files import atomic_write


class SameFolderCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` for local folders, but each checkpoint is written to a temporary
    file in its own folder and renamed into place (:func:`src.utils.run_files.atomic_write`).

    Lightning's own save stages the file in the system temporary folder and moves it across file systems
    when committing, so a full log folder leaves a truncated, unloadable checkpoint under the final name
    (e.g. ``last.ckpt``); here the earlier checkpoint of that name stays as it was, no temporary file is
    left, and the ``OSError`` (``ENOSPC``) names the folder.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` with ``torch.save``, atomically.

        Raises:
            TypeError: when ``storage_options`` is given (as ``TorchCheckpointIO``).
            OSError: when the folder cannot take the file (full disk, read-only), naming it.
        """
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        try:
            with atomic_write(path, "wb") as stream:
                torch.save(checkpoint, stream)
        except OSError as error:
            raise OSError(
                error.errno,
                f"Could not write the checkpoint {path} ({error.strerror or error}); the folder's earlier "
                "checkpoints are unchanged. Free space there, or write the runs elsewhere with "
                "paths.log_dir=<folder>",
            ) from error
