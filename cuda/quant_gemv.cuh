// Matrix-vector (and few-row) products on quantized weights, for decode: out[m][n] = sum_k x[m][k] W[n][k]
// with W stored in a GGML block format and dequantized in registers, never in memory, on the CUDA
// cores in fp32: the path of f32 x (f16 and bf16 x take the tensor cores, quant_gemv_mma.cuh,
// which would round f32 x to 16 bits). A decode step reads every weight once per token, so the
// weight bytes are the cost: each warp streams one weight row with 16-byte loads while x (at most
// QGEMV_MAX_ROWS rows) comes from L1/L2. The device layouts and the format helpers here are
// shared with the tensor-core GEMV.
//
// Device layouts (dev.isthmus.quant.QuantizedMatrix writes them; the byte count is the format's):
//   Q8_0  the int8 values of every row (rows * k bytes), then one f16 scale per 32 values, row-major
//   Q4_0  the nibbles (rows * k / 2 bytes; byte j of a 32-value block holds values j and j + 16, as
//         in the format), then the f16 scales; value = d (q - 8)
//   Q4_K  the format's own 144-byte blocks (16 bytes of d, dmin and the packed 6-bit scales and mins,
//         then 128 of nibbles), 16-byte aligned as they are; value = (d sc) q - (dmin mn)
// Q8_0 and Q4_0 keep their scales apart from the values because their 34- and 18-byte blocks would
// allow only 2-byte loads.
//
// A lane's unit of work is a chunk: one 32-value block (Q8_0, Q4_0) or one 64-value run of a Q4_K
// block (its sub-blocks 2r and 2r + 1 share 32 bytes of nibbles, low and high). For each row m the
// chunk adds sum_s (d_s sum_i q_i x_i - mn_s sum_i x_i) over its 32-value sub-blocks s.
//
// Integers become floats without a conversion instruction: byte b placed under the exponent of
// 2^23 (0x4B000000 | b) is the float 2^23 + b, so one byte-permute and one subtraction give b.
#pragma once

#include "common.cuh"

