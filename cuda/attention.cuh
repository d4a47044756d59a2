// Attention of packed new tokens over a paged KV cache, split along the KV length (split-KV,
// "flash-decoding"), with an online softmax in fp32 on CUDA cores.
//
// Grid: x = groups of kRows query rows of one kv head (a row is one (new token, query head) of
// the kv head's GQA group, so the group shares every K/V tile it loads), y = (sequence, kv head),
// z = KV split. Block: kRows warps, one query row per warp. Per KV tile of kTile keys the block
// stages K and V in shared memory; lane j scores key j against its warp's row, the warp keeps the
// running max m, sum l and unnormalised output acc (lane owns elements lane, lane+32, ...):
//   m' = max(m, max_j s_j),  l' = l e^(m-m') + sum_j e^(s_j-m'),  acc' = acc e^(m-m') + sum_j e^(s_j-m') v_j.
// With one split the block writes out = acc / l and lse = m + ln l itself; with several it writes
// f32 partials that attention_merge_kernel folds together. A row with no visible key gets out 0
// and lse -inf.
#pragma once

#include <math.h>

#include <type_traits>

#include "common.cuh"
#include "kv_quant.cuh"

namespace isthmus {

constexpr int kAttentionRows = 4;   // warps (= query rows) per block
constexpr int kAttentionTile = 32;  // keys per shared-memory tile: one per lane

struct AttentionParams {
    void *out;            // [tokens, q_heads, D]
    float *lse;           // [tokens, q_heads] or NULL
    float *partial_out;   // [splits, tokens, q_heads, D] when splits > 1
    float *partial_lse;   // [splits, tokens, q_heads]
    int32_t *split_counts;  // [tokens, q_heads], zeros, when splits > 1: the decode kernel's blocks done per row group
    const void *q;        // [tokens, q_heads, D]
    const void *k_cache;  // [num_blocks, block_size, kv_heads, D] of T, or of a quantized code (cuda/kv_quant.cuh)
    const void *v_cache;
    const float *k_scales;  // of a quantized cache: [num_blocks, block_size, kv_heads] (int8), [kv_heads] (fp8)
    const float *v_scales;
    const int32_t *block_table;   // [batch, max_blocks]
    const int32_t *cached_lens;   // [batch]
    const int32_t *query_starts;  // [batch + 1]
    int total_tokens, max_blocks, num_blocks, block_size, q_heads, kv_heads;
    int splits, split_chunk;
    float scale, softcap;
    int window_left, window_right;  // -1 = unlimited; causal arrives as window_right = 0
};

// Shared-memory row stride of the K tile: one element (f32) or two (16-bit) of padding makes it an
// odd number of 4-byte words, so the 32 lanes reading 32 different keys hit 32 different banks.
template <typename T, int D> constexpr int k_stride() { return D + (sizeof(T) == 4 ? 1 : 2); }

template <typename T, int D> constexpr size_t attention_smem_bytes() {
    return sizeof(float) * kAttentionRows * D + sizeof(T) * kAttentionTile * (k_stride<T, D>() + D);
}

// q . k over D with q in f32 (already times the softmax scale) and k in the storage type.
template <typename T, int D> __device__ __forceinline__ float dot_row(const float *q, const T *k) {
    float sum = 0.0f;
    if constexpr (sizeof(T) == 2) {
        using T2 = typename std::conditional<std::is_same<T, __half>::value, __half2, __nv_bfloat162>::type;
        const T2 *k2 = reinterpret_cast<const T2 *>(k);
#pragma unroll 8
        for (int d = 0; d < D / 2; ++d) {
            const T2 kv = k2[d];
            sum = fmaf(q[2 * d], to_float(kv.x), sum);
            sum = fmaf(q[2 * d + 1], to_float(kv.y), sum);
        }
    } else {
#pragma unroll 8
        for (int d = 0; d < D; ++d) sum = fmaf(q[d], to_float(k[d]), sum);
    }
    return sum;
}

// What a split-KV block of either decode kernel works on: grid y names the sequence and kv head,
// z the piece of the KV length, x the group of `rows_per_block` query rows (the new tokens times
// the GQA group) that the block takes.
struct DecodeBlock {
    int b, kv_head, split, group, q_begin, new_tokens, rows, first_row, cached, kv_len;

