// Append of new K/V tokens into the paged cache, with RoPE applied to q (in place) and to the new
// k on the way in. One block per new token; its threads walk (head, pair) for the rotations and
// (head, element) for the value copy.
#pragma once

#include "common.cuh"

namespace isthmus {

// Which new-token rows belong to which sequence: the last b with query_starts[b] <= token.
__device__ __forceinline__ int sequence_of(const int32_t *query_starts, int batch, int token) {
    int lo = 0, hi = batch - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (query_starts[mid] <= token) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// Rotation of pair j of a head: angle = position * position_scale * base^(-2j / head_dim), in
// double because positions reach 1e5 and a float angle would be off by 1e-2 radians there.
__device__ __forceinline__ void rope_angle(int64_t position, float position_scale, float base, int j, int head_dim,
                                           float *cos_out, float *sin_out) {
    const double angle = static_cast<double>(position) * position_scale * pow(static_cast<double>(base), -2.0 * j / head_dim);
    double s, c;
    sincos(angle, &s, &c);
    *cos_out = static_cast<float>(c);
    *sin_out = static_cast<float>(s);
}

// Element indices (within a head) of pair j: (2j, 2j+1) interleaved, (j, j + d/2) NeoX.
__device__ __forceinline__ void rope_pair(int rope_mode, int j, int head_dim, int *a, int *b) {
    const bool neox = rope_mode == 2;
    *a = neox ? j : 2 * j;
    *b = neox ? j + head_dim / 2 : 2 * j + 1;
}

// rope_mode: 0 none, 1 interleaved, 2 NeoX. positions may be NULL (position = cache slot).
template <typename T>
__global__ void attention_append_kernel(T *q, T *k_cache, T *v_cache, const T *__restrict__ k, const T *__restrict__ v,
                                        const int32_t *__restrict__ block_table, const int32_t *__restrict__ cached_lens,
                                        const int32_t *__restrict__ query_starts, const int32_t *__restrict__ positions,
                                        int batch, int max_blocks, int num_blocks, int block_size, int q_heads, int kv_heads,
                                        int head_dim, int rope_mode, float rope_base, float position_scale) {
    const int token = blockIdx.x;
    const int b = sequence_of(query_starts, batch, token);
    const int slot = cached_lens[b] + (token - query_starts[b]);
    // Java checked the table; a stale or foreign one must still not write outside the pool.
    if (slot / block_size >= max_blocks) return;
    const int block = block_table[static_cast<int64_t>(b) * max_blocks + slot / block_size];
    if (block < 0 || block >= num_blocks) return;
    const int64_t position = positions != nullptr ? positions[token] : slot;
    const int64_t cache_row = (static_cast<int64_t>(block) * block_size + slot % block_size) * kv_heads * head_dim;
    const int64_t k_row = static_cast<int64_t>(token) * kv_heads * head_dim;
    const int half = head_dim / 2;

    if (rope_mode != 0) {
        T *q_row = q + static_cast<int64_t>(token) * q_heads * head_dim;
        for (int idx = threadIdx.x; idx < (q_heads + kv_heads) * half; idx += blockDim.x) {
            const int head = idx / half, j = idx % half;
            int ia, ib;
            rope_pair(rope_mode, j, head_dim, &ia, &ib);
            float c, s;
            rope_angle(position, position_scale, rope_base, j, head_dim, &c, &s);
            if (head < q_heads) {
                T *x = q_row + static_cast<int64_t>(head) * head_dim;
                const float x0 = to_float(x[ia]), x1 = to_float(x[ib]);
                x[ia] = from_float<T>(x0 * c - x1 * s);
                x[ib] = from_float<T>(x0 * s + x1 * c);
            } else {
                const int64_t h = static_cast<int64_t>(head - q_heads) * head_dim;
                const float x0 = to_float(k[k_row + h + ia]), x1 = to_float(k[k_row + h + ib]);
                k_cache[cache_row + h + ia] = from_float<T>(x0 * c - x1 * s);
                k_cache[cache_row + h + ib] = from_float<T>(x0 * s + x1 * c);
            }
        }
    } else {
        for (int idx = threadIdx.x; idx < kv_heads * head_dim; idx += blockDim.x) k_cache[cache_row + idx] = k[k_row + idx];
    }
    for (int idx = threadIdx.x; idx < kv_heads * head_dim; idx += blockDim.x) v_cache[cache_row + idx] = v[k_row + idx];
}

}  // namespace isthmus
