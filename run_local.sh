#!/usr/bin/env bash
# Converts the embedded sample photos on this machine (DirectRunner, multi_processing, all cores).
#   ./run_local.sh                      data/sample_images -> output/sample/ (replaced if present)
#   ./run_local.sh --input DIR --output DIR [flags]    any flags of python -m pipeline.run
# Creates ./.venv (or $VENV) and installs the package into it on first use.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh ""
if [ "$#" -eq 0 ]; then
  set -- --input data/sample_images --output output/sample --overwrite \
         --validation_fraction 0.2 --train_shards 4 --validation_shards 2
fi
exec "$VENV_PYTHON" -m pipeline.run \
  --direct_running_mode=multi_processing --direct_num_workers=0 "$@"
