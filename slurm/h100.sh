#!/usr/bin/env bash
# Multi-node DDP training on H100 nodes, one rank per GPU; arguments are Hydra overrides:
#   sbatch slurm/h100.sh model=transformer distance=hyperbolic
#   sbatch --nodes=4 --time=48:00:00 slurm/h100.sh experiment=neuroseed_cnn
# Options on the sbatch command line beat the #SBATCH lines below: add your site's --partition,
# --account and --mem there, and keep --ntasks-per-node equal to --gpus-per-node.
# Every rank writes to logs/train/runs/slurm-<job id> (its own train_rank<N>.log; rank 0 the
# rest). 90 s before the time limit SLURM sends SIGUSR1: all ranks save hpc_ckpt_<N>.ckpt there,
# the job requeues itself (same id, same directory) and resumes from that checkpoint.
# NEUROHASH_PYTHON chooses the interpreter (default: python on PATH).
#SBATCH --job-name=neurohash-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=12
#SBATCH --time=24:00:00
#SBATCH --signal=SIGUSR1@90
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail
source "${NEUROHASH_ROOT:-$SLURM_SUBMIT_DIR}/slurm/env.sh"

srun bash slurm/task.sh train.py trainer=ddp "$@"
