"""A ``ckpt_path`` that is no checkpoint of this project's train.py (empty, random bytes, text, a foreign
pickle, a plain ``torch.save``, another project's Lightning checkpoint, a truncated or incomplete
checkpoint, a folder) is refused with one message naming the file and what to pass instead, by ``test.py``
and by a resume alike: both read it with ``load_run_config`` (issue 12, item 13)."""

from __future__ import annotations

import argparse
import json
import pickle
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from src.callbacks.run_config import load_run_config
from src.training import train
from tests.conftest import compose_config, run_python, tiny_data_overrides

HINT = "pass a checkpoint written by this project's train.py: a run's checkpoints/last.ckpt"


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """``last.ckpt`` of one batch of training of the default config."""
    root = tmp_path_factory.mktemp("real_checkpoint")
    paths = [f"paths.root_dir={root}", f"paths.output_dir={root / 'run'}", "trainer=cpu"]
    limits = [
        "trainer.max_epochs=1",
        *(f"+trainer.limit_{stage}_batches=1" for stage in ("train", "val", "test")),
    ]
    summary = train(compose_config("config", [*paths, *tiny_data_overrides([], request), *limits]))
    return Path(summary["last_checkpoint"])


def write_truncated(path: Path, real: Path, keep: float) -> None:
    data = real.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def write_without_weights(path: Path, real: Path) -> None:
    content = torch.load(real, map_location="cpu", weights_only=True)
    del content["state_dict"]
    torch.save(content, path)


# name -> (write the file at path, given the real checkpoint; what the message says the file is)
BAD_FILES: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "empty": (lambda path, _: path.write_bytes(b""), "(0 bytes; torch.load: EOFError): it is empty"),
    "random_bytes": (
        lambda path, _: path.write_bytes(random.Random(0).randbytes(4096)),
        "it is not a PyTorch checkpoint",
    ),
    "text": (lambda path, _: path.write_text("epoch=3 acc=0.9\n"), "it is not a PyTorch checkpoint"),
    "pickled_object": (
        lambda path, _: path.write_bytes(pickle.dumps(argparse.Namespace(lr=0.1))),
        "it holds Python objects other than tensors and containers",
    ),
    "torch_saved_object": (
        lambda path, _: torch.save(argparse.Namespace(lr=0.1), path),
        "it holds Python objects other than tensors and containers",
    ),
    "torch_saved_dict": (
        lambda path, _: torch.save({"weights": torch.zeros(3)}, path),
        "holds no run config: it is a dict saved with torch.save, not written by this project's train.py",
    ),
    "other_lightning_project": (
        lambda path, _: torch.save(
            {"state_dict": {"w": torch.zeros(3)}, "pytorch-lightning_version": "2.4.0", "epoch": 3}, path
        ),
        "holds no run config: it is a Lightning checkpoint of another project",
    ),
    "truncated_half": (
        lambda path, real: write_truncated(path, real, 0.5),
        "it is truncated or corrupt (a zip archive that torch.load cannot read)",
    ),
    "truncated_tail": (
        lambda path, real: write_truncated(path, real, 0.999),
        "it is truncated or corrupt (a zip archive that torch.load cannot read)",
    ),
    "without_weights": (write_without_weights, "is incomplete: it holds no weights (state_dict)"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_file_that_is_no_checkpoint_is_refused_naming_it_and_what_to_pass(
    kind: str, real_checkpoint: Path, tmp_path: Path
) -> None:
    write, what = BAD_FILES[kind]
    bad = tmp_path / f"{kind}.ckpt"
    write(bad, real_checkpoint)
    with pytest.raises(ValueError) as refused:
        load_run_config(bad)
    message = str(refused.value)
    assert message.startswith(f"ckpt_path={bad} ")
    assert what in message and HINT in message
    assert "weights_only" not in message  # torch's advice to load untrusted pickles is left out


def test_the_real_checkpoint_is_read(real_checkpoint: Path) -> None:
    assert load_run_config(real_checkpoint).model._target_ == "src.encoders.conv1d.Conv1dCNN"


def test_a_folder_is_refused_listing_its_checkpoints(real_checkpoint: Path) -> None:
    run_folder = real_checkpoint.parents[1]
    with pytest.raises(IsADirectoryError) as refused:
        load_run_config(run_folder)
    assert str(refused.value).startswith(f"ckpt_path={run_folder} is a folder; it holds {real_checkpoint}, ")


def test_a_path_with_an_unexpanded_tilde_says_how_to_write_it(
    real_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "last.ckpt").write_bytes(real_checkpoint.read_bytes())
    with pytest.raises(FileNotFoundError) as refused:
        load_run_config("~/last.ckpt")  # as zsh and sh pass `python test.py ckpt_path=~/last.ckpt`
    assert str(refused.value).endswith(
        f"unexpanded, so write the path out: ckpt_path={tmp_path / 'last.ckpt'}"
    )


def test_test_py_refuses_an_empty_checkpoint_with_one_clear_message(tmp_path: Path) -> None:
    empty = tmp_path / "last.ckpt"
    empty.write_bytes(b"")
    result = run_python(
        "test.py", f"ckpt_path={empty}", f"hydra.run.dir={tmp_path / 'evaluation'}", timeout=300
    )
    assert result.returncode != 0
    assert f"ValueError: ckpt_path={empty} cannot be read (0 bytes; torch.load: EOFError): it is empty" in (
        result.stderr
    )
    assert HINT in result.stderr
    assert not (tmp_path / "evaluation" / "metrics.json").exists()


def test_resuming_from_a_truncated_checkpoint_is_refused_before_training(
    make_config: Callable[..., DictConfig], real_checkpoint: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "last.ckpt"
    write_truncated(truncated, real_checkpoint, 0.5)
    with pytest.raises(ValueError, match=r"it is truncated or corrupt") as refused:
        train(make_config(f"ckpt_path={truncated}", trainer="cpu"))
    assert str(refused.value).startswith(f"ckpt_path={truncated} cannot be read")
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and HINT in record["error"]
    assert not (tmp_path / "run" / "checkpoints").exists()
