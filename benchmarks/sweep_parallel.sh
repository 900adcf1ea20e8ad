#!/usr/bin/env bash
# Train parts of benchmarks/sweep_report.py in parallel: one process per DATASET:PART, each into its own
# --out (WORK/DATASET-PART), all checkpointing every epoch into WORK/checkpoints, so that a part stopped by
# the time limit resumes later, on any machine, from where it stopped.
#
#   DATA_DIR=../shared/data WORK=/tmp/sweeps LIMIT_S=3600 \
#       bash benchmarks/sweep_parallel.sh adult:stackelberg health:bilevel-adam ...
#
# Settings (environment): DATA_DIR, WORK (required); DEVICE (default cpu); LIMIT_S (seconds after which the
# parts still training are stopped; default 0, no limit); EXTRA (more sweep_report arguments, e.g.
# "--seeds 1 --epochs 2"). Each process uses one thread; WORK/DATASET-PART.log holds its output.
# Then the finished parts go into the report (--out, default benchmarks/results):
#
#   python benchmarks/sweep_report.py --data-dir ../shared/data --gather /tmp/sweeps/*-*/ --no-train
#
# and, instead of --no-train, `--checkpoint-dir /tmp/sweeps/checkpoints --parts PART ...` resumes stopped parts.
set -u
: "${DATA_DIR:?set DATA_DIR}" "${WORK:?set WORK}"
DEVICE=${DEVICE:-cpu} LIMIT_S=${LIMIT_S:-0} EXTRA=${EXTRA:-}
[ $# -gt 0 ] || { echo "usage: $0 DATASET:PART ..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
for job in "$@"; do
    case $job in *:*) ;; *) echo "not DATASET:PART: $job" >&2; exit 2 ;; esac
    dataset=${job%%:*} part=${job#*:}
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 timeout --signal=TERM "$LIMIT_S" python "$here/sweep_report.py" --data-dir "$DATA_DIR" \
        --datasets "$dataset" --parts "$part" --out "$WORK/$dataset-$part" --checkpoint-dir "$WORK/checkpoints" \
        --threads 1 --device "$DEVICE" $EXTRA >"$WORK/$dataset-$part.log" 2>&1 &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
for job in "$@"; do
    dataset=${job%%:*} part=${job#*:}
    if [ -f "$WORK/$dataset-$part/sweep_$dataset.csv" ]; then echo "$job: done"; else echo "$job: stopped or failed"; fi
done
exit $status
