"""Every config in every group composes and instantiates; impossible configs fail early."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from src.data.timit.phones import TIMIT_61
from src.resolvers import register_resolvers, sweep_direction, worst_value
from src.tasks.base import FrontendEncoderTask
from src.training import build_task
from tests.conftest import CONFIG_DIR, choices


def test_every_group_has_choices() -> None:
    for group in (
        "data",
        "task",
        "augmentation",
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
        assert datamodule.label_names == list(TIMIT_61)
        assert datamodule.example_samples == datamodule.sample_rate == 16000  # one second
    elif choice == "denoising":
        assert datamodule.label_names == []  # the targets are clean waveforms
        assert datamodule.example_samples == datamodule.sample_rate == 16000  # one clip
    else:
        assert len(datamodule.label_names) >= 2
        assert datamodule.example_samples == 16000  # one clip


def build_for(cfg: DictConfig) -> FrontendEncoderTask:
    """The task ``train.py`` builds for ``cfg``, from its data module (not prepared: nothing is read)."""
    return build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))


# Every encoder serves both tasks, except those that collapse time, which CTC cannot read.
TIME_COLLAPSING = ("linear", "mlp", "cnn2d")
CTC_MODELS = [model for model in choices("model") if model not in TIME_COLLAPSING]


@pytest.mark.parametrize("frontend", choices("frontend"))
@pytest.mark.parametrize("model", choices("model"))
def test_every_frontend_and_model_build_a_working_classifier(
    make_config: Callable[..., DictConfig], frontend: str, model: str
) -> None:
    task = build_for(make_config(f"frontend={frontend}", f"model={model}"))
    assert type(task).__name__ == "ClassificationTask"
    assert task(torch.randn(3, 16000), torch.tensor([16000, 8000, 4000])).shape == (3, 2)


@pytest.mark.parametrize("frontend", choices("frontend"))
@pytest.mark.parametrize("model", CTC_MODELS)
def test_every_frontend_and_time_keeping_model_build_a_working_phone_recogniser(
    make_config: Callable[..., DictConfig], frontend: str, model: str
) -> None:
    task = build_for(make_config("data=timit", f"frontend={frontend}", f"model={model}"))
    assert type(task).__name__ == "PhoneRecognitionTask"
    logits, frames = task(torch.randn(3, 16000), torch.tensor([16000, 8000, 4000]))
    assert logits.shape[0] == 3 and logits.shape[-1] == len(TIMIT_61) + 1
    assert frames.shape == (3,) and int(frames.min()) >= 1 and int(frames.max()) <= logits.shape[1]
    if model in ("rnn", "lstm", "bilstm", "gru", "bigru", "tcn"):  # one output per input frame
        expected = [int(task.frontend.num_frames(n)) for n in (16000, 8000, 4000)]
        assert logits.shape[1] == expected[0] and frames.tolist() == expected


def test_data_configs_choose_their_task_and_default_model(make_config: Callable[..., DictConfig]) -> None:
    chosen = {
        data: (make_config(f"data={data}").task._target_, make_config(f"data={data}").model._target_)
        for data in choices("data")
    }
    classifier = ("src.tasks.classification.ClassificationTask", "src.encoders.conv1d.Conv1dCNN")
    assert chosen == {
        "kws10": classifier,
        "kws12": classifier,
        "kws35": classifier,
        "timit": (
            "src.tasks.phone_recognition.PhoneRecognitionTask",
            "src.encoders.recurrent.RecurrentEncoder",
        ),
        "yesno": classifier,
        "denoising": ("src.tasks.denoising.DenoisingTask", "src.encoders.recurrent.RecurrentEncoder"),
        "speaker_verification": (
            "src.tasks.speaker_verification.SpeakerVerificationTask",
            "src.encoders.recurrent.RecurrentEncoder",
        ),
    }
    assert make_config("data=denoising").frontend._target_ == "src.frontends.stft.StftAnalysis"
    speaker = make_config("data=speaker_verification")
    assert speaker.frontend._target_ == "src.frontends.stft.StftAnalysis" and speaker.frontend.n_fft == 1024
    assert (speaker.model.hidden_size, speaker.model.bidirectional, speaker.optimizer.lr) == (256, True, 1e-3)
    assert make_config("data=speaker_verification", "optimizer.lr=0.01").optimizer.lr == 0.01
    assert make_config("data=timit").model.bidirectional is True  # bilstm
    # the command line wins over the data's choices
    assert make_config("data=timit", "model=crnn").model._target_ == "src.encoders.crnn.CRNN"
    assert make_config("data=kws12", "model=lstm").model._target_ == "src.encoders.recurrent.RecurrentEncoder"
    assert make_config("data=kws12", "task=ctc").task._target_.endswith("PhoneRecognitionTask")


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["data=timit", "model=linear"], ValueError, r"CTC needs one output per frame: choose model="),
        (
            ["task.mode=min"],
            ValueError,
            r"task\.mode=min does not fit task\.monitor=val/acc: use task\.mode=max",
        ),
        (["data=timit", "task.monitor=val/acc"], ValueError, r"task\.monitor=val/acc is not a validation"),
        (
            ["+augmentation.spec_augment.freq_masks=2"],
            InstantiationException,
            r"SpecAugment.*unexpected keyword argument 'freq_masks'",
        ),
        (["task.head.pooling=max"], ValueError, r"task\.head\.pooling must be one of"),
    ],
    ids=["ctc-linear", "mode-against-metric", "ctc-accuracy", "misspelt-spec-augment-key", "pooling"],
)
def test_a_task_that_cannot_work_fails_when_it_is_built(
    make_config: Callable[..., DictConfig], overrides: list[str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        build_for(make_config(*overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["+augmentation.waveform.time_shift=100"],
            r"WaveformAugmentation.*unexpected keyword argument 'time_shift'",
        ),
        (["data=timit", "augmentation=noise"], r"data=timit has no waveform augmentation.*augmentation="),
    ],
    ids=["misspelt-waveform-key", "timit-noise"],
)
def test_an_augmentation_that_cannot_work_fails_when_the_data_is_built(
    make_config: Callable[..., DictConfig], overrides: list[str], message: str
) -> None:
    with pytest.raises(InstantiationException, match=message):
        instantiate(make_config(*overrides).data, _convert_="all")


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
        build_for(cfg)


def test_too_many_mels_fail_at_instantiation(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config("frontend.n_mels=400", "frontend.n_fft=256")
    with pytest.raises(InstantiationException, match=r"n_mels"):
        build_for(cfg)


@pytest.mark.parametrize(
    ("overrides", "monitor", "mode"),
    [
        ([], "val/acc", "max"),
        (["data=timit"], "val/per", "min"),
        (["data=kws12", "model=lstm"], "val/acc", "max"),
        (["data=timit", "task.monitor=val/loss"], "val/loss", "min"),
        (["task.monitor=val/loss", "task.mode=min"], "val/loss", "min"),
    ],
)
def test_the_checkpoint_callback_follows_the_task(
    make_config: Callable[..., DictConfig], overrides: list[str], monitor: str, mode: str
) -> None:
    cfg = make_config(*overrides)
    assert (cfg.task.monitor, cfg.task.mode) == (monitor, mode)
    checkpoint = instantiate(cfg.callbacks.model_checkpoint)
    assert (checkpoint.monitor, checkpoint.mode) == (monitor, mode)
    task = build_for(cfg)
    assert (task.monitor, task.mode) == (monitor, mode)


def test_the_checkpoint_metric_and_its_direction_are_written_only_in_the_task_configs() -> None:
    """Checkpointing and the Optuna direction interpolate ``task.monitor`` / ``task.mode``; no other config
    repeats a metric name or a direction that could fall out of step with the task."""
    settings = re.compile(r"^\s*(monitor|mode|direction):\s*(\S+)")
    literal = {
        f"{path.relative_to(CONFIG_DIR)}: {match.group(1)}: {match.group(2)}"
        for path in CONFIG_DIR.rglob("*.yaml")
        for line in path.read_text().splitlines()
        if (match := settings.match(line))
        and not match.group(2).startswith(("${", "null"))
        and (match.group(1) == "monitor" or match.group(2) in ("max", "min", "maximize", "minimize"))
    }  # predict.py's `mode: classify` is no metric direction
    assert literal == {
        "task/classification.yaml: monitor: val/acc",
        "task/classification.yaml: mode: max",
        "task/ctc.yaml: monitor: val/per",
        "task/ctc.yaml: mode: min",
        "task/denoising.yaml: monitor: val/si_sdr_i",
        "task/denoising.yaml: mode: max",
        "task/speaker_verification.yaml: monitor: val/eer",
        "task/speaker_verification.yaml: mode: min",
    }


def compose_with_hydra(*overrides: str) -> DictConfig:
    """``conf/config.yaml`` with ``overrides`` and its ``hydra`` node (not resolved)."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    ("overrides", "direction"),
    [
        (["hparams_search=conv1d_optuna"], "maximize"),
        (["hparams_search=conv1d_optuna", "data=timit"], "minimize"),
        (["hparams_search=conv1d_optuna", "task=ctc", "data=timit"], "minimize"),
        (["hparams_search=conv1d_optuna", "task.monitor=val/loss", "task.mode=min"], "minimize"),
        (["hparams_search=rnn_optuna"], "maximize"),
    ],
)
def test_the_optuna_direction_follows_the_task(overrides: list[str], direction: str) -> None:
    cfg = compose_with_hydra(*overrides)
    assert OmegaConf.select(cfg, "hydra.sweeper.direction") == direction


def test_the_worst_value_of_a_direction_ranks_last() -> None:
    assert worst_value("min") == math.inf
    assert worst_value("max") == -math.inf
    assert sweep_direction("max") == "maximize" and sweep_direction("min") == "minimize"
    with pytest.raises(ValueError, match=r"task\.mode must be one of \['max', 'min'\], got 'maximize'"):
        worst_value("maximize")
