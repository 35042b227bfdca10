#!/usr/bin/env bash
# One task of a neurohash SLURM job, started by srun on every rank:
#   srun bash slurm/task.sh train.py trainer=ddp [HYDRA OVERRIDES...]
# Runs PROGRAM with the Hydra overrides that SLURM decides, then the caller's (which win):
#   - one run directory keyed on the job id: every rank composes its own config (srun starts them
#     all, Lightning spawns nothing), so a timestamped directory would differ between ranks, and a
#     requeued job (same id) must find the hpc_ckpt_N.ckpt it saved on SIGUSR1 there;
#   - trainer.devices / trainer.num_nodes equal to --ntasks-per-node / --nodes, which Lightning's
#     SLURMEnvironment checks;
#   - a log file per rank (<task>_rank<N>.log); Hydra's .hydra/ files come from rank 0 only.
# NEUROHASH_PYTHON chooses the interpreter (default: python on PATH).
set -euo pipefail

program=${1:?usage: srun bash slurm/task.sh PROGRAM.py [OVERRIDES...]}
shift
rank=${SLURM_PROCID:?not a SLURM task: start me with srun}
job=${SLURM_JOB_ID:?not a SLURM job}
if [[ -n ${SLURM_ARRAY_JOB_ID:-} ]]; then
  job=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
fi

slurm_overrides=(
  "hydra.run.dir=\${paths.log_dir}/\${task_name}/runs/slurm-${job}"
  "hydra.job_logging.handlers.file.filename=\${hydra.runtime.output_dir}/\${hydra.job.name}_rank${rank}.log"
  "trainer.devices=${SLURM_NTASKS_PER_NODE:-1}"
  "++trainer.num_nodes=${SLURM_NNODES:-1}"
)
if ((rank > 0)); then
  slurm_overrides+=("hydra.output_subdir=null")
fi

exec "${NEUROHASH_PYTHON:-python}" "$program" "${slurm_overrides[@]}" "$@"
