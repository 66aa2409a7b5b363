"""What a user's command runs: the data picks the task and a default model, the command line and experiment
files override them, every experiment file runs as written, every task key works, and a config that cannot
work fails before training with a message naming the override that fixes it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.training import build_task, train
from src.utils.complexity import count_parameters
from tests.conftest import CONFIG_DIR, choices, experiment_choice, run_python, tiny_data

CLASSIFICATION = ("ClassificationTask", "test/acc", "val/acc", "max")
PHONE_RECOGNITION = ("PhoneRecognitionTask", "test/per", "val/per", "min")
DENOISING = ("DenoisingTask", "test/si_sdr_i", "val/si_sdr_i", "max")
# The task and the model each data config runs with unless told otherwise (conf/data/*.yaml).
SPEAKER_VERIFICATION = ("SpeakerVerificationTask", "test/eer", "val/eer", "min")
DATA_TASK = {"timit": PHONE_RECOGNITION, "denoising": DENOISING, "speaker_verification": SPEAKER_VERIFICATION}
DATA_DEFAULT_MODEL = {"timit": "bilstm", "denoising": "bigru", "speaker_verification": "speaker_bigru"}


def model_file(name: str) -> DictConfig:
    """``conf/model/<name>.yaml`` with the model files it extends merged in."""
    config = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    for parent in config.pop("defaults", []):
        config = OmegaConf.merge(model_file(parent), config)
    return config


def check_model(cfg: DictConfig, summary: dict[str, Any], name: str) -> int:
    """``cfg`` ran ``model=<name>``: its encoder config is that file's (with the run's overrides) and has the
    parameters the run counted. Returns the encoder's ``out_features``."""
    expected = model_file(name)
    assert cfg.model._target_ == expected._target_, name
    if "bidirectional" in expected:
        assert cfg.model.bidirectional == expected.bidirectional, name
    frontend = instantiate(cfg.frontend)
    sizes = {"in_features": frontend.out_features}
    if "num_frames" in cfg.model:  # model=linear, sized by the task from the frontend and the clip length
        sizes["num_frames"] = frontend.num_frames(round(cfg.data.sample_rate * cfg.data.clip_seconds))
    encoder = instantiate(cfg.model, **sizes, _convert_="all")
    assert summary["complexity"]["complexity/encoder_params"] == count_parameters(encoder)
    return encoder.out_features


def check_summary(summary: dict[str, Any], task: tuple[str, str, str, str]) -> None:
    """A finished run of ``task`` (its class, test metric, monitor, direction) with its metric in range."""
    name, test_metric, monitor, mode = task
    assert summary["status"] == "ok"
    assert (summary["task"], summary["test_metric"], summary["monitor"], summary["monitor_mode"]) == (
        name,
        test_metric,
        monitor,
        mode,
    )
    value = summary["metrics"][test_metric]
    assert math.isfinite(value)
    if test_metric in ("test/acc", "test/per"):
        assert value >= 0 and (value <= 1 or test_metric == "test/per")
    others = {"test/acc", "test/per", "test/si_sdr_i"} - {test_metric}
    assert not others & set(summary["metrics"])


@pytest.mark.parametrize(
    ("overrides", "task", "model", "outputs"),
    [
        (["data=timit"], PHONE_RECOGNITION, "bilstm", 61 + 1),
        (["data=timit", "model=crnn"], PHONE_RECOGNITION, "crnn", 61 + 1),
        (["data=kws12", "model=lstm"], CLASSIFICATION, "lstm", 12),
    ],
    ids=["timit", "timit-crnn", "kws12-lstm"],
)
def test_the_data_chooses_the_task_and_the_command_line_the_model(
    make_config: Callable[..., DictConfig],
    overrides: list[str],
    task: tuple[str, str, str, str],
    model: str,
    outputs: int,
) -> None:
    cfg = make_config(*overrides)
    summary = train(cfg)
    check_summary(summary, task)
    features = check_model(cfg, summary, model)
    # the head is the task's: a linear layer from the encoder's features to the phones + blank, or classes
    assert summary["complexity"]["complexity/head_params"] == (features + 1) * outputs


