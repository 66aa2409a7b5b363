"""Dynamic int8 quantisation of the backbone: which layers, what it leaves alone, what it changes."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from src.deployment.classifier import load_classifier
from src.deployment.compare_int8 import compare_int8, format_comparison
from src.deployment.quantization import quantizable_layers, quantize_backbone
from src.utils.complexity import serialized_bytes
from tests.conftest import compose_config
from tests.deployment.untrained import untrained_classifier


def test_the_recurrent_and_linear_layers_of_the_backbone_become_int8() -> None:
    model = untrained_classifier("model=gru", "task.standardize_features=true", num_classes=12)
    frontend_state = {name: value.clone() for name, value in model.frontend.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the torch.ao deprecation warning is silenced, nothing else raised
        quantized = quantize_backbone(model)
    names = ["encoder.layers.layers.0.0", "encoder.layers.layers.1.0", "head.classifier"]
    assert quantizable_layers(model) == names
    int8 = {
        name for name, module in quantized.named_modules() if type(module).__module__.startswith("torch.ao")
    }
    assert {"encoder.layers.layers.0.0", "encoder.layers.layers.1.0", "head.classifier"} <= int8
    # a copy: the float32 model, its frontend and the standardiser are untouched
    assert type(model.encoder.layers.layers[0][0]) is nn.GRU and type(model.head.classifier) is nn.Linear
    assert type(quantized.frontend) is type(model.frontend)
    for name, value in quantized.frontend.state_dict().items():
        assert torch.equal(value, frontend_state[name]), name
    assert torch.equal(quantized.standardizer.mean, model.standardizer.mean)
    # GRU and linear weights dominate this backbone: int8 stores them in about a quarter of the bytes
    assert serialized_bytes(quantized.backbone()) < 0.35 * serialized_bytes(model.backbone())
    waveforms = torch.randn(4, model.clip_samples) * 0.1
    with torch.no_grad():
        expected, actual = model(waveforms), quantized(waveforms)
    assert actual.shape == expected.shape == (4, 12)
    assert 0 < (actual - expected).abs().max() < 0.05 * expected.abs().max()


def test_convolutions_stay_float32_and_a_backbone_without_linear_layers_is_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = untrained_classifier("model=conv1d")
    assert quantizable_layers(model) == ["head.classifier"]
    quantized = quantize_backbone(model)
    convolutions = [name for name, module in model.encoder.named_modules() if type(module) is nn.Conv1d]
    assert convolutions and convolutions == [
        name for name, module in quantized.encoder.named_modules() if type(module) is nn.Conv1d
    ]
    assert type(quantized.head.classifier).__module__.startswith("torch.ao")
    model.head.classifier = nn.Identity()  # no nn.Linear/LSTM/GRU left in the backbone
    with caplog.at_level(logging.WARNING, logger="src.deployment.quantization"):
        unchanged = quantize_backbone(model)
    assert "nothing was quantised" in caplog.text and "convolutions" in caplog.text
    assert unchanged is not model and quantizable_layers(unchanged) == []


def test_a_trained_checkpoint_quantises_to_close_logits(yesno_checkpoint: Path) -> None:
    model = load_classifier(yesno_checkpoint).model
    quantized = quantize_backbone(model)
    waveforms = torch.randn(3, model.clip_samples) * 0.1
    with torch.no_grad():
        expected, actual = model(waveforms), quantized(waveforms)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0.05 * float(expected.abs().max()) + 1e-3)
    assert quantized.class_names == model.class_names and quantized.clip_samples == model.clip_samples


def test_the_comparison_reports_both_models_on_the_test_split(yesno_checkpoint: Path, tmp_path: Path) -> None:
    overrides = [f"ckpt_path={yesno_checkpoint}", f"paths.output_dir={tmp_path}", "latency_clips=3"]
    summary = compare_int8(compose_config("compare_int8", overrides))
    assert json.loads((tmp_path / "comparison.json").read_text()) == summary
    float32, int8 = summary["results"]["float32"], summary["results"]["int8"]
    assert float32["test_clips"] == int8["test_clips"] > 0
    assert 0.0 <= int8["test_accuracy"] <= 1.0 and float32["latency_ms_per_clip"] > 0
    assert summary["quantized_layers"] == ["head.classifier"] and "synthetic" in summary["corpus_note"]
    assert "generated corpus" in format_comparison(summary)
    with pytest.raises(ValueError, match="latency_clips=0 must be a positive integer"):
        compare_int8(compose_config("compare_int8", [*overrides[:2], "latency_clips=0"]))
