"""Config values that cannot work are refused before training, naming the key and a value that works:
every frontend and encoder setting at construction, examples too short for the frontend, and test-time data
keys that would change what a checkpoint's model sees (issue 12, items 15 and 16)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.evaluation import TEST_CONFIG_KEYS, checked_data_config, evaluate
from src.training import build_task, train
from tests.conftest import CONFIG_DIR, ONE_BATCH_FIT, choices, compose_config, tiny_data_overrides

SAMPLE_RATE = 16000


def build(group: str, name: str, settings: dict[str, Any], **sizes: Any) -> Any:
    """``conf/<group>/<name>.yaml`` with ``settings`` merged on, instantiated with ``sizes``; the error
    of the constructor itself when it refuses (not Hydra's wrapper around it)."""
    config = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / group / f"{name}.yaml"), settings)
    if group == "frontend":
        config.sample_rate = settings.get("sample_rate", SAMPLE_RATE)  # ${data.sample_rate} in a run
    try:
        return instantiate(config, **sizes)
    except InstantiationException as error:
        raise error.__cause__ from None


# (frontend config, settings, what the message must say, settings that work)
FRONTEND_CASES = [
    (
        "logmel",
        {"n_mels": 0},
        "frontend.n_mels must be >= 1, got 0: e.g. frontend.n_mels=40",
        {"n_mels": 40},
    ),
    ("logmel", {"n_mels": 2.5}, "e.g. frontend.n_mels=40", {"n_mels": 40}),
    (
        "logmel",
        {"n_fft": 0},
        "frontend.n_fft must be >= 1, got 0: e.g. frontend.n_fft=400",
        {"n_fft": 400},
    ),
    ("logmel", {"win_length": 500}, "set frontend.win_length=400", {"win_length": 400}),
    ("logmel", {"win_length": 500}, "or frontend.n_fft=500", {"win_length": 500, "n_fft": 500}),
    ("logmel", {"win_length": 0}, "or null (which means n_fft)", {"win_length": None}),
    ("logmel", {"hop_length": 0}, "e.g. frontend.hop_length=160", {"hop_length": 160}),
    ("logmel", {"hop_length": -1}, "e.g. frontend.hop_length=160", {"hop_length": 160}),
    ("logmel", {"f_max": 9000.0}, "Nyquist frequency sample_rate / 2 = 8000.0 Hz", {"f_max": 8000.0}),
    (
        "logmel",
        {"f_min": 8000.0},
        "frontend.f_min=8000.0 must be below frontend.f_max=8000.0: set frontend.f_min=0.0",
        {"f_min": 0.0},
    ),
    ("logmel", {"f_min": 4000.0, "f_max": 4000.0}, "frontend.f_max=8000.0 (or null)", {"f_max": 8000.0}),
    ("logmel", {"f_max": 0.0}, "set frontend.f_max=8000.0", {"f_max": 8000.0}),
    (
        "logmel",
        {"f_min": -10.0},
        "frontend.f_min=-10.0 must be at least 0 Hz, e.g. frontend.f_min=0.0",
        {"f_min": 0.0},
    ),
    (
        "logmel",
        {"sample_rate": 0},
        "set data.sample_rate, e.g. data.sample_rate=16000",
        {"sample_rate": 16000},
    ),
    (
        "logmel",
        {"power": 0.0},
        "frontend.power=0.0 must be positive: e.g. frontend.power=2.0",
        {"power": 2.0},
    ),
    (
        "logmel",
        {"norm": "area"},
        "frontend.norm must be one of null, slaney, got 'area': e.g. frontend.norm=null",
        {"norm": None},
    ),
    ("logmel", {"mel_scale": "bark"}, "e.g. frontend.mel_scale=htk", {"mel_scale": "htk"}),
    ("logmel", {"pad_mode": "zeros"}, "e.g. frontend.pad_mode=reflect", {"pad_mode": "reflect"}),
    ("logmel", {"log_offset": 0.0}, "e.g. frontend.log_offset=1e-6", {"log_offset": 1e-6}),
    ("logmel", {"center": "yes"}, "frontend.center must be true or false, got 'yes'", {"center": True}),
    ("logmel", {"n_mels": 128}, "Lower frontend.n_mels to 89 or raise frontend.n_fft to 800", {"n_mels": 89}),
    ("logmel", {"n_mels": 128}, "raise frontend.n_fft to 800", {"n_mels": 128, "n_fft": 800}),
    ("mfcc", {"n_mfcc": 41}, "set frontend.n_mfcc=20 or frontend.n_mels=41", {"n_mfcc": 20}),
    ("mfcc", {"n_mfcc": 41}, "or frontend.n_mels=41", {"n_mfcc": 41, "n_mels": 41}),
    ("mfcc", {"n_mfcc": 2.5}, "set frontend.n_mfcc=20", {"n_mfcc": 20}),
    ("mfcc", {"n_mels": 0}, "e.g. frontend.n_mels=40", {"n_mels": 40}),
    (
        "trainable",
        {"trainable_stft": "no"},
        "frontend.trainable_stft must be true or false, got 'no'",
        {"trainable_stft": False},
    ),
    (
        "trainable",
        {"trainable_mel": 1},
        "frontend.trainable_mel must be true or false, got 1",
        {"trainable_mel": True},
    ),
    ("trainable", {"maskout": [0, 201]}, "masks every STFT bin", {"maskout": [0, 100]}),
    (
        "trainable",
        {"maskout": [0.5, 3]},
        "frontend.maskout=[0.5, 3] must be [low_bin, high_bin]",
        {"maskout": [0, 3]},
    ),
    ("trainable", {"filterbank": "gammatone"}, "e.g. frontend.filterbank=matrix", {"filterbank": "matrix"}),
    ("trainable", {"log_offset": -1.0}, "e.g. frontend.log_offset=1e-6", {"log_offset": 1e-6}),
    ("trainable", {"f_max": 9000.0}, "set frontend.f_max=8000.0", {"f_max": 8000.0}),
]


