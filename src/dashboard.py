"""What a run shows in its loggers (TensorBoard's scalars and HParams tab, CSV) besides the per-step
metrics the task logs: its complexity and its hyperparameters with the final metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger


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


def log_complexity(loggers: list[Logger], complexity: Mapping[str, int]) -> None:
    """Log the run's parameter and MAC counts (``complexity/*``) to every logger."""
    for logger in loggers:
        logger.log_metrics(dict(complexity), step=0)


def log_hyperparameters(
    loggers: list[Logger],
    run_config: Mapping[str, Any],
    final_metrics: Mapping[str, float],
    complexity: Mapping[str, int],
) -> None:
    """Log the run's :func:`flat_hyperparameters` to every logger; TensorBoard's HParams tab also gets
    ``final_metrics`` (e.g. ``{"hparams/test_acc": 0.98}``) beside them. ``complexity``: the run's
    parameter and MAC counts (``complexity/*``)."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # its HParams tab shows metrics beside the config
            logger.log_hyperparams(flat_hyperparameters(run_config), metrics=dict(final_metrics))
        else:
            logger.log_hyperparams(flat_hyperparameters(run_config))
