"""Writing outputs so that nothing is ever half-written: a temporary name, flushed, then renamed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from neurohash.errors import NeurohashError

TMP_SUFFIX = ".tmp"


def temporary(path: Path) -> Path:
    """The name a file is written under before it is renamed into place."""
    return path.with_name(path.name + TMP_SUFFIX)


def replace_atomically(tmp: Path, path: Path) -> None:
    """Flush ``tmp`` to disk, then rename it over ``path``: readers see all or nothing."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = temporary(path)
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    replace_atomically(tmp, path)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read into one reused buffer: a new bytes object per chunk left ~200 MB
    of freed heap in a search process that had hashed a 3M-region database at open."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


@contextlib.contextmanager
def output_file(path: str) -> Iterator[TextIO]:
    """A text stream to write a result to: stdout for ``-``.

    A regular file (or a new name) is written under a temporary name beside it and renamed over
    it only when all went well, so a failed run leaves the old file; a symbolic link is followed,
    so the link stays and its target is replaced. Anything else (a FIFO, a device such as
    /dev/null) cannot be replaced and is written to directly.
    """
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        with open(target, "w") as handle:
            yield handle
        return
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        handle = open(tmp, "w")  # noqa: SIM115 (closed below, before the rename)
    except OSError as exc:
        raise NeurohashError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    try:
        with handle:
            yield handle
        if target.exists():
            shutil.copymode(target, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
