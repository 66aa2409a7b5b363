"""Tests for soundfile decoding, resampling, mix-down and length fitting in ``src.data.common.audio``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from src.data.common.audio import (
    AudioDecodeError,
    AudioFixReport,
    declared_wav_frames,
    fit_length,
    read_clip,
)


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
    sf.write(tmp_path / "stereo.wav", np.full((1600, 2), 0.25, np.float32), 16000)
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


def _truncated_wav(path: Path, declared: int, held: int) -> Path:
    """A 16-bit mono WAV whose header declares ``declared`` samples but whose file holds ``held``."""
    sf.write(path, np.full(declared, 1000, np.int16), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: 44 + 2 * held])
    return path


def test_a_truncated_wav_is_an_error_naming_what_its_header_promised(tmp_path: Path) -> None:
    path = _truncated_wav(tmp_path / "cut_short.wav", 16000, 500)
    assert sf.info(path).frames == 500  # libsndfile reads what is there without a word
    with pytest.raises(AudioDecodeError, match=r"cut_short\.wav is truncated.*declares 16000.*holds 500"):
        read_clip(path, 16000)


def test_declared_wav_frames_reads_the_data_chunk_and_leaves_other_files_alone(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((300, 2), np.float32), 16000, subtype="FLOAT")  # with a fact chunk
    assert declared_wav_frames(stereo) == 300
    flac = tmp_path / "clip.flac"
    sf.write(flac, np.zeros(300, np.float32), 16000)
    assert declared_wav_frames(flac) is None
    streamed = bytearray(_truncated_wav(tmp_path / "streamed.wav", 300, 300).read_bytes())
    streamed[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # the size a streaming writer leaves open
    (tmp_path / "streamed.wav").write_bytes(streamed)
    assert declared_wav_frames(tmp_path / "streamed.wav") is None
    assert read_clip(tmp_path / "streamed.wav", 16000).shape == (300,)


def test_float_samples_far_beyond_full_scale_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "int16_scale.wav"
    sf.write(path, np.linspace(-201.8, 201.8, 1000).astype(np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=r"int16_scale\.wav holds float samples up to 201\.8.*Rescale"):
        read_clip(path, 16000)


def test_float_samples_slightly_beyond_full_scale_are_clipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name, peak in (("hot0.wav", 1.5), ("hot1.wav", 1.25)):
        sf.write(tmp_path / name, np.array([0.5, peak, -peak, 0.0] * 500, np.float32), 16000, subtype="FLOAT")
    report = AudioFixReport()
    with caplog.at_level(logging.WARNING, logger="src.data.common.audio"):
        waves = [read_clip(tmp_path / name, 16000, report=report) for name in ("hot0.wav", "hot1.wav")]
        assert caplog.records == []
        report.log_summary("fake split", 16000, 2000)
    assert all(wave.abs().max() == 1.0 for wave in waves)
    torch.testing.assert_close(waves[0][:4], torch.tensor([0.5, 1.0, -1.0, 0.0]))
    assert (report.clipped, report.clipped_peak) == (2, 1.5)
    assert "clipped 2 float clips with samples beyond [-1, 1] (largest 1.500)" in caplog.text
    assert "hot0.wav" in caplog.text
    with caplog.at_level(logging.WARNING, logger="src.data.common.audio"):
        read_clip(tmp_path / "hot1.wav", 16000)
    assert "hot1.wav: clipping float samples up to 1.250" in caplog.text


def test_clips_too_short_for_a_word_are_kept_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sf.write(tmp_path / "blip.wav", np.full(10, 1000, np.int16), 16000, subtype="PCM_16")
    sf.write(tmp_path / "word.wav", np.full(1600, 1000, np.int16), 16000, subtype="PCM_16")  # 0.1 s: enough
    report = AudioFixReport()
    with caplog.at_level(logging.WARNING, logger="src.data.common.audio"):
        assert read_clip(tmp_path / "blip.wav", 16000, report=report).shape == (10,)
        read_clip(tmp_path / "word.wav", 16000, report=report)
        report.log_summary("fake split", 16000, 16000)
    assert (report.short, report.shortest) == (1, 10)
    assert "1 clips are shorter than 0.10 s (the shortest has 10 samples)" in caplog.text
    assert "blip.wav" in caplog.text


def test_digital_silence_is_kept_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(2):
        sf.write(tmp_path / f"zeros{i}.wav", np.zeros(3200, np.int16), 16000, subtype="PCM_16")
    report = AudioFixReport()
    with caplog.at_level(logging.WARNING, logger="src.data.common.audio"):
        waves = [read_clip(tmp_path / f"zeros{i}.wav", 16000, report=report) for i in range(2)]
        report.log_summary("fake split", 16000, 3200)
    assert all(wave.shape == (3200,) and not wave.any() for wave in waves)
    assert report.silent == 2
    assert "2 clips are digital silence (every sample is zero)" in caplog.text and "zeros0.wav" in caplog.text
