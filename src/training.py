"""Fit a model from a composed config, test its best checkpoint, write the run's ``metrics.json``."""

from __future__ import annotations

import logging
import math
import os
import platform
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.callbacks import EpochTrainingTimer, RunConfigInCheckpoint
from src.dashboard import log_complexity, log_hyperparameters
from src.data.base import TaskDataModule
from src.distributed import (
    SINGLE_PROCESS,
    EpochMetricsOnEveryProcess,
    check_sweepable,
    is_global_zero,
    leave_process_group,
)
from src.resume import check_resumable, resume_command
from src.run_record import (
    RECORD_NAME,
    check_run_folder,
    check_trains_something,
    merge_records,
    read_record,
    run_caveats,
)
from src.tasks.base import FrontendEncoderTask
from src.utils.complexity import serialized_bytes
from src.utils.latency import median_latency
from src.utils.run_files import write_json_atomic

log = logging.getLogger(__name__)

GENERATED_CORPUS_NOTE = "generated corpus: synthetic espeak-ng speech, not real recordings"
LATENCY_NOTE = (
    "median wall time of one forward pass (frontend + backbone) of one example at batch 1 on the CPU, "
    "after warm-up, measured at the end of the run: other processes on the machine (such as other jobs) "
    "slow it down"
)


def corpus_note(corpus: str | None) -> str:
    """How results on ``corpus`` (``data.corpus``) must be labelled wherever they are shown."""
    if corpus is None:
        return "corpus not named (no data.corpus)"
    return GENERATED_CORPUS_NOTE if corpus == "generated" else f"{corpus} corpus"


