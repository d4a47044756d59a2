"""Which compiled kernel each benchmark row runs, with what grid, and how often its loops turn.

Everything here is read from the launchers (native/*.cu), the kernels (cuda/*.cuh) and the bench
suites (bench/src/main/java/dev/isthmus/bench/*Bench.java); when one of those changes, the entry
here must follow. Bytes and FLOPs are counted exactly as the bench suites count them, so the floors
are those of the measured rows.

One launch is described by a dict:
  bench, shape, dtype  the bench row (kernel name as in results.csv), or a component of it
  part                 the component's name ("" for the whole row)
  source, symbol       the native/*.cu file and a regex on the mangled kernel name
  threads, blocks      block size and number of blocks doing work
  hot                  how to find the hot loop: {"contains": regex on opcodes, "pick": "innermost" |
                       "outermost" | "last" | "most" (most matching opcodes: an unrolled main loop
                       rather than its remainder)}, or None for kernels whose whole body is the work
  hot_units            work units one warp does in the hot loop per entry into it
  marker               (regex, count per unit): how many units one pass of the hot loop does, read
                       from the code (an unrolled loop does several); without it, one per pass
  inner, outer, other  trips per entry of loops nested in the hot loop, of loops around it, and of
                       every other loop (a number, or a list in order of appearance)
  unit                 what one unit of work is, for "instructions per unit"
  bytes                HBM bytes (the bench's count); l2_bytes: extra bytes re-read through L2 (an
                       expert's weights by each of its row tiles after the first, K/V tiles by
                       every query tile, the row re-read by RMSNorm's second pass);
                       overhead_bytes: bytes the kernel moves beyond the bench's count (split-K
                       partials written and read back), in its memory time but not in the floor
  flops, flop_kind     useful FLOPs and whether they belong on tensor cores or FP32 units
  exps                 special-function evaluations the algorithm needs (the MUFU floor)
  l2_latency           True when its loads hit data just written by the previous kernel
  dynamic_shared       bytes of dynamic shared memory per block (ptxas reports only the static part)
  inflight_passes      passes of the hot loop whose loads are in flight at once (a cp.async ring
                       that copies that many passes ahead); 1 without it
  serial_warps         warps that do the work one after another (one scheduler each)
  planned_blocks_per_sm  the resident blocks an SM the launcher planned the grid for (the split-KV
                       planning's occupancy query); perf_model notes a row whose kernel holds another
  paths                path weights: code the row does not run at its shape, or runs on a fraction
                       of passes; a list of rules {name, weight, why, and one or more of: source
                       (regex on the source line an instruction comes from, or on the line that
                       call was inlined at: PTX -lineinfo), function (regex on the mangled name of
                       the inlined function it comes from), instr (regex on the instruction text)}.
                       Every basic block holding a matching instruction, and every block reached
                       forward only from those, executes `weight` of the passes counted for it
                       (perf_model.path_weights). Without `paths` every branch is counted (the
                       conservative count, which the outputs keep beside: estimate_all_branches_us).
                       Markers are source text, not labels or line numbers, so they survive
                       recompiles and edits elsewhere; a rule that matches nothing is flagged in
                       the row's `paths` column. SASS has no line info: there only `instr` rules hold.
"""
import math

BF16, F32 = "bf16", "f32"
SIZE = {BF16: 2, F32: 4}
MANGLED = {BF16: "13__nv_bfloat16", F32: "f"}
SMS = 132  # the split planning reads the SM count from the device; both machines have 132


