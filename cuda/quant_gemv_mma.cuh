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
//         adds d sc sum(q x) - dmin mn sum(x), sum(x) by an mma with an all-ones A.
//
// Integers become 16-bit floats by placing them under a magic exponent: the f16 0x6400 | i is
// 1024 + i (i < 1024), the bf16 0x4300 | i is 128 + i (i < 128); one packed subtraction of the
// magic (plus the format's offset) leaves the integer, exactly.
//
// A block is QMMA_WARPS warps on the same 16 weight rows, each a share of K (units dealt out in
// runs of kUnroll, then the tail one by one), summed through shared memory at the end. The
// weights are read once and streamed past L1 (ld.global.cs); x is re-read by every block and
// left to L1 and L2.
#pragma once

#include "mma.cuh"
#include "quant_gemv.cuh"

namespace isthmus {

constexpr int QMMA_WARPS = 8;  // warps a block, each a share of K
constexpr int QMMA_ROWS = 16;  // weight rows (output features) a block: the mma's M

// The 16-bit type's magic: its bits with integer i in the mantissa are the value kMagicValue + i.
template <typename T> struct IntBits;
template <> struct IntBits<__half> {
    static constexpr uint32_t kMagic = 0x64006400u;  // 1024 in each half
    static constexpr uint32_t kOnes = 0x3C003C00u;
    __device__ __forceinline__ static uint32_t sub2(uint32_t a, uint32_t b) { return bits_of(__hsub2(half2_of(a), half2_of(b))); }
    __device__ __forceinline__ static __half2 half2_of(uint32_t v) {
        __half2_raw raw;
        raw.x = static_cast<unsigned short>(v);
        raw.y = static_cast<unsigned short>(v >> 16);
        return __half2(raw);
    }
    __device__ __forceinline__ static uint32_t bits_of(__half2 v) {
        const __half2_raw raw = v;
        return raw.x | static_cast<uint32_t>(raw.y) << 16;
    }
};
template <> struct IntBits<__nv_bfloat16> {
    static constexpr uint32_t kMagic = 0x43004300u;  // 128 in each half
    static constexpr uint32_t kOnes = 0x3F803F80u;
    __device__ __forceinline__ static uint32_t sub2(uint32_t a, uint32_t b) { return bits_of(__hsub2(bf162_of(a), bf162_of(b))); }
    __device__ __forceinline__ static __nv_bfloat162 bf162_of(uint32_t v) {
        __nv_bfloat162_raw raw;
        raw.x = static_cast<unsigned short>(v);
        raw.y = static_cast<unsigned short>(v >> 16);
        return __nv_bfloat162(raw);
    }
    __device__ __forceinline__ static uint32_t bits_of(__nv_bfloat162 v) {
        const __nv_bfloat162_raw raw = v;
        return raw.x | static_cast<uint32_t>(raw.y) << 16;
    }
};

// Bytes 0, 1 (pair 0) and 2, 3 (pair 1) of w, each pair's bytes in the low bytes of the two halves.
__device__ __forceinline__ uint32_t byte_pair(uint32_t w, int pair) { return __byte_perm(w, 0u, pair == 0 ? 0x4140u : 0x4342u); }

// The A registers of one k-step for one weight row from its word: value pairs (0, 1) and (2, 3).
// Four nibbles (low or high of each byte) minus `offset` (8 for Q4_0, 0 for Q4_K).
template <typename T>
__device__ __forceinline__ void nibble_regs(uint32_t (&a)[2], uint32_t word, bool high, uint32_t offset) {
    using B = IntBits<T>;
#pragma unroll
    for (int p = 0; p < 2; ++p) {
        const uint32_t pair = byte_pair(word, p) >> (high ? 4 : 0);
        a[p] = B::sub2((pair & 0x000F000Fu) | B::kMagic, B::kMagic | offset * 0x10001u);
    }
}
// Four int8 values: the low 7 bits under the magic, minus the magic with bit 7 (the sign, worth
// -128) in the place of the mantissa's 128: 0x80 under either magic adds exactly 128.
template <typename T> __device__ __forceinline__ void int8_regs(uint32_t (&a)[2], uint32_t word) {
    using B = IntBits<T>;
#pragma unroll
    for (int p = 0; p < 2; ++p) {
        const uint32_t pair = byte_pair(word, p);
        a[p] = B::sub2((pair & 0x007F007Fu) | B::kMagic, (pair & 0x00800080u) | B::kMagic);
    }
}

// The f16 whose bits are the low 16 of `bits`, in fp32.
__device__ __forceinline__ float half_bits_to_float(uint32_t bits) {
    __half_raw raw;
    raw.x = static_cast<unsigned short>(bits);
    return __half2float(__half(raw));
}

// One format's unit: where lane (g, t)'s words and scales are and what one k-step's A registers
// are. `Raw` holds a unit's words for one weight row.
template <QFormat F> struct QMmaUnit;

template <> struct QMmaUnit<QFormat::Q8_0> {
    static constexpr int kValues = 32, kSubBlocks = 1, kUnroll = 4;
    struct Raw {
        uint32_t word[2];
        float d;
    };
    __device__ __forceinline__ static void load(Raw &r, const uint8_t *w, int64_t n, int64_t rows, int64_t k, int64_t u, int t) {
        const uint32_t *values = reinterpret_cast<const uint32_t *>(w + n * k + u * 32) + t;
        r.word[0] = __ldcs(values);
        r.word[1] = __ldcs(values + 4);
        r.d = __half2float(reinterpret_cast<const __half *>(w + rows * k)[n * (k / 32) + u]);
    }
    template <typename T> __device__ __forceinline__ static void step(uint32_t (&a)[2], const Raw &r, int, int h) { int8_regs<T>(a, r.word[h]); }
    __device__ __forceinline__ static float scale(const Raw &r, int) { return r.d; }
    __device__ __forceinline__ static float min(const Raw &, int) { return 0.0f; }
};

template <> struct QMmaUnit<QFormat::Q4_0> {
    static constexpr int kValues = 32, kSubBlocks = 1, kUnroll = 8;
    struct Raw {
        uint32_t word;
        float d;
    };
    __device__ __forceinline__ static void load(Raw &r, const uint8_t *w, int64_t n, int64_t rows, int64_t k, int64_t u, int t) {
        r.word = __ldcs(reinterpret_cast<const uint32_t *>(w + n * (k / 2) + u * 16) + t);
        r.d = __half2float(reinterpret_cast<const __half *>(w + rows * (k / 2))[n * (k / 32) + u]);
    }
    template <typename T> __device__ __forceinline__ static void step(uint32_t (&a)[2], const Raw &r, int, int h) {
        nibble_regs<T>(a, r.word, h == 1, 8);
    }
    __device__ __forceinline__ static float scale(const Raw &r, int) { return r.d; }
    __device__ __forceinline__ static float min(const Raw &, int) { return 0.0f; }
};

template <> struct QMmaUnit<QFormat::Q4_K> {
    static constexpr int kValues = 256, kSubBlocks = 8, kUnroll = 1;
    struct Raw {
        uint32_t word[8];  // word t of each 16 bytes of the block's nibbles
        uint4 head;        // d, dmin and the packed scales (the same 16 bytes in the quad's lanes)
    };
    __device__ __forceinline__ static void load(Raw &r, const uint8_t *w, int64_t n, int64_t, int64_t k, int64_t u, int t) {
        const uint8_t *block = w + (n * (k / 256) + u) * 144;
        r.head = __ldcs(reinterpret_cast<const uint4 *>(block));
        const uint32_t *nibbles = reinterpret_cast<const uint32_t *>(block + 16) + t;
#pragma unroll
        for (int i = 0; i < 8; ++i) r.word[i] = __ldcs(nibbles + 4 * i);
    }
    // Sub-block s, half h: run s / 2, its 16 bytes h, the low nibbles for even s.
    template <typename T> __device__ __forceinline__ static void step(uint32_t (&a)[2], const Raw &r, int s, int h) {
        nibble_regs<T>(a, r.word[2 * (s / 2) + h], s % 2 == 1, 0);
    }
    __device__ __forceinline__ static float scale(const Raw &r, int s) {
        uint32_t sc, m;
        q4k_scale_min(r.head, s, sc, m);
        return half_bits_to_float(r.head.x & 0xffffu) * static_cast<float>(sc);
    }
    __device__ __forceinline__ static float min(const Raw &r, int s) {
        uint32_t sc, m;
        q4k_scale_min(r.head, s, sc, m);
        return half_bits_to_float(r.head.x >> 16) * static_cast<float>(m);
    }
};

// acc (rows g, g + 8 by x rows of each N tile, the C layout) += kUnroll units from unit u0 on:
// the loads of all of them first, so that a warp has them in flight together.
template <QFormat F, typename T, int NT, int U>
__device__ __forceinline__ void qmma_units(float (&acc)[NT][4], const T *const (&x_rows)[NT], const uint8_t *w, int64_t row_g,
                                           int64_t row_g8, int64_t rows, int64_t k, int64_t u0, int t) {
    using Unit = QMmaUnit<F>;
    typename Unit::Raw raw[U][2];
#pragma unroll
    for (int j = 0; j < U; ++j) {
        Unit::load(raw[j][0], w, row_g, rows, k, u0 + j, t);
        Unit::load(raw[j][1], w, row_g8, rows, k, u0 + j, t);
    }
#pragma unroll
    for (int j = 0; j < U; ++j) {
#pragma unroll
        for (int s = 0; s < Unit::kSubBlocks; ++s) {
            float part[NT][4] = {}, sums[NT][4] = {};
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                uint32_t lo[2], hi[2];
                Unit::template step<T>(lo, raw[j][0], s, h);
                Unit::template step<T>(hi, raw[j][1], s, h);
                const uint32_t a[4] = {lo[0], hi[0], lo[1], hi[1]};
                const int64_t column = (u0 + j) * Unit::kValues + 32 * s + 16 * h + 4 * t;
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) {
                    const uint2 xv = *reinterpret_cast<const uint2 *>(x_rows[nt] + column);
                    const uint32_t b[2] = {xv.x, xv.y};
                    tc::mma_m16n8k16<T>(part[nt], a, b, part[nt]);
                    if (F == QFormat::Q4_K) {
                        const uint32_t ones[4] = {IntBits<T>::kOnes, IntBits<T>::kOnes, IntBits<T>::kOnes, IntBits<T>::kOnes};
                        tc::mma_m16n8k16<T>(sums[nt], ones, b, sums[nt]);
                    }
                }
            }
            const float d[2] = {Unit::scale(raw[j][0], s), Unit::scale(raw[j][1], s)};
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int i = 0; i < 4; ++i) acc[nt][i] = fmaf(d[i / 2], part[nt][i], acc[nt][i]);
            if (F == QFormat::Q4_K) {
                const float mn[2] = {Unit::min(raw[j][0], s), Unit::min(raw[j][1], s)};
#pragma unroll
                for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                    for (int i = 0; i < 4; ++i) acc[nt][i] = fmaf(-mn[i / 2], sums[nt][i], acc[nt][i]);
            }
        }
    }
}

