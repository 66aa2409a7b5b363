"""A short-trained keyword checkpoint shared by the deployment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.training import train
from tests.conftest import ONE_BATCH_FIT, compose_config, tiny_data_overrides


@pytest.fixture(scope="session")
def yesno_checkpoint(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """``last.ckpt`` of one batch of training of the default job (YES/NO, log-mel, Conv1d CNN) on the tiny
    generated corpus."""
    root = tmp_path_factory.mktemp("deployment_checkpoint")
    paths = [f"paths.root_dir={root}", f"paths.output_dir={root / 'run'}", "trainer=cpu"]
    summary = train(compose_config("config", [*paths, *tiny_data_overrides([], request), *ONE_BATCH_FIT]))
    return Path(summary["last_checkpoint"])
