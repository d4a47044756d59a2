#!/usr/bin/env bash
# The GPU run: on a CUDA machine, from the folder `make device-bundle` built (it builds nothing).
#
#   gpu-run.sh OUTDIR [--deadline SECONDS] [--work DIR] [--emulation LIBRARY]
#
# Runs the stages below in order of value, each under `timeout`, each skipped with a line saying
# so when the time left before the deadline (default 510 s from the start) would not let it do
# its work:
#
#   device      nvidia-smi, `isthmus info`, the copy and bf16 GEMM ceilings (PyTorch)
#   tests       every test, GPU ones at device sizes, with the JUnit summary
#   memcheck    compute-sanitizer memcheck over the driver of every kernel
#   bench       the kernel benchmarks (rows written as they are measured), then the report
#   peers       the same work in PyTorch (SDPA pinned per backend, reference MoE and scan), then the report again
#   demo        the architecture comparison at the contexts that fit in its time
#   racecheck, initcheck   compute-sanitizer's other tools
#   jmh         JMH: the host cost of one call
#
# Work files go to a folder beside OUTDIR (OUTDIR.work unless --work names one) and are never
# deleted. OUTDIR holds at most 8 files: run.log (the whole console, written as it goes),
# results.tgz (everything measured so far, rebuilt after every stage: written beside, then
# renamed), summary.md, results.csv, plot.png, attention-decode.png and comparison.png. The short
# summary printed last fits in 3,000 characters.
#
# --emulation LIBRARY runs against the host emulation (the dry run, `make gpu-run-dry`): tiny
# sizes, a few test classes, and stand-ins, named as such, where nvidia-smi or compute-sanitizer
# are absent or cannot run without a GPU.
set -u -o pipefail

usage() { echo "usage: $0 OUTDIR [--deadline SECONDS] [--work DIR] [--emulation LIBRARY]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUTDIR_ARG=$1; shift
DEADLINE=510 WORK_ARG="" EMULATION=""
while [ $# -gt 0 ]; do
    case "$1" in
        --deadline) DEADLINE=${2:?}; shift 2 ;;
        --work) WORK_ARG=${2:?}; shift 2 ;;
        --emulation) EMULATION=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
[[ "$DEADLINE" =~ ^[0-9]+$ ]] || usage
START=$(date +%s)

mkdir -p "$OUTDIR_ARG"
OUTDIR=$(cd "$OUTDIR_ARG" && pwd)
WORK=${WORK_ARG:-$OUTDIR.work}
mkdir -p "$WORK/logs"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in "$OUTDIR"/*) echo "the work folder must lie outside OUTDIR" >&2; exit 2 ;; esac
exec > >(tee -a "$OUTDIR/run.log") 2>&1

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -f "$HERE/../lib/isthmus.jar" ]; then BUNDLE=$(cd "$HERE/.." && pwd); else BUNDLE=$(cd "$HERE/../build/device-bundle" && pwd); fi
COMMIT=$(tr '\n' ' ' < "$BUNDLE/COMMIT" 2>/dev/null | sed 's/ *$//; s/ /-/')
if [ -x "$BUNDLE/jre/bin/java" ]; then JAVA="$BUNDLE/jre/bin/java"; else JAVA=java; fi
LIBRARY=${EMULATION:-$BUNDLE/native/libisthmus.so}
JAVA_OPTS=(--enable-native-access=ALL-UNNAMED "-Disthmus.library.path=$LIBRARY" -Djava.awt.headless=true)
[ -n "$EMULATION" ] && JAVA_OPTS+=(-Disthmus.emulation=true)
CP="$BUNDLE/lib/*"
TEST_CP=$(ls "$BUNDLE"/lib/*.jar | grep -v -e console-standalone -e benchmarks.jar | tr '\n' ':')

# ---- the tools this run uses, found rather than assumed on PATH ------------------------------------
find_tool() {  # find_tool NAME: the first executable NAME on PATH, in CUDA_HOME/bin or /usr/local/cuda*/bin
    local name=$1 d
    command -v "$name" 2>/dev/null && return 0
    for d in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
        [ -n "$d" ] && [ -x "$d/bin/$name" ] && { echo "$d/bin/$name"; return 0; }
    done
    return 1
}
find_python() {  # find_python [MODULE]: the first python3 that imports MODULE (or any python3)
    local p
    for p in python3 python /usr/bin/python3 /usr/local/bin/python3 python3.13 python3.12 python3.11 python3.10; do
        command -v "$p" >/dev/null 2>&1 || continue
        if [ -z "${1:-}" ] || "$p" -c "import $1" >/dev/null 2>&1; then command -v "$p"; return 0; fi
    done
    return 1
}
NVIDIA_SMI=$(find_tool nvidia-smi) || NVIDIA_SMI=""
SANITIZER=$(find_tool compute-sanitizer) || SANITIZER=""
TORCH_PYTHON=$(find_python torch) || TORCH_PYTHON=""
PYTHON=$(find_python) || PYTHON=""

