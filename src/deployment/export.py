"""A clip classifier (frontend + backbone) as one TorchScript or ONNX file, checked against eager PyTorch.

The exported model maps ``(batch, clip_samples)`` float32 waveforms in ``[-1, 1]`` at the checkpoint's sample
rate to ``(batch, num_classes)`` float32 **logits** (unnormalised; a softmax over the last axis gives the
class probabilities), in ``class_names`` order, every sample counted as audio (pad or cut clips to
``clip_samples`` first). The batch axis is dynamic; the clip length is fixed.

How each format is made, and why (torch 2.11, onnx 1.23, onnxruntime 1.32):

* ``torchscript``: ``torch.jit.trace`` at batch 1 (``torch.jit.script`` cannot compile this project's
  postponed type annotations). Tracing keeps ``torch.stft`` (the FFT) and the int8 kernels, so the traced
  model computes exactly what the eager one does; branches on lengths are fixed at the full clip, which is
  what the exported model always receives.
* ``onnx``: the TorchScript-based exporter, ``torch.onnx.export(dynamo=False)``, opset 17. It cannot convert
  a complex ``torch.stft`` ("STFT does not currently support complex types"; its opset-17 ``STFT`` symbolic
  takes only real-valued ``return_complex=False`` output). The torch.export-based exporter (``dynamo=True``)
  does translate a complex ``torch.stft`` into ONNX's ``STFT`` op (opset 18), but ``torch.export`` refuses
  this project's models before it gets there: data-dependent branches (``ClipClassifierHead``'s mean-pooling
  fast path ``bool((lengths == frames).all())``, ``BCResNet``'s ``check_lengths``) and
  ``LogMelFilterBanks``' in-place ``torch.abs(stft, out=stft)``. So for ONNX the log-mel STFT is computed
  as the direct DFT instead (:func:`with_direct_dft`): a strided ``conv1d`` with the windowed Fourier
  basis, the same DFT as ``torch.stft`` up to float32 rounding (``TrainableLogMel``'s settings C and D
  already compute it so). A frontend of another kind that calls ``torch.stft`` is refused, naming it.
* ``quantize=int8``: TorchScript traces :func:`~src.deployment.quantization.quantize_backbone`'s model
  (PyTorch dynamic int8). Neither ONNX exporter takes PyTorch's quantised modules (their packed weights
  are ``torch._C.ScriptObject`` values), so int8 ONNX is the float32 ONNX
  file quantised by ``onnxruntime.quantization.quantize_dynamic`` (int8 weights of the backbone's
  ``MatMul``/``Gemm``/``LSTM`` nodes; the frontend's nodes excluded; ONNX Runtime has no dynamic int8
  ``GRU``, so GRU layers stay float32 there).
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import onnx
import onnxruntime
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn

from src.deployment.classifier import WaveformClassifier
from src.deployment.quantization import quantizable_layers, quantize_backbone
from src.frontends.log_mel import LogMelFilterBanks
from src.frontends.trainable import TrainableLogMel
from src.utils.run_files import write_json_atomic

FORMATS: dict[str, str] = {"torchscript": "model.pt", "onnx": "model.onnx"}
"""``format`` choices and the model file each writes."""

QUANTIZE_CHOICES = (None, "int8")
"""``quantize`` choices: ``None`` (float32) or dynamic ``"int8"``."""

ONNX_OPSETS = range(14, 21)
"""ONNX opsets the TorchScript-based exporter writes for these models (default 17)."""

INPUT_NAME, OUTPUT_NAME = "waveforms", "logits"

FLOAT32_TOLERANCE = 1e-4
"""Largest allowed ``max |logit - eager logit| / max(1, max |eager logit|)`` of a float32 export (and of an
int8 TorchScript against eager int8). float32 rounds at 6e-8 relative; the FFT-vs-DFT swap and kernel
reorderings measured 1e-6 relative on trained models, so 1e-4 leaves room, while real defects exceed it
(measured on a trained YES/NO model: one mel filter 1% off gives 1.4e-3, a rectangular window 0.8)."""

INT8_ONNX_TOLERANCE = 5e-2
"""The same bound for ONNX Runtime's int8 model against eager float32: its quantisation error, not rounding
(8-bit weights and activations give about 1e-2 relative)."""

FRONTEND_SCOPE = "/frontend/"
"""Prefix of the ONNX node names of the frontend's operations (the exporter names nodes by module path)."""

ONNX_INT8_OPS = ["MatMul", "Gemm", "LSTM"]
"""Node types ``onnxruntime.quantization.quantize_dynamic`` makes int8 (PyTorch's Linear and LSTM)."""

