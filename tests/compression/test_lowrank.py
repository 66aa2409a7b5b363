"""compression=lowrank: which layers of the backbone are factorised, which are left alone and why, and the
counts a task reports for them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.compression.factors import LowRankLayer
from src.compression.lowrank import LowRankCompression
from src.encoders.recurrent import RecurrentLayers
from src.tasks.base import FrontendEncoderTask
from src.training import build_task
from src.utils.complexity import count_parameters


def build_for(cfg: DictConfig) -> FrontendEncoderTask:
    """The task ``train.py`` builds for ``cfg`` (its data module not prepared: nothing is read)."""
    return build_task(OmegaConf.to_container(cfg, resolve=True), instantiate(cfg.data, _convert_="all"))


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(40, 64),
            nn.Conv2d(16, 32, 1, groups=4),  # four 8 x 4 maps per group
            nn.Conv2d(4, 4, 3),  # not pointwise: no candidate
            RecurrentLayers("lstm", 8, 8, 1, False, 0.0),  # ExactMacs
        )
        self.head = nn.Linear(4, 4)


def test_layers_are_factorised_only_where_the_factors_are_smaller() -> None:
    backbone = Backbone()
    report = LowRankCompression(rank=2).compress(backbone, ["encoder", "head"])
    assert [change.name for change in report.replaced] == ["encoder.0", "encoder.1"]
    assert isinstance(backbone.encoder[0], LowRankLayer) and isinstance(backbone.encoder[1], LowRankLayer)
    assert type(backbone.encoder[2]) is nn.Conv2d and type(backbone.head) is nn.Linear
    # 2 x (4 + 4) = 16 weights are not fewer than 4 x 4 = 16: left alone, with the arithmetic
    (head,) = [change for change in report.left_alone if change.name == "head"]
    assert head.reason == "rank 2 saves nothing: 2 x (4 + 4) = 16 >= 4 x 4 = 16 weights"
    assert report.replaced[0].params_after == 2 * (40 + 64) + 64
    assert report.replaced[1].params_after == count_parameters(backbone.encoder[1]) == 4 * 2 * (4 + 8) + 32
    assert report.params_saved == (40 * 64 - 2 * 104) + (16 * 32 // 4 - 4 * 2 * 12)
    assert report.as_dict()["rank"] == 2


def test_layers_inside_exact_mac_counts_are_left_alone() -> None:
    layers = nn.ModuleDict({"lstm": RecurrentLayers("lstm", 64, 64, 1, False, 0.0)})
    layers.lstm.add_module("projection", nn.Linear(64, 64))
    report = LowRankCompression(rank=2).compress(layers, ["lstm"])
    assert not report.replaced
    assert report.left_alone[0].reason == "inside lstm (ExactMacs), whose MAC count is analytic"


def test_full_rank_factorises_nothing_and_lists_every_candidate() -> None:
    backbone = Backbone()
    for rank in (None, "full"):
        report = LowRankCompression(rank=rank).compress(backbone, ["encoder", "head"])
        assert not report.replaced and len(report.left_alone) == 3
        assert {change.reason for change in report.left_alone} == {"compression.rank=full: no factorisation"}
        assert report.as_dict()["rank"] == "full"


@pytest.mark.parametrize("rank", [0, -3, 2.5, "20", True])
def test_a_rank_that_cannot_work_is_refused_naming_the_key(rank: object) -> None:
    with pytest.raises(
        ValueError, match=r"compression\.rank must be an integer >= 1, or full .*compression\.rank=20"
    ):
        LowRankCompression(rank=rank)


def test_a_compressed_mlp_task_counts_exactly_its_factors_and_never_touches_the_frontend(
    make_config: Callable[..., DictConfig],
) -> None:
    cfg = make_config(
        "data=kws12", "model=mlp", "model.hidden=[64,32]", "compression=lowrank", "compression.rank=5"
    )
    task = build_for(cfg)
    flat = 40 * 101
    # 4040 -> 64 and 64 -> 32 factorised at rank 5; the head 32 -> 12 too (5 x 44 = 220 < 384)
    expected = (5 * (flat + 64) + 64) + (5 * (64 + 32) + 32) + (5 * (32 + 12) + 12)
    complexity = task.complexity(16000)
    assert complexity["complexity/backbone_params"] == expected
    assert complexity["complexity/backbone_macs"] == expected  # one vector: a MAC per weight and bias
    assert complexity["complexity/frontend_params"] == 0
    summary = task.compression_summary()
    assert [entry["layer"] for entry in summary["replaced"]] == [
        "encoder.layers.0",
        "encoder.layers.3",
        "head.classifier",
    ]
    assert all(not name.startswith("frontend") for name, _ in task.named_modules() if "LowRank" in name)
    assert task(torch.randn(2, 16000)).shape == (2, 12)


def test_compression_none_and_full_rank_leave_the_seeded_weights_as_they_were(
    make_config: Callable[..., DictConfig],
) -> None:
    plain = make_config("model=conv1d")
    assert OmegaConf.to_container(plain.task.compression) == {"_target_": "src.compression.base.Compression"}
    torch.manual_seed(0)
    reference = build_for(plain).state_dict()
    torch.manual_seed(0)
    full = build_for(make_config("model=conv1d", "compression=lowrank", "compression.rank=full")).state_dict()
    assert reference.keys() == full.keys()
    assert all(torch.equal(reference[key], full[key]) for key in reference)
