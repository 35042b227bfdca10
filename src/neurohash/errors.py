"""The one family of errors a user can act on.

Every failure caused by input (a sequence file, a checkpoint, shards, a database, a Spark build)
raises a ``NeurohashError`` whose message names the file, and the record where there is one. The
entry points catch it once (``neurohash.cli.main`` and the Hydra apps) and print that message as
one line with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class NeurohashError(Exception):
    """A failure the user can fix: the message names the file (and record) at fault."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception message squeezed onto one line (and shortened) for stderr."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def naming(path: str, message: str) -> str:
    """``message`` prefixed with ``path`` unless it already starts with it."""
    return message if message.startswith(path) else f"{path}: {message}"
