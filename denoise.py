"""Denoise audio files with a checkpoint of ``python train.py data=denoising``: ``python denoise.py
ckpt_path=<run>/checkpoints/last.ckpt inputs=<a WAV, a folder or a .txt list> output_dir=<folder>`` writes
one denoised WAV per input at the input's own sample rate and length, and ``denoised.csv``.

Exit status: 0 when every input was denoised, 2 when some could not be read (their rows in the CSV say
why), 1 when nothing was written (a config error, an unreadable or non-denoising checkpoint).
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.denoising.enhancement import run_denoising
from src.resolvers import register_resolvers

# conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
register_resolvers()
SOME_INPUTS_FAILED = 2


@hydra.main(version_base="1.3", config_path="conf", config_name="denoise")
def main(cfg: DictConfig) -> None:
    """Denoise the inputs and print how many were written, how many failed, and where."""
    summary = run_denoising(cfg)
    method = summary["method"]
    source = (
        f"model trained on the {summary['trained_on']}"
        if method == "model"
        else "no training: only the checkpoint's STFT settings"
    )
    print(
        f"denoised {summary['written']} of {summary['inputs']} files into {summary['output_dir']} "
        f"({summary['failed']} could not be read; method={method}, {source}; list: {summary['csv']})"
    )
    if summary["failed"]:
        raise SystemExit(SOME_INPUTS_FAILED)


if __name__ == "__main__":
    main()
