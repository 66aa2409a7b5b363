"""experiment=lowrank_sweep: each SVD job starts from the full-rank scratch job of its sweep with the same
model and seed (the lowrank_source resolver), which Hydra's basic launcher has run before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from src.compression.sweep_source import full_rank_scratch_checkpoint
from src.reporting.sweep_table import parse_overrides
from src.resolvers import register_resolvers
from tests.conftest import CONFIG_DIR, compose_config
from tests.reporting.sweep_folders import failed_summary, job_summary, write_job

SVD_JOB = ["experiment=lowrank_sweep", "seed=2", "init=svd", "model=mlp", "compression.rank=5"]


def write_summary(job: Path, summary: dict[str, Any]) -> None:
    (job / "metrics.json").write_text(json.dumps(summary))


def scratch_job(sweep: Path, num: int, model: str, seed: int, rank: str = "full") -> Path:
    """A finished job of ``sweep`` trained from scratch, with its best checkpoint."""
    overrides = [
        "experiment=lowrank_sweep",
        f"seed={seed}",
        "init=scratch",
        f"model={model}",
        f"compression.rank={rank}",
    ]
    job = write_job(sweep, num, overrides, None)
    checkpoint = job / "checkpoints" / "epoch_001.ckpt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights")
    write_summary(job, {**job_summary(0.9), "best_checkpoint": str(checkpoint)})
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Scratch jobs 0-7 (seeds 1, 2 x mlp, bcresnet1 x rank 5, full), then the running SVD job 8."""
    sweep = tmp_path / "multirun"
    jobs = [
        (seed, model, rank) for seed in (1, 2) for model in ("mlp", "bcresnet1") for rank in ("5", "full")
    ]
    for num, (seed, model, rank) in enumerate(jobs):
        scratch_job(sweep, num, model, seed, rank)
    write_job(sweep, len(jobs), SVD_JOB, None)
    return sweep


def test_an_svd_job_gets_the_best_checkpoint_of_its_full_rank_scratch_job(sweep: Path) -> None:
    assert full_rank_scratch_checkpoint("svd", str(sweep), SVD_JOB) == str(
        sweep / "5" / "checkpoints" / "epoch_001.ckpt"  # seed 2, mlp, full rank
    )
    assert full_rank_scratch_checkpoint("scratch", str(sweep), SVD_JOB) is None


def test_the_experiment_resolves_its_svd_jobs_source_and_fine_tuning_settings(sweep: Path) -> None:
    cfg = compose_config("config", [*SVD_JOB, f"scratch_sweep={sweep}"], mode=RunMode.MULTIRUN)
    assert cfg.compression.from_ckpt == str(sweep / "5" / "checkpoints" / "epoch_001.ckpt")
    assert (cfg.trainer.max_epochs, cfg.optimizer.lr) == (cfg.epochs_by_init.svd, 1e-4)
    scratch = compose_config("config", ["experiment=lowrank_sweep"], mode=RunMode.MULTIRUN)
    assert scratch.compression.from_ckpt is None
    assert scratch.trainer.max_epochs == scratch.epochs_by_init.scratch
    bcresnet = compose_config(
        "config", ["experiment=lowrank_sweep", "model=bcresnet1"], mode=RunMode.MULTIRUN
    )
    assert bcresnet.optimizer.lr == 3e-3


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", r"which .* does not hold: run the scratch jobs first"),
        ("unfinished", r"which has not finished: .*a parallel launcher runs them side by side"),
        ("failed", r"which failed: ValueError: boom"),
        ("no checkpoint", r"which saved none .*trainer=fast_dev_run writes none"),
    ],
)
def test_a_source_that_is_not_there_fails_saying_why_and_how_to_run_the_sweep(
    tmp_path: Path, damage: str, message: str
) -> None:
    sweep = tmp_path / "multirun"
    if damage != "missing":
        job = scratch_job(sweep, 0, "mlp", 2)
        if damage == "unfinished":
            (job / "metrics.json").unlink()
        elif damage == "failed":
            write_summary(job, failed_summary("ValueError: boom"))
        elif damage == "no checkpoint":
            write_summary(job, {**job_summary(0.9), "best_checkpoint": None})
    write_job(sweep, 1, SVD_JOB, None)
    with pytest.raises(ValueError, match=message):
        full_rank_scratch_checkpoint("svd", str(sweep), SVD_JOB)


def test_an_unknown_init_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"init must be scratch or svd, got 'fine-tune': e\.g\. init=scratch"
    ):
        full_rank_scratch_checkpoint("fine-tune", "/nowhere", SVD_JOB)


def test_the_basic_launcher_runs_every_source_before_the_svd_jobs_that_read_it() -> None:
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", ["experiment=lowrank_sweep"], return_hydra_config=True)
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
    jobs = [parse_overrides(job) for job in batch]
    assert len(jobs) == 72
    order = {tuple(sorted(job.items())): index for index, job in enumerate(jobs)}
    svd_jobs = [index for index, job in enumerate(jobs) if job["init"] == "svd"]
    assert len(svd_jobs) == 36
    for index in svd_jobs:
        source = {**jobs[index], "init": "scratch", "compression.rank": "full"}
        assert order[tuple(sorted(source.items()))] < index
