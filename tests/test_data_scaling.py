"""The data-scaling benchmark's parts: growth exponents, the page it writes, memory sampling of a process
tree, and its two in-process stages on the tiny corpus."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import benchmarks.data_scaling as data_scaling
from benchmarks.data_scaling import (
    MAX_ATTEMPTS,
    REPO_ROOT,
    ChildRun,
    build_caches,
    check_scratch,
    data_overrides,
    data_path_rates,
    growth_exponent,
    main,
    measure_cleanly,
    report,
    run_measured,
    superlinear,
    write_report,
)
from src.utils.run_files import write_json_atomic
from tests.conftest import TINY_CORPUS_SPEAKERS

CONTEXT = {"command": "python -m benchmarks.data_scaling", "date": "2026-01-01", "memory_total": 24 * 10**9}


def fake_result(speakers: int, epoch_exponent: float = 1.0, ratio: float = 50.0) -> dict[str, Any]:
    """A result of :func:`benchmarks.data_scaling.measure_size` for ``speakers`` speakers whose costs grow
    linearly with the clips, except the epoch time (``clips ** epoch_exponent``)."""
    clips = 44 * speakers
    cache = {"seconds": clips * 1e-3, "bytes": clips * 32_000, "peak_rss": 6e8, "other_cores": 0.01}
    sizes = {"train": clips // 3, "val": clips // 30, "test": clips // 30}
    return {
        "speakers": speakers,
        "clips": clips,
        "corpus_bytes": clips * 30_000,
        "generation": {
            "seconds": clips * 4e-3,
            "peak_rss": 1e9,
            "peak_anonymous": 8e8,
            "max_process_rss": 5e8,
            "other_cores": 0.02,
        },
        "caches": {
            "kws12": {**cache, "split_sizes": sizes},
            "kws35": {**cache, "bytes": 2 * cache["bytes"], "split_sizes": sizes},
        },
        "training": {
            "seconds": 30 + clips * 5e-3,
            "epoch_seconds": clips**epoch_exponent * 1e-3,
            "peak_rss": 1.5e9 + clips * 32_000,
            "peak_anonymous": 9e8,
            "max_process_rss": 2e9,
            "other_cores": 0.03,
            "split_sizes": sizes,
            "hardware": {"cpu": "CPU", "cpu_cores": 2, "torch_threads": 2, "gpu": None, "torch": "2.11"},
        },
        "data_path": {
            "loader_batches_per_s": 10 * ratio,
            "steps_per_s": 10.0,
            "ratio": ratio,
            "epoch_batches_per_s": 8.0,
            "batches_per_epoch": sizes["train"] // 64 + 1,
            "timed_steps": 30,
            "rounds": 5,
            "batch_size": 64,
            "num_workers": 0,
            "other_cores": 0.04,
        },
    }


def test_growth_exponent_is_one_for_linear_growth_and_two_for_quadratic() -> None:
    clips = [1_000, 3_000, 10_000]
    assert growth_exponent(clips, [2 * c for c in clips]) == pytest.approx(1.0)
    assert growth_exponent(clips, [c**2 for c in clips]) == pytest.approx(2.0)
    assert math.isnan(growth_exponent([1_000], [5.0]))


def test_superlinear_names_only_the_cost_that_grows_faster_than_linearly() -> None:
    assert superlinear([fake_result(n) for n in (100, 300, 1000)]) == {}
    flagged = superlinear([fake_result(n, epoch_exponent=1.5) for n in (100, 300, 1000)])
    assert list(flagged) == ["training epoch"]
    assert flagged["training epoch"] == pytest.approx(1.5)


def test_page_holds_every_size_the_verdicts_and_the_generated_corpus_note(tmp_path: Path) -> None:
    results = [fake_result(n, ratio=4.0) for n in (262, 785, 2618)]
    page = report(results, CONTEXT)
    for speakers in ("| 262 |", "| 785 |", "| 2,618 |"):
        assert page.count(speakers) == 4  # the cost, memory, data path and load tables
    page = " ".join(page.split())  # prose is wrapped
    assert "**The corpus is generated speech**" in page
    assert "does NOT meet the target of at least 5x" in page
    assert "No cost grows faster than linearly" in page
    assert "The 12-class run fits with room to spare; by that estimate, so does the 35-class one." in page
    assert "| 2,618 | 0.02 | 0.01 | 0.01 | 0.03 | 0.04 |" in report(results, CONTEXT)  # other processes' load
    written = write_report(results, CONTEXT, tmp_path)
    assert written.read_text() == report(results, CONTEXT)
    assert {path.name for path in tmp_path.glob("scaling_*.png")} == {
        "scaling_growth.png",
        "scaling_data_path.png",
    }


def test_from_results_exits_1_when_the_loader_is_too_slow_at_the_largest_size(tmp_path: Path) -> None:
    saved = write_json_atomic(
        tmp_path / "results.json",
        {"results": [fake_result(262), fake_result(2618, ratio=3.0)], "context": CONTEXT},
    )
    assert main(["--from-results", str(saved), "--docs", str(tmp_path / "docs")]) == 1
    write_json_atomic(saved, {"results": [fake_result(262), fake_result(2618)], "context": CONTEXT})
    assert main(["--from-results", str(saved), "--docs", str(tmp_path / "docs")]) == 0
    assert (tmp_path / "docs" / "scaling.md").is_file()


def test_run_measured_sums_the_memory_of_the_whole_process_tree(tmp_path: Path) -> None:
    # The parent holds little; its child writes 200 MB and holds it for a while.
    child = "import time; block = b'x' * 200_000_000; time.sleep(1.0)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    run = run_measured([sys.executable, "-c", parent], tmp_path / "log.txt")
    assert run.peak_anonymous >= 190_000_000
    assert run.peak_rss >= run.peak_anonymous
    assert run.max_process_rss >= 190_000_000
    assert 0 <= run.other_cores <= os.cpu_count()


def test_run_measured_names_the_log_of_a_failing_command(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"exited with 3; its log is .*log\.txt(.|\n)*boom"):
        run_measured([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], tmp_path / "log.txt")


def test_a_disturbed_measurement_is_repeated_and_the_least_disturbed_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = iter([0.9, 0.3, 0.5, 0.0])  # other processes' cores during each attempt
    outputs = tmp_path / "outputs"

    def run_measured(command: list[str], log_file: Path) -> ChildRun:
        assert not outputs.exists()  # reset before each attempt
        outputs.mkdir()
        load = next(loads)
        return ChildRun(seconds=1 + load, peak_rss=1, peak_anonymous=1, max_process_rss=1, other_cores=load)

    monkeypatch.setattr(data_scaling, "wait_until_quiet", lambda: 0.0)
    monkeypatch.setattr(data_scaling, "run_measured", run_measured)
    kept = measure_cleanly(["true"], tmp_path / "log.txt", outputs, lambda: {"seen": outputs.is_dir()})
    assert MAX_ATTEMPTS == 3
    assert (kept["other_cores"], kept["seconds"], kept["attempts"], kept["seen"]) == (0.3, 1.3, 3, True)
    assert next(loads) == 0.0  # no fourth attempt


def test_scratch_inside_the_repository_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"inside the repository.*--scratch /tmp/scaling"):
        check_scratch(REPO_ROOT / "data" / "scaling")
    assert check_scratch(tmp_path) == tmp_path.resolve()


def test_stages_build_the_caches_and_time_loader_and_step_on_the_tiny_corpus(
    tiny_corpus_root: Path, tmp_path: Path
) -> None:
    overrides = data_overrides(tiny_corpus_root, TINY_CORPUS_SPEAKERS, "kws12", tmp_path / "cache")
    built = build_caches(overrides)
    assert built["seconds"] > 0
    assert min(built["split_sizes"].values()) > 0
    assert len(list((tmp_path / "cache").glob("speech_commands-*.npy"))) == 6  # waveforms + lengths x 3

    epoch = ["experiment=bcresnet_recipe", "model.width_multiplier=1", "trainer.max_epochs=1"]
    rates = data_path_rates([*overrides, *epoch], rounds=1, steps=1, warmup=1)
    assert rates["batches_per_epoch"] == math.ceil(built["split_sizes"]["train"] / 64)
    assert rates["loader_batches_per_s"] > 0 and rates["steps_per_s"] > 0
    assert rates["ratio"] == pytest.approx(rates["loader_batches_per_s"] / rates["steps_per_s"])
    assert (rates["batch_size"], rates["num_workers"], rates["timed_steps"]) == (64, 0, 1)
