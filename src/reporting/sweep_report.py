"""``sweep_results/REPORT.md`` and ``REPORT.pdf`` from the sweep folders, in one command::

    python -m src.reporting.sweep_report                       # latest full multirun of each sweep
    python -m src.reporting.sweep_report --sweep nmels_sweep=logs/nmels_sweep/multiruns/<time> ...

Each sweep is re-aggregated into ``sweep_results/<sweep>/`` (table, conclusions and plots), the log-mel vs
torchaudio figure is redrawn on the first test example of the first sweep's data (its jobs' ``data``
config, instantiated and set up for testing), and the report gathers the setup, every table with its
question (the jobs' config ``question``), every plot and the conclusions computed from the tables. A sweep
without job folders or without a successful job is left out with a warning. Smoke tests (jobs with
``fast_dev_run`` or ``limit_*_batches``) are never published into ``sweep_results/``: the default sweeps
pass over them, and a smoke sweep given with ``--sweep`` is refused unless ``--output`` writes elsewhere.
Exits 1 when a sweep had failed jobs (after writing everything).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from hydra.utils import instantiate
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from src.reporting.aggregate_sweep import failure_message, write_sweep
from src.reporting.logmel_comparison import plot_logmel_comparison
from src.reporting.sweep_by_snr import (
    SnrTable,
    score_markdown,
    score_title,
    snr_caption,
    snr_markdown,
    snr_table,
)
from src.reporting.sweep_conclusions import sweep_conclusions
from src.reporting.sweep_table import (
    JobRun,
    SweepTable,
    aggregate_sweep,
    find_jobs,
    sort_key,
    table_caption,
    table_markdown,
)
from src.run_record import RECORD_NAME, is_smoke, read_record
from src.utils.run_files import atomic_write

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SWEEPS = (
    "nmels_sweep",
    "groups_sweep",
    "trainable_settings",
    "rnn_vs_lstm",
    "augmentation",
    "timit_trainable_settings",
    "frontend_lr_timit",
    "frontend_lr_kws12",
    "lowrank_sweep",
    "denoising_sweep",
    "speaker_frontends",
    "speaker_objectives",
)
COMPARISON_PNG = "logmel_vs_torchaudio.png"


@dataclass(frozen=True)
class SweepSection:
    """One sweep of the report: its table, the commands that ran it and its conclusions."""

    table: SweepTable
    commands: list[str]
    conclusions: list[str]

    @property
    def question(self) -> str:
        """The question in the config of the sweep's jobs."""
        return self.table.question or f"(The jobs of {self.table.name} have no `question` in their config.)"


class ComparisonFigure(NamedTuple):
    """Whether the log-mel vs torchaudio figure was drawn, and what it shows (or why it was left out)."""

    drawn: bool
    note: str


def has_smoke_jobs(sweep_dir: Path) -> bool:
    """Whether a job of the multirun folder ``sweep_dir`` is not a full run (``fast_dev_run``,
    ``limit_*_batches``: :func:`src.run_record.is_smoke` of its ``metrics.json``)."""
    return any(is_smoke(read_record(job / RECORD_NAME)) for job in find_jobs(sweep_dir))


def latest_multirun(name: str, log_dir: Path, full_only: bool = True) -> Path:
    """The newest ``<log_dir>/<name>/multiruns/<time>`` folder; with ``full_only``, the newest whose jobs
    are full runs (smoke tests, e.g. ``trainer=fast_dev_run``, are passed over)."""
    folders = sorted(
        (path.parent for path in (log_dir / name / "multiruns").glob("*/multirun.yaml")),
        key=lambda folder: (folder / "multirun.yaml").stat().st_mtime,
    )
    usable = [folder for folder in folders if not (full_only and has_smoke_jobs(folder))]
    if not usable:
        passed_over = f" ({len(folders)} smoke tests passed over)" if folders else ""
        raise FileNotFoundError(
            f"No {'full ' if full_only else ''}multirun of {name} under {log_dir / name / 'multiruns'}"
            f"{passed_over}: run `python train.py -m experiment={name}` first, or pass --sweep "
            f"{name}=<folder>"
        )
    return usable[-1]


def default_sweeps(log_dir: Path, full_only: bool = True) -> dict[str, list[Path]]:
    """The latest multirun of each of ``DEFAULT_SWEEPS`` that has been run (a warning for the others);
    ``full_only``: the latest without smoke-test jobs."""
    sweeps = {}
    for name in DEFAULT_SWEEPS:
        try:
            sweeps[name] = [latest_multirun(name, log_dir, full_only)]
        except FileNotFoundError as error:
            log.warning("Left out of the report: %s", error)
    if not sweeps:
        raise FileNotFoundError(
            f"None of the sweeps {', '.join(DEFAULT_SWEEPS)} has a multirun under {log_dir}"
        )
    return sweeps


