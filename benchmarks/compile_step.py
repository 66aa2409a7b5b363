"""Time a full training step eager and with the encoder compiled (``task.compile=true``), in the same run.

    python -m benchmarks.compile_step [--models bcresnet1 crnn] [--steps 10] [--cold-cache]   (repo root)

Two models, built from the project's configs as ``train.py`` builds them (Hydra compose of ``conf/``, the
task from :func:`src.training.build_task`):

- ``bcresnet1``: ``data=kws12 experiment=bcresnet_recipe model.width_multiplier=1`` (BC-ResNet-1, SGD with
  the recipe's warm-up learning rate);
- ``crnn``: ``data=kws12 model=crnn`` (conv2d blocks, then a bidirectional LSTM; AdamW).

A step is what Lightning runs per training batch: ``zero_grad``, the task's ``training_step`` (frontend,
encoder, head, loss, metrics), ``backward``, the optimiser's ``step`` and ``on_train_batch_end``. Batches
are kws12-shaped (the data config's batch size, one clip length, its class count) of seeded Gaussian noise,
not speech: the cost does not depend on the content. Candidates, each a task built from the same seed:

- ``eager``: ``task.compile=false``;
- ``encoder``: ``task.compile=true``, the switch (the encoder compiled in place by the task);
- ``enc+head``: also the head compiled in place;
- ``enc+head+opt``: also the optimiser's ``step`` compiled.

The frontend is not compiled: TorchDynamo cannot trace its STFT magnitude (``torch.abs(..., out=)`` on a
complex tensor), so neither can it trace the whole step. Each candidate's first calls are timed one by one
(compiling happens there: a training batch, a batch of another size as at the end of an epoch, an
evaluation batch), then all are timed in alternating rounds (:func:`benchmarks.timing.time_and_print`)
and the ratios to ``eager`` are printed, with the number of steps after which the switch's faster steps
have paid for its compiling.

Agreement, from the same seed over ``--steps`` steps (each step's dropout seeded alike): the largest
difference in loss between eager and compiled, and, against an eager float64 run of the same steps, the
largest loss error and the first step's largest gradient error (relative to the largest gradient) of
each. Compiled float32 kernels sum in another order than eager ones, so results are not bit-for-bit equal;
the tolerance is that compiling moves them no further from the float64 reference than float32 rounding
already does: compiled's errors at most ``TOLERANCE_FACTOR`` times eager's. Otherwise the script exits
with status 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor

from benchmarks.run_config import compose_run_config
from benchmarks.timing import time_and_print
from src.tasks.base import FrontendEncoderTask
from src.training import build_task

MODELS = {
    "bcresnet1": ["data=kws12", "experiment=bcresnet_recipe", "model.width_multiplier=1"],
    "crnn": ["data=kws12", "model=crnn"],
}
"""Model name -> the ``train.py`` overrides of its run."""
TOLERANCE_FACTOR = 2.0
"""Compiled's errors against the float64 reference may be at most this many times eager float32's."""
LAST_BATCH = 37
"""Examples of the batch of another size timed among the first calls (an epoch's last batch)."""

Batch = tuple[Tensor, Tensor, Tensor]
"""``(waveforms (batch, samples), lengths (batch,), labels (batch,))``."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--steps", type=int, default=10, help="steps compared for agreement (default: 10)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per candidate (default: 7)")
    parser.add_argument("--number", type=int, default=3, help="steps per timed round (default: 3)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per candidate (default: 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument(
        "--cold-cache",
        action="store_true",
        help="compile into a fresh TorchInductor cache (the first run's compile time; default: torch's "
        "cache, warm after a first run)",
    )
    return parser.parse_args(argv)


@dataclass
class Trainee:
    """A task as a run builds it, its optimiser, and the run's batch shape."""

    task: FrontendEncoderTask
    optimizer: torch.optim.Optimizer
    batch_size: int
    samples: int
    classes: int


def build(overrides: list[str], compile_encoder: bool) -> Trainee:
    """The task of ``train.py <overrides> task.compile=<compile_encoder>``, seeded with the run's seed, set
    up as Lightning sets it up (:meth:`~FrontendEncoderTask.configure_model`, the optimiser and the
    scheduler's first learning rate); the data module is built but reads no corpus."""
    cfg = compose_run_config([*overrides, f"task.compile={str(compile_encoder).lower()}"])
    groups = ("task", "frontend", "model", "optimizer", "scheduler")
    settings = {group: OmegaConf.to_container(cfg[group], resolve=True) for group in groups}
    datamodule = instantiate(cfg.data, _convert_="all")
    L.seed_everything(cfg.seed, verbose=False)
    task = build_task(settings, datamodule)
    task.configure_model()
    optimizers = task.configure_optimizers()
    optimizer = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers
    return Trainee(
        task, optimizer, cfg.data.batch_size, datamodule.example_samples, len(datamodule.label_names)
    )


def random_batches(trainee: Trainee, count: int, seed: int, batch_size: int | None = None) -> list[Batch]:
    """``count`` batches of seeded Gaussian noise (std 0.1) of full length with random labels."""
    generator = torch.Generator().manual_seed(seed)
    size = batch_size or trainee.batch_size
    return [
        (
            0.1 * torch.randn(size, trainee.samples, generator=generator),
            torch.full((size,), trainee.samples, dtype=torch.int64),
            torch.randint(trainee.classes, (size,), generator=generator),
        )
        for _ in range(count)
    ]


def training_step(trainee: Trainee, batch: Batch) -> Tensor:
    """One optimiser step on ``batch`` as Lightning's automatic optimisation runs it; the loss."""
    task, optimizer = trainee.task, trainee.optimizer
    optimizer.zero_grad()
    loss = task.training_step(batch, 0)
    loss.backward()
    optimizer.step()
    task.on_train_batch_end(loss, batch, 0)
    return loss.detach()


def cycling_steps(trainee: Trainee, batches: list[Batch]) -> Callable[[], Tensor]:
    """A callable that runs :func:`training_step` on the next of ``batches`` (cycling)."""
    state = {"index": 0}

    def step() -> Tensor:
        batch = batches[state["index"] % len(batches)]
        state["index"] += 1
        return training_step(trainee, batch)

    return step


def first_calls(trainee: Trainee, batches: list[Batch], other_size: list[Batch]) -> dict[str, float]:
    """Seconds of the first training step, the first at another batch size and the first evaluation
    forward (the calls that compile), then the model back in training mode."""
    seconds = {}
    for name, run in (
        ("train", lambda: training_step(trainee, batches[0])),
        (f"train, batch {LAST_BATCH}", lambda: training_step(trainee, other_size[0])),
        ("eval", lambda: evaluate(trainee.task, batches[0])),
    ):
        start = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - start
    trainee.task.train()
    return seconds


def evaluate(task: FrontendEncoderTask, batch: Batch) -> Tensor:
    """The task's logits for ``batch`` in evaluation mode without gradients, as validation runs it."""
    task.eval()
    with torch.no_grad():
        return task(batch[0], batch[1])


@dataclass
class Trajectory:
    """What ``steps`` seeded steps from the same start give: the losses and the first step's gradients."""

    losses: Tensor
    first_gradients: list[Tensor]


def trajectory(trainee: Trainee, batches: list[Batch], seed: int, dtype: torch.dtype) -> Trajectory:
    """Run one step per batch, seeding torch's generator with ``seed + step`` before each (so dropout
    draws alike in every candidate), in ``dtype`` (task and waveforms)."""
    trainee.task.to(dtype)
    losses: list[Tensor] = []
    first: list[Tensor] = []
    for step, (waveforms, lengths, labels) in enumerate(batches):
        torch.manual_seed(seed + step)
        losses.append(training_step(trainee, (waveforms.to(dtype), lengths, labels)).double())
        if step == 0:
            first = [p.grad.double().clone() for p in trainee.task.parameters() if p.grad is not None]
    return Trajectory(torch.stack(losses), first)


def gradient_error(gradients: list[Tensor], reference: list[Tensor]) -> float:
    """Largest |difference| of two gradient lists, relative to the largest |reference| gradient."""
    largest = max(float(g.abs().max()) for g in reference)
    return max(float((g - r).abs().max()) for g, r in zip(gradients, reference, strict=True)) / largest


def agreement(overrides: list[str], steps: int, seed: int) -> bool:
    """Print how far eager and compiled float32 steps are from each other and from float64 eager after
    ``steps`` steps from the same seed; whether compiled is within the tolerance."""
    eager = build(overrides, compile_encoder=False)
    batches = random_batches(eager, steps, seed)
    runs = {
        "eager": trajectory(eager, batches, seed, torch.float32),
        "compiled": trajectory(build(overrides, compile_encoder=True), batches, seed, torch.float32),
    }
    exact = trajectory(build(overrides, compile_encoder=False), batches, seed, torch.float64)
    loss_errors = {name: float((run.losses - exact.losses).abs().max()) for name, run in runs.items()}
    gradient_errors = {
        name: gradient_error(run.first_gradients, exact.first_gradients) for name, run in runs.items()
    }
    difference = float((runs["eager"].losses - runs["compiled"].losses).abs().max())
    print(f"  agreement over {steps} steps from seed {seed} (float32 against an eager float64 run):")
    print(f"    largest |loss difference| eager vs compiled: {difference:.3g}")
    for name in runs:
        print(
            f"    {name:<9} largest |loss error| {loss_errors[name]:.3g}, first step's gradient error "
            f"{gradient_errors[name]:.3g} of the largest gradient"
        )
    within = all(
        errors["compiled"] <= TOLERANCE_FACTOR * errors["eager"] for errors in (loss_errors, gradient_errors)
    )
    verdict = "within" if within else "OUTSIDE"
    print(f"    compiled's errors {verdict} {TOLERANCE_FACTOR:g} x eager's (the tolerance)")
    return within


def timing_candidates(overrides: list[str]) -> dict[str, Trainee]:
    """The candidates, each built from the run's seed (see the module docstring)."""
    candidates = {"eager": build(overrides, compile_encoder=False), "encoder": build(overrides, True)}
    with_head = build(overrides, compile_encoder=True)
    with_head.task.heads()["head"].compile()
    candidates["enc+head"] = with_head
    everything = build(overrides, compile_encoder=True)
    everything.task.heads()["head"].compile()
    everything.optimizer.step = torch.compile(everything.optimizer.step)
    candidates["enc+head+opt"] = everything
    return candidates


def measure(model: str, args: argparse.Namespace) -> tuple[dict[str, float], bool]:
    """Print the first calls, the timed medians and ratios and the agreement of ``model``; returns the
    medians and whether the agreement is within tolerance."""
    overrides = MODELS[model]
    candidates = timing_candidates(overrides)
    eager = candidates["eager"]
    batches = random_batches(eager, 4, seed=0)
    other_size = random_batches(eager, 1, seed=1, batch_size=LAST_BATCH)
    print(f"\n{model}: python train.py {' '.join(overrides)}")
    print("  first calls (compiling happens here; later candidates reuse the encoder's graphs), seconds:")
    firsts = {name: first_calls(trainee, batches, other_size) for name, trainee in candidates.items()}
    for name, seconds in firsts.items():
        print(f"    {name:<13} " + ", ".join(f"{kind} {s:.1f}" for kind, s in seconds.items()))
    steps = {name: cycling_steps(trainee, batches) for name, trainee in candidates.items()}
    header = (
        f"  training step, batch {eager.batch_size} x {eager.samples} samples of Gaussian noise, "
        f"{eager.classes} classes, {torch.get_num_threads()} threads"
    )
    medians = time_and_print(header, steps, "eager", args.warmup, args.repeats, args.number)
    compiling = sum(firsts["encoder"].values()) - sum(firsts["eager"].values())
    saved = medians["eager"] - medians["encoder"]
    payback = f"after {compiling / saved:.0f} steps" if saved > 0 else "never (no step is faster)"
    print(f"  task.compile=true: {compiling:.1f} s of compiling, paid back by faster steps {payback}")
    return medians, agreement(overrides, args.steps, seed=0)


@contextmanager
def inductor_cache(cold: bool) -> Iterator[str]:
    """TorchInductor's cache folder for the run: a fresh temporary one when ``cold``, else torch's."""
    if not cold:
        yield os.environ.get("TORCHINDUCTOR_CACHE_DIR", "torch's default (warm after a first run)")
        return
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="inductor_cache_") as folder:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
        try:
            yield f"{folder} (fresh: cold compiles)"
        finally:
            if previous is None:
                del os.environ["TORCHINDUCTOR_CACHE_DIR"]
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous


def quiet() -> None:
    """Silence what would bury the figures: Lightning's warning that ``self.log`` has no trainer here
    and TorchDynamo's notes on graph breaks (the length check's ``int(lengths.min())``, the LSTM)."""
    warnings.filterwarnings("ignore", message=r".*self\.log\(\)")
    for name in ("torch._dynamo", "torch._inductor", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> None:
    """Measure every model of ``--models``; exit with status 1 when one is outside the tolerance."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    quiet()
    with inductor_cache(args.cold_cache) as cache:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, inductor cache: {cache}")
        results = {model: measure(model, args) for model in args.models}
    print("\nratios compiled / eager (median step times):")
    for model, (medians, _) in results.items():
        others = [name for name in medians if name != "eager"]
        ratios = ", ".join(f"{name} {medians[name] / medians['eager']:.3f}" for name in others)
        print(f"  {model}: {ratios}")
    failed = [model for model, (_, within) in results.items() if not within]
    if failed:
        print(f"outside the tolerance: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
