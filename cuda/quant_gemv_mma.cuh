// Decode products on quantized weights on the tensor cores: out[m][n] = sum_k x[m][k] W[n][k] for
// 1 to 16 rows of f16/bf16 x, W in a GGML block format (the device layouts of quant_gemv.cuh).
// The CUDA-core GEMV (quant_gemv.cuh) spends one FMA a weight a row; at 4 bits a weight that
// is more instructions than the SM can issue while the bytes stream. Here a warp multiplies 16
// weight rows (the mma's M) by the rows of x (its N: 8 a tile, one or two tiles) with
// mma.m16n8k16: each weight is converted once, whatever the row count, and the products go to the
// tensor cores.
//
// Fragments (cuda/mma.cuh: lane (g, t), g = lane / 4, t = lane % 4). The order of the 16 values of
// one k-step is free as long as A (weights) and B (x) agree: lane t takes four consecutive values
// 4t..4t+3 of a 16-value run, in its A registers a[0] (values 4t, 4t+1) and a[2] (4t+2, 4t+3) for
// weight row g, a[1] and a[3] for row g + 8, and in B b[0], b[1] the same columns of x, one 8-byte
// load. The four lanes of a quad then read the four words of the same 16 bytes of a weight row,
// and the 16 values of a k-step share one scale: each k-step's product is exact in the mma's fp32
// accumulator (the weights enter as the small integers they are, exact in f16 and bf16), and the
// scale multiplies the per-sub-block sum afterwards, in fp32, as the format defines the value.
//
//   Q8_0  a unit is a 32-value block: 2 k-steps, word t of each 16-byte half; one scale.
//   Q4_0  a unit is a 32-value block, its 16 bytes: step 0 the low nibbles (values 0-15), step 1
//         the high ones (16-31) of word t; one scale.
//   Q4_K  a unit is a 256-value block: 8 sub-blocks of 32; sub-block 2r (low nibbles) and 2r + 1
//         (high) share the 32 bytes of run r, 16 values (one k-step) each 16 bytes; a sub-block
//         adds d sc sum(q x) - dmin mn sum(x). With two N tiles mn sum(x) comes from an mma whose
//         A is each row's mn. With one, sum(x) comes from an mma with an all-ones A and the A
//         registers keep the magic (below): the mma sums (M + q) x, and the sub-block's M sum(x)
//         comes off with the min's term, d sc (sum((M + q) x) - M sum(x)) - dmin mn sum(x), so
//         the weights' subtraction is one FMA a row a sub-block, not one a value pair.
//
// Integers become 16-bit floats by placing them under a magic exponent: the f16 0x6400 | i is
// 1024 + i (i < 1024), the bf16 0x4300 | i is 128 + i (i < 128); one packed subtraction of the
// magic (plus the format's offset) leaves the integer, exactly (Q8_0, Q4_0; Q4_K subtracts M sum(x)).
//
// Two kernels share that warp's work. The weights are read once and streamed past L1
// (ld.global.cs); x is re-read by every block and left to L1 and L2, so what sets x's traffic
// through L2 is how many weight rows a block covers:
//   quant_gemv_mma_kernel       a block is QMMA_WARPS warps on the same 16 weight rows, each a
//                               share of K (units dealt out in runs of kUnroll, then the tail one
//                               by one), summed through shared memory at the end. Needs nothing
//                               but its arguments; x crosses L2 once every 16 output features.
//   quant_gemv_mma_wide_kernel  a warp a 16-row group, QMMA_WIDE_WARPS groups (256 rows) a block
//                               and one block an SM, all on the same K, so the SM's warps share x
//                               through L1; the blocks of the launch share out K's runs of every
//                               tile equally (stream-K, QGemvSplit below; with the caller's
//                               split-K workspace), so a tile may be spread over blocks, whose
//                               warps then meet their group's other parts (split_meet). x
//                               crosses L2 once every 256 output features, which is what 8 and 16
//                               rows need: at 16 rows of 16-bit x, x is 2 bytes a weight row a
//                               value against Q4_0's 0.56.
#pragma once

