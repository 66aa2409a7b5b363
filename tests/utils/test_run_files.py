from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from src.utils.run_files import atomic_write, write_json_atomic


def test_json_is_written_readable_by_all(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "run" / "metrics.json", {"b": 1, "a": [0.5]})
    assert json.loads(path.read_text()) == {"a": [0.5], "b": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="crash"), atomic_write(path) as stream:
        stream.write("half of the new content")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