def sweep_command(sweep_dir: Path, table: SweepTable) -> str:
    """The command that ran the multirun folder ``sweep_dir``: ``python train.py -m`` and the command-line
    overrides in its ``multirun.yaml``; without that file, each override key of its jobs with their values,
    comma-separated (the grid that reruns them)."""
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        overrides = [str(override) for override in OmegaConf.load(multirun).hydra.overrides.task]
    else:
        runs = [run for run in table.runs if run.job_dir.parent == sweep_dir]
        values: dict[str, set[str]] = {}
        for run in runs:
            for key, value in run.overrides.items():
                values.setdefault(key, set()).add(value)
        overrides = [f"{key}={','.join(sorted(values[key], key=sort_key))}" for key in sorted(values)]
    return shlex.join(["python", "train.py", "-m", *overrides])


def first_ok_run(table: SweepTable) -> JobRun:
    """The first successful job of the sweep (the report leaves out sweeps without one)."""
    return next(run for run in table.runs if run.status == "ok")


def job_config(table: SweepTable) -> dict[str, Any]:
    """The experiment-defining groups of the sweep's first successful job, resolved (the ``paths`` group
    refers to Hydra's runtime, which only exists inside the job)."""
    config = first_ok_run(table).config
    groups = ("data", "frontend", "model", "optimizer", "scheduler")
    resolved = {
        group: OmegaConf.to_container(config[group], resolve=True) for group in groups if group in config
    }
    return {**resolved, "trainer": {"max_epochs": config.trainer.max_epochs}}


def class_name(target: str) -> str:
    """``torch.optim.AdamW`` -> ``AdamW``."""
    return target.rsplit(".", 1)[-1]


def common_setup_lines(sections: Sequence[SweepSection]) -> list[str]:
    """Seeds, checkpoint selection, hardware (from the first sweep's first successful job) and each
    sweep's time."""
    run = first_ok_run(sections[0].table).summary or {}
    hardware = run.get("hardware", {})
    seeds = sorted({run.seed for section in sections for run in section.table.runs}, key=sort_key)
    selections: dict[str, list[str]] = {}
    for section in sections:
        best = section.table.best_metric
        selections.setdefault(f"`{best.name}` ({best.direction})", []).append(section.table.name)
    selection = "; ".join(f"{metric} in {', '.join(names)}" for metric, names in selections.items())
    lines = [
        f"**Seeds**: {', '.join(seeds)} for every configuration; tables give mean ± sample std over them. "
        f"Every job tests the checkpoint of its epoch with the best validation metric: {selection}.",
        f"**Hardware**: {hardware.get('cpu', '?')}, {hardware.get('cpu_cores', '?')} cores, torch "
        f"{hardware.get('torch', '?')} with {hardware.get('torch_threads', '?')} threads, "
        f"{'GPU ' + hardware['gpu'] if hardware.get('gpu') else 'no GPU'}.",
    ]
    for section in sections:
        runs = [run for run in section.table.runs if run.summary]
        seconds = sum(float(run.summary.get("wall_time_s", 0.0)) for run in runs)
        lines.append(
            f"**Time, {section.table.name}**: {len(section.table.runs)} jobs, {seconds / 60:.1f} min of job "
            f"wall time ({seconds / max(len(runs), 1):.0f} s per job: data setup, training with "
            "validation, test)."
        )
    return lines


def labelled_data(data: dict[str, Any]) -> dict[str, Any]:
    """The node of a job's ``data`` config that names the labels (``words`` or ``phones``): ``data``
    itself, else the data module it builds on (its first node with a ``_target_``, e.g. ``data.speech`` of
    ``data=denoising``), else ``data``."""
    if "words" in data or "phones" in data:
        return data
    inner = (node for node in data.values() if isinstance(node, dict) and "_target_" in node)
    return next(inner, data)


