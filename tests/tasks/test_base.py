"""Tests for what every task shares (``FrontendEncoderTask``): the checkpoint metric and its direction are
checked against the metrics the task logs, and ``optimizer.frontend_lr`` gives the frontend's parameters a
group of their own."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.tasks.base import FrontendEncoderTask, check_monitor
from src.tasks.classification import ClassificationTask
from src.tasks.phone_recognition import PhoneRecognitionTask
from src.training import build_task


@pytest.mark.parametrize(
    ("task", "monitor", "mode"),
    [
        (ClassificationTask, "val/acc", "max"),
        (ClassificationTask, "val/macro_f1", "max"),
        (ClassificationTask, "val/loss", "min"),
        (PhoneRecognitionTask, "val/per", "min"),
        (PhoneRecognitionTask, "val/loss", "min"),
    ],
)
def test_a_logged_metric_in_its_own_direction_is_accepted(
    task: type[FrontendEncoderTask], monitor: str, mode: str
) -> None:
    assert check_monitor(task, monitor, mode) == (monitor, mode)


@pytest.mark.parametrize(
    ("task", "monitor", "mode", "message"),
    [
        (
            ClassificationTask,
            "val/per",
            "min",
            r"task\.monitor=val/per is not a validation metric of ClassificationTask: use val/acc, "
            r"val/macro_f1, val/loss",
        ),
        (ClassificationTask, "test/acc", "max", r"task\.monitor=test/acc is not a validation metric"),
        (PhoneRecognitionTask, "val/acc", "max", r"task\.monitor=val/acc .*: use val/per, val/loss"),
        (
            ClassificationTask,
            "val/acc",
            "min",
            r"task\.mode=min does not fit task\.monitor=val/acc: use task\.mode=max",
        ),
        (PhoneRecognitionTask, "val/per", "max", r"task\.mode=max .*: use task\.mode=min"),
        (ClassificationTask, "val/acc", "maximize", r"task\.mode=maximize .*: use task\.mode=max"),
    ],
)
def test_a_monitor_the_task_does_not_log_or_a_mode_against_it_fails_naming_the_key(
    task: type[FrontendEncoderTask], monitor: str, mode: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_monitor(task, monitor, mode)


def build(cfg: DictConfig) -> FrontendEncoderTask:
    """The task ``train.py`` builds for ``cfg`` (the data module not prepared: nothing is read)."""
    return build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))


def optimizer_of(task: FrontendEncoderTask) -> torch.optim.Optimizer:
    configured = task.configure_optimizers()
    return configured["optimizer"] if isinstance(configured, dict) else configured


def parameter_ids(parameters: object) -> list[int]:
    return [id(parameter) for parameter in parameters]


TRAINABLE_MEL = ["frontend=trainable", "frontend.trainable_mel=true", "optimizer.lr=3e-3"]


def test_frontend_lr_puts_the_frontend_parameters_in_a_group_of_their_own(
    make_config: Callable[..., DictConfig],
) -> None:
    task = build(make_config(*TRAINABLE_MEL, "optimizer.frontend_lr=1e-4"))
    frontend = list(task.frontend.parameters())
    assert frontend, "setting B trains the mel filters"
    rest, own = optimizer_of(task).param_groups
    assert own["lr"] == 1e-4 and parameter_ids(own["params"]) == parameter_ids(frontend)
    assert rest["lr"] == 3e-3
    assert parameter_ids(rest["params"]) == [
        id(parameter) for parameter in task.parameters() if id(parameter) not in set(parameter_ids(frontend))
    ]
    assert len(rest["params"]) + len(own["params"]) == len(list(task.parameters()))


def test_without_frontend_lr_every_parameter_is_in_one_group(make_config: Callable[..., DictConfig]) -> None:
    task = build(make_config(*TRAINABLE_MEL))
    (group,) = optimizer_of(task).param_groups
    assert group["lr"] == 3e-3 and parameter_ids(group["params"]) == parameter_ids(task.parameters())


def test_frontend_lr_with_a_frontend_without_parameters_leaves_one_group(
    make_config: Callable[..., DictConfig],
) -> None:
    task = build(make_config("frontend=trainable", "optimizer.frontend_lr=1e-4"))  # setting A
    assert not list(task.frontend.parameters())
    (group,) = optimizer_of(task).param_groups
    assert group["lr"] == task.hparams.optimizer["lr"]
    assert parameter_ids(group["params"]) == parameter_ids(task.parameters())
