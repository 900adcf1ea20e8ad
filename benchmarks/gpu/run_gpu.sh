#!/usr/bin/env bash
# The GPU job: Adult wall time and the CelebA table on one lent GPU machine, within about 8.3 minutes; or, with
# PARTS=bail_gat, Bail's GAT runs.
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
#      rewritten after every run;
#   5. with bail_gat in PARTS: the runs of run_all.sh's graph_bail_gat part (Bail, GAT, 1000 epochs, 5 seeds:
#      the rate-surrogate rows, the rows with the DP loss on every node, then the four default rows) that
#      benchmarks/results/graph_runs.jsonl does not hold yet, BAIL_GAT_SHARDS (10) processes sharing the GPU
#      (benchmarks/graph.py --shard), in GRAPH_WORK (/tmp/bail_gat); the runs they finish ->
#      $OUT/graph_runs_bail_gat.jsonl, their output -> $OUT/bail_gat_shards.log.
#      Append that file to benchmarks/results/graph_runs.jsonl, then `bash benchmarks/run_all.sh --only
#      graph_bail_gat` writes the tables, training what is still missing. Earlier Bail GAT runs (PyG's
#      aggregation) took 87-109 s each with 8-15 sharing an H200: 40 runs in 3 rounds, about 7 minutes, too long
#      beside steps 3-4 in one slot. On one CPU thread a run takes about 7 minutes.
# Everything printed also goes to $OUT/run_gpu.log.
#
# Settings (environment variables): DEVICE (cuda), DATA (/tmp/data), CACHE (/tmp/fairbinn_cache), EPOCHS (10),
# IMAGE_SIZE (128), MAX_IMAGES (all), WORKERS (12; fewer when /dev/shm is small), THREADS (4), BUDGET (0.1),
# STRATEGIES ("bilevel erm lagrangian"), ADULT_EPOCHS (50), ADULT_LIMIT (170), TOTAL_LIMIT (480), UNPACK (1),
# PARTS ("adult vision"; any of adult, vision, bail_gat), BAIL_GAT_SHARDS (10), BAIL_GAT_EPOCHS (1000),
# GRAPH_WORK (/tmp/bail_gat),
# FAIRBINN_COMMIT (recorded as the git commit where the tree is not a checkout). SMOKE=1 is a CPU check in a
# minute or two: DEVICE=cpu, EPOCHS=1, IMAGE_SIZE=32, MAX_IMAGES=600, WORKERS=2, ADULT_EPOCHS=1,
# BAIL_GAT_SHARDS=2, BAIL_GAT_EPOCHS=2, unless given.
set -u -o pipefail

: "${OUT:?set OUT to the folder for the results}"
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [[ "${SMOKE:-0}" == 1 ]]; then
    DEVICE=${DEVICE:-cpu} EPOCHS=${EPOCHS:-1} IMAGE_SIZE=${IMAGE_SIZE:-32} MAX_IMAGES=${MAX_IMAGES:-600}
    WORKERS=${WORKERS:-2} ADULT_EPOCHS=${ADULT_EPOCHS:-1} THREADS=${THREADS:-1}
    BAIL_GAT_SHARDS=${BAIL_GAT_SHARDS:-2} BAIL_GAT_EPOCHS=${BAIL_GAT_EPOCHS:-2}
fi
DEVICE=${DEVICE:-cuda} DATA=${DATA:-/tmp/data} CACHE=${CACHE:-/tmp/fairbinn_cache}
EPOCHS=${EPOCHS:-10} IMAGE_SIZE=${IMAGE_SIZE:-128} MAX_IMAGES=${MAX_IMAGES:-} WORKERS=${WORKERS:-12}
THREADS=${THREADS:-4} BUDGET=${BUDGET:-0.1} STRATEGIES=${STRATEGIES:-bilevel erm lagrangian}
ADULT_EPOCHS=${ADULT_EPOCHS:-50} ADULT_LIMIT=${ADULT_LIMIT:-170} TOTAL_LIMIT=${TOTAL_LIMIT:-480} UNPACK=${UNPACK:-1}
PARTS=${PARTS:-adult vision} BAIL_GAT_SHARDS=${BAIL_GAT_SHARDS:-10} BAIL_GAT_EPOCHS=${BAIL_GAT_EPOCHS:-1000}
GRAPH_WORK=${GRAPH_WORK:-/tmp/bail_gat}
PYTHON=${PYTHON:-python3}
for part in $PARTS; do
    case $part in adult | vision | bail_gat) ;; *) echo "run_gpu.sh: unknown part '$part' in PARTS (adult, vision, bail_gat)" >&2; exit 2 ;; esac
