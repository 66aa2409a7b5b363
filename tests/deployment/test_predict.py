"""predict.py's classify mode: which files, read how, and the CSV it writes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from src.data.common.audio import fit_length, read_clip
from src.deployment.classifier import WaveformClassifier, load_classifier
from src.deployment.prediction import predict_files, prediction_columns, run_predictions, true_label
from src.deployment.quantization import quantize_backbone
from tests.conftest import compose_config
from tests.deployment.untrained import untrained_classifier

RATE = 16000


def write_wav(path: Path, seconds: float, seed: int, rate: int = RATE, channels: int = 1) -> Path:
    """A noisy tone of ``seconds`` at ``rate`` (float samples), made reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * (200 + 100 * seed) * time) + 0.05 * rng.standard_normal(len(time))
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), rate, subtype="FLOAT")
    return path


def predict(tmp_path: Path, checkpoint: Path, inputs: Path, *overrides: str) -> tuple[dict, list[dict]]:
    """``run_predictions`` as ``predict.py`` runs it; its summary and the rows of its CSV."""
    cfg = compose_config(
        "predict",
        [
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'run'}",
            f"ckpt_path={checkpoint}",
            f"inputs={inputs}",
            *overrides,
        ],
    )
    summary = run_predictions(cfg)
    with open(summary["output"], newline="") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames == prediction_columns(summary["class_names"])
        return summary, list(reader)


def probabilities(model: WaveformClassifier, waveform: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(waveform[None]), dim=-1)[0].numpy()


def row_probabilities(row: dict, class_names: list[str]) -> np.ndarray:
    return np.array([float(row[f"p_{name}"]) for name in class_names])


@pytest.fixture(scope="module")
def model(yesno_checkpoint: Path) -> WaveformClassifier:
    return load_classifier(yesno_checkpoint).model


def test_a_folder_gives_one_row_per_file_with_the_models_softmax(
    tmp_path: Path, yesno_checkpoint: Path, model: WaveformClassifier
) -> None:
    audio = tmp_path / "audio"
    files = [
        write_wav(audio / "yes" / "short.wav", 0.6, seed=1),
        write_wav(audio / "no" / "full.wav", 1.0, seed=2),
        write_wav(audio / "recordings" / "long.wav", 2.35, seed=3),
    ]
    (audio / "notes.md").write_text("not audio")
    summary, rows = predict(tmp_path, yesno_checkpoint, audio, "hop_seconds=0.25", "batch_size=1")
    assert prediction_columns(["yes", "no"]) == [
        "file", "label", "probability", "p_yes", "p_no", "true_label", "window_start_s", "windows", "error",
    ]  # fmt: skip
    assert [row["file"] for row in rows] == sorted(str(path) for path in files)
    by_name = {Path(row["file"]).name: row for row in rows}
    for name, path in (("short.wav", files[0]), ("full.wav", files[1])):
        expected = probabilities(model, fit_length(read_clip(path, RATE), model.clip_samples))
        np.testing.assert_allclose(row_probabilities(by_name[name], model.class_names), expected, atol=1e-6)
        assert by_name[name]["label"] == model.class_names[int(np.argmax(expected))]
        assert float(by_name[name]["probability"]) == pytest.approx(expected.max(), abs=1e-6)
        assert (by_name[name]["window_start_s"], by_name[name]["windows"]) == ("0.000", "1")
    # 2.35 s scanned every 0.25 s: windows at 0, 0.25, ..., 1.25 and one ending on the last sample.
    long_wave = read_clip(files[2], RATE)
    starts = [*range(0, 20001, 4000), len(long_wave) - RATE]
    windows = np.stack([probabilities(model, long_wave[start : start + RATE]) for start in starts])
    best = int(np.argmax(windows.max(axis=1)))
    long_row = by_name["long.wav"]
    assert long_row["windows"] == str(len(starts))
    assert float(long_row["window_start_s"]) == pytest.approx(starts[best] / RATE, abs=1e-3)
    np.testing.assert_allclose(row_probabilities(long_row, model.class_names), windows[best], atol=1e-6)
    assert [by_name[name]["true_label"] for name in ("short.wav", "full.wav", "long.wav")] == [
        "yes",
        "no",
        "",
    ]
    correct = sum(
        by_name[name]["label"] == label for name, label in (("short.wav", "yes"), ("full.wav", "no"))
    )
    assert (summary["labelled"], summary["accuracy"], summary["failed"]) == (2, correct / 2, 0)


def test_a_list_file_resolves_against_its_folder_and_bad_files_become_error_rows(
    tmp_path: Path, yesno_checkpoint: Path
) -> None:
    good = write_wav(tmp_path / "corpus" / "yes" / "a.wav", 1.0, seed=4)
    absolute = write_wav(tmp_path / "elsewhere" / "b.wav", 0.8, seed=5)
    corrupt = tmp_path / "corpus" / "no" / "corrupt.wav"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is no audio")
    listing = tmp_path / "corpus" / "my_list.txt"
    listing.write_text(f"# clips\nyes/a.wav\n\nno/corrupt.wav\nno/missing.wav\n{absolute}\n")
    summary, rows = predict(tmp_path, yesno_checkpoint, listing)
    corpus = tmp_path / "corpus"
    assert [row["file"] for row in rows] == [
        str(good),
        str(corrupt),
        str(corpus / "no" / "missing.wav"),
        str(absolute),
    ]
    assert [bool(row["error"]) for row in rows] == [False, True, True, False]
    assert "AudioDecodeError" in rows[1]["error"] and "FileNotFoundError" in rows[2]["error"]
    assert rows[1]["label"] == rows[1]["p_yes"] == "" and rows[1]["true_label"] == "no"
    assert rows[0]["label"] in ("yes", "no") and rows[3]["label"] in ("yes", "no")
    assert (summary["failed"], summary["inputs"], summary["labelled"]) == (2, 4, 1)


