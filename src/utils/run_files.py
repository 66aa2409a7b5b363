"""Files written so that a reader (or a parallel job) never sees half of one."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; when the block ends without error it
    replaces ``path`` by an atomic rename (readable by all, like a file created normally), otherwise
    it is deleted and ``path`` is left as it was. ``mode`` is ``"w"`` or ``"wb"``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
        os.chmod(temp_name, 0o644)  # mkstemp makes the file readable by its owner only
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf: JSON has no such numbers) replaced by ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def write_json_atomic(path: str | Path, content: Mapping[str, Any]) -> Path:
    """Write ``content`` as indented, valid JSON to ``path`` with :func:`atomic_write`; a NaN or infinite
    number (e.g. a metric never measured) is written as ``null``."""
    with atomic_write(path) as stream:
        json.dump(json_safe(content), stream, indent=2, sort_keys=True, default=str, allow_nan=False)
        stream.write("\n")
    return Path(path)
