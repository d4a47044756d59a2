// RMSNorm over rows with the residual add fused. One block per row; each thread walks the row
// in vectors of N elements. Pass 1 forms h = x (+ residual), stores it (residual_out) and sums
// h^2; pass 2 re-reads h — from L1/L2, the row was just touched — and writes h * inv_rms * w.
#pragma once

#include "common.cuh"

namespace isthmus {

template <typename T, int N, bool WITH_RESIDUAL>
__global__ void rmsnorm_kernel(T *out, T *residual_out, const T *x, const T *residual,
                               const T *__restrict__ weight, int64_t cols, float eps) {
    using V = Vec<T, N>;
    const int64_t row = blockIdx.x;
    const int64_t vecs = cols / N;
    const V *x_row = reinterpret_cast<const V *>(x + row * cols);
    const V *r_row = reinterpret_cast<const V *>(residual + row * cols);
    V *h_row = reinterpret_cast<V *>(residual_out + row * cols);
    V *out_row = reinterpret_cast<V *>(out + row * cols);
    const V *w = reinterpret_cast<const V *>(weight);

    float sum_squares = 0.0f;
    for (int64_t i = threadIdx.x; i < vecs; i += blockDim.x) {
        V h = x_row[i];
        if constexpr (WITH_RESIDUAL) {
            const V r = r_row[i];
#pragma unroll
            for (int k = 0; k < N; ++k) h.v[k] = from_float<T>(to_float(h.v[k]) + to_float(r.v[k]));
            h_row[i] = h;
        }
#pragma unroll
        for (int k = 0; k < N; ++k) {
            const float hk = to_float(h.v[k]);
            sum_squares += hk * hk;
        }
    }
    const float inv_rms = rsqrtf(block_sum(sum_squares) / static_cast<float>(cols) + eps);

    const V *h_src = WITH_RESIDUAL ? h_row : x_row;
    for (int64_t i = threadIdx.x; i < vecs; i += blockDim.x) {
        const V h = h_src[i];
        const V wv = w[i];
        V y;
#pragma unroll
        for (int k = 0; k < N; ++k) y.v[k] = from_float<T>(to_float(h.v[k]) * inv_rms * to_float(wv.v[k]));
        out_row[i] = y;
    }
}

}  // namespace isthmus
