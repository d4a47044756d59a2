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

// Pairs of the widest head (256) the attention kernels are built for: LongRoPE's factors travel by value.
constexpr int kMaxRopePairs = 128;

// How q and k are rotated (see isthmus_attention_append in native/isthmus.h). llama3_factor 1
// leaves the frequencies unscaled, and the other three llama3 fields are then not read; longrope 0
// leaves them undivided and the longrope fields are then not read.
struct RopeSpec {
    int mode;  // 0 none, 1 interleaved, 2 NeoX
    float base;
    float position_scale;
    float llama3_factor;
    float llama3_low_freq_factor;
    float llama3_high_freq_factor;
    int llama3_original_max_positions;
    int longrope;                      // 1: divide f_j by longrope_factors[set][j] and scale cos, sin
    int longrope_original_max_positions;
    float longrope_attention_factor;
    float longrope_factors[2][kMaxRopePairs];  // [0] short, [1] long (sequences longer than the original maximum)
};

// Frequency of pair j: f = base^(-2j / head_dim), then Llama 3.1's scaling by the wavelength
// w = 2 pi / f: unchanged for w < original_max / high_freq_factor, f / factor for
// w > original_max / low_freq_factor, and between them (1 - s) f / factor + s f with
// s = (original_max / w - low_freq_factor) / (high_freq_factor - low_freq_factor); or LongRoPE's
// f / e_j with e the factor set `set` (0 short, 1 long).
__device__ __forceinline__ double rope_frequency(const RopeSpec &rope, int set, int j, int head_dim) {
    const double f = pow(static_cast<double>(rope.base), -2.0 * j / head_dim);
    if (rope.longrope) return f / rope.longrope_factors[set][j];
    if (rope.llama3_factor == 1.0f) return f;
    const double original_max = rope.llama3_original_max_positions;
    const double low = rope.llama3_low_freq_factor, high = rope.llama3_high_freq_factor;
    const double wavelength = 6.283185307179586 / f;  // 2 pi / f
    if (wavelength < original_max / high) return f;
    if (wavelength > original_max / low) return f / rope.llama3_factor;
    const double smooth = (original_max / wavelength - low) / (high - low);
    return (1.0 - smooth) * f / rope.llama3_factor + smooth * f;
}

// Rotation of pair j of a head: angle = position * position_scale * rope_frequency(j), in double
// because positions reach 1e5 and a float angle would be off by 1e-2 radians there; cos and sin
// times LongRoPE's attention factor when it is on.
__device__ __forceinline__ void rope_angle(int64_t position, const RopeSpec &rope, int set, int j, int head_dim, float *cos_out,
                                           float *sin_out) {
    const double angle = static_cast<double>(position) * rope.position_scale * rope_frequency(rope, set, j, head_dim);
    const double magnitude = rope.longrope ? rope.longrope_attention_factor : 1.0;
    double s, c;
    sincos(angle, &s, &c);
    *cos_out = static_cast<float>(magnitude * c);
    *sin_out = static_cast<float>(magnitude * s);
}

// Element indices (within a head) of pair j: (2j, 2j+1) interleaved, (j, j + d/2) NeoX.
__device__ __forceinline__ void rope_pair(int rope_mode, int j, int head_dim, int *a, int *b) {
    const bool neox = rope_mode == 2;
    *a = neox ? j : 2 * j;
    *b = neox ? j + head_dim / 2 : 2 * j + 1;
}

// positions may be NULL (position = cache slot).
template <typename T>
__global__ void attention_append_kernel(T *q, T *k_cache, T *v_cache, const T *__restrict__ k, const T *__restrict__ v,
                                        const int32_t *__restrict__ block_table, const int32_t *__restrict__ cached_lens,
                                        const int32_t *__restrict__ query_starts, const int32_t *__restrict__ positions,
                                        int batch, int max_blocks, int num_blocks, int block_size, int q_heads, int kv_heads,
                                        int head_dim, RopeSpec rope) {
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
    // LongRoPE's factor set by the sequence's length once this launch's tokens are in.
    const int kv_len = cached_lens[b] + (query_starts[b + 1] - query_starts[b]);
    const int set = kv_len > rope.longrope_original_max_positions ? 1 : 0;

    if (rope.mode != 0) {
        T *q_row = q + static_cast<int64_t>(token) * q_heads * head_dim;
        for (int idx = threadIdx.x; idx < (q_heads + kv_heads) * half; idx += blockDim.x) {
            const int head = idx / half, j = idx % half;
            int ia, ib;
            rope_pair(rope.mode, j, head_dim, &ia, &ib);
            float c, s;
            rope_angle(position, rope, set, j, head_dim, &c, &s);
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
