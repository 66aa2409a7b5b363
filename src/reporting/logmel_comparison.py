"""Plot LogMelFilterBanks beside torchaudio's log-mel of the same waveform, and their difference.

python -m src.reporting.logmel_comparison path/to/clip.wav --output out.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import soundfile as sf
import torch
import torchaudio

from src.frontends import LogMelFilterBanks
from src.utils.run_files import atomic_write

SAMPLE_RATE = 16000


def read_mono(wav_path: str | Path) -> tuple[torch.Tensor, int]:
    """The audio file ``wav_path`` (readable by soundfile) as a ``(time,)`` float32 waveform, a
    multi-channel file averaged to mono, and its sample rate."""
    audio, sample_rate = sf.read(Path(wav_path), dtype="float32", always_2d=True)
    return torch.from_numpy(audio.mean(axis=1)), sample_rate


def plot_logmel_comparison(
    waveform: torch.Tensor, sample_rate: int, output_path: str | Path, title: str = ""
) -> Path:
    """Write a PNG with three panels: our log-mel, torchaudio's, and ours minus torchaudio's.

    Both use the defaults (``n_fft=400``, ``hop_length=160``, ``n_mels=80``, offset ``1e-6``); the
    reference is ``torch.log(torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)(x) + 1e-6)``.
    The PNG is written atomically.

    Args:
        waveform: ``(time,)`` samples at ``sample_rate``.
        sample_rate: Must be 16 kHz, the rate both defaults assume.
        output_path: Where to write the PNG; its folder is created if missing.
        title: The figure's title (e.g. the file the waveform came from).

    Returns:
        ``output_path`` as a ``Path``.
    """
    output_path = Path(output_path)
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the waveform is sampled at {sample_rate} Hz; expected {SAMPLE_RATE} Hz")
    signal = waveform.reshape(1, -1).float()  # (1, time)

    with torch.inference_mode():
        ours = LogMelFilterBanks().features(signal)[0]  # (n_mels, frames)
        melspec = torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)(signal)
        reference = torch.log(melspec + 1e-6)[0]
    difference = ours - reference
    max_abs_difference = difference.abs().max().item()

    duration = signal.shape[-1] / SAMPLE_RATE
    extent = (0.0, duration, 0, ours.shape[0])
    value_range = {"vmin": reference.min().item(), "vmax": reference.max().item()}
    # symmetric about zero so that the sign of a difference reads from its colour
    difference_range = {"vmin": -max_abs_difference, "vmax": max_abs_difference}
    panels = [
        (ours, "LogMelFilterBanks", "viridis", value_range, "log energy"),
        (reference, "torchaudio MelSpectrogram, log(x + 1e-6)", "viridis", value_range, "log energy"),
        (
            difference,
            f"ours - torchaudio (max |diff| = {max_abs_difference:.3g})",
            "coolwarm",
            difference_range,
            "difference",
        ),
    ]
    figure, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=True, constrained_layout=True)
    try:
        for axis, (image, panel_title, colormap, limits, label) in zip(axes, panels, strict=True):
            shown = axis.imshow(
                image.numpy(), origin="lower", aspect="auto", extent=extent, cmap=colormap, **limits
            )
            axis.set_title(panel_title)
            axis.set_ylabel("mel bin")
            figure.colorbar(shown, ax=axis, label=label)
        axes[-1].set_xlabel("time (s)")
        figure.suptitle(title)
        with atomic_write(output_path, "wb") as stream:
            figure.savefig(stream, format="png", dpi=100)
    finally:
        plt.close(figure)
    return output_path


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="Plot our log-mel beside torchaudio's and their difference.")
    parser.add_argument("wav", type=Path, help="a 16 kHz wav file")
    parser.add_argument("--output", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    print(plot_logmel_comparison(*read_mono(args.wav), args.output, title=args.wav.name))


if __name__ == "__main__":
    main()