namespace isthmus {

constexpr int QGEMV_MAX_ROWS = 16;
constexpr int QGEMV_WARPS = 4;  // warps a block; a warp computes one output feature at a time

enum class QFormat { Q8_0, Q4_0, Q4_K };

// Byte `which` (0..3) of v as a float, minus `bias`: (2^23 + byte) - (2^23 + bias), exact.
__device__ __forceinline__ float byte_to_float(uint32_t v, int which, float bias) {
    const uint32_t bits = __byte_perm(v, 0x4B000000u, 0x7440u | static_cast<uint32_t>(which));
    return __int_as_float(static_cast<int>(bits)) - (8388608.0f + bias);
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block from its 16-byte head (d, dmin,
// then 12 bytes of packed scales): j < 4 in the low bits of bytes j and j + 4 of the 12; j >= 4 in
// the nibbles of byte j + 4 with the top two bits of bytes j - 4 and j. The 12 bytes are head.y,
// .z, .w, so both cases read byte j % 4 of each word: shifts and masks, no branch, for a j known
// only at run time (the tile source's sub-block follows its K pass).
__device__ __forceinline__ void q4k_scale_min(const uint4 &head, int j, uint32_t &sc, uint32_t &m) {
    const int shift = 8 * (j % 4);
    const uint32_t y = head.y >> shift, z = head.z >> shift, w = head.w >> shift;
    const bool high = j >= 4;
    sc = high ? (w & 0xfu) | ((y >> 2) & 0x30u) : y & 63u;
    m = high ? ((w >> 4) & 0xfu) | ((z >> 2) & 0x30u) : z & 63u;
}

// The 32 integer values q, scale d and min mn of each sub-block of chunk `chunk` of weight row n.
template <QFormat F> struct QChunk;

template <> struct QChunk<QFormat::Q8_0> {
    static constexpr int kSubBlocks = 1;
    __device__ __forceinline__ static void load(float (&q)[1][32], float (&d)[1], float (&mn)[1], const uint8_t *w, int64_t n,
                                                int64_t rows, int64_t k, int64_t chunk) {
        const uint8_t *values = w + n * k + chunk * 32;
        const uint4 lo = *reinterpret_cast<const uint4 *>(values), hi = *reinterpret_cast<const uint4 *>(values + 16);
        const uint32_t words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
        for (int i = 0; i < 32; ++i) q[0][i] = byte_to_float(words[i / 4] ^ 0x80808080u, i % 4, 128.0f);  // int8 as q + 128
        d[0] = __half2float(reinterpret_cast<const __half *>(w + rows * k)[n * (k / 32) + chunk]);
        mn[0] = 0.0f;
    }
};

template <> struct QChunk<QFormat::Q4_0> {
    static constexpr int kSubBlocks = 1;
    __device__ __forceinline__ static void load(float (&q)[1][32], float (&d)[1], float (&mn)[1], const uint8_t *w, int64_t n,
                                                int64_t rows, int64_t k, int64_t chunk) {
        const uint4 v = *reinterpret_cast<const uint4 *>(w + n * (k / 2) + chunk * 16);
        const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            q[0][j] = byte_to_float(words[j / 4] & 0x0F0F0F0Fu, j % 4, 8.0f);
            q[0][j + 16] = byte_to_float((words[j / 4] >> 4) & 0x0F0F0F0Fu, j % 4, 8.0f);
        }
        d[0] = __half2float(reinterpret_cast<const __half *>(w + rows * (k / 2))[n * (k / 32) + chunk]);
        mn[0] = 0.0f;
    }
};

template <> struct QChunk<QFormat::Q4_K> {
    static constexpr int kSubBlocks = 2;
    __device__ __forceinline__ static void load(float (&q)[2][32], float (&d)[2], float (&mn)[2], const uint8_t *w, int64_t n,
                                                int64_t, int64_t k, int64_t chunk) {
        const int run = static_cast<int>(chunk % 4);
        const uint8_t *block = w + (n * (k / 256) + chunk / 4) * 144;
        const uint4 head = *reinterpret_cast<const uint4 *>(block);
        const uint4 lo = *reinterpret_cast<const uint4 *>(block + 16 + 32 * run);
        const uint4 hi = *reinterpret_cast<const uint4 *>(block + 16 + 32 * run + 16);
        const uint32_t words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
        for (int i = 0; i < 32; ++i) {
            q[0][i] = byte_to_float(words[i / 4] & 0x0F0F0F0Fu, i % 4, 0.0f);
            q[1][i] = byte_to_float((words[i / 4] >> 4) & 0x0F0F0F0Fu, i % 4, 0.0f);
        }
        const float dd = __half2float(reinterpret_cast<const __half *>(block)[0]);  // from L1: the header was just loaded
        const float dmin = __half2float(reinterpret_cast<const __half *>(block)[1]);
#pragma unroll
        for (int s = 0; s < 2; ++s) {
            uint32_t sc, m;
            q4k_scale_min(head, 2 * run + s, sc, m);
            d[s] = dd * static_cast<float>(sc);
            mn[s] = dmin * static_cast<float>(m);
        }
    }
};

// Eight consecutive values of x at column k0 (a multiple of 8) in fp32.
template <typename T> __device__ __forceinline__ void load_x8(float (&dst)[8], const T *x, int64_t k0) {
    if constexpr (sizeof(T) == 2) {
        const Vec<T, 8> v = *reinterpret_cast<const Vec<T, 8> *>(x + k0);
#pragma unroll
        for (int i = 0; i < 8; ++i) dst[i] = to_float(v.v[i]);
    } else {
        const Vec<float, 4> a = *reinterpret_cast<const Vec<float, 4> *>(x + k0);
        const Vec<float, 4> b = *reinterpret_cast<const Vec<float, 4> *>(x + k0 + 4);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            dst[i] = a.v[i];
            dst[i + 4] = b.v[i];
        }
    }
}

// out (m_rows x n_out, row-major) = x (m_rows x k) W^T; M >= m_rows is the unrolled row count.
template <QFormat F, typename T, int M>
__global__ void __launch_bounds__(QGEMV_WARPS * 32)
        quant_gemv_kernel(T *__restrict__ out, const T *__restrict__ x, const uint8_t *__restrict__ w, int m_rows, int64_t n_out, int64_t k) {
    using Chunk = QChunk<F>;
    constexpr int kSub = Chunk::kSubBlocks;
    const int lane = threadIdx.x % 32;
    const int64_t n = static_cast<int64_t>(blockIdx.x) * QGEMV_WARPS + threadIdx.x / 32;
    if (n >= n_out) return;  // the whole warp: n is warp-uniform
    const int64_t chunks = k / (32 * kSub);
    float acc[M];
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = 0.0f;
    for (int64_t c = lane; c < chunks; c += 32) {
        float q[kSub][32], d[kSub], mn[kSub];
        Chunk::load(q, d, mn, w, n, n_out, k, c);
        // Rows past m_rows are skipped whole (m_rows is uniform); M bounds the unrolling.
#pragma unroll
        for (int m = 0; m < M; ++m) {
            if (m < m_rows) {
#pragma unroll
                for (int s = 0; s < kSub; ++s) {
                    float qx = 0.0f, sx = 0.0f;
#pragma unroll
                    for (int part = 0; part < 4; ++part) {
                        float xv[8];
                        load_x8(xv, x + m * k, (c * kSub + s) * 32 + 8 * part);
#pragma unroll
                        for (int i = 0; i < 8; ++i) {
                            qx = fmaf(q[s][8 * part + i], xv[i], qx);
                            if (F == QFormat::Q4_K) sx += xv[i];
                        }
                    }
                    acc[m] = fmaf(d[s], qx, acc[m]);
                    if (F == QFormat::Q4_K) acc[m] = fmaf(-mn[s], sx, acc[m]);
                }
            }
        }
    }
#pragma unroll
    for (int m = 0; m < M; ++m) {
        if (m < m_rows) {
            const float total = warp_sum(acc[m]);
            if (lane == 0) out[m * n_out + n] = from_float<T>(total);
        }
    }
}

}  // namespace isthmus
