"""Sliding windows, smoothing, detections, the long test recording and its score; predict.py mode=detect."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from src.data.common.audio import read_clip
from src.deployment.detection import Detection, detect_keywords, smooth_posteriors, window_starts
from src.deployment.long_recording import TruthClip, main, read_truth, score_detections
from src.deployment.prediction import DETECTION_COLUMNS
from tests.conftest import run_python


@pytest.mark.parametrize(
    ("num_samples", "expected"),
    [(16000, [0]), (9000, [0]), (20000, [0, 1600, 3200, 4000]), (20800, [0, 1600, 3200, 4800])],
)
def test_windows_step_by_the_hop_and_the_last_ends_on_the_last_sample(
    num_samples: int, expected: list
) -> None:
    assert window_starts(num_samples, 16000, 1600).tolist() == expected


def test_smoothing_is_a_centred_moving_average_that_keeps_posteriors_summing_to_one() -> None:
    keyword = np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    posteriors = np.stack([keyword, 1 - keyword], axis=1)
    smoothed = smooth_posteriors(posteriors, 3)
    np.testing.assert_allclose(smoothed[:, 0], [0, 1 / 3, 2 / 3, 2 / 3, 1 / 2])
    np.testing.assert_allclose(smoothed.sum(axis=1), 1)
    np.testing.assert_allclose(smooth_posteriors(posteriors, 2)[:, 0], [0, 1 / 2, 1, 1 / 2, 0])
    np.testing.assert_array_equal(smooth_posteriors(posteriors, 1), posteriors)


def test_runs_above_the_threshold_become_detections_and_background_is_never_reported() -> None:
    classes = ["yes", "no", "_silence_", "_unknown_"]
    posteriors = np.tile([0.0, 0.0, 1.0, 0.0], (12, 1))
    posteriors[2:5] = [0.8, 0.1, 0.1, 0.0]  # yes in windows 2-4, peaking at window 3
    posteriors[3] = [0.9, 0.0, 0.1, 0.0]
    posteriors[8] = [0.0, 0.7, 0.3, 0.0]  # no in window 8 only
    posteriors[10:12] = [0.0, 0.0, 0.0, 1.0]  # _unknown_: not a keyword
    starts_s = np.arange(12) * 0.1
    detections = detect_keywords(posteriors, starts_s, 1.0, classes, threshold=0.5)
    assert detections == [
        Detection("yes", start_s=0.2, end_s=pytest.approx(1.4), score=0.9),
        Detection("no", start_s=0.8, end_s=pytest.approx(1.8), score=0.7),
    ]
    assert detect_keywords(posteriors, starts_s, 1.0, classes, threshold=0.95) == []


def test_the_score_matches_each_truth_clip_once_by_centre_within_the_tolerance() -> None:
    truth = [
        TruthClip("yes", 1.0, 2.0),  # centre 1.5
        TruthClip("no", 4.0, 5.0),  # centre 4.5
        TruthClip("yes", 8.0, 9.0),  # centre 8.5
        TruthClip("bed", 11.0, 12.0),  # a word the model does not know: no target
    ]
    detections = [
        Detection("yes", 1.1, 2.1, score=0.9),  # centre 1.6: matches the first yes
        Detection("yes", 0.9, 1.9, score=0.8),  # the same yes again: a false alarm
        Detection("no", 5.5, 6.5, score=0.9),  # centre 6.0, 1.5 s from the no: a false alarm
        Detection("yes", 8.2, 9.2, score=0.6),  # centre 8.7: matches the second yes
        Detection("yes", 11.0, 12.0, score=0.9),  # on the distractor: a false alarm
    ]
    score = score_detections(detections, truth, ["yes", "no"], tolerance_s=0.5, duration_s=36.0)
    assert (score.detections, score.targets, score.matched) == (5, 3, 2)
    assert (score.precision, score.recall) == (2 / 5, 2 / 3)
    assert score.false_alarms_per_hour == 3 * 3600 / 36.0
    assert math.isnan(score_detections([], truth, ["yes"], 0.5, 36.0).precision)


def test_a_long_recording_holds_its_clips_where_its_truth_says(
    tmp_path: Path, tiny_corpus_root: Path
) -> None:
    corpus = tiny_corpus_root / "SpeechCommands" / "speech_commands_v0.02"
    recording = tmp_path / "long.wav"
    args = [str(corpus), "--out", str(recording), "--minutes", "0.25"]
    assert main([*args, "--gap", "0.2", "0.6", "--seed", "3"]) == 0
    truth = read_truth(tmp_path / "long_truth.csv")
    wave, rate = sf.read(recording, dtype="float32")
    listed = (corpus / "testing_list.txt").read_text().split()
    assert rate == 16000 and len(truth) >= 10 and len(wave) / rate >= 15
    assert len({clip.source for clip in truth}) == len(truth)
    previous_end = 0.0
    for clip in truth:
        assert clip.source in listed and clip.source.startswith(f"{clip.label}/")
        assert 0.2 - 1e-4 <= clip.start_s - previous_end <= 0.6 + 1e-4
        start, end = round(clip.start_s * rate), round(clip.end_s * rate)
        np.testing.assert_allclose(
            wave[start:end], read_clip(corpus / clip.source, rate).numpy(), atol=1 / 32768
        )
        previous_end = clip.end_s
    with pytest.raises(SystemExit):  # the recording exists: never overwritten
        main(args)
    with pytest.raises(SystemExit):
        main([str(corpus), "--out", str(tmp_path / "other.wav"), "--sample-rate", "0"])


def test_predict_detect_writes_detections_and_scores_them(
    tmp_path: Path, tiny_corpus_root: Path, yesno_checkpoint: Path
) -> None:
    corpus = tiny_corpus_root / "SpeechCommands" / "speech_commands_v0.02"
    recording = tmp_path / "long.wav"
    assert main([str(corpus), "--out", str(recording), "--words", "yes,no", "--minutes", "0.1"]) == 0
    result = run_python(
        "predict.py",
        f"ckpt_path={yesno_checkpoint}",
        f"inputs={recording}",
        "mode=detect",
        f"detect.truth={tmp_path / 'long_truth.csv'}",
        project_root=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "detections: " in result.stdout and "precision = " in result.stdout
    (run,) = (tmp_path / "logs" / "predict" / "runs").iterdir()
    with open(run / "detections.csv", newline="") as stream:
        reader = csv.DictReader(stream)
        rows = list(reader)
    assert tuple(reader.fieldnames) == DETECTION_COLUMNS
    assert all(row["label"] in ("yes", "no") and float(row["start_s"]) < float(row["end_s"]) for row in rows)
    summary = json.loads((run / "summary.json").read_text())
    truth = read_truth(tmp_path / "long_truth.csv")
    assert summary["score"]["detections"] == len(rows) == summary["detections"]
    assert summary["score"]["targets"] == len(truth)
    assert summary["score"]["recall"] == summary["score"]["matched"] / len(truth)
