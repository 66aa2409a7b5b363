"""Training on several processes (``trainer=ddp``): which process writes the run's files, validation
without duplicated examples, and the one test after fitting.

Lightning's DDP starts the other processes of a node by running the same command again
(``python train.py <overrides> hydra.run.dir=<this run's folder> hydra.output_subdir=null``, with
``LOCAL_RANK`` set), so every process composes the config and runs :func:`src.training.train`; only
global rank 0 (:func:`is_global_zero`) writes ``metrics.json`` and the test's outputs, and Lightning
writes checkpoints and logger files from rank 0 alone.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import lightning as L
import torch.distributed
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities.data import _update_dataloader
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from torch.utils.data import DataLoader, DistributedSampler

log = logging.getLogger(__name__)

SINGLE_PROCESS: dict[str, Any] = {"devices": 1, "num_nodes": 1, "strategy": "auto"}
"""Trainer arguments that turn any ``trainer`` config into one process on one device (of its
``accelerator``)."""


def is_global_zero() -> bool:
    """Whether this process is global rank 0, the one that writes a run's files: true in a single-process
    run and in the process the user started on node 0; false in the processes Lightning's DDP launcher
    starts (``LOCAL_RANK`` > 0), on other nodes (``NODE_RANK`` > 0) and in ranks > 0 of a cluster
    (``RANK``, ``SLURM_PROCID``). Right before the Trainer exists (from the environment) and after it
    (Lightning sets the rank when it builds its strategy)."""
    if rank_zero_only.rank != 0:
        return False
    return "RANK" in os.environ or int(os.environ.get("NODE_RANK", "0")) == 0


def check_sweepable(trainer: L.Trainer) -> None:
    """Refuse a job of a Hydra multirun (``-m``) whose trainer would start its other processes by running
    the command again: that command is the whole sweep.

    Raises:
        ValueError: naming ``trainer=ddp`` and what works instead.
    """
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    launcher = trainer.strategy.launcher
    if (
        isinstance(launcher, _SubprocessScriptLauncher)
        and not launcher.cluster_environment.creates_processes_externally
    ):
        raise ValueError(
            f"trainer=ddp with {trainer.world_size} processes cannot run in a multirun (-m): Lightning "
            "starts the other processes by running the same command again, which would start the whole "
            "sweep again. Run each configuration as a single run (python train.py trainer=ddp ...), or sweep "
            "with one process per job (trainer=default, cpu or gpu), or with hydra/launcher=slurm and one "
            "SLURM task per device (SLURM then starts the processes)"
        )


def leave_process_group(trainer: L.Trainer) -> bool:
    """After ``trainer.fit``: when it ran in a process group (Lightning's DDP, with any number of
    processes), wait for every process and end the group, so that global rank 0 can go on alone (test
    with a :data:`SINGLE_PROCESS` trainer: ``trainer`` cannot run again). Returns whether it did."""
    if not torch.distributed.is_initialized():
        return False
    trainer.strategy.barrier("fit done")
    torch.distributed.destroy_process_group()
    return True


class EpochMetricsOnEveryProcess(L.Callback):
    """Computes the training epoch's logged values on every process first thing in
    ``on_train_epoch_end`` (put it first among the callbacks).

    Lightning's progress bar, enabled on global rank 0 alone, computes them in its own
    ``on_train_epoch_end``, which runs before the task's: each ``sync_dist`` value is an all-reduce on
    rank 0 only, so a collective that a task's (or a later callback's) ``on_train_epoch_end`` makes meets
    a different collective on the other ranks, and the run fails or hangs (Lightning issues #19604 and
    #21264). Computed here on every rank in the same order, the values are cached and the progress bar
    reduces nothing. With one process it changes nothing.
    """

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        computed = trainer.callback_metrics  # computing reduces each value over the processes
        log.debug("Epoch %d values computed on every process: %s", trainer.current_epoch, sorted(computed))


class ExactEvaluationDDPStrategy(DDPStrategy):
    """Lightning's DDP (``strategy=ddp``), with validation and test split among the processes without
    padding, so every example counts exactly once in the metrics.

    Lightning gives evaluation loaders a ``DistributedSampler``, which repeats the first examples until
    every process has as many (up to ``world_size - 1`` duplicates, which bias ``val/*`` and the
    checkpoint choice). Here they get an ``UnrepeatedDistributedSampler`` instead: process ``r`` of ``n``
    evaluates examples ``r, r + n, ...``, their batch counts differing by at most one. torchmetrics
    metrics and :meth:`src.tasks.base.FrontendEncoderTask.log_loss` then reduce over the whole split; a
    plain ``self.log(..., sync_dist=True)`` mean does not (Lightning divides the summed example count by
    the number of processes and rounds it down). Training loaders keep the padded, shuffled
    ``DistributedSampler`` (every process must step as often as the others). Every process needs at
    least one example of each evaluated split.
    """

    def process_dataloader(self, dataloader: object) -> object:
        dataloader = super().process_dataloader(dataloader)
        stage = self.lightning_module.trainer.state.stage
        if stage == RunningStage.TRAINING or not isinstance(dataloader, DataLoader):
            return dataloader
        sampler = dataloader.sampler
        if type(sampler) is not DistributedSampler:  # not Lightning's padded one: keep it
            return dataloader
        unpadded = UnrepeatedDistributedSampler(
            sampler.dataset, num_replicas=sampler.num_replicas, rank=sampler.rank, shuffle=sampler.shuffle
        )
        return _update_dataloader(dataloader, unpadded, mode=stage)
