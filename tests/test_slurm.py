"""slurm/h100.sh and slurm/predict.sh for real, on a private one-node SLURM cluster on loopback
(slurm/local_cluster.py: Debian's slurm-wlm and munge, installed with apt-get when absent).

The scripts run unchanged: only their #SBATCH resources are overridden on the sbatch command line
(one node, 2 tasks of 1 CPU, no GPU) and NEUROHASH_PYTHON names this interpreter. One training job
runs 2 DDP ranks (gloo) on real V4 reads; mid-fit it gets SIGUSR1, as --signal=SIGUSR1@90 sends
it before the time limit, saves, requeues itself and finishes from its hpc checkpoint. Then a
2-task predict job hashes reads with the trained model and must write the rows of a 1-process
predict.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from neurohash.data.fasta import iter_records
from neurohash.index.shards import MANIFEST
from neurohash.predict import predict
from slurm.local_cluster import Cluster, ClusterError, start_cluster
from tests.helpers import INFLUENZA_FILE, compose_app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("h100.sh", "predict.sh", "sweep_agent.sh")
TWO_CPU_TASKS = ("--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1", "--gpus-per-node=0")
EPOCHS = 8
ROW_KEYS = ("seq_id", "source", "record", "region_start", "region_end")


def sbatch_options(script: str) -> dict[str, str]:
    """The #SBATCH --key=value lines of a script (a bare --flag maps to "")."""
    options = {}
    for line in (ROOT / "slurm" / script).read_text().splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line.removeprefix("#SBATCH --").strip().partition("=")
            options[key] = value
    return options


def test_scripts_ask_for_one_task_per_gpu() -> None:
    """Lightning's SLURMEnvironment wants --ntasks-per-node == devices: one rank per GPU."""
    for script in SCRIPTS:
        options = sbatch_options(script)
        assert options["ntasks-per-node"] == options["gpus-per-node"], script
        assert {"nodes", "cpus-per-task", "time"} <= options.keys(), script
    train = sbatch_options("h100.sh")
    assert train["signal"] == "SIGUSR1@90" and "requeue" in train


# ---- the cluster and its jobs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A fresh private cluster for this module; its daemons are stopped afterwards."""
    cluster = start_cluster()  # installs slurm-wlm if needed; fails loudly, never skips
    yield cluster
    cluster.stop()


def sbatch(cluster: Cluster, script: str, output: Path, *overrides: str) -> int:
    """Submit slurm/SCRIPT from the project root, as a user does, on 2 CPU tasks."""
    command = ["sbatch", "--parsable", *TWO_CPU_TASKS, f"--output={output}"]
    env = dict(cluster.env, NEUROHASH_PYTHON=sys.executable)
    result = cluster.run(*command, f"slurm/{script}", *overrides, cwd=ROOT, env=env)
    return int(result.strip().split(";")[0])