def command_line_overrides() -> list[str]:
    """The overrides this Hydra job was started with (empty outside a Hydra app)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def hardware_description() -> dict[str, Any]:
    """Where a run was measured: CPU model, cores, torch threads, GPU (if any)."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """One logger per entry of ``cfg.logger`` (TensorBoard by default)."""
    return [instantiate(entry) for entry in (cfg.get("logger") or {}).values()]


def build_task(run_config: Mapping[str, Any], datamodule: TaskDataModule) -> FrontendEncoderTask:
    """The task of ``run_config["task"]`` (its ``_target_`` class, with the rest of the node as arguments),
    given the run's ``frontend``, ``model`` (the encoder), ``optimizer`` and ``scheduler`` configs and the
    data module's label names and example length. Fails before training, naming the key, when the parts
    do not fit."""
    settings = dict(run_config["task"])
    task_class = get_class(settings.pop("_target_"))
    if task_class.TARGETS != datamodule.TARGETS:
        raise ValueError(
            f"task={task_class.__name__} trains on {task_class.TARGETS!r} targets, but the data "
            f"({type(datamodule).__name__}) serves {datamodule.TARGETS!r} targets: leave task= out (each "
            "data config selects its task) or choose data that fits the task"
        )
    return task_class(
        **settings,
        frontend=run_config["frontend"],
        encoder=run_config["model"],
        optimizer=run_config["optimizer"],
        scheduler=run_config.get("scheduler"),
        label_names=datamodule.label_names,
        example_samples=datamodule.example_samples,
    )


def cpu_footprint(model: FrontendEncoderTask, num_samples: int) -> dict[str, Any]:
    """What the trained model costs to ship: ``size_on_disk`` (``backbone_bytes``: the encoder's and heads'
    ``state_dict`` saved by ``torch.save``) and ``latency`` (:func:`src.utils.latency.median_latency` of
    ``model(waveform, lengths)`` for one example of ``num_samples`` samples, batch 1, in eval mode on the
    CPU; the model is moved there). A compiled encoder (``task.compile``) is not timed: it would compile
    again for the CPU."""
    backbone = nn.ModuleDict({"encoder": model.encoder, **model.heads()})
    footprint: dict[str, Any] = {"size_on_disk": {"backbone_bytes": serialized_bytes(backbone)}}
    if model.compiles_encoder:
        footprint["latency"] = {"skipped": "task.compile=true: the compiled encoder is not timed on the CPU"}
        return footprint
    model.cpu().eval()
    waveform = 0.1 * torch.randn(1, num_samples, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([num_samples])
    with torch.inference_mode():
        latency = median_latency(lambda: model(waveform, lengths)).as_dict()
    footprint["latency"] = {
        **latency,
        "example_samples": num_samples,
        "batch_size": 1,
        "device": "cpu",
        "note": LATENCY_NOTE,
    }
    return footprint


def train(cfg: DictConfig) -> dict[str, Any] | None:
    """Fit, then test the best checkpoint (the last weights when none was saved, as with
    ``fast_dev_run``). Writes ``metrics.json`` in ``cfg.paths.output_dir``, also when a step fails
    (``status: failed`` and the error), and returns its content.

    On several processes (``trainer=ddp``) every process fits; global rank 0 alone then tests, writes
    ``metrics.json`` and returns it; the other processes write nothing and return ``None``
    (:mod:`src.distributed`)."""
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = cfg.get("ckpt_path")
    if is_global_zero():  # the other processes of a distributed run write into rank 0's folder
        check_run_folder(output_dir, ckpt_path, cfg.task_name)
    summary: dict[str, Any] = {
        "status": "failed",
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "task_name": cfg.task_name,
        "corpus": cfg.data.get("corpus"),
        "corpus_note": corpus_note(cfg.data.get("corpus")),
        "seed": cfg.seed,
        "question": cfg.get("question"),
        "overrides": command_line_overrides(),
        "ckpt_path": ckpt_path,
        "fast_dev_run": bool(cfg.trainer.get("fast_dev_run", False)),
        "caveats": run_caveats(cfg.trainer),
        "hardware": hardware_description(),
    }
    metrics_path = output_dir / RECORD_NAME
    start = time.perf_counter()
    try:
        result = _fit_and_test(cfg)
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt | SystemExit):  # Lightning exits 1 after Ctrl+C
            summary["status"] = "interrupted"
            summary["error"] = (
                f"interrupted ({type(error).__name__}); continue it with "
                f"{resume_command(output_dir / 'checkpoints' / 'last.ckpt')}"
            )
        else:
            summary["error"] = f"{type(error).__name__}: {error}"
        summary["wall_time_s"] = time.perf_counter() - start
        if is_global_zero():
            write_json_atomic(metrics_path, merge_records(read_record(metrics_path), summary))
        raise
    if result is None:  # another process of a distributed run: global rank 0 reports
        return None
    summary.update(result)
    summary["status"] = "ok"
    summary["wall_time_s"] = time.perf_counter() - start
    # A resumed run continues in its folder: its record keeps what earlier attempts measured.
    record = merge_records(read_record(metrics_path), summary)
    write_json_atomic(metrics_path, record)
    return record


def _fit_and_test(cfg: DictConfig) -> dict[str, Any] | None:
    check_trains_something(cfg.trainer)
    L.seed_everything(cfg.seed, workers=True)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    if cfg.get("ckpt_path"):
        check_resumable(cfg.ckpt_path, run_config)
    datamodule = instantiate(cfg.data, _convert_="all")
    model = build_task(run_config, datamodule)
    # First: its on_train_epoch_end must run before every other (see the class).
    callbacks: list[L.Callback] = [EpochMetricsOnEveryProcess()]
    callbacks += [instantiate(entry) for entry in (cfg.get("callbacks") or {}).values()]
    callbacks.append(RunConfigInCheckpoint(run_config))
    loggers = build_loggers(cfg)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    check_sweepable(trainer)
    monitored = [(c.monitor, c.mode) for c in trainer.checkpoint_callbacks if c.monitor is not None]
    if monitored and monitored != [(model.monitor, model.mode)]:
        raise ValueError(
            f"callbacks.model_checkpoint follows {monitored[0][0]} ({monitored[0][1]}), but the task picks "
            f"checkpoints by {model.monitor} ({model.mode}): set task.monitor and task.mode instead (the "
            "checkpoint callback follows them)"
        )

    # One example: a clip, or one second of an utterance corpus (TIMIT).
    complexity = model.complexity(datamodule.example_samples)
    log_complexity(loggers, complexity)
    log.info("Complexity: %s", complexity)

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    epochs_completed = trainer.current_epoch

    # The monitored checkpoint is the best; an unmonitored one keeps the latest epoch (last.ckpt).
    # Read before testing: restoring the best checkpoint also restores the callbacks' older state.
    best = next((c for c in trainer.checkpoint_callbacks if c.monitor is not None), None)
    latest = next((c for c in trainer.checkpoint_callbacks if c.monitor is None), None)
    best_path = best.best_model_path if best is not None else ""
    best_score = best.best_model_score if best is not None else None
    last_path = latest.best_model_path if latest is not None else ""
    world_size = trainer.world_size
    # After DDP, global rank 0 tests alone on one device (each test example once); the others are done.
    if leave_process_group(trainer):
        if not trainer.is_global_zero:
            return None
        trainer = instantiate(cfg.trainer, **SINGLE_PROCESS, callbacks=callbacks, logger=loggers)
    if not best_path:
        log.warning("No checkpoint was saved (fast_dev_run?): testing the final weights")
    test_metrics = trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None)[0]
    test_analysis = model.write_test_outputs(datamodule, Path(cfg.paths.output_dir), loggers)
    footprint = cpu_footprint(model, datamodule.example_samples)

    metrics = {**fit_metrics, **{name: float(value) for name, value in test_metrics.items()}}
    best_name = f"{model.monitor}_best"
    metrics[best_name] = float(best_score) if best_score is not None else metrics.get(model.monitor, math.nan)
    hparam_metrics = {
        f"hparams/{model.test_metric.replace('/', '_')}": metrics[model.test_metric],
        f"hparams/{best_name.replace('/', '_')}": metrics[best_name],
    }
    log_hyperparameters(loggers, run_config, hparam_metrics, complexity)

    timers = [callback for callback in callbacks if isinstance(callback, EpochTrainingTimer)]
    return {
        "metrics": metrics,
        "task": type(model).__name__,
        "test_metric": model.test_metric,
        "test_metric_mode": model.test_mode,
        "monitor": model.monitor,
        "monitor_mode": model.mode,
        "best_metric": best_name,
        "frontend_setting": model.frontend.setting_name(),
        "complexity": complexity,
        **footprint,
        "compression": model.compression_summary(),
        "epoch_times_s": timers[0].epoch_times if timers else [],
        "epochs_completed": epochs_completed,
        "world_size": world_size,
        "split_sizes": {split: len(datamodule.files(split)) for split in ("train", "val", "test")},
        "test_analysis": test_analysis,
        "best_checkpoint": best_path or None,
        "last_checkpoint": last_path or None,
        "output_dir": str(cfg.paths.output_dir),
    }
