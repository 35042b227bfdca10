"""Shared fixtures: the real sequence files in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from neurohash.data.cleaning import Cleaning
from neurohash.data.fasta import SequenceRecord
from neurohash.data.sources import load_records
from tests.helpers import SHARED_DATA, TINY_MAX_LEN, V4_FILE, compose_train


def pytest_configure(config: pytest.Config) -> None:
    """Parallel workers (pytest-xdist) share the cores: each worker, and the commands it runs
    (train.py, predict.py, neurohash), takes its part of them rather than all of them, which
    only contend (torch's threads spin while they wait)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


# the longest files (about 270, 230, 85 and 80 s in one process on 2 cores), then the others
# with slow tests: pytest-xdist hands out whole files in collection order, and a long one handed
# out last keeps one worker busy after the other has finished
LONGEST_FILES = ("test_bench_speed.py", "test_train.py", "test_slurm.py", "test_spark.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first (``LONGEST_FILES``), then files with slow tests, then the rest; the
    order within a file stays."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        longest = LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)
        return longest, item.path not in slow_files

    items.sort(key=rank)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real test data (skips the test when it is not there)."""
    if not (SHARED_DATA / V4_FILE).is_file():
        pytest.skip(f"real test data not found in {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def v4_records(shared_data: Path) -> list[SequenceRecord]:
    """400 cleaned V4 amplicon reads, reservoir-sampled (seed 0) across the whole file."""
    records, _ = load_records(shared_data / V4_FILE, Cleaning(), max_seqs=400, seed=0)
    return records


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread; two contend badly on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def v4_small(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 real V4 reads as a small gzipped FASTA, so quick runs do not scan 100k reads."""
    import gzip

    records, _ = load_records(shared_data / V4_FILE, Cleaning(), max_seqs=2000, seed=1)
    path = tmp_path_factory.mktemp("v4") / "v4_2000.fasta.gz"
    with gzip.open(path, "wt") as handle:
        handle.writelines(f">{rec.id}\n{rec.seq}\n" for rec in records)
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A tiny CNN/euclidean model with a 128-bit ranking hash head (max_len 160), trained 3 steps
    on 300 real V4 reads: the model the CLI, predict and search tests run."""
    run_dir = tmp_path_factory.mktemp("tiny_model")
    overrides = [
        "data=fasta",
        f"data.path={shared_data / V4_FILE}",
        f"data.max_len={TINY_MAX_LEN}",
        "data.max_seqs=300",
        "data.eval_size=40",
        "model=cnn",
        "distance=euclidean",
        "hashing=rank",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.accelerator=cpu",
        "data.num_workers=0",
        "logger=none",
        f"paths.cache_dir={run_dir / 'cache'}",
    ]
    from neurohash.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: two threads only contend on a 2-core machine
    try:
        train(compose_train(run_dir, *overrides))
    finally:
        torch.set_num_threads(threads)
    path = run_dir / "checkpoints" / "last.ckpt"
    assert path.is_file(), sorted(p.name for p in run_dir.rglob("*"))
    return path
