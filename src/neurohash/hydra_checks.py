"""Hydra callbacks that turn a run directory the job cannot use into one line and exit status 2.

Hydra creates the run (or sweep) directory before the task function starts, so the task's own
``errors.reported`` never sees that failure; Hydra would print a traceback instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from neurohash.errors import reported


def make_directory(path: str, prog: str) -> None:
    """Create ``path`` (and parents), or report why not as one line and exit with status 2."""
    with reported(prog):
        Path(path).mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(13, "not writable", path)


class RunDirCheck(Callback):
    """Checks ``hydra.run.dir`` (single run) or ``hydra.sweep.dir`` (multirun) is writable."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        make_directory(config.hydra.run.dir, f"{config.hydra.job.name}.py")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        make_directory(config.hydra.sweep.dir, f"{config.hydra.job.name}.py")
