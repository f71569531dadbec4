#!/usr/bin/env bash
# The GPU run (issue 13): in one command that fits the device tool (/work/.library/device/README.md:
# at most 10 minutes, 64 MiB carried, at most 8 files of 16 MiB returned, 64 MiB in all):
#   1. env      the machine, torch, CUDA, the GPU (a GPU run stops here without CUDA)
#   2. tests    the suite's CUDA tests: tests with "cuda" in their name, in the files that mention it
#   3. synth    the light model's synthetic sets, made on the device (benchmarks/gpu_synth.py)
#      train    the light CBPRN and its plain UNet-ResNet18 peer (same data, schedule and minutes:
#               issue 15's side by side), with --models also the paper's ResNet50 CBPRN, each
#               --train-minutes from the data pack (configs/gpu_light.yaml, gpu_unet.yaml,
#               gpu_paper.yaml), scored on the pack's val images; weights come back as float16
#               safetensors shards while they fit (--return order)
#   4. timing   `segment` FPS and peak GPU memory at each size for the shipped model, the paper's
#               ResNet50 CBPRN and PointRend-UNet (Table 3), fp16 and bf16 autocast (--compile adds
#               torch.compile), one process per model and size
# Every stage has its own time limit inside --budget-s; training's time is reserved first, the
# timing processes share what is left and are skipped (and recorded so) when it runs out.
# results.json and report.md are rewritten after every stage and logs.tar.gz holds every log, so
# a run killed at its limit still returns what it finished.
#
#   bash benchmarks/gpu_run.sh --prepare        # here, once: builds .pack/ (../shared/data) and .whl/ (PyPI)
#   bash benchmarks/gpu_run.sh                  # on the device: run(command=..., carry=[".pack", ".whl"], timeout_s=600)
#   bash benchmarks/gpu_run.sh --dry-run --out /tmp/gpu-dry     # the same stages on a CPU, tiny sizes
#
# Shards back here: python benchmarks/gpu_results.py merge OUT gpu-light -o gpu-light.safetensors
set -uo pipefail

usage() {
    sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --dry-run              the same stages on a CPU: synthetic pack, tiny sizes, two training steps
  --prepare              build .pack/ and .whl/ here and check what a device call would carry
  --out DIR              where results go (default: $OUT, else ./gpu-run-out)
  --budget-s N           whole run, in seconds (default 570; for --dry-run 420 + 240 a model)
  --train-minutes M      training time of each model (default 2)
  --models "light,unet"  which to train (default light and its UNet peer; add paper for the
                         ResNet50 CBPRN, at the cost of the others' minutes: the first run trained it)
  --sizes "WxH ..."      timing sizes (default "2048x1536 8192x6144"; dry run "64x48 96x64")
  --compile              also time torch.compile (fp16), at roughly twice each timing limit
  --return "light,unet"  whose weights come back, in this order, while they fit (default light and
                         unet, 22 + 28 MiB; the ResNet50's 48 MiB fits beside neither); these
                         train first, the others after them
EOF
}

MODE=gpu BUDGET="" TRAIN_MIN=2 COMPILE=0 OUTDIR="${OUT:-}" RETURN="light,unet" SIZES="" TRAIN_LIST="light,unet"
KNOWN_MODELS=(light unet paper)
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) MODE=dry-run ;;
        --prepare) MODE=prepare ;;
        --out) OUTDIR="${2:?--out needs a folder}"; shift ;;
        --budget-s) BUDGET="${2:?--budget-s needs seconds}"; shift ;;
        --train-minutes) TRAIN_MIN="${2:?--train-minutes needs a number}"; shift ;;
        --sizes) SIZES="${2:?--sizes needs sizes}"; shift ;;
        --compile) COMPILE=1 ;;
        --return) RETURN="${2?--return needs a list}"; shift ;;
        --models) TRAIN_LIST="${2:?--models needs a list}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

