"""Tests for soundfile decoding, resampling, mix-down and length fitting in ``src.data.common.audio``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from src.data.common.audio import AudioDecodeError, AudioFixReport, fit_length, read_clip


def _tone(num_samples: int, sample_rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(num_samples) / sample_rate)).astype(np.float32)


def test_read_clip_pcm16_is_float32_mono_exact(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    path = tmp_path / "clip.wav"
    sf.write(path, pcm, 16000, subtype="PCM_16")

    wave = read_clip(path, 16000)

    assert wave.dtype == torch.float32
    assert wave.shape == (6,)
    torch.testing.assert_close(wave, torch.from_numpy(pcm.astype(np.float32) / 32768), rtol=0, atol=0)
    assert wave.abs().max() <= 1.0


def test_read_clip_resamples_8k_to_16k(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = _tone(4000, 8000)
    path = tmp_path / "narrowband.wav"
    sf.write(path, source, 8000, subtype="FLOAT")

    with caplog.at_level(logging.WARNING, logger="src.data.common.audio"):
        wave = read_clip(path, 16000)

    assert wave.shape == (8000,)
    expected = AF.resample(torch.from_numpy(source), 8000, 16000)
    torch.testing.assert_close(wave, expected)
    assert "narrowband.wav" in caplog.text
    assert "8000 -> 16000" in caplog.text


def test_read_clip_mixes_stereo_down_to_mean(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    left, right = _tone(1600, 16000, 300.0), _tone(1600, 16000, 700.0, 0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")

    with caplog.at_level(logging.WARNING, logger="src.data.common.audio"):
        wave = read_clip(path, 16000)

    assert wave.shape == (1600,)
    torch.testing.assert_close(wave, torch.from_numpy((left + right) / 2))
    assert "stereo.wav" in caplog.text
    assert "2 channels" in caplog.text


def test_report_aggregates_fixes_instead_of_logging_per_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(3):
        sf.write(tmp_path / f"low{i}.wav", _tone(800, 8000), 8000)
    sf.write(tmp_path / "stereo.wav", np.zeros((1600, 2), np.float32), 16000)
    report = AudioFixReport()

    with caplog.at_level(logging.WARNING, logger="src.data.common.audio"):
        for path in sorted(tmp_path.glob("*.wav")):
            fit_length(read_clip(path, 16000, report=report), 1000, report=report)
        assert caplog.records == []
        report.log_summary("fake split", 16000, 1000)

    assert report.resampled == {8000: 3}
    assert report.mixed_down == {2: 1}
    assert report.truncated == 4
    assert len(caplog.records) == 3
    assert "resampled 3 clips" in caplog.text
    assert "low0.wav" in caplog.text
    assert "truncated 4 clips" in caplog.text


def test_read_clip_corrupt_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "corrupt_clip.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio")
    with pytest.raises(AudioDecodeError, match=r"corrupt_clip\.wav.*[Dd]elete or replace"):
        read_clip(path, 16000)


def test_read_clip_empty_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "silent_clip.wav"
    sf.write(path, np.zeros(0, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(AudioDecodeError, match=r"silent_clip\.wav.*0 frames"):
        read_clip(path, 16000)


def test_read_clip_non_finite_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nan_clip.wav"
    sf.write(path, np.array([0.1, np.nan, 0.2], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=r"nan_clip\.wav"):
        read_clip(path, 16000)


def test_read_clip_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing_clip\.wav"):
        read_clip(tmp_path / "missing_clip.wav", 16000)


def test_fit_length_pads_with_zeros_at_end() -> None:
    wave = torch.arange(1.0, 5.0)
    out = fit_length(wave, 7)
    assert out.shape == (7,)
    torch.testing.assert_close(out, torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0]))


def test_fit_length_truncates_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    wave = torch.arange(10.0)
    with caplog.at_level(logging.WARNING, logger="src.data.common.audio"):
        out = fit_length(wave, 4)
    torch.testing.assert_close(out, torch.arange(4.0))
    assert "Truncating a clip of 10 samples to 4" in caplog.text


def test_fit_length_keeps_exact_length_and_batches() -> None:
    wave = torch.randn(3, 5)
    assert fit_length(wave, 5) is wave
    assert fit_length(wave, 8).shape == (3, 8)
    with pytest.raises(ValueError, match="num_samples"):
        fit_length(wave, 0)
