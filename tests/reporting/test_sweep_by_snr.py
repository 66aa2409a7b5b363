"""Scores by input SNR: a row per configuration of the model and per baseline at the keys its scores depend
on, mean ± std from the fake jobs' values, the plot's lines, the conclusions per SNR, the main table left
without the per-SNR columns, the report's section; nothing of it for a sweep without per-SNR scores."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from src.reporting.aggregate_sweep import write_sweep
from src.reporting.sweep_by_snr import MODEL, depends_on, metric_name, snr_table
from src.reporting.sweep_conclusions import snr_conclusions
from src.reporting.sweep_plots import plot_score_by_snr
from src.reporting.sweep_report import write_report
from src.reporting.sweep_table import aggregate_sweep
from tests.reporting.sweep_folders import CORPUS_NOTE, TONE_DATA, job_config, job_summary, write_job

SNRS = (0, 5, 10, 15)
DENOISING = {
    "test_metric": "test/si_sdr_i",
    "test_metric_mode": "max",
    "monitor": "val/si_sdr_i",
    "monitor_mode": "max",
    "best_metric": "val/si_sdr_i_best",
}
# SI-SDR improvement at input SNR s: the model's a - 0.2 s (seed 1: 0.5 less, seed 2: 0.5 more, so the std
# over seeds is sqrt(0.5)); a baseline's a - b s in every job of its n_fft.
MODEL_START = {("bigru", 512): 6.0, ("bigru", 1024): 5.0, ("tcn", 512): 4.0, ("tcn", 1024): 3.0}
BASELINES = {"wiener": ({512: 8.0, 1024: 7.0}, 0.7), "spectral_subtraction": ({512: 3.0, 1024: 2.5}, 0.3)}
SEED_OFFSET = {1: -0.5, 2: 0.5}
PESQ_REASON = "the pesq package is not installed"
NESTED_DATA = {
    "_target_": TONE_DATA,
    "speech": {"_target_": TONE_DATA, "corpus": "generated", "words": ["yes", "no"], "clip_seconds": 1.0},
    "batch_size": 32,
}


def with_overall(scores: dict[float, float]) -> dict[float | None, float]:
    """Per-SNR values and their mean over all SNRs (equal pairs per SNR), under None."""
    return {**scores, None: sum(scores.values()) / len(scores)}


def denoising_metrics(model: str, n_fft: int, seed: int) -> dict[str, float]:
    """The test metrics a denoising job logs, with the values above; PESQ could not be scored (NaN)."""
    values: dict[str, float] = {}

    def put(method: str, score: str, by_snr: dict[float, float]) -> None:
        for snr_db, value in with_overall(by_snr).items():
            values[metric_name(method, score, snr_db)] = value

    start = MODEL_START[model, n_fft] + SEED_OFFSET[seed]
    put(MODEL, "si_sdr_i", {s: start - 0.2 * s for s in SNRS})
    put(MODEL, "si_sdr", {s: start - 0.2 * s + s + 0.25 for s in SNRS})
    put(MODEL, "snr_i", {s: 1.0 for s in SNRS})
    put(MODEL, "pesq_i", {s: math.nan for s in SNRS})
    for method, (starts, slope) in BASELINES.items():
        put(method, "si_sdr_i", {s: starts[n_fft] - slope * s for s in SNRS})
        put(method, "snr_i", {s: 2.0 for s in SNRS})
        put(method, "pesq_i", {s: math.nan for s in SNRS})
    put("noisy", "si_sdr", {s: s + 0.25 for s in SNRS})
    put("noisy", "snr", {s: float(s) for s in SNRS})
    put("noisy", "pesq", {s: math.nan for s in SNRS})
    return values


def write_denoising_sweep(sweep: Path, data: dict | None = None) -> None:
    """model bigru, tcn x frontend.n_fft 512, 1024 x seeds 1, 2: eight jobs."""
    num = 0
    for model, n_fft in MODEL_START:
        for seed in SEED_OFFSET:
            summary = job_summary(math.nan, scoring=DENOISING)
            summary["metrics"].update(denoising_metrics(model, n_fft, seed))
            summary["test_analysis"] = {"input_snr_db": list(SNRS), "pesq_unavailable": PESQ_REASON}
            overrides = [f"model={model}", f"frontend.n_fft={n_fft}", f"seed={seed}"]
            config = job_config("Which mask estimator?", data)
            write_job(sweep, num, [*overrides, "experiment=denoising_sweep"], summary, config=config)
            num += 1


def markdown_rows(section: str) -> tuple[list[str], dict[tuple[str, ...], list[str]]]:
    """The header (after ``method``) of the Markdown table in ``section``, and its rows by their first three
    cells (method, n_fft, model), each with the cells after those."""
    header, _, *rows = (
        [cell.strip() for cell in line.strip("| ").split(" | ")]
        for line in section.splitlines()
        if line.startswith("|")
    )
    return header[1:], {tuple(row[:3]): row[3:] for row in rows}


@pytest.fixture
def denoising_sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "logs" / "denoising_sweep" / "multiruns" / "t"
    write_denoising_sweep(sweep)
    return sweep


def test_baselines_are_pooled_over_the_keys_their_scores_do_not_depend_on(denoising_sweep: Path) -> None:
    table = aggregate_sweep("denoising_sweep", [denoising_sweep])
    snr = snr_table(table)
    assert snr is not None and snr.snrs == SNRS and snr.headline == "si_sdr_i"
    assert [(row.method, row.keys, len(row.runs)) for row in snr.rows] == [
        *(
            (MODEL, {"frontend.n_fft": str(n_fft), "model": model}, 2)
            for n_fft, model in [(512, "bigru"), (512, "tcn"), (1024, "bigru"), (1024, "tcn")]
        ),
        *(
            (method, {"frontend.n_fft": str(n_fft)}, 4)
            for method in ("spectral_subtraction", "wiener")
            for n_fft in (512, 1024)
        ),
        ("noisy", {}, 8),
    ]
    runs = [run for run in table.runs]
    names = [metric_name("wiener", "si_sdr_i", s) for s in SNRS]
    assert depends_on(runs, table.swept, names) == ("frontend.n_fft",)
    assert depends_on(runs, table.swept, [metric_name("noisy", "si_sdr", 0)]) == ()
    # the model's scores change with the seed: no key set makes them agree, the rows keep every key
    assert depends_on(runs, table.swept, [metric_name(MODEL, "si_sdr_i", 0)]) == table.swept
    assert snr.table_scores == ["si_sdr_i", "snr_i", "pesq_i"]  # the headline first; no si_sdr table


def test_tables_hold_mean_and_std_over_the_jobs_of_each_row(denoising_sweep: Path, tmp_path: Path) -> None:
    table = aggregate_sweep("denoising_sweep", [denoising_sweep])
    write_sweep(table, tmp_path / "out")
    markdown = (tmp_path / "out" / "results_by_snr.md").read_text()
    headline, snr_section, pesq_section = markdown.split("\n## ")[1:]
    assert headline.startswith("SI-SDR improvement (dB), by input SNR\n")
    assert snr_section.startswith("SNR improvement (dB), by input SNR\n")
    assert pesq_section.startswith("PESQ improvement (MOS-LQO), by input SNR\n")
    header, cells = markdown_rows(headline)
    assert header == [
        "frontend.n_fft",
        "model",
        "seeds",
        "jobs",
        "0 dB",
        "5 dB",
        "10 dB",
        "15 dB",
        "all SNRs",
    ]
    s = "± 0.71"  # the sample std of two seeds 1 apart
    assert cells["model", "512", "bigru"] == [
        "1 2",
        "2",
        f"6.00 {s}",
        f"5.00 {s}",
        f"4.00 {s}",
        f"3.00 {s}",
        f"4.50 {s}",
    ]
    assert cells["model", "1024", "tcn"][2:] == [
        f"3.00 {s}",
        f"2.00 {s}",
        f"1.00 {s}",
        f"0.00 {s}",
        f"1.50 {s}",
    ]
    zero = "± 0.00"  # every job of an n_fft scored the baseline the same
    assert cells["wiener", "512", "—"] == [
        "1 2",
        "4",
        f"8.00 {zero}",
        f"4.50 {zero}",
        f"1.00 {zero}",
        f"-2.50 {zero}",
        f"2.75 {zero}",
    ]
    assert cells["noisy: its own SI-SDR (dB)", "—", "—"] == [
        "1 2",
        "8",
        f"0.25 {zero}",
        f"5.25 {zero}",
        f"10.25 {zero}",
        f"15.25 {zero}",
        f"7.75 {zero}",
    ]
    assert len(cells) == 9
    assert markdown_rows(snr_section)[1]["noisy: its own SNR (dB)", "—", "—"][2:4] == [
        f"0.00 {zero}",
        f"5.00 {zero}",
    ]
    assert markdown_rows(pesq_section)[1]["model", "512", "bigru"][2:] == ["n/a"] * 5
    assert f"**Measured on the {CORPUS_NOTE}.**" in markdown
    assert f"**PESQ (MOS-LQO) not scored: {PESQ_REASON}.**" in markdown

    with (tmp_path / "out" / "results_by_snr.csv").open() as stream:
        rows = {
            (r["method"], r["model"], r["frontend.n_fft"], r["score"], r["input_snr_db"]): r
            for r in csv.DictReader(stream)
        }
    bigru = rows[MODEL, "bigru", "512", "si_sdr_i", "0"]
    assert (float(bigru["mean"]), float(bigru["std"]), bigru["jobs"]) == pytest.approx(
        (6.0, math.sqrt(0.5), "2")
    )
    wiener = rows["wiener", "", "1024", "si_sdr_i", "all"]
    assert (float(wiener["mean"]), float(wiener["std"]), wiener["jobs"]) == (1.75, 0.0, "4")
    assert float(rows["noisy", "", "", "si_sdr", "15"]["mean"]) == 15.25
    assert float(rows[MODEL, "tcn", "512", "si_sdr", "5"]["mean"]) == pytest.approx(
        8.25
    )  # absolute, in the CSV

    # the main table keeps the test metric and leaves the per-SNR scores to results_by_snr
    with (tmp_path / "out" / "results.csv").open() as stream:
        main_rows = list(csv.DictReader(stream))
    columns = list(main_rows[0])
    assert "test_si_sdr_i_mean" in columns and "val_si_sdr_i_best_mean" in columns
    assert not [column for column in columns if "dB" in column or "wiener" in column or "noisy" in column]
    assert not [column for column in columns if column.startswith(("test_snr", "test_pesq", "test_si_sdr_m"))]
    assert {path.name for path in (tmp_path / "out").glob("*by_snr*")} == {
        "results_by_snr.md",
        "results_by_snr.csv",
        "si_sdr_improvement_by_snr.png",
    }


def test_the_plot_draws_each_row_at_its_mean_with_its_std(denoising_sweep: Path) -> None:
    snr = snr_table(aggregate_sweep("denoising_sweep", [denoising_sweep]))
    figure = plot_score_by_snr(snr, "si_sdr_i")
    axes = figure.axes[0]
    lines = {container.get_label(): container for container in axes.containers}
    assert len(lines) == 8  # four configurations, two baselines at two STFT sizes; not the noisy input
    bigru = lines["model (frontend.n_fft=512, model=bigru)"]
    assert list(bigru.lines[0].get_ydata()) == pytest.approx([6.0, 5.0, 4.0, 3.0])
    (bars,) = bigru.lines[2]
    assert [abs(top - bottom) / 2 for (_, bottom), (_, top) in bars.get_segments()] == pytest.approx(
        [math.sqrt(0.5)] * 4
    )
    assert list(lines["wiener (frontend.n_fft=1024)"].lines[0].get_ydata()) == pytest.approx(
        [7.0, 3.5, 0.0, -3.5]
    )
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["0 dB", "5 dB", "10 dB", "15 dB"]


def test_conclusions_name_the_best_method_and_whether_the_model_beats_the_baselines(
    denoising_sweep: Path,
) -> None:
    sentences = snr_conclusions(aggregate_sweep("denoising_sweep", [denoising_sweep]))
    at_0, at_5, at_10, at_15, overall, summary = sentences
    lead_in = "by test SI-SDR improvement in dB (higher is better), the best method is"
    # 2 standard errors of the difference: 2 x sqrt(0.5) / sqrt(2) for the model's two seeds, 0 for a baseline
    assert at_0 == (
        f"At 0 dB input SNR, {lead_in} the baseline `wiener (frontend.n_fft=512)` with 8.00 ± 0.00: the best "
        "model, `model (frontend.n_fft=512, model=bigru)` with 6.00 ± 0.71, does not beat it (2.00 behind; "
        "beyond noise: 2 standard errors of the difference = 1.00)."
    )
    assert at_5.startswith(
        f"At 5 dB input SNR, {lead_in} the model, `model (frontend.n_fft=512, model=bigru)`"
    )
    assert at_5.endswith("by 0.50 (within noise: 2 standard errors of the difference = 1.00).")
    assert (
        "it beats the best baseline, `wiener (frontend.n_fft=512)` with 1.00 ± 0.00, by 3.00 (beyond" in at_10
    )
    assert (
        "beats the best baseline, `spectral_subtraction (frontend.n_fft=512)` with -1.50 ± 0.00, by 4.50"
        in (at_15)
    )
    assert overall.startswith("Over all test pairs,") and "with 4.50 ± 0.71: it beats" in overall
    assert summary == (
        "By test SI-SDR improvement in dB, the best model against the best baseline at each input SNR: "
        "beats it (beyond noise) at 10 dB, 15 dB; beats it (within noise) at 5 dB; not at 0 dB."
    )


def test_a_sweep_without_scores_by_snr_gets_none_of_it(tmp_path: Path) -> None:
    for num, (groups, accuracy) in enumerate([(1, 0.9), (2, 0.8)]):
        write_job(tmp_path / "sweep", num, [f"model.groups={groups}", "seed=1"], job_summary(accuracy))
    table = aggregate_sweep("groups", [tmp_path / "sweep"])
    assert snr_table(table) is None and snr_conclusions(table) == []
    write_sweep(table, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*by_snr*"))


def test_the_report_describes_data_built_on_other_speech_and_shows_the_scores_by_snr(tmp_path: Path) -> None:
    sweep = tmp_path / "logs" / "denoising_sweep" / "multiruns" / "t"
    write_denoising_sweep(sweep, NESTED_DATA)
    assert write_report({"denoising_sweep": [sweep]}, tmp_path / "report")
    report = (tmp_path / "report" / "REPORT.md").read_text()
    assert "`ToneDataModule` on the speech of `ToneDataModule` (words yes, no); examples per split:" in report
    assert "### SI-SDR improvement (dB), by input SNR" in report
    assert "![si_sdr_improvement_by_snr](denoising_sweep/si_sdr_improvement_by_snr.png)" in report
    assert "- At 0 dB input SNR, by test SI-SDR improvement in dB" in report