def data_line(table: SweepTable) -> str:
    """The data of a sweep's first successful job: corpus, labels (of the speech it builds on, if it does),
    generated speakers, split sizes."""
    data = job_config(table)["data"]
    source = labelled_data(data)
    run = first_ok_run(table).summary or {}
    if "words" in source:
        labels = f"words {', '.join(source['words'])}"
        extra = [
            f"{name} {source[f'{name}_percentage']}%"
            for name in ("silence", "unknown")
            if source.get(f"{name}_percentage")
        ]
        labels += f" (+ {', '.join(extra)} of each split)" if extra else ""
        unit = f"clips of {source['clip_seconds']} s"
    elif "phones" in source:
        trained = f"TIMIT phones, {source['phones']} trained, scored on 39"
        labels = trained if source is data else "TIMIT-format utterances"
        unit = "utterances"
    else:
        labels, unit = f"`{class_name(source['_target_'])}`", "examples"
    if source is not data:
        labels = (
            f"`{class_name(data['_target_'])}` on the speech of `{class_name(source['_target_'])}` ({labels})"
        )
        unit = "examples"
    generator = ", ".join(
        f"{key} {value}" for key, value in (source.get("generator") or {}).items() if "speakers" in key
    )
    sizes = ", ".join(f"{split} {count:,}" for split, count in run.get("split_sizes", {}).items())
    rate = data.get("sample_rate", source.get("sample_rate"))
    return (
        f"**Data**: {run.get('corpus_note', source.get('corpus'))}; {labels}"
        + (f"; generated with {generator}" if source.get("corpus") == "generated" and generator else "")
        + f"; {unit} per split: {sizes}"
        + (f"; {rate} Hz" if rate else "")
        + f"; batch {data['batch_size']}."
    )


def sweep_setup_lines(section: SweepSection) -> list[str]:
    """The data, frontend, model and training of a sweep's first successful job; swept keys vary them."""
    config = job_config(section.table)
    frontend, model, optimizer = config["frontend"], config["model"], config["optimizer"]
    scheduler = class_name((config.get("scheduler") or {}).get("_target_", "no scheduler"))
    epochs = config["trainer"]["max_epochs"]

    def arguments(node: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in node.items() if k != "_target_")

    return [
        data_line(section.table),
        f"**Frontend**: `{class_name(frontend['_target_'])}` ({arguments(frontend)}).",
        f"**Model**: `{class_name(model['_target_'])}` ({arguments(model)}).",
        f"**Training**: `{class_name(optimizer['_target_'])}` ({arguments(optimizer)}), "
        f"`{scheduler}`, {epochs} epochs.",
        "These are the values of the sweep's first job; the swept keys in the table vary them.",
    ]


def build_section(name: str, sweep_dirs: Sequence[Path]) -> SweepSection:
    """The table of one sweep and what the report says about it."""
    table = aggregate_sweep(name, sweep_dirs)
    commands = list(dict.fromkeys(sweep_command(Path(sweep_dir), table) for sweep_dir in sweep_dirs))
    return SweepSection(table, commands, sweep_conclusions(table))


def comparison_example(table: SweepTable) -> tuple[torch.Tensor, int, str]:
    """The first test example of the data of the sweep's first successful job: its ``.hydra/config.yaml``
    ``data`` node instantiated and set up for testing, the example cut from the first test batch (which
    starts with ``(waveforms, lengths)``, whatever the corpus). ``prepare_data`` is not called: the report
    reads the corpus the jobs left and never generates or downloads one. Returns the ``(time,)`` waveform,
    the data's sample rate and the example's file (relative to the corpus folder)."""
    datamodule = instantiate(first_ok_run(table).config.data, _convert_="all")
    datamodule.setup("test")
    waveforms, lengths = next(iter(datamodule.test_dataloader()))[:2]
    return waveforms[0, : int(lengths[0])], datamodule.sample_rate, datamodule.files("test")[0]


def draw_comparison(table: SweepTable, path: Path) -> ComparisonFigure:
    """Draw the log-mel vs torchaudio figure to ``path`` on :func:`comparison_example` of ``table``; when
    that fails, a logged warning and a figure left out, with the reason."""
    try:
        waveform, sample_rate, name = comparison_example(table)
        plot_logmel_comparison(waveform, sample_rate, path, title=name)
    except Exception as error:  # whatever the data or its example raise, the report goes on without it
        reason = f"no example from the data of {table.name}: {type(error).__name__}: {error}"
        log.warning("Left the log-mel vs torchaudio figure out of the report: %s", reason)
        return ComparisonFigure(False, f"Left out: {reason}.")
    return ComparisonFigure(True, f"on `{name}`, the first test example of the data of {table.name}")


