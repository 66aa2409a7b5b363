"""Resuming continues the same run: a run killed (SIGKILL) or interrupted (Ctrl+C: SIGINT) at a random
training step and resumed from its ``last.ckpt`` ends with the uninterrupted run's metrics and keeps the
times of the epochs trained before; a resume whose config would change what the checkpoint's state
means is refused before training, listing the keys."""

from __future__ import annotations

import io
import json
import random
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from src.callbacks.epoch_timer import EpochTrainingTimer
from src.callbacks.rng_state import RngStateInCheckpoint
from src.callbacks.run_config import CHECKPOINT_FORMAT, FORMAT_KEY, RUN_CONFIG_KEY
from src.resume import check_resumable
from tests.conftest import compose_config, run_python, tiny_data
from tests.resume_helpers import SignalAtStep

EPOCHS, BATCHES = 3, 4
# The case (CRNN, batches of 2, seed 7) with every augmentation, so shuffling, dropout and the
# augmentations all draw random numbers; 3 short epochs.
RUN = [
    "model=crnn",
    "data.batch_size=2",
    "seed=7",
    "augmentation=all",
    "trainer=cpu",
    f"trainer.max_epochs={EPOCHS}",
    f"+trainer.limit_train_batches={BATCHES}",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
]
WALL_CLOCK = "train/epoch_time_s"  # differs between any two runs


def train_run(run_dir: Path, corpus_root: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``train.py`` with :data:`RUN` on the tiny corpus, writing into ``run_dir``."""
    return run_python(
        "train.py",
        *RUN,
        *tiny_data(corpus_root, RUN),
        f"hydra.run.dir={run_dir}",
        *overrides,
        project_root=run_dir.parent,
        timeout=600,
    )


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-3000:] + result.stderr[-3000:]


def measured(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` without the wall-clock ones."""
    return {name: value for name, value in metrics.items() if name != WALL_CLOCK}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_root: Path) -> dict[str, Any]:
    """The ``metrics.json`` of :data:`RUN` trained without interruption."""
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = train_run(run_dir, tiny_corpus_root)
    assert result.returncode == 0, output(result)
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize(("signal_name", "seed"), [("SIGKILL", 0), ("SIGINT", 1)])
def test_a_run_interrupted_at_a_random_step_resumes_to_the_uninterrupted_metrics(
    signal_name: str, seed: int, uninterrupted: dict[str, Any], tiny_corpus_root: Path, tmp_path: Path
) -> None:
    # A step after the first epoch's checkpoint, before the end of training.
    step = random.Random(seed).randint(BATCHES + 1, EPOCHS * BATCHES - 1)
    run_dir = tmp_path / "run"
    interrupted = train_run(
        run_dir,
        tiny_corpus_root,
        f"+callbacks.kill._target_={SignalAtStep.__module__}.{SignalAtStep.__name__}",
        f"+callbacks.kill.step={step}",
        f"+callbacks.kill.signal_name={signal_name}",
    )
    if signal_name == "SIGKILL":
        assert interrupted.returncode == -signal.SIGKILL, output(interrupted)
    else:  # Lightning's graceful shutdown: no checkpoint of its own, exit status 1, recorded as such
        assert interrupted.returncode == 1, output(interrupted)
        assert "Detected KeyboardInterrupt" in interrupted.stdout + interrupted.stderr
        record = json.loads((run_dir / "metrics.json").read_text())
        assert record["status"] == "interrupted"
        assert f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}" in record["error"]
    last = run_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    trained = (step - 1) // BATCHES  # epochs whose checkpoint was written before the signal
    assert saved["epoch"] == trained - 1
    saved_times = saved["callbacks"][EpochTrainingTimer.__name__]["epoch_times"]
    assert len(saved_times) == trained

    resumed = train_run(run_dir, tiny_corpus_root, f"ckpt_path={last}")
    assert resumed.returncode == 0, output(resumed)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert measured(record["metrics"]) == measured(uninterrupted["metrics"])
    assert len(record["epoch_times_s"]) == EPOCHS
    assert record["epoch_times_s"][:trained] == saved_times


def test_resuming_with_the_same_config_is_accepted_and_a_label_change_refused(
    uninterrupted: dict[str, Any], tiny_corpus_root: Path, tmp_path: Path
) -> None:
    last = uninterrupted["last_checkpoint"]
    data = tiny_data(tiny_corpus_root, RUN)
    paths = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'resumed'}"]
    same = compose_config("config", [*paths, *RUN, *data, f"ckpt_path={last}"])
    check_resumable(last, OmegaConf.to_container(same, resolve=True))
    # A third class (_unknown_): the head's weights would no longer fit ("size mismatch").
    more_classes = compose_config("config", [*paths, *RUN, *data, "data.unknown_percentage=10"])
    with pytest.raises(ValueError, match=r"was trained with data\.unknown_percentage=0 \(asked for 10\): "):
        check_resumable(last, OmegaConf.to_container(more_classes, resolve=True))


def saved_checkpoint(tmp_path: Path, overrides: list[str]) -> Path:
    """A checkpoint file holding the run config of ``overrides`` (and no weights worth loading)."""
    config = compose_config("config", [f"paths.root_dir={tmp_path}", *overrides])
    path = tmp_path / "trained.ckpt"
    content = {RUN_CONFIG_KEY: OmegaConf.to_container(config, resolve=True), FORMAT_KEY: CHECKPOINT_FORMAT}
    torch.save({**content, "state_dict": {}}, path)
    return path


