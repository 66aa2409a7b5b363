"""The benchmark scripts still run against the code they measure (tiny inputs: the tiny corpus, one epoch)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from benchmarks.frontends import LOG_ATOL, disagreement
from benchmarks.frontends import main as frontends_benchmark
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


def test_frontend_benchmark_calls_outputs_equal_only_within_the_tolerance() -> None:
    log_mel = torch.zeros(2, 40, 101)
    assert disagreement(log_mel, log_mel + 0.5 * LOG_ATOL) is None
    assert "max |difference|" in disagreement(log_mel, log_mel + 2 * LOG_ATOL)
    assert "shapes" in disagreement(log_mel, log_mel[:, :, :100])


def test_frontend_benchmark_times_every_setting_against_nnaudio(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("nnAudio", reason="benchmark-only dependency (benchmarks/requirements.txt)")
    tiny = ["--batch-size", "2", "--seconds", "0.1", "--repeats", "1", "--number", "1", "--warmup", "0"]
    assert frontends_benchmark(tiny) == 0
    table = capsys.readouterr().out.split("setting   ours (ms)")[1].splitlines()[1:]
    assert [row.split()[0] for row in table] == ["A", "B", "C", "D"]


def test_frontend_benchmark_without_nnaudio_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "nnAudio", None)  # import fails as when it is not installed
    tiny = ["--batch-size", "2", "--seconds", "0.1", "--repeats", "1", "--number", "1", "--warmup", "0"]
    assert frontends_benchmark(tiny) == 2
    assert "pip install -r benchmarks/requirements.txt" in capsys.readouterr().out
