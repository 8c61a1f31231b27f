#!/bin/bash
# alvo on a SLURM cluster, the way tests/peers/test_slurm.py runs it: the service (and
# its Dask scheduler) on a login or service node, each Dask worker one SLURM batch job
# that the service submits itself through `sbatch` (dask-jobqueue's SLURMCluster, the
# `slurm` extra: pip install 'alvo[slurm,postgres]'). Worker jobs inherit this
# environment (sbatch --export=ALL): the same venv, PYTHONPATH and ALVO_* settings;
# ALVO_HOME must be on the file system the compute nodes share.
#   ALVO_HOME=/shared/alvo ALVO_DATABASE_URL=postgresql+psycopg://user@db/alvo \
#     ALVO_SLURM_JOBS=4 ALVO_SLURM_CORES=16 ALVO_SLURM_MEMORY=64GiB deploy/slurm/alvo-serve.sh
# Stopping the service cancels its worker jobs. A worker job cancelled (scancel),
# preempted or past ALVO_SLURM_WALLTIME ends the job it was running in ERROR
# (WORKER_LOST), never EXECUTING forever; its log is in $ALVO_HOME/slurm/.
set -euo pipefail
: "${ALVO_HOME:?set ALVO_HOME to a directory on the shared filesystem}"
: "${ALVO_DATABASE_URL:?set ALVO_DATABASE_URL (postgresql+psycopg://user@host/alvo)}"
export ALVO_EXECUTOR=slurm
export ALVO_SLURM_JOBS="${ALVO_SLURM_JOBS:-2}" ALVO_SLURM_CORES="${ALVO_SLURM_CORES:-8}"
export ALVO_SLURM_MEMORY="${ALVO_SLURM_MEMORY:-32GiB}"
# optional: ALVO_SLURM_PARTITION, ALVO_SLURM_WALLTIME (24:00:00)
exec alvo serve --host "${ALVO_HOST:-0.0.0.0}"
