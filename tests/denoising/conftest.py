"""A short-trained denoising checkpoint shared by the denoising tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.training import train
from tests.conftest import ONE_BATCH_FIT, compose_config, tiny_data_overrides

DENOISING = ["data=denoising", "data.eval_clips=4", "data.batch_size=16", "model.hidden_size=16"]
"""A small denoising job: BiGRU of 16 units per direction, 4 clean clips per evaluation split (16 pairs:
one batch, so the one test batch of the fixture covers the test split)."""


@pytest.fixture(scope="session")
def denoising_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict:
    """The ``metrics.json`` content of one batch of training of ``data=denoising`` (BiGRU mask
    estimator, STFT n_fft 1024) on the tiny generated corpus, TensorBoard logging on."""
    root = tmp_path_factory.mktemp("denoising_checkpoint")
    paths = [f"paths.root_dir={root}", f"paths.output_dir={root / 'run'}", "trainer=cpu"]
    overrides = [*paths, *DENOISING]
    return train(
        compose_config("config", [*overrides, *tiny_data_overrides(overrides, request), *ONE_BATCH_FIT])
    )


@pytest.fixture(scope="session")
def denoising_checkpoint(denoising_run: dict) -> Path:
    """``last.ckpt`` of :func:`denoising_run`."""
    return Path(denoising_run["last_checkpoint"])
