"""How the cost of the keyword-spotting data path grows with the corpus, at about 10%, 30% and 100% of the
speakers of the real Speech Commands v0.02 (11%, 33% and 111% of its clips).

    python -m benchmarks.data_scaling --scratch /tmp/scaling [--speakers 262 785 2618] [--docs docs]
    python -m benchmarks.data_scaling --from-results /tmp/scaling/results.json     (tables and plots only)

A size is a number of generator speakers (about 44 clips each: 2,618 speakers, the real corpus's count,
make about 118k clips against its 105,829). For each size, in ``<scratch>/speakers_<N>/`` (which must not
exist yet), in child processes whose process tree's memory is sampled from /proc every 0.5 s:

1. generation: ``python -m src.data.speech_commands.corpus --num-speakers N --workers 2``, timed; its
   clips are counted;
2. first cache build: every split of ``data=kws12`` (and of ``data=kws35``) decoded into a fresh
   ``data.cache_dir`` (``prepare_data`` and ``setup`` of the data module, timed in the child), and the
   cache's size on disk. The WAVs were written just before, so most are read from the page cache;
3. one epoch: ``python train.py data=kws12 experiment=bcresnet_recipe model.width_multiplier=1
   trainer.max_epochs=1`` with data, cache and logs in the size's folder (fit, validation and test, as a
   user runs it): its epoch time (``epoch_times_s`` of ``metrics.json``, validation excluded) and wall time;
4. the data path against the step: the training DataLoader alone (the config's batch size and
   ``data.num_workers``) for a whole epoch, against forward, backward and optimiser steps of the same
   model on batches of it, in alternating rounds; the ratio of their rates must be at least 5.

Memory is the largest sum over a child's process tree of the resident set (it includes the touched pages
of the memory-mapped cache, which the kernel can reclaim, and counts shared libraries once per process)
and of the anonymous memory (what has to fit in RAM), sampled at the same instants. The machine is
shared: each measurement waits until other processes are quiet, and the cores they used while it ran
are reported beside it.

It prints each size's figures as they come, keeps them in ``<scratch>/results.json``, then prints the
growth exponents and writes ``<docs>/scaling.md`` and its plots ``<docs>/scaling_*.png``; it exits 1 when
the data path is less than 5x the step at the largest size or a cost grows faster than linearly. The
corpus is generated speech (espeak-ng), not recordings: these are costs, which depend on the number and
length of the clips, not on what they say. Each size's folder is deleted when it is measured (``--keep``
keeps it).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from hydra.utils import instantiate
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from omegaconf import OmegaConf
from torchaudio.datasets.speechcommands import FOLDER_IN_ARCHIVE

from benchmarks.run_config import REPO_ROOT, compose_run_config
from src.data.speech_commands.corpus import CORPUS_NAME, count_clips
from src.training import build_task
from src.utils.run_files import atomic_write, write_json_atomic

DEFAULT_SPEAKERS = (262, 785, 2618)
REAL_CLIPS, REAL_SPEAKERS = 105_829, 2_618
GENERATOR_WORKERS = 2
# The loader must deliver batches at least this many times faster than the training step takes them.
MIN_DATA_PATH_RATIO = 5.0
# A cost whose exponent (cost ~ clips ** exponent) exceeds this grows faster than linearly.
MAX_LINEAR_EXPONENT = 1.15
SAMPLE_SECONDS = 0.5
# Each measurement waits (at most QUIET_TIMEOUT_SECONDS) until other processes use less than QUIET_CORES
# cores over QUIET_WINDOW_SECONDS; what they used while it ran is reported beside it.
QUIET_CORES, QUIET_WINDOW_SECONDS, QUIET_TIMEOUT_SECONDS = 0.1, 5.0, 900.0
# A measurement during which other processes used QUIET_CORES or more is repeated, up to this many times.
MAX_ATTEMPTS = 3
EPOCH_OVERRIDES = ("experiment=bcresnet_recipe", "model.width_multiplier=1", "trainer.max_epochs=1")
CACHE_DATA = ("kws12", "kws35")
GENERATED_NOTE = "generated corpus: synthetic espeak-ng speech, not real recordings"
GB = 1e9
MB = 1e6


# ---------------------------------------------------------------------------------------------- memory


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it, from the parent ids in ``/proc/<pid>/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # after the command name, which may hold spaces
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def tree_memory(pid: int) -> tuple[int, int]:
    """``(resident, anonymous)`` memory in bytes (``VmRSS`` and ``RssAnon`` of ``/proc/<pid>/status``),
    summed over the process tree of ``pid``; processes that end while it reads count 0. (The resident sums
    count file pages shared by several processes, such as libraries, once per process: an upper bound.)"""
    resident = anonymous = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in lines if line.endswith(" kB")}
        resident += fields.get("VmRSS", 0)
        anonymous += fields.get("RssAnon", 0)
    return resident, anonymous


class PeakMemory:
    """Samples :func:`tree_memory` of ``pid`` every ``interval`` seconds on a thread, between
    :meth:`start` and :meth:`stop`; ``peak_rss`` and ``peak_anonymous`` (bytes) are the largest sums seen."""

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_anonymous = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stopped.is_set():
            resident, anonymous = tree_memory(self.pid)
            self.peak_rss = max(self.peak_rss, resident)
            self.peak_anonymous = max(self.peak_anonymous, anonymous)
            self._stopped.wait(self.interval)


def busy_cpu_seconds() -> float:
    """CPU seconds every process of the machine has used since boot (``/proc/stat``: user, nice,
    system, irq, softirq and steal time of all cores)."""
    user, nice, system, _, _, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds this process (all its threads) has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def other_cpu_load(seconds: float = QUIET_WINDOW_SECONDS) -> float:
    """Cores used on average over the next ``seconds`` by processes other than this one."""
    busy, own = busy_cpu_seconds(), own_cpu_seconds()
    time.sleep(seconds)
    return max(busy_cpu_seconds() - busy - (own_cpu_seconds() - own), 0.0) / seconds


def wait_until_quiet(timeout: float = QUIET_TIMEOUT_SECONDS) -> float:
    """Wait until other processes use less than ``QUIET_CORES`` cores (measured over
    ``QUIET_WINDOW_SECONDS``), at most ``timeout`` seconds (then go on, saying so); returns the last load."""
    deadline = time.monotonic() + timeout
    load = other_cpu_load()
    while load >= QUIET_CORES and time.monotonic() < deadline:
        print(f"  waiting: other processes use {load:.2f} cores", flush=True)
        load = other_cpu_load()
    if load >= QUIET_CORES:
        print(f"  going on although other processes use {load:.2f} cores", flush=True)
    return load


@dataclasses.dataclass(frozen=True)
class ChildRun:
    """What :func:`run_measured` measured of one child process: wall seconds; peak resident and anonymous
    memory of its process tree and the largest resident set of any one of its processes (bytes); the
    cores used on average by other processes while it ran (0: it had the machine to itself)."""

    seconds: float
    peak_rss: int
    peak_anonymous: int
    max_process_rss: int
    other_cores: float

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def run_measured(command: Sequence[str], log_file: Path) -> ChildRun:
    """Run ``command`` from the repository with stdout and stderr into ``log_file``, timing it, sampling
    its process tree's memory and measuring the CPU that other processes used meanwhile.

    Raises:
        RuntimeError: it exits non-zero (the message names the command and the log).
    """
    with open(log_file, "wb") as log:
        busy, own = busy_cpu_seconds(), own_cpu_seconds()
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        sampler = PeakMemory(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        sampler.stop()
        children = usage.ru_utime + usage.ru_stime
        other = busy_cpu_seconds() - busy - children - (own_cpu_seconds() - own)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log_file.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"{' '.join(map(str, command))} exited with {process.returncode}; its log is {log_file}:\n"
            + "\n".join(tail)
        )
    return ChildRun(
        seconds, sampler.peak_rss, sampler.peak_anonymous, usage.ru_maxrss * 1024, max(other, 0.0) / seconds
    )


def folder_bytes(folder: Path) -> int:
    """Total size in bytes of the files under ``folder``."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