#include "mma.cuh"
#include "quant_gemv.cuh"

namespace isthmus {

constexpr int QMMA_WARPS = 8;  // warps a block, each a share of K
constexpr int QMMA_ROWS = 16;  // weight rows (output features) a block: the mma's M
// Warps (16-row groups) of a wide block: the whole register file of an SM at 128 registers a
// thread, the warps two 8-warp blocks would have, but on one tile, so x is read once for twice the rows.
constexpr int QMMA_WIDE_WARPS = 16;

// (x & mask) | bits in one instruction (LOP3 with the table of (a & b) | c).
__device__ __forceinline__ uint32_t and_or(uint32_t x, uint32_t mask, uint32_t bits) {
#ifdef ISTHMUS_EMULATION
    return (x & mask) | bits;
#else
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(x), "r"(mask), "r"(bits));
    return r;
#endif
}

// The 16-bit type's magic: its bits with integer i in the mantissa are the value kMagic's + i;
// sub2 subtracts two pairs of T in 32-bit registers (exact here: integers of at most 11 bits).
template <typename T> struct IntBits;
template <> struct IntBits<__half> {
    static constexpr uint32_t kMagic = 0x64006400u;  // 1024 in each half
    static constexpr float kMagicValue = 1024.0f;
    static constexpr uint32_t kOnes = 0x3C003C00u;
    __device__ __forceinline__ static uint32_t sub2(uint32_t a, uint32_t b) {
#ifdef ISTHMUS_EMULATION
        const __half2 r = __hsub2(__half2(__half2_raw{static_cast<unsigned short>(a), static_cast<unsigned short>(a >> 16)}),
                                  __half2(__half2_raw{static_cast<unsigned short>(b), static_cast<unsigned short>(b >> 16)}));
        const __half2_raw raw = r;
        return raw.x | static_cast<uint32_t>(raw.y) << 16;
#else
        uint32_t r;
        asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
        return r;
#endif
    }
};
template <> struct IntBits<__nv_bfloat16> {
    static constexpr uint32_t kMagic = 0x43004300u;  // 128 in each half
    static constexpr float kMagicValue = 128.0f;
    static constexpr uint32_t kOnes = 0x3F803F80u;
    __device__ __forceinline__ static uint32_t sub2(uint32_t a, uint32_t b) {
#ifdef ISTHMUS_EMULATION
        const __nv_bfloat162 r =
                __hsub2(__nv_bfloat162(__nv_bfloat162_raw{static_cast<unsigned short>(a), static_cast<unsigned short>(a >> 16)}),
                        __nv_bfloat162(__nv_bfloat162_raw{static_cast<unsigned short>(b), static_cast<unsigned short>(b >> 16)}));
        const __nv_bfloat162_raw raw = r;
        return raw.x | static_cast<uint32_t>(raw.y) << 16;
#else
        uint32_t r;  // a - b as b * -1 + a: sm_80 has the bf16x2 FMA but no subtraction
        asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(b), "r"(0xBF80BF80u), "r"(a));
        return r;
#endif
    }
};

// Bytes 0, 1 (pair 0) and 2, 3 (pair 1) of w, each pair's bytes in the low bytes of the two halves.
__device__ __forceinline__ uint32_t byte_pair(uint32_t w, int pair) { return __byte_perm(w, 0u, pair == 0 ? 0x4140u : 0x4342u); }

