"""Where a sweep job's training epoch goes: data loading, frontend, backbone (encoder and head), and
Lightning around them.

    python -m benchmarks.sweep [--groups 1 16] [--n-mels 20] [--epochs 3]     (from the repository root)

For each configuration of the groups sweep's model (default: groups 1 and 16 at n_mels 20, the ends of
the committed groups sweep), one training epoch of the default YES/NO data is timed in four ways, in the
same run and on the same batches:

- data: iterating the training DataLoader only;
- frontend: the frontend's forward on every batch (it has no trainable parameters);
- backbone: forward, backward and optimiser step of the encoder and the task's head on precomputed
  features (the task's cross-entropy);
- Lightning epoch: ``Trainer.fit`` for one epoch without validation, as ``train/epoch_time_s`` measures.

It prints each part's median seconds (over ``--epochs`` epochs) and its share of the Lightning epoch,
and the ratio of the two configurations' epoch times beside the ratio of their MACs, so the point where
MACs stop buying time shows. The data are the generated corpus under data/ (made on first use).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from collections.abc import Callable

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from benchmarks.run_config import compose_run_config
from src.training import build_task


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 16], help="model.groups values")
    parser.add_argument("--n-mels", type=int, default=20, help="frontend.n_mels (default: 20)")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per measurement (default: 5)")
    return parser.parse_args(argv)


def job_config(groups: int, n_mels: int) -> DictConfig:
    """The groups sweep's config for one ``groups`` value, as ``train.py`` composes it."""
    return compose_run_config(
        ["experiment=groups_sweep", f"model.groups={groups}", f"frontend.n_mels={n_mels}"]
    )


def median_seconds(run_epoch: Callable[[], None], epochs: int) -> float:
    """Median wall time of ``run_epoch`` over ``epochs`` calls, after one untimed call."""
    run_epoch()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        run_epoch()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(cfg: DictConfig, epochs: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median seconds of each part of one training epoch, and the model's complexity per clip."""
    L.seed_everything(cfg.seed)
    # The groups the task is built from (paths and Hydra's runtime are not needed, nor resolvable here).
    run_config = {
        group: OmegaConf.to_container(cfg[group], resolve=True)
        for group in ("task", "frontend", "model", "optimizer", "scheduler")
    }
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build_task(run_config, datamodule)
    loader = datamodule.train_dataloader()
    batches = list(loader)
    with torch.no_grad():
        features = [(model.frontend(waves, lengths), labels) for waves, lengths, labels in batches]
    settings = dict(run_config["optimizer"])
    settings.pop("frontend_lr", None)  # the frontend is not trained here
    backbone_parameters = [*model.encoder.parameters(), *model.head.parameters()]
    optimizer = instantiate(settings)(backbone_parameters)

    def data() -> None:
        for _ in loader:
            pass

    def frontend() -> None:
        with torch.no_grad():
            for waves, lengths, _ in batches:
                model.frontend(waves, lengths)

    def backbone() -> None:
        for (feats, frame_lengths), labels in features:
            optimizer.zero_grad()
            logits = model.head(*model.encoder(feats, frame_lengths))
            torch.nn.functional.cross_entropy(logits, labels).backward()
            optimizer.step()

    def lightning_epoch() -> None:
        trainer = L.Trainer(
            max_epochs=1,
            limit_val_batches=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            devices=1,
        )
        trainer.fit(model, train_dataloaders=loader)

    parts = {
        "data": median_seconds(data, epochs),
        "frontend": median_seconds(frontend, epochs),
        "backbone": median_seconds(backbone, epochs),
        "Lightning epoch": median_seconds(lightning_epoch, epochs),
    }
    return parts, model.complexity(datamodule.example_samples)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    results = {}
    for groups in args.groups:
        parts, complexity = measure(job_config(groups, args.n_mels), args.epochs)
        results[groups] = (parts, complexity)
        epoch = parts["Lightning epoch"]
        print(
            f"model.groups={groups}, frontend.n_mels={args.n_mels}: "
            f"{complexity['complexity/total_macs']:,} MACs per clip, "
            f"{torch.get_num_threads()} threads, median of {args.epochs} epochs"
        )
        for name, seconds in parts.items():
            print(f"  {name:<16} {seconds:7.3f} s  {seconds / epoch:6.1%} of the Lightning epoch")
        rest = epoch - parts["data"] - parts["frontend"] - parts["backbone"]
        print(f"  {'rest (Lightning)':<16} {rest:7.3f} s  {rest / epoch:6.1%}")
    if len(args.groups) >= 2:
        first, last = args.groups[0], args.groups[-1]
        (parts_a, complexity_a), (parts_b, complexity_b) = results[first], results[last]

        def ratio(values_b: dict, values_a: dict, key: str) -> float:
            return values_b[key] / values_a[key]

        print(
            f"groups {last} vs {first}: backbone MACs ratio "
            f"{ratio(complexity_b, complexity_a, 'complexity/backbone_macs'):.3f}, backbone time ratio "
            f"{ratio(parts_b, parts_a, 'backbone'):.3f}; total MACs ratio "
            f"{ratio(complexity_b, complexity_a, 'complexity/total_macs'):.3f}, epoch time ratio "
            f"{ratio(parts_b, parts_a, 'Lightning epoch'):.3f}"
        )


if __name__ == "__main__":
    main()
