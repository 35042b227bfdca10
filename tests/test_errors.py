"""User errors are one line and exit status 2; bugs keep their traceback."""

from __future__ import annotations

import pytest

from neurohash.data.fasta import SequenceFileError
from neurohash.errors import NeurohashError, one_line, reported, user_message


def test_user_message_names_the_file() -> None:
    assert user_message(NeurohashError("reads.fa: record 3 ('r3'): empty")) == (
        "reads.fa: record 3 ('r3'): empty"
    )
    assert user_message(PermissionError(13, "Permission denied", "/ro/db")) == (
        "/ro/db: Permission denied"
    )
    assert user_message(OSError("no file named")) is None
    assert user_message(KeyError("bug")) is None


def test_reported_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc, reported("neurohash index"):
        raise NeurohashError("db/manifest.json:\n  not a database")
    assert exc.value.code == 2
    assert capsys.readouterr().err == "neurohash index: error: db/manifest.json: not a database\n"


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError), reported("train.py"):
        _ = 1 / 0


def test_one_line_shortens() -> None:
    assert one_line(ValueError("a\nb  c")) == "a b c"
    assert len(one_line(ValueError("x" * 1000))) == 300


def test_an_error_from_a_dataloader_worker_keeps_its_own_message() -> None:
    """torch re-raises a worker's error with the worker's traceback in front of its message."""
    from torch._utils import ExceptionWrapper

    try:
        raise SequenceFileError("reads.fa: record 'r3' holds non-nucleotide characters ['X']")
    except SequenceFileError:
        wrapper = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(SequenceFileError) as exc:
        wrapper.reraise()
    assert "Original Traceback" in str(exc.value)
    assert user_message(exc.value) == "reads.fa: record 'r3' holds non-nucleotide characters ['X']"
