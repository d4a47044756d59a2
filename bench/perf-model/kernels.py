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
                       every query tile, the row re-read by RMSNorm's second pass)
  flops, flop_kind     useful FLOPs and whether they belong on tensor cores or FP32 units
  exps                 special-function evaluations the algorithm needs (the MUFU floor)
  l2_latency           True when its loads hit data just written by the previous kernel
"""
import math

BF16, F32 = "bf16", "f32"
SIZE = {BF16: 2, F32: 4}
MANGLED = {BF16: "13__nv_bfloat16", F32: "f"}
SMS = 132  # the split planning reads the SM count from the device; both machines have 132


def cdiv(a, b):
    return -(-a // b)


def rmsnorm():
    out = []
    for dtype in (BF16, F32):
        n = 16 // SIZE[dtype]
        for rows, cols in ((1, 4096), (64, 4096), (4096, 4096), (16384, 8192)):
            for residual in (False, True):
                vecs = cols // n
                threads = min(1024, max(32, cdiv(vecs, 32) * 32))
                trips = cdiv(vecs, threads)
                out.append(dict(
                    bench="rmsnorm+residual" if residual else "rmsnorm", part="", shape=f"{rows}x{cols}", dtype=dtype,
                    source="rmsnorm", symbol=rf"rmsnorm_kernelI{MANGLED[dtype]}Li{n}ELb{int(residual)}E",
                    threads=threads, blocks=rows, hot=None, other=trips, unit="row per warp",
                    units_per_warp=1.0,
                    bytes=rows * cols * SIZE[dtype] * (4 if residual else 2) + cols * SIZE[dtype],
                    # pass 2 re-reads h (and w) through L2/L1 instead of keeping it in registers
                    l2_bytes=rows * cols * SIZE[dtype] * 2, flops=4 * rows * cols, flop_kind="fp32", exps=rows))
    return out


def selective_scan():
    out = []
    b, d, length, n = 8, 2048, 4096, 16
    threads = 128  # (L + 255) // 256 * 32 capped at SCAN_MAX_THREADS
    for dtype in (BF16, F32):
        chunks = cdiv(length, threads * 8)  # SCAN_ITEMS = 8 steps per thread
        out.append(dict(
            bench="selective-scan", part="", shape=f"B{b}xD{d}xL{length}xN{n}", dtype=dtype,
            source="scan", symbol=rf"selective_scan_kernelI{MANGLED[dtype]}Lb1ELi16E",
            threads=threads, blocks=b * d,
            # the state loop: the innermost loop with the exponentials, one state = 8 ex2 per thread
            hot={"contains": r"^(ex2|MUFU\.EX2)", "pick": "innermost"}, hot_units=n,
            marker=(r"^(ex2|MUFU\.EX2)", 8),
            inner=1.5,  # the carry walk over earlier warps: 0..3 warps, 1.5 on average
            outer=chunks, other=1, unit="state per warp (256 steps)",
            units_per_warp=n * chunks,
            bytes=4 * b * d * length * SIZE[dtype] + 2 * b * n * length * SIZE[dtype] + 4 * b * d * n + 4 * d * (n + 2),
            flops=0, flop_kind="fp32", exps=b * d * length * n))
    return out


def state_update():
    out = []
    b, d, n = 64, 4096, 16
    for dtype in (BF16, F32):
        lanes = 4  # 4 lanes x 4 states per (row, channel)
        out.append(dict(
            bench="selective-state-update", part="", shape=f"B{b}xD{d}xN{n}", dtype=dtype,
            source="scan_step", symbol=rf"selective_state_update_kernelI{MANGLED[dtype]}Li4E",
            threads=128, blocks=cdiv(b * d * lanes, 128),
            hot={"contains": r"^(ex2|MUFU\.EX2)", "pick": "innermost"}, hot_units=1, other=1,
            unit="8 (row, channel) pairs per warp", units_per_warp=1.0,
            bytes=2 * 4 * b * d * n + 4 * b * d * SIZE[dtype] + 2 * b * n * SIZE[dtype] + 4 * d * (n + 2),
            flops=0, flop_kind="fp32", exps=b * d * n))
    return out


def conv1d():
    b, d, length, w = 8, 2048, 4096, 4
    elements = b * d * length
    return [dict(
        bench="causal-conv1d", part="", shape=f"B{b}xD{d}xL{length}xW{w}", dtype=BF16,
        source="conv1d", symbol=r"causal_conv1d_kernelI13__nv_bfloat16E",
        threads=256, blocks=cdiv(elements, 256),
        # the tap loop (runtime width): whatever the compiler kept of it turns W times in all
        hot={"contains": r"^(fma|FFMA)", "pick": "most"}, hot_units=w, marker=(r"^(fma|FFMA)", 1),
        other=1, unit="32 outputs per warp", units_per_warp=1.0,
        bytes=2 * elements * 2 + d * (w + 1) * 2, flops=2 * w * elements, flop_kind="fp32", exps=elements)]


def decode_splits(batch, context, kv_heads=8, q_heads=32):
    """Attention.splitCount and AttentionWorkspace.allocate: the split count and chunk the bench uses."""
    blocks = batch * kv_heads * max(1, cdiv(q_heads // kv_heads, 4))
    target = 4 * SMS
    splits = 1 if blocks >= target or context <= 256 else max(1, min(cdiv(target, blocks), cdiv(context, 256), 128))
    chunk = cdiv(cdiv(context, splits), 32) * 32
    return cdiv(context, chunk), chunk


def attention_decode():
    out = []
    hq, hkv, dim = 32, 8, 128
    for batch in (1, 8):
        for context in (1024, 4096, 16384, 32768, 65536, 131072):
            splits, chunk = decode_splits(batch, context)
            shape = f"b{batch}-ctx{context}"
            kv_bytes = 2 * batch * context * hkv * dim * 2
            rows = batch * hq
            out.append(dict(
                bench="attention-decode", part="attend", shape=shape, dtype=BF16,
                source="attention", symbol=r"attention_kernelI13__nv_bfloat16Li128E",
                threads=128, blocks=batch * hkv * splits,
                # the KV tile loop: the only loop with block barriers
                hot={"contains": r"^(bar|BAR)", "pick": "outermost"}, hot_units=cdiv(chunk, 32),
                inner=8,  # dot_row (64 pairs, unroll 8) and the P.V loop (32 keys, unroll 4)
                other=1, unit="32-key tile per warp", units_per_warp=cdiv(chunk, 32),
                bytes=kv_bytes + 2 * rows * dim * 2 + (splits > 1) * splits * rows * (dim + 1) * 4,
                flops=4 * batch * hq * context * dim, flop_kind="fp32", exps=batch * hq * context))
            if splits > 1:
                out.append(dict(
                    bench="attention-decode", part="merge", shape=shape, dtype=BF16,
                    source="attention", symbol=r"attention_merge_kernelI13__nv_bfloat16fE",
                    threads=128, blocks=cdiv(rows, 4),
                    # the last loop over the parts, inside the loop over head_dim
                    hot={"contains": r"^(ex2|MUFU\.EX2)", "pick": "last"}, hot_units=splits, outer=dim // 32,
                    other=splits, unit="part per row-slice of 32 dims", units_per_warp=splits * dim // 32,
                    bytes=splits * rows * (dim + 1) * 4 + rows * dim * 2, flops=0, flop_kind="fp32",
                    exps=rows * splits, l2_latency=True))
    return out


def attention_prefill():
    tokens, hq, hkv, dim = 8192, 32, 8, 128
    row_tiles = tokens // 64
    tiles = (row_tiles + 1) / 2 * 1.0  # causal: row tile i sees i + 1 key tiles of 64
    pairs = tokens * (tokens + 1) / 2
    return [dict(
        bench="attention-prefill", part="", shape=f"b1-tokens{tokens}", dtype=BF16,
        source="attention", symbol=r"attention_prefill_kernelI13__nv_bfloat16Li128E",
        threads=128, blocks=row_tiles * hq,
        hot={"contains": r"^(wmma\.mma|mma|HMMA)", "pick": "outermost"}, hot_units=tiles,
        # staging (64 keys x 16 chunks / 128 threads), then the per-row loops over 32 columns and 64 dims
        inner=8, other=1, unit="64-key tile per warp (16 rows)", units_per_warp=tiles,
        bytes=(2 * tokens * hq + 2 * tokens * hkv) * dim * 2,
        l2_bytes=row_tiles * hq * tiles * 64 * dim * 2 * 2,  # K and V tiles re-read by every row tile
        flops=4 * hq * dim * pairs, flop_kind="tensor", exps=hq * pairs)]


def touched(tokens, k, experts):
    """Expected number of experts receiving at least one of tokens*k uniformly routed pairs."""
    return experts * (1 - (1 - 1 / experts) ** (tokens * k)) if tokens * k < 4 * experts else experts


def moe():
    out = []
    shapes = (("moe-mixtral", 4096, 14336, 8, 2, "", (1, 8, 64, 512, 8192)),
              ("moe-deepseek", 7168, 2048, 256, 8, ";G=8;TG=4", (1, 16, 128, 1024, 4096)))
    for name, h, inter, e, k, extra, token_counts in shapes:
        for t in token_counts:
            shape = f"T={t};H={h};I={inter};E={e};k={k}{extra}"
            pairs = t * k
            used = touched(t, k, e)
            tiles = max(used, used * math.ceil(pairs / max(used, 1) / 32))  # 32-row tiles holding pairs
            common = dict(bench=name, shape=shape, dtype=BF16, flop_kind="tensor")
            out.append(dict(common, part="align", source="moe", symbol=r"moe_align_kernel", threads=1024, blocks=1,
                            # the single-warp scatter: one pass per 32 pairs
                            hot={"contains": r"^(match|MATCH)", "pick": "outermost"}, hot_units=cdiv(pairs, 32),
                            other=max(1, cdiv(pairs, 1024)), unit="32 pairs (warp 0)", units_per_warp=cdiv(pairs, 32),
                            bytes=pairs * 4 * 3, flops=0, flop_kind="fp32", exps=0, l2_latency=True,
                            serial_warps=1))
            out.append(dict(common, part="gate-up", source="moe_gemm",
                            symbol=r"grouped_gemm_kernelI13__nv_bfloat16S1_Li1ELi8E", threads=128,
                            blocks=tiles * cdiv(inter, 32),
                            hot={"contains": r"^(wmma\.mma|mma|HMMA)", "pick": "outermost"}, hot_units=cdiv(h, 128),
                            other=1, unit="32x64x128 block step per warp", units_per_warp=cdiv(h, 128),
                            bytes=used * 2 * inter * h * 2 + pairs * h * 2 + pairs * inter * 2,
                            l2_bytes=(tiles - used) * 2 * inter * h * 2, flops=2 * pairs * 2 * inter * h, exps=pairs * inter))
            out.append(dict(common, part="down", source="moe_gemm",
                            symbol=r"grouped_gemm_kernelI13__nv_bfloat16S1_Li2ELi8E", threads=128,
                            blocks=tiles * cdiv(h, 64),
                            hot={"contains": r"^(wmma\.mma|mma|HMMA)", "pick": "outermost"}, hot_units=cdiv(inter, 128),
                            other=1, unit="32x64x128 block step per warp", units_per_warp=cdiv(inter, 128),
                            bytes=used * inter * h * 2 + pairs * inter * 2 + pairs * h * 2,
                            l2_bytes=(tiles - used) * inter * h * 2, flops=2 * pairs * h * inter, exps=0))
            n = t * h
            blocks = min(cdiv(n, 256), 65535 * 16)
            out.append(dict(common, part="combine", source="moe", symbol=r"moe_combine_kernelI13__nv_bfloat16E",
                            threads=256, blocks=blocks,
                            hot={"contains": r"^(st\.global|STG)", "pick": "outermost"}, hot_units=cdiv(n, blocks * 256),
                            inner=k, other=1, unit="32 outputs per warp", units_per_warp=cdiv(n, blocks * 256),
                            bytes=pairs * h * 2 + 2 * n * 2 + pairs * 4, flops=0, flop_kind="fp32", exps=0))
    return out


def gemm_own():
    out = []
    for n in (1024, 4096, 8192):
        out.append(dict(
            bench="gemm-own", part="", shape=f"{n}x{n}x{n}", dtype=BF16, source="moe_gemm",
            symbol=r"grouped_gemm_kernelI13__nv_bfloat16S1_Li0ELi8E", threads=128, blocks=(n // 32) * (n // 64),
            hot={"contains": r"^(wmma\.mma|mma|HMMA)", "pick": "outermost"}, hot_units=n // 128, other=1,
            unit="32x64x128 block step per warp", units_per_warp=n // 128,
            bytes=3 * n * n * 2, l2_bytes=(n // 32) * (n // 64) * (32 + 64) * n * 2, flops=2 * n ** 3,
            flop_kind="tensor", exps=0))
    return out


def all_launches():
    return rmsnorm() + selective_scan() + state_update() + conv1d() + attention_decode() + attention_prefill() + moe() + gemm_own()
