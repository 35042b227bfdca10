# Sourced by the sbatch scripts: the working directory and environment every task inherits.
cd "${NEUROHASH_ROOT:-$SLURM_SUBMIT_DIR}"
# one thread pool per task, sized to its CPUs (not to the whole node)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
# srun does not inherit --cpus-per-task from sbatch since Slurm 22.05
export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-1}
# one failed rank ends the step at once instead of leaving the others waiting in a collective
export SLURM_KILL_BAD_EXIT=1
echo "$(date -Is) job ${SLURM_JOB_ID} restart ${SLURM_RESTART_COUNT:-0}:" \
  "${SLURM_NNODES} node(s) x ${SLURM_NTASKS_PER_NODE:-?} tasks on ${SLURM_JOB_NODELIST} in ${PWD}"