# cuBLAS: JCublas 12.6 needs libcublas.so.12, which a CUDA 13 machine lacks; PyTorch's nvidia wheels
# carry the cuBLAS its driver runs (nvidia/cu13/lib for CUDA 13, nvidia/cublas/lib for CUDA 12).
# Found without importing torch (seconds), and bound by the library through FFM.
find_cublas() {  # find_cublas: the libcublas beside the torch that TORCH_PYTHON imports, newest first
    [ -n "$TORCH_PYTHON" ] || return 1
    "$TORCH_PYTHON" - <<'PY'
import glob, importlib.util, os, sys
site = os.path.dirname(os.path.dirname(importlib.util.find_spec("torch").origin))
for name in ("libcublas.so.13", "libcublas.so.12"):
    for hit in sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib", name))):
        print(hit)
        sys.exit(0)
sys.exit(1)
PY
}
CUBLAS=$(find_cublas) || CUBLAS=""
if [ -n "$CUBLAS" ]; then
    JAVA_OPTS+=("-Disthmus.cublas.path=$CUBLAS")
    CUBLAS_NOTE="PyTorch's $CUBLAS (-Disthmus.cublas.path)"
else
    CUBLAS_NOTE="none beside PyTorch${TORCH_PYTHON:+ ($TORCH_PYTHON)}; the library looks on its own"
fi

# ---- stages: each under timeout, skipped when the deadline leaves too little, packed after --------
STAGES="$WORK/stages.csv"
echo "stage,status,seconds,note" > "$STAGES"

seconds_left() { echo $(( DEADLINE - ($(date +%s) - START) )); }

pack() {  # results.tgz from everything measured so far, replaced only once it is whole
    tar -C "$WORK" -czf "$OUTDIR/results.tgz.part" . 2>/dev/null && mv -f "$OUTDIR/results.tgz.part" "$OUTDIR/results.tgz"
}

# stage NAME NEED MAX FUNCTION: runs FUNCTION (with $LIMIT seconds, its log in $WORK/logs/NAME.log)
# unless fewer than NEED seconds are left; at most MAX seconds, never past the deadline.
stage() {
    local name=$1 need=$2 max=$3 body=$4 left status note t0 rc
    left=$(seconds_left)
    if [ "$left" -lt "$need" ]; then
        echo; echo "==== $name: SKIPPED: it needs about ${need} s and ${left} s are left before the deadline"
        echo "$name,skipped,0,needs ${need} s; ${left} s left" >> "$STAGES"
        pack
        return
    fi
    export LIMIT=$(( max < left ? max : left ))
    echo; echo "==== $name (at most ${LIMIT} s; ${left} s left) ===="
    t0=$(date +%s)
    export NOTE_FILE="$WORK/logs/$name.note"; : > "$NOTE_FILE"
    # The body runs in a subshell under timeout, so that a stage cut off ends with its children.
    timeout --kill-after=10 "$LIMIT" bash -c "$(declare -f); $body" > >(tee "$WORK/logs/$name.log") 2>&1
    rc=$?
    sleep 0.2  # let tee finish the stage's log
    note=$(tr ',' ';' < "$NOTE_FILE" | paste -sd '|' | sed 's/|/; /g')
    case $rc in
        0) status=ok ;;
        124|137) status="timed out"; note="cut off at ${LIMIT} s${note:+; $note}" ;;
        *) status="failed ($rc)" ;;
    esac
    echo "---- $name: $status in $(( $(date +%s) - t0 )) s${note:+ ($note)}"
    echo "$name,$status,$(( $(date +%s) - t0 )),$note" >> "$STAGES"
    pack
}
export WORK OUTDIR BUNDLE JAVA LIBRARY CP TEST_CP EMULATION NVIDIA_SMI SANITIZER TORCH_PYTHON PYTHON COMMIT CUBLAS_NOTE
export JAVA_OPTS_LINE="${JAVA_OPTS[*]}"

