"""Sweeps as a user runs them: every sweep experiment, its aggregated table and plots, the report, a
failing job, the parallel launcher, the full grid of the design card, the Optuna search."""

from __future__ import annotations

import csv
import math
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.conftest import CONFIG_DIR, run_python, tiny_data, uses_timit

PLOTS_PER_SWEPT_KEY = ("test_acc", "epoch_time", "params", "macs")


def sweep_experiments() -> list[str]:
    """Experiment files that define a sweep (``hydra.sweeper.params``)."""
    return sorted(
        path.stem
        for path in (CONFIG_DIR / "experiment").glob("*.yaml")
        if OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params") is not None
    )


# Sweeps whose smoke run needs more than fast_dev_run, with a smaller grid: lowrank_sweep's SVD jobs start
# from checkpoints, which fast_dev_run does not write.
SMOKE_OVERRIDES = {
    "lowrank_sweep": [
        "model=mlp",
        "model.hidden=[16]",
        "compression.rank=5,full",
        "trainer.fast_dev_run=false",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
        "+trainer.limit_test_batches=1",
    ]
}


def swept_values(experiment: str) -> dict[str, list[str]]:
    """The values of each key that ``experiment`` varies (with the experiment files it extends), but the
    seeds: the swept columns of its table (a key given one value is fixed)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = {
        key: [value.strip() for value in str(values).split(",")]
        for key, values in cfg.hydra.sweeper.params.items()
        if key != "seed"
    }
    for override in SMOKE_OVERRIDES.get(experiment, []):
        key, _, values = override.partition("=")
        if key in params:
            params[key] = values.split(",")
    return {key: values for key, values in params.items() if len(values) > 1}


def normalised(value: str) -> str:
    """A swept value as it reads in the config or the table: ``3e-4`` and ``0.0003`` alike, booleans
    (which Hydra writes as ``True``) and ``null`` in lower case."""
    for parse in (int, float):
        try:
            return repr(parse(value))
        except ValueError:
            pass
    return value.lower()


def run_sweep(project_root: Path, corpus_root: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``train.py -m`` on the tiny keyword corpus with ``fast_dev_run``, everything written under
    ``project_root``; with ``data=timit`` (or its experiment), ``corpus_root`` is a tiny TIMIT corpus."""
    return run_python(
        "train.py",
        "-m",
        "trainer=fast_dev_run",
        *tiny_data(corpus_root, overrides),
        *overrides,
        project_root=project_root,
        timeout=900,
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def sweep_folder(project_root: Path, name: str) -> Path:
    """The one multirun folder of sweep ``name`` under ``project_root``: where its table and plots go."""
    (folder,) = (project_root / "logs" / name / "multiruns").glob("*/multirun.yaml")
    return folder.parent


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def swept_project(
    tmp_path_factory: pytest.TempPathFactory, tiny_corpus_root: Path, tiny_timit_root: Path
) -> Callable[[str], Path]:
    """``swept_project(experiment)``: the project folder in which ``experiment`` ran with seeds 1 and 2
    (each sweep runs once, when first asked for)."""
    root = tmp_path_factory.mktemp("project")
    done: set[str] = set()

    def swept(experiment: str) -> Path:
        if experiment not in done:
            override = f"experiment={experiment}"
            corpus = tiny_timit_root if uses_timit([override]) else tiny_corpus_root
            result = run_sweep(root, corpus, override, "seed=1,2", *SMOKE_OVERRIDES.get(experiment, []))
            assert result.returncode == 0, output(result)
            done.add(experiment)
        return root

    return swept


def test_the_committed_sweeps_are_experiment_files() -> None:
    assert {"nmels_sweep", "groups_sweep"} <= set(sweep_experiments())
    assert swept_values("nmels_sweep") == {"frontend.n_mels": ["20", "40", "80"]}
    assert swept_values("groups_sweep") == {"model.groups": ["1", "2", "4", "8", "16"]}


@pytest.mark.parametrize("experiment", sweep_experiments())
def test_every_sweep_experiment_is_aggregated_with_its_plots(
    swept_project: Callable[[str], Path], experiment: str
) -> None:
    results = sweep_folder(swept_project(experiment), experiment)
    rows = read_rows(results / "results.csv")
    swept = swept_values(experiment)
    assert len(rows) == math.prod(len(values) for values in swept.values())
    for key, values in swept.items():
        assert sorted({normalised(row[key]) for row in rows}) == sorted(map(normalised, values))
    assert all(row["status"] == "ok" and row["seeds"] == "1 2" and row["runs"] == "2" for row in rows)
    assert all(int(row["backbone_params"]) > 0 for row in rows)
    markdown = (results / "results.md").read_text()
    timit = uses_timit([f"experiment={experiment}"])
    denoising = "test_si_sdr_i_mean" in rows[0]
    verification = "test_eer_mean" in rows[0]
    if timit:
        assert all(float(row["test_per_mean"]) >= 0 and float(row["val_per_best_mean"]) >= 0 for row in rows)
        assert "| test per |" in markdown and "test acc" not in markdown  # no empty accuracy columns
        assert "MACs per forward pass of one second of audio" in markdown
    elif denoising:
        assert "| test si_sdr_i | best val si_sdr_i |" in markdown and "@0dB" not in markdown
        by_snr = (results / "results_by_snr.md").read_text()
        assert "## SI-SDR improvement (dB), by input SNR" in by_snr
        for row in ("| wiener |", "| spectral_subtraction |", "| noisy: its own SI-SDR (dB) |"):
            assert row in by_snr
    elif verification:
        assert all(0 <= float(row["test_eer_mean"]) <= 1 for row in rows)
        assert "| test eer | best val eer |" in markdown and "test acc" not in markdown
    else:
        assert all(
            0 <= float(row["test_acc_mean"]) <= 1 and 0 <= float(row["test_macro_f1_mean"]) <= 1
            for row in rows
        )
        assert "| test acc | best val acc |" in markdown and "MACs per forward pass of one clip" in markdown
    numeric = [key for key, values in swept.items() if all(value.isdigit() for value in values)]
    test_plot = (
        "test_per" if timit else "test_si_sdr_i" if denoising else "test_eer" if verification else "test_acc"
    )
    plots = (test_plot, *PLOTS_PER_SWEPT_KEY[1:])
    expected = {"train_loss.png"} | {
        f"{name}_vs_{key.rsplit('.', 1)[-1]}.png" for key in numeric for name in plots
    }
    if denoising:
        expected.add("si_sdr_improvement_by_snr.png")
    if verification:
        expected.add("det_curves.png")
    if "model" in swept and test_plot == "test_acc":  # each model's best configuration, side by side
        expected.add("confusion_matrices.png")
    assert expected <= {path.name for path in results.glob("*.png")}
    assert "Not a result" in markdown


def test_report_gathers_setup_tables_plots_and_conclusions(swept_project: Callable[[str], Path]) -> None:
    for experiment in sweep_experiments():
        project = swept_project(experiment)
    report_dir = project / "report"
    result = run_python(
        "-m",
        "src.reporting.sweep_report",
        "--logs",
        str(project / "logs"),
        "--output",
        str(report_dir),
        project_root=project,
        timeout=900,
    )
    assert result.returncode == 0, output(result)
    report = (report_dir / "REPORT.md").read_text()
    for heading in ("## Setup", "## nmels_sweep", "## groups_sweep", "Conclusions, computed from the table"):
        assert heading in report
    assert "## timit_trainable_settings" in report and "TIMIT phones, 61 trained, scored on 39" in report
    assert "test phone error rate over every n_mels and seed, setting A" in report
    assert "Every number here was measured on the generated corpus" in report
    assert "| model.groups | seeds |" in report
    images = [line.split("](", 1)[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert "logmel_vs_torchaudio.png" in images and "groups_sweep/macs_vs_groups.png" in images
    assert all((report_dir / image).is_file() for image in images)
    assert (report_dir / "REPORT.pdf").read_bytes().startswith(b"%PDF")


def test_a_failing_job_is_a_row_and_the_sweep_exits_non_zero(tmp_path: Path, tiny_corpus_root: Path) -> None:
    result = run_sweep(tmp_path, tiny_corpus_root, "experiment=groups_sweep", "model.groups=2,3", "seed=1")
    assert result.returncode == 1, output(result)
    assert "1 of 2 jobs of sweep groups_sweep did not succeed" in result.stderr + result.stdout
    rows = read_rows(sweep_folder(tmp_path, "groups_sweep") / "results.csv")
    assert [(row["model.groups"], row["status"]) for row in rows] == [("2", "ok"), ("3", "failed")]
    assert "model.groups=3 does not divide the channel widths" in rows[1]["error"]


def test_joblib_launcher_runs_the_jobs_in_parallel(tmp_path: Path, tiny_corpus_root: Path) -> None:
    overrides = [
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "frontend.n_mels=20,40",
        "seed=1",
        "task_name=par",
    ]
    result = run_sweep(tmp_path, tiny_corpus_root, *overrides)
    assert result.returncode == 0, output(result)
    assert "Joblib.Parallel(n_jobs=2,backend=loky,prefer=processes" in result.stdout + result.stderr
    rows = read_rows(sweep_folder(tmp_path, "par") / "results.csv")
    assert [(row["frontend.n_mels"], row["status"]) for row in rows] == [("20", "ok"), ("40", "ok")]


@pytest.mark.parametrize("model", [[], ["model=bcresnet"]], ids=["conv1d", "bcresnet"])
def test_design_card_grid_runs_as_written(tmp_path: Path, tiny_corpus_root: Path, model: list[str]) -> None:
    grid = [*model, "frontend.n_mels=20,40,80", "model.groups=1,2,4,8,16"]
    result = run_sweep(tmp_path, tiny_corpus_root, *grid, "seed=1")
    assert result.returncode == 0, output(result)
    rows = read_rows(sweep_folder(tmp_path, "train") / "results.csv")
    assert len(rows) == 15 and {row["status"] for row in rows} == {"ok"}
    params = {(row["frontend.n_mels"], row["model.groups"]): int(row["backbone_params"]) for row in rows}
    assert params[("40", "16")] < params[("40", "4")] < params[("40", "1")]
    assert (sweep_folder(tmp_path, "train") / "epoch_time_vs_groups.png").is_file()


@pytest.mark.parametrize(
    ("search", "params"),
    [
        ("conv1d_optuna", {"optimizer.lr", "model.channels"}),
        (
            "rnn_optuna",
            {"optimizer", "optimizer.lr", "model.hidden_size", "model.num_layers", "model.dropout"},
        ),
    ],
)
def test_optuna_search_optimises_the_value_train_returns(
    tmp_path: Path, tiny_corpus_root: Path, search: str, params: set[str]
) -> None:
    result = run_sweep(tmp_path, tiny_corpus_root, f"hparams_search={search}", "hydra.sweeper.n_trials=2")
    assert result.returncode == 0, output(result)
    (results_file,) = (tmp_path / "logs" / search / "multiruns").glob("*/optimization_results.yaml")
    results = OmegaConf.load(results_file)
    assert set(results.best_params) == params
    assert 0 <= results.best_value <= 1


@pytest.mark.parametrize(
    ("launcher", "target"),
    [("joblib", "JoblibLauncher"), ("submitit_slurm", "SlurmLauncher"), ("slurm", "SlurmLauncher")],
)
def test_launcher_configs_compose(launcher: str, target: str) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(target)
    if launcher == "slurm":  # this project's settings on top of the plugin's submitit_slurm
        assert cfg.hydra.launcher.cpus_per_task == 4
        assert cfg.hydra.launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"
