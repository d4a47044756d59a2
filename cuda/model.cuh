// Device code of the element-wise steps a decoder model needs between the kernel families:
// the embedding lookup, a bias added to every row, and the SwiGLU product. Each thread handles
// elements in a grid-stride loop; arithmetic is fp32.
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

}  // namespace isthmus