    __device__ __forceinline__ DecodeBlock(const AttentionParams &p, int rows_per_block)
        : b(blockIdx.y / p.kv_heads), kv_head(blockIdx.y % p.kv_heads), split(blockIdx.z), group(p.q_heads / p.kv_heads),
          q_begin(p.query_starts[b]), new_tokens(p.query_starts[b + 1] - q_begin), rows(new_tokens * group),
          first_row(blockIdx.x * rows_per_block), cached(p.cached_lens[b]), kv_len(cached + new_tokens) {}

    // True when the block has no row of this sequence (uniform across the block: return before any barrier).
    __device__ __forceinline__ bool idle() const { return first_row >= rows; }
};

// The keys [lo, hi) that any of the new tokens first..last (indices within the sequence) can see,
// within piece `split` of the KV length. 64-bit where a window of up to 2^31 keys could overflow.
__device__ __forceinline__ void visible_key_range(const AttentionParams &p, int cached, int kv_len, int first, int last,
                                                  int split, int *lo, int *hi) {
    int64_t begin = p.window_left >= 0 ? max(static_cast<int64_t>(0), static_cast<int64_t>(cached) + first - p.window_left) : 0;
    int64_t end = kv_len;
    if (p.window_right >= 0) end = min(end, static_cast<int64_t>(cached) + last + p.window_right + 1);
    begin = max(begin, min(static_cast<int64_t>(split) * p.split_chunk, static_cast<int64_t>(kv_len)));
    end = min(end, static_cast<int64_t>(split + 1) * p.split_chunk);
    *lo = static_cast<int>(begin);
    *hi = static_cast<int>(end);
}

// Element offset of key t's row for kv_head in the paged cache, or -1 when the table holds no
// block inside the pool for it (Java checked the table; this keeps a bad one from faulting).
template <int D>
__device__ __forceinline__ int64_t cache_offset(const AttentionParams &p, const int32_t *table, int t, int kv_head) {
    if (t / p.block_size >= p.max_blocks) return -1;
    const int block = table[t / p.block_size];
    if (block < 0 || block >= p.num_blocks) return -1;
    return ((static_cast<int64_t>(block) * p.block_size + t % p.block_size) * p.kv_heads + kv_head) * D;
}

// Whether the query at `position` sees key t (t already inside [lo, hi)): the window test written
// as differences so that a window of up to 2^31 keys cannot overflow.
__device__ __forceinline__ bool key_visible(const AttentionParams &p, int t, int position) {
    return (p.window_left < 0 || position - t <= p.window_left) && (p.window_right < 0 || t - position <= p.window_right);
}

// One staged chunk of N elements into the tiles: V's row start is 16-byte aligned, K's padded row
// keeps 4-byte alignment only (stored word by word).
template <typename T, int N>
__device__ __forceinline__ void stage_chunk(T *k_dst, T *v_dst, const Vec<T, N> &k, const Vec<T, N> &v) {
    constexpr int kWords = N * sizeof(T) / 4;
    const uint4 *v_pieces = reinterpret_cast<const uint4 *>(&v);
#pragma unroll
    for (int w = 0; w < kWords / 4; ++w) reinterpret_cast<uint4 *>(v_dst)[w] = v_pieces[w];
    const uint32_t *words = reinterpret_cast<const uint32_t *>(&k);
#pragma unroll
    for (int w = 0; w < kWords; ++w) reinterpret_cast<uint32_t *>(k_dst)[w] = words[w];
}

// At least 2 blocks per SM: left to itself ptxas held the f32 / head_dim 64 instantiation to 64
// registers and spilled. C is the cache's element: T, or a quantized code that is dequantized to T
// on its way into shared memory (the tiles hold T either way).
template <typename T, int D, typename C = T>
__global__ void __launch_bounds__(kAttentionRows * 32, 2) attention_kernel(const AttentionParams p) {
    constexpr int kStride = k_stride<T, D>();
    constexpr int kPerLane = (D + 31) / 32;
    constexpr int kVec = 16 / sizeof(C);  // elements per 16-byte load; D * sizeof(C) is a multiple of 16
    constexpr int kChunks = D / kVec;     // 16-byte loads per key row
    constexpr int kThreads = kAttentionRows * 32;
    constexpr int kLoads = (kAttentionTile * kChunks + kThreads - 1) / kThreads;  // per thread per tile, K and V each
    static_assert(D % kVec == 0, "head_dim must fill whole 16-byte vectors");
    extern __shared__ __align__(16) unsigned char smem[];
    float *q_s = reinterpret_cast<float *>(smem);                              // [kRows][D]
    T *v_s = reinterpret_cast<T *>(q_s + kAttentionRows * D);                  // [kTile][D]
    T *k_s = v_s + kAttentionTile * D;                                         // [kTile][kStride]

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const DecodeBlock blk(p, kAttentionRows);
    if (blk.idle()) return;
    const int b = blk.b, kv_head = blk.kv_head, split = blk.split, group = blk.group, q_begin = blk.q_begin;
    const int rows = blk.rows, first_row = blk.first_row, cached = blk.cached, kv_len = blk.kv_len;

    const int row = first_row + warp;
    const bool active = row < rows;
    const int token = row / group;              // new-token index within the sequence
    const int head = kv_head * group + row % group;
    const int position = cached + token;
    const int64_t q_row = static_cast<int64_t>(q_begin + token) * p.q_heads + head;  // (token, head) row index

    // Stage this warp's query row, times the scale.
    const T *q = static_cast<const T *>(p.q);
    for (int d = lane; d < D; d += 32) q_s[warp * D + d] = active ? to_float(q[q_row * D + d]) * p.scale : 0.0f;

    // Keys any row of this block can see, within this split's piece of the KV length.
    const int last_token = (min(first_row + kAttentionRows, rows) - 1) / group;
    int lo, hi;
    visible_key_range(p, cached, kv_len, first_row / group, last_token, split, &lo, &hi);

    const C *k_cache = static_cast<const C *>(p.k_cache);
    const C *v_cache = static_cast<const C *>(p.v_cache);
    const int32_t *table = p.block_table + static_cast<int64_t>(b) * p.max_blocks;
    // fp8: one scale per kv head; int8: one per key, fetched with the key.
    const float k_head_scale = is_quantized<C>() && !has_token_scales<C>() ? p.k_scales[kv_head] : 1.0f;
    const float v_head_scale = is_quantized<C>() && !has_token_scales<C>() ? p.v_scales[kv_head] : 1.0f;
    float m = -INFINITY, l = 0.0f;
    float acc[kPerLane];
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) acc[c] = 0.0f;