@pytest.mark.parametrize(("name", "settings", "message", "works"), FRONTEND_CASES)
def test_a_frontend_setting_that_cannot_work_is_refused_with_one_that_does(
    name: str, settings: dict[str, Any], message: str, works: dict[str, Any]
) -> None:
    with pytest.raises(ValueError) as refused:
        build("frontend", name, settings)
    assert message in str(refused.value)
    frontend = build("frontend", name, {**settings, **works})
    features, _ = frontend(torch.randn(2, SAMPLE_RATE))
    assert features.shape[1] == frontend.out_features >= 1 and torch.isfinite(features).all()


def test_n_mels_0_fails_when_the_task_is_built_naming_the_key(make_config: Callable[..., DictConfig]) -> None:
    cfg = make_config("frontend.n_mels=0")
    with pytest.raises(InstantiationException, match=r"frontend\.n_mels must be >= 1, got 0"):
        build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))


@pytest.mark.parametrize(
    ("name", "settings", "shortest"),
    [
        ("logmel", {}, 201),
        ("mfcc", {}, 201),
        ("trainable", {}, 201),
        ("logmel", {"center": False}, 400),
        ("logmel", {"pad_mode": "circular"}, 200),
    ],
)
def test_examples_too_short_for_the_frontend_name_the_clip_length_that_works(
    name: str, settings: dict[str, Any], shortest: int
) -> None:
    frontend = build("frontend", name, settings)
    seconds = math.ceil(shortest / SAMPLE_RATE * 1e4) / 1e4
    with pytest.raises(ValueError, match=r"too short for frontend\.n_fft=400") as refused:
        frontend.check_input_samples(16)  # data.clip_seconds=0.001
    assert f"Set data.clip_seconds to at least {seconds} ({shortest} samples)" in str(refused.value)
    with pytest.raises(ValueError, match=rf"at least {seconds}"):
        frontend.check_input_samples(shortest - 1)
    frontend.check_input_samples(round(SAMPLE_RATE * seconds))
    features, lengths = frontend(torch.randn(2, shortest))
    assert features.shape[-1] >= 1 and lengths.min() >= 1


def test_a_clip_too_short_for_the_frontend_fails_when_the_task_is_built(
    make_config: Callable[..., DictConfig],
) -> None:
    cfg = make_config("data.clip_seconds=0.001")
    with pytest.raises(
        ValueError, match=r"examples of 16 samples .* Set data\.clip_seconds to at least 0\.0126"
    ):
        build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))