# ------------------------------------------------------------------------------- stages (child processes)


def data_overrides(root: Path, speakers: int, data: str, cache_dir: Path) -> list[str]:
    """Overrides that read the generated corpus of ``speakers`` speakers under ``root`` as ``data`` and
    cache its clips in ``cache_dir``."""
    return [
        f"data={data}",
        f"data.root={root}",
        f"data.generator.num_speakers={speakers}",
        f"data.cache_dir={cache_dir}",
    ]


def build_caches(overrides: Sequence[str]) -> dict[str, Any]:
    """Build (or reuse) the caches of every split of the data of ``overrides``; returns the seconds
    ``prepare_data`` and ``setup`` took and the split sizes."""
    datamodule = instantiate(compose_run_config(overrides).data, _convert_="all")
    start = time.perf_counter()
    datamodule.prepare_data()
    datamodule.setup(None)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "split_sizes": {s: len(datamodule.files(s)) for s in ("train", "val", "test")},
    }


def data_path_rates(overrides: Sequence[str], rounds: int, steps: int, warmup: int = 3) -> dict[str, Any]:
    """Batches per second of the training DataLoader of ``overrides`` (whole epochs) and training steps
    per second (forward, backward and the configured optimiser's step, on ``steps`` of its batches after
    ``warmup`` untimed ones) of the task it builds, each the median of ``rounds`` alternating rounds.

    Raises:
        ValueError: the training split has fewer than ``warmup + 1`` batches.
    """
    cfg = compose_run_config(overrides)
    L.seed_everything(cfg.seed)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    groups = ("task", "frontend", "model", "optimizer", "scheduler")
    model = build_task(
        {group: OmegaConf.to_container(cfg[group], resolve=True) for group in groups}, datamodule
    )
    model.train()
    configured = model.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    loader = datamodule.train_dataloader()
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == warmup + steps:
            break
    if len(batches) <= warmup:
        raise ValueError(f"the training split has {len(batches)} batches; at least {warmup + 1} are needed")
    timed = batches[warmup:]

    def step(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        waveforms, lengths, labels = batch
        optimizer.zero_grad()
        model.criterion(model(waveforms, lengths), labels).backward()
        optimizer.step()

    for batch in batches[:warmup]:
        step(batch)
    loader_seconds, step_seconds, loader_batches = [], [], 0
    for repeat in range(rounds):
        for part in ("loader", "steps") if repeat % 2 == 0 else ("steps", "loader"):
            start = time.perf_counter()
            if part == "loader":
                loader_batches = sum(1 for _ in loader)
                loader_seconds.append(time.perf_counter() - start)
            else:
                for batch in timed:
                    step(batch)
                step_seconds.append(time.perf_counter() - start)
    loader_rate = loader_batches / statistics.median(loader_seconds)
    step_rate = len(timed) / statistics.median(step_seconds)
    return {
        "loader_batches_per_s": loader_rate,
        "steps_per_s": step_rate,
        "ratio": loader_rate / step_rate,
        "batches_per_epoch": loader_batches,
        "timed_steps": len(timed),
        "rounds": rounds,
        "batch_size": datamodule.batch_size,
        "num_workers": datamodule.num_workers,
        "torch_threads": torch.get_num_threads(),
    }


# ------------------------------------------------------------------------------------------ one size


def stage_command(stage: str, overrides: Sequence[str], result: Path, **options: int) -> list[str]:
    """The command line that runs ``stage`` of this script in a child process."""
    extra = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    return [
        sys.executable,
        "-m",
        "benchmarks.data_scaling",
        "--stage",
        stage,
        "--result",
        str(result),
        *extra,
        "--",
        *overrides,
    ]


def measure_cleanly(
    command: Sequence[str], log_file: Path, reset: Path | None, collect: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``command`` with :func:`run_measured` once other processes are quiet, and again (at most
    ``MAX_ATTEMPTS`` times in all) while they used ``QUIET_CORES`` or more meanwhile; ``reset`` (a
    folder of the command's outputs, or ``None``) is deleted before each attempt, and ``collect()`` reads
    what an attempt wrote. Returns the :class:`ChildRun` fields and ``collect()``'s items of the attempt
    that other processes disturbed least, and ``attempts``, the number of attempts made."""
    best: dict[str, Any] | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        wait_until_quiet()
        if reset is not None:
            shutil.rmtree(reset, ignore_errors=True)
        run = run_measured(command, log_file)
        if best is None or run.other_cores < best["other_cores"]:
            best = {**run.as_dict(), **collect()}
        best["attempts"] = attempt
        if run.other_cores < QUIET_CORES:
            break
        print(f"  other processes used {run.other_cores:.2f} cores meanwhile: measuring again", flush=True)
    assert best is not None  # MAX_ATTEMPTS >= 1
    return best


def measure_size(
    scratch: Path, speakers: int, *, cache_data: Sequence[str], rounds: int, steps: int
) -> dict[str, Any]:
    """Every figure of one corpus size (see the module docstring), measured in ``scratch/speakers_<N>``.

    Raises:
        FileExistsError: that folder exists (its corpus would not be generated, nor its caches built).
    """
    root = scratch / f"speakers_{speakers}"
    if root.exists():
        raise FileExistsError(
            f"{root} exists, so its corpus would be reused, not generated: delete it or choose another "
            "--scratch"
        )
    root.mkdir(parents=True)
    result: dict[str, Any] = {"speakers": speakers}
    corpus_dir = root / FOLDER_IN_ARCHIVE / CORPUS_NAME
    generate = [sys.executable, "-m", "src.data.speech_commands.corpus", "--root", str(root)]
    generate += ["--num-speakers", str(speakers), "--workers", str(GENERATOR_WORKERS)]
    result["generation"] = measure_cleanly(generate, root / "generation.log", root / FOLDER_IN_ARCHIVE, dict)
    result["clips"] = sum(count_clips(corpus_dir).values())
    result["corpus_bytes"] = folder_bytes(corpus_dir)
    print(
        f"{speakers} speakers: {result['clips']} clips generated in {result['generation']['seconds']:.1f} s",
        flush=True,
    )

    result["caches"] = {}
    for data in cache_data:
        cache_dir, built = root / f"cache_{data}", root / f"{data}.json"
        cache = measure_cleanly(
            stage_command("cache", data_overrides(root, speakers, data, cache_dir), built),
            root / f"cache_{data}.log",
            cache_dir,
            lambda built=built, cache_dir=cache_dir: {
                **json.loads(built.read_text()),
                "bytes": folder_bytes(cache_dir),
            },
        )
        result["caches"][data] = cache
        print(
            f"  {data} cache: {sum(cache['split_sizes'].values())} clips decoded in {cache['seconds']:.1f} "
            f"s, {cache['bytes'] / MB:.0f} MB",
            flush=True,
        )

    overrides = data_overrides(root, speakers, "kws12", root / "cache_kws12")
    log_dir = root / "logs"

    def epoch_metrics() -> dict[str, Any]:
        (metrics_file,) = log_dir.glob("*/runs/*/metrics.json")
        metrics = json.loads(metrics_file.read_text())
        return {
            "epoch_seconds": metrics["epoch_times_s"][0],
            "split_sizes": metrics["split_sizes"],
            "hardware": metrics["hardware"],
        }

    training = measure_cleanly(
        [sys.executable, "train.py", *overrides, *EPOCH_OVERRIDES, f"paths.log_dir={log_dir}"],
        root / "train.log",
        log_dir,
        epoch_metrics,
    )
    result["training"] = training
    print(
        f"  epoch: {training['epoch_seconds']:.1f} s ({training['split_sizes']['train']} training clips), "
        f"train.py {training['seconds']:.1f} s, peak RSS {training['peak_rss'] / GB:.2f} GB (anonymous "
        f"{training['peak_anonymous'] / GB:.2f} GB)",
        flush=True,
    )

    rates_file = root / "data_path.json"
    rates = measure_cleanly(
        stage_command("data-path", [*overrides, *EPOCH_OVERRIDES], rates_file, rounds=rounds, steps=steps),
        root / "data_path.log",
        None,  # the stage rewrites its result file
        lambda: json.loads(rates_file.read_text()),
    )
    rates["epoch_batches_per_s"] = rates["batches_per_epoch"] / training["epoch_seconds"]
    result["data_path"] = rates
    print(
        f"  loader {rates['loader_batches_per_s']:.1f} batches/s, training step "
        f"{rates['steps_per_s']:.2f}/s: ratio {rates['ratio']:.1f}",
        flush=True,
    )
    return result


# ------------------------------------------------------------------------------------- growth and report


def growth_exponent(clips: Sequence[float], values: Sequence[float]) -> float:
    """The exponent ``b`` of ``value ~ clips ** b``, fitted by least squares on the logarithms (1:
    linear growth, constant per clip); NaN with fewer than two sizes."""
    if len(clips) < 2 or len(set(clips)) < 2:
        return math.nan
    return float(np.polyfit(np.log(clips), np.log(values), 1)[0])


def growing_figures(results: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Each cost that should grow at most linearly with the corpus -> its value at each size."""
    figures = {
        "generation time": [r["generation"]["seconds"] for r in results],
        "corpus on disk": [r["corpus_bytes"] for r in results],
    }
    for data in results[0]["caches"]:
        figures[f"{data} first cache build"] = [r["caches"][data]["seconds"] for r in results]
        figures[f"{data} cache on disk"] = [r["caches"][data]["bytes"] for r in results]
        figures[f"{data} cache build peak memory (RSS)"] = [r["caches"][data]["peak_rss"] for r in results]
    figures["training epoch"] = [r["training"]["epoch_seconds"] for r in results]
    figures["train.py wall time"] = [r["training"]["seconds"] for r in results]
    figures["train.py peak memory (RSS)"] = [r["training"]["peak_rss"] for r in results]
    figures["train.py peak anonymous memory"] = [r["training"]["peak_anonymous"] for r in results]
    return figures


def growth_exponents(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each cost of :func:`growing_figures` -> its growth exponent (:func:`growth_exponent`)."""
    clips = [r["clips"] for r in results]
    return {name: growth_exponent(clips, values) for name, values in growing_figures(results).items()}


def superlinear(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The costs of :func:`growing_figures` whose growth exponent exceeds ``MAX_LINEAR_EXPONENT``."""
    return {name: value for name, value in growth_exponents(results).items() if value > MAX_LINEAR_EXPONENT}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; the first column is left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def per_clip(value: float, clips: int, unit: float, name: str) -> str:
    return f"{value / clips / unit:.3g} {name}"


def _split_sizes(sizes: dict[str, int]) -> str:
    return " / ".join(f"{sizes[split]:,}" for split in ("train", "val", "test"))


def cost_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per size: clips, generation, first cache builds, cache sizes, the epoch."""
    header = ["speakers", "clips (share of 105,829)", "generation", "corpus on disk"]
    for data in results[0]["caches"]:
        header += [f"{data} clips (train / val / test)", f"{data} first cache build", f"{data} cache on disk"]
    header += ["epoch (kws12, BC-ResNet-1)", "train.py wall (fit, val, test)"]
    rows = []
    for r in results:
        clips = r["clips"]
        generation = r["generation"]["seconds"]
        row = [
            f"{r['speakers']:,}",
            f"{clips:,} ({clips / REAL_CLIPS:.0%})",
            f"{generation:.1f} s ({per_clip(generation, clips, 1e-3, 'ms')}/clip)",
            f"{r['corpus_bytes'] / MB:,.0f} MB",
        ]
        for cache in r["caches"].values():
            decoded = sum(cache["split_sizes"].values())
            row += [
                _split_sizes(cache["split_sizes"]),
                f"{cache['seconds']:.1f} s ({per_clip(cache['seconds'], decoded, 1e-3, 'ms')}/clip)",
                f"{cache['bytes'] / MB:,.0f} MB",
            ]
        training = r["training"]
        row += [
            f"{training['epoch_seconds']:.1f} s "
            f"({per_clip(training['epoch_seconds'], training['split_sizes']['train'], 1e-3, 'ms')}/clip)",
            f"{training['seconds']:.0f} s",
        ]
        rows.append(row)
    return markdown_table(header, rows)


def memory_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per size: peak memory of generation, cache builds and train.py."""
    header = ["speakers", "generation", *(f"{data} cache build" for data in results[0]["caches"])]
    header += ["train.py (RSS)", "train.py (anonymous)", "train.py (largest process RSS)"]
    rows = []
    for r in results:
        row = [f"{r['speakers']:,}", f"{r['generation']['peak_rss'] / GB:.2f} GB"]
        row += [f"{cache['peak_rss'] / GB:.2f} GB" for cache in r["caches"].values()]
        training = r["training"]
        row += [f"{training[key] / GB:.2f} GB" for key in ("peak_rss", "peak_anonymous", "max_process_rss")]
        rows.append(row)
    return markdown_table(header, rows)


def data_path_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per size: loader batches/s against training steps/s, and their ratio."""
    header = [
        "speakers",
        "training batches",
        "loader (batches/s)",
        "training step (steps/s)",
        "ratio",
        "train.py epoch (batches/s)",
        "loader / train.py epoch",
    ]
    rows = []
    for r in results:
        rates = r["data_path"]
        rows.append(
            [
                f"{r['speakers']:,}",
                f"{rates['batches_per_epoch']:,}",
                f"{rates['loader_batches_per_s']:,.0f}",
                f"{rates['steps_per_s']:.2f}",
                f"**{rates['ratio']:,.0f}x**",
                f"{rates['epoch_batches_per_s']:.2f}",
                f"{rates['loader_batches_per_s'] / rates['epoch_batches_per_s']:,.0f}x",
            ]
        )
    return markdown_table(header, rows)


def load_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per size: the cores other processes used on average during each measurement."""
    header = ["speakers", "generation", *(f"{data} cache build" for data in results[0]["caches"])]
    header += ["train.py", "data path"]
    rows = []
    for r in results:
        loads = [r["generation"], *r["caches"].values(), r["training"], r["data_path"]]
        rows.append([f"{r['speakers']:,}", *(_load(load) for load in loads)])
    return markdown_table(header, rows)


def _load(measured: dict[str, Any]) -> str:
    attempts = measured.get("attempts", 1)
    return f"{measured['other_cores']:.2f}" + (f" ({attempts} attempts)" if attempts > 1 else "")


def growth_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per cost: its value per clip at each size relative to the smallest, and its exponent."""
    clips = [r["clips"] for r in results]
    header = ["cost", *(f"per clip at {r['speakers']:,} speakers (x smallest)" for r in results), "exponent"]
    rows = []
    for name, values in growing_figures(results).items():
        unit = [v / c for v, c in zip(values, clips, strict=True)]
        exponent = growth_exponent(clips, values)
        flag = " (faster than linear)" if exponent > MAX_LINEAR_EXPONENT else ""
        rows.append([name, *(f"{u / unit[0]:.2f}" for u in unit), f"{exponent:.2f}{flag}"])
    return markdown_table(header, rows)


def memory_fit(results: Sequence[dict[str, Any]], memory_total: int) -> str:
    """Whether the 12-class run of the largest size, and a 35-class one estimated from its cache, fit in
    ``memory_total`` bytes with room (at most half of it)."""
    largest = results[-1]
    training = largest["training"]
    rss, anonymous = training["peak_rss"], training["peak_anonymous"]
    text = (
        f"At {largest['speakers']:,} speakers the 12-class `train.py` process tree peaked at "
        f"{rss / GB:.2f} GB resident, of which {anonymous / GB:.2f} GB anonymous, of the machine's "
        f"{memory_total / GB:.1f} GB ({rss / memory_total:.0%})."
    )
    caches = largest["caches"]
    if not ("kws35" in caches and "kws12" in caches):
        return f"{text} It {_room(rss, memory_total)}."
    extra = max(caches["kws35"]["bytes"] - caches["kws12"]["bytes"], 0)
    bound = rss + extra
    return (
        f"{text} The 35-class cache is {caches['kws35']['bytes'] / caches['kws12']['bytes']:.2f}x the "
        f"12-class one ({caches['kws35']['bytes'] / GB:.2f} GB against {caches['kws12']['bytes'] / GB:.2f} "
        "GB). The 35-class run was not measured; the clips are memory-mapped, not loaded, so estimated "
        f"from the cache sizes it needs {rss / GB:.2f} + {extra / GB:.2f} = {bound / GB:.2f} GB even with "
        f"its whole cache resident ({bound / memory_total:.0%} of the machine). The 12-class run "
        f"{_room(rss, memory_total)}; by that estimate, so does the 35-class one."
        if bound <= memory_total / 2
        else f"{text} A 35-class run, estimated from the cache sizes at {bound / GB:.2f} GB, "
        f"{_room(bound, memory_total)}."
    )


def _room(peak: int, memory_total: int) -> str:
    """Whether ``peak`` bytes fit in ``memory_total`` with room: at most half of it."""
    return "fits with room to spare" if peak <= memory_total / 2 else "does NOT fit with room (over half)"


def plot_growth(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Times, sizes on disk and peak memory against the number of clips (log-log), each with a dotted
    line of linear growth through its smallest size."""
    clips = np.array([r["clips"] for r in results], dtype=float)
    panels: dict[str, dict[str, list[float]]] = {
        "time (s)": {"generation": [r["generation"]["seconds"] for r in results]},
        "on disk (GB)": {"corpus (WAV)": [r["corpus_bytes"] / GB for r in results]},
        "peak memory (GB)": {
            "train.py resident": [r["training"]["peak_rss"] / GB for r in results],
            "train.py anonymous": [r["training"]["peak_anonymous"] / GB for r in results],
        },
    }
    for data in results[0]["caches"]:
        panels["time (s)"][f"{data} first cache build"] = [r["caches"][data]["seconds"] for r in results]
        panels["on disk (GB)"][f"{data} cache"] = [r["caches"][data]["bytes"] / GB for r in results]
    panels["time (s)"]["epoch (kws12, BC-ResNet-1)"] = [r["training"]["epoch_seconds"] for r in results]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), constrained_layout=True)
    for axis, (ylabel, lines) in zip(axes, panels.items(), strict=True):
        for label, values in lines.items():
            (line,) = axis.loglog(clips, values, "o-", label=label)
            axis.loglog(clips, values[0] * clips / clips[0], ":", color=line.get_color(), linewidth=1)
        _plain_ticks(axis, clips)
        axis.set_xlabel("clips in the corpus")
        axis.set_ylabel(ylabel)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"Cost against corpus size; dotted: linear growth ({GENERATED_NOTE})", fontsize=10)
    _save(figure, path)


def plot_data_path(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Loader batches/s, training steps/s and train.py's epoch batches/s against the number of clips."""
    clips = [r["clips"] for r in results]
    figure, axis = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
    for key, label in (
        ("loader_batches_per_s", "training DataLoader alone"),
        ("steps_per_s", "training step (forward, backward, optimiser)"),
        ("epoch_batches_per_s", "train.py epoch"),
    ):
        axis.loglog(clips, [r["data_path"][key] for r in results], "o-", label=label)
    _plain_ticks(axis, clips)
    axis.set_xlabel("clips in the corpus")
    axis.set_ylabel("batches per second")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(f"Data path against the step\n({GENERATED_NOTE})", fontsize=10)
    _save(figure, path)


def _plain_ticks(axis: Axes, clips: Sequence[int]) -> None:
    """Ticks of a log-log axis as plain numbers: the sizes measured on the x-axis, ``0.5``, ``20`` (not
    powers of ten) on the y-axis."""
    axis.xaxis.set_major_locator(FixedLocator(clips))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.xaxis.set_minor_locator(NullLocator())
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,g}"))
    axis.yaxis.set_minor_formatter(
        FuncFormatter(lambda value, _: f"{value:,g}" if _leads_2_or_5(value) else "")
    )


def _leads_2_or_5(value: float) -> bool:
    """Whether ``value``'s leading digit is 2 or 5 (with zeros after it): the minor ticks worth a label."""
    return value > 0 and round(value / 10 ** math.floor(math.log10(value)), 6) in (2, 5)


def _save(figure: Any, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)
    with atomic_write(path, "wb") as stream:
        stream.write(buffer.getvalue())


def machine_description(results: Sequence[dict[str, Any]], context: dict[str, Any]) -> str:
    """The machine, torch threads and loader settings the figures were measured with (``context``'s
    ``omp_num_threads``: the ``OMP_NUM_THREADS`` of the run, ``None`` when unset)."""
    hardware = results[-1]["training"]["hardware"]
    rates = results[-1]["data_path"]
    gpu = f"GPU {hardware['gpu']}" if hardware.get("gpu") else "no GPU"
    omp = context.get("omp_num_threads")
    threads = "torch's default" if omp is None else f"OMP_NUM_THREADS={omp}"
    return (
        f"{hardware['cpu']}, {hardware['cpu_cores']} cores, {gpu}; torch {hardware['torch']} with "
        f"{hardware['torch_threads']} threads ({threads}); data.batch_size={rates['batch_size']}, "
        f"data.num_workers={rates['num_workers']} (the kws12 config's)"
    )


def report(results: Sequence[dict[str, Any]], context: dict[str, Any]) -> str:
    """The markdown page of ``results`` (sizes in increasing order); ``context`` has ``command``,
    ``date`` and ``memory_total`` (bytes). Prose is wrapped at 110 characters, tables are not."""
    clips = [r["clips"] for r in results]
    largest = results[-1]
    rates = largest["data_path"]
    too_fast = superlinear(results)
    growth = (
        f"No cost grows faster than linearly: the largest exponent is "
        f"{max(growth_exponents(results).values()):.2f} (the check allows up to {MAX_LINEAR_EXPONENT}, for "
        "measurement noise); per clip, each costs about the same at every size, or less."
        if not too_fast
        else "Faster than linear: " + ", ".join(f"{name} ({value:.2f})" for name, value in too_fast.items())
    )
    verdict = "meets" if rates["ratio"] >= MIN_DATA_PATH_RATIO else "does NOT meet"
    prose = {
        "intro": (
            f"Measured on {context['date']} by `{context['command']}`; every figure on this page was "
            "written by that command from its own measurements. **The corpus is generated speech** "
            "(synthetic espeak-ng speech from `src/data/speech_commands/corpus.py`, not real recordings): "
            "these are costs, which depend on the number and length of the clips, not on what they say. "
            f"The largest size has about as many speakers ({REAL_SPEAKERS:,}) as the real Speech Commands "
            f"v0.02, and {clips[-1] / REAL_CLIPS:.0%} of its {REAL_CLIPS:,} clips."
        ),
        "machine": (
            f"Machine: {machine_description(results, context)}; "
            f"{context['memory_total'] / GB:.1f} GB of memory."
        ),
        "cost": (
            "Generation: `python -m src.data.speech_commands.corpus --num-speakers N --workers 2`. First "
            "cache build: `prepare_data` and `setup` of the data module, decoding every split into a fresh "
            "`data.cache_dir` (the WAVs had just been written, so most came from the page cache). Epoch: "
            "the `train/epoch_time_s` of `python train.py data=kws12 experiment=bcresnet_recipe "
            "model.width_multiplier=1 trainer.max_epochs=1` (validation excluded); its wall time includes "
            "start-up, validation and the test."
        ),
        "growth": (
            "Each cost per clip, relative to the smallest size, and the exponent `b` of `cost ~ clips^b` "
            "fitted on the logarithms (1: linear)."
        ),
        "memory": (
            "Peak over each process tree, sampled every 0.5 s from `/proc/<pid>/status`: the resident set "
            "(it includes the pages of the memory-mapped cache a process has read, which the kernel can "
            "reclaim, and counts shared libraries once per process) and its anonymous part (what has to fit "
            "in memory); the largest single process's resident set from `wait4`."
        ),
        "data path": (
            "The training DataLoader alone, iterating whole epochs, against forward, backward and optimiser "
            f"steps (SGD of the recipe) of the same BC-ResNet-1 task on {rates['timed_steps']} of its "
            f"batches, the median of {rates['rounds']} alternating rounds each, in one process; and the "
            "batches per second of `train.py`'s epoch above."
        ),
        "load": (
            "The machine is shared with other work. Each measurement started once other processes had used "
            f"less than {QUIET_CORES} cores for {QUIET_WINDOW_SECONDS:.0f} s, and was made again (at most "
            f"{MAX_ATTEMPTS} times in all, keeping the least disturbed) when they used more while it ran. "
            "The cores they used on average during the measurement kept (from `/proc/stat`, less the "
            "measured processes' own CPU time):"
        ),
        "verdict": (
            f"At {largest['speakers']:,} speakers the loader delivers batches {rates['ratio']:,.0f}x as fast "
            f"as the training step takes them, which {verdict} the target of at least "
            f"{MIN_DATA_PATH_RATIO:.0f}x."
        ),
    }
    wrapped = {
        key: textwrap.fill(text, 110, break_long_words=False, break_on_hyphens=False)
        for key, text in {
            **prose,
            "growth verdict": growth,
            "fit": memory_fit(results, context["memory_total"]),
        }.items()
    }
    sections = [
        "# Cost as the data grows (generated corpus)",
        wrapped["intro"],
        wrapped["machine"],
        "## Cost at each size",
        wrapped["cost"],
        cost_table(results),
        "## Growth",
        wrapped["growth"],
        growth_table(results),
        wrapped["growth verdict"],
        "![cost against corpus size](scaling_growth.png)",
        "## Memory",
        wrapped["memory"],
        memory_table(results),
        wrapped["fit"],
        "## The data path against the training step",
        wrapped["data path"],
        data_path_table(results),
        wrapped["verdict"],
        "![data path against the step](scaling_data_path.png)",
        "## Load from other processes",
        wrapped["load"],
        load_table(results),
    ]
    return "\n\n".join(sections) + "\n"


def write_report(results: Sequence[dict[str, Any]], context: dict[str, Any], docs: Path) -> Path:
    """Write ``docs/scaling.md`` and its plots; returns the page's path."""
    plot_growth(results, docs / "scaling_growth.png")
    plot_data_path(results, docs / "scaling_data_path.png")
    page = docs / "scaling.md"
    with atomic_write(page) as stream:
        stream.write(report(results, context))
    return page


def memory_total() -> int:
    """The machine's memory in bytes (``MemTotal`` of ``/proc/meminfo``)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemTotal line")


def check_scratch(scratch: Path) -> Path:
    """``scratch`` resolved; refused inside the repository (its data/ holds the default corpus)."""
    resolved = scratch.expanduser().resolve()
    if resolved == REPO_ROOT or REPO_ROOT in resolved.parents:
        raise ValueError(
            f"--scratch {scratch} is inside the repository {REPO_ROOT}; give a folder outside it with room "
            "for about 4 GB per 1,000 speakers, e.g. --scratch /tmp/scaling"
        )
    return resolved


# ---------------------------------------------------------------------------------------------- command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scratch", type=Path, help="folder for corpora, caches and logs (not in the repo)")
    parser.add_argument(
        "--speakers",
        type=int,
        nargs="+",
        default=list(DEFAULT_SPEAKERS),
        help="corpus sizes as generator speakers (default: 262 785 2618)",
    )
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs", help="where scaling.md goes")
    parser.add_argument("--no-kws35", action="store_true", help="build the kws12 cache only")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of loader and steps")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per round")
    parser.add_argument("--keep", action="store_true", help="keep each size's folder")
    parser.add_argument("--from-results", type=Path, help="write the page from this results.json only")
    parser.add_argument("--stage", choices=("cache", "data-path"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage is None and args.from_results is None and args.scratch is None:
        parser.error("--scratch is required (or --from-results)")
    if any(n < 1 for n in args.speakers) or sorted(set(args.speakers)) != args.speakers:
        parser.error(f"--speakers must be positive and increasing, got {args.speakers}")
    return args


def run_stage(args: argparse.Namespace) -> None:
    """A stage run in a child process by :func:`measure_size`: its result goes to ``--result`` as JSON."""
    stages: dict[str, Callable[[], dict[str, Any]]] = {
        "cache": lambda: build_caches(args.overrides),
        "data-path": lambda: data_path_rates(args.overrides, args.rounds, args.steps),
    }
    write_json_atomic(args.result, stages[args.stage]())


def main(argv: list[str] | None = None) -> int:
    """Measure every size (or read ``--from-results``), print the growth, write the page; returns the
    exit status (1: a target is missed)."""
    args = parse_args(argv)
    if args.stage is not None:
        run_stage(args)
        return 0
    if args.from_results is not None:
        saved = json.loads(args.from_results.read_text())
        results, context = saved["results"], saved["context"]
    else:
        scratch = check_scratch(args.scratch)
        context = {
            "command": " ".join(
                ["python -m benchmarks.data_scaling", *(sys.argv[1:] if argv is None else argv)]
            ),
            "date": datetime.now().astimezone().strftime("%Y-%m-%d"),
            "memory_total": memory_total(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        results = []
        for speakers in args.speakers:
            cache_data = CACHE_DATA[:1] if args.no_kws35 else CACHE_DATA
            results.append(
                measure_size(scratch, speakers, cache_data=cache_data, rounds=args.rounds, steps=args.steps)
            )
            write_json_atomic(scratch / "results.json", {"results": results, "context": context})
            if not args.keep:
                shutil.rmtree(scratch / f"speakers_{speakers}")
    print(f"\nMachine: {machine_description(results, context)} ({GENERATED_NOTE})\n")
    for table in (cost_table, memory_table, data_path_table, growth_table, load_table):
        print(table(results) + "\n")
    print(memory_fit(results, context["memory_total"]))
    page = write_report(results, context, args.docs)
    print(f"\nwrote {page} and its plots")
    status = 0
    ratio = results[-1]["data_path"]["ratio"]
    if ratio < MIN_DATA_PATH_RATIO:
        print(f"FAILED: the loader is only {ratio:.1f}x the training step at the largest size")
        status = 1
    for name, exponent in superlinear(results).items():
        print(f"FAILED: {name} grows faster than linearly (exponent {exponent:.2f})")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