    // K/V tiles go global -> registers -> shared memory: the next tile's loads are issued right
    // after this one is staged, so they are in flight while the warps do this tile's arithmetic.
    Vec<C, kVec> k_next[kLoads], v_next[kLoads];
    float k_scale_next[kLoads], v_scale_next[kLoads];  // what the loaded codes are multiplied by
    auto fetch = [&](int tile) {
#pragma unroll
        for (int n = 0; n < kLoads; ++n) {
            const int i = threadIdx.x + n * kThreads;
            const int key = i / kChunks, chunk = i % kChunks;
            const int t = tile + key;
            const int64_t offset = i < kAttentionTile * kChunks && t < hi ? cache_offset<D>(p, table, t, kv_head) : -1;
            k_scale_next[n] = k_head_scale;
            v_scale_next[n] = v_head_scale;
            if (offset >= 0) {
                k_next[n] = *reinterpret_cast<const Vec<C, kVec> *>(k_cache + offset + chunk * kVec);
                v_next[n] = *reinterpret_cast<const Vec<C, kVec> *>(v_cache + offset + chunk * kVec);
                if constexpr (has_token_scales<C>()) {  // the scale layout is the cache's without head_dim
                    k_scale_next[n] = p.k_scales[offset / D];
                    v_scale_next[n] = p.v_scales[offset / D];
                }
            } else {  // masked keys must still hold finite values: p = 0 times v must be 0
#pragma unroll
                for (int e = 0; e < kVec; ++e) k_next[n].v[e] = v_next[n].v[e] = C{};
            }
        }
    };
    if (lo < hi) fetch(lo);