def test_train_py_with_data_timit_recognises_phones(tiny_timit_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = ["data=timit", "trainer=fast_dev_run", f"hydra.run.dir={run_dir}"]
    result = run_python(
        "train.py", *overrides, *tiny_data(tiny_timit_root, overrides), project_root=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    check_summary(summary, PHONE_RECOGNITION)
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert config.task._target_ == "src.tasks.phone_recognition.PhoneRecognitionTask"
    assert (config.model._target_, config.model.bidirectional) == (
        "src.encoders.recurrent.RecurrentEncoder",
        True,
    )
    assert (config.callbacks.model_checkpoint.monitor, config.callbacks.model_checkpoint.mode) == (
        "val/per",
        "min",
    )
    assert f"test/per = {summary['metrics']['test/per']:.4f}" in result.stdout


@pytest.mark.parametrize("experiment", choices("experiment"))
def test_every_experiment_file_runs_as_written(
    make_config: Callable[..., DictConfig], experiment: str
) -> None:
    cfg = make_config(f"experiment={experiment}")
    summary = train(cfg)
    data = experiment_choice(experiment) or "yesno"
    check_summary(summary, DATA_TASK.get(data, CLASSIFICATION))
    model = experiment_choice(experiment, "model") or DATA_DEFAULT_MODEL.get(data, "conv1d")
    check_model(cfg, summary, model)
    assert summary["question"] == cfg.question and summary["question"], "an experiment names its question"


def test_every_task_key_works_for_phone_recognition(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config("data=timit", "task.standardize_features=true", "augmentation=specaugment")
    task = build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))
    assert task.standardizer is not None
    assert task.spec_augment.enabled and (
        task.spec_augment.num_freq_masks,
        task.spec_augment.num_time_masks,
    ) == (
        2,
        2,
    )
    summary = train(cfg)
    check_summary(summary, PHONE_RECOGNITION)


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training fails the test: what must fail, fails before it."""

    def fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(L.Trainer, "fit", fit)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data=timit", "model=linear"],
            r"collapses the frames into one vector, but CTC .*: choose model=lstm",
        ),
        (
            ["data=kws12", "task.mode=min"],
            r"task\.mode=min does not fit task\.monitor=val/acc: use task\.mode=max",
        ),
        (["data=timit", "task.monitor=val/acc"], r"task\.monitor=val/acc is not a validation metric"),
        (["data=kws12", "task=ctc"], r"trains on 'sequence' targets, but the data .* serves 'class'"),
        (
            ["data=timit", "task=classification"],
            r"trains on 'class' targets, but the data .* serves 'sequence'",
        ),
        (
            ["data=timit", "augmentation=noise"],
            r"data=timit has no waveform augmentation.*: use augmentation=none",
        ),
        (
            ["+augmentation.waveform.time_shift=100"],
            r"WaveformAugmentation.*unexpected keyword .*'time_shift'",
        ),
        (["+augmentation.spec_augment.freq_masks=2"], r"SpecAugment.*unexpected keyword .*'freq_masks'"),
        (["callbacks.model_checkpoint.monitor=val/loss"], r"set task\.monitor and task\.mode instead"),
    ],
    ids=[
        "ctc-linear",
        "mode-against-metric",
        "ctc-accuracy",
        "kws12-with-ctc",
        "timit-with-classification",
        "timit-noise",
        "misspelt-waveform-key",
        "misspelt-spec-augment-key",
        "checkpoint-monitor",
    ],
)
def test_a_config_that_cannot_work_fails_before_training_naming_the_fix(
    make_config: Callable[..., DictConfig],
    tmp_path: Path,
    no_training: None,
    overrides: list[str],
    message: str,
) -> None:
    with pytest.raises(Exception, match=message):
        train(make_config(*overrides))
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "failed" and "training started" not in summary["error"]
