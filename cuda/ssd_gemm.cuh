// The small block-wide matrix products of the chunked SSD scan (cuda/ssd.cuh), operands in shared
// memory and the fp32 result to shared memory:
//
//   out[m][n] (+)= sum_k A[m][k] * B(k, n)       m < M, n < N, k < K
//
// A is row-major (A[m][k] at a[m * lda + k]); B is "n-major" (B(k, n) at b[n * ldb + k], a matrix
// whose rows are the columns of B) or "k-major" (at b[k * ldb + n]). With f16/bf16 operands the
// products run on the tensor cores (mma.sync m16n8k16 through cuda/mma.cuh, fragments loaded with
// ldmatrix, .trans for a k-major B); M and K must be multiples of 16, N of 8, the leading
// dimensions multiples of 8 elements and the operands 16-byte aligned. With fp32 operands each
// thread takes whole outputs on the CUDA cores, the sum in fp32 in the order of k.
//
// Every warp of the block must call these together (the tensor-core path is warp-collective);
// they do not synchronize: the caller places the barriers.
#pragma once

#include "common.cuh"
#include "mma.cuh"

namespace isthmus {

template <bool B_KMAJOR, bool ACCUMULATE>
__device__ __forceinline__ void block_gemm(float *out, int ldo, const float *a, int lda, const float *b, int ldb, int m_size,
                                           int n_size, int k_size) {
    for (int i = threadIdx.x; i < m_size * n_size; i += blockDim.x) {
        const int m = i / n_size, n = i % n_size;
        float acc = ACCUMULATE ? out[m * ldo + n] : 0.0f;
        for (int k = 0; k < k_size; ++k) acc = fmaf(a[m * lda + k], B_KMAJOR ? b[k * ldb + n] : b[n * ldb + k], acc);
        out[m * ldo + n] = acc;
    }
}

template <bool B_KMAJOR, bool ACCUMULATE, typename T>
__device__ __forceinline__ void block_gemm(float *out, int ldo, const T *a, int lda, const T *b, int ldb, int m_size,
                                           int n_size, int k_size) {
    static_assert(sizeof(T) == 2, "the tensor-core path takes f16 or bf16");
    const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int n_tiles = n_size / 8, tiles = (m_size / 16) * n_tiles;
    for (int tile = threadIdx.x / 32; tile < tiles; tile += warps) {
        const int m0 = tile / n_tiles * 16, n0 = tile % n_tiles * 8;
        float acc[4];
        if constexpr (ACCUMULATE) {
            acc[0] = out[(m0 + g) * ldo + n0 + 2 * t];
            acc[1] = out[(m0 + g) * ldo + n0 + 2 * t + 1];
            acc[2] = out[(m0 + g + 8) * ldo + n0 + 2 * t];
            acc[3] = out[(m0 + g + 8) * ldo + n0 + 2 * t + 1];
        } else {
            acc[0] = acc[1] = acc[2] = acc[3] = 0.0f;
        }
        for (int k0 = 0; k0 < k_size; k0 += 16) {
            // A: lanes 0..15 give rows m0..m0+15 at column k0, lanes 16..31 the same rows at k0 + 8.
            uint32_t fa[4], fb[2];
            tc::ldmatrix_x4(fa, a + (m0 + lane % 16) * lda + k0 + lane / 16 * 8);
            if constexpr (B_KMAJOR) {
                // rows k0..k0+15 of B at column n0, transposed into the fragment's (k pairs, n) order
                tc::ldmatrix_x2_trans(fb, b + (k0 + lane % 16) * ldb + n0);
            } else {
                // rows n0..n0+7 of the n-major B at columns k0 and k0 + 8
                tc::ldmatrix_x2(fb, b + (n0 + lane % 8) * ldb + k0 + (lane / 8) % 2 * 8);
            }
            tc::mma_m16n8k16<T>(acc, fa, fb, acc);
        }
        out[(m0 + g) * ldo + n0 + 2 * t] = acc[0];
        out[(m0 + g) * ldo + n0 + 2 * t + 1] = acc[1];
        out[(m0 + g + 8) * ldo + n0 + 2 * t] = acc[2];
        out[(m0 + g + 8) * ldo + n0 + 2 * t + 1] = acc[3];
    }
}

}  // namespace isthmus
