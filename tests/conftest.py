"""Shared fixtures: the real sequence files in ../shared/data (never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from neurohash.data.cleaning import Cleaning
from neurohash.data.fasta import SequenceRecord
from neurohash.data.sources import load_records

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
V4_FILE = "study550_v4_amplicons.fasta.gz"
RFAM_FILE = "rfam_5_8s_rrna.fasta.gz"
INFLUENZA_FILE = "influenza_a_segments.fasta.gz"


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


PROJECT_ROOT = Path(__file__).resolve().parents[1]


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


def compose_app(config_name: str, run_dir: Path, *overrides: str) -> DictConfig:
    """Compose conf/CONFIG_NAME.yaml with OVERRIDES as its entry point's @hydra.main would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        overrides = (f"hydra.run.dir={run_dir}", *overrides)
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # the job sees its config without the hydra node
    return cfg


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


TINY_MAX_LEN = 160


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A tiny CNN/euclidean model with the default learned 128-bit hash (max_len 160), trained
    3 steps on 300 real V4 reads: the model the CLI, predict and search tests run."""
    run_dir = tmp_path_factory.mktemp("tiny_model")
    overrides = [
        "data=fasta",
        f"data.path={shared_data / V4_FILE}",
        f"data.max_len={TINY_MAX_LEN}",
        "data.max_seqs=300",
        "data.eval_size=40",
        "model=cnn",
        "distance=euclidean",
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