// The A registers of one k-step for one weight row from its word: value pairs (0, 1) and (2, 3).
// Four nibbles (low or high of each byte) under the magic: the values kMagic's + q.
template <typename T> __device__ __forceinline__ void biased_nibble_regs(uint32_t (&a)[2], uint32_t word, bool high) {
#pragma unroll
    for (int p = 0; p < 2; ++p) a[p] = and_or(byte_pair(word, p) >> (high ? 4 : 0), 0x000F000Fu, IntBits<T>::kMagic);
}
// Four nibbles minus `offset` (Q4_0's 8).
template <typename T>
__device__ __forceinline__ void nibble_regs(uint32_t (&a)[2], uint32_t word, bool high, uint32_t offset) {
    using B = IntBits<T>;
    biased_nibble_regs<T>(a, word, high);
#pragma unroll
    for (int p = 0; p < 2; ++p) a[p] = B::sub2(a[p], B::kMagic | offset * 0x10001u);
}
// Four int8 values: the low 7 bits under the magic, minus the magic with bit 7 (the sign, worth
// -128) in the place of the mantissa's 128: 0x80 under either magic adds exactly 128.
template <typename T> __device__ __forceinline__ void int8_regs(uint32_t (&a)[2], uint32_t word) {
    using B = IntBits<T>;
#pragma unroll
    for (int p = 0; p < 2; ++p) {
        const uint32_t pair = byte_pair(word, p);
        a[p] = B::sub2(and_or(pair, 0x007F007Fu, B::kMagic), and_or(pair, 0x00800080u, B::kMagic));
    }
}

// The f16 whose bits are the low 16 of `bits`, in fp32.
__device__ __forceinline__ float half_bits_to_float(uint32_t bits) {
    __half_raw raw;
    raw.x = static_cast<unsigned short>(bits);
    return __half2float(__half(raw));
}

// One format's unit: where lane (g, t)'s words and scales are (Row, found once per weight row),
// the Row at unit u (advance), what it loads of unit u from there (Raw) and what one k-step's A
// registers are.
template <QFormat F> struct QMmaUnit;

// Q8_0 and Q4_0 keep each row's values first, kBlockWords 32-bit words a 32-value block, then the
// f16 scales (quant_gemv.cuh): lane t reads word t of each 16 bytes of a block.
template <int kBlockWords> struct SplitScalesUnit {
    static constexpr int kValues = 32, kSubBlocks = 1, kSegments = kBlockWords / 4;
    static constexpr int kBytes = kBlockWords * 4 + 2;  // a block's bytes in a row: values and scale
    struct Row {
        const uint32_t *values;  // word t of the row's first block
        const __half *scales;
    };
    struct Raw {
        uint32_t word[kSegments];
        float d;
    };
    __device__ __forceinline__ static Row row(const uint8_t *w, int64_t n, int64_t rows, int64_t k, int t) {
        const int64_t row_bytes = k / 32 * kBlockWords * 4;
        return {reinterpret_cast<const uint32_t *>(w + n * row_bytes) + t, reinterpret_cast<const __half *>(w + rows * row_bytes) + n * (k / 32)};
    }
    __device__ __forceinline__ static Row advance(const Row &row, int64_t u) { return {row.values + kBlockWords * u, row.scales + u}; }
    __device__ __forceinline__ static void load(Raw &r, const Row &row, int u) {
#pragma unroll
        for (int i = 0; i < kSegments; ++i) r.word[i] = __ldcs(row.values + kBlockWords * u + 4 * i);
        r.d = __half2float(row.scales[u]);
    }
    __device__ __forceinline__ static float d(const Raw &r) { return r.d; }
    __device__ __forceinline__ static float sub_scale(const Raw &, int) { return 1.0f; }
};

// Q8_0: k-step h is the int8 values of the block's 16 bytes h.
template <> struct QMmaUnit<QFormat::Q8_0> : SplitScalesUnit<8> {
    static constexpr int kUnroll = 4;
    template <typename T, bool> __device__ __forceinline__ static void step(uint32_t (&a)[2], const Raw &r, int, int h) { int8_regs<T>(a, r.word[h]); }
};

// Q4_0: k-step 0 is the low nibbles of the block's 16 bytes, k-step 1 the high ones.
template <> struct QMmaUnit<QFormat::Q4_0> : SplitScalesUnit<4> {
    static constexpr int kUnroll = 8;
    template <typename T, bool> __device__ __forceinline__ static void step(uint32_t (&a)[2], const Raw &r, int, int h) {
        nibble_regs<T>(a, r.word[0], h == 1, 8);
    }
};

