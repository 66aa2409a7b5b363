"""Tests for ``PhoneRecognitionTask``: an encoder of frames and a per-frame head trained with CTC, one output
per frame with the frontend's frame counts, decoding and scoring on the folded phones, MACs of every part."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from src.data.timit.phones import TIMIT_39, TIMIT_61, fold
from src.encoders.recurrent import RecurrentEncoder
from src.tasks.heads import FrameClassifierHead
from src.tasks.phone_error_rate import PhoneErrorRate
from src.tasks.phone_recognition import DecodedUtterance, PhoneRecognitionTask
from src.utils.complexity import count_macs, count_parameters
from tests.conftest import CONFIG_DIR

SAMPLE_RATE = 16000
PHONES = list(TIMIT_61)
LOGMEL = {"_target_": "src.frontends.LogMelFilterBanks", "sample_rate": SAMPLE_RATE, "n_mels": 40}
# conf/model/<name>.yaml made tiny (the keys merged into it).
TINY_ENCODERS: dict[str, dict[str, Any]] = {
    "bilstm": {"hidden_size": 8, "num_layers": 1},
    "bcresnet_bilstm": {
        "encoders": {"bcresnet": {"width_multiplier": 0.5}, "bilstm": {"hidden_size": 8, "num_layers": 1}}
    },
    "crnn": {"conv_channels": [2, 4], "hidden_size": 8, "num_layers": 1},
}
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}


def encoder_config(name: str) -> dict[str, Any]:
    """``conf/model/<name>.yaml`` (with its defaults list resolved by hand: bilstm is lstm made
    bidirectional) made tiny."""
    config = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    for parent in config.pop("defaults", []):
        config = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "model" / f"{parent}.yaml"), config)
    return OmegaConf.to_container(OmegaConf.merge(config, TINY_ENCODERS.get(name, {})))


def frame_head() -> dict[str, Any]:
    """``task.head`` of ``conf/task/ctc.yaml``."""
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "task" / "ctc.yaml").head)


def make_task(
    encoder: str = "bilstm", frontend: dict[str, Any] | None = None, **kwargs
) -> PhoneRecognitionTask:
    torch.manual_seed(0)
    return PhoneRecognitionTask(
        frontend=frontend or LOGMEL,
        encoder=encoder_config(encoder),
        head=frame_head(),
        label_names=PHONES,
        example_samples=SAMPLE_RATE,
        optimizer=ADAM,
        **kwargs,
    )


def collate(utterances: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    """Zero-pad waveforms and phone indices as the TIMIT datamodule does."""
    waves, targets = zip(*utterances, strict=True)
    wave_lengths = torch.tensor([len(w) for w in waves])
    target_lengths = torch.tensor([len(t) for t in targets])
    padded_waves = torch.zeros(len(waves), int(wave_lengths.max()))
    padded_targets = torch.zeros(len(targets), int(target_lengths.max()), dtype=torch.long)
    for row, (wave, target) in enumerate(zip(waves, targets, strict=True)):
        padded_waves[row, : len(wave)] = wave
        padded_targets[row, : len(target)] = target
    return padded_waves, wave_lengths, padded_targets, target_lengths


def random_utterance(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random waveform of 0.2 to 0.5 s and 2 to 8 random phone indices."""
    samples = int(torch.randint(3200, 8000, (1,), generator=generator))
    phones = int(torch.randint(2, 9, (1,), generator=generator))
    wave = 0.1 * torch.randn(samples, generator=generator)
    return wave, torch.randint(0, len(PHONES), (phones,), generator=generator)


