"""Latency per clip at batch 1 on this CPU: eager PyTorch, TorchScript and ONNX Runtime, float32 and int8.

    python -m benchmarks.inference --ckpt-path <run>/checkpoints/last.ckpt [--threads 1] [--rounds 15]
    python -m benchmarks.inference --model gru [--frontend logmel] [--data kws12]    (an untrained model)

The model is a ``train.py`` checkpoint's clip classifier (:func:`src.deployment.classifier.load_classifier`)
or, without ``--ckpt-path``, an untrained one built from ``conf/`` as ``train.py`` would build it with
``model=``, ``frontend=`` and ``data=`` overrides (the data module is built but reads no corpus; latency
does not depend on the weights). Six candidates, each mapping one ``(1, clip_samples)`` clip to logits:

- ``eager f32``: the :class:`~src.deployment.classifier.WaveformClassifier` itself (the reference);
- ``eager int8``: :func:`~src.deployment.quantization.quantize_backbone` (PyTorch dynamic int8);
- ``torchscript f32`` / ``torchscript int8``: those two traced, saved and loaded back
  (:func:`~src.deployment.export.trace_torchscript`, :func:`~src.deployment.export.load_exported`);
- ``onnxruntime f32`` / ``onnxruntime int8``: :func:`~src.deployment.export.write_onnx` and
  :func:`~src.deployment.export.quantize_onnx` (onnxruntime's dynamic int8) run by an ONNX Runtime CPU
  session.

Every file is written into a temporary folder, removed at the end. Before anything is timed, each
candidate's logits on :func:`~src.deployment.export.parity_clips` are compared with eager float32's, as
``export.py`` compares them: ``max |difference| / max(1, max |logit|)`` at most ``FLOAT32_TOLERANCE`` for
the float32 candidates and ``INT8_ONNX_TOLERANCE`` (quantisation error) for the int8 ones; otherwise the
script prints which and exits with status 1, since its timings would be meaningless. A model that
cannot be exported in a format is reported with the reason and its candidates are left out.

Timing: PyTorch runs ``--threads`` intra-op threads (``torch.set_num_threads``) and ONNX Runtime the
same number (``SessionOptions.intra_op_num_threads``); every candidate is called ``--warmup`` times
untimed, then all are timed in ``--rounds`` alternating rounds of ``--number`` calls
(:func:`benchmarks.timing.median_seconds`), so that load from other processes affects all alike. The
table shows the median milliseconds per clip and the ratio to eager float32 measured in the same run.
The input is one clip of seeded Gaussian noise (std 0.1): the cost does not depend on the content.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnxruntime
import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from benchmarks.run_config import REPO_ROOT, compose_run_config
from benchmarks.timing import median_seconds
from src.deployment.classifier import WaveformClassifier, load_classifier
from src.deployment.export import (
    FLOAT32_TOLERANCE,
    INPUT_NAME,
    INT8_ONNX_TOLERANCE,
    OUTPUT_NAME,
    ExportError,
    load_exported,
    measure_parity,
    parity_clips,
    quantize_onnx,
    trace_torchscript,
    write_onnx,
)
from src.deployment.quantization import quantizable_layers, quantize_backbone
from src.training import build_task, hardware_description

REFERENCE = "eager f32"
TOLERANCES = {"f32": FLOAT32_TOLERANCE, "int8": INT8_ONNX_TOLERANCE}
"""Precision -> the largest ``scaled_diff`` of a candidate's logits against eager float32's."""
CHOICES = {
    group: sorted(path.stem for path in (REPO_ROOT / "conf" / group).glob("*.yaml"))
    for group in ("model", "frontend", "data")
}
"""Config group -> the choices of ``--model``, ``--frontend``, ``--data`` (the files of ``conf/<group>``)."""

Logits = Callable[[torch.Tensor], torch.Tensor]
"""``(batch, clip_samples)`` waveforms -> ``(batch, num_classes)`` logits."""


@dataclass
class Candidate:
    """One way of running the model: its logits function and what the table says about it."""

    run: Logits
    precision: str
    int8_layers: str = "-"


def positive_int(text: str) -> int:
    """``text`` as an integer of at least 1 (an argparse ``type``)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer: e.g. 1")
    return value