def report_markdown(
    sections: Sequence[SweepSection],
    plots: dict[str, list[Path]],
    output_dir: Path,
    comparison: ComparisonFigure,
) -> str:
    """The whole report as Markdown, with links to each sweep's ``plots`` relative to ``output_dir``."""
    notes = sorted({note for section in sections for note in section.table.corpus_notes})
    lines = ["# Sweep report", ""]
    lines += [f"> **Every number here was measured on the {note}.**" for note in notes]
    lines += [
        "",
        "Regenerate everything below (tables, plots, this file and `REPORT.pdf`) from the logged runs:",
        "",
        "```bash",
        *(command for section in sections for command in section.commands),
        "python -m src.reporting.sweep_report",
        "```",
        "",
        "## Setup",
        "",
        *(f"- {line}" for line in common_setup_lines(sections)),
    ]
    for section in sections:
        lines += ["", f"## {section.table.name}", "", section.question, ""]
        lines += [*(f"- {line}" for line in sweep_setup_lines(section)), "", table_caption(section.table)]
        lines.append(table_markdown(section.table))
        snr = snr_table(section.table)
        if snr is not None:
            lines += [
                "Scores by input SNR (`results_by_snr.md`):",
                "",
                snr_markdown(snr).replace("## ", "### "),
            ]
        lines += ["Conclusions, computed from the table:", ""]
        lines += [f"- {sentence}" for sentence in section.conclusions]
        lines += [""] + [
            f"![{plot.stem}]({plot.relative_to(output_dir)})" for plot in plots[section.table.name]
        ]
    lines += ["", "## Frontend check: `LogMelFilterBanks` vs torchaudio", ""]
    if comparison.drawn:
        lines += [
            "Our log-mel beside `torch.log(torchaudio.transforms.MelSpectrogram(...) + 1e-6)` and their "
            f"difference, {comparison.note}:",
            "",
            f"![logmel vs torchaudio]({COMPARISON_PNG})",
        ]
    else:
        lines.append(comparison.note)
    return "\n".join([*lines, ""])


A4_LANDSCAPE = (11.69, 8.27)


def plain_lines(paragraphs: Sequence[str], width: int = 140) -> list[str]:
    """Paragraphs without Markdown emphasis, wrapped, a blank line after each."""
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += [*textwrap.wrap(paragraph.replace("**", "").replace("`", ""), width), ""]
    return lines


def text_page(pdf: PdfPages, title: str, paragraphs: Sequence[str]) -> None:
    """A4-landscape pages of wrapped text under a title."""
    lines = plain_lines(paragraphs)
    per_page = 40
    for start in range(0, max(len(lines), 1), per_page):
        figure = plt.figure(figsize=A4_LANDSCAPE)
        figure.text(0.04, 0.95, title, fontsize=14, weight="bold")
        figure.text(0.04, 0.90, "\n".join(lines[start : start + per_page]), fontsize=9, va="top")
        pdf.savefig(figure)
        plt.close(figure)


