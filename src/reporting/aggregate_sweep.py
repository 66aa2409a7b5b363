"""Aggregate a sweep: ``results.csv``, ``results.md`` (and ``results_by_snr.md`` / ``.csv`` for jobs scored
by input SNR), ``conclusions.md`` (the sweep's question and the
conclusions computed from the table) and the plots.

Runs by itself at the end of every ``train.py -m`` (``AggregateSweepCallback``, configured in
``conf/hydra/default.yaml``), writing into the multirun's own folder, so no run, smoke test or not,
changes anything outside its folder. Publishing into ``sweep_results/<name>/`` (the committed results)
is this command, for the multirun folder(s) of one sweep::

    python -m src.reporting.aggregate_sweep logs/nmels_sweep/multiruns/<time> [more folders] [--output DIR]

It refuses to publish jobs whose numbers are not results (``fast_dev_run``, ``limit_*_batches``) into
``sweep_results/`` (``--output`` writes them elsewhere). Both exit non-zero after writing the table when a
job failed; the failed jobs are rows of the table.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from matplotlib.backends.backend_pdf import PdfPages
from omegaconf import DictConfig

from src.reporting.sweep_by_snr import write_snr_tables
from src.reporting.sweep_conclusions import write_conclusions
from src.reporting.sweep_confusions import write_confusion_panels
from src.reporting.sweep_det import write_det_curves
from src.reporting.sweep_plots import write_plots
from src.reporting.sweep_table import SweepTable, aggregate_sweep, write_table

log = logging.getLogger(__name__)


def sweep_name(sweep_dir: Path) -> str:
    """``logs/<task>/multiruns/<time>`` -> ``<task>``; any other folder -> its own name."""
    sweep_dir = sweep_dir.resolve()
    return sweep_dir.parent.parent.name if sweep_dir.parent.name == "multiruns" else sweep_dir.name


def write_sweep(table: SweepTable, output_dir: Path, pdf: PdfPages | None = None) -> list[Path]:
    """Write the table (``results.csv``, ``results.md``; ``results_by_snr.md`` and ``.csv`` when the jobs
    scored by input SNR), ``conclusions.md`` and the plots of ``table`` into ``output_dir`` (the plots
    also as pages of ``pdf`` when given); returns the plot files."""
    csv_path, md_path = write_table(table, output_dir)
    write_snr_tables(table, output_dir)
    conclusions = write_conclusions(table, output_dir)
    plots = write_plots(table, output_dir, pdf)
    confusions = write_confusion_panels(table, output_dir, pdf)
    if confusions is not None:
        plots.append(confusions)
    det_curves = write_det_curves(table, output_dir, pdf)
    if det_curves is not None:
        plots.append(det_curves)
    log.info(
        "Sweep %s: wrote %s, %s, %s and %d plots", table.name, csv_path, md_path, conclusions, len(plots)
    )
    return plots


def aggregate(name: str, sweep_dirs: Sequence[Path], output_dir: Path) -> SweepTable:
    """Write the table, conclusions and plots of the sweep made of ``sweep_dirs`` into ``output_dir``."""
    table = aggregate_sweep(name, sweep_dirs)
    write_sweep(table, output_dir)
    return table


def failure_message(table: SweepTable, output_dir: Path) -> str | None:
    """What failed in the sweep, one job after the other; None when every job succeeded."""
    if not table.failed_rows:
        return None
    failures = "; ".join(
        " ".join([*(f"{key}={row[key]}" for key in table.swept), f"seed={row['seeds']}:"])
        + f" {row['status']}: {row['error']}"
        for row in table.failed_rows
    )
    return (
        f"{len(table.failed_rows)} of {len(table.runs)} jobs of sweep {table.name} did not succeed "
        f"(rows with their errors in {output_dir / 'results.csv'}): {failures}"
    )


class AggregateSweepCallback(Callback):
    """Hydra callback: aggregates the multirun's folder into that folder when all its jobs ended, then
    exits with status 1 if any job failed (Hydra turns a callback's exception into a warning, so a failed
    sweep would otherwise exit 0)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = aggregate(config.task_name, [sweep_dir], sweep_dir)
        log.info(
            "Sweep table and plots in %s; publish them to sweep_results/%s/ with: python -m "
            "src.reporting.aggregate_sweep %s",
            sweep_dir,
            config.task_name,
            sweep_dir,
        )
        message = failure_message(table, sweep_dir)
        if message:
            log.error("%s", message)
            raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "sweep_dirs", nargs="+", type=Path, help="multirun folders (logs/<task>/multiruns/<time>)"
    )
    parser.add_argument("--name", help="sweep name (default: <task> of the first folder)")
    parser.add_argument("--output", type=Path, help="where to write (default: sweep_results/<name>)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    name = args.name or sweep_name(args.sweep_dirs[0])
    output = args.output or Path("sweep_results") / name
    try:
        table = aggregate_sweep(name, args.sweep_dirs)
    except FileNotFoundError as error:
        log.error("%s", error)
        return 2
    if table.smoke and args.output is None:
        log.error(
            "Not publishing %s into %s: some jobs are not full runs (%s). Run the sweep in full, or "
            "write this table elsewhere with --output DIR",
            name,
            output,
            "; ".join(table.caveats),
        )
        return 2
    write_sweep(table, output)
    message = failure_message(table, output)
    if message:
        log.error("%s", message)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
