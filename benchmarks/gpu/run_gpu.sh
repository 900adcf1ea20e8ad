#!/usr/bin/env bash
# The GPU job: Adult wall time and the CelebA table on one lent GPU machine, within about 8.3 minutes.
#
# Run from the repository root, with the packed data in .gpu_data/ (benchmarks/gpu/pack_celeba.py; the CelebA
# images there are re-encoded as WebP quality 25 to fit the machine's 64 MiB transfer limit) and OUT set:
#
#     OUT=/path/to/results FAIRBINN_COMMIT=<git commit> bash benchmarks/gpu/run_gpu.sh
#
# Steps, each under `timeout` and within a total of TOTAL_LIMIT seconds (default 480), results left in $OUT
# as they are made:
#   1. nvidia-smi, torch and CUDA versions, CPU count, free /dev/shm;
#   2. unpack .gpu_data into $DATA (default /tmp/data; CelebA as JPEG quality 95, Adult as is);
#   3. python benchmarks/gpu/adult_time.py: `python -m fairbinn train --data Adult --mode <mode> --epochs 50
#      --device cuda`, one process per mode (bilevel, erm, lagrangian), timed -> $OUT/adult_gpu_time.{json,md}
#      (limit ADULT_LIMIT, 170 s);
#   4. python benchmarks/vision.py: CelebA Smiling vs Male, all images at IMAGE_SIZE (128), EPOCHS (10) epochs,
#      FairBiNN (bilevel, the library's default game) first, then ERM and the Lagrangian, the epoch chosen under
#      a DP budget BUDGET (0.1) certified at 95% -> $OUT/vision_gpu.{md,json} and vision_gpu_runs.jsonl,
#      rewritten after every run.
# Everything printed also goes to $OUT/run_gpu.log.
#
# Settings (environment variables): DEVICE (cuda), DATA (/tmp/data), CACHE (/tmp/fairbinn_cache), EPOCHS (10),
# IMAGE_SIZE (128), MAX_IMAGES (all), WORKERS (12; fewer when /dev/shm is small), THREADS (4), BUDGET (0.1),
# STRATEGIES ("bilevel erm lagrangian"), ADULT_EPOCHS (50), ADULT_LIMIT (170), TOTAL_LIMIT (480), UNPACK (1),
# FAIRBINN_COMMIT (recorded as the git commit where the tree is not a checkout). SMOKE=1 is a CPU check in a
# minute or two: DEVICE=cpu, EPOCHS=1, IMAGE_SIZE=32, MAX_IMAGES=600, WORKERS=2, ADULT_EPOCHS=1, unless given.
set -u -o pipefail

: "${OUT:?set OUT to the folder for the results}"
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [[ "${SMOKE:-0}" == 1 ]]; then
    DEVICE=${DEVICE:-cpu} EPOCHS=${EPOCHS:-1} IMAGE_SIZE=${IMAGE_SIZE:-32} MAX_IMAGES=${MAX_IMAGES:-600}
    WORKERS=${WORKERS:-2} ADULT_EPOCHS=${ADULT_EPOCHS:-1} THREADS=${THREADS:-1}
fi
DEVICE=${DEVICE:-cuda} DATA=${DATA:-/tmp/data} CACHE=${CACHE:-/tmp/fairbinn_cache}
EPOCHS=${EPOCHS:-10} IMAGE_SIZE=${IMAGE_SIZE:-128} MAX_IMAGES=${MAX_IMAGES:-} WORKERS=${WORKERS:-12}
THREADS=${THREADS:-4} BUDGET=${BUDGET:-0.1} STRATEGIES=${STRATEGIES:-bilevel erm lagrangian}
ADULT_EPOCHS=${ADULT_EPOCHS:-50} ADULT_LIMIT=${ADULT_LIMIT:-170} TOTAL_LIMIT=${TOTAL_LIMIT:-480} UNPACK=${UNPACK:-1}
PYTHON=${PYTHON:-python3}

mkdir -p "$OUT"
exec > >(tee -a "$OUT/run_gpu.log") 2>&1
START=$SECONDS

