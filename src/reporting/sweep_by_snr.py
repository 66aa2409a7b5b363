"""The scores of a sweep by input SNR, for jobs that scored their test split at fixed input SNRs: metrics
named ``test/[<method>/]<score>@<snr>dB`` in ``metrics.json`` (``test/si_sdr_i@5dB``,
``test/wiener/si_sdr_i@5dB``, ``test/noisy/si_sdr@5dB``, as the denoising task logs them), each with its
overall value over all SNRs (``test/si_sdr_i``). Written as ``results_by_snr.md`` and ``results_by_snr.csv``
beside the sweep's table; the plot (:func:`src.reporting.sweep_plots.plot_score_by_snr`) and the
conclusions (:func:`src.reporting.sweep_conclusions.snr_conclusions`) read the same :class:`SnrTable`.

Its rows come from what the records hold, never from the task's name:

- ``model``, the job's own model (metrics without a method): one row per swept configuration, mean ±
  sample std over its seeds;
- every other method the jobs scored on the same pairs (``test/<method>/...``): one row per value of the
  fewest swept keys its scores depend on (the keys left out leave every score of it the same in every job:
  e.g. the STFT size for a baseline run with the job's STFT, none at all for the noisy input), mean ± std
  over every job that scored it, so a std of 0 says those jobs agree. A method with improvements
  (``<score>_i``) is a baseline; one without is the reference they are measured from (the noisy input),
  and its rows give that reference's own score.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from src.reporting.sweep_table import (
    SNR_METRIC,
    JobRun,
    SweepTable,
    csv_cell,
    mean_std,
    plus_minus,
    sort_key,
)
from src.utils.run_files import atomic_write

MODEL = "model"
"""How the tables name the jobs' own model, whose metrics have no method (``test/si_sdr_i@5dB``)."""
IMPROVEMENT = "_i"
"""A score ending in it is the improvement of the score without it over the reference (``si_sdr_i``)."""
# Scores of one method closer than this (relative and absolute) count as the same in two jobs.
TOLERANCE = 1e-6
NOT_A_KEY = "—"
BY_SNR_MD, BY_SNR_CSV = "results_by_snr.md", "results_by_snr.csv"


class ScoreTitle(NamedTuple):
    """How the tables name a score, its unit and the decimals they show."""

    title: str
    unit: str
    digits: int


# The scores the denoising task logs, in the order their tables follow the headline; any other score is
# titled by its name, with 3 decimals, after these.
SCORE_TITLES = {
    "si_sdr": ScoreTitle("SI-SDR", "dB", 2),
    "snr": ScoreTitle("SNR", "dB", 2),
    "stoi": ScoreTitle("STOI", "", 3),
    "pesq": ScoreTitle("PESQ", "MOS-LQO", 2),
}


def score_title(score: str) -> ScoreTitle:
    """``si_sdr_i`` -> ``SI-SDR improvement (dB)``; ``stoi`` -> ``STOI``; an unknown score by its name."""
    base = score.removesuffix(IMPROVEMENT)
    known = SCORE_TITLES.get(base, ScoreTitle(base, "", 3))
    title = f"{known.title} improvement" if score.endswith(IMPROVEMENT) else known.title
    return known._replace(title=f"{title} ({known.unit})" if known.unit else title)


def split_metric(name: str) -> tuple[str, str, float] | None:
    """``test/wiener/si_sdr_i@5dB`` -> ``("wiener", "si_sdr_i", 5.0)``; ``test/snr@0dB`` ->
    ``("model", "snr", 0.0)``; None for a metric that is no test score at one input SNR."""
    match = SNR_METRIC.match(name)
    if not match or not match["base"].startswith("test/"):
        return None
    parts = match["base"].removeprefix("test/").split("/")
    if len(parts) > 2:
        return None
    method, score = (MODEL, parts[0]) if len(parts) == 1 else parts
    return method, score, float(match["snr"])


def metric_name(method: str, score: str, snr_db: float | None) -> str:
    """The inverse of :func:`split_metric`; ``snr_db`` None names the score over all SNRs
    (``test/wiener/si_sdr_i``)."""
    base = f"test/{score}" if method == MODEL else f"test/{method}/{score}"
    return base if snr_db is None else f"{base}@{snr_db:g}dB"


