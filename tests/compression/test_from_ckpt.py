"""compression.from_ckpt: a trained checkpoint factorised by truncated SVD when training starts, and
compressed checkpoints that test.py, load_from_checkpoint and resuming read without the source."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.compression.factors import LowRankLayer, dense_matrices, truncated_svd
from src.evaluation import evaluate
from src.tasks.base import FrontendEncoderTask
from src.tasks.classification import ClassificationTask
from src.training import build_task, train
from tests.conftest import ONE_BATCH_FIT, compose_config, tiny_data_overrides

# A small MLP: 4040 -> 32 -> 16, then the head 16 -> 2. At rank 4 both hidden layers are factorised; the
# head is left alone (4 x (16 + 2) = 72 >= 32).
MLP = ["model=mlp", "model.hidden=[32,16]"]
LOWRANK = ["compression=lowrank", "compression.rank=4"]
# One batch of each stage, so checkpoints are written; a schedule that does not follow max_epochs, so a
# resumed run may train longer.
SHORT_FIT = [*ONE_BATCH_FIT, "scheduler=step"]


@pytest.fixture(scope="module")
def source_checkpoint(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The best checkpoint of a full-rank :data:`MLP` after one batch of training."""
    root = tmp_path_factory.mktemp("source")
    overrides = [
        f"paths.root_dir={root}",
        f"paths.output_dir={root / 'run'}",
        "trainer=cpu",
        *MLP,
        *SHORT_FIT,
    ]
    summary = train(compose_config("config", [*overrides, *tiny_data_overrides([], request)]))
    return Path(summary["best_checkpoint"])


def build(cfg: DictConfig) -> FrontendEncoderTask:
    return build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))


def test_the_source_is_factorised_by_truncated_svd_and_everything_else_copied(
    make_config: Callable[..., DictConfig], source_checkpoint: Path
) -> None:
    task = build(make_config(*MLP, *LOWRANK, f"compression.from_ckpt={source_checkpoint}"))
    task.start_from_source()
    source = ClassificationTask.load_from_checkpoint(source_checkpoint, map_location="cpu")
    for name in ("encoder.layers.0", "encoder.layers.3"):
        layer = task.get_submodule(name)
        assert isinstance(layer, LowRankLayer) and layer.rank == 4
        weights, bias = dense_matrices(source.get_submodule(name))
        u, v = truncated_svd(weights, 4)
        torch.testing.assert_close(layer.u.weight, u[0])
        torch.testing.assert_close(layer.v.weight, v[0])
        torch.testing.assert_close(layer.u.bias, bias)
    source_state, state = source.state_dict(), task.state_dict()
    for key in ("head.classifier.weight", "head.classifier.bias", "frontend.mel_fbanks"):
        assert torch.equal(state[key], source_state[key]), key
    summary = task.compression_summary()
    assert summary["started_from"] == str(source_checkpoint)
    assert set(summary["svd_relative_error"]) == {"encoder.layers.0", "encoder.layers.3"}
    assert all(0 < error < 1 for error in summary["svd_relative_error"].values())


def test_a_compressed_checkpoint_is_read_without_its_source_by_load_test_and_resume(
    make_config: Callable[..., DictConfig], source_checkpoint: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source.ckpt"
    shutil.copy(source_checkpoint, source)
    overrides = [*MLP, *LOWRANK, f"compression.from_ckpt={source}", *SHORT_FIT]
    summary = train(make_config(*overrides, trainer="cpu"))
    assert summary["compression"]["started_from"] == str(source)
    assert [entry["layer"] for entry in summary["compression"]["left_alone"]] == ["head.classifier"]
    expected = (4 * (4040 + 32) + 32) + (4 * (32 + 16) + 16) + (16 * 2 + 2)
    assert summary["complexity"]["complexity/backbone_params"] == expected
    assert summary["size_on_disk"]["backbone_bytes"] > 4 * expected  # float32 weights and the keys
    assert summary["latency"]["median_ms"] > 0 and summary["latency"]["batch_size"] == 1
    last = Path(summary["last_checkpoint"])
    source.unlink()  # nothing below may read it

    loaded = ClassificationTask.load_from_checkpoint(last, map_location="cpu")
    assert isinstance(loaded.encoder.layers[0], LowRankLayer)
    saved = torch.load(last, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in saved.items())

    tested = evaluate(make_config(f"ckpt_path={last}", config_name="test", run="test"))
    assert tested["metrics"]["test/acc"] == pytest.approx(summary["metrics"]["test/acc"])

    resumed = train(make_config(*overrides, "trainer.max_epochs=2", f"ckpt_path={last}", trainer="cpu"))
    assert resumed["epochs_completed"] == 2
    # the weights came from last.ckpt (the source is gone); the record still says where the run started
    assert resumed["compression"]["started_from"] == str(source)
    assert resumed["compression"]["svd_relative_error"] == summary["compression"]["svd_relative_error"]


def test_a_source_of_another_model_or_no_file_fails_before_training_naming_the_key(
    make_config: Callable[..., DictConfig], source_checkpoint: Path, tmp_path: Path
) -> None:
    other = ["model=mlp", "model.hidden=[32,8]", *LOWRANK, f"compression.from_ckpt={source_checkpoint}"]
    with pytest.raises(
        ValueError, match=r"compression\.from_ckpt=.* was trained with model\.hidden=\[32, 16\]"
    ):
        train(make_config(*other))
    missing = tmp_path / "none.ckpt"
    with pytest.raises(FileNotFoundError, match=rf"compression\.from_ckpt={missing} cannot start this run"):
        train(make_config(*MLP, *LOWRANK, f"compression.from_ckpt={missing}", run="missing"))