done
wanted() { [[ " $PARTS " == *" $1 "* ]]; }

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
     "STRATEGIES='${STRATEGIES}' THREADS=${THREADS} ADULT_EPOCHS=${ADULT_EPOCHS} TOTAL_LIMIT=${TOTAL_LIMIT}" \
     "PARTS='${PARTS}' BAIL_GAT_SHARDS=${BAIL_GAT_SHARDS} BAIL_GAT_EPOCHS=${BAIL_GAT_EPOCHS}"
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

wanted adult && step "$ADULT_LIMIT" "$PYTHON" benchmarks/gpu/adult_time.py --data-dir "$DATA" --epochs "$ADULT_EPOCHS" \
    --device "$DEVICE" --modes bilevel erm lagrangian --time-limit $((ADULT_LIMIT - 10)) --out "$OUT" \
    --name adult_gpu_time

# shellcheck disable=SC2086  # STRATEGIES and MAX_IMAGES split into words on purpose
wanted vision && step 100000 "$PYTHON" benchmarks/vision.py --data-dir "$DATA" --cache-dir "$CACHE" --attributes Smiling \
    --strategies $STRATEGIES --epochs "$EPOCHS" --image-size "$IMAGE_SIZE" ${MAX_IMAGES:+--max-images $MAX_IMAGES} \
    --budget "$BUDGET" --device "$DEVICE" --workers "$WORKERS" --threads "$THREADS" --timing-rounds 5 \
    --out "$OUT" --name vision_gpu

# Bail's GAT runs: each of graph_bail_gat's three commands, its missing runs shared out over the shards (kept in
# GRAPH_WORK: what comes back from $OUT is a few files)
if wanted bail_gat; then
    log=$GRAPH_WORK/graph_runs.jsonl
    mkdir -p "$GRAPH_WORK"
    [[ -f "$log" ]] || cp benchmarks/results/graph_runs.jsonl "$log"
    before=$(wc -l < "$log")
    for rows in "--configs lagrangian default --surrogate rate" "--configs lagrangian default --fairness-nodes all" ""; do
        pids=()
        for ((shard = 0; shard < BAIL_GAT_SHARDS; shard++)); do
            # shellcheck disable=SC2086  # rows splits into words on purpose
            step 100000 "$PYTHON" benchmarks/graph.py --data-dir "$DATA" --datasets bail --backbones gat --seeds 5 \
                --epochs "$BAIL_GAT_EPOCHS" --budgets 0.03 0.05 --report bail --sparse-adjacency --cost-steps 0 \
                $rows --device "$DEVICE" --shard "$shard/$BAIL_GAT_SHARDS" --out "$GRAPH_WORK" \
                > "$GRAPH_WORK/shard${shard}.log" 2>&1 &
            pids+=($!)
        done
        wait "${pids[@]}"  # these alone: a bare wait would also wait for the tee that logs this script
        for ((shard = 0; shard < BAIL_GAT_SHARDS; shard++)); do
            echo "== shard ${shard}/${BAIL_GAT_SHARDS}, ${rows:-default rows}:"; cat "$GRAPH_WORK/shard${shard}.log"
        done >> "$OUT/bail_gat_shards.log"
        tail -n +$((before + 1)) "$log" > "$OUT/graph_runs_bail_gat.jsonl"
        echo "== [$((SECONDS - START)) s] Bail GAT, ${rows:-default rows}: $(wc -l < "$OUT/graph_runs_bail_gat.jsonl") runs finished so far"
    done
fi

echo "== [$((SECONDS - START)) s] done; in ${OUT}:"
ls -la "$OUT"
