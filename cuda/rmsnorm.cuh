// RMSNorm over rows with the residual add fused.
//
// rmsnorm_kernel keeps the row in registers: each thread of a row loads its RMSNORM_VECS vectors of
// N elements (x, and residual) before using any, forms h, stores it (residual_out) and sums h^2;
// after the row's reduction it scales the same registers. x, residual, h and out each cross
// memory once, which is the byte floor; weight is read per row, after the reduction (where
// x and residual are dead, so 1024 threads fit in 64 registers), and stays in L2. A row is one warp
// (four rows a block, no barrier) when it fits in 32 threads, else one block of up to 1024.
//
// rmsnorm_two_pass_kernel takes the rows too wide for that: pass 2 re-reads h, which the same
// block has just written (an L2 hit at these widths).
#pragma once

#include "common.cuh"

namespace isthmus {

// Vectors per thread of the register-resident kernel: 4 keeps 64 bytes of each operand in flight
// per thread and fits 1024 threads in 64 registers.
constexpr int RMSNORM_VECS = 4;
constexpr int RMSNORM_WARP_ROWS = 4;  // rows per block when a row is one warp

template <typename T, int N, bool WITH_RESIDUAL>
__global__ void __launch_bounds__(1024)
rmsnorm_kernel(T *out, T *residual_out, const T *x, const T *residual, const T *__restrict__ weight,
               int64_t rows, int64_t cols, float eps) {
    using V = Vec<T, N>;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
    if (row >= rows) return;  // only with a warp per row, which has no block barrier
    const int vecs = static_cast<int>(cols / N);  // at most RMSNORM_VECS * 1024 (the launcher)
    const V *x_row = reinterpret_cast<const V *>(x + row * cols);
    const V *r_row = reinterpret_cast<const V *>(residual + row * cols);
    V *h_row = reinterpret_cast<V *>(residual_out + row * cols);
    V *out_row = reinterpret_cast<V *>(out + row * cols);
    const V *w = reinterpret_cast<const V *>(weight);

    // Thread t holds vectors t, t + blockDim.x, ...: every load instruction of a warp is coalesced.
    V h[RMSNORM_VECS], r[RMSNORM_VECS];
#pragma unroll
    for (int j = 0; j < RMSNORM_VECS; ++j) {
        const int i = threadIdx.x + j * blockDim.x;
        if (i < vecs) {
            h[j] = x_row[i];
            if constexpr (WITH_RESIDUAL) r[j] = r_row[i];
        }
    }
    float sum_squares = 0.0f;
#pragma unroll
    for (int j = 0; j < RMSNORM_VECS; ++j) {
        const int i = threadIdx.x + j * blockDim.x;
        if (i < vecs) {
            if constexpr (WITH_RESIDUAL) {
#pragma unroll
                for (int k = 0; k < N; ++k) h[j].v[k] = from_float<T>(to_float(h[j].v[k]) + to_float(r[j].v[k]));
                h_row[i] = h[j];
            }
#pragma unroll
            for (int k = 0; k < N; ++k) {
                const float hk = to_float(h[j].v[k]);  // the rounded h, as stored
                sum_squares += hk * hk;
            }
        }
    }
    const float total = blockDim.x == 32 ? warp_sum(sum_squares) : block_sum(sum_squares);
    const float inv_rms = rsqrtf(total / static_cast<float>(cols) + eps);
#pragma unroll
    for (int j = 0; j < RMSNORM_VECS; ++j) {
        const int i = threadIdx.x + j * blockDim.x;
        if (i < vecs) {
            const V wv = w[i];  // the same for every row: from L2
            V y;
#pragma unroll
            for (int k = 0; k < N; ++k) y.v[k] = from_float<T>(to_float(h[j].v[k]) * inv_rms * to_float(wv.v[k]));
            out_row[i] = y;
        }
    }
}

template <typename T, int N, bool WITH_RESIDUAL>
__global__ void rmsnorm_two_pass_kernel(T *out, T *residual_out, const T *x, const T *residual,
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
