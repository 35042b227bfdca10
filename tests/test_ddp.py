"""DDP on CPU without SLURM: 2 processes (gloo) train on 300 real V4 reads, split the triplets
between them, and leave one run directory written by rank 0.

`ddp_spawn` runs in this process (Lightning spawns the ranks); `trainer=ddp` runs `python train.py`
as a user does, where Lightning re-executes the command line for rank 1 and must hand it the same
Hydra run directory (Lightning-Hydra pitfall 1).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neurohash.train import train
from tests.helpers import compose_train, v4_cpu_run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 16
MULTIPLICITY = 2


def two_cpu_ranks(data: Path, cache_dir: Path) -> list[str]:
    """Overrides for one epoch of a small CNN on 2 CPU processes."""
    return [
        *v4_cpu_run(data, cache_dir, batch_size=BATCH_SIZE),
        f"data.pairs.multiplicity={MULTIPLICITY}",
        "model=cnn",
        "distance=euclidean",
        "logger=none",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",  # SyncBatchNorm is GPU-only
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
    ]


def steps_of_one_rank(train_seqs: int) -> int:
    """Optimizer steps of one epoch when 2 ranks share the triplets (drop_last batches)."""
    return (train_seqs * MULTIPLICITY // 2) // BATCH_SIZE


def test_ddp_spawn_two_processes(v4_small: Path, tmp_path: Path) -> None:
    overrides = two_cpu_ranks(v4_small, tmp_path / "cache")
    metrics = train(compose_train(tmp_path, *overrides, "trainer.strategy=ddp_spawn"))
    assert math.isfinite(metrics["test/rmse_pct"]) and math.isfinite(metrics["baseline/rmse_pct"])
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    # each rank took every other triplet: half the steps of one process
    assert checkpoint["global_step"] == steps_of_one_rank(metrics["data/train_seqs"])


def test_train_py_with_ddp_subprocesses(v4_small: Path, tmp_path: Path) -> None:
    """`python train.py trainer=ddp` with the default timestamped run directory: rank 1, a
    second `python train.py`, writes its log into rank 0's run directory, not a new one."""
    overrides = [*two_cpu_ranks(v4_small, tmp_path / "cache"), f"paths.log_dir={tmp_path}"]
    result = subprocess.run(
        [sys.executable, "train.py", *overrides], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    logs = sorted(p.name for p in run_dir.glob("*.log"))
    assert logs == ["train.log", "train_ddp_process_1.log"], logs
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in (run_dir / "train_ddp_process_1.log").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["test/rmse_pct"])
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == steps_of_one_rank(metrics["data/train_seqs"])