# PyTorch 2.11 deprecates TorchScript and the TorchScript-based ONNX exporter; the issue asks for both
# formats and the new exporter cannot export these models (module docstring), so only these warnings are
# silenced, around the calls that raise them. Tracer warnings say branches are fixed at trace time, which
# is intended here (the exported model always receives full clips).
_SILENCED = ("`torch.jit.", "You are using the legacy TorchScript-based ONNX export", "The feature will be")


class ExportError(RuntimeError):
    """A model that cannot be written in the requested format; the message names the part and what works."""


@contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the deprecation and tracer warnings of TorchScript and the TorchScript-based exporter."""
    with warnings.catch_warnings():
        for message in _SILENCED:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        yield


def check_export_options(format: str, quantize: str | None, opset: int, parity_clips: int = 16) -> None:
    """Refuse an unknown ``format``, ``quantize``, ``opset`` or a ``parity_clips`` that is no positive
    integer, before any work.

    Raises:
        ValueError: naming the key and its valid values.
    """
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not one of {', '.join(FORMATS)}: e.g. format=onnx")
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(
            f"quantize={quantize!r} is not one of null (float32) or int8: e.g. quantize=int8, or leave it out"
        )
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in ONNX_OPSETS:
        raise ValueError(
            f"opset={opset!r} must be an integer from {ONNX_OPSETS.start} to {ONNX_OPSETS.stop - 1}: "
            "e.g. opset=17"
        )
    if isinstance(parity_clips, bool) or not isinstance(parity_clips, int) or parity_clips < 1:
        raise ValueError(f"parity_clips={parity_clips!r} must be a positive integer: e.g. parity_clips=16")


def _dft_twin(log_mel: LogMelFilterBanks) -> TrainableLogMel:
    """A fixed :class:`TrainableLogMel` with ``log_mel``'s settings and filters that takes the direct DFT."""
    settings = ("sample_rate", "n_fft", "win_length", "hop_length", "f_min", "f_max", "n_mels", "power")
    settings += ("center", "pad_mode", "norm", "mel_scale", "log_offset")
    twin = TrainableLogMel(**{name: getattr(log_mel, name) for name in settings})
    with torch.no_grad():
        twin.mel_fbanks.copy_(log_mel.mel_fbanks)
    twin.stft_by_fft = False
    return twin.eval()


def with_direct_dft(model: WaveformClassifier) -> tuple[WaveformClassifier, list[str]]:
    """A copy of ``model`` whose log-mel STFTs are the direct DFT (a ``conv1d`` with the windowed Fourier
    basis) instead of ``torch.stft``, for the ONNX exporter, and the names of the modules changed.

    A fixed :class:`TrainableLogMel` (settings A, B) holds that basis as its kernels and switches to them; a
    :class:`LogMelFilterBanks` (``frontend=logmel``, and inside ``frontend=mfcc``) is replaced by a fixed
    :class:`TrainableLogMel` with its settings and mel filters. The features equal the FFT's to float32
    rounding (measured: 4e-4 at most on log-mel values of real clips; 2e-5 on logits of scale 20).
    """
    exported = copy.deepcopy(model)
    changed = []
    for name, module in list(exported.named_modules()):
        if isinstance(module, TrainableLogMel) and module.stft_by_fft:
            module.stft_by_fft = False
            changed.append(name)
        elif isinstance(module, LogMelFilterBanks):
            exported.set_submodule(name, _dft_twin(module))
            changed.append(name)
    return exported, changed


def _describe(model: WaveformClassifier) -> str:
    return f"frontend {type(model.frontend).__name__} + encoder {type(model.encoder).__name__}"


def trace_torchscript(
    model: nn.Module, clip_samples: int, format: str = "torchscript"
) -> torch.jit.ScriptModule:
    """``torch.jit.trace`` of ``model`` on one ``(1, clip_samples)`` clip (both formats start from it).

    Raises:
        ExportError: when tracing fails, naming ``format``, the model's parts and the error.
    """
    example = torch.zeros(1, clip_samples)
    try:
        with _quiet_export(), torch.no_grad():
            return torch.jit.trace(model, example)
    except Exception as error:
        raise ExportError(
            f"format={format}: tracing {_describe(model)} with torch.jit.trace failed "
            f"({type(error).__name__}: {error}); neither torchscript nor onnx can be written until that "
            "model code traces"
        ) from error