# (model config, settings, what the message must say, settings that work)
ENCODER_CASES = [
    ("tcn", {"kernel_size": 4}, "e.g. model.kernel_size=5", {"kernel_size": 5}),
    ("tcn", {"dropout": 1.0}, "model.dropout must be in [0, 1), got 1.0", {"dropout": 0.1}),
    (
        "conv1d",
        {"channels": [0, 8]},
        "model.channels must all be >= 1, got [0, 8]: e.g. model.channels=[64, 64, 128, 128]",
        {"channels": [8, 8]},
    ),
    (
        "conv1d",
        {"channels": []},
        "model.channels must list at least one width, got []: e.g. model.channels=[64, 64, 128, 128]",
        {"channels": [8]},
    ),
    (
        "conv1d",
        {"kernel_size": 0},
        "model.kernel_size must be >= 1, got 0: e.g. model.kernel_size=3",
        {"kernel_size": 3},
    ),
    ("conv1d", {"kernel_size": 4}, "e.g. model.kernel_size=5", {"kernel_size": 5}),
    (
        "conv1d",
        {"kernel_size": 3.0},
        "model.kernel_size must be an integer >= 1, got 3.0",
        {"kernel_size": 3},
    ),
    (
        "conv1d",
        {"groups": 2.0},
        "model.groups must be an integer >= 1, got 2.0: e.g. model.groups=1",
        {"groups": 2},
    ),
    ("conv1d", {"groups": 3}, "(1, 2, 4, 8, 16, 32, 64; e.g. model.groups=2)", {"groups": 2}),
    (
        "bcresnet",
        {"dropout": 1.0},
        "model.dropout must be in [0, 1), got 1.0: e.g. model.dropout=0.1",
        {"dropout": 0.1},
    ),
    ("bcresnet", {"dropout": -0.1}, "model.dropout must be in [0, 1), got -0.1", {"dropout": 0.0}),
    (
        "bcresnet",
        {"width_multiplier": float("nan")},
        "e.g. model.width_multiplier=1.0",
        {"width_multiplier": 1.0},
    ),
    ("bcresnet", {"groups": 3}, "(1, 2, 4, 8, 16; e.g. model.groups=2)", {"groups": 2}),
    (
        "bcresnet",
        {"sub_bands": 0},
        "model.sub_bands must be >= 1, got 0: e.g. model.sub_bands=5",
        {"sub_bands": 5},
    ),
    ("lstm", {"hidden_size": 2.0}, "model.hidden_size must be an integer >= 1, got 2.0", {"hidden_size": 2}),
    ("lstm", {"num_layers": 0}, "e.g. model.num_layers=2", {"num_layers": 2}),
    (
        "lstm",
        {"bidirectional": "no"},
        "model.bidirectional must be true or false, got 'no'",
        {"bidirectional": False},
    ),
    (
        "lstm",
        {"input_batchnorm": "yes"},
        "model.input_batchnorm must be true or false",
        {"input_batchnorm": True},
    ),
    ("gru", {"dropout": 1.0}, "e.g. model.dropout=0.1", {"dropout": 0.1}),
    ("crnn", {"conv_channels": [16, 0]}, "e.g. model.conv_channels=[16, 32]", {"conv_channels": [16, 32]}),
    ("crnn", {"bidirectional": "yes"}, "model.bidirectional must be true or false", {"bidirectional": True}),
    (
        "linear",
        {"num_frames": 0},
        "model.num_frames must be >= 1, got 0: e.g. model.num_frames=101",
        {"num_frames": 101},
    ),
    (
        "linear",
        {"num_frames": 101.0},
        "model.num_frames must be an integer >= 1, got 101.0",
        {"num_frames": 101},
    ),
    (
        "mlp",
        {"num_frames": 101, "hidden": [1024, 0]},
        "model.hidden must all be >= 1, got [1024, 0]: e.g. model.hidden=[1024, 1024, 1024, 1024, 1024]",
        {"hidden": [16]},
    ),
    ("mlp", {"num_frames": 101, "dropout": 1.0}, "model.dropout must be in [0, 1)", {"dropout": 0.2}),
    (
        "cnn2d",
        {"num_frames": 101, "kernel_size": 4},
        "model.kernel_size must be odd so padding keeps the size, got 4: e.g. model.kernel_size=5",
        {"kernel_size": 3},
    ),
    (
        "bcresnet_bilstm",
        {"encoders": {"bilstm": {"hidden_size": 0}}},
        "model.encoders.bilstm.hidden_size must be >= 1, got 0: e.g. model.encoders.bilstm.hidden_size=64",
        {"encoders": {"bilstm": {"hidden_size": 8}}},
    ),
    (
        "bcresnet_bilstm",
        {"encoders": {"bcresnet": {"dropout": 1.0}}},
        "model.encoders.bcresnet.dropout must be in [0, 1)",
        {"encoders": {"bcresnet": {"dropout": 0.1}}},
    ),
]


@pytest.mark.parametrize(("name", "settings", "message", "works"), ENCODER_CASES)
def test_an_encoder_setting_that_cannot_work_is_refused_with_one_that_does(
    name: str, settings: dict[str, Any], message: str, works: dict[str, Any]
) -> None:
    with pytest.raises(ValueError) as refused:
        build("model", name, settings, in_features=40)
    assert message in str(refused.value)
    encoder = build("model", name, OmegaConf.merge(settings, works), in_features=40)
    encoder.eval()
    sequence, _ = encoder(torch.randn(2, 40, 101))
    assert sequence.shape[-1] == encoder.out_features and torch.isfinite(sequence).all()


