"""Where runs write, and what their records say: a folder per run even for runs started in the same
second, no run writing into another's folder, a resumed run's record that only grows, smoke sweeps that
never publish into ``sweep_results/``, runs that train nothing refused, partial runs labelled, and
``metrics.json`` that is valid JSON."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from src.reporting import aggregate_sweep
from src.reporting.sweep_report import latest_multirun
from src.resolvers import register_resolvers, resume_dir, unique_stamp
from src.run_record import (
    RUN_MARKERS,
    RunFolderGuard,
    check_run_folder,
    check_trains_something,
    merge_records,
    run_caveats,
)
from src.training import train
from src.utils.run_files import write_json_atomic
from tests.conftest import CONFIG_DIR, REPO_ROOT, run_python, tiny_data
from tests.reporting.sweep_folders import job_summary, write_job

SHORT_RUN = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
]


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-3000:] + result.stderr[-3000:]


def run_folders(project_root: Path) -> list[Path]:
    return sorted(path.parent for path in (project_root / "logs" / "train" / "runs").glob("*/.hydra"))


def test_unique_stamps_differ_within_one_second() -> None:
    stamps = {unique_stamp() for _ in range(50)}
    assert len(stamps) == 50
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{6}", stamp) for stamp in stamps)


def test_configs_composed_at_once_get_their_own_run_and_sweep_folders() -> None:
    register_resolvers()
    folders = []
    for _ in range(2):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("config", return_hydra_config=True)
        folders.append((cfg.hydra.run.dir, cfg.hydra.sweep.dir))
        assert cfg.hydra.run.dir == cfg.hydra.run.dir  # resolved once per config
    assert folders[0][0] != folders[1][0] and folders[0][1] != folders[1][1]


def test_two_runs_started_at_once_each_write_their_own_folder(tmp_path: Path, tiny_corpus_root: Path) -> None:
    commands = [
        [sys.executable, "train.py", "trainer=fast_dev_run", f"seed={seed}", *tiny_data(tiny_corpus_root, [])]
        for seed in (1, 2)
    ]
    env = {**os.environ, "PROJECT_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for command in commands
    ]
    for process in processes:
        assert process.wait(timeout=600) == 0, process.stdout.read().decode()[-3000:]
    folders = run_folders(tmp_path)
    assert len(folders) == 2
    seeds = set()
    for folder in folders:
        overrides = OmegaConf.load(folder / ".hydra" / "overrides.yaml")
        record = json.loads((folder / "metrics.json").read_text())
        assert f"seed={record['seed']}" in overrides
        seeds.add(record["seed"])
    assert seeds == {1, 2}


def test_a_checkpoint_of_a_run_resumes_in_that_runs_folder(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "train" / "runs" / "a"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    assert resume_dir(str(run / "checkpoints" / "last.ckpt"), "fresh") == str(run)
    assert resume_dir(str(tmp_path / "elsewhere.ckpt"), "fresh") == "fresh"
    assert resume_dir(None, "fresh") == "fresh"


def test_a_folder_holding_a_run_is_refused_unless_that_run_is_resumed(tmp_path: Path) -> None:
    check_run_folder(tmp_path, None)  # empty: fine
    write_json_atomic(tmp_path / "metrics.json", {"status": "ok"})
    with pytest.raises(FileExistsError, match=r"already holds a run.*ckpt_path=.*last\.ckpt"):
        check_run_folder(tmp_path, None)
    with pytest.raises(FileExistsError, match=r"hydra\.run\.dir"):
        check_run_folder(tmp_path, str(tmp_path.parent / "other" / "checkpoints" / "last.ckpt"))
    check_run_folder(tmp_path, str(tmp_path / "checkpoints" / "last.ckpt"))
    write_json_atomic(tmp_path / "metrics.json", {"status": "ok", "task_name": "train"})
    check_run_folder(tmp_path, str(tmp_path / "checkpoints" / "last.ckpt"), "train")
    with pytest.raises(FileExistsError):  # test.py evaluating a run never writes into its folder
        check_run_folder(tmp_path, str(tmp_path / "checkpoints" / "last.ckpt"), "test")


def test_a_killed_run_or_a_sweep_is_a_run_folder_before_hydra_writes(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    (killed / ".hydra").mkdir(parents=True)
    (killed / ".hydra" / "config.yaml").write_text("task_name: train\n")
    (killed / "checkpoints").mkdir()
    with pytest.raises(FileExistsError, match=r"\.hydra, checkpoints"):
        check_run_folder(killed, None, "train", RUN_MARKERS)
    check_run_folder(killed, str(killed / "checkpoints" / "last.ckpt"), "train", RUN_MARKERS)  # its resume
    with pytest.raises(FileExistsError):
        check_run_folder(killed, str(killed / "checkpoints" / "last.ckpt"), "test", RUN_MARKERS)
    sweep = tmp_path / "sweep"
    write_job(sweep, 0, ["seed=1"], None)
    with pytest.raises(FileExistsError, match="0/"):
        check_run_folder(sweep, None, "train", RUN_MARKERS)
    check_run_folder(tmp_path / "new", None, "train", RUN_MARKERS)


def test_a_sweep_into_the_folder_of_another_sweep_is_stopped(tmp_path: Path) -> None:
    write_job(tmp_path, 0, ["seed=1"], job_summary(0.9))
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with pytest.raises(SystemExit):
        RunFolderGuard().on_multirun_start(config)
    RunFolderGuard().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "new")}}}))


def test_train_py_into_the_folder_of_another_run_fails_and_leaves_it_alone(
    tmp_path: Path, tiny_corpus_root: Path
) -> None:
    run = tmp_path / "existing"
    record = {"status": "ok", "metrics": {"test/acc": 0.9}}
    write_json_atomic(run / "metrics.json", record)
    result = run_python(
        "train.py",
        "trainer=fast_dev_run",
        f"hydra.run.dir={run}",
        *tiny_data(tiny_corpus_root, []),
        project_root=tmp_path,
        timeout=600,
    )
    assert result.returncode != 0
    assert "already holds a run" in output(result)
    assert json.loads((run / "metrics.json").read_text()) == record
    assert sorted(path.name for path in run.iterdir()) == ["metrics.json"]  # not even .hydra/


def test_a_resumed_runs_record_keeps_what_earlier_attempts_measured() -> None:
    first = {
        "status": "ok",
        "metrics": {"val/acc": 0.8, "train/loss_epoch": 0.5, "test/acc": 0.7},
        "epoch_times_s": [1.0, 1.1],
        "wall_time_s": 10.0,
        "overrides": ["seed=1"],
    }
    rerun = {"status": "ok", "metrics": {"test/acc": 0.7}, "epoch_times_s": [], "wall_time_s": 2.0}
    merged = merge_records(merge_records(None, first), rerun)
    assert merged["metrics"] == first["metrics"]
    assert merged["epoch_times_s"] == [1.0, 1.1]
    assert [attempt["wall_time_s"] for attempt in merged["attempts"]] == [10.0, 2.0]
    assert merged["wall_time_s"] == 12.0
    failed_rerun = {"status": "failed", "error": "KeyboardInterrupt: ", "wall_time_s": 1.0}
    after_failure = merge_records(merged, failed_rerun)
    assert after_failure["status"] == "ok" and "error" not in after_failure
    assert after_failure["attempts"][-1]["status"] == "failed"
    assert after_failure["metrics"] == first["metrics"]
    refused_first = merge_records(None, {"status": "failed", "error": "ValueError: refused", "seed": 9})
    resumed = merge_records(refused_first, {"status": "ok", "seed": 1, "metrics": {"test/acc": 0.9}})
    assert resumed["status"] == "ok" and "error" not in resumed and resumed["seed"] == 1
    assert resumed["attempts"][0]["error"] == "ValueError: refused"


def test_rerunning_the_resume_command_of_a_finished_run_keeps_its_record(
    tmp_path: Path, tiny_corpus_root: Path
) -> None:
    data = tiny_data(tiny_corpus_root, [])
    first = run_python("train.py", *SHORT_RUN, *data, project_root=tmp_path, timeout=600)
    assert first.returncode == 0, output(first)
    assert "not a result: trainer.limit_test_batches=1: part of the test split" in first.stdout
    (run,) = run_folders(tmp_path)
    before = json.loads((run / "metrics.json").read_text())
    assert before["caveats"] == [
        "trainer.limit_train_batches=2: part of the training split",
        "trainer.limit_val_batches=1: part of the validation split",
        "trainer.limit_test_batches=1: part of the test split",
    ]
    ckpt = run / "checkpoints" / "last.ckpt"
    again = run_python("train.py", *SHORT_RUN, *data, f"ckpt_path={ckpt}", project_root=tmp_path, timeout=600)
    assert again.returncode == 0, output(again)
    assert run_folders(tmp_path) == [run]  # continued in its own folder
    after = json.loads((run / "metrics.json").read_text())
    assert after["metrics"] == before["metrics"]
    assert len(after["epoch_times_s"]) == len(before["epoch_times_s"]) == 1
    assert len(after["attempts"]) == 2 and after["attempts"][1]["ckpt_path"] == str(ckpt)
    started_with = (run / ".hydra" / "overrides.yaml").read_text()

    refused = run_python(
        "train.py", *SHORT_RUN, *data, "seed=99", f"ckpt_path={ckpt}", project_root=tmp_path, timeout=600
    )
    assert refused.returncode != 0
    assert f"python train.py {' '.join([*SHORT_RUN, *data])} ckpt_path={ckpt}" in output(refused)
    assert (run / ".hydra" / "overrides.yaml").read_text() == started_with  # still the run's own
    record = json.loads((run / "metrics.json").read_text())
    assert {key: record[key] for key in ("status", "seed", "metrics")} == {
        "status": "ok",
        "seed": before["seed"],
        "metrics": before["metrics"],
    }
    assert "error" not in record and record["attempts"][-1]["status"] == "failed"

    tested = run_python(
        "test.py",
        f"ckpt_path={ckpt}",
        "trainer=cpu",
        "+trainer.limit_test_batches=1",
        project_root=tmp_path,
        timeout=600,
    )
    assert tested.returncode == 0, output(tested)
    assert "not a result: trainer.limit_test_batches=1: part of the test split" in tested.stdout
    (test_record,) = (tmp_path / "logs" / "test" / "runs").glob("*/metrics.json")
    assert json.loads(test_record.read_text())["caveats"] == [
        "trainer.limit_test_batches=1: part of the test split"
    ]
    assert json.loads((run / "metrics.json").read_text()) == record  # test.py never writes into the run


def test_runs_that_train_nothing_are_refused_before_training(make_config) -> None:
    for key in ("max_epochs", "max_steps"):
        with pytest.raises(ValueError, match=rf"trainer\.{key}=0 trains nothing"):
            check_trains_something({key: 0})
    with pytest.raises(ValueError, match=r"trainer\.limit_train_batches=0"):
        check_trains_something({"limit_train_batches": 0.0})
    check_trains_something({"max_epochs": 1, "max_steps": -1})
    with pytest.raises(ValueError, match=r"trainer\.max_epochs=0"):
        check_trains_something({"max_epochs": 0, "fast_dev_run": True})
    with pytest.raises(ValueError, match=r"trainer\.max_epochs=-1 trains nothing \(or without end"):
        check_trains_something({"max_epochs": -1})
    cfg = make_config("trainer.max_epochs=0", trainer="cpu")
    with pytest.raises(ValueError, match=r"trainer\.max_epochs=0"):
        train(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert record["status"] == "failed" and "max_epochs=0" in record["error"]


def test_caveats_name_what_is_not_a_full_result() -> None:
    assert run_caveats({"max_epochs": 3}) == []
    assert run_caveats({"limit_test_batches": 1.0, "limit_val_batches": None}) == []
    assert run_caveats({"fast_dev_run": True}) == [
        "fast_dev_run: one batch per stage, a smoke test, not a result"
    ]
    assert run_caveats({"limit_test_batches": 1}) == ["trainer.limit_test_batches=1: part of the test split"]
    assert run_caveats({"limit_val_batches": 0.5}) == [
        "trainer.limit_val_batches=0.5: part of the validation split"
    ]


def test_metrics_json_holds_no_bare_nan(tmp_path: Path) -> None:
    path = write_json_atomic(
        tmp_path / "metrics.json", {"metrics": {"val/acc_best": math.nan, "x": [math.inf]}}
    )

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "metrics": {"val/acc_best": None, "x": [None]}
    }


def test_a_smoke_sweep_leaves_sweep_results_alone(
    tmp_path: Path, tiny_corpus_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = tmp_path / "sweep_results" / "nmels_sweep" / "results.md"
    committed.parent.mkdir(parents=True)
    committed.write_text("committed table")
    overrides = ["experiment=nmels_sweep", "frontend.n_mels=20", "seed=1"]
    result = run_python(
        "train.py",
        "-m",
        "trainer=fast_dev_run",
        *tiny_data(tiny_corpus_root, overrides),
        *overrides,
        project_root=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, output(result)
    assert committed.read_text() == "committed table"
    assert sorted(path.name for path in committed.parent.iterdir()) == ["results.md"]
    (sweep,) = (
        path.parent for path in (tmp_path / "logs" / "nmels_sweep" / "multiruns").glob("*/multirun.yaml")
    )
    assert (sweep / "results.csv").is_file() and (sweep / "results.md").is_file()
    monkeypatch.chdir(tmp_path)
    assert aggregate_sweep.main([str(sweep)]) == 2  # publishing a smoke test is refused
    assert committed.read_text() == "committed table"
    assert aggregate_sweep.main([str(sweep), "--output", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "results.csv").is_file()


def test_publishing_a_full_sweep_writes_sweep_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "logs" / "nmels_sweep" / "multiruns" / "2026-01-01_00-00-00_abcdef"
    for num, (n_mels, acc) in enumerate([(20, 0.8), (40, 0.9)]):
        write_job(sweep, num, [f"frontend.n_mels={n_mels}", "seed=1"], job_summary(acc))
    monkeypatch.chdir(tmp_path)
    assert aggregate_sweep.main([str(sweep)]) == 0
    assert (tmp_path / "sweep_results" / "nmels_sweep" / "results.csv").is_file()


def test_the_report_passes_over_smoke_multiruns(tmp_path: Path) -> None:
    multiruns = tmp_path / "nmels_sweep" / "multiruns"
    full, smoke = multiruns / "2026-01-01_00-00-00_aaaaaa", multiruns / "2026-01-02_00-00-00_bbbbbb"
    write_job(full, 0, ["seed=1"], job_summary(0.9))
    write_job(smoke, 0, ["seed=1"], {**job_summary(0.5), "caveats": ["fast_dev_run: one batch per stage"]})
    for when, folder in enumerate((full, smoke)):  # the smoke test ran last
        (folder / "multirun.yaml").write_text("{}")
        os.utime(folder / "multirun.yaml", (1e9 + when, 1e9 + when))
    assert latest_multirun("nmels_sweep", tmp_path) == full
    assert latest_multirun("nmels_sweep", tmp_path, full_only=False) == smoke
