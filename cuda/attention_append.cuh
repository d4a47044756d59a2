// Append of new K/V tokens into the paged cache, with RoPE applied to q (in place) and to the new
// k on the way in. One block per new token; its threads walk (head, pair) for the rotations and
// (head, element) for the value copy. A quantized cache (cuda/kv_quant.cuh) takes one warp per
// (token, kv head) instead: the row's largest magnitude is a warp reduction.
#pragma once

#include "common.cuh"
#include "kv_quant.cuh"

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

// The cache row (block * block_size + slot) that new token `token` goes to, and its RoPE position
// (positions may be NULL: position = cache slot); -1 when the table holds no block inside the pool
// for it (Java checked the table; a stale or foreign one must still not write outside the pool).
__device__ __forceinline__ int64_t append_row(const int32_t *block_table, const int32_t *cached_lens, const int32_t *query_starts,
                                              const int32_t *positions, int batch, int max_blocks, int num_blocks, int block_size,
                                              int token, int64_t *position) {
    const int b = sequence_of(query_starts, batch, token);
    const int slot = cached_lens[b] + (token - query_starts[b]);
    *position = positions != nullptr ? positions[token] : slot;
    if (slot / block_size >= max_blocks) return -1;
    const int block = block_table[static_cast<int64_t>(b) * max_blocks + slot / block_size];
    if (block < 0 || block >= num_blocks) return -1;
    return static_cast<int64_t>(block) * block_size + slot % block_size;
}

// LongRoPE's factor set for new token `token`: the long one (1) when its sequence, with this
// launch's tokens in, is longer than the original context; else (and without LongRoPE) 0.
__device__ __forceinline__ int longrope_set(const RopeSpec &rope, const int32_t *cached_lens, const int32_t *query_starts, int batch,
                                            int token) {
    const int b = sequence_of(query_starts, batch, token);
    const int kv_len = cached_lens[b] + (query_starts[b + 1] - query_starts[b]);
    return kv_len > rope.longrope_original_max_positions ? 1 : 0;
}

// Rotates pair j of the head at x (f32 in, f32 out) by the angle of `position` (LongRoPE factor set `set`).
__device__ __forceinline__ void rope_rotate(const RopeSpec &rope, int64_t position, int set, int j, int head_dim, float *x0, float *x1) {
    float c, s;
    rope_angle(position, rope, set, j, head_dim, &c, &s);
    const float a = *x0, b = *x1;
    *x0 = a * c - b * s;
    *x1 = a * s + b * c;
}

template <typename T>
__global__ void attention_append_kernel(T *q, T *k_cache, T *v_cache, const T *__restrict__ k, const T *__restrict__ v,
                                        const int32_t *__restrict__ block_table, const int32_t *__restrict__ cached_lens,
                                        const int32_t *__restrict__ query_starts, const int32_t *__restrict__ positions,
                                        int batch, int max_blocks, int num_blocks, int block_size, int q_heads, int kv_heads,
                                        int head_dim, RopeSpec rope) {
    const int token = blockIdx.x;
    int64_t position;
    const int64_t row = append_row(block_table, cached_lens, query_starts, positions, batch, max_blocks, num_blocks, block_size, token,
                                   &position);
    if (row < 0) return;
    const int64_t cache_row = row * kv_heads * head_dim;
    const int64_t k_row = static_cast<int64_t>(token) * kv_heads * head_dim;
    const int half = head_dim / 2;
    const int set = longrope_set(rope, cached_lens, query_starts, batch, token);

    if (rope.mode != 0) {
        T *q_row = q + static_cast<int64_t>(token) * q_heads * head_dim;
        for (int idx = threadIdx.x; idx < (q_heads + kv_heads) * half; idx += blockDim.x) {
            const int head = idx / half, j = idx % half;
            int ia, ib;
            rope_pair(rope.mode, j, head_dim, &ia, &ib);
            if (head < q_heads) {
                T *x = q_row + static_cast<int64_t>(head) * head_dim;
                float x0 = to_float(x[ia]), x1 = to_float(x[ib]);
                rope_rotate(rope, position, set, j, head_dim, &x0, &x1);
                x[ia] = from_float<T>(x0);
                x[ib] = from_float<T>(x1);
            } else {
                const int64_t h = static_cast<int64_t>(head - q_heads) * head_dim;
                float x0 = to_float(k[k_row + h + ia]), x1 = to_float(k[k_row + h + ib]);
                rope_rotate(rope, position, set, j, head_dim, &x0, &x1);
                k_cache[cache_row + h + ia] = from_float<T>(x0);
                k_cache[cache_row + h + ib] = from_float<T>(x1);
            }
        }
    } else {
        for (int idx = threadIdx.x; idx < kv_heads * head_dim; idx += blockDim.x) k_cache[cache_row + idx] = k[k_row + idx];
    }
    for (int idx = threadIdx.x; idx < kv_heads * head_dim; idx += blockDim.x) v_cache[cache_row + idx] = v[k_row + idx];
}


constexpr int kAppendMaxPerLane = 8;  // head_dim <= 256: a lane keeps 8 elements of a row

