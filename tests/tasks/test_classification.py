"""Tests for ``ClassificationTask``: true lengths reach the recurrent encoders, the head is sized from the
encoder and the classes, standardisation statistics come from the training split only and travel in the
checkpoint, SpecAugment acts in training only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hydra.errors import InstantiationException

from src.encoders.conv1d import Conv1dCNN
from src.frontends.standardization import FeatureStandardizer
from src.tasks.classification import ClassificationTask
from src.tasks.heads import ClipClassifierHead

SAMPLE_RATE = 16000
CLASSES = ["a", "b", "c"]
LOGMEL = {"_target_": "src.frontends.log_mel.LogMelFilterBanks", "n_mels": 20}
LSTM = {"_target_": "src.encoders.recurrent.RecurrentEncoder", "cell": "lstm", "hidden_size": 16}
CONV1D = {"_target_": "src.encoders.conv1d.Conv1dCNN", "channels": [8, 16]}
MEAN_HEAD = {"_target_": "src.tasks.heads.ClipClassifierHead", "_partial_": True, "pooling": "mean"}
LAST_HEAD = {**MEAN_HEAD, "pooling": "last"}
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}
SPEC_AUGMENT = {
    "_target_": "src.frontends.spec_augment.SpecAugment",
    "freq_mask_param": 10,
    "num_freq_masks": 2,
}


def make_task(encoder: dict, head: dict = MEAN_HEAD, **kwargs: object) -> ClassificationTask:
    torch.manual_seed(0)
    return ClassificationTask(
        frontend=LOGMEL,
        encoder=encoder,
        head=head,
        label_names=CLASSES,
        example_samples=SAMPLE_RATE,
        optimizer=ADAM,
        **kwargs,
    ).eval()


def test_encoder_and_head_are_sized_from_the_frontend_and_the_classes() -> None:
    task = make_task(CONV1D)
    assert isinstance(task.encoder, Conv1dCNN) and isinstance(task.head, ClipClassifierHead)
    assert task.encoder.features[0].in_channels == 20  # n_mels of the frontend
    assert (task.head.classifier.in_features, task.head.classifier.out_features) == (16, len(CLASSES))
    assert (task.monitor, task.mode, task.test_metric, task.test_mode) == (
        "val/acc",
        "max",
        "test/acc",
        "max",
    )


def test_padding_after_the_true_length_does_not_change_a_recurrent_model() -> None:
    task = make_task(LSTM, LAST_HEAD)
    clip = torch.randn(1, 12000) * 0.1
    short = torch.nn.functional.pad(clip, (0, 4000))
    long = torch.nn.functional.pad(clip, (0, 20000))
    lengths = torch.tensor([12000])
    with torch.no_grad():
        torch.testing.assert_close(task(short, lengths), task(long, lengths))
        # without the lengths the padding is read as signal
        assert not torch.allclose(task(short), task(long))


def test_the_encoder_reads_the_frame_lengths_of_the_frontend_hop() -> None:
    task = make_task(LSTM, LAST_HEAD)
    seen = []
    task.encoder.register_forward_hook(lambda module, args, output: seen.append(args[1].tolist()))
    with torch.no_grad():
        task(torch.randn(4, 16000) * 0.1, torch.tensor([16000, 12000, 1, 0]))
    assert seen == [[101, 76, 1, 1]]  # 1 + samples // 160, clamped to [1, frames]


def _batches(scale: float, offset: float) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(int(offset))
    waves = torch.randn(4, SAMPLE_RATE, generator=generator) * scale
    lengths = torch.tensor([16000, 8000, 12000, 16000])
    waves[1, 8000:] = 0
    waves[2, 12000:] = 0
    return [(waves, lengths, torch.tensor([0, 1, 2, 0]))]


def test_standardisation_statistics_come_from_the_training_split_only() -> None:
    task = make_task(CONV1D, standardize_features=True)
    train, val = _batches(0.5, 1), _batches(0.01, 2)
    datamodule = SimpleNamespace(train_dataloader=lambda: train, val_dataloader=lambda: val)
    task.trainer = SimpleNamespace(datamodule=datamodule)  # what on_fit_start reads
    task.on_fit_start()

    waves, lengths, _ = train[0]
    features, frames = task.frontend(waves, lengths)
    real = torch.cat([features[i, :, : frames[i]] for i in range(len(frames))], dim=1).double()
    torch.testing.assert_close(task.standardizer.mean, real.mean(dim=1).float())
    torch.testing.assert_close(task.standardizer.std, real.std(dim=1, correction=0).float())
    assert int(task.standardizer.frames_seen) == int(frames.sum())

    restored = make_task(CONV1D, standardize_features=True)
    restored.load_state_dict(task.state_dict())  # what a checkpoint carries
    assert restored.standardizer.fitted
    torch.testing.assert_close(restored.standardizer.mean, task.standardizer.mean)
    restored.trainer = SimpleNamespace(datamodule=SimpleNamespace(train_dataloader=lambda: val))
    restored.on_fit_start()  # resuming: the statistics are not measured again
    torch.testing.assert_close(restored.standardizer.mean, task.standardizer.mean)


def test_standardizer_refuses_to_run_unfitted() -> None:
    with pytest.raises(RuntimeError, match="no statistics yet"):
        FeatureStandardizer(4)(torch.zeros(1, 4, 3))


def test_spec_augment_masks_training_features_only() -> None:
    task = make_task(CONV1D, spec_augment=SPEC_AUGMENT)
    waves, lengths, _ = _batches(0.5, 3)[0]
    clean, _ = task.frontend(waves, lengths)
    task.train()
    torch.manual_seed(1)
    masked = task.spec_augment(clean)
    assert not torch.equal(masked, clean)
    # the encoder reads the masked features in training ...
    seen = []
    task.encoder.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    torch.manual_seed(1)
    task(waves, lengths)
    torch.testing.assert_close(seen[-1], masked, rtol=0, atol=0)
    # ... and the clean ones in evaluation
    task.eval()
    with torch.no_grad():
        task(waves, lengths)
    torch.testing.assert_close(seen[-1], clean, rtol=0, atol=0)


def test_a_misspelt_spec_augment_key_fails() -> None:
    with pytest.raises(InstantiationException, match="freq_masks"):
        make_task(CONV1D, spec_augment={**SPEC_AUGMENT, "freq_masks": 2})


def test_the_task_rebuilds_from_its_hyperparameters() -> None:
    task = make_task(LSTM, LAST_HEAD, spec_augment=SPEC_AUGMENT, standardize_features=True)
    rebuilt = ClassificationTask(**task.hparams)
    rebuilt.load_state_dict(task.state_dict())
    assert rebuilt.class_names == CLASSES
    waves, lengths, _ = _batches(0.5, 4)[0]
    task.standardizer.fit([task.frontend(waves, lengths)])
    rebuilt.load_state_dict(task.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(waves, lengths), task(waves, lengths))


def test_no_classes_fail_clearly() -> None:
    with pytest.raises(ValueError, match="label_names must list the classes"):
        ClassificationTask(
            frontend=LOGMEL,
            encoder=CONV1D,
            head=MEAN_HEAD,
            label_names=[],
            example_samples=16000,
            optimizer=ADAM,
        )