def test_every_model_config_is_covered() -> None:
    covered = {name for name, *_ in ENCODER_CASES} | {
        "bcresnet1",
        "bilstm",
        "bigru",
        "rnn",
        "speaker_bigru",
    }  # variants
    assert covered == set(choices("model"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Path]:
    """``last.ckpt`` of a :data:`~tests.conftest.ONE_BATCH_FIT` of the default model (conv1d) and of
    ``model=linear``, whose size depends on the clip length."""
    root = tmp_path_factory.mktemp("checkpoints")
    found = {}
    for model in ("conv1d", "linear"):
        paths = [
            f"paths.root_dir={root}",
            f"paths.output_dir={root / model}",
            "trainer=cpu",
            f"model={model}",
        ]
        summary = train(compose_config("config", [*paths, *tiny_data_overrides([], request), *ONE_BATCH_FIT]))
        found[model] = Path(summary["last_checkpoint"])
    return found


def test_the_test_config_holds_exactly_the_keys_test_py_applies(
    make_config: Callable[..., DictConfig],
) -> None:
    assert set(make_config(config_name="test").keys()) == TEST_CONFIG_KEYS


def test_another_sample_rate_than_the_checkpoints_is_refused(
    make_config: Callable[..., DictConfig], checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    cfg = make_config(f"ckpt_path={checkpoints['conv1d']}", "+data.sample_rate=8000", config_name="test")
    with pytest.raises(ValueError) as refused:
        evaluate(cfg)
    message = str(refused.value)
    assert "+data.sample_rate=8000 differs from the checkpoint's data.sample_rate=16000" in message
    assert "its frontend was built for 16000 Hz audio (frontend.sample_rate=16000)" in message
    assert "Leave data.sample_rate out: the data module resamples every file" in message
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_clip_length_that_a_fixed_size_model_cannot_read_is_refused(
    make_config: Callable[..., DictConfig], checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    cfg = make_config(f"ckpt_path={checkpoints['linear']}", "+data.clip_seconds=2.0", config_name="test")
    with pytest.raises(ValueError) as refused:
        evaluate(cfg)
    message = str(refused.value)
    assert "model=linear reads exactly model.num_frames=101 frames per example" in message
    assert (
        "(data.clip_seconds=2.0 (checkpoint: 1.0)) gives 32000 (201 frames): leave those keys out" in message
    )
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_another_clip_length_is_tested_with_a_warning_and_recorded(
    make_config: Callable[..., DictConfig],
    checkpoints: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = make_config(f"ckpt_path={checkpoints['conv1d']}", "+data.clip_seconds=1.5", config_name="test")
    with caplog.at_level(logging.WARNING, logger="src.evaluation"):
        summary = evaluate(cfg)
    warned = [
        r.getMessage() for r in caplog.records if r.name == "src.evaluation" and r.levelno == logging.WARNING
    ]
    assert warned == [
        "Testing on examples of 24000 samples (151 frames) with a checkpoint trained on 16000 (101 frames), "
        "after data.clip_seconds=1.5 (checkpoint: 1.0): the result is not the trained configuration's"
    ]
    assert summary["data_changes"] == ["data.clip_seconds=1.5 (checkpoint: 1.0)"]
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["data_changes"] == summary["data_changes"] and 0.0 <= written["metrics"]["test/acc"] <= 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["+data.clip_seconds=0.001"],
            r"examples of 16 samples .* Set data\.clip_seconds to at least 0\.0126",
        ),
        (
            ["+data.sampel_rate=8000"],
            r"\+data\.sampel_rate: not a key of the checkpoint's data config, .*sample_rate",
        ),
        (
            ["+model.groups=2", "+seed=3"],
            r"does not apply \+model\.groups=2, \+seed=3: it changes only data\.\*, trainer\.\*",
        ),
    ],
    ids=["clip-too-short", "misspelt-data-key", "training-keys"],
)
def test_test_time_keys_that_would_not_do_what_they_say_are_refused(
    make_config: Callable[..., DictConfig],
    checkpoints: dict[str, Path],
    tmp_path: Path,
    overrides: list[str],
    message: str,
) -> None:
    cfg = make_config(f"ckpt_path={checkpoints['conv1d']}", *overrides, config_name="test")
    with pytest.raises(ValueError, match=message):
        evaluate(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_another_corpus_without_its_root_is_refused_before_reading_data() -> None:
    saved = OmegaConf.create({"corpus": "generated", "root": "/work/data/generated", "sample_rate": 16000})
    with pytest.raises(ValueError) as refused:
        checked_data_config(saved, OmegaConf.create({"corpus": "speechcommands"}))
    assert str(refused.value) == (
        "+data.corpus=speechcommands keeps the checkpoint's data.root=/work/data/generated, which was "
        "resolved from data.corpus=generated when it was trained: also set +data.root to the folder that "
        "holds the speechcommands corpus, e.g. +data.root=/work/data/speechcommands"
    )
    both = checked_data_config(saved, OmegaConf.create({"corpus": "speechcommands", "root": "/data/real"}))
    assert (both.corpus, both.root, both.sample_rate) == ("speechcommands", "/data/real", 16000)
