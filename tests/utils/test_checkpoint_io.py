from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
import torch

from src.utils import checkpoint_io
from src.utils.checkpoint_io import SameFolderCheckpointIO


def test_a_checkpoint_round_trips(tmp_path: Path) -> None:
    io = SameFolderCheckpointIO()
    io.save_checkpoint({"state": torch.arange(3)}, tmp_path / "checkpoints" / "last.ckpt")
    assert torch.equal(io.load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state"], torch.arange(3))
    assert [path.name for path in (tmp_path / "checkpoints").iterdir()] == ["last.ckpt"]


def test_a_full_disk_keeps_the_earlier_checkpoint_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    io = SameFolderCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, path)

    def save_until_the_disk_is_full(content: Any, stream: Any) -> None:
        stream.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", save_until_the_disk_is_full)
    with pytest.raises(
        OSError, match=r"Could not write the checkpoint .*last\.ckpt.*paths\.log_dir"
    ) as caught:
        io.save_checkpoint({"epoch": 2}, path)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert io.load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
