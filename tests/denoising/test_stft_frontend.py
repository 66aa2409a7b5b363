"""The STFT analysis/synthesis pair of ``frontend=stft``."""

from __future__ import annotations

import pytest
import torch

from src.frontends.stft import StftAnalysis


@pytest.mark.parametrize(("n_fft", "hop_length", "window"), [(1024, None, "hann"), (512, 128, "hamming")])
def test_istft_of_stft_is_the_waveform_within_float32_rounding(n_fft, hop_length, window) -> None:
    frontend = StftAnalysis(n_fft=n_fft, hop_length=hop_length, window=window)
    waveforms = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0))
    rebuilt = frontend.istft(frontend.stft(waveforms), waveforms.shape[-1])
    assert rebuilt.shape == waveforms.shape
    assert torch.allclose(rebuilt, waveforms, atol=1e-5)
    assert not torch.allclose(frontend.istft(0.5 * frontend.stft(waveforms), 16000), waveforms, atol=1e-2)


def test_features_are_log_magnitudes_with_the_frame_count_it_reports() -> None:
    frontend = StftAnalysis(n_fft=512)
    waveforms = torch.randn(2, 8000)
    features, frames = frontend(waveforms, torch.tensor([8000, 4000]))
    assert features.shape == (2, 257, 1 + 8000 // 256) == (2, frontend.out_features, features.shape[-1])
    assert frames.tolist() == [1 + 8000 // 256, 1 + 4000 // 256]
    expected = torch.log(
        torch.stft(waveforms, 512, 256, window=torch.hann_window(512), return_complex=True).abs() + 1e-5
    )
    assert torch.allclose(features, expected, atol=1e-6)


def test_settings_that_cannot_invert_are_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"frontend\.hop_length"):
        StftAnalysis(n_fft=512, hop_length=600)
    with pytest.raises(ValueError, match=r"frontend\.window"):
        StftAnalysis(window="kaiser")
    with pytest.raises(ValueError, match=r"frontend\.n_fft"):
        StftAnalysis(n_fft=1024).check_input_samples(400)
