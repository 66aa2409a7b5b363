"""Checks of settings as they come from a config (``frontend.<key>``, ``model.<key>``, ...): each returns
the value or raises ``ValueError`` naming the key and a value that works, before anything is built."""

from __future__ import annotations

import math
from collections.abc import Sequence


def positive_int(key: str, value: object, example: int) -> int:
    """``value`` when it is an integer ``>= 1`` (not a bool); else ``ValueError`` suggesting ``example``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}: e.g. {key}={example}")
    if value < 1:
        raise ValueError(f"{key} must be >= 1, got {value}: e.g. {key}={example}")
    return value


def positive_ints(key: str, values: object, example: list[int]) -> list[int]:
    """``values`` as a list when it is a non-empty sequence of integers ``>= 1``; else ``ValueError``."""
    widths = list(values) if isinstance(values, Sequence) and not isinstance(values, str) else None
    if not widths:
        raise ValueError(f"{key} must list at least one width, got {values!r}: e.g. {key}={example}")
    if any(isinstance(w, bool) or not isinstance(w, int) for w in widths) or min(widths) < 1:
        raise ValueError(f"{key} must all be >= 1, got {widths}: e.g. {key}={example}")
    return widths


def probability(key: str, value: object, example: float) -> float:
    """``value`` when it is a number in ``[0, 1)`` (a dropout probability); else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"{key} must be in [0, 1), got {value!r}: e.g. {key}={example}")
    return value


def positive_number(key: str, value: object, example: float) -> float:
    """``value`` when it is a finite number ``> 0`` (not a bool); else ``ValueError``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{key} must be a positive number, got {value!r}: e.g. {key}={example}")
    return value


def real_number(key: str, value: object, example: float) -> int | float:
    """``value``, unchanged, when it is a finite int or float (not a bool); else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}: e.g. {key}={example}")
    return value


def flag(key: str, value: object) -> bool:
    """``value`` when it is a bool; else ``ValueError`` (a string such as ``"no"`` would count as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


def choice(key: str, value: object, choices: Sequence[object]) -> object:
    """``value`` when it is one of ``choices``; else ``ValueError`` listing them (``None`` as null)."""
    if value not in choices:
        names = ["null" if option is None else str(option) for option in choices]
        raise ValueError(f"{key} must be one of {', '.join(names)}, got {value!r}: e.g. {key}={names[0]}")
    return value