MODELS=()
for key in ${TRAIN_LIST//,/ }; do
    [[ " ${KNOWN_MODELS[*]} " == *" $key "* ]] || { echo "error: --models: unknown model $key (choose from ${KNOWN_MODELS[*]})" >&2; exit 2; }
    [[ " ${MODELS[*]} " == *" $key "* ]] || MODELS+=("$key")
done
for key in ${RETURN//,/ }; do
    [[ " ${MODELS[*]} " == *" $key "* ]] || { echo "error: --return: $key is not trained (--models ${MODELS[*]})" >&2; exit 2; }
done

REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO" || exit 2
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python   # here; the device machine has no venv
else PY=python3; fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

case "$BUDGET" in ''|*[!0-9]*) [ -z "$BUDGET" ] || { echo "error: --budget-s must be whole seconds" >&2; exit 2; } ;; esac
TRAIN_S=$(awk -v m="$TRAIN_MIN" 'BEGIN { if (m + 0 <= 0) exit 1; printf "%d", m * 60 }') \
    || { echo "error: --train-minutes must be a positive number, got $TRAIN_MIN" >&2; exit 2; }

if [ "$MODE" = prepare ]; then
    # the pack (../shared/data, research-only: it never leaves the ignored .pack/) and the one
    # package the device image lacks, at the version constraints.txt pins
    "$PY" benchmarks/make_data_pack.py --out .pack || exit 2
    smp=$(grep -i '^segmentation[-_]models[-_]pytorch==' constraints.txt | cut -d= -f3)
    rm -rf .whl && mkdir -p .whl
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .whl "segmentation-models-pytorch==${smp:?not in constraints.txt}" || exit 2
    "$PY" benchmarks/gpu_results.py travel .pack .whl || exit 2
    echo "ready: run(command=\"bash benchmarks/gpu_run.sh\", carry=[\".pack\", \".whl\"], timeout_s=600)"
    exit 0
fi

if [ "$MODE" = gpu ] && [ ! -f .pack/PACK.json ]; then
    echo "error: no data pack in $REPO/.pack: run bash benchmarks/gpu_run.sh --prepare here, then carry .pack" >&2
    exit 2
fi
OUTDIR="${OUTDIR:-$REPO/gpu-run-out}"
mkdir -p "$OUTDIR" || exit 2
OUTDIR="$(cd "$OUTDIR" && pwd)"
R="$OUTDIR/results.json"
if [ -e "$R" ]; then
    echo "error: $OUTDIR holds an earlier run (results.json): choose another --out or move it" >&2
    exit 2
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-run.XXXXXX")" || exit 2
mkdir -p "$WORK/logs"
# tells tests/test_gpu_run.py not to start a dry run inside this one
export GPU_RUN_ACTIVE=1

if [ "$MODE" = dry-run ]; then
    # two training steps, however long they take on a busy CPU; max_time only as a backstop
    # the stages reserve 240 s for each model's training, so a dry run of more models gets more
    BUDGET="${BUDGET:-$((420 + 240 * ${#MODELS[@]}))}" SIZES="${SIZES:-64x48 96x64}" PACK="$WORK/pack" TRAIN_S=120
    BENCH_ARGS=(--device cpu --threads 2 --warmup 0 --min-calls 1 --max-calls 1)
    TRAIN_ARGS=(--dry-run)
    TRAIN_EXTRA=120 TIME_CAP_SMALL=120 TIME_CAP_LARGE=120 SYNTH_N=3 SYNTH_SIZE=96x64
else
    BUDGET="${BUDGET:-570}" SIZES="${SIZES:-2048x1536 8192x6144}" PACK="$REPO/.pack"
    BENCH_ARGS=(--device cuda)
    TRAIN_ARGS=()
    # Lightning's start, validation and the shards beside max_time: 18 s for the light model on an H200
    TRAIN_EXTRA=45 TIME_CAP_SMALL=60 TIME_CAP_LARGE=120 SYNTH_N=150 SYNTH_SIZE=512x512
fi
if [ "$COMPILE" = 1 ]; then
    BENCH_ARGS+=(--compile)
    TIME_CAP_SMALL=$((TIME_CAP_SMALL * 2)) TIME_CAP_LARGE=$((TIME_CAP_LARGE * 2))
fi
START=$(date +%s)
DEADLINE=$((START + BUDGET))
FAILED=0
echo "gpu_run ($MODE): budget ${BUDGET}s, results in $OUTDIR, scratch $WORK"

finish_stage() {
    "$PY" benchmarks/gpu_results.py report --results "$R" >/dev/null 2>&1
    tar -czf "$WORK/logs.tar.gz" -C "$WORK" logs 2>/dev/null \
        && cp "$WORK/logs.tar.gz" "$OUTDIR/logs.tar.gz.part" && mv -f "$OUTDIR/logs.tar.gz.part" "$OUTDIR/logs.tar.gz"
}

# run_stage NAME CAP RESERVE CMD...: run CMD for at most CAP seconds, and never into the RESERVE
# seconds kept for the stages after it; record its status, time and (on failure) its log's end
run_stage() {
    local name=$1 cap=$2 reserve=$3
    shift 3
    local left=$((DEADLINE - $(date +%s) - reserve))
    local limit=$((cap < left ? cap : left))
    local log="$WORK/logs/$name.log"
    if [ "$limit" -lt 10 ]; then
        echo "[$name] skipped: ${left}s left of the budget"
        "$PY" benchmarks/gpu_results.py stage --results "$R" "$name" -1 0
        finish_stage
        FAILED=1
        return 1
    fi
    echo "[$name] up to ${limit}s"
    local t0 rc
    t0=$(date +%s)
    timeout -k 10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    local spent=$(($(date +%s) - t0))
    echo "[$name] exit $rc after ${spent}s"
    grep -v -i -E 'warning|warn\(|^\s*$|tip:' "$log" | tail -n "$([ "$rc" = 0 ] && echo 4 || echo 15)" | sed 's/^/    /'
    "$PY" benchmarks/gpu_results.py stage --results "$R" "$name" "$rc" "$spent" --timeout "$limit" --log "$log"
    finish_stage
    [ "$rc" = 0 ] || FAILED=1
    return "$rc"
}

# 1. env (a GPU run without CUDA ends here)
env_args=(--results "$R" --mode "$MODE" --budget-s "$BUDGET")
[ "$MODE" = gpu ] && env_args+=(--require-cuda)
if ! run_stage env 60 0 "$PY" benchmarks/gpu_results.py env "${env_args[@]}"; then
    "$PY" benchmarks/gpu_results.py report --results "$R" --print
    exit 3
fi

# the one package the device image lacks (PointRend-UNet's coarse net), carried as a wheel
if ! "$PY" -c "import segmentation_models_pytorch" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:$WORK/site"
fi

TRAIN_STAGE=$((TRAIN_S + TRAIN_EXTRA))
TIMING_MIN=90   # kept for timing when the tests run long

# 2. tests
mapfile -t TEST_FILES < <(grep -l -i cuda tests/test_*.py)
if [ "${#TEST_FILES[@]}" -gt 0 ]; then
    run_stage tests 120 $((${#MODELS[@]} * TRAIN_STAGE + TIMING_MIN)) \
        "$PY" -m pytest -q -p no:cacheprovider -rs -k cuda --continue-on-collection-errors --junitxml="$WORK/logs/junit.xml" "${TEST_FILES[@]}"
    "$PY" benchmarks/gpu_results.py junit --results "$R" "$WORK/logs/junit.xml" "${TEST_FILES[@]}"
    finish_stage
fi

# 3. training: the pack (a dry run makes a synthetic one in the scratch folder)
if [ "$MODE" = dry-run ]; then
    run_stage pack 120 $((${#MODELS[@]} * TRAIN_STAGE)) "$PY" benchmarks/make_data_pack.py --synthetic 3 --out "$PACK" --no-progress
fi
[ -f "$PACK/PACK.json" ] && cp "$PACK/PACK.json" "$WORK/logs/"
# the light model's and its peer's synthetic hard negatives and wide cracks, made here (nothing to
# carry; about 30 s on 16 cores): without them the first run's light model called 1.75% of the
# false-alarm set's distractor pixels crack, against the CPU-trained v4's 0.72%
run_stage synth 120 $((${#MODELS[@]} * TRAIN_STAGE + TIMING_MIN)) \
    "$PY" benchmarks/gpu_synth.py --pack "$PACK" --n "$SYNTH_N" --size "$SYNTH_SIZE"
train() {  # train KEY CONFIG RESERVE
    local key=$1 config=$2 reserve=$3
    local left=$((DEADLINE - $(date +%s) - reserve))
    local seconds=$TRAIN_S
    # squeezed by earlier stages: train for less rather than be killed before the weights are written
    [ $((left - TRAIN_EXTRA)) -lt "$seconds" ] && seconds=$((left - TRAIN_EXTRA))
    [ "$seconds" -lt 20 ] && seconds=20
    local ret=()
    [[ ",$RETURN," == *",$key,"* ]] && ret=(--return-weights)
    run_stage "train-$key" "$TRAIN_STAGE" "$reserve" "$PY" benchmarks/gpu_train.py --config "$config" --key "$key" \
        --seconds "$seconds" --pack "$PACK" --work "$WORK" --out "$OUTDIR" --results "$R" "${ret[@]}" "${TRAIN_ARGS[@]}"
    local name
    name=$(awk '/^name:/ { print $2; exit }' "$config")
    cp -r "$WORK/runs/$name/csv" "$WORK/logs/train-$key-csv" 2>/dev/null
    cp "$WORK/runs/$name/config.yaml" "$WORK/logs/train-$key-config.yaml" 2>/dev/null
    finish_stage
}
# the models of --return train first, in its order, so their weights are written before the others'
ORDER=()
for key in ${RETURN//,/ } "${MODELS[@]}"; do  # --return names trained models only (checked above)
    [[ " ${ORDER[*]} " == *" $key "* ]] || ORDER+=("$key")
done
for i in "${!ORDER[@]}"; do
    train "${ORDER[$i]}" "configs/gpu_${ORDER[$i]}.yaml" $(((${#ORDER[@]} - i - 1) * TRAIN_STAGE + TIMING_MIN))
done

# 4. timing: all models at the first size, then at the next (ratios need both models at a size)
first=1
for size in $SIZES; do
    cap=$([ "$first" = 1 ] && echo "$TIME_CAP_SMALL" || echo "$TIME_CAP_LARGE")
    first=0
    for model in pointrend-unet shipped cbprn-r50; do
        run_stage "time-$model-$size" "$cap" 10 \
            "$PY" benchmarks/gpu_bench.py --model "$model" --size "$size" --results "$R" "${BENCH_ARGS[@]}"
    done
done

echo "done in $(($(date +%s) - START))s; returned files:"
ls -la "$OUTDIR"
"$PY" benchmarks/gpu_results.py report --results "$R" --print
finish_stage
rm -rf "$WORK"
exit "$FAILED"
