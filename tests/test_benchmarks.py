"""The benchmark scripts still run against the code they measure (tiny inputs: the tiny corpus, one epoch)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from benchmarks.frontends import LOG_ATOL, disagreement
from benchmarks.frontends import main as frontends_benchmark
from benchmarks.inference import TOLERANCES as INFERENCE_TOLERANCES
from benchmarks.inference import main as inference_benchmark
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


INFERENCE_TINY = ["--model", "linear", "--rounds", "1", "--number", "1", "--warmup", "0"]
INFERENCE_CANDIDATES = [
    "eager f32",
    "eager int8",
    "torchscript f32",
    "torchscript int8",
    "onnxruntime f32",
    "onnxruntime int8",
]


def test_inference_benchmark_times_six_candidates_whose_logits_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert inference_benchmark(INFERENCE_TINY) == 0
    table = capsys.readouterr().out.split("int8 layers")[1].splitlines()[1:]
    rows = {" ".join(row.split()[:2]): row.split()[2:] for row in table}
    assert list(rows) == INFERENCE_CANDIDATES
    assert float(rows["eager f32"][1]) == 1.0  # the reference's ratio to itself
    for name, (_, ratio, logit_diff, tolerance, *_) in rows.items():
        assert float(ratio) > 0, name
        assert float(logit_diff) <= float(tolerance), name


def test_inference_benchmark_exits_1_when_logits_disagree(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(INFERENCE_TOLERANCES, "int8", 0.0)  # any quantisation error is now too much
    assert inference_benchmark(INFERENCE_TINY) == 1
    failures = capsys.readouterr().err
    assert "eager int8: logits differ" in failures and "onnxruntime int8: logits differ" in failures
    assert "f32: logits differ" not in failures


def test_inference_benchmark_names_the_option_of_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        inference_benchmark(["--ckpt-path", str(tmp_path / "missing.ckpt")])
    assert exit_info.value.code == 2
    assert "--ckpt-path" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        inference_benchmark(["--rounds", "0"])
    assert "--rounds" in capsys.readouterr().err
