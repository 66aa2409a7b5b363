"""Shared fixtures: a tiny generated corpus (made once per session) and composed configs that
write everything into temporary folders and train on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from src.data.speech_commands.corpus import ensure_generated_corpus
from src.data.timit.corpus import ensure_generated_corpus as ensure_timit_corpus
from src.resolvers import register_resolvers

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"
REAL_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "speech_commands_v0.01_sample"
# Small enough to generate in seconds, large enough that every split holds yes and no clips.
TINY_CORPUS_SPEAKERS = 24
# 16 training, 8 development and 8 core test utterances.
TINY_TIMIT_SPEAKERS = {"num_train_speakers": 2, "num_dev_speakers": 1, "num_core_speakers": 1}
# The shortest real fit: one batch of each stage, so checkpoints are written (fast_dev_run writes none).
ONE_BATCH_FIT = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=1",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
]


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


def compose_config(config_name: str, overrides: list[str], mode: RunMode = RunMode.RUN) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as Hydra would, with Hydra's runtime values set so
    ``${hydra:...}`` interpolations resolve, as a job of a single run or (``mode=RunMode.MULTIRUN``) of a
    sweep; the ``hydra`` node itself is removed."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    cfg.hydra.mode = mode
    if mode == RunMode.MULTIRUN:
        cfg.hydra.job.num = 0  # the launcher numbers a sweep's jobs
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture(scope="session")
def tiny_timit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a generated TIMIT-format corpus (``TIMIT/``) with few speakers."""
    root = tmp_path_factory.mktemp("generated_timit")
    ensure_timit_corpus(root, **TINY_TIMIT_SPEAKERS, seed=0, num_workers=2)
    return root


def experiment_choice(experiment: str, group: str = "data") -> str | None:
    """The ``group`` choice (e.g. ``data``) of ``conf/experiment/<experiment>.yaml``, or of the experiment
    files it extends (the last one listed wins); ``None`` when none makes one."""
    chosen = None
    for entry in OmegaConf.load(CONFIG_DIR / "experiment" / f"{experiment}.yaml").get("defaults", []):
        if isinstance(entry, str) and entry != "_self_":
            chosen = experiment_choice(entry, group) or chosen
        elif OmegaConf.is_dict(entry) and f"override /{group}" in entry:
            chosen = entry[f"override /{group}"]
    return chosen


def uses_timit(overrides: Sequence[str]) -> bool:
    """Whether ``overrides`` select the TIMIT data (directly, as the speech of ``data=denoising``, or through
    an experiment file)."""
    experiments = [o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")]
    timit = ("data=timit", "data/speech=timit")
    return any(o in timit for o in overrides) or any(
        experiment_choice(name) == "timit" for name in experiments
    )


def speech_node(overrides: Sequence[str]) -> str:
    """The config node of the speech corpus of a config with ``overrides``: ``data``, or ``data.speech``
    for data built on another data module's speech (whose data config has a ``speech`` default, e.g.
    ``data=denoising``, ``data=speaker_verification``)."""
    experiments = [o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")]
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("data=")]
    chosen += [name for name in map(experiment_choice, experiments) if name]
    for name in chosen:
        defaults = OmegaConf.load(CONFIG_DIR / "data" / f"{name}.yaml").get("defaults", [])
        if any(OmegaConf.is_dict(entry) and "speech" in entry for entry in defaults):
            return "data.speech"
    return "data"


def tiny_data(corpus_root: Path, overrides: Sequence[str]) -> list[str]:
    """Overrides that point the data of a config with ``overrides`` at ``corpus_root``, a tiny corpus of
    the kind they select (TIMIT or keywords), with the generator settings it was made with."""
    node = speech_node(overrides)
    if uses_timit(overrides):
        generator = [f"{node}.generator.{key}={value}" for key, value in TINY_TIMIT_SPEAKERS.items()]
    else:
        generator = [f"{node}.generator.num_speakers={TINY_CORPUS_SPEAKERS}"]
    return [f"{node}.root={corpus_root}", *generator]


def tiny_data_overrides(overrides: Sequence[str], request: pytest.FixtureRequest) -> list[str]:
    """:func:`tiny_data` for the session's tiny corpus of the kind ``overrides`` select."""
    root = request.getfixturevalue("tiny_timit_root" if uses_timit(overrides) else "tiny_corpus_root")
    return tiny_data(root, overrides)


@pytest.fixture
def make_config(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_config(*overrides, config_name="config", run="run", trainer="fast_dev_run",
    mode=RunMode.RUN)``: a config on the tiny corpus (keyword or TIMIT, as the overrides ask) whose
    outputs go to ``tmp_path/<run>``, composed for a single run or a sweep job (``mode``)."""

    def make(
        *overrides: str,
        config_name: str = "config",
        run: str = "run",
        trainer: str = "fast_dev_run",
        mode: RunMode = RunMode.RUN,
    ) -> DictConfig:
        base = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / run}", f"trainer={trainer}"]
        if config_name == "config":
            base += tiny_data_overrides(overrides, request)
        return compose_config(config_name, base + list(overrides), mode=mode)

    return make
