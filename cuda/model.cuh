// Device code of the element-wise steps a decoder model needs between the kernel families:
// the embedding lookup, a bias added to every row, and the SwiGLU product (each thread handles
// elements in a grid-stride loop; arithmetic is fp32); and greedy sampling, a row-wise argmax.
#pragma once

#include "common.cuh"

namespace isthmus {

// out[t, :] = table[ids[t], :]; an id outside [0, vocab) gives a NaN row (never an out-of-range read).
template <typename T>
__global__ void embedding_kernel(T *__restrict__ out, const T *__restrict__ table, const int32_t *__restrict__ ids,
                                 int64_t tokens, int64_t vocab, int64_t hidden) {
    const int64_t total = tokens * hidden;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t t = i / hidden, j = i % hidden;
        const int32_t id = ids[t];
        out[i] = (id >= 0 && id < vocab) ? table[id * hidden + j] : from_float<T>(__int_as_float(0x7fffffff));
    }
}

// out[r, c] = x[r, c] + bias[c]; out may be x.
template <typename T>
__global__ void add_bias_kernel(T *out, const T *x, const T *__restrict__ bias, int64_t rows, int64_t cols) {
    const int64_t total = rows * cols;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        out[i] = from_float<T>(to_float(x[i]) + to_float(bias[i % cols]));
}

// out = silu(gate) * up = gate / (1 + exp(-gate)) * up; out may be gate or up.
template <typename T>
__global__ void silu_mul_kernel(T *out, const T *gate, const T *up, int64_t count) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const float g = to_float(gate[i]);
        out[i] = from_float<T>(g / (1.0f + __expf(-g)) * to_float(up[i]));
    }
}

constexpr int kArgmaxThreads = 256;

// Whether (value, index) beats (best, best_index): a larger value, or an equal one at a lower
// index. A NaN value never beats anything.
__device__ __forceinline__ bool beats(float value, long long index, float best, long long best_index) {
    return value > best || (value == best && index < best_index);
}

// out[r] = the column of row r's largest logit, the lowest column on ties; NaNs are ignored and
// a row of nothing but NaN gives 0. One block per row: a strided pass per thread, then a warp
// shuffle and a shared-memory reduction of the (value, index) pairs.
__global__ void __launch_bounds__(kArgmaxThreads) argmax_kernel(int32_t *__restrict__ out, const float *__restrict__ logits,
                                                                 int64_t cols) {
    constexpr long long kNone = 0x7fffffffffffffffLL;
    __shared__ float warp_best[kArgmaxThreads / 32];
    __shared__ long long warp_index[kArgmaxThreads / 32];
    const float *row = logits + static_cast<int64_t>(blockIdx.x) * cols;
    float best = -INFINITY;
    long long index = kNone;
    for (long long c = threadIdx.x; c < cols; c += kArgmaxThreads) {
        const float v = row[c];
        if (beats(v, c, best, index)) {
            best = v;
            index = c;
        }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        const float other = __shfl_down_sync(0xffffffffu, best, offset);
        const long long other_index = __shfl_down_sync(0xffffffffu, index, offset);
        if (beats(other, other_index, best, index)) {
            best = other;
            index = other_index;
        }
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
        warp_best[warp] = best;
        warp_index[warp] = index;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kArgmaxThreads / 32; ++w)
            if (beats(warp_best[w], warp_index[w], best, index)) {
                best = warp_best[w];
                index = warp_index[w];
            }
        out[blockIdx.x] = index == kNone ? 0 : static_cast<int32_t>(index);
    }
}

}  // namespace isthmus
