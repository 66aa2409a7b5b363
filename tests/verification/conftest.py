"""A short-trained speaker-verification run shared by the verification tests."""

from __future__ import annotations

import pytest

from src.training import train
from tests.conftest import compose_config, tiny_data_overrides

VERIFICATION = [
    "data=speaker_verification",
    "model.hidden_size=16",
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
]
"""A small job: BiGRU of 16 units per direction, two training batches; every validation and test trial of
the tiny corpus is scored."""


@pytest.fixture(scope="session")
def verification_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict:
    """The ``metrics.json`` content of a short ``data=speaker_verification`` run on the tiny generated
    corpus, TensorBoard logging on; its data root is ``summary["data_root"]``."""
    root = tmp_path_factory.mktemp("verification_run")
    overrides = [f"paths.root_dir={root}", f"paths.output_dir={root / 'run'}", "trainer=cpu", *VERIFICATION]
    tiny = tiny_data_overrides(overrides, request)
    summary = train(compose_config("config", [*overrides, *tiny]))
    return {**summary, "overrides": [*overrides, *tiny]}
