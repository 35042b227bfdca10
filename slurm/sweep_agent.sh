#!/usr/bin/env bash
# One W&B sweep run per allocation, trained with DDP over the whole allocation:
#   wandb sweep sweeps/distance_dim_slurm.yaml          # prints ENTITY/PROJECT/SWEEP_ID
#   sbatch slurm/sweep_agent.sh ENTITY/PROJECT/SWEEP_ID  # once per run (or as a job array)
# The agent runs once, here in the batch script, not under srun (srun would start one agent per
# task, each taking its own run); the sweep's `command:` starts srun, so every task gets the same
# overrides and the agent's WANDB_* variables. No requeue: a requeued agent would be handed a
# different run. Options on the sbatch command line beat the #SBATCH lines below; keep
# --ntasks-per-node equal to --gpus-per-node. NEUROHASH_PYTHON chooses the interpreter that runs
# the agent (default: python on PATH).
#SBATCH --job-name=neurohash-sweep
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=12
#SBATCH --time=24:00:00
set -euo pipefail
sweep_id=${1:?usage: sbatch slurm/sweep_agent.sh ENTITY/PROJECT/SWEEP_ID}
source "${NEUROHASH_ROOT:-$SLURM_SUBMIT_DIR}/slurm/env.sh"

"${NEUROHASH_PYTHON:-python}" -m wandb agent --count 1 "$sweep_id"
