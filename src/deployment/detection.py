"""Keyword detections in a long recording from the posteriors of a clip classifier on sliding windows.

The rule (after Chen, Parada & Heigold 2014, "Small-footprint keyword spotting using deep neural networks",
with whole clip-long windows in place of frames):

1. **Windows**: clip-long windows start every ``hop`` samples from the beginning; when the grid does not
   end on the recording's last sample, one more window ends there. A recording shorter than a clip is one
   window, zero-padded at the end (:func:`window_starts`).
2. **Smoothing**: each class's posterior is averaged over ``smoothing_windows`` consecutive windows
   centred on each window (``j - (w-1)//2 ... j + w//2``; fewer at the ends), where the paper's causal
   average trails; offline, centring keeps the times where they are (:func:`smooth_posteriors`).
3. **Thresholding and merging**: for every class that is not a background class (``_silence_``,
   ``_unknown_``: never reported), each maximal run of consecutive windows whose smoothed posterior is
   ``>= threshold`` is one detection, from the start of its first window to the end of its last, scored
   by the largest smoothed posterior in the run (:func:`detect_keywords`). With ``threshold > 0.5`` at
   most one class can pass in a window, as smoothed posteriors still sum to one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from src.data.speech_commands.splits import SILENCE_LABEL, UNKNOWN_LABEL

BACKGROUND_LABELS = frozenset({SILENCE_LABEL, UNKNOWN_LABEL})
"""The 12-class protocol's classes that are no keyword: never reported as detections."""


@dataclass(frozen=True)
class Detection:
    """A keyword found in a recording: ``label`` between ``start_s`` and ``end_s`` seconds, with ``score``
    the largest smoothed posterior of the windows it spans."""

    label: str
    start_s: float
    end_s: float
    score: float


def window_starts(num_samples: int, clip_samples: int, hop_samples: int) -> np.ndarray:
    """First sample of each window of ``clip_samples`` over a recording of ``num_samples``: ``0, hop,
    2 hop, ...`` while the window fits, and one more ending on the last sample when the grid does not
    (``[0]`` for a recording no longer than a clip). ``(windows,)`` int64, ascending.

    Raises:
        ValueError: a length or the hop is not positive.
    """
    if min(num_samples, clip_samples, hop_samples) < 1:
        raise ValueError(
            f"window_starts needs positive lengths, got num_samples={num_samples}, "
            f"clip_samples={clip_samples}, hop_samples={hop_samples}"
        )
    last = max(num_samples - clip_samples, 0)
    starts = np.arange(0, last + 1, hop_samples, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def smooth_posteriors(posteriors: np.ndarray, smoothing_windows: int) -> np.ndarray:
    """Centred moving average of ``(windows, classes)`` posteriors over ``smoothing_windows`` windows
    (window ``j`` averages ``j - (w-1)//2 ... j + w//2``, the ones that exist); same shape. ``1`` returns
    the posteriors unchanged.

    Raises:
        ValueError: ``smoothing_windows`` is below 1, or ``posteriors`` is not 2-D.
    """
    if smoothing_windows < 1:
        raise ValueError(f"smoothing_windows must be >= 1, got {smoothing_windows}")
    if posteriors.ndim != 2:
        raise ValueError(f"posteriors must be (windows, classes), got shape {posteriors.shape}")
    if smoothing_windows == 1 or len(posteriors) == 0:
        return posteriors.copy()
    before, after = (smoothing_windows - 1) // 2, smoothing_windows // 2
    cumulative = np.concatenate([np.zeros((1, posteriors.shape[1])), np.cumsum(posteriors, axis=0)])
    index = np.arange(len(posteriors))
    low = np.maximum(index - before, 0)
    high = np.minimum(index + after + 1, len(posteriors))
    return (cumulative[high] - cumulative[low]) / (high - low)[:, None]


def detect_keywords(
    smoothed: np.ndarray,
    starts_s: np.ndarray,
    window_s: float,
    class_names: Sequence[str],
    threshold: float,
) -> list[Detection]:
    """Detections from smoothed ``(windows, classes)`` posteriors of windows starting at ``starts_s``
    seconds (ascending) and lasting ``window_s``: one per maximal run of consecutive windows where a
    non-background class is ``>= threshold``; sorted by start time, then class order.

    Raises:
        ValueError: ``threshold`` is not in ``(0, 1)``, or the shapes disagree.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if smoothed.shape != (len(starts_s), len(class_names)):
        raise ValueError(
            f"smoothed posteriors of shape {smoothed.shape} do not fit {len(starts_s)} windows of "
            f"{len(class_names)} classes"
        )
    detections = []
    for index, label in enumerate(class_names):
        if label in BACKGROUND_LABELS:
            continue
        above = np.concatenate([[False], smoothed[:, index] >= threshold, [False]])
        edges = np.flatnonzero(np.diff(above.astype(np.int8)))
        for first, stop in zip(edges[::2], edges[1::2], strict=True):
            detections.append(
                Detection(
                    label=label,
                    start_s=float(starts_s[first]),
                    end_s=float(starts_s[stop - 1] + window_s),
                    score=float(smoothed[first:stop, index].max()),
                )
            )
    order = {label: i for i, label in enumerate(class_names)}
    return sorted(detections, key=lambda d: (d.start_s, order[d.label]))