template <> struct QMmaUnit<QFormat::Q4_K> {
    static constexpr int kValues = 256, kSubBlocks = 8, kUnroll = 1, kBytes = 144;
    struct Row {
        const uint8_t *blocks;
        int t;
    };
    struct Raw {
        uint32_t word[8];  // word t of each 16 bytes of the block's nibbles
        uint4 head;        // d, dmin and the packed scales (the same 16 bytes in the quad's lanes)
        float d, dmin;
    };
    __device__ __forceinline__ static Row row(const uint8_t *w, int64_t n, int64_t, int64_t k, int t) { return {w + n * (k / 256) * 144, t}; }
    __device__ __forceinline__ static Row advance(const Row &row, int64_t u) { return {row.blocks + u * 144, row.t}; }
    __device__ __forceinline__ static void load(Raw &r, const Row &row, int u) {
        const uint8_t *block = row.blocks + u * 144;
        r.head = __ldcs(reinterpret_cast<const uint4 *>(block));
        const uint32_t *nibbles = reinterpret_cast<const uint32_t *>(block + 16) + row.t;
#pragma unroll
        for (int i = 0; i < 8; ++i) r.word[i] = __ldcs(nibbles + 4 * i);
        r.d = half_bits_to_float(r.head.x & 0xffffu);
        r.dmin = half_bits_to_float(r.head.x >> 16);
    }
    // Sub-block s, half h: run s / 2, its 16 bytes h, the low nibbles for even s; q, or M + q
    // (Biased, kMagic's M: qmma_units takes it off).
    template <typename T, bool Biased> __device__ __forceinline__ static void step(uint32_t (&a)[2], const Raw &r, int s, int h) {
        if constexpr (Biased) biased_nibble_regs<T>(a, r.word[2 * (s / 2) + h], s % 2 == 1);
        else nibble_regs<T>(a, r.word[2 * (s / 2) + h], s % 2 == 1, 0);
    }
    // The 6-bit scales (mins = false) or mins of sub-blocks 4 half .. 4 half + 3, one a byte: the
    // packing of q4k_scale_min taken four at a time (head.y, .z, .w: bytes 0-3, 4-7, 8-11 of the 12).
    __device__ __forceinline__ static uint32_t packed(const uint4 &head, bool mins, int half) {
        const uint32_t low = mins ? head.z : head.y;
        if (half == 0) return low & 0x3F3F3F3Fu;
        return ((mins ? head.w >> 4 : head.w) & 0x0F0F0F0Fu) | ((low >> 2) & 0x30303030u);
    }
    __device__ __forceinline__ static float d(const Raw &r) { return r.d; }
    __device__ __forceinline__ static float sub_scale(const Raw &r, int s) { return byte_to_float(packed(r.head, false, s / 4), s % 4, 0.0f); }
    __device__ __forceinline__ static float dmin(const Raw &r) { return r.dmin; }
    __device__ __forceinline__ static float sub_min(const Raw &r, int s) { return byte_to_float(packed(r.head, true, s / 4), s % 4, 0.0f); }
    // Sub-block s's min in both halves of a pair of T (exact: mn < 64), the A register of its row
    // for an mma whose product is mn sum(x).
    template <typename T> __device__ __forceinline__ static uint32_t min_pair(const Raw &r, int s) {
        const uint32_t byte = static_cast<uint32_t>(s % 4);  // into bytes 0 and 2, zeros above them
        const uint32_t pair = __byte_perm(packed(r.head, true, s / 4), 0u, byte | 0x40u | byte << 8 | 0x4000u);
        return IntBits<T>::sub2(pair | IntBits<T>::kMagic, IntBits<T>::kMagic);
    }
};

