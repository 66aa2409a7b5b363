"""Time RecurrentLayers against torch's packed-sequence recurrent layers on the same padded batch.

    python -m benchmarks.recurrent_encoder [--cell lstm] [--frames 350] [--threads N]   (from the repo root)

The reference is the standard way to skip padding: ``pack_padded_sequence`` through a multi-layer
``nn.LSTM``/``nn.GRU``/``nn.RNN(bidirectional=True)`` and ``pad_packed_sequence``. Both are built from the
same seed, so they hold the same weights, and must give the same outputs (checked first). One call is a
training step's share: forward and backward. The figure of merit is the ratio of median times, ours /
packed, measured in alternating rounds. The default shape is a TIMIT batch of the
``timit_trainable_settings`` experiment: 8 utterances of up to 3.5 s (350 frames), 40 mels, 2 x 64 units.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import nn

from benchmarks.timing import time_and_print
from src.encoders.recurrent import CELLS, RecurrentLayers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cell", choices=sorted(CELLS), default="lstm", help="recurrent cell (default: lstm)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per batch (default: 8)")
    parser.add_argument(
        "--frames", type=int, default=350, help="frames of the longest sequence (default: 350)"
    )
    parser.add_argument("--features", type=int, default=40, help="input features per frame (default: 40)")
    parser.add_argument("--hidden-size", type=int, default=64, help="units per direction (default: 64)")
    parser.add_argument("--num-layers", type=int, default=2, help="stacked layers (default: 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per candidate (default: 7)")
    parser.add_argument("--number", type=int, default=3, help="calls per timed round (default: 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per candidate (default: 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and batch (default: 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Check that both give the same outputs, then print their median times and the ratio."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    shape = (args.features, args.hidden_size)
    torch.manual_seed(args.seed)
    ours = RecurrentLayers(args.cell, *shape, num_layers=args.num_layers, bidirectional=True)
    torch.manual_seed(args.seed)
    packed_rnn = CELLS[args.cell](*shape, num_layers=args.num_layers, bidirectional=True, batch_first=True)
    generator = torch.Generator().manual_seed(args.seed)
    batch = torch.randn(args.batch_size, args.frames, args.features, generator=generator)
    # Lengths spread over the upper 30% of the frames, the longest exactly args.frames.
    lengths = torch.randint(int(0.7 * args.frames), args.frames + 1, (args.batch_size,), generator=generator)
    lengths[0] = args.frames

    def packed() -> torch.Tensor:
        sequence = nn.utils.rnn.pack_padded_sequence(batch, lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(
            packed_rnn(sequence)[0], batch_first=True, total_length=args.frames
        )
        return outputs

    def step(forward: Callable[[], torch.Tensor]) -> None:
        forward().square().mean().backward()

    candidates = {"ours": lambda: step(lambda: ours(batch, lengths)), "packed": lambda: step(packed)}
    with torch.no_grad():
        if not torch.allclose(ours(batch, lengths), packed(), rtol=1e-4, atol=1e-5):
            raise AssertionError(
                "RecurrentLayers and the packed reference disagree; timings would be meaningless"
            )
    time_and_print(
        f"{args.cell} {args.num_layers} x {args.hidden_size} bidirectional, batch {tuple(batch.shape)}, "
        f"lengths {lengths.tolist()}, {torch.get_num_threads()} threads, forward + backward, "
        "outputs allclose: True",
        candidates,
        "packed",
        args.warmup,
        args.repeats,
        args.number,
    )


if __name__ == "__main__":
    main()
