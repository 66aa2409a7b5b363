"""Score a speaker-verification checkpoint on trials drawn from a folder of recordings whose file names
name their speakers, such as real Speech Commands or the Free Spoken Digit Dataset:
``python -m src.verification.folder_trials ckpt_path=<ckpt> audio_dir=<folder> layout=speech_commands``.

Layouts (``layout``):

- ``speech_commands``: ``<word>/<speaker>_nohash_<n>.wav`` (``_background_noise_`` is left out);
- ``fsdd``: ``<digit>_<speaker>_<index>.wav`` (the Free Spoken Digit Dataset, 8 kHz).

Every recording is read at the checkpoint's rate (resampled) and embedded whole; the trials follow the
rule of :mod:`src.data.verification.trials` (seeded by ``trial_seed``), so they are balanced per
condition (text-dependent: the same word; text-independent: other words). Writes ``trial_scores.csv``,
``det_curve.png`` and ``summary.json`` into the run folder and prints the EER and minDCF.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import hydra
import matplotlib.pyplot as plt
import torch
from omegaconf import DictConfig

from src.data.verification.trials import CONDITIONS, draw_trials
from src.deployment.prediction import list_inputs
from src.resolvers import register_resolvers
from src.utils.config_values import choice
from src.utils.run_files import write_json_atomic
from src.verification.det_plot import det_figure
from src.verification.enrolment import embed_files, load_verifier
from src.verification.metrics import detection_errors, detection_summary, error_rates_at

LAYOUTS = ("speech_commands", "fsdd")
NOISE_FOLDER = "_background_noise_"


def speaker_and_text(path: Path, layout: str) -> tuple[str, str]:
    """``(speaker, text id)`` of a recording named as ``layout`` names them.

    Raises:
        ValueError: a file name that does not follow the layout, naming ``layout``.
    """
    if layout == "speech_commands" and "_nohash_" in path.name:
        return path.name.split("_nohash_", 1)[0], path.parent.name
    parts = path.stem.split("_")
    if layout == "fsdd" and len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
        return parts[1], parts[0]
    raise ValueError(
        f"{path} is not named as layout={layout} names recordings (speech_commands: "
        "<word>/<speaker>_nohash_<n>.wav; fsdd: <digit>_<speaker>_<index>.wav)"
    )


def score_folder(cfg: DictConfig) -> dict[str, Any]:
    """Draw the trials of ``cfg.audio_dir``, score them with ``cfg.ckpt_path`` and write the outputs into
    ``cfg.paths.output_dir``; returns the summary (also ``summary.json``).

    Raises:
        ValueError: an unknown ``layout``, a file it cannot name, or too few speakers for trials.
    """
    layout = str(choice("layout", cfg.layout, LAYOUTS))
    files = [path for path in list_inputs(cfg.audio_dir, key="audio_dir") if NOISE_FOLDER not in path.parts]
    labels = [speaker_and_text(path, layout) for path in files]
    speakers, texts = [speaker for speaker, _ in labels], [text for _, text in labels]
    trials = draw_trials(speakers, texts, cfg.max_enrollments, cfg.trial_seed)
    verifier = load_verifier(cfg.ckpt_path)
    used = trials.items().tolist()
    table = torch.zeros(len(files), verifier.task.head.embedding_dim)
    table[used] = embed_files(verifier, [files[i] for i in used], "audio_dir")
    scores = (table[trials.enroll] * table[trials.test]).sum(dim=-1)
    costs = verifier.task.costs
    results: dict[str, Any] = {}
    curves = {"all trials": detection_errors(scores, trials.target)}
    for name, mask in (
        ("all", torch.ones_like(trials.target)),
        *((c, trials.condition(c)) for c in CONDITIONS),
    ):
        summary = detection_summary(scores[mask], trials.target[mask], costs)
        results[name] = {
            "trials": int(mask.sum()),
            "eer": summary["eer"] if summary else None,
            "min_dcf": summary["min_dcf"] if summary else None,
        }
        if summary and name != "all":
            curves[name.replace("_", "-")] = detection_errors(scores[mask], trials.target[mask])
    threshold = float(verifier.task.eer_threshold)
    miss, false_alarm = (
        (None, None) if math.isnan(threshold) else error_rates_at(scores, trials.target, threshold)
    )
    output = Path(cfg.paths.output_dir)
    with (output / "trial_scores.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["label", "enroll", "test", "condition", "score"])
        for enroll, test, target, same, score in zip(
            trials.enroll, trials.test, trials.target, trials.same_text, scores, strict=True
        ):
            root = Path(cfg.audio_dir)
            writer.writerow(
                [
                    int(target),
                    files[int(enroll)].relative_to(root),
                    files[int(test)].relative_to(root),
                    CONDITIONS[0] if same else CONDITIONS[1],
                    f"{float(score):.6f}",
                ]
            )
    figure = det_figure(curves, f"DET, {Path(cfg.audio_dir).name} ({layout})")
    figure.savefig(output / "det_curve.png")
    plt.close(figure)
    summary = {
        "checkpoint": str(cfg.ckpt_path),
        "trained_on": verifier.trained_on,
        "audio_dir": str(cfg.audio_dir),
        "layout": layout,
        "recordings": len(files),
        "speakers": len(set(speakers)),
        "results": results,
        "at_val_threshold": {
            "threshold": None if math.isnan(threshold) else threshold,
            "miss": miss,
            "false_alarm": false_alarm,
        },
    }
    write_json_atomic(output / "summary.json", summary)
    return summary


@hydra.main(version_base="1.3", config_path="../../conf", config_name="speaker_trials")
def main(cfg: DictConfig) -> None:
    """Print EER and minDCF of every condition."""
    summary = score_folder(cfg)
    print(
        f"{summary['recordings']} recordings of {summary['speakers']} speakers in {summary['audio_dir']}; "
        f"model trained on the {summary['trained_on']}"
    )
    for name, result in summary["results"].items():
        if result["eer"] is None:
            print(f"{name:17} no trials (no speaker has two recordings of this kind)")
            continue
        print(
            f"{name:17} {result['trials']:6d} trials  EER {result['eer']:.4f}  minDCF {result['min_dcf']:.4f}"
        )


if __name__ == "__main__":
    # conf/paths/default.yaml places data/ and logs/ under PROJECT_ROOT: this repository by default.
    os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[2]))
    register_resolvers()
    main()
