"""What a run shows in its loggers besides the per-step metrics the task logs: its complexity (a text
table) and its hyperparameters with the final metrics (a trial of TensorBoard's HParams tab).

Lightning finalises (flushes and closes) its loggers at the end of ``trainer.fit`` and of ``trainer.test``;
whatever is written after that, as these functions and the test outputs do, must be persisted by its
writer (``Logger.save``), or TensorBoard's background thread may still hold it when the process exits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

from src.utils.run_files import atomic_write

# The TensorBoard run, inside the logger's folder, that holds the run's HParams trial: its hyperparameters
# and, as its only scalars, the final metrics, so that the HParams tab lists no per-step series as metrics.
HPARAMS_RUN = "hparams"
# Complexity counts (without ``complexity/``) that the HParams tab shows beside the final metrics; the text
# table ``complexity`` holds every count.
HPARAMS_COMPLEXITY = (
    "frontend_params",
    "frontend_macs",
    "backbone_params",
    "backbone_macs",
    "total_params",
    "total_macs",
)
COMPLEXITY_TEXT_TAG = "complexity"
COMPLEXITY_NOTE = (
    "backbone = encoder + head, total = frontend + backbone. MACs of one example: a clip, or one second of "
    "an utterance corpus (TIMIT); how they are counted: docs/complexity.md."
)


def flat_hyperparameters(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar view of the parts of the config that define an experiment, for TensorBoard's
    HParams tab: ``{"frontend.n_mels": 40, "model.groups": 1, ...}``."""
    flat: dict[str, Any] = {"seed": run_config["seed"]}

    def visit(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                visit(f"{prefix}.{key}", value)
        elif isinstance(node, bool | int | float | str):
            flat[prefix] = node
        else:
            flat[prefix] = str(node)

    for group in ("data", "task", "frontend", "model", "optimizer", "scheduler", "augmentation"):
        if run_config.get(group) is not None:
            visit(group, run_config[group])
    return flat


def complexity_table(complexity: Mapping[str, int]) -> str:
    """``complexity`` (``{"complexity/<part>_params": n, "complexity/<part>_macs": n, ...}``) as a
    Markdown table, one row per part in the given order, counts with thousands separators."""
    counts: dict[str, dict[str, int]] = {}
    for name, value in complexity.items():
        part, kind = name.removeprefix("complexity/").rsplit("_", 1)
        counts.setdefault(part, {})[kind] = value
    lines = ["| part | parameters | MACs per example |", "|---|---:|---:|"]
    for part, kinds in counts.items():
        params, macs = (f"{kinds[kind]:,}" if kind in kinds else "" for kind in ("params", "macs"))
        lines.append(f"| {part} | {params} | {macs} |")
    return "\n".join(lines)


def hparams_metrics(final_metrics: Mapping[str, float], complexity: Mapping[str, int]) -> dict[str, float]:
    """The metrics of the run's HParams trial: ``final_metrics`` (e.g. ``{"hparams/test_acc": 0.98}``)
    and the counts of :data:`HPARAMS_COMPLEXITY` as ``hparams/<count>``."""
    counts = {f"hparams/{name}": float(complexity[f"complexity/{name}"]) for name in HPARAMS_COMPLEXITY}
    return {**{name: float(value) for name, value in final_metrics.items()}, **counts}


def _hparams_summary(tag: str, **plugin_data: Any) -> Summary:
    """A summary of the HParams plugin: ``plugin_data`` are the fields of its ``HParamsPluginData``."""
    data = plugin_data_pb2.HParamsPluginData(**plugin_data)
    value = Summary.Value(
        tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR
    )
    return Summary(value=[value])


def write_hparams_trial(
    log_dir: str | Path, hyperparameters: Mapping[str, Any], metrics: Mapping[str, float]
) -> Path:
    """Write a finished HParams trial into the TensorBoard run ``<log_dir>/hparams``: a session start with
    ``hyperparameters`` (bool, number or string values), ``metrics`` as float64 scalars at step 0, and a
    successful session end. No experiment summary is written, so TensorBoard lists the hyperparameters of
    every trial under its log folder (a sweep whose jobs differ in ``model=`` shows each model's keys) and,
    as metrics, the scalars of these trial runs only. The writer is closed before returning, so all of it
    is on disk.

    Returns:
        The trial run's folder.
    """
    run_dir = Path(log_dir) / HPARAMS_RUN
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in hyperparameters.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, int | float):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = str(value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    with SummaryWriter(log_dir=str(run_dir)) as writer:
        trial = writer.file_writer  # takes ready-made summaries
        trial.add_summary(_hparams_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start), 0)
        for name, value in metrics.items():
            writer.add_scalar(name, value, 0, new_style=True, double_precision=True)  # exact counts
        trial.add_summary(_hparams_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end), 0)
    return run_dir


@rank_zero_only
def log_complexity(loggers: list[Logger], complexity: Mapping[str, int]) -> None:
    """Log the run's parameter and MAC counts (``complexity/*``): to TensorBoard as the text table
    ``complexity`` (:func:`complexity_table` and :data:`COMPLEXITY_NOTE`; its HParams tab gets the counts
    from :func:`log_hyperparameters`), to every other logger (CSV) as metrics at step 0. Each logger is
    saved, so the counts are on disk also when Lightning never finalises the loggers (``fast_dev_run``)."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # a table reads better than one-point scalar cards
            text = f"{complexity_table(complexity)}\n\n{COMPLEXITY_NOTE}"
            logger.experiment.add_text(COMPLEXITY_TEXT_TAG, text, global_step=0)
        else:
            logger.log_metrics(dict(complexity), step=0)
        logger.save()


@rank_zero_only
def log_hyperparameters(
    loggers: list[Logger],
    run_config: Mapping[str, Any],
    final_metrics: Mapping[str, float],
    complexity: Mapping[str, int],
) -> None:
    """Log the run's :func:`flat_hyperparameters` to every logger, after testing. TensorBoard gets the
    run's HParams trial (:func:`write_hparams_trial` in ``<tensorboard>/hparams``) with ``final_metrics``
    (e.g. ``{"hparams/test_acc": 0.98}``) and the main counts of ``complexity`` (``complexity/*``, see
    :func:`hparams_metrics`) as its metrics, and the hyperparameters in its ``hparams.yaml``; other
    loggers (CSV) write them to their own ``hparams.yaml``. Everything is on disk when this returns."""
    hyperparameters = flat_hyperparameters(run_config)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            write_hparams_trial(logger.log_dir, hyperparameters, hparams_metrics(final_metrics, complexity))
            # Lightning wrote this file when fit ended, before any hyperparameters were logged.
            with atomic_write(Path(logger.log_dir) / TensorBoardLogger.NAME_HPARAMS_FILE) as stream:
                yaml.safe_dump(hyperparameters, stream, sort_keys=False)
        else:
            logger.log_hyperparams(hyperparameters)
            logger.save()