def table_page(title: str, paragraphs: Sequence[str], markdown: str, max_cell: int = 60) -> Figure:
    """A page with ``title``, the wrapped ``paragraphs`` and the Markdown table ``markdown`` drawn."""
    figure = plt.figure(figsize=A4_LANDSCAPE)
    figure.text(0.04, 0.95, title, fontsize=14, weight="bold")
    figure.text(0.04, 0.90, "\n".join(plain_lines(paragraphs)), fontsize=9, va="top")
    header, _, *rows = (
        [cell.strip().replace("\\|", "|")[:max_cell] for cell in line.strip("| ").split(" | ")]
        for line in markdown.splitlines()
    )
    axes = figure.add_axes((0.02, 0.02, 0.96, 0.6))
    axes.axis("off")
    table = axes.table(
        cellText=[[cell.replace("**", "") for cell in row] for row in rows],
        colLabels=header,
        loc="upper center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    table.auto_set_column_width(list(range(len(header))))
    table.scale(1, 1.4)
    return figure


def table_figure(section: SweepSection) -> Figure:
    """A page with the sweep's question, the table's caption and the table itself."""
    intro = [
        section.question,
        " ".join(sweep_setup_lines(section)),
        table_caption(section.table).replace("\n", " "),
    ]
    return table_page(section.table.name, intro, table_markdown(section.table))


def snr_figure(snr: SnrTable) -> Figure | None:
    """A page with the table of the headline score by input SNR and its caption; None without one."""
    if snr.headline is None:
        return None
    title = f"{snr.table.name}: {score_title(snr.headline).title} by input SNR"
    caption = snr_caption(snr).replace("\n", " ")
    return table_page(title, [caption], score_markdown(snr, snr.headline))


def image_page(pdf: PdfPages, image: Path) -> None:
    figure = plt.figure(figsize=(11.69, 8.27))
    axes = figure.add_axes((0.03, 0.03, 0.94, 0.94))
    axes.imshow(plt.imread(image))
    axes.axis("off")
    pdf.savefig(figure)
    plt.close(figure)


def write_pdf(
    sections: Sequence[SweepSection], output_dir: Path, path: Path, comparison: ComparisonFigure
) -> dict[str, list[Path]]:
    """The report's content as a PDF: setup, then per sweep its table, conclusions and plots, then the
    log-mel figure when it was drawn. The sweep's table, conclusions and plots are written to
    ``output_dir/<sweep>/`` on the way (the plots as PNG there and as vector pages here); returns each
    sweep's plot files."""
    plots = {}
    with atomic_write(path, "wb") as stream, PdfPages(stream, metadata={"CreationDate": None}) as pdf:
        notes = sorted({note for section in sections for note in section.table.corpus_notes})
        text_page(
            pdf,
            "Sweep report",
            [f"Every number here was measured on the {note}." for note in notes]
            + common_setup_lines(sections),
        )
        for section in sections:
            snr = snr_table(section.table)
            for figure in (table_figure(section), snr_figure(snr) if snr is not None else None):
                if figure is not None:
                    pdf.savefig(figure)
                    plt.close(figure)
            text_page(pdf, f"{section.table.name}: conclusions", section.conclusions)
            plots[section.table.name] = write_sweep(section.table, output_dir / section.table.name, pdf)
        if comparison.drawn:
            image_page(pdf, output_dir / COMPARISON_PNG)
    return plots


def build_sections(sweeps: dict[str, list[Path]], output_dir: Path) -> tuple[list[SweepSection], list[str]]:
    """The sections of the sweeps that have a successful job, and the failure messages of every sweep
    with job folders. A sweep without job folders is left out of the report (logged), and so is one
    without a successful job, whose table of failures is written to ``output_dir/<sweep>/`` all the same."""
    sections, messages = [], []
    for name, dirs in sweeps.items():
        try:
            section = build_section(name, dirs)
        except FileNotFoundError as error:
            log.warning("Left out of the report: %s", error)
            continue
        messages.append(failure_message(section.table, output_dir / name))
        if section.table.ok_rows:
            sections.append(section)
        else:
            write_sweep(section.table, output_dir / name)
            log.warning("Left out of the report: no job of %s succeeded", name)
    return sections, [message for message in messages if message]


def write_report(sweeps: dict[str, list[Path]], output_dir: Path) -> bool:
    """Aggregate every sweep, redraw the frontend figure, write REPORT.md and REPORT.pdf into
    ``output_dir``. Returns whether every job of every sweep succeeded; raises ``FileNotFoundError`` when
    no sweep has a successful job."""
    sections, messages = build_sections(sweeps, output_dir)
    if not sections:
        raise FileNotFoundError(f"None of the sweeps {', '.join(sweeps)} has a successful job")
    comparison = draw_comparison(sections[0].table, output_dir / COMPARISON_PNG)
    plots = write_pdf(sections, output_dir, output_dir / "REPORT.pdf", comparison)
    with atomic_write(output_dir / "REPORT.md") as stream:
        stream.write(report_markdown(sections, plots, output_dir, comparison))
    log.info("Wrote %s and %s", output_dir / "REPORT.md", output_dir / "REPORT.pdf")
    for message in messages:
        log.error("%s", message)
    return not messages


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="a sweep and one of its multirun folders (repeat for more); default: the latest multirun of "
        "each of " + ", ".join(DEFAULT_SWEEPS) + " that has been run",
    )
    parser.add_argument(
        "--logs", type=Path, default=REPO_ROOT / "logs", help="where the default sweeps are found"
    )
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "sweep_results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sweeps: dict[str, list[Path]] = {}
    try:
        for item in args.sweep:
            name, _, folder = item.partition("=")
            if not folder:
                parser.error(f"--sweep {item}: expected NAME=FOLDER")
            sweeps.setdefault(name, []).append(Path(folder))
        publishing = args.output.resolve() == (REPO_ROOT / "sweep_results").resolve()
        if not sweeps:
            sweeps = default_sweeps(args.logs, full_only=publishing)
        smoke = [
            f"{name}={folder}"
            for name, folders in sweeps.items()
            for folder in folders
            if has_smoke_jobs(folder)
        ]
        if smoke and publishing:
            log.error(
                "Not publishing smoke-test sweeps into %s: %s. Pass full multiruns, or write elsewhere "
                "with --output DIR",
                args.output,
                ", ".join(smoke),
            )
            return 2
        return 0 if write_report(sweeps, args.output) else 1
    except FileNotFoundError as error:
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