def same(values: Sequence[float]) -> bool:
    """Whether ``values`` agree within :data:`TOLERANCE` (all NaN counts as agreeing)."""
    return all(
        (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
        for a, b in itertools.pairwise(values)
    )


def group_runs(runs: Sequence[JobRun], keys: Sequence[str]) -> dict[tuple[str, ...], list[JobRun]]:
    groups: dict[tuple[str, ...], list[JobRun]] = {}
    for run in runs:
        groups.setdefault(run.configuration(keys), []).append(run)
    return groups


def depends_on(runs: Sequence[JobRun], swept: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """The fewest swept keys (the first such set in ``swept`` order) within whose every value the metrics
    ``names`` are the same in all ``runs``; all of ``swept`` when no smaller set does (the scores vary with
    the seed: the rows then pool only the seeds of a configuration)."""
    for size in range(len(swept)):
        for keys in itertools.combinations(swept, size):
            groups = group_runs(runs, keys).values()
            if all(same([run.metric(name) for run in group]) for group in groups for name in names):
                return keys
    return tuple(swept)


@dataclass(frozen=True)
class MethodRow:
    """A row of the tables: a method, the swept keys it is one value of (the others pooled) and the
    successful jobs that scored it there."""

    method: str
    keys: dict[str, str]
    runs: tuple[JobRun, ...]

    def stat(self, score: str, snr_db: float | None) -> tuple[float, float]:
        """Mean and sample std over :attr:`runs` of ``score`` at ``snr_db`` (None: over all SNRs)."""
        return mean_std([run.metric(metric_name(self.method, score, snr_db)) for run in self.runs])

    @property
    def seeds(self) -> str:
        return " ".join(sorted({run.seed for run in self.runs}, key=sort_key))

    def label(self, swept: Sequence[str]) -> str:
        """``model (frontend.n_fft=512, model=bigru)``, ``wiener (frontend.n_fft=512)``, ``noisy``: its
        method and its values of the keys ``swept``."""
        values = ", ".join(f"{key}={self.keys[key]}" for key in swept if key in self.keys)
        return f"{self.method} ({values})" if values else self.method


@dataclass(frozen=True)
class SnrTable:
    """The scores by input SNR of a sweep's successful jobs: :attr:`rows` (the model's configurations,
    then the baselines, then the references), the input SNRs (dB) and each method's scores."""

    table: SweepTable
    snrs: tuple[float, ...]
    scores: dict[str, frozenset[str]]
    rows: tuple[MethodRow, ...]

    def shown(self, row: MethodRow, score: str) -> str | None:
        """What ``row`` shows in the table of ``score``: the score itself when its method has it, else the
        score an improvement is measured from (``si_sdr`` for ``si_sdr_i``, the reference's own score),
        else None (no cell)."""
        if score in self.scores[row.method]:
            return score
        base = score.removesuffix(IMPROVEMENT)
        return base if base != score and base in self.scores[row.method] else None

    @property
    def headline(self) -> str | None:
        """The test metric's score when the model has it by SNR (``si_sdr_i`` for ``test/si_sdr_i``)."""
        score = self.table.test_metric.name.removeprefix("test/")
        return score if score in self.scores.get(MODEL, ()) else None

    @property
    def table_scores(self) -> list[str]:
        """The model's scores with a table each: its improvements, and the scores it has no improvement
        of; the headline first, then in :data:`SCORE_TITLES` order, then by name."""
        model = self.scores.get(MODEL, frozenset())
        scores = [s for s in model if s.endswith(IMPROVEMENT) or f"{s}{IMPROVEMENT}" not in model]
        order = list(SCORE_TITLES)

        def position(score: str) -> tuple[bool, int, str]:
            base = score.removesuffix(IMPROVEMENT)
            return score != self.headline, order.index(base) if base in order else len(order), score

        return sorted(scores, key=position)

    def model_rows(self) -> list[MethodRow]:
        return [row for row in self.rows if row.method == MODEL]

    def baseline_rows(self, score: str) -> list[MethodRow]:
        """The rows of other methods that have ``score`` itself (not only the score it improves on)."""
        return [row for row in self.rows if row.method != MODEL and score in self.scores[row.method]]


def snr_table(table: SweepTable) -> SnrTable | None:
    """The :class:`SnrTable` of ``table``'s successful jobs; None when none of them scored by input SNR."""
    runs = [run for run in table.runs if run.status == "ok"]
    snrs: set[float] = set()
    scores: dict[str, set[str]] = {}
    for run in runs:
        for name in run.summary.get("metrics", {}):
            parsed = split_metric(name)
            if parsed is not None:
                method, score, snr_db = parsed
                scores.setdefault(method, set()).add(score)
                snrs.add(snr_db)
    if not scores:
        return None
    grid = sorted(snrs)

    def order(method: str) -> tuple[int, str]:
        improves = any(score.endswith(IMPROVEMENT) for score in scores[method])
        return (0 if method == MODEL else 1 if improves else 2), method

    scored = [run for run in runs if any(map(split_metric, run.summary.get("metrics", {})))]
    rows = []
    for method in sorted(scores, key=order):
        names = [metric_name(method, s, snr) for s in sorted(scores[method]) for snr in [*grid, None]]
        keys = table.swept if method == MODEL else depends_on(scored, table.swept, names)
        groups = group_runs(scored, keys)
        for values in sorted(groups, key=lambda values: [sort_key(value) for value in values]):
            group = sorted(groups[values], key=lambda run: sort_key(run.seed))
            rows.append(MethodRow(method, dict(zip(keys, values, strict=True)), tuple(group)))
    frozen = {method: frozenset(names) for method, names in scores.items()}
    return SnrTable(table, tuple(grid), frozen, tuple(rows))


def snr_header(snr_db: float) -> str:
    return f"{snr_db:g} dB"


def score_markdown(snr: SnrTable, score: str) -> str:
    """The table of ``score``: a row per :class:`MethodRow` with a cell for it, mean ± std at each input
    SNR and over all of them; a reference's row is labelled with the score it shows."""
    swept = snr.table.swept
    header = ["method", *swept, "seeds", "jobs", *map(snr_header, snr.snrs), "all SNRs"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    digits = score_title(score).digits
    for row in snr.rows:
        shown = snr.shown(row, score)
        if shown is None:
            continue
        method = row.method if shown == score else f"{row.method}: its own {score_title(shown).title}"
        cells = [method, *(row.keys.get(key, NOT_A_KEY) for key in swept), row.seeds, str(len(row.runs))]
        for snr_db in [*snr.snrs, None]:
            cells.append(plus_minus(*row.stat(shown, snr_db), digits) or "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def unavailable_notes(table: SweepTable) -> list[str]:
    """What the jobs could not score, from their ``test_analysis`` ``<score>_unavailable`` reasons
    (``pesq_unavailable``), each once."""
    notes = {
        f"{score_title(key.removesuffix('_unavailable')).title} not scored: {reason}"
        for run in table.runs
        if run.status == "ok"
        for key, reason in (run.summary.get("test_analysis") or {}).items()
        if key.endswith("_unavailable") and reason
    }
    return sorted(notes)


def snr_caption(snr: SnrTable) -> str:
    """What the tables hold and what they were measured on."""
    table = snr.table
    others = sorted({row.method for row in snr.rows if row.method != MODEL})
    baselines = [m for m in others if any(s.endswith(IMPROVEMENT) for s in snr.scores[m])]
    references = [m for m in others if m not in baselines]
    jobs = len({run.job_dir for row in snr.rows for run in row.runs})
    parts = [
        f"Sweep `{table.name}`: the test scores of its {jobs} "
        f"successful jobs at input SNRs {', '.join(map(snr_header, snr.snrs))} and over all test pairs "
        "(`all SNRs`). `model`: the jobs' own model, a row per configuration, mean ± sample std over its "
        "seeds.",
    ]
    if baselines:
        parts.append(
            f"{', '.join(f'`{m}`' for m in baselines)}: scored by every job on the same test pairs, a row "
            f"per value of the swept keys their scores depend on ({NOT_A_KEY}: a key they do not depend "
            "on, pooled), mean ± std over every job that scored them; a std of 0 says those jobs agree."
        )
    if references:
        parts.append(
            f"{', '.join(f'`{m}`' for m in references)}: the reference the improvements are measured from; "
            "its rows give its own score, not an improvement."
        )
    parts += [f"**Measured on the {note}.**" for note in table.corpus_notes]
    parts += [f"**{note}.**" for note in unavailable_notes(table)]
    parts += [f"**Not a result: {caveat}.**" for caveat in table.caveats]
    return "\n".join(parts) + "\n"


def snr_markdown(snr: SnrTable) -> str:
    """The caption, then a section per :attr:`SnrTable.table_scores`, the headline first."""
    sections = [
        f"## {score_title(score).title}, by input SNR\n\n{score_markdown(snr, score)}"
        for score in snr.table_scores
    ]
    return "\n".join([snr_caption(snr), *sections])


def snr_csv(snr: SnrTable) -> str:
    """Every score of every row at every input SNR (``all`` for over all SNRs), one line each: method,
    the swept keys (empty where pooled), seeds, jobs, score, input SNR, mean, std."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    swept = snr.table.swept
    writer.writerow(["method", *swept, "seeds", "jobs", "score", "input_snr_db", "mean", "std"])
    for row in snr.rows:
        for score in sorted(snr.scores[row.method]):
            for snr_db in [*snr.snrs, None]:
                mean, std = row.stat(score, snr_db)
                writer.writerow(
                    [
                        row.method,
                        *(row.keys.get(key, "") for key in swept),
                        row.seeds,
                        len(row.runs),
                        score,
                        "all" if snr_db is None else csv_cell(snr_db),
                        csv_cell(mean),
                        csv_cell(std),
                    ]
                )
    return buffer.getvalue()


def write_snr_tables(table: SweepTable, output_dir: Path) -> tuple[Path, Path] | None:
    """Write ``results_by_snr.md`` and ``results_by_snr.csv`` of ``table`` into ``output_dir``, each
    atomically; None (nothing written) when no successful job scored by input SNR."""
    snr = snr_table(table)
    if snr is None:
        return None
    md_path, csv_path = output_dir / BY_SNR_MD, output_dir / BY_SNR_CSV
    with atomic_write(csv_path) as stream:
        stream.write(snr_csv(snr))
    with atomic_write(md_path) as stream:
        stream.write(f"# {table.name}: scores by input SNR\n\n{snr_markdown(snr)}")
    return md_path, csv_path