def wait_for_file(cluster: Cluster, job_id: int, path: Path, timeout: float = 300) -> None:
    """Until the job has written ``path``; ClusterError if it ends (or times out) first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        info = cluster.job(job_id)
        if info["JobState"] not in ("PENDING", "RUNNING") or time.monotonic() > deadline:
            raise ClusterError(f"no {path} from job {job_id}: {info['JobState']}")
        time.sleep(0.2)


def assert_succeeded(info: dict[str, str], output: Path) -> None:
    ok = info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0"
    assert ok, f"{info['JobState']} {info['ExitCode']}\n{output.read_text()[-4000:]}"


@dataclass
class TrainingJob:
    info: dict[str, str]
    run_dir: Path
    output: Path

    def log(self, rank: int) -> str:
        return (self.run_dir / f"train_rank{rank}.log").read_text()


@pytest.fixture(scope="module")
def training_job(
    cluster: Cluster, v4_small: Path, tmp_path_factory: pytest.TempPathFactory
) -> TrainingJob:
    """`sbatch slurm/h100.sh OVERRIDES` on 300 real V4 reads; after its first epoch it gets
    SIGUSR1 (what --signal=SIGUSR1@90 sends), requeues itself, and runs again to the end."""
    tmp = tmp_path_factory.mktemp("slurm_train")
    output = tmp / "slurm-%j.out"
    job_id = sbatch(
        cluster,
        "h100.sh",
        output,
        "data=fasta",
        f"data.path={v4_small}",
        "data.max_len=152",
        "data.max_seqs=300",
        "hashing.bank=300",  # the neighbour head's bank within the sample: no top-up from outside
        "data.eval_size=40",
        "data.batch_size=16",
        "data.num_workers=0",  # a worker forked beside gloo's threads once hung (1 run in ~15)
        "model=cnn",
        "distance=euclidean",
        "trainer.accelerator=cpu",
        "trainer.sync_batchnorm=false",  # SyncBatchNorm is GPU-only
        f"trainer.max_epochs={EPOCHS}",
        "trainer.enable_progress_bar=false",
        f"paths.log_dir={tmp / 'logs'}",
        f"paths.cache_dir={tmp / 'cache'}",
    )
    output = tmp / f"slurm-{job_id}.out"
    run_dir = tmp / "logs" / "train" / "runs" / f"slurm-{job_id}"
    wait_for_file(cluster, job_id, run_dir / "checkpoints" / "last.ckpt")  # first epoch done
    cluster.run("scancel", "--signal=USR1", str(job_id))  # to every task of the job's steps
    requeued = cluster.wait(job_id, {"PENDING"})
    assert requeued["JobState"] == "PENDING", f"not requeued:\n{output.read_text()[-4000:]}"
    # SLURM holds a requeued job back for ~2 minutes (BeginTime); release it now
    cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
    return TrainingJob(cluster.wait(job_id, set()), run_dir, output)


def test_training_job_runs_two_ranks_and_resumes_after_requeue(training_job: TrainingJob) -> None:
    job, run_dir = training_job, training_job.run_dir
    assert_succeeded(job.info, job.output)
    assert job.info["Restarts"] == "1"
    # one run directory, keyed on the job id, shared by both ranks and by the requeued run
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["train_rank0.log", "train_rank1.log"]
    for rank in (0, 1):  # each rank ran twice (before and after the requeue), to the end
        log = job.log(rank)
        assert log.count(f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2") == 2, log[-3000:]
        assert f"rank {rank}: requeue signal; saving {run_dir}/hpc_ckpt_1.ckpt" in log
        assert "neurohash.train][INFO] - metrics:" in log, log[-3000:]
    assert f"Restored all states from the checkpoint at {run_dir}/hpc_ckpt_1.ckpt" in job.log(0)
    saved = torch.load(run_dir / "hpc_ckpt_1.ckpt", weights_only=False)
    assert 1 <= saved["epoch"] < EPOCHS - 1 and saved["global_step"] > 0  # saved mid-fit
    metrics = json.loads((run_dir / "metrics.json").read_text())  # rank 0's artifacts
    assert metrics["train/epochs"] == EPOCHS and math.isfinite(metrics["test/rmse_pct"])
    assert (run_dir / "pred_vs_true.png").is_file() and (run_dir / "config.yaml").is_file()


# ---- predict: 2 tasks against 1 process ------------------------------------------------------


@pytest.fixture(scope="module")
def predict_input(v4_small: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """200 real V4 reads and 4 influenza segments (longer than the model: several regions)."""
    path = tmp_path_factory.mktemp("slurm_predict") / "reads.fasta.gz"
    reads = itertools.islice(iter_records(v4_small), 200)
    flu = itertools.islice(iter_records(shared_data / INFLUENZA_FILE), 4)
    with gzip.open(path, "wt") as handle:
        handle.writelines(f">{r.id}\n{r.seq}\n" for r in itertools.chain(reads, flu))
    return path


PREDICT = ("shard_size=40", "batch_size=32", "num_workers=0", "trainer.accelerator=cpu")


def shard_rows(out: Path) -> pa.Table:
    """All rows of a predict output, in manifest order."""
    manifest = json.loads((out / MANIFEST).read_text())
    return pa.concat_tables([pq.read_table(out / shard["file"]) for shard in manifest["shards"]])


def rows_by_region(table: pa.Table) -> dict[tuple, bytes]:
    rows = table.select([*ROW_KEYS, "code"]).to_pylist()
    by_region = {tuple(row[k] for k in ROW_KEYS): row["code"] for row in rows}
    assert len(by_region) == len(rows)  # no region twice
    return by_region


def test_two_task_predict_writes_the_rows_of_one_process(
    cluster: Cluster, training_job: TrainingJob, predict_input: Path, tmp_path: Path
) -> None:
    checkpoint = training_job.run_dir / "checkpoints" / "last.ckpt"
    common = (f"ckpt_path={checkpoint}", f"input={predict_input}", *PREDICT)
    single = tmp_path / "single"
    predict(compose_app("predict", tmp_path / "hydra", *common, f"output_dir={single}"))

    shards, output = tmp_path / "shards", tmp_path / "slurm-%j.out"
    job_id = sbatch(
        cluster,
        "predict.sh",
        output,
        *common,
        f"output_dir={shards}",
        "trainer.enable_progress_bar=false",
        f"paths.log_dir={tmp_path / 'logs'}",
    )
    output = tmp_path / f"slurm-{job_id}.out"
    assert_succeeded(cluster.wait(job_id, set()), output)
    run_dir = tmp_path / "logs" / "predict" / "runs" / f"slurm-{job_id}"
    for rank in (0, 1):  # both ranks in one DDP job, each wrote some of the shards
        log = (run_dir / f"predict_rank{rank}.log").read_text()
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in log, log[-3000:]
        assert re.search(rf"rank {rank} wrote [1-9]\d* shards", log), log[-3000:]

    got, expected = rows_by_region(shard_rows(shards)), rows_by_region(shard_rows(single))
    assert got.keys() == expected.keys()  # the same regions of the same records, none lost
    assert len(got) >= 200
    codes = [(np.frombuffer(got[k], np.uint8), np.frombuffer(expected[k], np.uint8)) for k in got]
    flips = np.array([np.unpackbits(a ^ b).sum() for a, b in codes])
    # codes equal up to a rare bit flipped by float sums in another batch composition
    assert flips.max() <= 2 and (flips > 0).mean() <= 0.01, flips[flips > 0]
    manifests = [json.loads((out / MANIFEST).read_text()) for out in (shards, single)]
    assert manifests[0]["rows"] == manifests[1]["rows"] == len(got)
    assert [s["rows"] for s in manifests[0]["shards"]] == [
        s["rows"] for s in manifests[1]["shards"]
    ]
