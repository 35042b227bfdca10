"""Plain helpers and constants shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from omegaconf import DictConfig

from neurohash.hydra_app import compose_app

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SHARED_DATA = ROOT.parent / "shared" / "data"
V4_FILE = "study550_v4_amplicons.fasta.gz"
RFAM_FILE = "rfam_5_8s_rrna.fasta.gz"
INFLUENZA_FILE = "influenza_a_segments.fasta.gz"
TINY_MAX_LEN = 160

__all__ = ["compose_app"]  # re-exported: tests compose other apps (predict) the same way


def compose_train(run_dir: Path, *overrides: str) -> DictConfig:
    """Compose `python train.py OVERRIDES` and set up Hydra's runtime as @hydra.main does."""
    return compose_app("train", run_dir, *overrides)


def v4_cpu_run(
    data: Path, cache_dir: Path, seqs: int = 300, eval_size: int = 40, batch_size: int = 16
) -> list[str]:
    """Overrides for a quick CPU training run on ``seqs`` real V4 reads sampled from ``data``
    (no loader workers; exact distances cached in ``cache_dir``)."""
    return [
        "data=fasta",
        f"data.path={data}",
        "data.max_len=152",
        f"data.max_seqs={seqs}",
        f"data.eval_size={eval_size}",
        f"data.batch_size={batch_size}",
        "data.num_workers=0",
        "trainer.accelerator=cpu",
        f"paths.cache_dir={cache_dir}",
    ]


def load_bench(name: str) -> ModuleType:
    """A bench script as a module: the scripts run as `python bench/NAME.py` and import each
    other by name, so bench/ goes on the path as running one of them puts it there."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)
