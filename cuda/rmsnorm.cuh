// RMSNorm over rows with the residual add fused.
//
// rmsnorm_kernel keeps the row in registers: each thread of a row loads its RMSNORM_VECS vectors of
// N elements (x, and residual) before using any, forms h, stores it (residual_out) and sums h^2;
// after the row's reduction it scales the same registers. x, residual, h and out each cross
// memory once, which is the byte floor. With KEEP_WEIGHT (a large grid, rows of up to 512
// threads) a block takes several rows in turn and each thread holds its vectors of the weight in
// registers across them, so the weight leaves L2 once per block, not once per row; else the
// weight is read per row, after the reduction (where x and residual are dead, so 1024 threads
// fit in 64 registers), and stays in L2. A row is one warp (four rows a block, no barrier) when
// it fits in 32 threads, else one block of up to 1024.
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
// Rows of up to RMSNORM_KEEP_THREADS threads keep the weight in registers and take up to
// RMSNORM_MAX_BLOCK_ROWS rows a block, as many as leave RMSNORM_MIN_BLOCKS_PER_SM blocks for
// every SM (the launcher): the weight is then read once per block instead of once per row.
constexpr int RMSNORM_KEEP_THREADS = 512;
constexpr int RMSNORM_MAX_BLOCK_ROWS = 8;
constexpr int RMSNORM_MIN_BLOCKS_PER_SM = 4;

// KEEP_WEIGHT: the thread's slice of the weight stays in registers across the block's rows (at
// most RMSNORM_KEEP_THREADS threads a row, whose register budget holds it without spilling);
// else it is read again for each row, after the reduction, when x and residual are dead.
template <typename T, int N, bool WITH_RESIDUAL, bool KEEP_WEIGHT>
__global__ void __launch_bounds__(KEEP_WEIGHT ? RMSNORM_KEEP_THREADS : 1024)
rmsnorm_kernel(T *out, T *residual_out, const T *x, const T *residual, const T *__restrict__ weight,
               int64_t rows, int64_t cols, float eps, int block_rows) {
    using V = Vec<T, N>;
    const int vecs = static_cast<int>(cols / N);  // at most RMSNORM_VECS * 1024 (the launcher)

    // Thread t holds vectors t, t + blockDim.x, ...: every load instruction of a warp is coalesced.
    const V *w = reinterpret_cast<const V *>(weight);
    V kept[KEEP_WEIGHT ? RMSNORM_VECS : 1];
    if constexpr (KEEP_WEIGHT) {
#pragma unroll
        for (int j = 0; j < RMSNORM_VECS; ++j) {
            const int i = threadIdx.x + j * blockDim.x;
            if (i < vecs) kept[j] = w[i];
        }
    }

    // The block's rows: block_rows in turn for each of its blockDim.y row slots (a warp each, or
    // the whole block). A row past the end ends the slot's loop: for a block-wide row that is the
    // whole block at once, so no thread misses a barrier another one waits at.
    // Without KEEP_WEIGHT a block has one row a slot (the launcher), known here, so that the
    // loop folds away and its registers stay free.
    const int slot_rows = KEEP_WEIGHT ? block_rows : 1;
    int64_t row = static_cast<int64_t>(blockIdx.x) * slot_rows * blockDim.y + threadIdx.y;
    for (int k = 0; k < slot_rows && row < rows; ++k, row += blockDim.y) {
        const V *x_row = reinterpret_cast<const V *>(x + row * cols);
        const V *r_row = reinterpret_cast<const V *>(residual + row * cols);
        V *h_row = reinterpret_cast<V *>(residual_out + row * cols);
        V *out_row = reinterpret_cast<V *>(out + row * cols);
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
                    for (int e = 0; e < N; ++e) h[j].v[e] = from_float<T>(to_float(h[j].v[e]) + to_float(r[j].v[e]));
                    h_row[i] = h[j];
                }
#pragma unroll
                for (int e = 0; e < N; ++e) {
                    const float he = to_float(h[j].v[e]);  // the rounded h, as stored
                    sum_squares += he * he;
                }
            }
        }
        const float total = blockDim.x == 32 ? warp_sum(sum_squares) : block_sum(sum_squares);
        const float inv_rms = rsqrtf(total / static_cast<float>(cols) + eps);
#pragma unroll
        for (int j = 0; j < RMSNORM_VECS; ++j) {
            const int i = threadIdx.x + j * blockDim.x;
            if (i < vecs) {
                const V wv = KEEP_WEIGHT ? kept[KEEP_WEIGHT ? j : 0] : w[i];
                V y;
#pragma unroll
                for (int e = 0; e < N; ++e) y.v[e] = from_float<T>(to_float(h[j].v[e]) * inv_rms * to_float(wv.v[e]));
                out_row[i] = y;
            }
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