    for (int tile = lo; tile < hi; tile += kAttentionTile) {
        __syncthreads();  // the previous tile is consumed (and q_s written, on the first pass)
#pragma unroll
        for (int n = 0; n < kLoads; ++n) {
            const int i = threadIdx.x + n * kThreads;
            if (i >= kAttentionTile * kChunks) break;
            const int key = i / kChunks, chunk = i % kChunks;
            if constexpr (is_quantized<C>()) {
                Vec<T, kVec> k_tile, v_tile;  // the chunk dequantized to T
#pragma unroll
                for (int e = 0; e < kVec; ++e) {
                    k_tile.v[e] = from_float<T>(dequantize(k_next[n].v[e], k_scale_next[n]));
                    v_tile.v[e] = from_float<T>(dequantize(v_next[n].v[e], v_scale_next[n]));
                }
                stage_chunk<T, kVec>(k_s + key * kStride + chunk * kVec, v_s + key * D + chunk * kVec, k_tile, v_tile);
            } else {
                stage_chunk<T, kVec>(k_s + key * kStride + chunk * kVec, v_s + key * D + chunk * kVec, k_next[n], v_next[n]);
            }
        }
        __syncthreads();
        if (tile + kAttentionTile < hi) fetch(tile + kAttentionTile);
        if (!active) continue;

        const int t = tile + lane;
        const bool visible = t < hi && key_visible(p, t, position);
        float s = dot_row<T, D>(q_s + warp * D, k_s + lane * kStride);
        if (p.softcap > 0.0f) s = p.softcap * tanhf(s / p.softcap);
        if (!visible) s = -INFINITY;
        const float m_new = fmaxf(m, warp_max(s));
        if (m_new == -INFINITY) continue;  // nothing visible yet (warp-uniform)
        const float prob = visible ? expf(s - m_new) : 0.0f;
        const float alpha = expf(m - m_new);  // 0 while m is still -inf
        l = l * alpha + warp_sum(prob);
#pragma unroll
        for (int c = 0; c < kPerLane; ++c) acc[c] *= alpha;
#pragma unroll 4
        for (int j = 0; j < kAttentionTile; ++j) {
            const float pj = __shfl_sync(0xffffffffu, prob, j);
#pragma unroll
            for (int c = 0; c < kPerLane; ++c) {
                const int d = lane + 32 * c;
                if (d < D) acc[c] = fmaf(pj, to_float(v_s[j * D + d]), acc[c]);
            }
        }
        m = m_new;
    }
    if (!active) return;

    const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
    const float row_lse = l > 0.0f ? m + logf(l) : -INFINITY;
    if (p.splits == 1) {
        T *out = static_cast<T *>(p.out) + q_row * D;
#pragma unroll
        for (int c = 0; c < kPerLane; ++c) {
            const int d = lane + 32 * c;
            if (d < D) out[d] = from_float<T>(acc[c] * inv_l);
        }
        if (p.lse != nullptr && lane == 0) p.lse[q_row] = row_lse;
    } else {
        const int64_t part_row = static_cast<int64_t>(split) * p.total_tokens * p.q_heads + q_row;
        float *out = p.partial_out + part_row * D;
#pragma unroll
        for (int c = 0; c < kPerLane; ++c) {
            const int d = lane + 32 * c;
            if (d < D) out[d] = acc[c] * inv_l;
        }
        if (lane == 0) p.partial_lse[part_row] = row_lse;
    }
}

}  // namespace isthmus