def cdiv(a, b):
    return -(-a // b)


def strided_warp_trips(n, threads, stride=None):
    """Average over the warps of `threads` threads of the passes a warp makes through
    `for (i = thread; i < n; i += stride)` (stride: all the threads): a warp passes while any of
    its lanes has an i; warps past n make none."""
    stride = stride or threads
    warps = cdiv(threads, 32)
    return sum(cdiv(n - 32 * w, stride) if n > 32 * w else 0 for w in range(warps)) / warps


RMSNORM_VECS, RMSNORM_WARP_ROWS = 4, 4  # cuda/rmsnorm.cuh
RMSNORM_KEEP_THREADS, RMSNORM_MAX_BLOCK_ROWS, RMSNORM_MIN_BLOCKS_PER_SM = 512, 8, 4


def rmsnorm_block_rows(rows):
    """native/rmsnorm.cu: rows per block of the weight-keeping kernel, doubled up to
    RMSNORM_MAX_BLOCK_ROWS while every SM keeps RMSNORM_MIN_BLOCKS_PER_SM blocks."""
    block_rows = 1
    while block_rows < RMSNORM_MAX_BLOCK_ROWS and rows // (2 * block_rows) >= SMS * RMSNORM_MIN_BLOCKS_PER_SM:
        block_rows *= 2
    return block_rows


def rmsnorm():
    """native/rmsnorm.cu: threads per row = ceil(vectors / (32 RMSNORM_VECS)) * 32; one warp a row
    (RMSNORM_WARP_ROWS rows a block) when that is 32, one block a row up to 1024 threads, the
    two-pass kernel past that. At the bench widths (4096 and 8192) every row is one block of
    128-512 threads, holding exactly RMSNORM_VECS vectors of each operand. With several rows a
    block (rmsnorm_block_rows: 4 at 4096 rows, 8 at 16384) the kernel is rmsnorm_kernel<T, N,
    RES, KEEP_WEIGHT = true>: each thread loads its vectors of the weight once, then serves the
    block's rows in turn; the row loop (all else unrolled) is the hot loop, one row a pass. With
    one (1 and 64 rows) it is the plain KEEP_WEIGHT = false kernel, which has no loop: the whole
    body is the work. Counted statically, so the warp_sum path (a row of one warp) is counted beside
    block_sum, which is the one that runs."""
    out = []
    for dtype in (BF16, F32):
        n = 16 // SIZE[dtype]
        for rows, cols in ((1, 4096), (64, 4096), (4096, 4096), (16384, 8192)):
            for residual in (False, True):
                vecs = cols // n
                threads = cdiv(vecs, 32 * RMSNORM_VECS) * 32
                assert 32 < threads <= RMSNORM_KEEP_THREADS, "the bench widths take a block a row, weight kept"
                block_rows = rmsnorm_block_rows(rows)
                blocks = cdiv(rows, block_rows)
                keep = block_rows > 1
                out.append(dict(
                    bench="rmsnorm+residual" if residual else "rmsnorm", part="", shape=f"{rows}x{cols}", dtype=dtype,
                    source="rmsnorm", symbol=rf"14rmsnorm_kernelI{MANGLED[dtype]}Li{n}ELb{int(residual)}ELb{int(keep)}EE",
                    threads=threads, blocks=blocks,
                    # the row loop, holding the row's 16-byte loads (x: ld.global; the kept weight
                    # before it: ld.global.nc); without KEEP_WEIGHT it folds away: no loop
                    hot={"contains": r"^(ld\.global\.v4|LDG\.E\.128)", "pick": "outermost"} if keep else None,
                    hot_units=block_rows, other=1,
                    unit=f"row ({RMSNORM_VECS} vectors a thread, {threads // 32} warps; {block_rows} a block)",
                    units_per_warp=block_rows,
                    bytes=rows * cols * SIZE[dtype] * (4 if residual else 2) + cols * SIZE[dtype],
                    # the weight is read again by every block (from L2), once for all its rows;
                    # x, residual, h and out cross once
                    l2_bytes=blocks * cols * SIZE[dtype], flops=4 * rows * cols, flop_kind="fp32", exps=rows,
                    # `blockDim.x == 32 ? warp_sum(..) : block_sum(..)`: threads is 128-512 here, so
                    # the warp-per-row reduction never runs (block_sum's own warp_sum calls are
                    # inlined at lines of common.cuh, not at this one, so they keep weight 1)
                    paths=[dict(name="warp-per-row reduction", weight=0.0, function=r"warp_sum",
                                source=r"blockDim\.x == 32 \? warp_sum",
                                why=f"{threads} threads a row: block_sum runs")]))
    return out


SCAN_MAX_THREADS, SCAN_STATES, SCAN_VEC, SCAN_PAD = 128, 4, 8, 4  # cuda/scan.cuh


def scan_shared_floats(block_channels, state_tiles, chunk):
    """cuda/scan.cuh scan_shared_floats."""
    return (block_channels * (2 * chunk + SCAN_PAD) + state_tiles * block_channels * (chunk + SCAN_PAD)
            + state_tiles * (2 * SCAN_STATES * chunk + SCAN_PAD))


def scan_tiling(channels, groups, nstate):
    """native/scan.cu launch_typed: (state tiles, channels per block, chunk) for 48 KB of shared memory."""
    tiles = cdiv(nstate, SCAN_STATES)
    block_channels = min(SCAN_MAX_THREADS // tiles, channels // groups)
    chunk = 64
    while chunk > SCAN_VEC and (chunk > SCAN_VEC * tiles or scan_shared_floats(block_channels, tiles, chunk) * 4 > 48 * 1024):
        chunk //= 2
    return tiles, block_channels, chunk


def selective_scan():
    """The bench calls it with z, D, delta bias and softplus, groups 1, 16-byte aligned rows of a
    length that is a multiple of the vector: selective_scan_kernel<T, WIDE=true, SOFTPLUS=true>.
    Each thread stages and finishes one fixed run of SCAN_VEC steps per chunk (the launcher keeps
    chunk <= SCAN_VEC * tiles), straight-line code in the chunk loop. Loops in the PTX, in order:
    the chunk loop (outer, L / chunk), the stage of B and C (items (matrix, state tile, run),
    strided over the block; a whole-chunk and a partial-chunk copy), the recurrence (the hot loop:
    the innermost with exponentials, SCAN_VEC = 8 steps x 4 states = 32 ex2 a pass, chunk / 8
    passes), then the finish's loop over the state tiles past the first four, in the whole-run and
    the partial-run version."""
    out = []
    b, d, length, n, groups = 8, 2048, 4096, 16, 1
    tiles, cb, chunk = scan_tiling(d, groups, n)
    threads = cb * tiles
    runs = chunk // SCAN_VEC
    for dtype in (BF16, F32):
        out.append(dict(
            bench="selective-scan", part="", shape=f"B{b}xD{d}xL{length}xN{n}", dtype=dtype,
            source="scan", symbol=rf"selective_scan_kernelI{MANGLED[dtype]}Lb1ELb1EE",
            threads=threads, blocks=b * groups * cdiv(d // groups, cb),
            dynamic_shared=scan_shared_floats(cb, tiles, chunk) * 4,
            # the recurrence: the innermost loop with exponentials (the stage's softplus and the
            # finish's silu hold ex2 too, in the chunk loop's straight-line code)
            hot={"contains": r"^(ex2|MUFU\.EX2)", "pick": "innermost"}, hot_units=chunk * SCAN_STATES,
            marker=(r"^(ex2|MUFU\.EX2)", 1),  # one (step, state) of a thread per ex2
            outer=cdiv(length, chunk),
            # the B/C item loop, which the compiler splits into a whole-chunk and a partial-chunk
            # copy (2 x tiles x runs items: only the first warp has one); then the finish's loop
            # over the state tiles past the first four (none at N = 16), in the whole-run and the
            # partial-run version (which weighs 0 below)
            other=[strided_warp_trips(2 * tiles * runs, threads)] * 2 + [max(tiles - 4, 0)] * 2,
            unit="(step, state) per thread", units_per_warp=length * SCAN_STATES,
            bytes=4 * b * d * length * SIZE[dtype] + 2 * b * n * length * SIZE[dtype] + 4 * b * d * n + 4 * d * (n + 2),
            flops=0, flop_kind="fp32", exps=b * d * length * n,
            # L = 4096 is a multiple of the chunk and there are no sequence starts, so every chunk
            # is whole (full), every channel real (2048 channels, 32 a block) and every state real
            # (N = 16 = 4 tiles x 4): only the FULL = true instantiations run
            # (the partial-chunk code is every instantiation with FULL = false, FULL being the
            # last template argument of each of these functions: mangled ...Lb0EE then Ev)
            paths=[dict(name="partial-chunk stage/B,C/finish", weight=0.0,
                        function=r"(load_run|store_run|stage_run|stage_bc_run|finish_run)I\w*Lb0EEEv",
                        why=f"L {length} a multiple of the chunk {chunk}: every chunk whole")]))
    return out


STEP_STATES, STEP_THREADS = 16, 128  # cuda/scan_step.cuh


def state_update():
    """The bench calls it without slots, with z, D, delta bias and softplus, N = 16, aligned:
    selective_state_update_kernel<T, VEC=4> on a grid of (channel slices of STEP_THREADS, rows),
    one thread a (row, channel) (N <= STEP_STATES: one lane), four 16-byte runs of state each.
    Loops in the PTX: the row loop (outer: 1 pass, B <= 65535), the state loop (the hot one: the
    innermost with exponentials, 16 ex2 a pass, 1 pass at N = 16) and the warp's scan of earlier
    rows' slots (not run: no slots). Counted statically, so the slot scan and its ballot are
    weighted out by the path rule below."""
    out = []
    b, d, n = 64, 4096, 16
    lanes = max(1, cdiv(n, STEP_STATES))
    for dtype in (BF16, F32):
        out.append(dict(
            bench="selective-state-update", part="", shape=f"B{b}xD{d}xN{n}", dtype=dtype,
            source="scan_step", symbol=rf"selective_state_update_kernelI{MANGLED[dtype]}Li4E",
            threads=STEP_THREADS, blocks=cdiv(d * lanes, STEP_THREADS) * b,
            hot={"contains": r"^(ex2|MUFU\.EX2)", "pick": "innermost"}, hot_units=1, outer=1, other=0,
            unit="32 (row, channel) pairs per warp (one a thread)", units_per_warp=1.0,
            bytes=2 * 4 * b * d * n + 4 * b * d * SIZE[dtype] + 2 * b * n * SIZE[dtype] + 4 * d * (n + 2),
            flops=0, flop_kind="fp32", exps=b * d * n,
            # `if (p.slots == nullptr) return slot;` returns before the scan of earlier rows' slots
            paths=[dict(name="repeated-slot scan", weight=0.0,
                        source=r"(repeated \|= p\.slots\[j\]|__ballot_sync\(0xffffffffu, repeated\))",
                        why="the bench passes no slots")]))
    return out


CONV_ITEMS, CONV_SEQUENCE_THREADS = 8, 128  # cuda/conv1d.cuh


def conv1d():
    """causal_conv1d_kernel<bf16, W=4>: a thread owns CONV_ITEMS steps of one row; grid x tiles
    along L, y channels, z batch (no striding at this shape). Loops: the channel loop and, in it,
    the batch loop (the hot one: the innermost with FMAs), one pass each. Counted statically, so the
    element-wise load/store paths (unaligned or a partial tile) and the initial-state path of the
    first tile are counted beside the 16-byte path that runs: an overcount."""
    b, d, length, w = 8, 2048, 4096, 4
    elements = b * d * length
    tiles = cdiv(length, CONV_ITEMS)
    threads = min(CONV_SEQUENCE_THREADS, cdiv(tiles, 32) * 32)
    return [dict(
        bench="causal-conv1d", part="", shape=f"B{b}xD{d}xL{length}xW{w}", dtype=BF16,
        source="conv1d", symbol=rf"causal_conv1d_kernelI13__nv_bfloat16Li{w}EE",
        threads=threads, blocks=cdiv(tiles, threads) * d * b,
        hot={"contains": r"^(fma|FFMA)", "pick": "innermost"}, hot_units=1, outer=1, other=1,
        unit=f"{CONV_ITEMS} outputs per thread ({32 * CONV_ITEMS} per warp)", units_per_warp=1.0,
        bytes=2 * elements * 2 + d * (w + 1) * 2, flops=2 * w * elements, flop_kind="fp32", exps=elements,
        paths=[
            # L = 4096 is a multiple of CONV_ITEMS and the bench's rows are 16-byte aligned, so
            # `vector` holds for every tile: the element-wise load and store never run
            dict(name="element-wise load/store", weight=0.0,
                 source=r"(to_float\(row\[t0 \+ k\]\) : 0\.0f|if \(t0 \+ k < length\) row\[t0 \+ k\])",
                 why="L a multiple of the tile, aligned rows"),
            # `t0 > 0` fails only for the row's first tile: lane 0 of the first warp of a row, so
            # one warp in (tiles / 32) of a row takes (diverged) the initial-state path
            dict(name="first-tile window", weight=32 / tiles, source=r"conv_input\(p, channel_row, j - H\)",
                 why=f"1 warp in {tiles // 32} holds a row's first tile")])]


DECODE_ROWS, DECODE_WARPS, DECODE_STEP = 4, 4, 16  # cuda/attention_decode.cuh kDecodeRows/Warps/Step
DECODE_STAGES = 3  # kDecodeStages: each warp's cp.async ring copies kDecodeStages - 1 steps ahead
# The decode kernel's resident blocks an SM at head_dim 128 in bf16 (isthmus_attention_blocks_per_sm,
# which the split planning takes): its occupancy on sm_90 by its ptxas registers and its
# DecodeLayout's shared memory (the bf16 ring 96 KiB, the code rings less). perf_model notes a row
# whose compiled kernel holds another count.
DECODE_BLOCKS_PER_SM = {"model": 2, "int8": 3, "fp8": 4}
KV_TILE = 32  # AttentionWorkspace.KV_TILE: split boundaries fall on it


def split_count(sms, blocks_per_sm, batch, kv_heads, q_heads, new_tokens, kv_length):
    """Attention.splitCount: 1 when the batch fills every SM's BLOCKS_PER_SM slots (or the KV is at
    most 256 keys), else the split count of the fewest waves (1..4) that come to 90% full, the best
    fill otherwise, each piece at least 256 keys, at most 128 pieces."""
    units = batch * kv_heads * max(1, cdiv(new_tokens * (q_heads // kv_heads), DECODE_ROWS))
    slots = sms * blocks_per_sm
    if units >= slots or kv_length <= 256:
        return 1
    cap = min(128, cdiv(kv_length, 256))
    best, best_fill = 1, 0.0
    for waves in range(1, 5):
        splits = min(cap, max(1, waves * slots // units))
        blocks = splits * units
        fill = blocks / (cdiv(blocks, slots) * slots)
        if fill > best_fill:
            best, best_fill = splits, fill
        if fill >= 0.9:
            break
    return best


def decode_splits(batch, context, cache="model", kv_heads=8, q_heads=32):
    """Attention.splitCount, then AttentionWorkspace.allocate, which rounds the chunk up to KV_TILE
    keys and launches ceil(context / chunk) splits (so 33 planned can be 32 launched): (splits, chunk)."""
    planned = split_count(SMS, DECODE_BLOCKS_PER_SM[cache], batch, kv_heads, q_heads, 1, context)
    chunk = cdiv(cdiv(context, planned), KV_TILE) * KV_TILE
    return cdiv(context, chunk), chunk


def decode_warp_steps(keys):
    """Passes of the step loop per warp, averaged over the block's warps: warp w takes 16-key
    steps w, w + DECODE_WARPS, ... of the split's ceil(keys / 16) steps."""
    steps = cdiv(keys, DECODE_STEP)
    return sum(cdiv(steps - w, DECODE_WARPS) if steps > w else 0 for w in range(DECODE_WARPS)) / DECODE_WARPS


def rescale_fraction(passes, rows=DECODE_ROWS):
    """Fraction of a warp's step-loop passes in which some row's running max grows (the rescale
    of o, a branch the warp takes when any of its lanes does): with scores independent and
    identically distributed (the bench's random q and K), pass n holds a row's new maximum with
    probability 1 / n, so any of `rows` rows with at most rows / n; averaged over the passes."""
    n = max(1, int(round(passes)))
    return min(1.0, sum(min(1.0, rows / i) for i in range(1, n + 1)) / n)


def decode_shared_bytes(dim=128, elem=2, cache="model"):
    """cuda/attention_decode.cuh DecodeLayout<T, D, C>::kBytes: each warp's ring of DECODE_STAGES
    (K, V) tiles of 16 keys, unpadded rows (swizzled chunks; the warps' final states reuse it). A
    quantized cache's ring holds 1-byte codes, then (int8) each stage's 32 f32 scales."""
    tile = DECODE_STEP * dim
    if cache == "model":
        staged = elem * DECODE_WARPS * DECODE_STAGES * 2 * tile
    else:
        scales = 4 * DECODE_WARPS * DECODE_STAGES * 2 * DECODE_STEP if cache == "int8" else 0
        staged = DECODE_WARPS * DECODE_STAGES * 2 * tile + scales
    return max(staged, 4 * DECODE_WARPS * DECODE_ROWS * (dim + 2))


# The decode rows per KV cache type (bench "attention-decode" + suffix): the mangled cache element
# of attention_decode_kernel<bf16, 128, C> (C = T is the substitution S1_), the bytes of one cached
# element, and the bytes of scales per (token, kv head) of K or V read from HBM.
DECODE_CACHES = {
    "model": dict(suffix="", mangled="S1_", elem_bytes=2, scale_bytes=0),
    "int8": dict(suffix="-int8", mangled="a", elem_bytes=1, scale_bytes=4),
    "fp8": dict(suffix="-fp8", mangled="NS_7Fp8E4m3E", elem_bytes=1, scale_bytes=0),
}


def attention_decode(cache="model"):
    """Decode at head_dim 128, bf16, pages of 16: native/attention.cu takes the tensor-core decode
    kernel attention_decode_kernel<bf16, 128> (cuda/attention_decode.cuh) on a grid of (1 row group
    of the 4 query rows of a KV head, batch x 8 KV heads, splits), 4 warps a block, 96 KiB of
    dynamic shared memory; with splits > 1 the last block of each row group merges the splits'
    partials itself (merge_row), so one launch does the whole row. The split count is the
    planner's (whole waves of 2 blocks per SM on 132 SMs).

    Loops in the PTX: the step loop (the hot one: the only loop with cp.async; both decode_issue
    and both decode_step instantiations are unrolled in it), the cross-warp merge's
    `d = lane; d < 128; d += 32` (4 passes), then merge_row's loop over groups of 32 parts
    (ceil(P / 32) passes) around its loop over the parts of a group (P in all). Counted
    statically, the step loop's pass holds the masked and unmasked issue and step (only the
    unmasked run at these shapes: every split edge is a multiple of 32 keys, all pages mapped, the
    causal mask hides nothing from the one new token), the soft-cap tanh (soft-cap 0 here), the
    rescale of o when a row's max grows and the block-table refill (once in 32 passes). merge_row
    runs in 1 block of the row group's P: weight 1 / P over the blocks.

    FLOPs: the bench's useful count, on tensor cores; the mma.sync tiles do twice that (4 of their
    8 columns are rows), which the tensor time does not see: still ~30x below the byte time.

    Bytes: the bench's count (K, V, q, out) crosses HBM; the f32 partials (written, then read by
    the merging block) stay in L2 (a few MB against 50 MB) and are counted there. In flight: the
    ring keeps DECODE_STAGES - 1 steps of 8 KiB per warp copying while it computes one.

    cache "int8" / "fp8": the same rows over a quantized cache (attention_decode_kernel<bf16, 128,
    int8_t / Fp8E4m3>): the bytes are the codes (1 a element) and int8's f32 scales (one per token
    and kv head of K and of V; fp8's per-head scales are 64 bytes a launch, not counted). The step
    (decode_scores / decode_values) reads the codes from the ring with 16-byte shared loads and
    turns them into the f16 mma fragments in registers (codes_to_f16x2: int8 by a byte permute and
    an f16x2 subtraction, fp8 by cvt.rn.f16x2.e4m3x2), the scales applied after the mmas; the ring
    holds 4 KiB a step. int8 also tracks the largest V-scale exponent of the warp, rescaling o when
    it grows: like the max, in ~1 / n of pass n with i.i.d. scales."""
    out = []
    kind = DECODE_CACHES[cache]
    hq, hkv, dim = 32, 8, 128
    for batch in (1, 8):
        for context in (1024, 4096, 16384, 32768, 65536, 131072):
            splits, chunk = decode_splits(batch, context, cache)
            shape = f"b{batch}-ctx{context}"
            kv_bytes = 2 * batch * context * hkv * (dim * kind["elem_bytes"] + kind["scale_bytes"])
            rows = batch * hq
            steps = decode_warp_steps(chunk)  # the busiest block: a whole chunk
            paths = [
                # every split edge is a multiple of 32 keys, all pages are mapped and the one new
                # token sees every key: each step is whole and visible
                dict(name="masked copy", weight=0.0, source=r"decode_issue<C, D, true>",
                     why=f"split chunk {chunk} keys, a multiple of 32; no mask"),
                dict(name="masked step", weight=0.0, source=r"decode_step<T, C, D, true>",
                     why=f"split chunk {chunk} keys, a multiple of 32; no mask"),
                # the bench's soft-cap is 0: `if (sc.capped)` is never taken
                dict(name="soft-cap tanh", weight=0.0, source=r"tanhf\(x\[i\]\)", why="soft-cap 0"),
                dict(name="max rescale", weight=rescale_fraction(steps), source=r"st\.o\[i\]\[[02]\] \*= alpha",
                     why=f"i.i.d. scores: some row's max grows in ~{rescale_fraction(steps):.2f} of {steps:g} passes"),
                *([dict(name="V-scale rescale", weight=rescale_fraction(steps, rows=1), source=r"st\.o\[i\]\[[02]\] \*= shrink",
                         why=f"i.i.d. scales: the warp's largest grows in ~{rescale_fraction(steps, rows=1):.2f} of {steps:g} passes")]
                  if cache == "int8" else []),
                # `if (n % 32 == 0)`: the block table is read for 32 steps at once
                dict(name="block-table read", weight=cdiv(int(steps), 32) / max(1, steps),
                     source=r"(\(n \+ lane\) \* kDecodeWarps|tn / p\.block_size|table\[page\]|slots = tn - page)",
                     why="once in 32 passes"),
                # the last block of a row group merges: 1 of `splits`; none without splits
                dict(name="split merge", weight=1 / splits if splits > 1 else 0.0, function=r"merge_row",
                     why=f"1 block of {splits} merges" if splits > 1 else "one split: nothing to merge"),
                # `if (p.splits == 1)` inside the cross-warp merge: the other store never runs
                dict(name="unused output store", weight=0.0,
                     source=r"static_cast<T \*>\(p\.out\)\[q_row \* D \+ d\]" if splits > 1 else r"p\.partial_out\[part_row \* D \+ d\]",
                     why="partials written" if splits > 1 else "out written")]
            lse_groups = cdiv(splits, 32)
            out.append(dict(
                bench="attention-decode" + kind["suffix"], part="", shape=shape, dtype=BF16,
                source="attention", symbol=r"attention_decode_kernelI13__nv_bfloat16Li128E" + kind["mangled"] + "E",
                threads=DECODE_WARPS * 32, blocks=batch * hkv * cdiv(hq // hkv, DECODE_ROWS) * splits,
                hot={"contains": r"^(cp\.async\.c|LDGSTS)", "pick": "outermost"}, hot_units=steps,
                other=[4, lse_groups, splits / lse_groups],
                unit="16-key step per warp (4 rows)", units_per_warp=steps,
                bytes=kv_bytes + 2 * rows * dim * 2,
                l2_bytes=(splits > 1) * 2 * splits * rows * (dim + 1) * 4,
                flops=4 * batch * hq * context * dim, flop_kind="tensor", exps=batch * hq * context,
                dynamic_shared=decode_shared_bytes(dim, 2, cache), inflight_passes=DECODE_STAGES - 1, paths=paths,
                planned_blocks_per_sm=DECODE_BLOCKS_PER_SM[cache]))
    return out


PREFILL_ROWS, PREFILL_KEYS, PREFILL_WARPS = 128, 64, 8  # cuda/attention_prefill.cuh


def prefill_shared_bytes(dim, size=2):
    """PrefillLayout<T, D>::kBytes: Q (128 rows) and two K and two V tiles (64 rows), rows of D + 8."""
    return size * (PREFILL_ROWS + 4 * PREFILL_KEYS) * (dim + 8)


def attention_prefill():
    """Prefill of 8K new tokens of one sequence, causal, bf16, head_dim 128, 32 query and 8 KV
    heads, pages of 16 (AttentionBench): native/attention.cu takes attention_prefill_kernel<bf16,
    128> (cuda/attention_prefill.cuh) on a grid of 64 row tiles of 128 tokens x 32 heads, 8 warps
    a block, 102 KiB of dynamic shared memory.

    The hot loop is the KV tile loop (64 keys a pass); everything inside it is unrolled: the
    cp.async gather of the next tile, S = Q K^T, the softmax, O += P V. Block i (rows 128i..)
    passes 2i + 2 tiles; its warp w computes ceil((128i + 16w + 16) / 64) of them (2i + 1 for
    w < 4, 2i + 2 for w >= 4) and skips the others after the barrier and the copy. Passes are
    counted for the computed tiles (64.5 a warp on average); the 0.5 skipped passes a warp, which
    run only the loop's head, are left out (under 1%). One computed tile a warp crosses the
    diagonal and runs the mask; the soft-cap is 0; the rescale of O runs when a row's max grows;
    the copy's division for pages shorter than its 16-key step never runs (pages of 16)."""
    tokens, hq, hkv, dim = 8192, 32, 8, 128
    row_tiles = tokens // PREFILL_ROWS
    computed = sum(cdiv(PREFILL_ROWS * i + 16 * w + 16, PREFILL_KEYS)
                   for i in range(row_tiles) for w in range(PREFILL_WARPS)) / (row_tiles * PREFILL_WARPS)
    passes = sum(2 * i + 2 for i in range(row_tiles))  # tiles loaded by all row tiles of one head
    # O and l are rescaled in the passes where one of a warp's 16 rows finds a new max: with
    # i.i.d. scores (the bench's random data) pass n does so with probability min(1, 16 / n)
    per_warp = [cdiv(PREFILL_ROWS * i + 16 * w + 16, PREFILL_KEYS) for i in range(row_tiles) for w in range(PREFILL_WARPS)]
    rescale = sum(n * rescale_fraction(n, rows=16) for n in per_warp) / sum(per_warp)
    pairs = tokens * (tokens + 1) / 2
    return [dict(
        bench="attention-prefill", part="", shape=f"b1-tokens{tokens}", dtype=BF16,
        source="attention", symbol=r"attention_prefill_kernelI13__nv_bfloat16Li128ES1_E",
        threads=PREFILL_WARPS * 32, blocks=row_tiles * hq, dynamic_shared=prefill_shared_bytes(dim),
        hot={"contains": r"^(mma|HMMA)", "pick": "outermost"}, hot_units=computed,
        unit="64-key tile per warp (16 rows)", units_per_warp=computed,
        bytes=(2 * tokens * hq + 2 * tokens * hkv) * dim * 2,
        l2_bytes=hq * passes * PREFILL_KEYS * dim * 2 * 2,  # K and V tiles re-read by every row tile
        flops=4 * hq * dim * pairs, flop_kind="tensor", exps=hq * pairs,
        paths=[
            dict(name="mask", weight=1 / computed,
                 source=r"(key_visible\(p, t, position\)|const int position = cached \+ warp_first|const int t = tile \+ n \* 8)",
                 why=f"one tile of {computed:.1f} a warp crosses the causal diagonal"),
            dict(name="soft-cap tanh", weight=0.0, source=r"tanhf\(s\[n\]\[e\] \* cap_in\)", why="soft-cap 0"),
            dict(name="rescale", weight=rescale, source=r"o\[j\]\[[0-3]\] \*= alpha\[[01]\]",
                 why=f"i.i.d. scores: a warp's row max grows in ~{rescale:.2f} of the passes"),
            dict(name="short pages", weight=0.0, source=r"^\s+page = t / p\.block_size;",
                 why="pages of 16 keys, the copy's step: the page steps on without a division")])]


def touched(tokens, k, experts):
    """Expected number of experts receiving at least one of tokens*k uniformly routed pairs."""
    return experts * (1 - (1 - 1 / experts) ** (tokens * k)) if tokens * k < 4 * experts else experts


MOE_ALIGN_WARPS, MOE_ALIGN_STEPS, MOE_ALIGN_CHUNK, MOE_TILE = 8, 8, 2048, 128  # cuda/moe_dispatch.cuh; the GEMM's tile height


def moe_align(common, pairs, experts, used, tiles):
    """isthmus_moe_align: one launch of one block when every pair fits in one chunk, else three
    launches over chunks of MOE_ALIGN_CHUNK pairs, one block of 256
    per chunk (histogram, scatter) and one thread per expert (scan). The bench is dropless
    (expert capacity 0). Bytes are what each launch moves: ids twice (histogram and scatter),
    the per-chunk counts written, prefixed and read back, sorted_pairs, dropped and tile_experts.
    None of the three has a loop over its main work (the 8 steps of 32 pairs are unrolled), so
    the whole body is counted, with every small loop's trips below; the padding loop's trips
    depend on the routing (here: the expected padding of `used` experts)."""
    threads = MOE_ALIGN_WARPS * 32
    chunks = max(1, cdiv(pairs, MOE_ALIGN_CHUNK))
    capacity = pairs + min(experts, pairs) * (MOE_TILE - 1)
    tile_rows = cdiv(capacity, MOE_TILE)  # the launcher's `tiles`
    padded = tiles * MOE_TILE  # expected padded total: each used expert's pairs rounded up to a tile
    grid_threads = chunks * threads
    per_expert = strided_warp_trips(experts, threads)  # for (e = tid; e < experts; e += 256)
    active = min(MOE_ALIGN_WARPS, cdiv(experts, 32)) / MOE_ALIGN_WARPS  # warps with a thread's run of experts
    lane_loop = cdiv(experts, 32)  # for (e = lane; e < experts; e += 32), unrolled by 4
    tail = strided_warp_trips(max(0, math.ceil(capacity - padded)), grid_threads)  # sentinels past the padded total
    tail_rem = tail if tail < 4 else 1.5
    search = max(1, math.ceil(math.log2(experts)))
    pad_trips = max(0, padded - pairs) / 4 / max(1, tiles)  # the 4-unrolled padding loop, per tile
    base = dict(common, source="moe", flops=0, flop_kind="fp32", exps=0, l2_latency=True, hot=None,
                units_per_warp=1.0)
    # The scatter's small loops, in PTX order: the segment loop's capacity version (unrolled,
    # remainder; not run), its dropless version (one expert a thread: the remainder), the
    # warps-before sum (warp w: w // 4 and w % 4 passes), the second segment loop (remainder,
    # unrolled), warp_base zeroing (remainder, unrolled), base positions for chunk 0 and for the
    # rest, the tile loop (experts > 1) with its binary search and padding, the tile loop of a
    # single expert (not run) and its padding, the sentinel tail (remainder, unrolled).
    scatter_loops = [0, 0, 0, active, 0.5, 1.5, active, 0, lane_loop % 4, lane_loop // 4,
                     per_expert / chunks, per_expert * (chunks - 1) / chunks,
                     strided_warp_trips(tile_rows, grid_threads), search, pad_trips, 0, 0, tail_rem,
                     max(0.0, (tail - tail_rem) / 4)]
    scatter_bytes = pairs * 4 + experts * 4 + capacity * 4 + pairs * 4 + tile_rows * 4
    if pairs <= MOE_ALIGN_CHUNK:
        # One chunk (decode sizes): histogram and scatter in one block and one launch, the same
        # helpers inlined; their loops are taken to appear in that order in the PTX (an
        # assumption: a mismatch misplaces a few small trip counts, not the launch's cost).
        # The step loops (histogram, ranking, scatter: 8 unrolled 32-pair steps each) stop at the
        # warp's last step holding a pair (`if (j == live_steps) break;`). Warp 0, the busiest,
        # holds min(8, ceil(pairs / 32)) live steps: its count stands for every warp (an upper
        # bound for the others, which hold fewer or none), since the block's barriers wait for it.
        live = min(MOE_ALIGN_STEPS, cdiv(pairs, 32))
        return [dict(base, part="align", symbol=r"moe_align_one_chunk_kernel", threads=threads, blocks=1,
                     dynamic_shared=(MOE_ALIGN_WARPS + 3) * experts * 4,
                     other=[per_expert, per_expert] + scatter_loops,
                     unit="256 pairs per warp", bytes=pairs * 4 + experts * 4 + scatter_bytes,
                     paths=[dict(name="steps past the warp's pairs", weight=live / MOE_ALIGN_STEPS,
                                 why=f"{pairs} pairs: warp 0 holds {live} of its {MOE_ALIGN_STEPS} steps",
                                 # the first block of each step's body: the histogram's and the
                                 # ranking's match, the scatter's `if (p < end)` (its pair index
                                 # is the one align_load_ids computed)
                                 source=r"(__match_any_sync\(0xffffffffu, id\[j\]\)|^\s*if \(p < end\) \{)")])]
    return [
        dict(base, part="align-histogram", symbol=r"moe_align_histogram_kernel", threads=threads, blocks=chunks,
             dynamic_shared=experts * 4,
             other=[per_expert, per_expert],  # zero the counts; write the chunk's slice
             unit="256 pairs per warp", bytes=pairs * 4 + chunks * experts * 4),
        # only the warps holding an expert do anything: those are the threads modelled
        dict(base, part="align-scan", symbol=r"moe_align_scan_kernel", threads=cdiv(min(experts, threads), 32) * 32,
             blocks=cdiv(experts, threads),
             other=[(chunks - 1) // 4, (chunks - 1) % 4],  # the loop over chunks, unrolled by 4, and its remainder
             unit="32 experts per warp", bytes=2 * chunks * experts * 4 + experts * 4),
        dict(base, part="align-scatter", symbol=r"moe_align_scatter_kernel", threads=threads, blocks=chunks,
             dynamic_shared=(MOE_ALIGN_WARPS + 2) * experts * 4, other=scatter_loops, unit="256 pairs per warp",
             bytes=scatter_bytes + chunks * experts * 4),
    ]


def moe_combine(common, tokens, hidden, k, pairs):
    """moe_combine_kernel<bf16, 8>: block (min(256, vectors), 256 / that), grid (vectors / x,
    tokens / y); the bench passes dropped and the residual, no shared expert. The compiler keeps
    two versions of the token loop (dropped given or NULL); the hot one is the first, whose
    slot loads are guarded by the dropped flags (ld.global.nc.u32). Inside it the slot loop
    (k / 4 passes) and four out-of-line load blocks that branch back, which read as loops of one
    pass; the second version is given no trips. When the row's vectors do not fill the last block (DeepSeek: 896 of 1024) the idle warps
    exit at once but are counted as working (12.5% over there)."""
    vecs = hidden // 8
    x = min(256, cdiv(vecs, 32) * 32)
    y = 256 // x
    grid = cdiv(vecs, x) * min(cdiv(tokens, y), 65535)
    per_thread = cdiv(tokens, min(cdiv(tokens, y), 65535) * y)
    n = tokens * hidden
    return dict(common, part="combine", source="moe", symbol=r"moe_combine_kernelI13__nv_bfloat16Li8EE",
                threads=x * y, blocks=grid,
                hot={"contains": r"^ld\.global\.nc\.u32", "pick": "outermost"}, hot_units=per_thread,
                inner=[1, 1, 1, 1, cdiv(k, 4)],
                other=0,  # the dropped == NULL version of the token loop and its slot loop: not run
                unit="token row of 32 vectors (256 outputs) per warp",
                units_per_warp=per_thread, bytes=pairs * hidden * 2 + 2 * n * 2 + pairs * 4, flops=0,
                flop_kind="fp32", exps=0)


def moe():
    out = []
    shapes = (("moe-mixtral", 4096, 14336, 8, 2, "", (1, 8, 64, 512, 8192)),
              ("moe-deepseek", 7168, 2048, 256, 8, ";G=8;TG=4", (1, 16, 128, 1024, 4096)))
    for name, h, inter, e, k, extra, token_counts in shapes:
        for t in token_counts:
            shape = f"T={t};H={h};I={inter};E={e};k={k}{extra}"
            pairs = t * k
            used = touched(t, k, e)
            tiles = max(used, used * math.ceil(pairs / max(used, 1) / MOE_TILE))  # row tiles holding pairs
            per_tile = pairs / max(tiles, 1)  # real rows of a row tile
            bn = tile_width(pairs)
            if bn == 64:  # the decode tile: every warp on rows 0-63 (slices 0-3)
                live = (min(1.0, math.ceil(per_tile / 16) / 4), 1.0)
            else:
                live = (min(1.0, math.ceil(per_tile / 16) / 8), min(1.0, math.ceil(per_tile / 64) / 2))
            common = dict(bench=name, shape=shape, dtype=BF16, flop_kind="tensor")
            out += moe_align(common, pairs, e, used, tiles)
            grid_row_tiles = cdiv(pairs + min(e, pairs) * (MOE_TILE - 1), MOE_TILE)  # the launcher's, from the capacity
            for part, epilogue, cols, k_dim, rows in (("gate-up", 1, inter, h, 2 * inter), ("down", 2, h, inter, h)):
                col_tiles = cdiv(cols, bn // 2 if epilogue == 1 else bn)
                splits = tile_split_count(grid_row_tiles * col_tiles, k_dim) if bn == 64 else 1
                out.append(dict(common, **gemm_tile(f"Li{epilogue}ELb1E{TILE_B16[True]}", bn, tiles * col_tiles, k_dim, live, splits,
                                                    math.ceil(per_tile / 16)),
                                part=part,
                                bytes=used * rows * k_dim * 2 + pairs * k_dim * 2 + pairs * cols * 2,
                                # re-read through L2: the real A rows by every column tile after the
                                # first (padding rows are zero-filled, not read), the weights by
                                # every row tile of an expert after its first
                                l2_bytes=(col_tiles - 1) * pairs * k_dim * 2 + (tiles - used) * rows * k_dim * 2,
                                flops=2 * pairs * rows * k_dim, exps=pairs * inter if epilogue == 1 else 0))
            out.append(moe_combine(common, t, h, k, pairs))
    return out


TILE_BM, TILE_BK, TILE_STAGES = 128, 64, 3  # cuda/gemm_tile.cuh
TILE_DECODE_ROWS, WIDE_TILE_ROWS = 64, 1024  # cuda/gemm_tile.cuh, native/gemm_tile_launch.h
TILE_SPLIT_FLOATS = 4 * 8 * 4 * 32  # cuda/gemm_tile.cuh: one split's partial of a decode tile
SPLIT_BLOCKS_PER_SM, SPLIT_MIN_BLOCKS, SPLIT_MIN_K_TILES, SPLIT_MAX = 3, 16, 2, 16  # native/gemm_tile_launch.h


def tile_width(rows):
    """The launcher's BN: 256 from WIDE_TILE_ROWS real rows (m, or pairs) on, the decode tile 64
    up to TILE_DECODE_ROWS, else 128."""
    return 256 if rows >= WIDE_TILE_ROWS else 64 if rows <= TILE_DECODE_ROWS else 128


# The B sources of gemm_tile_kernel, mangled: 16-bit B K-major (True) or MN-major (False), and the
# quantized source per format with its 16-byte chunks a weight row per stage (cuda/quant_tile.cuh).
TILE_B16 = {True: "NS_7TileB16ILb1EEE", False: "NS_7TileB16ILb0EEE"}
TILE_BQUANT = {"q8_0": ("NS_10TileBQuantILNS_7QFormatE0EEE", 4), "q4_0": ("NS_10TileBQuantILNS_7QFormatE1EEE", 2),
               "q4_k": ("NS_10TileBQuantILNS_7QFormatE2EEE", 3)}


def tile_split_count(tiles, k):
    """native/gemm_tile_launch.h plan_split for a decode-tile launch of `tiles` tiles (grid tiles: every
    row tile of the capacity) with the full workspace (isthmus_gemm_workspace_bytes): splits to
    give SPLIT_BLOCKS_PER_SM blocks an SM, at least SPLIT_MIN_K_TILES stages each, at most
    SPLIT_MAX, then evened out so that no split is empty."""
    k_tiles = cdiv(k, TILE_BK)
    splits = min(max(SPLIT_BLOCKS_PER_SM * SMS, SPLIT_MIN_BLOCKS) // tiles, k_tiles // SPLIT_MIN_K_TILES, SPLIT_MAX)
    if splits < 2:
        return 1
    return cdiv(k_tiles, cdiv(k_tiles, splits))


def gemm_tile(variant, bn, blocks, k, live=(1.0, 1.0), splits=1, live_slices=8, source="moe_gemm", b_row_chunks=None):
    """gemm_tile_kernel<bf16, bf16, EPILOGUE, A_K_MAJOR, BSRC, bn> (`variant`: the mangled
    template tail before BN; `b_row_chunks`: the quantized B source's 16-byte chunks a weight row
    per stage, whose ring is followed by one dequantized bn x 64 tile, or None for 16-bit B):
    blocks of 2 x bn / 64 warps, each a 64 x 64 piece of the 128 x bn
    tile, or for the decode tile (bn 64) 4 warps on rows 0-63, each one 16-deep quarter of every
    stage; the hot loop is the K loop (one pass per 64 of K: 4 k-steps, or 1 on the decode tile,
    of up to 4 x 8 mma.sync), whose 16-row slices without a real row skip their ldmatrix and
    mma, and whose warps without one skip their B fragments too (`live`: the fractions of slices
    and of warps that run); on the decode tile, whose stages hold A's rows 0-63 only, the A rows of
    such slices are not copied either (`live_slices` hold a real row; a thread's A chunk q lies in
    slice q). The cp.async ring keeps TILE_STAGES - 1 passes' copies in flight.

    Split-K (decode tile, `splits` > 1): splits blocks a tile, each ceil(passes / splits) passes
    (the busiest); each stores warp 0's partial sums of its live slices (1024 floats a slice),
    which the tile's last block reads back, all splits in order: those bytes are overhead_bytes.
    The reduction loop (splits passes, in one block of the tile's splits) counts as one pass a
    block, the loops outside the hot one all being counted once (other=1)."""
    passes = cdiv(cdiv(k, TILE_BK), splits)
    threads = 4 * 32 if bn == 64 else 2 * (bn // 64) * 32
    a_rows = TILE_DECODE_ROWS if bn == 64 else TILE_BM  # the decode tile's stage holds rows 0-63 of A
    b_stage = bn * TILE_BK * 2 if b_row_chunks is None else bn * b_row_chunks * 16
    shared = TILE_STAGES * (a_rows * TILE_BK * 2 + b_stage) + (0 if b_row_chunks is None else bn * TILE_BK * 2)
    if bn == 64:  # the K quarters meet in the same memory: 3 warps' accumulators, where that is more
        shared = max(shared, 3 * TILE_SPLIT_FLOATS * 4)
    copied = min(live_slices, 4) / 4 if bn == 64 else 1  # of a thread's A chunks (one a slice), those copied
    paths = [] if min(live) >= 1 else [
        dict(name="empty slices", weight=live[0], function=r"mma_m16n8k16",
             why="16-row slices without a real row skip their ldmatrix and MMAs"),
        dict(name="empty warps", weight=live[1], function=r"tile_fragment_b",
             why="warps whose 64 rows are all padding read no B fragments")]
    # the chunk bodies of A's copy, the one tile_copy instantiation with SKIP (its last template flag)
    if copied < 1:
        paths.append(dict(name="A rows not copied", weight=copied, function=r"tile_copyILb1ELi64ELi128ELb1E",
                          source=r"const T \*row = rows\[r\];",
                          why=f"{min(live_slices, 4)} of the decode tile's 4 slices hold a real row"))
    return dict(source=source, symbol=r"gemm_tile_kernelI13__nv_bfloat16S1_" + variant + f"Li{bn}E",
                threads=threads, blocks=blocks * splits, dynamic_shared=shared,
                hot={"contains": r"^(mma|HMMA)", "pick": "outermost"}, hot_units=passes, other=1,
                unit="64-deep K pass per warp", units_per_warp=passes,
                inflight_passes=TILE_STAGES - 1,
                overhead_bytes=0 if splits == 1 else 2 * blocks * splits * min(live_slices, 4) * TILE_SPLIT_FLOATS // 4 * 4,
                paths=paths)


def gemm_own():
    out = []
    for n in (1024, 4096, 8192):
        for transpose_b in (False, True):
            bn = tile_width(n)
            blocks = (n // TILE_BM) * (n // bn)
            out.append(dict(gemm_tile(f"Li0ELb1E{TILE_B16[transpose_b]}", bn, blocks, n),
                            bench="gemm-own", part="", shape=f"{n}x{n}x{n}" + (";Bt" if transpose_b else ""), dtype=BF16,
                            # every block reads its A and B tiles through L2; the first reads are the HBM bytes
                            bytes=3 * n * n * 2, l2_bytes=blocks * (TILE_BM + bn) * n * 2 - 2 * n * n * 2,
                            flops=2 * n ** 3, flop_kind="tensor", exps=0))
    # decode-sized projections (MoeBench DECODE_GEMMS): B transposed, the decode tile split over K
    for m, n, k in ((1, 4096, 4096), (16, 4096, 4096), (64, 4096, 4096), (1, 14336, 4096), (1, 4096, 14336)):
        tiles = cdiv(n, 64)
        slices = cdiv(m, 16)
        out.append(dict(gemm_tile(f"Li0ELb1E{TILE_B16[True]}", 64, tiles, k, (slices / 4, 1.0), tile_split_count(tiles, k), slices),
                        bench="gemm-own", part="", shape=f"{m}x{n}x{k};Bt", dtype=BF16,
                        # A re-read through L2 by every column tile after the first
                        bytes=(m * k + k * n + m * n) * 2, l2_bytes=(tiles - 1) * m * k * 2,
                        flops=2 * m * n * k, flop_kind="tensor", exps=0))
    return out


QGEMV_MAX_ROWS = 16  # cuda/quant_gemv.cuh
QMMA_WARPS, QMMA_ROWS, QMMA_WIDE_WARPS = 8, 16, 16  # cuda/quant_gemv_mma.cuh
# (QFormat, values a unit, bytes a unit, units a run (kUnroll))
QGEMV_FORMATS = {"q8_0": (0, 32, 34, 4), "q4_0": (1, 32, 18, 8), "q4_k": (2, 256, 144, 1)}
QUANT_SHAPES = ((4096, 4096), (14336, 4096), (32000, 4096))  # QuantBench: a projection, an FFN matrix, a vocabulary


def quant_gemv():
    """native/quant.cu: bf16 x up to QGEMV_MAX_ROWS rows takes quant_gemv_mma_kernel<F, bf16, NT>
    (quant_gemv_mma), more the tensor-core tiles (quant_gemm_tile)."""
    out = []
    for name, (fmt, values, unit_bytes, unroll) in QGEMV_FORMATS.items():
        for n, k in QUANT_SHAPES:
            for m in (1, 8, 16, 4096):
                if m > QGEMV_MAX_ROWS:
                    out.append(quant_gemm_tile(name, values, unit_bytes, m, n, k))
                else:
                    out.append(quant_gemv_mma(name, fmt, values, unit_bytes, unroll, m, n, k))
    return out


QMMA_WIDE_ROWS, QMMA_BLOCKS_PER_SM, QMMA_PLAN_MIN_SMS = QMMA_WIDE_WARPS * QMMA_ROWS, 1, 8  # native/quant.cu


def gemm_workspace_bytes():
    """isthmus_gemm_workspace_bytes on a device of SMS SMs: the counters of half the target
    blocks, then a decode tile's partial for every target block."""
    target = max(SPLIT_BLOCKS_PER_SM * SMS, SPLIT_MIN_BLOCKS)
    return split_counter_bytes(target // 2) + target * TILE_SPLIT_FLOATS * 4


def split_counter_bytes(pieces):
    return cdiv(pieces * 4, 256) * 256


def qgemv_block_of(at, blocks, work):
    """cuda/quant_gemv_mma.cuh qgemv_block_of: the block whose runs hold run `at`."""
    return ((at + 1) * blocks - 1) // work


QMMA_L2_SPEEDUP = 1.4  # native/quant.cu


def plan_gemv(unit_bytes, values, unroll, m, n, k):
    """native/quant.cu plan_gemv with the full workspace: None for the narrow kernel, else the wide
    launch's (blocks, tiles, runs, max_parts), by the time the busiest SM takes for its bytes (the
    unsplit wide launch only where the tiles give every SM QMMA_BLOCKS_PER_SM blocks)."""
    sms = max(SMS, QMMA_PLAN_MIN_SMS)
    units = k // values
    runs = cdiv(units, unroll)
    tiles, groups = cdiv(n, QMMA_WIDE_ROWS), cdiv(n, QMMA_ROWS)
    work, nt = tiles * runs, 1 if m <= 8 else 2
    run_weights, run_x = QMMA_WIDE_ROWS * unroll * unit_bytes, m * unroll * values * 2
    part_bytes = 2 * QMMA_WIDE_ROWS * nt * 8 * 4

    def busiest(blocks, memory_bytes, x_bytes):
        return cdiv(blocks, sms) * max(memory_bytes, (memory_bytes + x_bytes) / QMMA_L2_SPEEDUP)

    plan, best = None, busiest(groups, QMMA_ROWS * units * unit_bytes, m * k * 2)
    if tiles >= QMMA_BLOCKS_PER_SM * sms and busiest(tiles, runs * run_weights, runs * run_x) < best:
        plan, best = (tiles, tiles, runs, 1), busiest(tiles, runs * run_weights, runs * run_x)
    counters = split_counter_bytes(groups)
    for j in range(1, 5):
        blocks = j * QMMA_BLOCKS_PER_SM * sms
        if blocks <= tiles or blocks > work:
            continue
        max_parts = cdiv(runs, work // blocks) + 1
        if counters + groups * max_parts * nt * 4 * 32 * 4 > gemm_workspace_bytes():
            continue
        share = cdiv(work, blocks)
        cost = busiest(blocks, share * run_weights + part_bytes * (tiles + blocks) / blocks, share * run_x)
        if cost < best:
            plan, best = (blocks, tiles, runs, max_parts), cost
    return plan


def quant_gemv_mma(name, fmt, values, unit_bytes, unroll, m, n, k):
    """The tensor-core GEMV that plan_gemv picks. NT = 1 N tile up to 8 rows, 2 up to 16.

    quant_gemv_mma_kernel<F, bf16, NT> (narrow): a block of QMMA_WARPS warps per 16 weight rows,
    each warp dealt runs of `unroll` units (the hot loop: one run a pass, everything in it
    unrolled), then the tail units one by one (none at these shapes: k / values is a multiple of
    unroll; the compiler peels that loop, so a path rule, not a trip count, sets it to zero); the
    final sum over the warps is one pass for the first NT * 128 threads. Through L2 beyond the
    bench's bytes: x, which every block reads whole, counted as one read of x a block from L2 (the
    weights go past L1, ld.global.cs; in practice L1 keeps part of x for the SM's next block).

    quant_gemv_mma_wide_kernel<F, bf16, NT> (wide): `blocks` blocks of QMMA_WIDE_WARPS warps, each
    warp a 16-row group of every 256-row tile its block's share of the tiles' runs touches (the outer
    loop: the tile pieces, sum(parts) / blocks a block on average), the hot loop its runs in a piece
    (the loop with most mma of its own: "fullest"); the loop after it over a short last run's
    units (when unroll does not divide them) never runs at these shapes. The meeting of a spread tile's
    parts (its sum loop over the parts, 4 at a time) is counted once a piece (other = 1: every
    piece as if it were the last of 4 parts, conservative). x crosses L2 once a tile; the parts of
    a spread tile write their partials and its last part reads them back (overhead)."""
    nt = 1 if m <= 8 else 2
    plan = plan_gemv(unit_bytes, values, unroll, m, n, k)
    common = dict(bench=f"quant-gemv-{name}", part="", shape=f"m{m}-{n}x{k}", dtype=BF16, source="quant",
                  threads=QMMA_WARPS * 32, hot={"contains": r"^(mma|HMMA)", "pick": "most"},
                  bytes=n * k // values * unit_bytes + m * (k + n) * 2, flops=2 * m * n * k, flop_kind="tensor", exps=0)
    if plan is None:
        blocks = cdiv(n, QMMA_ROWS)
        runs = k // values // unroll
        return dict(common, symbol=rf"quant_gemv_mma_kernelILNS_7QFormatE{fmt}E13__nv_bfloat16Li{nt}EE",
                    blocks=blocks, hot_units=runs / QMMA_WARPS,
                    other=[0, min(1.0, nt * 128 / (QMMA_WARPS * 32))],  # the tail units; the sum over the warps
                    paths=[dict(name="tail units", weight=0.0, source=r"qmma_units<F, T, NT, 1>",
                                why=f"k / {values} is a multiple of {unroll}: no unit is left after the runs")] if unroll > 1 else None,
                    unit=f"run of {unroll} x {values} values, 16 rows (m={m})", units_per_warp=runs / QMMA_WARPS,
                    l2_bytes=(blocks - 1) * m * k * 2)
    blocks, tiles, runs, max_parts = plan
    work = tiles * runs
    parts = [qgemv_block_of((t + 1) * runs - 1, blocks, work) - qgemv_block_of(t * runs, blocks, work) + 1 for t in range(tiles)]
    spread = sum(p for p in parts if p > 1)
    pieces = sum(parts) / blocks
    return dict(common, symbol=rf"quant_gemv_mma_wide_kernelILNS_7QFormatE{fmt}E13__nv_bfloat16Li{nt}EE",
                threads=QMMA_WIDE_WARPS * 32, hot={"contains": r"^(mma|HMMA)", "pick": "fullest"},
                blocks=blocks, hot_units=work / blocks / pieces, outer=pieces, other=1,
                # the short run's loop, by the instructions inlined straight from qmma_units<..., 1>
                # (its preheader's come from the loop bounds, which every path passes)
                paths=[dict(name="short runs", weight=0.0, function=r"^_ZN7isthmus10qmma_unitsI.*Li1EEEv",
                            why=f"k / {values} is a multiple of {unroll}: every run is whole")] if unroll > 1 else None,
                unit=f"run of {unroll} x {values} values, 16 rows (m={m})", units_per_warp=work / blocks,
                l2_bytes=(tiles - 1) * m * k * 2,
                overhead_bytes=2 * spread * (QMMA_WIDE_ROWS // QMMA_ROWS) * nt * 4 * 32 * 4)


def quant_gemm_tile(name, block, block_bytes, m, n, k):
    """gemm_tile_kernel<bf16, bf16, PLAIN, K-major A, TileBQuant<F>, bn>: the dense form, bn by the
    row count as for the bf16 GEMM (the decode tile up to 64 rows, split over K with the bench's
    workspace as tile_split_count plans it). Bytes as the bench counts them: the quantized weights
    once, x read, out written; through L2 the weights again for every row tile after the first and
    x for every column tile after the first."""
    bn = tile_width(m)
    row_tiles, col_tiles = cdiv(m, TILE_BM), cdiv(n, bn)
    live = (min(1.0, cdiv(m, 16) / 4), 1.0) if bn == 64 else (1.0, 1.0)
    weights = n * k // block * block_bytes
    variant, row_chunks = TILE_BQUANT[name]
    splits = tile_split_count(row_tiles * col_tiles, k) if bn == 64 else 1
    return dict(gemm_tile(f"Li0ELb1E{variant}", bn, row_tiles * col_tiles, k, live, splits, live_slices=cdiv(m, 16),
                          source="quant", b_row_chunks=row_chunks),
                bench=f"quant-gemv-{name}", part="", shape=f"m{m}-{n}x{k}", dtype=BF16,
                bytes=weights + m * (k + n) * 2, l2_bytes=(row_tiles - 1) * weights + (col_tiles - 1) * m * k * 2,
                flops=2 * m * n * k, flop_kind="tensor", exps=0)


def quant_dense():
    """The quant suite's bf16 ceiling (QuantBench's gemm-own-bf16 rows): the same products with W
    dense in bf16 through the project's own GEMM, the tile engine's 16-bit K-major B source, with
    the bench's split-K workspace (the decode tile split as tile_split_count plans it)."""
    out = []
    for n, k in QUANT_SHAPES:
        for m in (1, 8, 16, 4096):
            bn = tile_width(m)
            row_tiles, col_tiles = cdiv(m, TILE_BM), cdiv(n, bn)
            live = (min(1.0, cdiv(m, 16) / 4), 1.0) if bn == 64 else (1.0, 1.0)
            splits = tile_split_count(row_tiles * col_tiles, k) if bn == 64 else 1
            out.append(dict(gemm_tile(f"Li0ELb1E{TILE_B16[True]}", bn, row_tiles * col_tiles, k, live, splits, live_slices=cdiv(m, 16)),
                            bench="gemm-own-bf16", part="", shape=f"m{m}-{n}x{k}", dtype=BF16,
                            bytes=n * k * 2 + m * (k + n) * 2, l2_bytes=(row_tiles - 1) * n * k * 2 + (col_tiles - 1) * m * k * 2,
                            flops=2 * m * n * k, flop_kind="tensor", exps=0))
    return out


SSD_THREADS, SSD_CHUNK, SSD_PAD, SSD_FPAD = 256, 64, 8, 4  # cuda/ssd.cuh


def ssd_layout_bytes(chunk, p_tile, n_pad, elem):
    """cuda/ssd.cuh SsdLayout.bytes: C, B, x, x~^T, M, the state operand (elem each), G, Y and
    the state (fp32), cum and dt' (fp32), each rounded up to 16 bytes."""
    ldn, ldp, ldq = n_pad + SSD_PAD, p_tile + SSD_PAD, chunk + SSD_PAD
    parts = [chunk * ldn * elem, chunk * ldn * elem, chunk * ldp * elem, p_tile * ldq * elem, chunk * ldq * elem,
             p_tile * ldn * elem, chunk * (chunk + SSD_FPAD) * 4, chunk * (p_tile + SSD_FPAD) * 4,
             p_tile * (n_pad + SSD_FPAD) * 4, chunk * 4, chunk * 4]
    return sum(cdiv(x, 16) * 16 for x in parts)


def ssd_inner_trips(dtype, q, pt, np_):
    """Trips per chunk of the loops inside ssd_scan_kernel's chunk loop, in PTX order (ssd_scan)."""
    per_warp = SSD_THREADS // 32
    strided = lambda items: cdiv(items, SSD_THREADS)  # a thread-strided element loop
    def product(m, n, k):  # block_gemm: (tile loop, k loop unrolled by 4)
        if dtype == BF16:
            return [cdiv((m // 16) * (n // 8), per_warp), k // 16 // 4]
        return [strided(m * n), k // 4]
    return ([strided(q * np_), strided(q * pt)] + product(q, q, np_) + product(q, pt, np_)
            + [strided(q * pt), strided(q * q), strided(pt * np_)] + product(q, pt, q) + product(pt, np_, q)
            + [strided(q * pt), strided(pt * np_)])


def ssd_scan():
    """mamba2-2.7b's SSD at the bench shape: ssd_scan_kernel<T>, one block of SSD_THREADS per
    (batch row, head, 64-channel tile) = 8 x 80 x 1, each walking L / 64 chunks. The hot loop is
    the chunk loop (the outermost loop holding the products: mma.sync for bf16, FMAs for f32),
    one chunk a pass. The loops inside it, in the order of the PTX: the C/B and the x tile loads
    (Q NP / 256 and Q PT / 256 passes), then for each of the four products its tile loop with its
    k loop inside (the compiler unrolls the k loop by 4, with the remainder unrolled beside it;
    the remainder, which never runs at these multiples of 64, is counted once a tile), with the
    three element-wise decay passes between the second and the third product, and the y and
    state-operand writes last. The state's load and store loops around it run PT NP / 256 = 32
    passes. Trips of a strided loop are per warp (all 8 warps take equal shares here)."""
    out = []
    b, length, h, p, n, g = 8, 4096, 80, 64, 128, 1
    chunks = length // SSD_CHUNK
    for dtype in (BF16, F32):
        e = SIZE[dtype]
        tokens = b * length
        out.append(dict(
            bench="ssd-scan", part="", shape=f"B{b}xL{length}xH{h}xP{p}xN{n}xG{g}", dtype=dtype,
            source="ssd", symbol=rf"15ssd_scan_kernelI{MANGLED[dtype]}EEv",
            threads=SSD_THREADS, blocks=b * h, dynamic_shared=ssd_layout_bytes(SSD_CHUNK, p, n, e),
            hot={"contains": r"^(mma|HMMA)" if dtype == BF16 else r"^(fma|FFMA)", "pick": "outermost"},
            hot_units=chunks, other=32, inner=ssd_inner_trips(dtype, SSD_CHUNK, p, n),
            unit="chunk of 64 steps of one (row, head)", units_per_warp=chunks,
            # the bench's counts (SsdBench)
            bytes=tokens * h * (2 * p + 1) * e + 2 * tokens * g * n * e + 4 * b * h * p * n + 4 * 3 * h,
            flops=tokens * h * (2 * SSD_CHUNK * (n + p) + 4 * p * n), flop_kind="tensor" if dtype == BF16 else "fp32",
            exps=tokens * h * (SSD_CHUNK // 2 + 2)))
    return out


def ssd_state_update():
    """One decode step at mamba2-2.7b's shape, batch 8, no slots: ssd_state_update_kernel<T>, a
    block of 4 warps per (row, head) (grid heads x rows); warp w takes the channels w, w + 4, ..
    (P / 4 = 16 passes of the channel loop), its lanes the states (N / 32 = 4 passes of the
    innermost loop, the hot one: the state's FMAs). The row loop runs once (B <= 65535); the
    padding, bad-slot and earlier-row scans do not run (no slots): their loops count 0."""
    out = []
    b, h, p, n, g = 8, 80, 64, 128, 1
    for dtype in (BF16, F32):
        e = SIZE[dtype]
        out.append(dict(
            bench="ssd-state-update", part="", shape=f"B{b}xH{h}xP{p}xN{n}xG{g}", dtype=dtype,
            source="ssd", symbol=rf"23ssd_state_update_kernelI{MANGLED[dtype]}EEv",
            threads=128, blocks=h * b,
            hot={"contains": r"^(fma|FFMA)", "pick": "innermost"}, hot_units=n // 32, outer=[1, p // 4], other=0,
            unit="32 states of one channel (one a lane)", units_per_warp=(p // 4) * (n // 32),
            bytes=2 * 4 * b * h * p * n + b * h * (2 * p + 1) * e + 2 * b * g * n * e + 4 * 3 * h,
            flops=4 * b * h * p * n, flop_kind="fp32", exps=b * h))
    return out


def all_launches():
    return (rmsnorm() + selective_scan() + state_update() + conv1d() + ssd_scan() + ssd_state_update() + attention_decode()
            + attention_decode("int8") + attention_decode("fp8") + attention_prefill() + moe() + gemm_own() + quant_gemv()
            + quant_dense())