class RandomPhoneDataModule(L.LightningDataModule):
    """The same random utterances (:func:`random_utterance`) in every split, batches of 3."""

    def __init__(self, utterances: int = 6) -> None:
        super().__init__()
        self.label_names = PHONES
        self.sample_rate = SAMPLE_RATE
        generator = torch.Generator().manual_seed(0)
        self.utterances = [random_utterance(generator) for _ in range(utterances)]

    def loader(self) -> DataLoader:
        return DataLoader(self.utterances, batch_size=3, collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self.loader()

    def val_dataloader(self) -> DataLoader:
        return self.loader()

    def test_dataloader(self) -> DataLoader:
        return self.loader()

    def utterance_targets(self, split: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Not listed (as ``TaskDataModule``'s default): the task counts infeasible batches only."""
        raise NotImplementedError


def quiet_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )  # fmt: skip


def test_encoder_and_head_are_built_from_the_frontend_and_the_phone_set() -> None:
    task = make_task()
    assert isinstance(task.encoder, RecurrentEncoder) and isinstance(task.head, FrameClassifierHead)
    assert task.encoder.input_norm.num_features == 40
    assert task.head.classifier.in_features == task.encoder.out_features == 16  # 8 units, both directions
    assert task.head.classifier.out_features == len(PHONES) + 1
    assert (task.monitor, task.mode, task.test_metric, task.test_mode) == (
        "val/per",
        "min",
        "test/per",
        "min",
    )


def test_frame_lengths_come_from_the_frontend_for_a_tensor_of_lengths() -> None:
    task = make_task().eval()
    with torch.no_grad():
        _, lengths = task(torch.randn(4, 16000), torch.tensor([16000, 8000, 159, 160]))
    assert lengths.dtype == torch.int64
    assert lengths.tolist() == [101, 51, 1, 2]  # 1 + samples // hop_length (160), centred frames


def test_outputs_have_one_row_per_frame_and_the_real_frame_counts() -> None:
    task = make_task().eval()
    waveforms = torch.zeros(2, 16000)
    waveforms[0].normal_()
    waveforms[1, :8000].normal_()
    logits, lengths = task(waveforms, torch.tensor([16000, 8000]))
    assert logits.shape == (2, 101, len(PHONES) + 1)
    assert lengths.tolist() == [101, 51]


@pytest.mark.parametrize("encoder", list(TINY_ENCODERS))
def test_the_ctc_loss_is_finite_and_its_gradient_reaches_every_parameter(encoder: str) -> None:
    task = make_task(encoder).train()
    waveforms, wave_lengths, targets, target_lengths = collate(RandomPhoneDataModule(3).utterances)
    logits, lengths = task(waveforms, wave_lengths)
    loss = task.ctc_loss(logits, lengths, targets, target_lengths)
    assert torch.isfinite(loss)
    loss.backward()
    for name, parameter in task.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_ctc_loss_scores_phone_i_as_output_i_plus_one_and_ignores_target_padding() -> None:
    task = make_task()
    # frames: blank, phone 3, phone 3, blank, phone 0 -> the path of targets [3, 0]; second example [5].
    best = torch.tensor([[0, 4, 4, 0, 1], [6, 0, 0, 0, 0]])
    logits = 50.0 * torch.nn.functional.one_hot(best, len(PHONES) + 1).float()
    targets = torch.tensor([[3, 0], [5, 0]])
    loss = task.ctc_loss(logits, torch.tensor([5, 5]), targets, torch.tensor([2, 1]))
    assert float(loss) < 1e-6
    other_padding = task.ctc_loss(
        logits, torch.tensor([5, 5]), torch.tensor([[3, 0], [5, 9]]), torch.tensor([2, 1])
    )
    assert float(other_padding) == float(loss)
    wrong = task.ctc_loss(logits, torch.tensor([5, 5]), torch.tensor([[3, 1], [5, 0]]), torch.tensor([2, 1]))
    assert float(wrong) > 10


def test_an_impossible_alignment_costs_zero_instead_of_infinity() -> None:
    task = make_task()
    logits = torch.randn(1, 3, len(PHONES) + 1, requires_grad=True)
    loss = task.ctc_loss(logits, torch.tensor([3]), torch.tensor([[1, 2, 3, 4]]), torch.tensor([4]))
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.isfinite(logits.grad).all()


def test_decoding_maps_outputs_back_to_phones() -> None:
    task = make_task()
    best = torch.tensor([[0, 1, 1, 0, 1, len(PHONES), 0]])
    logits = torch.nn.functional.one_hot(best, len(PHONES) + 1).float()
    assert task.decode(logits, torch.tensor([7])) == [[PHONES[0], PHONES[0], PHONES[-1]]]
    assert task.decode(logits, torch.tensor([3])) == [[PHONES[0]]]


def test_reference_phones_stop_at_each_target_length() -> None:
    task = make_task()
    phones = task.reference_phones(torch.tensor([[1, 2, 0], [4, 0, 0]]), torch.tensor([3, 1]))
    assert phones == [[PHONES[1], PHONES[2], PHONES[0]], [PHONES[4]]]


def test_uncentred_frames_ignore_appended_zeros_so_the_bilstm_path_is_padding_invariant() -> None:
    # Without centring, every frame lies inside the real samples: appending zeros and passing the true
    # length leaves every real frame's output unchanged.
    task = make_task(frontend={**LOGMEL, "center": False}).eval()
    wave = torch.randn(1, 5000)
    with torch.no_grad():
        alone, alone_lengths = task(wave, torch.tensor([5000]))
        padded, padded_lengths = task(torch.cat([wave, torch.zeros(1, 3000)], dim=1), torch.tensor([5000]))
    assert padded_lengths.tolist() == alone_lengths.tolist() == [alone.shape[1]]
    assert padded.shape[1] > alone.shape[1]
    torch.testing.assert_close(padded[:, : alone.shape[1]], alone, rtol=1e-5, atol=1e-5)


def test_centred_frames_do_not_depend_on_how_much_padding_follows() -> None:
    # Centred frames near the end read up to n_fft // 2 samples past it: from n_fft // 2 zeros of padding
    # on, the amount of padding (set by the longest utterance of the batch) no longer matters.
    task = make_task().eval()
    wave = torch.randn(1, 5000)
    short_pad, long_pad = torch.zeros(1, 200), torch.zeros(1, 6000)
    length = torch.tensor([5000])
    with torch.no_grad():
        near, near_lengths = task(torch.cat([wave, short_pad], dim=1), length)
        far, far_lengths = task(torch.cat([wave, long_pad], dim=1), length)
    real = int(near_lengths)
    assert real == int(far_lengths) == 32
    torch.testing.assert_close(far[:, :real], near[:, :real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("encoder", list(TINY_ENCODERS))
def test_fast_dev_run_logs_a_finite_validation_phone_error_rate(encoder: str) -> None:
    trainer = quiet_trainer(fast_dev_run=True)
    trainer.fit(make_task(encoder), datamodule=RandomPhoneDataModule())
    metrics = trainer.callback_metrics
    assert {"train/loss", "val/loss", "val/per"} <= set(metrics)
    assert math.isfinite(float(metrics["val/per"]))
    assert float(metrics["val/per"]) >= 0.0
    assert math.isfinite(float(metrics["val/loss"]))


def test_test_decodings_are_folded_and_in_dataloader_order() -> None:
    datamodule = RandomPhoneDataModule()
    task = make_task()
    trainer = quiet_trainer()
    for _ in range(2):  # a second test run starts a new list
        results = trainer.test(task, datamodule=datamodule, verbose=False)
        assert len(task.test_decodings) == len(datamodule.utterances)
    assert all(isinstance(decoded, DecodedUtterance) for decoded in task.test_decodings)
    expected_references = [
        " ".join(fold([PHONES[i] for i in target.tolist()], 39)) for _, target in datamodule.utterances
    ]
    assert [decoded.reference for decoded in task.test_decodings] == expected_references
    for decoded in task.test_decodings:
        assert set(decoded.hypothesis.split()) <= set(TIMIT_39)
    # The logged PER is the one of the collected decodings, errors summed over the split.
    rescored = PhoneErrorRate()
    rescored.update(
        [d.hypothesis.split() for d in task.test_decodings],
        [d.reference.split() for d in task.test_decodings],
    )
    assert results[0]["test/per"] == pytest.approx(float(rescored.compute()))
    assert math.isfinite(results[0]["test/loss"])


def test_configure_optimizers_completes_the_partial_configs() -> None:
    scheduler = {"_target_": "torch.optim.lr_scheduler.StepLR", "_partial_": True, "step_size": 2}
    configured = make_task(scheduler=scheduler).configure_optimizers()
    assert isinstance(configured["optimizer"], torch.optim.Adam)
    assert isinstance(configured["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert isinstance(make_task().configure_optimizers(), torch.optim.Adam)


def test_the_task_rebuilds_from_its_hyperparameters() -> None:
    task = make_task("crnn", spec_augment={"_target_": "src.frontends.spec_augment.SpecAugment"})
    rebuilt = PhoneRecognitionTask(**task.hparams)
    rebuilt.load_state_dict(task.state_dict())
    assert rebuilt.phones == PHONES


@pytest.mark.parametrize("encoder", list(TINY_ENCODERS))
def test_complexity_counts_frontend_encoder_and_head_for_the_given_length(encoder: str) -> None:
    task = make_task(encoder)
    counts = task.complexity(16000)
    frames = 101
    assert counts["complexity/frontend_params"] == count_parameters(task.frontend) == 0
    assert counts["complexity/encoder_params"] == count_parameters(task.encoder) > 0
    assert counts["complexity/head_params"] == count_parameters(task.head) > 0
    assert counts["complexity/backbone_params"] == (
        counts["complexity/encoder_params"] + counts["complexity/head_params"]
    )
    # torch.stft is invisible to ptflops: the frontend adds its MACs analytically
    assert task.frontend.analytic_macs(16000) > 0
    assert counts["complexity/frontend_macs"] == (
        count_macs(task.frontend, (16000,)) + task.frontend.analytic_macs(16000)
    )
    assert counts["complexity/encoder_macs"] == count_macs(task.encoder, (40, frames))
    assert counts["complexity/head_macs"] == count_macs(task.head, (frames, task.encoder.out_features))
    assert counts["complexity/backbone_macs"] == (
        counts["complexity/encoder_macs"] + counts["complexity/head_macs"]
    )
    assert (
        counts["complexity/total_macs"]
        == counts["complexity/frontend_macs"] + counts["complexity/backbone_macs"]
    )
    assert counts["complexity/total_params"] == counts["complexity/backbone_params"]
    assert task.complexity(32000)["complexity/backbone_macs"] > counts["complexity/backbone_macs"]


def test_complexity_counts_every_lstm_mac_of_the_bilstm() -> None:
    task = make_task("bilstm")  # one bidirectional layer of 8 units per direction, 40 mels, 62 outputs
    lstm = (4 * 8 * 40 + 4 * 8 * 8 + 2 * 4 * 8) * 101 * 2
    classifier = 101 * (16 * 62 + 62)
    counts = task.complexity(16000)
    assert (counts["complexity/encoder_macs"], counts["complexity/head_macs"]) == (lstm, classifier)
    assert counts["complexity/backbone_macs"] == lstm + classifier


def test_an_empty_phone_set_fails_clearly() -> None:
    with pytest.raises(ValueError, match="label_names must list the training phone set"):
        PhoneRecognitionTask(
            frontend=LOGMEL,
            encoder=encoder_config("bilstm"),
            head=frame_head(),
            label_names=[],
            example_samples=SAMPLE_RATE,
            optimizer=ADAM,
        )


def test_an_encoder_that_collapses_time_is_refused_naming_the_model_choice() -> None:
    with pytest.raises(ValueError, match=r"CTC needs one output per frame: choose model=lstm"):
        make_task("linear")