def test_a_stereo_8_khz_file_is_predicted_as_its_mono_16_khz_equivalent(
    tmp_path: Path, yesno_checkpoint: Path
) -> None:
    stereo = write_wav(tmp_path / "stereo_8k.wav", 1.0, seed=6, rate=8000, channels=2)
    left = torch.from_numpy(sf.read(stereo, dtype="float32")[0][:, 0].copy())
    mono = tmp_path / "mono_16k.wav"
    sf.write(mono, AF.resample(left, 8000, RATE).clamp(-1, 1).numpy(), RATE, subtype="FLOAT")
    _, rows = predict(tmp_path, yesno_checkpoint, tmp_path)
    by_name = {Path(row["file"]).name: row for row in rows}
    assert not by_name["stereo_8k.wav"]["error"]
    np.testing.assert_allclose(
        row_probabilities(by_name["stereo_8k.wav"], ["yes", "no"]),
        row_probabilities(by_name["mono_16k.wav"], ["yes", "no"]),
        atol=1e-5,
    )


def test_int8_predictions_are_those_of_the_quantised_backbone(
    tmp_path: Path, yesno_checkpoint: Path, model: WaveformClassifier
) -> None:
    clip = write_wav(tmp_path / "clip.wav", 1.0, seed=7)
    _, rows = predict(tmp_path, yesno_checkpoint, clip, "quantize=int8")
    expected = probabilities(quantize_backbone(model), read_clip(clip, RATE))
    np.testing.assert_allclose(row_probabilities(rows[0], model.class_names), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hop_seconds=0", "hop_seconds must be a positive number"),
        ("detect.threshold=1.5", r"detect.threshold must be in \(0, 1\)"),
        ("detect.smoothing_windows=0", "detect.smoothing_windows must be >= 1"),
        ("mode=spot", "mode must be one of classify, detect"),
        ("quantize=int4", "quantize must be one of null, int8"),
        ("inputs=/no/such/folder", "inputs=/no/such/folder does not exist"),
    ],
)
def test_config_errors_name_the_key_before_the_checkpoint_is_read(
    tmp_path: Path, override: str, message: str
) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        predict(tmp_path, tmp_path / "no_checkpoint.ckpt", tmp_path / "a.wav", override)


def test_an_existing_output_is_kept_unless_overwrite(tmp_path: Path) -> None:
    output = tmp_path / "mine.csv"
    output.write_text("keep me")
    with pytest.raises(ValueError, match="overwrite=true"):
        predict(tmp_path, tmp_path / "no_checkpoint.ckpt", output, f"output={output}")
    assert output.read_text() == "keep me"


def test_true_labels_follow_the_12_class_protocol(tmp_path: Path) -> None:
    classes = ["yes", "no", "_silence_", "_unknown_"]
    corpus = tmp_path / "speech_commands"
    (corpus / "testing_list.txt").parent.mkdir()
    (corpus / "testing_list.txt").write_text("")
    assert true_label(corpus / "yes" / "a.wav", classes) == "yes"
    assert true_label(corpus / "bed" / "a.wav", classes) == "_unknown_"  # another word of a corpus
    assert true_label(corpus / "_background_noise_" / "a.wav", classes) == ""
    assert true_label(tmp_path / "test_set" / "_silence_" / "a.wav", classes) == "_silence_"
    assert true_label(tmp_path / "recordings" / "a.wav", classes) == ""  # not a corpus folder
    assert true_label(corpus / "bed" / "a.wav", ["yes", "no"]) == ""  # no _unknown_ class


def test_a_hop_longer_than_the_models_clip_is_refused_before_any_input_is_read(
    tmp_path: Path, yesno_checkpoint: Path
) -> None:
    clip = write_wav(tmp_path / "clip.wav", 1.0, seed=8)
    with pytest.raises(
        ValueError, match=r"hop_seconds=1.5 must be between one sample .* e.g. hop_seconds=0.1"
    ):
        predict(tmp_path, yesno_checkpoint, clip, "hop_seconds=1.5")
    assert not (tmp_path / "run").exists()


def test_a_short_clip_is_classified_with_its_true_length(tmp_path: Path) -> None:
    """A GRU masks the padding after a short clip, as in training and test.py: predict_files passes the
    clip's true length, and the probabilities differ from reading the padding as audio."""
    model = untrained_classifier("model=gru", logit_scale=1.0)
    path = write_wav(tmp_path / "short.wav", 0.6, seed=1)
    (prediction,) = predict_files(model, [path], hop_samples=1600, batch_size=4)
    wave = read_clip(path, RATE)
    padded = fit_length(wave, RATE).unsqueeze(0)
    with torch.no_grad():
        with_length = torch.softmax(model(padded, torch.tensor([len(wave)])), dim=-1)[0]
        as_audio = torch.softmax(model(padded), dim=-1)[0]
    np.testing.assert_allclose(prediction.probabilities, with_length.numpy(), atol=1e-6)
    assert not np.allclose(prediction.probabilities, as_audio.numpy(), atol=1e-4)
