"""denoise.py: denoised WAVs at each input's own rate and length, the CSV, and what it refuses."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from src.callbacks.run_config import CHECKPOINT_FORMAT, FORMAT_KEY, RUN_CONFIG_GROUPS, RUN_CONFIG_KEY
from src.denoising.enhancement import CSV_COLUMNS, CSV_NAME, load_denoiser, run_denoising
from tests.conftest import REPO_ROOT, compose_config, run_python

REAL_DIGITS = REPO_ROOT.parent / "shared" / "data" / "free-spoken-digit-dataset" / "recordings"
"""The real Free Spoken Digit Dataset (8 kHz mono int16 recordings), beside the repository."""
requires_real_digits = pytest.mark.skipif(
    not REAL_DIGITS.is_dir(), reason=f"the real Free Spoken Digit Dataset is not at {REAL_DIGITS}"
)


def write_wav(path: Path, seconds: float, rate: int, seed: int, channels: int = 1) -> Path:
    """A tone in white noise, ``seconds`` long at ``rate`` Hz, 16-bit PCM."""
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 300 * time) + 0.1 * rng.standard_normal(len(time))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate, subtype="PCM_16")
    return path


def denoise(tmp_path: Path, checkpoint: Path, inputs: Path, output_dir: Path, *overrides: str):
    """``run_denoising`` as ``denoise.py`` runs it: its summary and the rows of ``denoised.csv``."""
    cfg = compose_config(
        "denoise",
        [
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'run'}",
            f"ckpt_path={checkpoint}",
            f"inputs={inputs}",
            f"output_dir={output_dir}",
            *overrides,
        ],
    )
    summary = run_denoising(cfg)
    with (output_dir / CSV_NAME).open(newline="") as stream:
        reader = csv.DictReader(stream)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        return summary, list(reader)


def test_a_folder_keeps_its_layout_and_every_files_rate_and_length(
    tmp_path: Path, denoising_checkpoint: Path, tiny_corpus_root: Path
) -> None:
    audio = tmp_path / "audio"
    (audio / "speech").mkdir(parents=True)
    clip = shutil.copy(sorted(tiny_corpus_root.rglob("yes/*.wav"))[0], audio / "speech" / "clip.wav")
    sources = {
        "speech/clip.wav": Path(clip),
        "phone/call.wav": write_wav(audio / "phone" / "call.flac", 0.7, 8000, seed=1),
        "stereo.wav": write_wav(audio / "stereo.wav", 1.3, 22050, seed=2, channels=2),
        "blip.wav": write_wav(audio / "blip.wav", 0.01, 16000, seed=3),  # shorter than the STFT's padding
    }
    out = tmp_path / "denoised"
    summary, rows = denoise(tmp_path, denoising_checkpoint, audio, out)
    assert (summary["inputs"], summary["written"], summary["failed"]) == (4, 4, 0)
    assert [Path(row["input"]) for row in rows] == sorted(sources.values())
    assert {Path(row["output"]) for row in rows} == {out / name for name in sources}
    for name, source in sources.items():
        original, rate = sf.read(source, always_2d=True)
        denoised, out_rate = sf.read(out / name, always_2d=True)
        assert out_rate == rate and denoised.shape == (len(original), 1)
        assert np.isfinite(denoised).all() and not np.allclose(denoised[:, 0], original.mean(axis=1))
    row = next(row for row in rows if row["output"].endswith("call.wav"))
    assert (row["sample_rate"], row["seconds"], row["error"]) == ("8000", "0.700", "")

    # a list file: outputs at the paths relative to its folder, by name alone outside it
    outside = write_wav(tmp_path / "elsewhere" / "far.wav", 0.4, 16000, seed=6)
    (audio / "list.txt").write_text(f"phone/call.flac\n# a comment\n{outside}\n")
    _, rows = denoise(tmp_path, denoising_checkpoint, audio / "list.txt", tmp_path / "listed")
    assert [row["output"] for row in rows] == [
        str(tmp_path / "listed" / p) for p in ("phone/call.wav", "far.wav")
    ]

    # method=wiener runs the checkpoint's classical baseline instead of the model: another output
    denoise(tmp_path, denoising_checkpoint, audio / "speech" / "clip.wav", tmp_path / "w", "method=wiener")
    assert not np.array_equal(
        sf.read(tmp_path / "w" / "clip.wav")[0], sf.read(out / "speech" / "clip.wav")[0]
    )


def test_existing_outputs_are_refused_without_overwrite(tmp_path: Path, denoising_checkpoint: Path) -> None:
    wav = write_wav(tmp_path / "in" / "a.wav", 0.5, 16000, seed=4)
    out = tmp_path / "out"
    denoise(tmp_path, denoising_checkpoint, wav, out)
    with pytest.raises(ValueError, match="overwrite=true"):
        denoise(tmp_path, denoising_checkpoint, wav, out)
    summary, _ = denoise(tmp_path, denoising_checkpoint, wav, out, "overwrite=true")
    assert summary["written"] == 1
    with pytest.raises(ValueError, match="inside inputs="):
        denoise(tmp_path, denoising_checkpoint, tmp_path / "in", tmp_path / "in" / "out")
    with pytest.raises(ValueError, match="replace the input"):
        denoise(tmp_path, denoising_checkpoint, wav, wav.parent, "overwrite=true")


def test_a_checkpoint_of_another_task_is_refused(tmp_path: Path, denoising_checkpoint: Path) -> None:
    checkpoint = torch.load(denoising_checkpoint, map_location="cpu", weights_only=True)
    run_config = OmegaConf.create(checkpoint[RUN_CONFIG_KEY])
    run_config.task._target_ = "src.tasks.classification.ClassificationTask"
    fake = tmp_path / "kws.ckpt"
    groups = {key: OmegaConf.to_container(run_config)[key] for key in RUN_CONFIG_GROUPS}
    torch.save({RUN_CONFIG_KEY: groups, FORMAT_KEY: CHECKPOINT_FORMAT, "state_dict": {}}, fake)
    with pytest.raises(
        ValueError, match=r"ckpt_path=.*kws\.ckpt is a ClassificationTask.*train\.py data=denoising"
    ):
        load_denoiser(fake)


def test_the_script_reports_an_unreadable_file_and_writes_the_others(
    tmp_path: Path, denoising_checkpoint: Path
) -> None:
    audio = tmp_path / "audio"
    write_wav(audio / "good.wav", 0.5, 16000, seed=5)
    (audio / "broken.wav").write_bytes(b"RIFF not really a wav")
    out = tmp_path / "out"
    result = run_python(
        "denoise.py",
        f"ckpt_path={denoising_checkpoint}",
        f"inputs={audio}",
        f"output_dir={out}",
        project_root=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"denoised 1 of 2 files into {out} (1 could not be read" in result.stdout
    with (out / CSV_NAME).open() as stream:
        rows = {Path(row["input"]).name: row for row in csv.DictReader(stream)}
    assert "AudioDecodeError" in rows["broken.wav"]["error"] and rows["broken.wav"]["output"] == ""
    assert rows["good.wav"]["error"] == "" and (out / "good.wav").is_file()
    assert not (out / "broken.wav").exists()


@requires_real_digits
def test_a_real_8khz_recording_is_denoised_at_its_own_rate(
    tmp_path: Path, denoising_checkpoint: Path
) -> None:
    recording = REAL_DIGITS / "7_jackson_0.wav"
    out = tmp_path / "out"
    summary, rows = denoise(tmp_path, denoising_checkpoint, recording, out)
    original, rate = sf.read(recording)
    denoised, out_rate = sf.read(out / recording.name)
    assert summary["written"] == 1 and rows[0]["error"] == ""
    assert rate == out_rate == 8000 and denoised.shape == original.shape
    assert np.isfinite(denoised).all() and np.abs(denoised - original).max() > 1e-3
