"""A run's record, ``<run folder>/metrics.json``: what may go into a run folder, what a run's numbers
are worth (its caveats), and how a resumed run's record grows instead of being replaced."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.distributed import is_global_zero

log = logging.getLogger(__name__)

RECORD_NAME = "metrics.json"

# Trainer keys that cut a stage short, and the stage whose numbers they make partial.
LIMIT_KEYS = {
    "limit_train_batches": "training",
    "limit_val_batches": "validation",
    "limit_test_batches": "test",
}


def _is_full(limit: Any) -> bool:
    """Whether a ``limit_*_batches`` value keeps the whole split (``None`` or the fraction ``1.0``; an int
    is a number of batches, so ``1`` is one batch)."""
    return limit is None or (isinstance(limit, float) and limit == 1.0)


def check_trains_something(trainer: Mapping[str, Any]) -> None:
    """Refuse a trainer config that would test an untrained model as if it had been trained.

    Raises:
        ValueError: for ``trainer.max_epochs=0``, ``trainer.max_steps=0`` or ``limit_train_batches=0``,
            naming the key and a value that trains.
    """
    if trainer.get("fast_dev_run"):
        return
    for key, works in (("max_epochs", "20"), ("max_steps", "-1 (no step limit)")):
        if trainer.get(key) == 0:
            raise ValueError(
                f"trainer.{key}=0 trains nothing, and the test would score untrained weights: set "
                f"trainer.{key}={works}, or evaluate a trained checkpoint with test.py ckpt_path=..."
            )
    if trainer.get("limit_train_batches") in (0, 0.0):
        raise ValueError(
            "trainer.limit_train_batches=0 trains nothing: leave it out (all batches) or set a positive "
            "number of batches (e.g. 10) or fraction (e.g. 0.1)"
        )


def run_caveats(trainer: Mapping[str, Any]) -> list[str]:
    """Why a run's numbers are not a full result, one line per reason (empty for a full run): a
    ``fast_dev_run`` smoke test, or stages limited to part of their split."""
    if trainer.get("fast_dev_run"):
        return ["fast_dev_run: one batch per stage, a smoke test, not a result"]
    caveats = [
        f"trainer.{key}={trainer[key]}: part of the {stage} split"
        for key, stage in LIMIT_KEYS.items()
        if not _is_full(trainer.get(key))
    ]
    if trainer.get("overfit_batches"):
        caveats.append(f"trainer.overfit_batches={trainer['overfit_batches']}: a debugging run")
    return caveats


def is_smoke(record: Mapping[str, Any] | None) -> bool:
    """Whether a ``metrics.json`` comes from a run whose numbers are not a full result
    (:func:`run_caveats`, or a record written before caveats existed with ``fast_dev_run``)."""
    return bool(record) and bool(record.get("caveats") or record.get("fast_dev_run"))


def check_run_folder(output_dir: Path, ckpt_path: str | None, task_name: str | None = None) -> None:
    """Refuse to start a run in a folder that already holds a run's record, unless this run continues
    that run: resumed from one of the folder's own checkpoints, with the same ``task_name`` (so
    ``test.py`` never writes into the training run it evaluates).

    Raises:
        FileExistsError: naming the folder, ``hydra.run.dir`` and the resume command.
    """
    record = read_record(output_dir / RECORD_NAME)
    if record is None and not (output_dir / RECORD_NAME).exists():
        return
    continues = ckpt_path and Path(ckpt_path).resolve().is_relative_to(output_dir.resolve())
    if continues and (task_name is None or (record or {}).get("task_name") in (None, task_name)):
        return
    raise FileExistsError(
        f"{output_dir} already holds a run ({RECORD_NAME}); nothing is written into another run's folder. "
        f"Leave hydra.run.dir out (each run gets a new folder), or continue that run with "
        f"python train.py ckpt_path={output_dir / 'checkpoints' / 'last.ckpt'}"
    )


class RunFolderGuard(Callback):
    """Hydra callback: before Hydra writes ``.hydra/`` into a run's folder (or a sweep's), stop with exit
    status 1 when the folder already holds another run (:func:`check_run_folder`), so an explicit
    ``hydra.run.dir`` / ``hydra.sweep.dir`` naming an existing folder loses nothing. The other processes
    of a distributed run, which Lightning starts in rank 0's folder, are not checked."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_global_zero():  # a process Lightning started for rank > 0, in rank 0's folder
            return
        try:
            check_run_folder(Path(config.hydra.run.dir), config.get("ckpt_path"), config.get("task_name"))
        except FileExistsError as error:
            log.error("%s", error)
            raise SystemExit(1) from error  # Hydra turns a callback's Exception into a warning

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        taken = sorted(path.parent.name for path in sweep_dir.glob(f"*/{RECORD_NAME}"))
        if taken:
            log.error(
                "%s already holds a sweep (jobs %s have a %s); nothing is written into another sweep's "
                "folder: leave hydra.sweep.dir out (each sweep gets a new folder)",
                sweep_dir,
                ", ".join(taken),
                RECORD_NAME,
            )
            raise SystemExit(1)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``; None when there is none (or it cannot be read, e.g. a run killed while
    its first record was written)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def merge_records(earlier: Mapping[str, Any] | None, latest: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a run that ``latest`` continued (a resume in the same folder): ``latest``'s fields,
    ``metrics`` holding every earlier metric that was not measured again, wall time summed, and
    ``attempts`` listing each start (when, overrides, status, wall time). Nothing recorded is lost."""
    attempt = {
        key: latest.get(key)
        for key in ("started", "overrides", "status", "error", "wall_time_s", "ckpt_path")
    }
    if not earlier:
        return {**latest, "attempts": [attempt]}
    merged = {**earlier, **latest}
    merged["metrics"] = {**earlier.get("metrics", {}), **latest.get("metrics", {})}
    if len(earlier.get("epoch_times_s", [])) > len(latest.get("epoch_times_s", [])):
        merged["epoch_times_s"] = earlier["epoch_times_s"]
    merged["attempts"] = [*earlier.get("attempts", []), attempt]
    merged["wall_time_s"] = sum(a.get("wall_time_s") or 0.0 for a in merged["attempts"])
    if latest.get("status") != "ok" and earlier.get("status") == "ok":
        merged["status"] = "ok"  # a failed re-run of a finished run leaves its result standing
        merged.pop("error", None)
    return merged