// One (token, kv head) row of k or v into the cache as codes of C: the lane's elements x[i] are
// elements lane + 32 i of the row (for k already rotated, in f32: the codes are taken from the
// rotated value, not from it rounded to T first). int8: s = max|x| / 127 over the row, written to
// row_scale; fp8: s is the kv head's fixed scale.
template <typename C>
__device__ __forceinline__ void store_quantized_row(C *dst, float *row_scale, const float (&x)[kAppendMaxPerLane], int head_dim,
                                                    float fixed_scale, int lane) {
    float scale = fixed_scale;
    if constexpr (has_token_scales<C>()) {
        float max_abs = 0.0f;
#pragma unroll
        for (int i = 0; i < kAppendMaxPerLane; ++i)
            if (lane + 32 * i < head_dim) max_abs = fmaxf(max_abs, fabsf(x[i]));
        scale = int8_scale(warp_max(max_abs));
        if (lane == 0) *row_scale = scale;
    }
#pragma unroll
    for (int i = 0; i < kAppendMaxPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d >= head_dim) continue;
        if constexpr (has_token_scales<C>())
            dst[d] = quantize_int8(x[i], scale);
        else
            dst[d] = Fp8E4m3{float_to_e4m3(x[i] / scale)};
    }
}

// The append into a cache of C = int8_t or Fp8E4m3 (k_scales / v_scales: see cuda/kv_quant.cuh).
// q is rotated in place as in attention_append_kernel; each warp then takes kv heads warp, warp +
// warps, ...: it rotates k in f32 and quantizes k and v row by row (each lane rotates the pairs of its own elements, so a pair is
// rotated twice, once in each of its lanes, and no exchange is needed).
template <typename T, typename C>
__global__ void attention_append_quantized_kernel(T *q, C *k_cache, C *v_cache, float *k_scales, float *v_scales,
                                                  const T *__restrict__ k, const T *__restrict__ v,
                                                  const int32_t *__restrict__ block_table, const int32_t *__restrict__ cached_lens,
                                                  const int32_t *__restrict__ query_starts, const int32_t *__restrict__ positions,
                                                  int batch, int max_blocks, int num_blocks, int block_size, int q_heads,
                                                  int kv_heads, int head_dim, RopeSpec rope) {
    const int token = blockIdx.x;
    int64_t position;
    const int64_t cache_row = append_row(block_table, cached_lens, query_starts, positions, batch, max_blocks, num_blocks, block_size,
                                         token, &position);
    if (cache_row < 0) return;
    const int half = head_dim / 2;
    const int set = longrope_set(rope, cached_lens, query_starts, batch, token);

    if (rope.mode != 0) {
        T *q_row = q + static_cast<int64_t>(token) * q_heads * head_dim;
        for (int idx = threadIdx.x; idx < q_heads * half; idx += blockDim.x) {
            int ia, ib;
            rope_pair(rope.mode, idx % half, head_dim, &ia, &ib);
            T *x = q_row + static_cast<int64_t>(idx / half) * head_dim;
            float x0 = to_float(x[ia]), x1 = to_float(x[ib]);
            rope_rotate(rope, position, set, idx % half, head_dim, &x0, &x1);
            x[ia] = from_float<T>(x0);
            x[ib] = from_float<T>(x1);
        }
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int h = warp; h < kv_heads; h += warps) {
        const int64_t in_row = (static_cast<int64_t>(token) * kv_heads + h) * head_dim;
        const int64_t out_row = (cache_row * kv_heads + h) * head_dim;
        const int64_t scale_at = scale_index<C>(cache_row, h, kv_heads);
        float x[kAppendMaxPerLane];
#pragma unroll
        for (int i = 0; i < kAppendMaxPerLane; ++i) {
            const int d = lane + 32 * i;
            x[i] = 0.0f;
            if (d >= head_dim) continue;
            x[i] = to_float(k[in_row + d]);
            if (rope.mode == 0) continue;
            // d's pair j and partner: (2j, 2j + 1) interleaved, (j, j + d/2) NeoX.
            const bool neox = rope.mode == 2;
            const int j = neox ? d % half : d / 2;
            const bool first = neox ? d < half : d % 2 == 0;
            const int partner = neox ? (first ? d + half : d - half) : d ^ 1;
            float x0 = first ? x[i] : to_float(k[in_row + partner]), x1 = first ? to_float(k[in_row + partner]) : x[i];
            rope_rotate(rope, position, set, j, head_dim, &x0, &x1);
            x[i] = first ? x0 : x1;
        }
        store_quantized_row<C>(k_cache + out_row, has_token_scales<C>() ? k_scales + scale_at : nullptr, x, head_dim,
                               has_token_scales<C>() ? 0.0f : k_scales[scale_at], lane);
#pragma unroll
        for (int i = 0; i < kAppendMaxPerLane; ++i) x[i] = lane + 32 * i < head_dim ? to_float(v[in_row + lane + 32 * i]) : 0.0f;
        store_quantized_row<C>(v_cache + out_row, has_token_scales<C>() ? v_scales + scale_at : nullptr, x, head_dim,
                               has_token_scales<C>() ? 0.0f : v_scales[scale_at], lane);
    }
}

}  // namespace isthmus
