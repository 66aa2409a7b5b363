"""Where an SVD job of a compression sweep starts from: the full-rank job trained from scratch in the same
sweep with the same settings (model, seed, ...), found among the sweep's job folders.

``conf/experiment/lowrank_sweep.yaml`` sets ``compression.from_ckpt:
${lowrank_source:${init},${scratch_sweep},${hydra:overrides.task}}``; the resolver is
:func:`full_rank_scratch_checkpoint`. Its ``init`` axis comes first among the swept keys that matter, so
Hydra's basic launcher, which runs jobs one after the other in order, has finished every scratch job of a
seed before the SVD jobs that read them start.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from src.reporting.sweep_table import JobRun, find_jobs, parse_overrides, read_job

INIT_KEY = "init"
SWEEP_KEY = "scratch_sweep"
RANK_KEY = "compression.rank"
SCRATCH, SVD = "scratch", "svd"
FULL_RANKS = ("full", "null")
"""How a job's overrides spell ``compression.rank`` without factorisation."""
IGNORED = (INIT_KEY, SWEEP_KEY, RANK_KEY)
"""Overrides in which an SVD job and its source job may differ."""


def describe(overrides: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in overrides.items())


def full_rank_scratch_checkpoint(init: str, sweep_dir: str, overrides: Iterable[str]) -> str | None:
    """``compression.from_ckpt`` of a sweep job: ``None`` for ``init=scratch``; for ``init=svd``, the best
    checkpoint (``metrics.json``'s ``best_checkpoint``) of the job in ``sweep_dir`` whose overrides are
    this job's ``overrides`` (``hydra.overrides.task``) with ``init=scratch`` and ``compression.rank=full``
    (``scratch_sweep`` aside).

    Raises:
        ValueError: for an ``init`` other than ``scratch`` or ``svd``; when ``sweep_dir`` has no such job,
            or it has not finished (a parallel launcher runs jobs side by side), failed, or saved no
            checkpoint (``fast_dev_run``): each message says how to run the sweep instead.
    """
    if init == SCRATCH:
        return None
    if init != SVD:
        raise ValueError(f"{INIT_KEY} must be {SCRATCH} or {SVD}, got {init!r}: e.g. {INIT_KEY}={SCRATCH}")
    mine = {key: value for key, value in parse_overrides(list(overrides)).items() if key not in IGNORED}
    wanted = f"{INIT_KEY}={SCRATCH} {RANK_KEY}=full {describe(mine)}".strip()
    how = (
        f"run the scratch jobs first: python train.py -m experiment=lowrank_sweep runs {INIT_KEY}={SCRATCH} "
        f"before {INIT_KEY}={SVD} with Hydra's basic launcher; a parallel launcher runs them side by "
        f"side, so run {INIT_KEY}={SCRATCH} as one multirun and {INIT_KEY}={SVD} {SWEEP_KEY}=<its folder> "
        "as another"
    )
    try:
        jobs = [read_job(job) for job in find_jobs(Path(sweep_dir))]
    except FileNotFoundError as error:
        raise ValueError(
            f"{INIT_KEY}={SVD} starts from the job {wanted} of {SWEEP_KEY}: {error}; {how}"
        ) from None
    for job in jobs:
        others = {key: value for key, value in job.overrides.items() if key not in IGNORED}
        scratch = job.overrides.get(INIT_KEY) == SCRATCH and job.overrides.get(RANK_KEY) in FULL_RANKS
        if scratch and others == mine:
            return best_checkpoint(job, wanted, how)
    raise ValueError(f"{INIT_KEY}={SVD} starts from the job {wanted}, which {sweep_dir} does not hold: {how}")


def best_checkpoint(job: JobRun, wanted: str, how: str) -> str:
    """The best checkpoint of the finished source ``job`` (described by ``wanted``); else ``ValueError``
    saying why there is none, with ``how`` to run the sweep."""
    job_dir = job.job_dir
    if job.status == "missing":
        raise ValueError(f"{INIT_KEY}={SVD} starts from {job_dir} ({wanted}), which has not finished: {how}")
    if job.status != "ok":
        raise ValueError(f"{INIT_KEY}={SVD} starts from {job_dir} ({wanted}), which failed: {job.error}")
    best = (job.summary or {}).get("best_checkpoint")
    if not best or not Path(best).is_file():
        raise ValueError(
            f"{INIT_KEY}={SVD} starts from the best checkpoint of {job_dir} ({wanted}), which saved none "
            f"({best or 'no best_checkpoint in its metrics.json'}; trainer=fast_dev_run writes none): "
            "smoke-test the sweep with trainer.max_epochs=1 +trainer.limit_train_batches=1 "
            "+trainer.limit_val_batches=1 +trainer.limit_test_batches=1 instead"
        )
    return str(best)
