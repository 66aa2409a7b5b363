"""Training on several processes (``trainer=ddp``), run on CPU with two processes as a user runs it, and
the trainer configs that may run on a GPU."""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from src.distributed import is_global_zero
from src.tasks.classification import ClassificationTask
from src.training import train
from tests.conftest import TINY_CORPUS_SPEAKERS, choices, compose_config, run_python, tiny_data

# Two processes on CPU (gloo), one epoch. kws10 on the tiny corpus has odd validation and test splits
# (63 and 31 clips), which a padding sampler would fill up with a duplicate on one process.
DDP_ON_CPU = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_epochs=1"]
KWS10 = ["data=kws10", f"data.generator.num_speakers={TINY_CORPUS_SPEAKERS}"]
# What Lightning's launcher sets in the process that starts the others: left over, a later run would wait
# for processes nobody starts.
LAUNCHER_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def as_a_fresh_shell(patch: pytest.MonkeyPatch) -> None:
    """No launcher variables, one thread per process (two processes on a small machine)."""
    for variable in LAUNCHER_VARIABLES:
        # setenv first, so that undoing the patch also removes what Lightning sets during the test
        patch.setenv(variable, "")
        patch.delenv(variable)
    patch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def ddp_run(tiny_corpus_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``python train.py trainer=ddp`` with two CPU processes on kws10: its project folder and output."""
    project = tmp_path_factory.mktemp("ddp")
    with pytest.MonkeyPatch.context() as patch:
        as_a_fresh_shell(patch)
        result = run_python(
            "train.py",
            *DDP_ON_CPU,
            *KWS10,
            f"data.root={tiny_corpus_root}",
            project_root=project,
            timeout=600,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"project": project, "stdout": result.stdout, "root": tiny_corpus_root}


def test_ddp_run_has_one_folder_one_writer_and_one_summary(ddp_run: dict[str, Any]) -> None:
    runs = ddp_run["project"] / "logs" / "train" / "runs"
    folders = list(runs.iterdir())
    assert len(folders) == 1, folders  # the second process writes into the first one's folder
    run = folders[0]
    assert [path.parent for path in ddp_run["project"].rglob("metrics.json")] == [run]
    assert [path.parent for path in ddp_run["project"].rglob(".hydra")] == [run]
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    assert ddp_run["stdout"].count("test/acc = ") == 1  # only global rank 0 reports
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["status"] == "ok"
    assert summary["world_size"] == 2
    assert summary["epochs_completed"] == 1


def test_ddp_test_outputs_hold_each_test_clip_once(ddp_run: dict[str, Any]) -> None:
    run = next((ddp_run["project"] / "logs" / "train" / "runs").iterdir())
    summary = json.loads((run / "metrics.json").read_text())
    rows = list(csv.DictReader((run / "error_analysis" / "predictions.csv").open()))
    assert summary["split_sizes"]["test"] == 31
    assert len(rows) == len({row["file"] for row in rows}) == summary["test_analysis"]["clips"] == 31
    correct = sum(row["correct"] == "1" for row in rows)
    assert correct / len(rows) == pytest.approx(summary["metrics"]["test/acc"])


def test_ddp_validation_metrics_cover_the_whole_split_once(ddp_run: dict[str, Any], tmp_path: Path) -> None:
    """The validation metrics of the two processes, reduced, equal one process validating the same
    weights (last.ckpt after the only epoch) on the whole split."""
    run = next((ddp_run["project"] / "logs" / "train" / "runs").iterdir())
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["split_sizes"]["val"] == 63
    cfg = compose_config(
        "config", [*KWS10, f"data.root={ddp_run['root']}", f"paths.output_dir={tmp_path}", "trainer=cpu"]
    )
    model = ClassificationTask.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    single = trainer.validate(model, datamodule=instantiate(cfg.data, _convert_="all"))[0]
    for name in ("val/acc", "val/macro_f1", "val/loss"):
        assert summary["metrics"][name] == pytest.approx(single[name], rel=1e-5), name


def test_ddp_phone_recognition_decodes_each_test_utterance_once(
    tiny_timit_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CTC on two processes: its epoch-end reduction of zeroed batches meets the other process's (the
    progress bar reduces the epoch's values on rank 0 alone, before the task's hook runs)."""
    as_a_fresh_shell(monkeypatch)
    timit = ["data=timit", *tiny_data(tiny_timit_root, ["data=timit"])]
    result = run_python("train.py", *DDP_ON_CPU, *timit, project_root=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["world_size"] == 2
    rows = list(csv.DictReader((run / "test_decodings.csv").open()))
    assert len(rows) == len({row["file"] for row in rows}) == summary["split_sizes"]["test"] == 8


def test_a_ddp_sweep_is_refused_before_it_starts_processes(
    tiny_corpus_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_a_fresh_shell(monkeypatch)
    result = run_python(
        "train.py",
        "-m",
        *DDP_ON_CPU,
        "seed=1",
        f"data.root={tiny_corpus_root}",
        f"data.generator.num_speakers={TINY_CORPUS_SPEAKERS}",
        project_root=tmp_path,
        timeout=600,
    )
    assert result.returncode != 0
    assert "trainer=ddp with 2 processes cannot run in a multirun (-m)" in result.stdout + result.stderr
    jobs = list((tmp_path / "logs" / "train" / "multiruns").glob("*/*/metrics.json"))
    assert len(jobs) == 1
    assert "cannot run in a multirun" in json.loads(jobs[0].read_text())["error"]
    assert not (tmp_path / "logs" / "train" / "runs").exists()  # no process ran the command again


def test_ddp_with_one_process_ends_its_process_group_and_tests_on_one_device(
    make_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """trainer=ddp on a machine with one device (here: one CPU process) runs in a process group too."""
    as_a_fresh_shell(monkeypatch)  # and back after the test: Lightning's launcher sets them here
    one_batch = ["trainer.max_epochs=1", "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1"]
    summary = train(make_config("trainer.accelerator=cpu", "trainer.devices=1", *one_batch, trainer="ddp"))
    assert not torch.distributed.is_initialized()
    assert summary["status"] == "ok" and summary["world_size"] == 1
    assert summary["test_analysis"]["clips"] == summary["split_sizes"]["test"]


def test_is_global_zero_reads_the_node_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("NODE_RANK", raising=False)
    assert is_global_zero()
    monkeypatch.setenv("NODE_RANK", "1")  # the first process of the second machine
    assert not is_global_zero()


@pytest.fixture
def restore_determinism(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put torch's deterministic-algorithms mode back after a test that builds Trainers."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def call_kernel_without_deterministic_implementation() -> None:
    """``put_`` reaches torch's alert for kernels without a deterministic implementation on CPU: the
    same alert CTC's CUDA backward (``ctc_loss_backward_gpu``) raises, which needs a GPU to call."""
    torch.zeros(3).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize("trainer", choices("trainer"))
def test_trainer_configs_that_may_pick_a_gpu_warn_about_kernels_without_determinism(
    make_config: Callable[..., DictConfig], restore_determinism: None, trainer: str
) -> None:
    cfg = make_config(trainer=trainer)
    may_pick_gpu = cfg.trainer.accelerator in ("auto", "gpu", "cuda")
    assert cfg.trainer.deterministic == ("warn" if may_pick_gpu else True)
    # On this CPU: the Trainer of the config sets torch's mode; warn goes on, true stops the run.
    instantiate(cfg.trainer, accelerator="cpu", logger=False)
    assert torch.are_deterministic_algorithms_enabled()
    if may_pick_gpu:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call_kernel_without_deterministic_implementation()
        assert any("does not have a deterministic implementation" in str(w.message) for w in caught)
    else:
        with pytest.raises(RuntimeError, match="does not have a deterministic implementation"):
            call_kernel_without_deterministic_implementation()