// out (m_rows x n_out) = x (m_rows x k) W^T for m_rows <= 8 NT; grid: one block per 16 rows of W.
template <QFormat F, typename T, int NT>
__global__ void __launch_bounds__(QMMA_WARPS * 32)
        quant_gemv_mma_kernel(T *__restrict__ out, const T *__restrict__ x, const uint8_t *__restrict__ w, int m_rows, int64_t n_out,
                              int64_t k) {
    using Unit = QMmaUnit<F>;
    constexpr int U = Unit::kUnroll;
    __shared__ float partials[QMMA_WARPS][NT * 4][32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * QMMA_ROWS;
    // Rows past the end of W and of x are read in range (the last one) and never stored.
    const int64_t row_g = min(row0 + g, n_out - 1), row_g8 = min(row0 + g + 8, n_out - 1);
    const T *x_rows[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) x_rows[nt] = x + static_cast<int64_t>(min(8 * nt + g, m_rows - 1)) * k;

    float acc[NT][4] = {};
    const int64_t units = k / Unit::kValues, runs = units / U;
    for (int64_t run = warp; run < runs; run += QMMA_WARPS) qmma_units<F, T, NT, U>(acc, x_rows, w, row_g, row_g8, n_out, k, run * U, t);
    for (int64_t u = runs * U + warp; u < units; u += QMMA_WARPS) qmma_units<F, T, NT, 1>(acc, x_rows, w, row_g, row_g8, n_out, k, u, t);

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

}  // namespace isthmus
