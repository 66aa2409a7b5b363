"""``task.compile``: the encoder compiled in place trains, keeps the checkpoint's keys and eager's results.

Compiling costs about 10 s in a fresh process whatever the model (TorchInductor first checks the CPU's
vector instructions by building and loading small programs), so there is one compiled run, of a tiny
Conv1d CNN (two blocks of 8 channels over 16 mel bands) for two SGD steps, and its checkpoint is then
run eager and compiled side by side; ``benchmarks/compile_step.py`` measures the real models.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from src.tasks.base import FrontendEncoderTask
from src.tasks.classification import ClassificationTask
from src.training import train

TINY_RUN = [
    "model.channels=[8,8]",
    "frontend.n_mels=16",
    "optimizer=sgd",
    "data.batch_size=8",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
]
ATOL = 1e-5
"""Largest |difference| between eager and compiled logits, losses and gradients (float32 rounding)."""


def encoder_traces(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For every encoder call of the runs that follow, whether TorchDynamo was tracing it."""
    traced: list[bool] = []
    configure_model = FrontendEncoderTask.configure_model

    def configure_and_probe(task: FrontendEncoderTask) -> None:
        configure_model(task)
        task.encoder.register_forward_hook(
            lambda module, args, output: traced.append(torch.compiler.is_compiling())
        )

    monkeypatch.setattr(FrontendEncoderTask, "configure_model", configure_and_probe)
    return traced


def loss_and_gradients(task: FrontendEncoderTask, batch: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """The training loss of ``batch`` (in training mode, dropout seeded) and its gradients."""
    task.train()
    task.zero_grad()
    torch.manual_seed(0)
    loss = task.criterion(task(batch[0], batch[1]), batch[2])
    loss.backward()
    return [loss.detach(), *(p.grad for p in task.parameters() if p.grad is not None)]


def test_compiled_training_run_keeps_eager_keys_and_outputs(
    make_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    traced = encoder_traces(monkeypatch)
    summary = train(make_config(*TINY_RUN, "task.compile=true", trainer="cpu"))
    assert summary["status"] == "ok"
    assert any(traced), "task.compile=true did not compile the encoder"
    checkpoint = Path(summary["last_checkpoint"])
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert saved["hyper_parameters"]["compile"] is True
    # The same weights, as test.py and resuming load them: eager (strict load) and compiled.
    eager = ClassificationTask.load_from_checkpoint(checkpoint, map_location="cpu", compile=False)
    compiled = ClassificationTask.load_from_checkpoint(checkpoint, map_location="cpu")
    compiled.configure_model()
    assert list(eager.state_dict()) == list(saved["state_dict"]) == list(compiled.state_dict())
    traced.clear()
    generator = torch.Generator().manual_seed(0)
    batch = (
        0.1 * torch.randn(8, 16000, generator=generator),
        torch.full((8,), 16000),
        torch.randint(len(eager.class_names), (8,), generator=generator),
    )
    for expected, actual in zip(
        loss_and_gradients(eager, batch), loss_and_gradients(compiled, batch), strict=True
    ):
        torch.testing.assert_close(actual, expected, rtol=0, atol=ATOL)
    with torch.no_grad():
        torch.testing.assert_close(compiled.eval()(*batch[:2]), eager.eval()(*batch[:2]), rtol=0, atol=ATOL)
    assert any(traced), "the loaded task.compile=true checkpoint did not compile its encoder"


def test_compile_must_be_a_boolean(make_config: Callable[..., DictConfig]) -> None:
    with pytest.raises(ValueError, match=r"task\.compile must be true or false, got 'yes'"):
        train(make_config("task.compile=yes"))
