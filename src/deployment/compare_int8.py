"""Float32 against dynamic int8 on a checkpoint's test split: size on disk, accuracy and latency per clip.

``python -m src.deployment.compare_int8 ckpt_path=<run>/checkpoints/last.ckpt`` (``conf/compare_int8.yaml``)
writes ``comparison.json`` in its own run folder and prints a table. Both models are the checkpoint's
:class:`~src.deployment.classifier.WaveformClassifier`, given each test clip's true length as ``test.py``
does; int8 is :func:`~src.deployment.quantization.quantize_backbone`'s copy. Latency is of one clip at a
time (batch 1), the two models taking turns.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from src.deployment.classifier import WaveformClassifier, load_classifier
from src.deployment.quantization import quantizable_layers, quantize_backbone
from src.evaluation import checked_data_config
from src.resolvers import register_resolvers
from src.training import corpus_note
from src.utils.complexity import serialized_bytes
from src.utils.run_files import write_json_atomic

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@torch.no_grad()
def accuracy_on(model: WaveformClassifier, loader: DataLoader) -> tuple[float, int]:
    """Share of the clips of ``loader``'s ``(waveforms, lengths, labels)`` batches that ``model`` classifies
    right, and their count."""
    correct = total = 0
    for waveforms, lengths, labels in loader:
        correct += int((model(waveforms, lengths).argmax(-1) == labels).sum())
        total += int(labels.numel())
    return correct / total, total


@torch.no_grad()
def latency_per_clip_ms(
    models: dict[str, nn.Module], clips: torch.Tensor, warmup: int = 3
) -> dict[str, float]:
    """Median wall time in ms of each of ``models`` on each of ``clips`` ``(n, clip_samples)`` at batch 1,
    on this CPU with torch's current thread count. The models take turns on every clip (after ``warmup``
    untimed rounds), so drifts of the machine's speed reach all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for index, clip in enumerate(torch.cat([clips[:warmup], clips])):
        for name, model in models.items():
            start = time.perf_counter()
            model(clip[None])
            if index >= warmup:
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def compare_int8(cfg: DictConfig) -> dict[str, Any]:
    """Measure float32 and int8 of ``cfg.ckpt_path`` on its test split; write ``comparison.json`` in
    ``cfg.paths.output_dir`` and return its content.

    Raises:
        ValueError: for a ``latency_clips`` that is no positive integer, data keys the checkpoint's data
            config refuses (:func:`src.evaluation.checked_data_config`), data serving other labels, or test
            clips of another length than the model's; and :func:`load_classifier`'s refusals of the
            checkpoint.
    """
    if isinstance(cfg.latency_clips, bool) or not isinstance(cfg.latency_clips, int) or cfg.latency_clips < 1:
        raise ValueError(
            f"latency_clips={cfg.latency_clips!r} must be a positive integer: e.g. latency_clips=100"
        )
    loaded = load_classifier(cfg.ckpt_path)
    float32, run_config = loaded.model, loaded.run_config
    data_config = checked_data_config(run_config.data, cfg.data, run_config.frontend)
    L.seed_everything(run_config.seed, workers=True)
    datamodule = instantiate(data_config, _convert_="all")
    if list(datamodule.label_names) != float32.class_names:
        raise ValueError(
            f"The checkpoint was trained on labels {float32.class_names} but the data serves "
            f"{list(datamodule.label_names)}: compare on data with the same label set"
        )
    if datamodule.example_samples != float32.clip_samples:
        raise ValueError(
            f"The test clips have {datamodule.example_samples} samples, the model reads "
            f"{float32.clip_samples}: leave data.clip_seconds out"
        )
    datamodule.prepare_data()
    datamodule.setup("test")
    loader = datamodule.test_dataloader()
    clips = torch.cat([batch[0] for batch in loader])[: cfg.latency_clips]
    models = {"float32": float32, "int8": quantize_backbone(float32)}
    latency = latency_per_clip_ms(models, clips)
    results = {}
    for name, model in models.items():
        accuracy, count = accuracy_on(model, loader)
        results[name] = {
            "test_accuracy": accuracy,
            "test_clips": count,
            "model_bytes": serialized_bytes(model),
            "backbone_bytes": serialized_bytes(model.backbone()),
            "latency_ms_per_clip": latency[name],
        }
    summary = {
        "checkpoint": str(cfg.ckpt_path),
        "corpus": data_config.get("corpus"),
        "corpus_note": corpus_note(data_config.get("corpus")),
        "encoder": run_config.model._target_,
        "frontend": run_config.frontend._target_,
        "quantized_layers": quantizable_layers(float32),
        "latency": f"median of {len(clips)} test clips at batch 1, {torch.get_num_threads()} torch thread(s)",
        "results": results,
    }
    write_json_atomic(Path(cfg.paths.output_dir) / "comparison.json", summary)
    return summary


def format_comparison(summary: dict[str, Any]) -> str:
    """The comparison as a small text table, with its corpus note."""
    lines = [f"{'':8} {'model bytes':>12} {'backbone bytes':>15} {'test acc':>9} {'ms/clip':>8}"]
    for name, row in summary["results"].items():
        lines.append(
            f"{name:8} {row['model_bytes']:>12,} {row['backbone_bytes']:>15,} {row['test_accuracy']:>9.4f} "
            f"{row['latency_ms_per_clip']:>8.2f}"
        )
    lines.append(
        f"({summary['corpus_note']}; {summary['results']['float32']['test_clips']} test clips; latency: "
        f"{summary['latency']}; int8 layers: {', '.join(summary['quantized_layers']) or 'none'})"
    )
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="compare_int8")
def main(cfg: DictConfig) -> None:
    """Compare float32 and int8 of the checkpoint and print the table."""
    print(format_comparison(compare_int8(cfg)))


if __name__ == "__main__":
    # conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
    os.environ.setdefault("PROJECT_ROOT", str(PROJECT_ROOT))
    register_resolvers()
    main()
