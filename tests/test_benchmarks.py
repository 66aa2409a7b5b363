"""The benchmark scripts still run against the code they measure (on the tiny corpus, one epoch)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.sweep import measure
from tests.conftest import compose_config, tiny_data


def test_sweep_benchmark_times_every_part_of_an_epoch(tiny_corpus_root: Path, tmp_path: Path) -> None:
    overrides = [
        "experiment=groups_sweep",
        "model.groups=16",
        "frontend.n_mels=20",
        f"paths.root_dir={tmp_path}",
    ]
    cfg = compose_config("config", [*overrides, *tiny_data(tiny_corpus_root, overrides)])
    parts, complexity = measure(cfg, epochs=1)
    assert set(parts) == {"data", "frontend", "backbone", "Lightning epoch"}
    assert all(seconds > 0 for seconds in parts.values())
    assert complexity["complexity/backbone_macs"] == (
        complexity["complexity/encoder_macs"] + complexity["complexity/head_macs"]
    )