# step CAP COMMAND...: run COMMAND under timeout, for at most CAP seconds and what is left of TOTAL_LIMIT
step() {
    local cap=$1; shift
    local left=$((TOTAL_LIMIT - (SECONDS - START)))
    local limit=$((cap < left ? cap : left))
    if ((limit < 15)); then
        echo "== skipped, the time budget is spent: $*"
        return 124
    fi
    echo "== [$((SECONDS - START)) s] $* (limit ${limit} s)"
    local begin=$SECONDS
    timeout -k 10 "$limit" "$@"
    local rc=$?
    echo "== exit ${rc} after $((SECONDS - begin)) s$( ((rc == 124)) && echo ' (timed out)')"
    return $rc
}

if [[ -z "${FAIRBINN_COMMIT:-}" ]] && git rev-parse HEAD >/dev/null 2>&1; then
    FAIRBINN_COMMIT=$(git rev-parse HEAD)
fi
export FAIRBINN_COMMIT=${FAIRBINN_COMMIT:-}
echo "== $(date -Is) fairbinn GPU job, commit ${FAIRBINN_COMMIT:-unknown}; device ${DEVICE}, OUT ${OUT}"
echo "== settings: EPOCHS=${EPOCHS} IMAGE_SIZE=${IMAGE_SIZE} MAX_IMAGES=${MAX_IMAGES:-all} BUDGET=${BUDGET}" \
     "STRATEGIES='${STRATEGIES}' THREADS=${THREADS} ADULT_EPOCHS=${ADULT_EPOCHS} TOTAL_LIMIT=${TOTAL_LIMIT}"
command -v nvidia-smi >/dev/null && timeout 30 nvidia-smi
timeout 60 "$PYTHON" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| CUDA', torch.version.cuda, '| cuda available', torch.cuda.is_available(),
'|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')
import importlib
for name in ('torchvision', 'timm', 'tqdm', 'pandas', 'numpy', 'PIL', 'sklearn'):
    try:
        print(name, importlib.import_module(name).__version__, end='; ')
    except Exception as error:
        print(name, 'MISSING', error, end='; ')
print()"
CPUS=$(nproc --all)
echo "CPUs: ${CPUS}"; df -h /dev/shm /tmp 2>/dev/null

# DataLoader workers hand batches over in shared memory: keep what is in flight (2 batches per worker) well
# inside the free /dev/shm
batch_bytes=$((128 * 3 * IMAGE_SIZE * IMAGE_SIZE * 4))
shm_free=$(df --output=avail -B1 /dev/shm 2>/dev/null | tail -1 | tr -d ' ')
if [[ "$shm_free" =~ ^[0-9]+$ ]] && ((WORKERS > 0)); then
    fit=$((shm_free / (4 * batch_bytes)))
    if ((fit < WORKERS)); then
        echo "== /dev/shm has $((shm_free >> 20)) MiB free: ${fit} DataLoader workers instead of ${WORKERS}"
        WORKERS=$fit
    fi
fi

if [[ "$UNPACK" == 1 ]]; then
    step 120 "$PYTHON" benchmarks/gpu/unpack_celeba.py "$DATA" --workers "$CPUS" || echo "== unpacking failed"
fi

step "$ADULT_LIMIT" "$PYTHON" benchmarks/gpu/adult_time.py --data-dir "$DATA" --epochs "$ADULT_EPOCHS" \
    --device "$DEVICE" --modes bilevel erm lagrangian --time-limit $((ADULT_LIMIT - 10)) --out "$OUT" \
    --name adult_gpu_time

# shellcheck disable=SC2086  # STRATEGIES and MAX_IMAGES split into words on purpose
step 100000 "$PYTHON" benchmarks/vision.py --data-dir "$DATA" --cache-dir "$CACHE" --attributes Smiling \
    --strategies $STRATEGIES --epochs "$EPOCHS" --image-size "$IMAGE_SIZE" ${MAX_IMAGES:+--max-images $MAX_IMAGES} \
    --budget "$BUDGET" --device "$DEVICE" --workers "$WORKERS" --threads "$THREADS" --timing-rounds 5 \
    --out "$OUT" --name vision_gpu

echo "== [$((SECONDS - START)) s] done; in ${OUT}:"
ls -la "$OUT"