def write_onnx(model: WaveformClassifier, path: Path, opset: int) -> list[str]:
    """Export ``model`` (float32) to the ONNX file ``path`` with a dynamic batch axis; return the modules
    whose ``torch.stft`` became the direct DFT (:func:`with_direct_dft`).

    Raises:
        ExportError: when the model does not trace (:func:`trace_torchscript`), or the exporter cannot
            convert it (e.g. a frontend of no log-mel kind that calls ``torch.stft``), naming the parts and
            that ``format=torchscript`` works.
    """
    trace_torchscript(model, model.clip_samples, format="onnx")  # fails early, naming the model's own parts
    exported, changed = with_direct_dft(model)
    example = torch.zeros(1, model.clip_samples)
    try:
        with _quiet_export(), torch.no_grad():
            torch.onnx.export(
                exported,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    except Exception as error:
        path.unlink(missing_ok=True)
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        stft = (
            " A complex torch.stft does not convert to ONNX; the log-mel frontends (frontend=logmel, mfcc, "
            "trainable) are exported with their DFT as a conv1d instead, other frontends are not."
            if "STFT" in str(error)
            else ""
        )
        raise ExportError(
            f"format=onnx: the ONNX exporter cannot convert {_describe(model)} ({reason}).{stft} Use "
            "format=torchscript, which traces this model"
        ) from error
    return changed


def quantize_onnx(float_path: Path, int8_path: Path) -> list[str]:
    """Write ONNX Runtime's dynamic int8 version of ``float_path`` to ``int8_path``: int8 weights (and
    activations quantised on the fly) in the backbone's ``MatMul``/``Gemm``/``LSTM`` nodes with constant
    weights, the frontend's nodes left float32. Returns the names of the nodes quantised."""
    graph = onnx.load(str(float_path)).graph
    weights = {initializer.name for initializer in graph.initializer}
    frontend = [node.name for node in graph.node if node.name.startswith(FRONTEND_SCOPE)]
    quantized = [
        node.name
        for node in graph.node
        if node.op_type in ONNX_INT8_OPS
        and not node.name.startswith(FRONTEND_SCOPE)
        and len(node.input) > 1
        and node.input[1] in weights
    ]
    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        quantize_dynamic(
            str(float_path),
            str(int8_path),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=ONNX_INT8_OPS,
            nodes_to_exclude=frontend,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.removeFilter(_no_preprocessing_advice)
    return quantized


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """Drop onnxruntime's advice to run its graph pre-processing first: it fuses and renames nodes, which
    would hide which ones belong to the frontend (kept float32 by name)."""
    return "pre-processing before quantization" not in record.getMessage()


def load_exported(path: str | Path, format: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The exported model at ``path`` as a function ``(batch, clip_samples) -> (batch, num_classes)`` logits:
    ``torch.jit.load`` for TorchScript, an ONNX Runtime CPU session for ONNX."""
    if format == "torchscript":
        with _quiet_export():
            module = torch.jit.load(str(path), map_location="cpu")

        def run_torchscript(waveforms: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return module(waveforms)

        return run_torchscript
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run_onnx(waveforms: torch.Tensor) -> torch.Tensor:
        inputs = {INPUT_NAME: waveforms.detach().cpu().numpy().astype("float32")}
        return torch.from_numpy(session.run([OUTPUT_NAME], inputs)[0])

    return run_onnx


def parity_clips(num_clips: int, clip_samples: int, sample_rate: int, seed: int = 0) -> torch.Tensor:
    """``(num_clips, clip_samples)`` seeded test waveforms in ``[-1, 1]``: tones of random pitch (80 Hz to a
    quarter of ``sample_rate``) and level in noise at random levels, every other one noise alone."""
    generator = torch.Generator().manual_seed(seed)
    time = torch.arange(clip_samples) / sample_rate
    pitch = 80 + torch.rand(num_clips, 1, generator=generator) * (sample_rate / 4 - 80)
    tones = torch.sin(2 * torch.pi * pitch * time) * torch.rand(num_clips, 1, generator=generator) * 0.5
    tones[1::2] = 0.0
    noise = torch.randn(num_clips, clip_samples, generator=generator)
    noise_level = 10 ** (-4 * torch.rand(num_clips, 1, generator=generator))  # 1e-4 .. 1
    return (tones + 0.2 * noise_level * noise).clamp(-1.0, 1.0)


def measure_parity(
    reference: nn.Module, exported: Callable[[torch.Tensor], torch.Tensor], clips: torch.Tensor
) -> dict[str, float | int]:
    """How far ``exported``'s logits are from ``reference``'s on ``clips`` (one batch, so a dynamic batch
    axis is exercised): ``max_abs_diff``, ``max_abs_logit`` (of the reference), ``scaled_diff`` =
    ``max_abs_diff / max(1, max_abs_logit)`` (what the tolerances bound), ``top1_agreement`` (share of
    clips with the same best class) and ``clips``."""
    with torch.no_grad():
        expected, actual = reference(clips), exported(clips)
    difference = float((actual - expected).abs().max())
    scale = float(expected.abs().max())
    return {
        "clips": int(clips.shape[0]),
        "max_abs_diff": difference,
        "max_abs_logit": scale,
        "scaled_diff": difference / max(1.0, scale),
        "top1_agreement": float((actual.argmax(-1) == expected.argmax(-1)).float().mean()),
    }


def tolerance(format: str, quantize: str | None) -> float:
    """The bound on ``scaled_diff`` (:func:`measure_parity`) an export must meet: :data:`FLOAT32_TOLERANCE`,
    or :data:`INT8_ONNX_TOLERANCE` for ONNX Runtime's int8 model (compared with eager float32)."""
    return INT8_ONNX_TOLERANCE if (format, quantize) == ("onnx", "int8") else FLOAT32_TOLERANCE


def export_classifier(
    model: WaveformClassifier,
    output_dir: str | Path,
    format: str,
    quantize: str | None = None,
    opset: int = 17,
    num_parity_clips: int = 16,
    source: str | None = None,
) -> dict[str, Any]:
    """Write ``model`` as one ``format`` file into ``output_dir`` with ``export.json`` beside it, after
    checking the file against eager PyTorch; return the content of ``export.json`` (``source``: the
    checkpoint it came from, recorded there).

    The reference is ``model`` itself (float32), or :func:`quantize_backbone`'s int8 copy for an int8
    TorchScript file; ONNX Runtime's int8 file is compared with float32 ``model`` at the looser
    :data:`INT8_ONNX_TOLERANCE`. Parity is measured on :func:`parity_clips`.

    Raises:
        ValueError: for bad options (:func:`check_export_options`).
        FileExistsError: when ``output_dir`` already holds ``export.json`` or a model file of that format
            (never overwritten).
        ExportError: when the model cannot be written in ``format`` (the message says what works), or the
            written file's logits differ from eager PyTorch's beyond the tolerance (the file is removed).
    """
    check_export_options(format, quantize, opset, num_parity_clips)
    output_dir = Path(output_dir)
    path = output_dir / FORMATS[format]
    for existing in (path, output_dir / "export.json"):
        if existing.exists():
            raise FileExistsError(
                f"{existing} exists and is never overwritten: choose another output= folder"
            )
    output_dir.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    int8 = quantize == "int8"
    quantized_layers = quantizable_layers(model) if int8 else []
    stft_as_dft: list[str] = []
    if format == "torchscript":
        reference = quantize_backbone(model) if int8 else model
        trace_torchscript(reference, model.clip_samples).save(str(path))
    elif int8:
        reference = model
        with tempfile.TemporaryDirectory() as scratch:
            float_path = Path(scratch) / "float32.onnx"
            stft_as_dft = write_onnx(model, float_path, opset)
            quantized_layers = quantize_onnx(float_path, path)
    else:
        reference = model
        stft_as_dft = write_onnx(model, path, opset)
    clips = parity_clips(num_parity_clips, model.clip_samples, model.sample_rate)
    parity = measure_parity(reference, load_exported(path, format), clips)
    parity["tolerance"] = tolerance(format, quantize)
    parity["reference"] = "eager int8 (quantize_backbone)" if reference is not model else "eager float32"
    if not parity["scaled_diff"] <= parity["tolerance"]:
        path.unlink()
        raise ExportError(
            f"the exported {format} model's logits differ from eager PyTorch's by "
            f"{parity['max_abs_diff']:.3g} (scaled {parity['scaled_diff']:.3g} > tolerance "
            f"{parity['tolerance']:g}) on {parity['clips']} "
            f"clips: {path} was removed; please report this with the checkpoint"
        )
    metadata = {
        "checkpoint": source,
        "format": format,
        "file": path.name,
        "file_bytes": path.stat().st_size,
        "quantize": quantize,
        "quantized_layers": quantized_layers,
        "exporter": "torch.jit.trace" if format == "torchscript" else "torch.onnx.export(dynamo=False)",
        "opset": opset if format == "onnx" else None,
        "stft_as_direct_dft": stft_as_dft,
        "input": {"name": INPUT_NAME, "shape": ["batch", model.clip_samples], "dtype": "float32"},
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["batch", len(model.class_names)],
            "dtype": "float32",
            "meaning": "logits (unnormalised); softmax over the last axis gives class probabilities",
        },
        "class_names": list(model.class_names),
        "sample_rate": model.sample_rate,
        "clip_samples": model.clip_samples,
        "frontend": type(model.frontend).__name__,
        "encoder": type(model.encoder).__name__,
        "parity": parity,
        "versions": _versions(),
    }
    write_json_atomic(output_dir / "export.json", metadata)
    return metadata


def _versions() -> dict[str, str]:
    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
