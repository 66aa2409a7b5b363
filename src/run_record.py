"""A run's record, ``<run folder>/metrics.json``: what may go into a run folder, what a run's numbers
are worth (its caveats), and how a resumed run's record grows instead of being replaced."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

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
    """Refuse a trainer config that would test an untrained model as if it had been trained, or train
    without end.

    Raises:
        ValueError: for ``trainer.max_epochs`` below 1 (``-1``, Lightning's "no limit", included: the
            learning-rate schedule needs a length), ``trainer.max_steps=0`` or ``limit_train_batches=0``,
            naming the key and a value that trains.
    """
    max_epochs = trainer.get("max_epochs")
    if isinstance(max_epochs, int) and max_epochs < 1:
        raise ValueError(
            f"trainer.max_epochs={max_epochs} trains nothing (or without end, which the learning-rate "
            "schedule cannot follow), and the test would score untrained weights: set "
            "trainer.max_epochs=20, or evaluate a trained checkpoint with test.py ckpt_path=..."
        )
    if trainer.get("max_steps") == 0:
        raise ValueError(
            "trainer.max_steps=0 trains nothing, and the test would score untrained weights: set "
            "trainer.max_steps=-1 (no step limit), or evaluate a trained checkpoint with test.py "
            "ckpt_path=..."
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


RUN_MARKERS = (RECORD_NAME, ".hydra", "checkpoints", "multirun.yaml")
"""What a folder that holds a run (or a sweep) has, before or after its record is written."""


def folder_task_name(folder: Path) -> str | None:
    """The ``task_name`` of the run in ``folder``: from its record, else from its ``.hydra/config.yaml``."""
    record = read_record(folder / RECORD_NAME)
    if record and record.get("task_name"):
        return record["task_name"]
    config = folder / ".hydra" / "config.yaml"
    return OmegaConf.load(config).get("task_name") if config.is_file() else None


def check_run_folder(
    output_dir: Path,
    ckpt_path: str | None,
    task_name: str | None = None,
    markers: tuple[str, ...] = (RECORD_NAME,),
) -> None:
    """Refuse to start a run in a folder that already holds a run (any of ``markers``: by default its
    record; :class:`RunFolderGuard`, which runs before Hydra writes, also its ``.hydra/``, checkpoints or a
    sweep's files) or a sweep's job folders, unless this run continues that run: resumed from one of the
    folder's own checkpoints, with the same ``task_name`` (so ``test.py`` never writes into the training run
    it evaluates).

    Raises:
        FileExistsError: naming the folder, ``hydra.run.dir`` and the resume command.
    """
    found = [name for name in markers if (output_dir / name).exists()]
    found += sorted({f"{path.parent.parent.name}/" for path in output_dir.glob("*/.hydra/overrides.yaml")})
    if not found:
        return
    continues = ckpt_path and Path(ckpt_path).resolve().is_relative_to(output_dir.resolve())
    if continues and folder_task_name(output_dir) in (None, task_name):
        return
    raise FileExistsError(
        f"{output_dir} already holds a run or sweep ({', '.join(found)}); nothing is written into another "
        "run's folder. Leave hydra.run.dir out (each run gets a new folder), or continue that run with "
        f"python train.py ckpt_path={output_dir / 'checkpoints' / 'last.ckpt'} (and that run's overrides)"
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
            check_run_folder(
                Path(config.hydra.run.dir), config.get("ckpt_path"), config.get("task_name"), RUN_MARKERS
            )
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
    """The record of a run that ``latest`` continued (a resume in the same folder), of which ``earlier``
    is the record so far. Nothing recorded is lost: ``attempts`` lists each start (when, overrides,
    status, error, wall time) and the wall time is their sum. A successful attempt's fields replace the
    earlier ones, with ``metrics`` keeping every earlier metric not measured again and no stale
    ``error``; an unsuccessful one (refused, failed, interrupted) only adds its attempt, unless no attempt
    has succeeded yet."""
    attempt = {
        key: latest.get(key)
        for key in ("started", "overrides", "status", "error", "wall_time_s", "ckpt_path")
    }
    if not earlier:
        return {**latest, "attempts": [attempt]}
    if latest.get("status") == "ok":
        merged = {**earlier, **latest}
        merged.pop("error", None)  # an earlier attempt's error is in its attempt
        merged["metrics"] = {**earlier.get("metrics", {}), **latest.get("metrics", {})}
        if len(earlier.get("epoch_times_s", [])) > len(latest.get("epoch_times_s", [])):
            merged["epoch_times_s"] = earlier["epoch_times_s"]
    elif earlier.get("status") == "ok":
        merged = dict(earlier)  # a failed re-run of a finished run leaves its result standing
    else:
        merged = {**earlier, **latest}
    merged["attempts"] = [*earlier.get("attempts", []), attempt]
    merged["wall_time_s"] = sum(a.get("wall_time_s") or 0.0 for a in merged["attempts"])
    return merged
