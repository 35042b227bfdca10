#!/usr/bin/env bash
# Hash shards from every rank: each rank embeds its share of the shards, rank 0 writes the
# manifest. Same arguments as predict.py:
#   sbatch slurm/predict.sh ckpt_path=CKPT input='genomes/*.fa.gz' output_dir=shards
#   sbatch --nodes=4 slurm/predict.sh ckpt_path=CKPT input=reads.fq.gz output_dir=shards
# Finished shards are kept, so a job that hit its time limit is finished by submitting the same
# command again, and a job that SLURM requeues (preemption, node failure) finishes by itself.
# Options on the sbatch command line beat the #SBATCH lines below; keep --ntasks-per-node equal
# to --gpus-per-node. NEUROHASH_PYTHON chooses the interpreter (default: python on PATH).
#SBATCH --job-name=neurohash-predict
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=12
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail
source "${NEUROHASH_ROOT:-$SLURM_SUBMIT_DIR}/slurm/env.sh"

srun bash slurm/task.sh predict.py "$@"
