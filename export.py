"""Export a checkpoint as one model: ``python export.py ckpt_path=<run>/checkpoints/last.ckpt format=onnx``
(``quantize=int8`` for an int8 backbone)."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.deployment.classifier import load_classifier
from src.deployment.export import check_export_options, export_classifier
from src.resolvers import register_resolvers

# conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> str:
    """Export the checkpoint; print where the model went, its parity with eager PyTorch, and return its
    path."""
    check_export_options(cfg.format, cfg.quantize, cfg.opset, cfg.parity_clips)
    loaded = load_classifier(cfg.ckpt_path)
    output_dir = Path(cfg.output) if cfg.output is not None else Path(cfg.paths.output_dir)
    metadata = export_classifier(
        loaded.model,
        output_dir,
        cfg.format,
        cfg.quantize,
        cfg.opset,
        num_parity_clips=cfg.parity_clips,
        source=str(cfg.ckpt_path),
    )
    parity = metadata["parity"]
    path = output_dir / metadata["file"]
    print(
        f"{path} ({metadata['format']}, {metadata['quantize'] or 'float32'}, {metadata['file_bytes']} "
        "bytes): "
        f"(batch, {metadata['clip_samples']}) waveforms at {metadata['sample_rate']} Hz -> (batch, "
        f"{len(metadata['class_names'])}) logits; max |logit - eager| = {parity['max_abs_diff']:.2e} on "
        f"{parity['clips']} generated clips (scaled {parity['scaled_diff']:.1e} <= {parity['tolerance']:g})"
    )
    return str(path)


if __name__ == "__main__":
    main()
