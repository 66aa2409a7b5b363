"""Time the log-mel frontends against the libraries they stand beside, on the same batch, in the same run.

    python -m benchmarks.frontends [--repeats 15] [--threads N]     (from the repository root)

Two comparisons, each a ratio of median times (ours / reference) with the candidates measured in
alternating rounds, so that load from other processes affects both alike:

1. ``LogMelFilterBanks`` against ``torch.log(torchaudio.transforms.MelSpectrogram(hop_length=160,
   n_mels=80)(x) + 1e-6)``, forward only.
2. ``TrainableLogMel`` in the settings A-D of Heung et al. (2022) against nnAudio's ``MelSpectrogram``
   with the same trainable flags and mel settings (n_fft 480, hop 160, 40 HTK mels, no filter
   normalisation), timed as in training: the waveform needs no gradient, and the sum of the log-mel is
   back-propagated where the frontend has parameters (B, C, D), with gradients cleared before each call
   as the optimiser does. Targets: A and B at most 0.3 of nnAudio's time, C and D at most 0.7.

Every pair must give the same log-mel first (``allclose`` at ``atol`` 1e-3, rtol 0: the tolerance the
tests state for a direct DFT against an FFT); if one does not, the script prints which and exits with
status 1, since its timings would be meaningless. nnAudio is a benchmark-only dependency:
``./run.sh pip install -r benchmarks/requirements.txt``. Inputs are seeded Gaussian noise: the cost does
not depend on the content.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
import torchaudio
from torch import Tensor, nn

from benchmarks.timing import median_seconds, time_and_print
from src.frontends import LogMelFilterBanks, TrainableLogMel

SAMPLE_RATE = 16000
LOG_ATOL = 1e-3
"""Largest |difference| of two log-mels that still counts as the same output (log units)."""
SETTINGS = {"A": (False, False), "B": (False, True), "C": (True, False), "D": (True, True)}
"""Setting -> (trainable STFT, trainable mel filters)."""
TARGETS = {"A": 0.3, "B": 0.3, "C": 0.7, "D": 0.7}
"""Setting -> the largest ratio ours / nnAudio the project aims for."""
NNAUDIO_SETTINGS = {"n_fft": 480, "hop_length": 160, "n_mels": 40}


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


def disagreement(expected: Tensor, actual: Tensor) -> str | None:
    """``None`` when both log-mels have one shape and agree to :data:`LOG_ATOL`, else what differs."""
    if expected.shape != actual.shape:
        return f"shapes {tuple(actual.shape)} and {tuple(expected.shape)}"
    difference = float((actual - expected).abs().max())
    return None if difference <= LOG_ATOL else f"max |difference| {difference:.3g} > {LOG_ATOL}"


def training_call(
    features: Callable[[Tensor], Tensor], module: nn.Module, clips: Tensor
) -> Callable[[], None]:
    """One frontend call as training makes it: clear the gradients, compute the log-mel of ``clips``,
    back-propagate its sum when ``module`` has parameters."""
    parameters = list(module.parameters())

    def call() -> None:
        for parameter in parameters:
            parameter.grad = None
        output = features(clips)
        if parameters:
            output.sum().backward()

    return call


def compare_with_torchaudio(clips: Tensor, args: argparse.Namespace) -> bool:
    """Print ``LogMelFilterBanks`` against torchaudio; ``False`` when their outputs disagree."""
    ours = LogMelFilterBanks()
    mel_spectrogram = torchaudio.transforms.MelSpectrogram(hop_length=160, n_mels=80)
    candidates = {
        "ours": lambda: ours(clips)[0],  # the frontend contract: (features, frame_lengths)
        "torchaudio": lambda: torch.log(mel_spectrogram(clips) + 1e-6),
    }
    with torch.inference_mode():
        problem = disagreement(candidates["torchaudio"](), candidates["ours"]())
        if problem is not None:
            print(f"LogMelFilterBanks and torchaudio disagree ({problem}); timings would be meaningless")
            return False
        time_and_print(
            f"LogMelFilterBanks vs torchaudio: batch {tuple(clips.shape)} at {SAMPLE_RATE} Hz, "
            f"{torch.get_num_threads()} threads, outputs allclose: True",
            candidates,
            "torchaudio",
            args.warmup,
            args.repeats,
            args.number,
        )
    return True


def compare_with_nnaudio(clips: Tensor, args: argparse.Namespace) -> bool:
    """Print settings A-D against nnAudio with their targets; ``False`` when an output disagrees."""
    from nnAudio.features.mel import MelSpectrogram

    rows = []
    for setting, (trainable_stft, trainable_mel) in SETTINGS.items():
        ours = TrainableLogMel(trainable_stft=trainable_stft, trainable_mel=trainable_mel, **NNAUDIO_SETTINGS)
        reference = MelSpectrogram(
            sr=SAMPLE_RATE,
            n_fft=NNAUDIO_SETTINGS["n_fft"],
            hop_length=NNAUDIO_SETTINGS["hop_length"],
            n_mels=NNAUDIO_SETTINGS["n_mels"],
            htk=True,
            norm=None,
            trainable_STFT=trainable_stft,
            trainable_mel=trainable_mel,
            verbose=False,
        )

        def nnaudio_log_mel(x: Tensor, reference: nn.Module = reference) -> Tensor:
            return torch.log(reference(x) + 1e-6)

        with torch.no_grad():
            problem = disagreement(nnaudio_log_mel(clips), ours.features(clips))
        if problem is not None:
            print(f"setting {setting}: TrainableLogMel and nnAudio disagree ({problem})")
            return False
        candidates = {
            "ours": training_call(ours.features, ours, clips),
            "nnAudio": training_call(nnaudio_log_mel, reference, clips),
        }
        for _ in range(args.warmup):
            for call in candidates.values():
                call()
        medians = median_seconds(candidates, args.repeats, args.number)
        rows.append((setting, medians["ours"], medians["nnAudio"]))

    print(
        f"\nTrainableLogMel vs nnAudio MelSpectrogram: batch {tuple(clips.shape)}, n_fft 480, hop 160, "
        f"40 mels, {torch.get_num_threads()} threads, forward + backward where trainable, outputs "
        f"allclose (atol {LOG_ATOL}): True, median of {args.repeats} rounds x {args.number} calls"
    )
    print("  setting   ours (ms)   nnAudio (ms)   ratio   target   met")
    for setting, ours_seconds, reference_seconds in rows:
        ratio = ours_seconds / reference_seconds
        met = "yes" if ratio <= TARGETS[setting] else "no"
        print(
            f"  {setting:<7} {ours_seconds * 1e3:11.2f} {reference_seconds * 1e3:14.2f} "
            f"{ratio:7.3f} {TARGETS[setting]:8.1f}   {met}"
        )
    return True


def main(argv: list[str] | None = None) -> int:
    """Check that every pair agrees, print the timings and ratios; the exit status (1: an output
    disagrees, 2: nnAudio is not installed)."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    clips = 0.1 * torch.randn(args.batch_size, round(args.seconds * SAMPLE_RATE), generator=generator)

    if not compare_with_torchaudio(clips, args):
        return 1
    try:
        import nnAudio  # noqa: F401
    except ImportError:
        print(
            "nnAudio is not installed, so settings A-D are not timed: "
            "./run.sh pip install -r benchmarks/requirements.txt"
        )
        return 2
    return 0 if compare_with_nnaudio(clips, args) else 1


if __name__ == "__main__":
    sys.exit(main())
