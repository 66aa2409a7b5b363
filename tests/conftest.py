"""Shared fixtures: a tiny generated corpus (made once per session) and composed configs that
write everything into temporary folders and train on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from src.data.speech_commands_corpus import ensure_generated_corpus

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"
REAL_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "speech_commands_v0.01_sample"
# Small enough to generate in seconds, large enough that every split holds yes and no clips.
TINY_CORPUS_SPEAKERS = 24


# Skips a test unless the real Speech Commands sample sits in ../shared/data beside the repository.
requires_real_sample = pytest.mark.skipif(
    not REAL_SAMPLE.is_dir(), reason=f"the real Speech Commands sample is not at {REAL_SAMPLE}"
)


def run_python(*args: str, project_root: Path | None = None, timeout: int) -> subprocess.CompletedProcess:
    """``python <args>`` from the repository as a user runs it; ``project_root`` replaces the repository as
    the folder that holds data/, logs/ and sweep_results/. The exit status is the caller's to check."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("PROJECT_ROOT", None)
    if project_root is not None:
        env["PROJECT_ROOT"] = str(project_root)
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=timeout
    )


def choices(group: str) -> list[str]:
    """The config files of ``conf/<group>/``, by name."""
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.fixture(scope="session")
def tiny_corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``SpeechCommands/speech_commands_v0.02`` generated with few speakers."""
    root = tmp_path_factory.mktemp("generated")
    ensure_generated_corpus(root, num_speakers=TINY_CORPUS_SPEAKERS, seed=0, num_workers=2)
    return root


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as Hydra would, with Hydra's runtime values set so
    ``${hydra:...}`` interpolations resolve; the ``hydra`` node itself is removed."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture
def make_config(tiny_corpus_root: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_config(*overrides, config_name="config", run="run", trainer="fast_dev_run")``: a
    config on the tiny corpus whose outputs go to ``tmp_path/<run>``."""

    def make(
        *overrides: str, config_name: str = "config", run: str = "run", trainer: str = "fast_dev_run"
    ) -> DictConfig:
        base = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / run}", f"trainer={trainer}"]
        if config_name == "config":
            base += [f"data.root={tiny_corpus_root}", f"data.generator.num_speakers={TINY_CORPUS_SPEAKERS}"]
        return compose_config(config_name, base + list(overrides))

    return make