note() { echo "$*" >> "$NOTE_FILE"; }
java_run() { "$JAVA" $JAVA_OPTS_LINE -cp "$CP" "$@"; }

stage_device() {
    if [ -n "$NVIDIA_SMI" ]; then
        "$NVIDIA_SMI" --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv | tee "$WORK/device.csv" || return 1
    else
        note "nvidia-smi absent: stand-in, the device as isthmus info reports it"
        echo "nvidia-smi: not found; stand-in: the device below is what isthmus info reports"
    fi
    java_run dev.isthmus.cli.Main info | tee "$WORK/info.txt" || return 1
    echo "tools: nvidia-smi ${NVIDIA_SMI:-absent}; compute-sanitizer ${SANITIZER:-absent}; python3 with torch ${TORCH_PYTHON:-absent}; python3 ${PYTHON:-absent}"
    echo "cublas offered: $CUBLAS_NOTE; used: the 'gemm on cuda' line above"
    if [ -z "$TORCH_PYTHON" ]; then note "no python3 imports torch: ceilings not measured"; return 0; fi
    (cd "$BUNDLE/bench/peers" && "$TORCH_PYTHON" ceilings.py --out "$WORK/ceilings.csv")
}

stage_tests() {
    local select=(--scan-class-path "$BUNDLE/lib/isthmus-tests.jar")
    if [ -n "$EMULATION" ]; then
        # The whole suite ran in `make test`; here the stage itself is what is checked.
        select=(--select-class dev.isthmus.random.RandomFillGpuTest --select-class dev.isthmus.norm.RmsNormGpuTest --select-class dev.isthmus.blas.GemmCublasTest)
        note "emulation: three test classes"
    fi
    "$JAVA" $JAVA_OPTS_LINE -jar "$BUNDLE"/lib/junit-platform-console-standalone-*.jar execute --class-path "$TEST_CP" \
        "${select[@]}" --details=summary --disable-banner --disable-ansi-colors --reports-dir "$WORK/junit" | tee "$WORK/tests.txt"
}

sanitize() {  # sanitize TOOL
    if [ -n "$EMULATION" ] || [ -z "$SANITIZER" ]; then
        local why="compute-sanitizer not found"
        [ -n "$EMULATION" ] && why="the host emulation has no GPU for it"
        note "stand-in: compute-sanitizer $1 not run ($why)"
        echo "compute-sanitizer $1: stand-in, nothing checked" | tee -a "$WORK/sanitizer.txt"
        return 0
    fi
    echo "--- $1" | tee -a "$WORK/sanitizer.txt"
    "$SANITIZER" --tool "$1" --error-exitcode 3 "$BUNDLE/native/sanitize_driver" 2>&1 | tee -a "$WORK/sanitizer.txt"
}
stage_memcheck() { sanitize memcheck; }
stage_racecheck() { sanitize racecheck; }
stage_initcheck() { sanitize initcheck; }

report() {  # results.csv, summary.md, plot.png in OUTDIR from what is measured so far
    [ -s "$WORK/bench/raw.csv" ] || { echo "no kernel measurements to report"; return 1; }
    [ -n "$PYTHON" ] || { note "no python3: no report"; return 1; }
    local device
    device=$(sed -n 's/^device: //p' "$WORK/logs/bench.log" 2>/dev/null | head -1)
    "$PYTHON" "$BUNDLE/bench/report.py" --raw "$WORK/bench/raw.csv" --peers "$WORK"/peers-*.csv --ceilings "$WORK/ceilings.csv" \
        --device "${device:-unknown device}" --commit "$COMMIT" --date "$(date -u +%F)" --out "$OUTDIR" --brief "$WORK/brief.txt" \
        > "$WORK/report.txt"
}

stage_bench() {
    local tiny=()
    [ -n "$EMULATION" ] && tiny=(--tiny)
    # Stop starting suites 20 s before the limit, leaving time for the report.
    java_run dev.isthmus.bench.BenchMain gpu "$WORK/bench" "${tiny[@]}" --deadline-seconds $(( LIMIT > 40 ? LIMIT - 20 : LIMIT / 2 ))
    local rc=$?
    report || rc=1
    return $rc
}

