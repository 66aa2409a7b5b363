"""The report: its questions come from the jobs' config, it works whatever the first sweep scores, it
draws the frontend figure from the first sweep's data or says why not, and it leaves out sweeps without
logs or without a successful job."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.reporting.sweep_report import (
    DEFAULT_SWEEPS,
    comparison_example,
    default_sweeps,
    main,
    write_report,
)
from src.reporting.sweep_table import aggregate_sweep
from tests.reporting.sweep_folders import (
    CLIP_DATA,
    failed_summary,
    job_config,
    job_summary,
    write_job,
    write_per_sweep,
)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def write_groups_sweep(sweep: Path, question: str, data: dict | None = None) -> None:
    """model.groups 1 and 2 with seeds 1 and 2, accuracy 0.9 and 0.8."""
    for num, (groups, accuracy) in enumerate([(1, 0.91), (1, 0.89), (2, 0.81), (2, 0.79)]):
        overrides = [f"model.groups={groups}", f"seed={num % 2 + 1}", "experiment=groups_sweep"]
        write_job(sweep, num, overrides, job_summary(accuracy), config=job_config(question, data))


def test_a_report_whose_first_sweep_is_phone_recognition(tmp_path: Path) -> None:
    timit = tmp_path / "logs" / "timit_like" / "multiruns" / "t"
    write_per_sweep(timit, question="Which n_mels for phones?")
    (timit / "multirun.yaml").write_text(
        OmegaConf.to_yaml({"hydra": {"overrides": {"task": ["experiment=timit_like", "seed=1,2"]}}})
    )
    # named like an experiment file whose comments state another question: the job config's counts
    groups = tmp_path / "logs" / "nmels_sweep" / "multiruns" / "t"
    write_groups_sweep(groups, "The question in the job config?")
    output = tmp_path / "report"

    sweeps = ["--sweep", f"timit_like={timit}", "--sweep", f"nmels_sweep={groups}"]
    assert main([*sweeps, "--output", str(output)]) == 0

    report = (output / "REPORT.md").read_text()
    timit_section, groups_section = report.split("## timit_like")[1].split("## nmels_sweep")
    assert "\n\nWhich n_mels for phones?\n\n" in timit_section
    assert "TIMIT phones, 61 trained, scored on 39" in timit_section
    assert "By test phone error rate (lower is better), `frontend.n_mels=40` is first with 0.2000" in (
        timit_section
    )
    assert "| frontend.n_mels | seeds | test per | best val per |" in timit_section
    assert "![test_per_vs_n_mels](timit_like/test_per_vs_n_mels.png)" in timit_section
    assert "\n\nThe question in the job config?\n\n" in groups_section
    assert "How many mel bands" not in report
    assert "By test accuracy (higher is better, 40 clips), `model.groups=1` is first" in groups_section
    assert (
        "`val/per_best` (lower is better) in timit_like; `val/acc_best` (higher is better) in nmels_sweep"
        in (report)
    )
    assert "python train.py -m experiment=timit_like seed=1,2\n" in report  # from multirun.yaml
    assert "python train.py -m experiment=groups_sweep model.groups=1,2 seed=1,2\n" in report  # from the jobs
    assert "difference, on `tone.wav`, the first test example of the data of timit_like:" in report
    assert "![logmel vs torchaudio](logmel_vs_torchaudio.png)" in report
    assert (output / "logmel_vs_torchaudio.png").read_bytes().startswith(b"\x89PNG")
    assert (output / "REPORT.pdf").read_bytes().startswith(b"%PDF")
    conclusions = (output / "timit_like" / "conclusions.md").read_text()
    assert conclusions.startswith("# timit_like\n\nWhich n_mels for phones?\n")
    assert (
        "- By best validation phone error rate (lower is better), `frontend.n_mels=40` is first"
        in conclusions
    )
    assert (output / "nmels_sweep" / "conclusions.md").is_file()


def test_the_comparison_example_is_the_first_test_example_of_the_jobs_data_without_padding(
    tmp_path: Path,
) -> None:
    write_per_sweep(tmp_path)
    waveform, sample_rate, name = comparison_example(aggregate_sweep("s", [tmp_path]))
    assert (waveform.shape, sample_rate, name) == ((16000,), 16000, "tone.wav")  # one second of two


def test_the_frontend_figure_is_left_out_with_its_reason_when_the_data_cannot_be_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_groups_sweep(
        tmp_path / "sweep", "Q?", {**CLIP_DATA, "_target_": "tests.reporting.NoSuchDataModule"}
    )
    with caplog.at_level(logging.WARNING):
        assert write_report({"groups": [tmp_path / "sweep"]}, tmp_path / "report")
    report = (tmp_path / "report" / "REPORT.md").read_text()
    assert "Left out: no example from the data of groups: InstantiationException" in report
    assert (
        "![logmel vs torchaudio]" not in report
        and not (tmp_path / "report" / "logmel_vs_torchaudio.png").exists()
    )
    assert "Left the log-mel vs torchaudio figure out of the report" in caplog.text
    assert (tmp_path / "report" / "REPORT.pdf").is_file()


def test_sweeps_without_logs_or_without_a_successful_job_are_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_groups_sweep(tmp_path / "good", "Q?")
    (tmp_path / "empty").mkdir()
    write_job(tmp_path / "failed", 0, ["seed=1"], failed_summary("RuntimeError: out of memory"))
    sweeps = {"good": [tmp_path / "good"], "empty": [tmp_path / "empty"], "failed": [tmp_path / "failed"]}
    with caplog.at_level(logging.WARNING):
        assert not write_report(sweeps, tmp_path / "report")  # a job failed
    report = (tmp_path / "report" / "REPORT.md").read_text()
    assert "## good" in report and "## empty" not in report and "## failed" not in report
    assert "holds no job folders" in caplog.text and "no job of failed succeeded" in caplog.text
    assert "out of memory" in (tmp_path / "report" / "failed" / "results.csv").read_text()


def test_default_sweeps_skip_those_never_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert DEFAULT_SWEEPS[-3:] == ("denoising_sweep", "speaker_frontends", "speaker_objectives")
    multirun = tmp_path / "nmels_sweep" / "multiruns" / "t"
    write_groups_sweep(multirun, "Q?")
    (multirun / "multirun.yaml").write_text("{}\n")
    with caplog.at_level(logging.WARNING):
        assert default_sweeps(tmp_path) == {"nmels_sweep": [multirun]}
    assert "No full multirun of lowrank_sweep" in caplog.text


@pytest.mark.parametrize(
    "path",
    sorted((CONF_DIR / "experiment").glob("*.yaml")) + sorted((CONF_DIR / "hparams_search").glob("*.yaml")),
)
def test_every_experiment_and_search_states_its_question(path: Path) -> None:
    question = OmegaConf.load(path).get("question")
    assert isinstance(question, str) and question.strip().endswith("?"), path.name
