#!/usr/bin/env bash
# Regenerate every committed file under benchmarks/results/ on a CPU, part by part, with the commands that made
# them. Run from the repository root with the data directory in FAIRBINN_DATA:
#
#   FAIRBINN_DATA=../shared/data bash benchmarks/run_all.sh              # everything (days on a 2-core machine)
#   FAIRBINN_DATA=../shared/data bash benchmarks/run_all.sh --list       # the parts and their expected times
#   FAIRBINN_DATA=../shared/data bash benchmarks/run_all.sh --dry-run    # print the commands, run nothing
#   FAIRBINN_DATA=../shared/data bash benchmarks/run_all.sh --only tabular --only graph
#   FAIRBINN_DATA=../shared/data OUT_DIR=/tmp/results bash benchmarks/run_all.sh --only certify_validity
#   FAIRBINN_DATA=../shared/data bash benchmarks/run_all.sh --gpu        # also bash benchmarks/gpu/run_gpu.sh
#
# Settings (environment): FAIRBINN_DATA (required: the data directory), OUT_DIR (where the results go; default
# benchmarks/results), PYTHON (default python). Each part's results file records its exact command, commit,
# machine, threads and every row's TrainConfig; the run logs (*_runs.jsonl) and model caches (runs/) make an
# interrupted part resume, and a part whose settings are unchanged reuse its finished runs.
#
# Each committed file's header gives the exact command that wrote it. Most were made with OMP_NUM_THREADS=1, two
# processes side by side, and the long training parts (graph, sweep) as several processes each training a share of
# the runs into the same run log, the tables then written by the part's command with --no-train (sweep_report.py:
# --gather). torch's thread count changes the order of float sums, so a rerun with another thread count can give
# slightly different figures.
#
# Expected wall times are for the 2-core x86_64 CPU machine that made the committed files, from the times they
# record (run logs, "wall time" lines); "estimate" marks a guess (no recorded time, or rows added since).
set -euo pipefail

OUT_DIR=${OUT_DIR:-benchmarks/results}
PYTHON=${PYTHON:-python}

