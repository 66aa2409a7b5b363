"""What the encoders check beyond :mod:`src.utils.config_values`."""

from __future__ import annotations

import math
from collections.abc import Sequence


def common_divisors(widths: Sequence[int]) -> list[int]:
    """The ``groups`` values that divide every one of ``widths``, in increasing order."""
    gcd = math.gcd(*widths)
    return [d for d in range(1, gcd + 1) if gcd % d == 0]