def non_negative_int(text: str) -> int:
    """``text`` as an integer of at least 0 (an argparse ``type``)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative: e.g. 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt-path", type=Path, default=None, help="a train.py checkpoint (.ckpt)")
    for group in CHOICES:
        parser.add_argument(
            f"--{group}",
            choices=CHOICES[group],
            default=None,
            help=f"without --ckpt-path: {group}= of the untrained model (default: conf/config.yaml's)",
        )
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="intra-op threads (default: torch's own)"
    )
    parser.add_argument("--rounds", type=positive_int, default=15, help="timed rounds (default: 15)")
    parser.add_argument("--number", type=positive_int, default=20, help="calls per round (default: 20)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed calls (default: 10)")
    parser.add_argument(
        "--parity-clips", type=positive_int, default=16, help="clips of the logit check (default: 16)"
    )
    return parser


def untrained_classifier(overrides: list[str], parser: argparse.ArgumentParser) -> WaveformClassifier:
    """The seeded, untrained clip classifier ``python train.py <overrides>`` would start from."""
    cfg = compose_run_config(overrides)
    task_class = get_class(cfg.task._target_)
    if task_class.TARGETS != "class":
        parser.error(
            f"{' '.join(overrides)} selects {task_class.__name__} ({task_class.TARGETS!r} targets): this "
            "benchmark times clip classifiers; choose --data among yesno, kws10, kws12, kws35"
        )
    groups = ("task", "frontend", "model", "optimizer", "scheduler")
    settings = {group: OmegaConf.to_container(cfg[group], resolve=True) for group in groups}
    torch.manual_seed(cfg.seed)
    try:
        task = build_task(settings, instantiate(cfg.data, _convert_="all"))
    except ValueError as error:
        parser.error(f"{' '.join(overrides)}: {error}")
    return WaveformClassifier(task, sample_rate=int(cfg.data.sample_rate))


def load_model(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[WaveformClassifier, str]:
    """The model to time and a line saying where it came from; exits (status 2) on bad input."""
    overrides = [f"{group}={getattr(args, group)}" for group in CHOICES if getattr(args, group)]
    if args.ckpt_path is None:
        command = " ".join(["train.py", *overrides]) if overrides else "train.py (config defaults)"
        return untrained_classifier(overrides, parser), f"untrained model of {command}"
    if overrides:
        parser.error(
            f"--{overrides[0].split('=')[0]} builds an untrained model; leave it out with --ckpt-path "
            "(the checkpoint sets its own model, frontend and data)"
        )
    try:
        loaded = load_classifier(args.ckpt_path)
    except (OSError, ValueError) as error:
        parser.error(f"--ckpt-path {args.ckpt_path}: {error}")
    return loaded.model, f"checkpoint {args.ckpt_path}"


def onnx_runner(path: Path, threads: int) -> Logits:
    """An ONNX Runtime CPU session of ``path`` with ``threads`` intra-op threads, as a logits function."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(waveforms: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: waveforms.numpy()})[0])

    return run


