"""Hydra around the entry points (``train.py``, ``predict.py``).

- ``compose_app``: a config composed as ``@hydra.main`` composes it, for code that runs a job
  in-process (tests, benches, notebooks).
- ``RunDirCheck``: Hydra creates the run (or sweep) directory before the task function starts,
  so the task's own ``errors.reported`` never sees that failure and Hydra would print a
  traceback; this callback makes it one line and exit status 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from neurohash.errors import reported

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_app(config_name: str, run_dir: str | os.PathLike, *overrides: str) -> DictConfig:
    """``conf/CONFIG_NAME.yaml`` with ``overrides``, as its entry point's ``@hydra.main`` would
    give it: Hydra's runtime set (run directory ``run_dir``), the ``hydra`` node removed."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        overrides = (f"hydra.run.dir={run_dir}", *overrides)
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(run_dir)
    cfg.hydra.runtime.cwd = str(CONFIG_DIR.parent)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # the job sees its config without the hydra node
    return cfg


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