stage_peers() {
    if [ -z "$TORCH_PYTHON" ]; then note "skipped: no python3 imports torch"; echo "no python3 imports torch: peers skipped"; return 0; fi
    [ -s "$WORK/bench/shapes.csv" ] || { echo "no shapes.csv from the kernel benchmarks"; return 1; }
    local rc=0 peer share=$(( LIMIT / 5 ))
    cd "$BUNDLE/bench/peers" || return 1
    for peer in rmsnorm scan ssd attention moe; do
        local extra=()
        [ "$peer" = attention ] && extra=(--raw "$WORK/bench/raw.csv" --plot "$OUTDIR/attention-decode.png")
        timeout "$share" "$TORCH_PYTHON" "${peer}_peer.py" --shapes "$WORK/bench/shapes.csv" --out "$WORK/peers-$peer.csv" "${extra[@]}" \
            || { echo "peer $peer failed or was cut off"; rc=1; }
    done
    report || rc=1
    return $rc
}

stage_demo() {
    local sizes=()
    [ -n "$EMULATION" ] && sizes=(--contexts 32,64 --steps 2)
    java_run dev.isthmus.cli.Main demo --backend cuda --out "$WORK/demo" --deadline-seconds $(( LIMIT > 30 ? LIMIT - 10 : LIMIT / 2 )) "${sizes[@]}"
    local rc=$?
    [ -f "$WORK/demo/comparison.png" ] && cp "$WORK/demo/comparison.png" "$OUTDIR/comparison.png"
    return $rc
}

stage_jmh() {
    local iterations=(-wi 2 -i 3 -w 1s -r 1s)
    [ -n "$EMULATION" ] && iterations=(-wi 1 -i 1 -w 100ms -r 100ms)
    # The fork keeps this JVM's flags (the benchmarks append theirs); -foe fails the run on a benchmark error.
    "$JAVA" $JAVA_OPTS_LINE -cp "$CP" org.openjdk.jmh.Main OpCallBenchmark "${iterations[@]}" -f 1 -foe true \
        -jvmArgsAppend "$JAVA_OPTS_LINE" -rf csv -rff "$WORK/jmh.csv" || return 1
    local rows
    rows=$(tail -n +2 "$WORK/jmh.csv" 2>/dev/null | grep -c .)
    [ "$rows" -ge 2 ] || { echo "JMH wrote $rows result rows, expected 2"; return 1; }
}

echo "Isthmus GPU run: commit $COMMIT, deadline ${DEADLINE} s, output $OUTDIR, work files $WORK${EMULATION:+, HOST EMULATION ($EMULATION), not a GPU}"
stage device 20 60 stage_device
stage tests 60 200 stage_tests
stage memcheck 30 90 stage_memcheck
stage bench 60 180 stage_bench
stage peers 30 100 stage_peers
stage demo 30 120 stage_demo
stage racecheck 30 90 stage_racecheck
stage initcheck 30 90 stage_initcheck
stage jmh 30 60 stage_jmh

# ---- the summary, last, in at most 3,000 characters ---------------------------------------------------
{
    echo "## GPU run: commit $COMMIT, $(date -u +%F), $(( $(date +%s) - START )) s of ${DEADLINE}${EMULATION:+, HOST EMULATION, not a GPU}"
    sed -n 's/^device: //p' "$WORK/logs/bench.log" 2>/dev/null | head -1
    grep -m1 '^gemm on cuda' "$WORK/info.txt" 2>/dev/null | cut -c1-300
    echo "stages:"; tail -n +2 "$STAGES" | sed 's/^/  /'
    grep -E "tests (successful|failed|skipped|aborted)" "$WORK/tests.txt" 2>/dev/null | tr -s ' []' ' ' | tr '\n' ';' | sed 's/^/tests:/'; echo
    grep -E "ERROR SUMMARY|stand-in" "$WORK/sanitizer.txt" 2>/dev/null | sort | uniq -c | sed 's/^ */sanitizer: /'
    cat "$WORK/brief.txt" 2>/dev/null
} > "$WORK/summary.txt"
echo; echo "==== summary"
head -c 3000 "$WORK/summary.txt"
pack
grep -q -e ",failed" -e ",timed out" "$STAGES" && exit 1
exit 0
