"""Plot LogMelFilterBanks beside torchaudio's log-mel of the same clip, and their difference.

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


def plot_logmel_comparison(wav_path: str | Path, output_path: str | Path) -> Path:
    """Write a PNG with three panels: our log-mel, torchaudio's, and ours minus torchaudio's.

    Both use the defaults (``n_fft=400``, ``hop_length=160``, ``n_mels=80``, offset ``1e-6``); the
    reference is ``torch.log(torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)(x) + 1e-6)``.
    A multi-channel file is averaged to mono. The PNG is written atomically.

    Args:
        wav_path: A 16 kHz audio file readable by soundfile.
        output_path: Where to write the PNG; its folder is created if missing.

    Returns:
        ``output_path`` as a ``Path``.
    """
    wav_path, output_path = Path(wav_path), Path(output_path)
    audio, sample_rate = sf.read(wav_path, dtype="float32", always_2d=True)
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"{wav_path} is sampled at {sample_rate} Hz; expected {SAMPLE_RATE} Hz")
    signal = torch.from_numpy(audio.mean(axis=1)).unsqueeze(0)  # (1, time)

    with torch.inference_mode():
        ours = LogMelFilterBanks()(signal)[0]  # (n_mels, frames)
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
        for axis, (image, title, colormap, limits, label) in zip(axes, panels, strict=True):
            shown = axis.imshow(
                image.numpy(), origin="lower", aspect="auto", extent=extent, cmap=colormap, **limits
            )
            axis.set_title(title)
            axis.set_ylabel("mel bin")
            figure.colorbar(shown, ax=axis, label=label)
        axes[-1].set_xlabel("time (s)")
        figure.suptitle(wav_path.name)
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
    print(plot_logmel_comparison(args.wav, args.output))


if __name__ == "__main__":
    main()
