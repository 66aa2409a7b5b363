"""Verify speakers with a checkpoint of ``python train.py data=speaker_verification``: ``python verify.py
ckpt_path=<run>/checkpoints/last.ckpt enroll=<a WAV, a folder or a .txt list> test=<a WAV, ...>`` prints
each test file's cosine score against the enrolment and the decision at the checkpoint's validation-EER
threshold (src/verification/enrolment.py).

Exit status: 0 when every test file was scored, 1 on a config error or an unreadable file or checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.resolvers import register_resolvers
from src.verification.enrolment import run_verification

# conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))
register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="verify")
def main(cfg: DictConfig) -> None:
    """Print the threshold, then one line per test file: score, decision, file."""
    summary = run_verification(cfg)
    print(
        f"enrolled {len(summary['enroll'])} file(s); threshold {summary['threshold']:.4f} "
        f"({summary['threshold_source']}); model trained on the {summary['trained_on']}"
    )
    for test in summary["tests"]:
        decision = "same speaker" if test["same_speaker"] else "different speaker"
        print(f"score {test['score']:+.4f}  {decision:17}  {test['file']}")


if __name__ == "__main__":
    main()