# name | expected minutes | command (run by bash from the repository root; $OUT_DIR and $PYTHON expand then)
PARTS=(
  # simulation of certified budgets, no data: 493 s recorded
  "certify_validity|8|OMP_NUM_THREADS=1 \$PYTHON benchmarks/certify_validity.py --out \$OUT_DIR/certify_validity"
  # synthetic rare-group problem, 5 samplers x 3 seeds of 8 epochs: 15 s measured here (1 thread)
  "drfairness_synthetic|1|\$PYTHON benchmarks/drfairness_synthetic.py --out \$OUT_DIR"
  # validation splits' floors (Adult, Health, NBA, Bail, CelebA index): 9 s measured here (1 thread)
  "certifiable|1|\$PYTHON benchmarks/certifiable.py --out \$OUT_DIR/certifiable"
  # 16 Adult runs of 50 epochs: 451 s measured here (1 thread)
  "bilevel_scan|8|\$PYTHON benchmarks/bilevel_scan.py --out \$OUT_DIR"
  # 5 seeds x 6 rows x Adult and Health: 2015 s recorded for 5 rows, one more row added (estimate)
  "tabular|40|\$PYTHON benchmarks/tabular.py --out \$OUT_DIR"
  # 2 rounds x (one model + 2 searches) x 2 strategies: 625 s recorded
  "eta_search_cost|11|\$PYTHON benchmarks/eta_search_cost.py --out \$OUT_DIR"
  # one model + two stacks of 16, 50 epochs, 2 threads: about 300 s recorded
  "sweep_speed|5|\$PYTHON benchmarks/sweep_speed.py --out \$OUT_DIR"
  # every variant, eager and compiled, 2 networks x 3 batch sizes (torch's threads: 2 here): 473 s recorded
  "step_cost|8|\$PYTHON benchmarks/step_cost.py --compile --out \$OUT_DIR"
  # the subset file: estimate
  "step_cost_subset|6|\$PYTHON benchmarks/step_cost.py --networks paper --batch-sizes 100 1024 --variants 'bilevel' 'bilevel adam follower' 'bilevel bce follower' 'bilevel rate surrogate' 'bilevel adam follower rate surrogate' 'lagrangian rate surrogate' 'stackelberg unrolled k=1' 'stackelberg implicit cg=10' --out \$OUT_DIR"
  # Adult and Health 20 epochs, CelebA 2 epochs on 5000 images, 1 seed: about 1390 s recorded
  "drfairness|23|\$PYTHON benchmarks/drfairness.py --threads 1 --epochs 20 --celeba-epochs 2 --celeba-images 5000 --out \$OUT_DIR"
  # the same tabular rows chosen under a validation EO budget: 694 s recorded
  "drfairness_budget|12|\$PYTHON benchmarks/drfairness.py --threads 1 --datasets adult health --epochs 20 --budget 0.05 --budget-metric eo --out \$OUT_DIR"
  # CelebA, 5 epochs, the two noise rows, 3 seeds: 2856 s recorded (one thread, beside one other process)
  "drfairness_celeba_5epochs|48|\$PYTHON benchmarks/drfairness.py --threads 1 --datasets celeba --seeds 3 --celeba-epochs 5 --celeba-images 5000 --only 'real half + noise' --out \$OUT_DIR/drfairness_celeba_5epochs"
  # NBA, GCN and GAT, 5 seeds, 4 rows, 1000 epochs (Pokec skipped without the full files): 1003 s recorded for 3 rows
  "graph|25|\$PYTHON benchmarks/graph.py --out \$OUT_DIR"
  # the same with network lr 1e-3: 1102 s recorded (beside another part)
  "graph_lr0.001|18|\$PYTHON benchmarks/graph.py --lr 0.001 --out \$OUT_DIR"
  # the same chosen under a DP budget of 0.05, certified at 95% (the default): 1365 s recorded
  "graph_budget0.05|23|\$PYTHON benchmarks/graph.py --budget 0.05 --out \$OUT_DIR"
  # the same with the point-estimate rule (the validation DP itself at most the budget): 1120 s recorded
  "graph_budget0.05_conf0|19|\$PYTHON benchmarks/graph.py --budget 0.05 --confidence 0 --cost-steps 0 --out \$OUT_DIR"
  # NBA split seed 20, budget selections; the rate-surrogate rows first, the command that writes the tables last
  # (2212 s recorded for the 50 runs: 28-65 s each, one thread, beside one other process)
  "graph_nba_split20|37|\$PYTHON benchmarks/graph.py --datasets nba --backbones gcn gat --split-seeds 20 --seeds 5 --configs lagrangian default --surrogate rate --budgets 0.05 --report nba_split20 --cost-steps 0 --out \$OUT_DIR && \$PYTHON benchmarks/graph.py --datasets nba --backbones gcn gat --split-seeds 20 --seeds 5 --configs erm lagrangian default --budgets 0.05 --report nba_split20 --cost-steps 0 --out \$OUT_DIR"
  # NBA split seeds 1-5 x 3 seeds (150 runs, 6575 s of training recorded: about 44 s each, one thread, beside one
  # other process)
  "graph_nba_splits|111|\$PYTHON benchmarks/graph.py --datasets nba --backbones gcn gat --split-seeds 1 2 3 4 5 --seeds 3 --configs lagrangian default --surrogate rate --budgets 0.05 --report nba_splits --cost-steps 0 --out \$OUT_DIR && \$PYTHON benchmarks/graph.py --datasets nba --backbones gcn gat --split-seeds 1 2 3 4 5 --seeds 3 --configs erm lagrangian default --budgets 0.05 --report nba_splits --cost-steps 0 --out \$OUT_DIR"
  # Bail's step costs, GCN/GAT/GraphSAGE on both adjacencies, 3 steps per block, 2 threads, alone on the machine
  # (graph_bail's tables show the latest of each backbone and device; estimate)
  "graph_bail_costs|4|\$PYTHON benchmarks/graph.py --datasets bail --backbones gcn gat sage --seeds 0 --budgets 0.03 0.05 --report bail --sparse-adjacency --cost-steps 3 --threads 2 --out \$OUT_DIR"
  # Bail, GCN and GraphSAGE, sparse adjacency: the rate-surrogate and all-nodes rows, then the tables (estimate
  # from the first 17 runs: GCN 2-2.6 min, GraphSAGE 3.2-3.7 min per run, one thread, beside one other process)
  "graph_bail|230|\$PYTHON benchmarks/graph.py --datasets bail --backbones gcn sage --seeds 5 --budgets 0.03 0.05 --report bail --sparse-adjacency --cost-steps 0 --configs lagrangian default --surrogate rate --out \$OUT_DIR && \$PYTHON benchmarks/graph.py --datasets bail --backbones gcn sage --seeds 5 --budgets 0.03 0.05 --report bail --sparse-adjacency --cost-steps 0 --configs lagrangian default --fairness-nodes all --out \$OUT_DIR && \$PYTHON benchmarks/graph.py --datasets bail --backbones gcn sage --seeds 5 --budgets 0.03 0.05 --report bail --sparse-adjacency --cost-steps 0 --out \$OUT_DIR"
  # Bail, GAT: the same 40 runs, then the tables of all three backbones (17128 s of training recorded: 6-9 min per
  # run, one thread, beside one other process)
  "graph_bail_gat|286|\$PYTHON benchmarks/graph.py --datasets bail --backbones gat --seeds 5 --budgets 0.03 0.05 --report bail --sparse-adjacency --cost-steps 0 --configs lagrangian default --surrogate rate --out \$OUT_DIR && \$PYTHON benchmarks/graph.py --datasets bail --backbones gat --seeds 5 --budgets 0.03 0.05 --report bail --sparse-adjacency --cost-steps 0 --configs lagrangian default --fairness-nodes all --out \$OUT_DIR && \$PYTHON benchmarks/graph.py --datasets bail --backbones gcn gat sage --seeds 5 --budgets 0.03 0.05 --report bail --sparse-adjacency --cost-steps 0 --out \$OUT_DIR"
  # Pokec-like graphs of 100k, 400k, 1.6M nodes, full and mini-batch: 345 s recorded
  "large_graph|6|\$PYTHON benchmarks/large_graph.py --out \$OUT_DIR"
  # Bail, GCN and GAT, ERM and bilevel: 71 s recorded
  "large_graph_bail|2|\$PYTHON benchmarks/large_graph.py --graph bail --backbones gcn gat --strategy erm bilevel --timeout 600 --out \$OUT_DIR"
  # fronts on Adult and Health, 13 parts x 5 seeds, eta search: 34192 s recorded, the parts added up
  "sweep|570|\$PYTHON benchmarks/sweep_report.py --out \$OUT_DIR"
  # certified against point-estimate selection, Adult and Health, 10 seeds: 6582 s recorded as one process (as
  # one-thread processes two at a time, one per dataset and strategy: Health Lagrangian 3816 s, Health FairBiNN
  # 3662 s, Adult FairBiNN 1232 s, Adult Lagrangian 1219 s)
  "certified_budgets|110|OMP_NUM_THREADS=1 \$PYTHON benchmarks/certified_budgets.py --out \$OUT_DIR/certified_budgets"
  # group thresholds beside in-processing, Adult and Health: 6981 s recorded as one process (as two one-thread
  # processes side by side, one per dataset: Adult 2024 s, Health 5107 s)
  "thresholds|116|OMP_NUM_THREADS=1 \$PYTHON benchmarks/thresholds.py --out \$OUT_DIR/thresholds"
  # the same on NBA at eta 1000: 2348 s recorded
  "thresholds_nba|39|OMP_NUM_THREADS=1 \$PYTHON benchmarks/thresholds.py --datasets nba --etas 1000 --out \$OUT_DIR/thresholds_nba"
  # CelebA Smiling vs Male, all images at 64x64, one epoch per strategy (the paper's three attributes at their
  # epochs would take about 36 h here; benchmarks/gpu/run_gpu.sh is the longer run): 2207 s recorded
  "vision|37|\$PYTHON benchmarks/vision.py --attributes Smiling --epochs 1 --out \$OUT_DIR"
)

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'
  echo "Options: --list, --dry-run, --only NAME (repeatable), --gpu, -h/--help"
}