// The A registers {row g, row g + 8, row g, row g + 8} of Q4_K sub-block s's mins (zeros for the
// other formats, and where the mins go through the sum of x instead: Fold).
template <QFormat F, typename T, bool Fold> struct MinRegs {
    uint32_t a[4] = {};
    __device__ __forceinline__ MinRegs(const typename QMmaUnit<F>::Raw (&raw)[2], int s) {
        if constexpr (F == QFormat::Q4_K && !Fold) {
            const uint32_t lo = QMmaUnit<F>::template min_pair<T>(raw[0], s), hi = QMmaUnit<F>::template min_pair<T>(raw[1], s);
            a[0] = a[2] = lo;
            a[1] = a[3] = hi;
        }
    }
};

// acc (rows g, g + 8 by x rows of each N tile, the C layout) += U units from unit u0 on: the
// loads of all of them first, so that a warp has them in flight together. x_lane: this lane's
// column 4t of the x row of each N tile.
template <QFormat F, typename T, int NT, int U>
__device__ __forceinline__ void qmma_units(float (&acc)[NT][4], const T *const (&x_lane)[NT], const typename QMmaUnit<F>::Row (&rows)[2],
                                           int64_t u0) {
    using Unit = QMmaUnit<F>;
    typename Unit::Raw raw[U][2];
    const typename Unit::Row at[2] = {Unit::advance(rows[0], u0), Unit::advance(rows[1], u0)};
#pragma unroll
    for (int j = 0; j < U; ++j)
#pragma unroll
        for (int r = 0; r < 2; ++r) Unit::load(raw[j][r], at[r], j);
#pragma unroll
    for (int j = 0; j < U; ++j) {
        // The unit's sums over its sub-blocks under their integer scales, then times d. Q4_K: `mins`
        // sums each sub-block's mn sum(x), by an mma whose A is each row's mn, then times dmin;
        // with one N tile (fold) sum(x) comes from an all-ones A, times dmin mn + d sc M (M the
        // magic left in its weights), subtracted once a unit. With two, the values lose their
        // magic one subtraction a pair: the fold's extra live values would spill the kernels'
        // 128 registers (ptxas: 92 bytes in the wide one, none this way).
        constexpr bool fold = NT == 1;
        float scaled[NT][4] = {}, mins[NT][4] = {};
#pragma unroll
        for (int s = 0; s < Unit::kSubBlocks; ++s) {
            float part[NT][4] = {}, sums[NT][4] = {};
            const MinRegs<F, T, fold> mn(raw[j], s);
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                uint32_t lo[2], hi[2];
                Unit::template step<T, fold>(lo, raw[j][0], s, h);
                Unit::template step<T, fold>(hi, raw[j][1], s, h);
                const uint32_t a[4] = {lo[0], hi[0], lo[1], hi[1]};
                const int64_t column = (u0 + j) * Unit::kValues + 32 * s + 16 * h;
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) {
                    const uint2 xv = *reinterpret_cast<const uint2 *>(x_lane[nt] + column);
                    const uint32_t b[2] = {xv.x, xv.y};
                    tc::mma_m16n8k16<T>(part[nt], a, b, part[nt]);
                    if constexpr (F == QFormat::Q4_K && fold) {
                        const uint32_t ones[4] = {IntBits<T>::kOnes, IntBits<T>::kOnes, IntBits<T>::kOnes, IntBits<T>::kOnes};
                        tc::mma_m16n8k16<T>(sums[nt], ones, b, sums[nt]);
                    } else if constexpr (F == QFormat::Q4_K) {
                        tc::mma_m16n8k16<T>(mins[nt], mn.a, b, mins[nt]);
                    }
                }
            }
            const float sc[2] = {Unit::sub_scale(raw[j][0], s), Unit::sub_scale(raw[j][1], s)};
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int i = 0; i < 4; ++i) scaled[nt][i] = Unit::kSubBlocks == 1 ? part[nt][i] : fmaf(sc[i / 2], part[nt][i], scaled[nt][i]);
            if constexpr (F == QFormat::Q4_K && fold) {
                float off[2];
#pragma unroll
                for (int r = 0; r < 2; ++r)
                    off[r] = fmaf(IntBits<T>::kMagicValue * Unit::d(raw[j][r]), sc[r], Unit::dmin(raw[j][r]) * Unit::sub_min(raw[j][r], s));
#pragma unroll
                for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                    for (int i = 0; i < 4; ++i) mins[nt][i] = fmaf(off[i / 2], sums[nt][i], mins[nt][i]);
            }
        }
        const float d[2] = {Unit::d(raw[j][0]), Unit::d(raw[j][1])};
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                acc[nt][i] = fmaf(d[i / 2], scaled[nt][i], acc[nt][i]);
                if constexpr (F == QFormat::Q4_K) acc[nt][i] = fold ? acc[nt][i] - mins[nt][i] : fmaf(-Unit::dmin(raw[j][i / 2]), mins[nt][i], acc[nt][i]);
            }
    }
}

