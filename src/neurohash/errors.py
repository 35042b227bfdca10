"""The one family of errors a user can act on.

Every failure caused by input (a sequence file, a checkpoint, shards, a database, a Spark build)
raises a ``NeurohashError`` whose message names the file, and the record where there is one. The
entry points catch it once (``neurohash.cli.main`` and the Hydra apps) and print that message as
one line with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

EXIT_USER_ERROR = 2


class NeurohashError(Exception):
    """A failure the user can fix: the message names the file (and record) at fault."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception message squeezed onto one line (and shortened) for stderr."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def original_message(text: str) -> str:
    """The message of an error raised in a DataLoader worker: torch re-raises it in the parent
    with the worker's traceback before it, and the original ``module.Class: message`` last."""
    if "\nOriginal Traceback" not in text:
        return text
    last = text.rstrip().splitlines()[-1]
    _, sep, message = last.partition(": ")
    return message if sep else last


def user_message(exc: BaseException) -> str | None:
    """The one line to show for an error the user can fix, or None for a bug.

    A ``NeurohashError`` names its file; an ``OSError`` that carries a file name (no permission,
    read-only or full disk, a directory where a file belongs) is the environment, not a bug.
    """
    if isinstance(exc, NeurohashError):
        return one_line(original_message(str(exc)))
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or one_line(exc)
        return f"{os.fspath(exc.filename)}: {reason}"
    return None


@contextlib.contextmanager
def reported(prog: str) -> Iterator[None]:
    """Run an entry point's body; a user error becomes one line on stderr and exit status 2,
    without a traceback. Anything else (a bug) propagates with its traceback."""
    try:
        yield
    except (NeurohashError, OSError) as exc:
        message = user_message(exc)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