list=0 dry=0 gpu=0
only=()
while [ $# -gt 0 ]; do
  case $1 in
    --list) list=1 ;;
    --dry-run) dry=1 ;;
    --gpu) gpu=1 ;;
    --only)
      [ $# -ge 2 ] || { echo "run_all.sh: --only needs a part name (see --list)" >&2; exit 2; }
      only+=("$2"); shift ;;
    --only=*) only+=("${1#--only=}") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

names=()
for part in "${PARTS[@]}"; do names+=("${part%%|*}"); done
for name in "${only[@]+"${only[@]}"}"; do
  found=0
  for known in "${names[@]}"; do [ "$known" = "$name" ] && found=1; done
  [ $found = 1 ] || { echo "run_all.sh: unknown part '$name'; parts: ${names[*]}" >&2; exit 2; }
done

selected() {
  [ ${#only[@]} -eq 0 ] && return 0
  for name in "${only[@]}"; do [ "$name" = "$1" ] && return 0; done
  return 1
}

if [ $list = 1 ]; then
  total=0
  for part in "${PARTS[@]}"; do
    IFS='|' read -r name minutes _ <<<"$part"
    selected "$name" || continue
    printf '%-28s %5s min\n' "$name" "$minutes"
    total=$((total + minutes))
  done
  printf '%-28s %5s min (about %s h)%s\n' "total" "$total" "$((total / 60))" \
    "$([ $gpu = 1 ] && echo '; --gpu adds benchmarks/gpu/run_gpu.sh')"
  exit 0
fi

if [ $dry = 0 ]; then
  [ -f benchmarks/run_all.sh ] || { echo "run_all.sh: run it from the repository root (benchmarks/ not found in $PWD)" >&2; exit 2; }
  [ -n "${FAIRBINN_DATA:-}" ] || { echo "run_all.sh: set FAIRBINN_DATA to the data directory (e.g. FAIRBINN_DATA=../shared/data)" >&2; exit 2; }
  [ -d "$FAIRBINN_DATA" ] || { echo "run_all.sh: FAIRBINN_DATA=$FAIRBINN_DATA is not a directory" >&2; exit 2; }
  export FAIRBINN_DATA
  mkdir -p "$OUT_DIR"
fi

for part in "${PARTS[@]}"; do
  IFS='|' read -r name minutes command <<<"$part"
  selected "$name" || continue
  expanded=${command//\$OUT_DIR/$(printf '%q' "$OUT_DIR")}
  expanded=${expanded//\$PYTHON/$PYTHON}
  if [ $dry = 1 ]; then
    printf '# %s (expected %s min)\n%s\n' "$name" "$minutes" "$expanded"
    continue
  fi
  echo "== $name (expected $minutes min): $expanded" >&2
  start=$SECONDS
  bash -c "set -e; $expanded"
  echo "== $name done in $((SECONDS - start)) s" >&2
done

if [ $gpu = 1 ]; then
  if [ $dry = 1 ]; then
    printf '# gpu\nbash benchmarks/gpu/run_gpu.sh\n'
  else
    [ -f benchmarks/gpu/run_gpu.sh ] || { echo "run_all.sh: --gpu: benchmarks/gpu/run_gpu.sh not found" >&2; exit 2; }
    bash benchmarks/gpu/run_gpu.sh
  fi
fi
