"""Requeue under SLURM that is safe with DDP: save, requeue and resume at a point all ranks share.

``slurm/h100.sh`` asks SLURM for SIGUSR1 90 s before the time limit. Lightning's own handler
(``SLURMEnvironment(auto_requeue=True)``) saves its checkpoint *inside* the signal handler, but a
rank runs a Python signal handler only at its next bytecode: a rank blocked in DDP's gradient
all-reduce cannot, while another rank already waits in the checkpoint's barrier, and the job hangs
until it is killed (one signal in four, measured with 2 CPU ranks). Here the handler only notes
the signal; at the end of each training step the ranks agree (one all-reduce) whether any of them
got it, then all save ``hpc_ckpt_N.ckpt`` together, rank 0 runs ``scontrol requeue`` and every
rank exits. The requeued job keeps its id, so ``slurm/task.sh`` gives it the same run directory
(``trainer.default_root_dir``), and fit resumes from the newest hpc checkpoint there.

The handler is installed before any DataLoader worker exists: SLURM signals every process of the
job step, and a forked worker inherits this harmless handler instead of dying of SIGUSR1.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment

log = logging.getLogger(__name__)

REQUEUE_SIGNAL = signal.SIGUSR1
HPC_CHECKPOINT = re.compile(r"hpc_ckpt_(\d+)\.ckpt")


def slurm_job_id() -> str:
    """The id that ``scontrol requeue`` takes: JOBID, or ARRAYJOBID_TASKID in a job array."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job:
        return f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ["SLURM_JOB_ID"]


def hpc_checkpoints(folder: str | os.PathLike) -> dict[int, Path]:
    """The hpc_ckpt_N.ckpt files of ``folder`` by N."""
    found = {}
    for path in Path(folder).glob("hpc_ckpt_*.ckpt"):
        if match := HPC_CHECKPOINT.fullmatch(path.name):
            found[int(match[1])] = path
    return found


def next_hpc_checkpoint(folder: str | os.PathLike) -> Path:
    """Where the next hpc checkpoint goes; Lightning resumes from the highest N."""
    return Path(folder) / f"hpc_ckpt_{max(hpc_checkpoints(folder), default=0) + 1}.ckpt"


def requeue_job(job_id: str) -> bool:
    """``scontrol requeue JOBID``; False (and a warning) when SLURM refuses."""
    result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
    if result.returncode != 0:
        log.warning("scontrol requeue %s failed: %s", job_id, result.stderr.strip())
    return result.returncode == 0


class RequeueOnSignal(L.Callback):
    """On SIGUSR1 to any rank: at the end of the current training step every rank saves the
    hpc checkpoint, rank 0 requeues the job, and every rank exits (SystemExit)."""

    def __init__(self) -> None:
        self.received = False

    def install(self) -> RequeueOnSignal:
        signal.signal(REQUEUE_SIGNAL, self.receive)
        return self

    def receive(self, signum: int, frame: FrameType | None) -> None:
        self.received = True  # nothing else: any rank may be inside a collective right now

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.strategy.reduce_boolean_decision(self.received, all=False):
            self.save_and_requeue(trainer)

    def save_and_requeue(self, trainer: L.Trainer) -> None:
        path = trainer.strategy.broadcast(next_hpc_checkpoint(trainer.default_root_dir), src=0)
        log.info("rank %d: requeue signal; saving %s", trainer.global_rank, path)
        trainer.save_checkpoint(path)  # every rank takes part; returns once the file is written
        job_id = slurm_job_id()
        requeued = requeue_job(job_id) if trainer.is_global_zero else False
        if trainer.strategy.broadcast(requeued, src=0):  # nobody exits before rank 0 requeued
            raise SystemExit(f"requeued SLURM job {job_id}; it resumes from {path}")
        self.received = False  # not requeued: train on until the time limit


def slurm_trainer_arguments() -> dict[str, list[Any]]:
    """Extra Trainer arguments for a job started by srun: Lightning's SLURM environment without
    its own requeue handler, and ``RequeueOnSignal`` (installed now, before any worker forks).
    Empty outside SLURM."""
    if not SLURMEnvironment.detect():
        return {}
    return {
        "plugins": [SLURMEnvironment(auto_requeue=False)],
        "callbacks": [RequeueOnSignal().install()],
    }


def resume_from(trainer: L.Trainer, ckpt_path: str | None) -> str | None:
    """The checkpoint fit starts from: a requeued job's own hpc checkpoint beats ``ckpt_path``
    (Lightning looks for it only when ckpt_path is None, so a requeued job started with
    ckpt_path=... would start over from there)."""
    if SLURMEnvironment.detect() and hpc_checkpoints(trainer.default_root_dir):
        return "hpc"
    return ckpt_path
