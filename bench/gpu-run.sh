#!/usr/bin/env bash
# The GPU run: on a CUDA machine, from the folder `make device-bundle` built (builds nothing).
#
#   bench/gpu-run.sh OUTDIR          (from the repository, with build/device-bundle present)
#   build/device-bundle/bench/gpu-run.sh OUTDIR
#
# 1. the device and the two ceilings (copy GB/s, bf16 GEMM TFLOP/s), measured now;
# 2. every test, GPU ones included, with the JUnit summary           -> OUTDIR/tests.log
# 3. compute-sanitizer memcheck / racecheck / initcheck over a driver of every kernel
#                                                                       -> OUTDIR/sanitizer.log
# 4. the kernel benchmarks beside their PyTorch peers, and JMH's host cost of a call
#                                                                       -> OUTDIR/results.csv, summary.md, plot.png, jmh.csv
# 5. the architecture comparison (the demo) at GPU sizes              -> OUTDIR/demo/
# 6. a short summary, last.
# A failing step is reported and the run goes on; the exit status is non-zero if any failed.
set -u -o pipefail

if [ $# -ne 1 ]; then echo "usage: $0 OUTDIR" >&2; exit 2; fi
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -f "$HERE/../lib/isthmus.jar" ]; then BUNDLE=$(cd "$HERE/.." && pwd); else BUNDLE=$(cd "$HERE/../build/device-bundle" && pwd); fi
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

if [ -x "$BUNDLE/jre/bin/java" ]; then JAVA="$BUNDLE/jre/bin/java"; else JAVA=java; fi
JAVA_OPTS=(--enable-native-access=ALL-UNNAMED "-Disthmus.library.path=$BUNDLE/native/libisthmus.so")
CP="$BUNDLE/lib/*"
COMMIT=$(cat "$BUNDLE/COMMIT" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//; s/ /-/')
FAILED=()

step() { echo; echo "==== $* ===="; }

step "1. device and ceilings"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || FAILED+=("nvidia-smi")
DEVICE=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
"$JAVA" "${JAVA_OPTS[@]}" -cp "$CP" dev.isthmus.cli.Main info || FAILED+=("info")
(cd "$BUNDLE/bench/peers" && python3 ceilings.py --out "$SCRATCH/ceilings.csv") || FAILED+=("ceilings")

step "2. tests"
"$JAVA" "${JAVA_OPTS[@]}" -jar "$BUNDLE"/lib/junit-platform-console-standalone-*.jar execute \
    --class-path "$(ls "$BUNDLE"/lib/*.jar | grep -v -e console-standalone -e benchmarks.jar | tr '\n' ':')" \
    --scan-class-path "$BUNDLE/lib/isthmus-tests.jar" --details=tree --disable-banner --disable-ansi-colors 2>&1 | tee "$OUTDIR/tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || FAILED+=("tests")

step "3. compute-sanitizer"
: > "$OUTDIR/sanitizer.log"
for tool in memcheck racecheck initcheck; do
    echo "--- $tool" | tee -a "$OUTDIR/sanitizer.log"
    compute-sanitizer --tool "$tool" --error-exitcode 3 "$BUNDLE/native/sanitize_driver" 2>&1 | tee -a "$OUTDIR/sanitizer.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || FAILED+=("sanitizer-$tool")
done

step "4. benchmarks"
"$JAVA" "${JAVA_OPTS[@]}" -cp "$CP" dev.isthmus.bench.BenchMain gpu "$SCRATCH" || FAILED+=("kernel-bench")
# Each peer times the same work (shapes.csv) in PyTorch and writes its own CSV; report.py joins them.
(cd "$BUNDLE/bench/peers" && python3 rmsnorm_peer.py --shapes "$SCRATCH/shapes.csv" --out "$SCRATCH/peers-rmsnorm.csv") || FAILED+=("rmsnorm-peer")
(cd "$BUNDLE/bench/peers" && python3 scan_peer.py --shapes "$SCRATCH/shapes.csv" --out "$SCRATCH/peers-scan.csv") || FAILED+=("scan-peer")
(cd "$BUNDLE/bench/peers" && python3 attention_peer.py --shapes "$SCRATCH/shapes.csv" --out "$SCRATCH/peers-attention.csv" --raw "$SCRATCH/raw.csv" --plot "$OUTDIR/attention-decode.png") || FAILED+=("attention-peer")
(cd "$BUNDLE/bench/peers" && python3 moe_peer.py --shapes "$SCRATCH/shapes.csv" --out "$SCRATCH/peers-moe.csv") || FAILED+=("moe-peer")
"$JAVA" "${JAVA_OPTS[@]}" -cp "$CP" org.openjdk.jmh.Main OpCallBenchmark -wi 2 -i 3 -f 1 -rf csv -rff "$OUTDIR/jmh.csv" \
    || FAILED+=("jmh")
python3 "$BUNDLE/bench/report.py" --raw "$SCRATCH/raw.csv" --peers "$SCRATCH"/peers-*.csv --ceilings "$SCRATCH/ceilings.csv" \
    --device "$DEVICE" --commit "$COMMIT" --date "$(date -u +%F)" --out "$OUTDIR" > "$SCRATCH/report.out" || FAILED+=("report")

step "5. the architecture comparison"
"$JAVA" "${JAVA_OPTS[@]}" -Djava.awt.headless=true -cp "$CP" dev.isthmus.cli.Main demo --backend cuda --out "$OUTDIR/demo" \
    || FAILED+=("demo")

step "6. summary"
echo "device: $DEVICE   commit: $COMMIT"
echo "tests:"; grep -E "tests (successful|failed|skipped|aborted|found)" "$OUTDIR/tests.log" | sed 's/^/  /'
echo "sanitizer:"; grep -E "^(--- |=+ ERROR SUMMARY)" "$OUTDIR/sanitizer.log" | sed 's/^/  /'
echo "JMH host cost of one call (us/op):"; cut -d, -f1,5,6 "$OUTDIR/jmh.csv" 2>/dev/null | sed 's/^/  /'
cat "$SCRATCH/report.out"
if [ ${#FAILED[@]} -gt 0 ]; then echo "FAILED STEPS: ${FAILED[*]}"; exit 1; fi
echo "all steps passed"
