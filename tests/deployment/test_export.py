"""Exported models (TorchScript, ONNX through onnxruntime; float32 and int8) give eager PyTorch's logits."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from src.data.common.audio import fit_length, read_clip
from src.deployment.classifier import WaveformClassifier, load_classifier
from src.deployment.export import (
    FLOAT32_TOLERANCE,
    INT8_ONNX_TOLERANCE,
    ExportError,
    check_export_options,
    export_classifier,
    load_exported,
    measure_parity,
    parity_clips,
)
from src.deployment.quantization import quantize_backbone
from src.frontends.base import Frontend
from tests.conftest import REAL_SAMPLE, choices, requires_real_sample, run_python
from tests.deployment.untrained import FRONTENDS, SAMPLE_RATE, untrained_classifier

# Two clips of each of ten words of the real Speech Commands sample.
WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


@pytest.fixture(scope="module")
def real_clips() -> torch.Tensor:
    """``(20, 16000)`` real one-second clips, read and fitted as in training."""
    if not REAL_SAMPLE.is_dir():
        pytest.skip(f"the real Speech Commands sample is not at {REAL_SAMPLE}")
    files = [path for word in WORDS for path in sorted((REAL_SAMPLE / word).glob("*.wav"))[:2]]
    return torch.stack([fit_length(read_clip(path, SAMPLE_RATE), SAMPLE_RATE) for path in files])


def check_real_parity(model: WaveformClassifier, output_dir: Path, format: str, clips: torch.Tensor) -> dict:
    """Parity of the exported file in ``output_dir`` with ``model`` on real clips."""
    metadata = json.loads((output_dir / "export.json").read_text())
    return measure_parity(model, load_exported(output_dir / metadata["file"], format), clips)


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
@pytest.mark.parametrize("frontend", sorted(FRONTENDS))
def test_every_frontend_exports_with_eager_logits(frontend: str, format: str, tmp_path: Path) -> None:
    model = untrained_classifier(*FRONTENDS[frontend], "task.standardize_features=true")
    metadata = export_classifier(model, tmp_path, format, num_parity_clips=8)
    parity = metadata["parity"]
    assert parity["clips"] == 8 and parity["max_abs_logit"] > 5  # logits of a trained model's size
    assert parity["scaled_diff"] <= FLOAT32_TOLERANCE == parity["tolerance"]
    assert parity["top1_agreement"] == 1.0
    # TorchScript keeps torch.stft; ONNX takes the DFT as a conv1d wherever torch.stft was the FFT
    uses_fft = frontend in ("logmel", "mfcc", "trainable_A", "trainable_B")
    expected = {"logmel": ["frontend"], "mfcc": ["frontend.log_mel"]}.get(frontend, ["frontend"])
    assert metadata["stft_as_direct_dft"] == (expected if uses_fft and format == "onnx" else [])
    if format == "torchscript":
        assert parity["max_abs_diff"] == 0.0  # the trace runs the eager kernels
    assert metadata["input"] == {"name": "waveforms", "shape": ["batch", 16000], "dtype": "float32"}
    assert metadata["output"]["shape"] == ["batch", 2] and "logits" in metadata["output"]["meaning"]
    assert metadata["class_names"] == ["class0", "class1"] and metadata["sample_rate"] == SAMPLE_RATE
    assert metadata["opset"] == (17 if format == "onnx" else None)
    assert (tmp_path / metadata["file"]).stat().st_size == metadata["file_bytes"]


@pytest.mark.parametrize("model", [m for m in choices("model") if m != "bcresnet"])  # bcresnet1: its layout
def test_every_encoder_exports_to_onnx_with_eager_logits(model: str, tmp_path: Path) -> None:
    metadata = export_classifier(untrained_classifier(f"model={model}"), tmp_path, "onnx", num_parity_clips=4)
    assert metadata["parity"]["scaled_diff"] <= FLOAT32_TOLERANCE
    assert metadata["parity"]["top1_agreement"] == 1.0


@requires_real_sample
@pytest.mark.parametrize("frontend", ["logmel", "mfcc", "trainable_B", "trainable_D"])
def test_onnx_gives_eager_logits_on_real_clips(
    frontend: str, tmp_path: Path, real_clips: torch.Tensor
) -> None:
    model = untrained_classifier(*FRONTENDS[frontend])
    export_classifier(model, tmp_path, "onnx", num_parity_clips=1)
    parity = check_real_parity(model, tmp_path, "onnx", real_clips)
    assert parity["max_abs_logit"] > 5 and parity["scaled_diff"] <= FLOAT32_TOLERANCE
    assert parity["top1_agreement"] == 1.0


def test_int8_torchscript_is_the_eager_int8_model(tmp_path: Path) -> None:
    model = untrained_classifier("model=gru", num_classes=12)
    metadata = export_classifier(model, tmp_path / "int8", "torchscript", "int8", num_parity_clips=4)
    assert metadata["quantized_layers"] == [
        "encoder.layers.layers.0.0",
        "encoder.layers.layers.1.0",
        "head.classifier",
    ]
    assert metadata["parity"]["max_abs_diff"] == 0.0 and metadata["parity"]["reference"].startswith(
        "eager int8"
    )
    float32 = export_classifier(model, tmp_path / "float32", "torchscript", num_parity_clips=1)
    assert metadata["file_bytes"] < 0.6 * float32["file_bytes"]  # the frontend and the code stay
    clips = torch.randn(3, model.clip_samples) * 0.1
    parity = measure_parity(
        quantize_backbone(model), load_exported(tmp_path / "int8" / "model.pt", "torchscript"), clips
    )
    assert parity["max_abs_diff"] == 0.0


def test_int8_onnx_quantises_the_backbone_only_within_its_tolerance(tmp_path: Path) -> None:
    model = untrained_classifier("model=lstm", "frontend=mfcc", num_classes=12)
    metadata = export_classifier(model, tmp_path / "int8", "onnx", "int8", num_parity_clips=8)
    float32 = export_classifier(model, tmp_path / "float32", "onnx", num_parity_clips=1)
    assert metadata["quantized_layers"] == [
        "/encoder/layers/layers.0.0/LSTM",
        "/encoder/layers/layers.1.0/LSTM",
        "/head/classifier/Gemm",
    ]
    graph = onnx.load(str(tmp_path / "int8" / "model.onnx")).graph
    int8_nodes = [
        node.name for node in graph.node if node.op_type in ("MatMulInteger", "DynamicQuantizeLSTM")
    ]
    assert len(int8_nodes) == 3 and not any(name.startswith("/frontend/") for name in int8_nodes)
    assert any(
        node.op_type == "Conv" and node.name.startswith("/frontend/") for node in graph.node
    )  # float DFT
    parity = metadata["parity"]
    assert parity["reference"] == "eager float32" and parity["tolerance"] == INT8_ONNX_TOLERANCE
    assert 0 < parity["scaled_diff"] <= INT8_ONNX_TOLERANCE and parity["max_abs_logit"] > 5
    assert metadata["file_bytes"] < float32["file_bytes"] - 100_000  # LSTM weights at a byte each


class ComplexSpectrogram(Frontend):
    """A frontend of no log-mel kind that calls ``torch.stft`` (complex): 40 bins, 10 ms hop."""

    out_features = 40

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        window = torch.hann_window(78)
        return torch.stft(waveforms, 78, 160, window=window, return_complex=True).abs().log1p()

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        return 1 + num_samples // 160


def test_a_frontend_whose_stft_does_not_convert_is_refused_for_onnx_only(tmp_path: Path) -> None:
    model = untrained_classifier("model=conv1d")
    model.frontend = ComplexSpectrogram()
    with pytest.raises(ExportError, match=r"format=onnx: .*ComplexSpectrogram.*Use format=torchscript"):
        export_classifier(model, tmp_path, "onnx")
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "export.json").exists()
    assert export_classifier(model, tmp_path, "torchscript")["parity"]["max_abs_diff"] == 0.0
    for format in ("torchscript", "onnx"):  # the model file, or export.json of another export
        with pytest.raises(FileExistsError, match="never overwritten: choose another output= folder"):
            export_classifier(model, tmp_path, format)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("tflite", None, 17, 16), "format='tflite' is not one of torchscript, onnx"),
        (("onnx", "int4", 17, 16), "quantize='int4' is not one of null"),
        (("onnx", None, 12, 16), "opset=12 must be an integer from 14 to 20"),
        (("onnx", None, 17, 0), "parity_clips=0 must be a positive integer"),
    ],
)
def test_bad_options_are_refused_naming_the_key(options: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_export_options(*options)


def test_export_py_writes_an_onnx_model_in_its_own_folder(yesno_checkpoint: Path, tmp_path: Path) -> None:
    result = run_python(
        "export.py", f"ckpt_path={yesno_checkpoint}", "format=onnx", project_root=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "logs" / "export" / "runs").iterdir()
    assert f"{run / 'model.onnx'} (onnx, float32" in result.stdout and "logits" in result.stdout
    metadata = json.loads((run / "export.json").read_text())
    assert metadata["checkpoint"] == str(yesno_checkpoint) and metadata["class_names"] == ["yes", "no"]
    assert metadata["stft_as_direct_dft"] == ["frontend"] and metadata["parity"]["clips"] == 16
    model = load_classifier(yesno_checkpoint).model
    clips = parity_clips(6, model.clip_samples, model.sample_rate, seed=1)
    parity = measure_parity(model, load_exported(run / "model.onnx", "onnx"), clips)
    assert parity["scaled_diff"] <= FLOAT32_TOLERANCE and parity["top1_agreement"] == 1.0
