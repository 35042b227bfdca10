"""Writing outputs so that nothing is ever half-written: a temporary name, flushed, then renamed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

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
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
