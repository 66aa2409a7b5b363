"""Time LogMelFilterBanks against torchaudio's log-mel on the same batch, in the same run.

    python -m benchmarks.frontends [--repeats 15] [--threads N]     (from the repository root)

The reference is ``torch.log(torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)(x) + 1e-6)``.
Both must give the same output (checked with ``torch.allclose`` first); the figure of merit is the ratio of
median times, ours / torchaudio, with the two measured in alternating rounds so that load from other
processes affects both alike. Inputs are seeded Gaussian noise: the cost does not depend on the content.
"""

from __future__ import annotations

import argparse

import torch
import torchaudio

from benchmarks.timing import time_and_print
from src.frontends import LogMelFilterBanks

SAMPLE_RATE = 16000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=100, help="clips per batch (default: 100)")
    parser.add_argument("--seconds", type=float, default=1.0, help="clip length in seconds (default: 1.0)")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per frontend (default: 15)")
    parser.add_argument("--number", type=int, default=5, help="calls per timed round (default: 5)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per frontend (default: 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random clips (default: 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Check that both frontends agree, then print their median times and the ratio."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    clips = 0.1 * torch.randn(args.batch_size, round(args.seconds * SAMPLE_RATE), generator=generator)

    ours = LogMelFilterBanks()
    mel_spectrogram = torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)
    candidates = {
        "ours": lambda: ours(clips)[0],  # the frontend contract: (features, frame_lengths)
        "torchaudio": lambda: torch.log(mel_spectrogram(clips) + 1e-6),
    }

    with torch.inference_mode():
        expected, actual = candidates["torchaudio"](), candidates["ours"]()
        if expected.shape != actual.shape or not torch.allclose(expected, actual):
            raise AssertionError("LogMelFilterBanks and torchaudio disagree; timings would be meaningless")
        time_and_print(
            f"batch {tuple(clips.shape)} at {SAMPLE_RATE} Hz, {torch.get_num_threads()} threads, "
            "outputs allclose: True",
            candidates,
            "torchaudio",
            args.warmup,
            args.repeats,
            args.number,
        )


if __name__ == "__main__":
    main()