// out (m_rows x n_out) = x (m_rows x k) W^T for m_rows <= 8 NT; grid: one block per 16 rows of W.
template <QFormat F, typename T, int NT>
__global__ void __launch_bounds__(QMMA_WARPS * 32, 2)  // two blocks an SM: 16 warps to hide the latencies
        quant_gemv_mma_kernel(T *__restrict__ out, const T *__restrict__ x, const uint8_t *__restrict__ w, int m_rows, int64_t n_out,
                              int64_t k) {
    using Unit = QMmaUnit<F>;
    constexpr int U = Unit::kUnroll;
    __shared__ float partials[QMMA_WARPS][NT * 4][32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * QMMA_ROWS;
    // Rows past the end of W and of x are read in range (the last one) and never stored.
    const typename Unit::Row rows[2] = {Unit::row(w, min(row0 + g, n_out - 1), n_out, k, t),
                                        Unit::row(w, min(row0 + g + 8, n_out - 1), n_out, k, t)};
    const T *x_lane[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) x_lane[nt] = x + static_cast<int64_t>(min(8 * nt + g, m_rows - 1)) * k + 4 * t;

    float acc[NT][4] = {};
    const int64_t units = k / Unit::kValues, runs = units / U;
    for (int64_t run = warp; run < runs; run += QMMA_WARPS) qmma_units<F, T, NT, U>(acc, x_lane, rows, run * U);
    for (int64_t u = runs * U + warp; u < units; u += QMMA_WARPS) qmma_units<F, T, NT, 1>(acc, x_lane, rows, u);

#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) partials[warp][nt * 4 + i][lane] = acc[nt][i];
    __syncthreads();
    // Thread e sums element e of the lanes' C fragments over the warps: c[i] of lane (g, t) in N
    // tile nt is W row g (+ 8 for i >= 2) by x row 8 nt + 2t + i % 2.
    for (int e = threadIdx.x; e < NT * 4 * 32; e += QMMA_WARPS * 32) {
        const int slot = e / 32, l = e % 32, nt = slot / 4, i = slot % 4;
        float total = 0.0f;
#pragma unroll
        for (int v = 0; v < QMMA_WARPS; ++v) total += partials[v][slot][l];
        const int64_t n = row0 + l / 4 + (i >= 2 ? 8 : 0);
        const int m = 8 * nt + 2 * (l % 4) + i % 2;
        if (n < n_out && m < m_rows) out[static_cast<int64_t>(m) * n_out + n] = from_float<T>(total);
    }
}

// The work of a wide launch (stream-K): each 256-row tile is `runs` runs of kUnroll units of K (a
// tile's last run may be short), work = tiles * runs in all, tile-major, and block b of the
// `blocks` takes the runs [b work / blocks, (b + 1) work / blocks) (work >= blocks, so none is
// empty): blocks carry equal work whatever the tile count, and a tile's runs may be spread over
// the blocks in a row that touch them, its parts (part p: the p-th of them). A tile of one part
// stores at once; the parts of a tile meet in the workspace (split_meet, one warp a 16-row group):
// partials [group][max_parts][NT * 4][32] and one arrival counter a group, 0 between launches.
// max_parts = 1: the unsplit launch, a block a tile, the pointers unused. The launcher keeps
// (work + 1) * blocks below 2^32, so the index arithmetic is 32-bit.
struct QGemvSplit {
    float *partials;
    int32_t *arrivals;
    uint32_t runs, work, blocks, max_parts;
};

// The block whose runs hold run `at` of the launch.
__device__ __forceinline__ uint32_t qgemv_block_of(const QGemvSplit &s, uint32_t at) { return ((at + 1) * s.blocks - 1) / s.work; }

// out (m_rows x n_out) = x (m_rows x k) W^T for m_rows <= 8 NT; grid: split.blocks blocks, a warp
// a 16-row group of each tile the block's runs touch (no block barrier: a group past W skips).
template <QFormat F, typename T, int NT>
__global__ void __launch_bounds__(QMMA_WIDE_WARPS * 32, 1)
        quant_gemv_mma_wide_kernel(T *__restrict__ out, const T *__restrict__ x, const uint8_t *__restrict__ w, int m_rows,
                                   int64_t n_out, int64_t k, const QGemvSplit split) {
    using Unit = QMmaUnit<F>;
    constexpr int U = Unit::kUnroll;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const uint32_t units = static_cast<uint32_t>(k / Unit::kValues), spread = split.max_parts > 1;
    const uint32_t begin = spread ? blockIdx.x * split.work / split.blocks : blockIdx.x * split.runs;
    const uint32_t end = spread ? (blockIdx.x + 1) * split.work / split.blocks : begin + split.runs;
    const T *x_lane[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) x_lane[nt] = x + static_cast<int64_t>(min(8 * nt + g, m_rows - 1)) * k + 4 * t;

    for (uint32_t at = begin; at < end;) {
        const uint32_t tile = at / split.runs, tile_runs = tile * split.runs, stop = min(end, tile_runs + split.runs);
        const int64_t group = static_cast<int64_t>(tile) * QMMA_WIDE_WARPS + warp, row0 = group * QMMA_ROWS;
        if (row0 < n_out) {
            // Rows past the end of W and of x are read in range (the last one) and never stored.
            const typename Unit::Row rows[2] = {Unit::row(w, min(row0 + g, n_out - 1), n_out, k, t),
                                                Unit::row(w, min(row0 + g + 8, n_out - 1), n_out, k, t)};
            // The piece's runs [r0, r1) of the tile: the whole ones, then (in the piece holding it)
            // a short last run unit by unit.
            float acc[NT][4] = {};
            const uint32_t r0 = at - tile_runs, r1 = stop - tile_runs, whole = units / U;
            for (uint32_t run = r0; run < min(r1, whole); ++run) qmma_units<F, T, NT, U>(acc, x_lane, rows, run * U);
            for (uint32_t u = max(r0, whole) * U; u < min(r1 * U, units); ++u) qmma_units<F, T, NT, 1>(acc, x_lane, rows, u);
            const uint32_t first = spread ? qgemv_block_of(split, tile_runs) : blockIdx.x;
            const uint32_t parts = spread ? qgemv_block_of(split, tile_runs + split.runs - 1) - first + 1 : 1;
            if (parts == 1 || split_meet<1, NT * 4>(split.partials + group * split.max_parts * (NT * 4 * 32), split.arrivals + group,
                                                 static_cast<int>(parts), static_cast<int>(blockIdx.x - first),
                                                 [&](int e) -> float & { return acc[e / 4][e % 4]; }, [](int) { return true; }, lane)) {
                // c[i] of lane (g, t) in N tile nt is W row g (+ 8 for i >= 2) by x row 8 nt + 2t + i % 2.
#pragma unroll
                for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const int64_t n = row0 + g + (i >= 2 ? 8 : 0);
                        const int m = 8 * nt + 2 * t + i % 2;
                        if (n < n_out && m < m_rows) out[static_cast<int64_t>(m) * n_out + n] = from_float<T>(acc[nt][i]);
                    }
            }
        }
        at = stop;
    }
}

}  // namespace isthmus
