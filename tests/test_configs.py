"""Every config in every group composes and instantiates; impossible configs fail early."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from src.data.timit.phones import TIMIT_61
from src.tasks.frontend_task import FrontendBackboneTask
from src.training import build_model, build_task
from tests.conftest import choices


def test_every_group_has_choices() -> None:
    for group in (
        "data",
        "frontend",
        "model",
        "optimizer",
        "scheduler",
        "trainer",
        "logger",
        "callbacks",
        "paths",
        "hydra",
        "experiment",
        "hparams_search",
    ):
        assert choices(group), f"conf/{group}/ holds no config"


@pytest.mark.parametrize("choice", choices("data"))
def test_data_configs_instantiate(make_config: Callable[..., DictConfig], choice: str) -> None:
    datamodule = instantiate(make_config(f"data={choice}").data)
    assert isinstance(datamodule, L.LightningDataModule)
    if choice == "timit":
        assert datamodule.phones == list(TIMIT_61)
    else:
        assert datamodule.num_classes == len(datamodule.class_names) >= 2


def build_for(cfg: DictConfig) -> FrontendBackboneTask:
    """The task ``train.py`` builds for ``cfg``, from its data module (not prepared: nothing is read)."""
    return build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))


@pytest.mark.parametrize("frontend", choices("frontend"))
@pytest.mark.parametrize("model", choices("model"))
def test_frontend_and_model_configs_build_a_working_task(
    make_config: Callable[..., DictConfig], frontend: str, model: str
) -> None:
    per_frame = model.endswith("_ctc")
    cfg = make_config(f"frontend={frontend}", f"model={model}", *(["data=timit"] if per_frame else []))
    task = build_for(cfg)
    if per_frame:
        logits, frames = task(torch.randn(3, 16000), torch.tensor([16000, 8000, 4000]))
        assert logits.shape == (3, 101, len(TIMIT_61) + 1) and frames.tolist() == [101, 51, 26]
    else:
        assert task(torch.randn(3, 16000)).shape == (3, 2)


@pytest.mark.parametrize(
    ("data", "model", "message"),
    [("timit", "conv1d", "needs a per-frame"), ("kws10", "bilstm_ctc", "needs a clip classifier")],
)
def test_a_model_that_does_not_fit_the_task_fails_early(
    make_config: Callable[..., DictConfig], data: str, model: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_for(make_config(f"data={data}", f"model={model}"))


@pytest.mark.parametrize("trainer", choices("trainer"))
def test_trainer_configs_instantiate(make_config: Callable[..., DictConfig], trainer: str) -> None:
    if trainer == "gpu" and not torch.cuda.is_available():
        pytest.skip("trainer=gpu needs a GPU")
    assert isinstance(instantiate(make_config(trainer=trainer).trainer), L.Trainer)


@pytest.mark.parametrize("logger", choices("logger"))
def test_logger_configs_instantiate(make_config: Callable[..., DictConfig], logger: str) -> None:
    loggers = [instantiate(entry) for entry in make_config(f"logger={logger}").logger.values()]
    assert loggers
    assert all(isinstance(lg, Logger) for lg in loggers)


@pytest.mark.parametrize("callbacks", choices("callbacks"))
def test_callback_configs_instantiate(make_config: Callable[..., DictConfig], callbacks: str) -> None:
    built = [instantiate(entry) for entry in make_config(f"callbacks={callbacks}").callbacks.values()]
    assert built
    assert all(isinstance(callback, L.Callback) for callback in built)


@pytest.mark.parametrize("experiment", choices("experiment"))
def test_experiment_configs_compose(make_config: Callable[..., DictConfig], experiment: str) -> None:
    task = build_for(make_config(f"experiment={experiment}"))
    assert isinstance(task.configure_optimizers()["optimizer"], torch.optim.Optimizer)


def test_bcresnet_recipe_is_the_papers(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config("experiment=bcresnet_recipe")
    assert cfg.model._target_.endswith("BCResNet")
    assert (cfg.optimizer._target_, cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (
        "torch.optim.SGD",
        0.1,
        0.9,
        1e-3,
    )
    assert (cfg.scheduler._target_, cfg.scheduler.warmup_epochs) == ("src.utils.schedulers.warmup_cosine", 5)
    assert (cfg.frontend.n_mels, cfg.frontend.n_fft, cfg.frontend.win_length, cfg.frontend.hop_length) == (
        40,
        512,
        480,
        160,
    )


def test_paths_follow_the_run_folder(make_config: Callable[..., DictConfig], tmp_path: Path) -> None:
    cfg = make_config(run="some_run")
    assert cfg.trainer.default_root_dir == str(tmp_path / "some_run")
    assert cfg.callbacks.model_checkpoint.dirpath == str(tmp_path / "some_run" / "checkpoints")


def test_test_config_requires_a_checkpoint(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config(config_name="test")
    assert OmegaConf.is_missing(cfg, "ckpt_path")


def test_groups_not_dividing_channels_fail_at_instantiation(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config("model.groups=3")
    with pytest.raises(InstantiationException, match=r"model\.groups=3 does not divide"):
        build_model(OmegaConf.to_container(cfg, resolve=True), ["yes", "no"], 16000)


def test_too_many_mels_fail_at_instantiation(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config("frontend.n_mels=400", "frontend.n_fft=256")
    with pytest.raises(InstantiationException, match=r"n_mels"):
        build_model(OmegaConf.to_container(cfg, resolve=True), ["yes", "no"], 16000)
