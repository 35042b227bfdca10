"""Writing results: all or nothing for regular files, through links, straight into FIFOs and
devices (which a rename would replace by a regular file)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from neurohash.errors import NeurohashError
from neurohash.files import output_file


def test_regular_file_is_replaced_only_when_all_went_well(tmp_path: Path) -> None:
    path = tmp_path / "hits.tsv"
    path.write_text("old\n")
    path.chmod(0o640)
    with pytest.raises(RuntimeError), output_file(str(path)) as out:
        out.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n"
    with output_file(str(path)) as out:
        out.write("new\n")
    assert path.read_text() == "new\n" and (path.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hits.tsv"]  # no temporary left


def test_a_link_is_written_through(tmp_path: Path) -> None:
    target = tmp_path / "results" / "hits.tsv"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "latest.tsv"
    link.symlink_to(target)
    with output_file(str(link)) as out:
        out.write("new\n")
    assert link.is_symlink() and target.read_text() == "new\n"


def test_fifo_and_device_are_streamed_to(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    with output_file(str(fifo)) as out:
        out.write("row\n")
    reader.join(timeout=10)
    assert received == ["row\n"] and fifo.exists() and not fifo.is_file()
    with output_file(os.devnull) as out:
        out.write("discarded\n")
    assert Path(os.devnull).is_char_device()


def test_unwritable_place_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with (
        pytest.raises(NeurohashError, match=str(blocker / "hits.tsv")),
        output_file(str(blocker / "hits.tsv")),
    ):
        pass
