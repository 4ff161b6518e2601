#!/usr/bin/env bash
# Submits the conversion to Google Cloud Dataflow, packaged the way Beam documents multi-file
# pipelines (--setup_file ./setup.py: the workers pip-install this project, see setup.py). Installs the
# project with Beam's [gcp] extra into ./.venv first, as run_local.sh does (nothing to do the next time).
# The workers install the codec versions of constraints.txt (--requirements_file, made by
# scripts/worker_requirements.py), the ones the driver has: shards are byte-identical to a local run.
#
#   ./run_dataflow.sh PROJECT REGION gs://BUCKET/path [extra converter or Beam flags]
#
# Reads  $INPUT  (default gs://BUCKET/path/raw, holding train/<synset>/*.JPEG and validation/<synset>/...)
# Writes $OUTPUT (default gs://BUCKET/path/tfrecords); temp and staging files go to gs://BUCKET/path/tmp.
# Defaults are ImageNet-1k's classic layout: 1024 train + 128 validation shards, labels 1..1000.
#
# Environment overrides (defaults in brackets):
#   INPUT, OUTPUT               see above
#   TRAIN_SHARDS [1024]  VALIDATION_SHARDS [128]  LABEL_OFFSET [1]
#   MACHINE_TYPE [n2-standard-4]  MAX_NUM_WORKERS [32]  NUM_WORKERS [4]  DISK_SIZE_GB [50]
#   SDK_CONTAINER_IMAGE         a prebuilt worker image (skips pip-installing on every worker)
#   JOB_NAME [folder2tfrecord-<date>]
#   VENV [.venv]  PYTHON [python3]   the virtualenv, and the Python that creates it if it is missing
#   DRY_RUN=1                   build the job (--dry_run=True) instead of submitting it; offline with
#                               INPUT=data/sample_images NO_GCE_CHECK=True GCE_METADATA_HOST=127.0.0.1:9
#
# Example (ImageNet from its usual gs:// copy; validation already sorted into synset folders):
#   INPUT=gs://my-bucket/imagenet/raw ./run_dataflow.sh my-project us-central1 gs://my-bucket/imagenet
# Example (flat ILSVRC2012 validation folder labelled by the ground-truth CSV):
#   ./run_dataflow.sh my-project us-central1 gs://my-bucket/imagenet \
#     --validation_ground_truth gs://my-bucket/imagenet/LOC_val_solution.csv
set -euo pipefail

usage() {
  sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

if [ "$#" -lt 3 ]; then
  echo "error: expected PROJECT REGION gs://BUCKET/path, got $# argument(s)" >&2
  usage
fi
PROJECT="$1"; REGION="$2"; ROOT="${3%/}"; shift 3
case "$ROOT" in
  gs://?*/*) ;;
  *) echo "error: the third argument must be gs://BUCKET/path, got '$ROOT'" >&2; usage ;;
esac
case "$PROJECT" in
  ''|-*) echo "error: PROJECT must be a Google Cloud project id, got '$PROJECT'" >&2; usage ;;
esac
case "$REGION" in
  ''|-*|gs://*) echo "error: REGION must be a Dataflow region such as us-central1, got '$REGION'" >&2
                usage ;;
esac

cd "$(dirname "$0")"
source scripts/ensure_venv.sh "[gcp]"
WORKER_REQUIREMENTS="$VENV/worker-requirements.txt"
"$VENV_PYTHON" scripts/worker_requirements.py >"$WORKER_REQUIREMENTS"

args=(
  --input "${INPUT:-$ROOT/raw}"
  --output "${OUTPUT:-$ROOT/tfrecords}"
  --train_shards "${TRAIN_SHARDS:-1024}"
  --validation_shards "${VALIDATION_SHARDS:-128}"
  --label_offset "${LABEL_OFFSET:-1}"
  --runner=DataflowRunner
  --project="$PROJECT"
  --region="$REGION"
  --job_name="${JOB_NAME:-folder2tfrecord-$(date -u +%Y%m%d-%H%M%S)}"
  --temp_location="$ROOT/tmp"
  --staging_location="$ROOT/tmp/staging"
  --setup_file=./setup.py
  --requirements_file="$WORKER_REQUIREMENTS"
  --machine_type="${MACHINE_TYPE:-n2-standard-4}"
  --num_workers="${NUM_WORKERS:-4}"
  --max_num_workers="${MAX_NUM_WORKERS:-32}"
  --autoscaling_algorithm=THROUGHPUT_BASED
  --disk_size_gb="${DISK_SIZE_GB:-50}"
)
if [ -n "${SDK_CONTAINER_IMAGE:-}" ]; then
  args+=(--sdk_container_image="$SDK_CONTAINER_IMAGE")
fi
if [ "${DRY_RUN:-0}" = 1 ]; then
  # Offline: stage the requirements file without downloading its wheels on this machine.
  args+=(--dry_run=True --requirements_cache=skip)
fi
echo "Submitting to Dataflow: $VENV_PYTHON -m pipeline.run ${args[*]} $*" >&2
exec "$VENV_PYTHON" -m pipeline.run "${args[@]}" "$@"
