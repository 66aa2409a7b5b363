"""Stores the run's resolved config in every checkpoint, so a checkpoint alone can be evaluated."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

RUN_CONFIG_KEY = "run_config"
FORMAT_KEY = "checkpoint_format"
CHECKPOINT_FORMAT = 2
"""Format 2: a task config (``task=``) with frontend, encoder and head; format 1 (no key) had backbones
with built-in classifiers and is refused."""
ZIP_MAGIC = b"PK\x03\x04"
"""The first bytes of every file ``torch.save`` writes (a zip archive)."""


class RunConfigInCheckpoint(L.Callback):
    """Adds ``checkpoint["run_config"]``: the resolved config (plain containers) of the run, and
    ``checkpoint["checkpoint_format"]``: :data:`CHECKPOINT_FORMAT`."""

    def __init__(self, run_config: Mapping[str, Any]) -> None:
        self.run_config = dict(run_config)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RUN_CONFIG_KEY] = self.run_config
        checkpoint[FORMAT_KEY] = CHECKPOINT_FORMAT


CHECKPOINT_HINT = (
    "pass a checkpoint written by this project's train.py: a run's checkpoints/last.ckpt (its latest "
    "epoch) or checkpoints/epoch_<n>.ckpt (its best), e.g. logs/train/runs/<run>/checkpoints/last.ckpt"
)
"""What ``ckpt_path`` must be, appended to every refusal of a file."""

RUN_CONFIG_GROUPS = ("data", "frontend", "model", "task", "optimizer", "seed")
"""Keys of the run config that evaluating or resuming reads."""


def load_run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved config that :class:`RunConfigInCheckpoint` stored in a checkpoint: what ``test.py``
    evaluates and ``train.py ckpt_path=...`` resumes.

    Raises:
        FileNotFoundError: when ``ckpt_path`` does not exist (saying so when it starts with a ``~`` that
            the shell did not expand).
        IsADirectoryError: when it is a folder (listing the checkpoints under it).
        ValueError: naming the file and what to pass instead, for a file that is no checkpoint of this
            project: empty, truncated or corrupt, not a PyTorch file, holding Python objects other than
            tensors and containers, a checkpoint of another project (no run config, no weights), or one
            of an older format (written before tasks became configuration), which this code cannot
            rebuild.
    """
    ckpt_path = Path(ckpt_path)
    if ckpt_path.is_dir():
        found = sorted(ckpt_path.rglob("*.ckpt"), key=lambda path: (path.name != "last.ckpt", str(path)))
        found = [str(path) for path in found[:5]]
        listing = f"; it holds {', '.join(found)}" if found else " and holds no .ckpt file"
        raise IsADirectoryError(f"ckpt_path={ckpt_path} is a folder{listing}: {CHECKPOINT_HINT}")
    if not ckpt_path.is_file():
        home = ckpt_path.expanduser()
        if home != ckpt_path and home.exists():
            raise FileNotFoundError(
                f"ckpt_path={ckpt_path} is not a file: zsh and sh leave ~ after ckpt_path= unexpanded, so "
                f"write the path out: ckpt_path={home}"
            )
        raise FileNotFoundError(f"ckpt_path={ckpt_path} is not a file: {CHECKPOINT_HINT}")
    checkpoint = read_checkpoint(ckpt_path)
    if not isinstance(checkpoint, dict) or RUN_CONFIG_KEY not in checkpoint:
        kind = (
            "a Lightning checkpoint of another project"
            if isinstance(checkpoint, dict) and "pytorch-lightning_version" in checkpoint
            else f"a {type(checkpoint).__name__} saved with torch.save"
        )
        raise ValueError(
            f"ckpt_path={ckpt_path} holds no run config: it is {kind}, not written by this project's "
            f"train.py; {CHECKPOINT_HINT}"
        )
    if checkpoint.get(FORMAT_KEY) != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{ckpt_path} predates tasks as configuration (checkpoint format "
            f"{checkpoint.get(FORMAT_KEY, 1)}, this code reads {CHECKPOINT_FORMAT}): its backbone held the "
            "classifier that the task's head now holds. Retrain it with train.py, or evaluate it with the "
            "commit it was trained with (git checkout edacde1)"
        )
    run_config = checkpoint[RUN_CONFIG_KEY]
    missing = [key for key in RUN_CONFIG_GROUPS if not isinstance(run_config, dict) or key not in run_config]
    if missing or not isinstance(checkpoint.get("state_dict"), dict):
        lacking = (
            f"its run config lacks {', '.join(missing)}" if missing else "it holds no weights (state_dict)"
        )
        raise ValueError(f"ckpt_path={ckpt_path} is incomplete: {lacking}; {CHECKPOINT_HINT}")
    return OmegaConf.create(run_config)


def read_checkpoint(ckpt_path: Path) -> Any:
    """The object stored in ``ckpt_path`` by ``torch.save``, read on the CPU with ``weights_only=True``
    (tensors and plain containers only; a file that needs more is not one of this project's).

    Raises:
        OSError: when the file cannot be opened (permissions).
        ValueError: naming the file, its size and why it cannot be read, for anything ``torch.load``
            refuses: an empty, truncated or corrupt file, one that is not a PyTorch file, or one holding
            other Python objects.
    """
    with ckpt_path.open("rb") as file:
        magic = file.read(4)
    try:
        return torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load fails with many types (EOFError, UnpicklingError, KeyError, ...)
        size = ckpt_path.stat().st_size
        saved_by_torch = magic == ZIP_MAGIC or magic.startswith(b"\x80")  # a zip archive, or a bare pickle
        refused_objects = "Weights only load failed" in str(error)  # torch's advice to load anyway: left out
        if size == 0:
            why = "it is empty: the run that wrote it was probably killed or ran out of disk space"
        elif saved_by_torch and refused_objects:
            why = "it holds Python objects other than tensors and containers, which this project never saves"
        elif magic == ZIP_MAGIC:
            why = "it is truncated or corrupt (a zip archive that torch.load cannot read)"
        else:
            why = "it is not a PyTorch checkpoint"
        lines = [] if refused_objects else str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {lines[0][:100]}" if lines else type(error).__name__
        raise ValueError(
            f"ckpt_path={ckpt_path} cannot be read ({size} bytes; torch.load: {reason}): {why}; "
            f"{CHECKPOINT_HINT}"
        ) from error


def load_task_checkpoint(
    ckpt_path: str | Path, targets: str, wanted: str, key: str = "ckpt_path"
) -> tuple[L.LightningModule, DictConfig]:
    """The task of a ``train.py`` checkpoint whose ``TARGETS`` are ``targets`` (on the CPU, in eval mode)
    and its run config (:func:`load_run_config`).

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: from :func:`load_run_config`.
        ValueError: for a checkpoint of a task with other targets: ``<key>=<path> is a <task> checkpoint,
            <wanted> (its targets: ...)``, ``wanted`` saying what the command needs instead.
    """
    run_config = load_run_config(ckpt_path)
    task_class = get_class(run_config.task._target_)
    if targets != task_class.TARGETS:
        raise ValueError(
            f"{key}={ckpt_path} is a {task_class.__name__} checkpoint, {wanted} (its targets: "
            f"{task_class.TARGETS!r}, not {targets!r})"
        )
    task = task_class.load_from_checkpoint(ckpt_path, map_location="cpu")
    task.eval()
    return task, run_config
