"""CTC feasibility (issue 12, item 6): utterances with fewer encoder frames than their phones need are
counted from the frontend's and the encoder's length contracts, a run where none fits fails before
training naming ``frontend.hop_length`` and a hop that works, one where some do not warns and logs the
fraction, and every epoch counts the batches whose loss ``zero_infinity`` zeroed."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torchmetrics import Metric

from src.data.timit.datamodule import TimitDataModule
from src.encoders.conv1d import Conv1dCNN
from src.frontends import LogMelFilterBanks
from src.tasks.ctc_feasibility import (
    EncoderOutputLength,
    feasible,
    largest_fitting_hop,
    required_frames,
    split_feasibility,
)
from src.tasks.phone_recognition import PhoneRecognitionTask
from src.training import train
from tests.tasks.test_phone_recognition import (
    LOGMEL,
    PHONES,
    RandomPhoneDataModule,
    make_task,
    quiet_trainer,
)


def test_required_frames_count_labels_and_adjacent_repeats_within_each_length() -> None:
    targets = torch.tensor([[1, 1, 2, 2], [3, 3, 3, 0], [4, 5, 4, 4], [7, 0, 0, 0]])
    lengths = torch.tensor([4, 2, 3, 0])
    assert required_frames(targets, lengths).tolist() == [6, 3, 3, 0]


def test_required_frames_is_exactly_where_the_ctc_loss_stops_being_infinite() -> None:
    generator = torch.Generator().manual_seed(0)
    ctc = torch.nn.CTCLoss(reduction="none", zero_infinity=False)
    for _ in range(40):
        length = int(torch.randint(1, 7, (1,), generator=generator))
        target = torch.randint(1, 4, (1, length), generator=generator)  # few labels: many repeats
        needed = int(required_frames(target, torch.tensor([length])))
        for frames in (needed - 1, needed):
            if frames < 1:
                continue
            log_probs = torch.randn(frames, 1, 5, generator=generator).log_softmax(-1)
            loss = ctc(log_probs, target, torch.tensor([frames]), torch.tensor([length]))
            assert torch.isfinite(loss).all() == (frames >= needed), (target, frames)


def test_feasible_matches_every_utterance_checked_alone_with_few_encoder_runs() -> None:
    generator = torch.Generator().manual_seed(1)
    frames = torch.randint(1, 400, (300,), generator=generator)
    required = torch.randint(0, 120, (300,), generator=generator)
    calls: list[int] = []

    def strided(n: int) -> int:  # a stride-4 encoder, as by its own length arithmetic
        calls.append(n)
        return (n + 3) // 4

    assert feasible(strided, frames, required).tolist() == [
        strided(int(n)) >= int(r) for n, r in zip(frames, required, strict=True)
    ]
    calls.clear()
    assert feasible(strided, frames, torch.zeros_like(required)).all()
    assert len(set(calls)) == 2  # every utterance fits by far: the shortest and the longest decide


def test_encoder_output_lengths_come_from_running_the_encoder_not_from_its_type() -> None:
    torch.manual_seed(0)
    conv = Conv1dCNN(in_features=40)  # three stride-2 poolings, ceil mode: ceil(frames / 8)
    task = make_task("bilstm")  # keeps every frame
    state = torch.random.get_rng_state()
    conv_lengths = EncoderOutputLength(conv.train(), 40, "cpu")
    bilstm_lengths = EncoderOutputLength(task.encoder.train(), 40, "cpu")
    assert [conv_lengths(n) for n in (1, 8, 9, 100)] == [1, 1, 2, 13]
    assert [bilstm_lengths(n) for n in (1, 57)] == [1, 57]
    assert conv.training and task.encoder.training  # put back as they were
    assert torch.equal(torch.random.get_rng_state(), state)  # nothing random was drawn


def test_the_largest_fitting_hop_is_the_largest_at_which_every_utterance_fits() -> None:
    frontend = {**LOGMEL, "hop_length": 1600}
    output_length = EncoderOutputLength(make_task().encoder, 40, "cpu")
    samples = torch.tensor([16000, 32000])
    targets = [torch.arange(30), torch.arange(45)]
    state = torch.random.get_rng_state()
    hop = largest_fitting_hop(frontend, output_length, samples, targets)
    assert torch.equal(torch.random.get_rng_state(), state)

    def all_fit(candidate: int) -> bool:
        rebuilt = LogMelFilterBanks(sample_rate=16000, n_mels=40, hop_length=candidate)
        return bool(split_feasibility("train", rebuilt, output_length, samples, targets).fits.all())

    assert hop is not None and all_fit(hop) and not all_fit(hop + 1)
    too_many = [torch.arange(20000)] * 2  # more phones than samples: no hop is small enough
    assert largest_fitting_hop({**frontend, "hop_length": 160}, output_length, samples, too_many) is None


def timit_config(make_config: Callable[..., DictConfig], *overrides: str, **kwargs: Any) -> DictConfig:
    return make_config(
        "data=timit", "model=bilstm", "model.hidden_size=8", "model.num_layers=1", *overrides, **kwargs
    )


def test_the_issue_case_fails_before_training_naming_the_hop_and_a_value_that_works(
    make_config: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_step(*args: Any) -> None:
        raise AssertionError("a training or validation step ran")

    for step in ("training_step", "validation_step"):
        monkeypatch.setattr(PhoneRecognitionTask, step, no_step)
    cfg = timit_config(make_config, "frontend.hop_length=1600")
    with pytest.raises(ValueError, match=r"CTC cannot align 16 of the 16 train utterances") as raised:
        train(cfg)
    message = str(raised.value)
    assert "frontend.hop_length=1600" in message and "zero_infinity" in message
    suggested = int(message.split("Set frontend.hop_length=")[1].split()[0])
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "failed" and "frontend.hop_length" in summary["error"]

    # the suggested hop makes every training utterance fit, and one more sample per hop does not
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    samples, targets = datamodule.utterance_targets("train")
    output_length = EncoderOutputLength(make_task().encoder, 40, "cpu")
    for hop, fits in ((suggested, True), (suggested + 1, False)):
        frontend = LogMelFilterBanks(sample_rate=16000, n_mels=40, hop_length=hop)
        assert bool(split_feasibility("train", frontend, output_length, samples, targets).fits.all()) == fits


def partly_feasible_hop(datamodule: TimitDataModule) -> int:
    """A hop at which some but not all training utterances of ``datamodule`` fit the tiny BiLSTM."""
    samples, targets = datamodule.utterance_targets("train")
    output_length = EncoderOutputLength(make_task().encoder, 40, "cpu")
    for hop in range(400, 1600, 20):
        frontend = LogMelFilterBanks(sample_rate=16000, n_mels=40, hop_length=hop)
        fraction = split_feasibility("train", frontend, output_length, samples, targets).fraction
        if 0 < fraction < 1:
            return hop
    raise AssertionError("no hop leaves some utterances infeasible")


def test_some_infeasible_utterances_warn_with_their_fraction_and_log_it(
    make_config: Callable[..., DictConfig], caplog: pytest.LogCaptureFixture
) -> None:
    probe = instantiate(timit_config(make_config).data, _convert_="all")
    probe.prepare_data()
    probe.setup("fit")
    hop = partly_feasible_hop(probe)
    cfg = timit_config(make_config, f"frontend.hop_length={hop}", run=f"hop{hop}")
    with caplog.at_level(logging.WARNING, logger="src.tasks.phone_recognition"):
        summary = train(cfg)
    fraction = summary["metrics"]["train/ctc_infeasible_fraction"]
    assert 0 < fraction < 1
    warned = [r.getMessage() for r in caplog.records if "train utterances" in r.getMessage()]
    assert len(warned) == 1
    assert (
        f"CTC cannot align {round(fraction * 16)} of the 16 train utterances ({100 * fraction:.1f}%)"
        in warned[0]
    )
    assert "Set frontend.hop_length=" in warned[0]
    assert 0 <= summary["metrics"]["val/ctc_infeasible_fraction"] <= 1
    assert summary["metrics"]["test/ctc_infeasible_fraction"] >= 0
    assert summary["metrics"]["train/ctc_zeroed_batches"] == 1  # fast_dev_run: one batch, with some


def test_a_feasible_run_logs_zero_infeasible_and_zeroed(make_config: Callable[..., DictConfig]) -> None:
    metrics = train(timit_config(make_config))["metrics"]
    assert metrics["train/ctc_infeasible_fraction"] == metrics["val/ctc_infeasible_fraction"] == 0.0
    assert metrics["train/ctc_zeroed_batches"] == 0.0


class OneLongTranscriptModule(RandomPhoneDataModule):
    """Two batches of three random utterances; the first utterance has more phones than frames."""

    def __init__(self) -> None:
        super().__init__(6)
        wave, _ = self.utterances[0]
        self.utterances[0] = (wave[:1600], torch.arange(40) % len(PHONES))  # 11 frames for 40 phones


def test_batches_whose_loss_zero_infinity_zeroed_are_counted_every_epoch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=0)
    with caplog.at_level(logging.WARNING, logger="src.tasks.phone_recognition"):
        trainer.fit(make_task(), datamodule=OneLongTranscriptModule())
    assert float(trainer.callback_metrics["train/ctc_zeroed_batches"]) == 1.0
    warnings = [r.getMessage() for r in caplog.records if "counted their loss as zero" in r.getMessage()]
    assert len(warnings) == 2 and "1 training batches held 1 utterances" in warnings[0]


def test_epoch_values_are_logged_for_reduction_over_processes() -> None:
    """Every tensor or number logged per epoch is reduced over the processes of a distributed run
    (``sync_dist``); metric objects reduce their own states."""
    logged: list[tuple[str, Any, dict[str, Any]]] = []

    class Recording(PhoneRecognitionTask):
        def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
            logged.append((name, value, kwargs))
            super().log(name, value, *args, **kwargs)

    task = Recording(**make_task().hparams)
    trainer = quiet_trainer(fast_dev_run=True)
    trainer.fit(task, datamodule=RandomPhoneDataModule())
    trainer.test(task, datamodule=RandomPhoneDataModule(), verbose=False)
    names = {name for name, _, _ in logged}
    assert {"train/loss", "val/loss", "val/per", "test/loss", "test/per", "train/ctc_zeroed_batches"} <= names
    for name, value, kwargs in logged:
        if not isinstance(value, Metric):
            assert kwargs.get("sync_dist") is True, name


def test_data_without_a_target_listing_is_still_trained_and_counted_per_batch() -> None:
    trainer = quiet_trainer(fast_dev_run=True)
    task = make_task()
    trainer.fit(task, datamodule=RandomPhoneDataModule())
    assert task.infeasible_fractions == {}
    assert float(trainer.callback_metrics["train/ctc_zeroed_batches"]) == 0.0