def resumed_config(tmp_path: Path, overrides: list[str]) -> dict[str, Any]:
    config = compose_config("config", [f"paths.root_dir={tmp_path / 'elsewhere'}", *overrides])
    return OmegaConf.to_container(config, resolve=True)


@pytest.mark.parametrize(
    ("trained", "resumed", "listed"),
    [
        # a longer cosine schedule would restart from a different point of the curve
        (["trainer.max_epochs=2"], ["trainer.max_epochs=5"], ["scheduler.T_max=2", "trainer.max_epochs=2"]),
        (
            ["scheduler=warmup_cosine", "trainer.max_epochs=2"],
            ["scheduler=warmup_cosine", "trainer.max_epochs=5"],
            ["scheduler.max_epochs=2", "trainer.max_epochs=2"],
        ),
        # the same number of classes, but the third output would be scored as another class
        (
            ["data.unknown_percentage=10"],
            ["data.silence_percentage=10"],
            ["data.silence_percentage=0", "data.unknown_percentage=10"],
        ),
        (["data=kws12"], ["data=kws10"], ["data.silence_percentage=10", "data.unknown_percentage=10"]),
        ([], ["data.words=[up,down]"], ["data.words=['yes', 'no']"]),
        (["data=timit"], ["data=timit", "data.phones=39"], ["data.phones=61"]),
        ([], ["optimizer=sgd"], ["optimizer._target_=torch.optim.AdamW"]),
        ([], ["scheduler=step"], ["scheduler._target_=torch.optim.lr_scheduler.CosineAnnealingLR"]),
        ([], ["frontend=mfcc"], ["frontend._target_=src.frontends.LogMelFilterBanks"]),
        ([], ["model=lstm"], ["model._target_=src.encoders.conv1d.Conv1dCNN"]),
        ([], ["task.head.dropout=0.3"], ["task.head.dropout=0.1"]),
        ([], ["seed=1"], ["seed=1234"]),
        ([], ["data.batch_size=8"], ["data.batch_size=64"]),
        (
            [],
            ["augmentation=noise"],
            ["augmentation.waveform.noise_prob=0.0", "data.augmentation.noise_prob=0.0"],
        ),
        ([], ["data.generator.num_speakers=30"], ["data.generator.num_speakers=600"]),
        ([], ["+trainer.limit_train_batches=4"], ["trainer.limit_train_batches=None"]),
        ([], ["trainer.devices=2"], ["trainer.devices=1"]),
    ],
)
def test_a_resume_that_changes_what_the_saved_state_means_is_refused_listing_the_keys(
    tmp_path: Path, trained: list[str], resumed: list[str], listed: list[str]
) -> None:
    checkpoint = saved_checkpoint(tmp_path, trained)
    with pytest.raises(ValueError, match="was trained with") as refusal:
        check_resumable(str(checkpoint), resumed_config(tmp_path, resumed))
    for entry in listed:
        assert f"{entry} (asked for " in str(refusal.value)
    if "trainer.max_epochs=2" in listed:
        assert "resume with trainer.max_epochs=2" in str(refusal.value)


@pytest.mark.parametrize(
    ("trained", "resumed"),
    [
        # where files are, data loading, logging and the device
        (
            [],
            [
                "data.root=/elsewhere/data",
                "data.cache_dir=/elsewhere/cache",
                "data.num_workers=2",
                "data.pin_memory=true",
                "data.download=true",
                "logger=csv",
                "trainer.accelerator=cpu",
                "trainer.log_every_n_steps=1",
                "callbacks.spectrogram.num_examples=1",
                "task_name=elsewhere",
                "ckpt_path=/elsewhere/last.ckpt",
            ],
        ),
        # a schedule that does not follow trainer.max_epochs continues as it would have
        (["scheduler=step", "trainer.max_epochs=2"], ["scheduler=step", "trainer.max_epochs=5"]),
        (["trainer.max_epochs=2"], ["trainer.max_epochs=5", "scheduler.T_max=2"]),
    ],
)
def test_a_resume_that_changes_only_files_logging_or_device_is_accepted(
    tmp_path: Path, trained: list[str], resumed: list[str]
) -> None:
    check_resumable(str(saved_checkpoint(tmp_path, trained)), resumed_config(tmp_path, trained + resumed))


def draws() -> tuple[float, float, list[float]]:
    """One number from each generator a training step may use: Python's, NumPy's and torch's."""
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_generator_states_come_back_when_fitting_only() -> None:
    buffer = io.BytesIO()
    torch.save(RngStateInCheckpoint().state_dict(), buffer)  # as a checkpoint holds them
    after_save = draws()
    for stage, restores in (("test", False), ("fit", True)):
        buffer.seek(0)
        callback = RngStateInCheckpoint()
        callback.setup(trainer=None, pl_module=None, stage=stage)  # setup runs before states are loaded
        callback.load_state_dict(torch.load(buffer, weights_only=True))
        assert (draws() == after_save) is restores, stage


def test_epoch_times_come_back_when_fitting_only() -> None:
    saved = {"epoch_times": [1.5, 2.5]}
    for stage, expected in (("test", [9.0]), ("fit", [1.5, 2.5])):
        timer = EpochTrainingTimer()
        timer.epoch_times = [9.0]
        timer.setup(trainer=None, pl_module=None, stage=stage)
        timer.load_state_dict(saved)
        assert timer.epoch_times == expected, stage
        assert timer.state_dict() == {"epoch_times": expected}
