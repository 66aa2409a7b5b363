"""The log-mel comparison plot: written as a real PNG from a waveform and by the command line from a file."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import soundfile as sf
import torch

from src.reporting.logmel_comparison import main, plot_logmel_comparison, read_mono

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def chirp_wav(tmp_path: Path) -> Path:
    """Half a second of a 200 Hz -> 3 kHz chirp at 16 kHz, as 16-bit PCM."""
    t = torch.arange(8000) / 16000
    signal = 0.5 * torch.sin(2 * math.pi * (200 * t + 2800 * t**2))
    path = tmp_path / "chirp.wav"
    sf.write(path, signal.numpy(), 16000, subtype="PCM_16")
    return path


def assert_is_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000  # three image panels, not an empty canvas
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (800, 900)


def test_plot_writes_png_and_closes_figure(chirp_wav: Path, tmp_path: Path) -> None:
    output = tmp_path / "comparison.png"
    open_figures = plt.get_fignums()

    waveform, sample_rate = read_mono(chirp_wav)
    returned = plot_logmel_comparison(waveform, sample_rate, output, title="chirp")

    assert returned == output
    assert_is_png(output)
    assert plt.get_fignums() == open_figures
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chirp.wav", "comparison.png"]  # no temp file left


def test_command_line(chirp_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "cli.png"

    main([str(chirp_wav), "--output", str(output)])

    assert_is_png(output)
    assert capsys.readouterr().out.strip() == str(output)


def test_rejects_other_sample_rates(tmp_path: Path) -> None:
    path = tmp_path / "8k.wav"
    sf.write(path, torch.zeros(4000).numpy(), 8000)

    with pytest.raises(ValueError, match="8000 Hz"):
        plot_logmel_comparison(*read_mono(path), tmp_path / "out.png")