def no_grad(module: torch.nn.Module) -> Logits:
    """``module``'s forward without gradients, as a logits function."""

    def run(waveforms: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(waveforms)

    return run


def build_candidates(
    model: WaveformClassifier, folder: Path, threads: int
) -> tuple[dict[str, Candidate], list[str]]:
    """The six candidates (fewer when a format cannot be exported) and notes on the ones left out."""
    int8_model = quantize_backbone(model)
    pytorch_int8 = str(len(quantizable_layers(model)))
    candidates = {
        REFERENCE: Candidate(no_grad(model), "f32"),
        "eager int8": Candidate(no_grad(int8_model), "int8", pytorch_int8),
    }
    notes = []
    try:
        for precision, module in (("f32", model), ("int8", int8_model)):
            path = folder / f"model_{precision}.pt"
            trace_torchscript(module, model.clip_samples).save(str(path))
            layers = pytorch_int8 if precision == "int8" else "-"
            candidates[f"torchscript {precision}"] = Candidate(
                load_exported(path, "torchscript"), precision, layers
            )
        float_path, int8_path = folder / "model_f32.onnx", folder / "model_int8.onnx"
        write_onnx(model, float_path, opset=17)
        nodes = quantize_onnx(float_path, int8_path)
        candidates["onnxruntime f32"] = Candidate(onnx_runner(float_path, threads), "f32")
        candidates["onnxruntime int8"] = Candidate(
            onnx_runner(int8_path, threads), "int8", f"{len(nodes)} (ONNX nodes)"
        )
    except ExportError as error:
        notes.append(f"left out: {error}")
    return candidates, notes


def parity_failures(
    reference: torch.nn.Module, candidates: dict[str, Candidate], clips: torch.Tensor
) -> tuple[dict[str, float], list[str]]:
    """Each candidate's ``scaled_diff`` (:func:`~src.deployment.export.measure_parity`) against
    ``reference`` on ``clips``, and a line for each one beyond its precision's :data:`TOLERANCES`."""
    scaled = {name: measure_parity(reference, c.run, clips)["scaled_diff"] for name, c in candidates.items()}
    failures = [
        f"{name}: logits differ from {REFERENCE}'s by {scaled[name]:.3g} (scaled) > tolerance "
        f"{TOLERANCES[candidate.precision]:g}"
        for name, candidate in candidates.items()
        if not scaled[name] <= TOLERANCES[candidate.precision]
    ]
    return scaled, failures


def cpu_name() -> str:
    """The CPU's model name and its logical cores (:func:`src.training.hardware_description`)."""
    hardware = hardware_description()
    return f"{hardware['cpu']}, {hardware['cpu_cores']} logical cores"


def main(argv: list[str] | None = None) -> int:
    """Check every candidate's logits, time them and print the table; the exit status (1: a candidate's
    logits are beyond the tolerance; 2, from argparse: bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    model, source = load_model(args, parser)
    model = model.cpu().eval()
    print(
        f"torch {torch.__version__} (quantized engine {torch.backends.quantized.engine}), onnxruntime "
        f"{onnxruntime.__version__}; CPU: {cpu_name()}; {threads} intra-op threads in both; load average "
        f"{os.getloadavg()[0]:.2f} at start"
    )
    print(
        f"{source}: frontend {type(model.frontend).__name__}, encoder {type(model.encoder).__name__}, "
        f"{len(model.class_names)} classes, clips of {model.clip_samples} samples at {model.sample_rate} Hz"
    )
    with tempfile.TemporaryDirectory(prefix="inference_benchmark_") as folder:
        candidates, notes = build_candidates(model, Path(folder), threads)
        for note in notes:
            print(note)
        checks = parity_clips(args.parity_clips, model.clip_samples, model.sample_rate)
        scaled, failures = parity_failures(model, candidates, checks)
        if failures:
            print("timings would be meaningless:\n  " + "\n  ".join(failures), file=sys.stderr)
            return 1
        clip = 0.1 * torch.randn(1, model.clip_samples, generator=torch.Generator().manual_seed(0))
        calls = {name: (lambda run=candidate.run: run(clip)) for name, candidate in candidates.items()}
        for _ in range(args.warmup):
            for call in calls.values():
                call()
        medians = median_seconds(calls, args.rounds, args.number)
    print(
        f"\nbatch 1, one clip of Gaussian noise, median of {args.rounds} alternating rounds x {args.number} "
        f"calls after {args.warmup} untimed; logits checked on {args.parity_clips} clips against {REFERENCE}"
    )
    print(
        f"  {'candidate':<17} {'ms/clip':>8} {'ratio':>7} {'logit diff':>11} {'tolerance':>10}   int8 layers"
    )
    for name, candidate in candidates.items():
        print(
            f"  {name:<17} {medians[name] * 1e3:8.3f} {medians[name] / medians[REFERENCE]:7.3f} "
            f"{scaled[name]:11.2e} {TOLERANCES[candidate.precision]:10.0e}   {candidate.int8_layers}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
