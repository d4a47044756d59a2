// Tiled prefill attention on tensor cores (nvcuda::wmma, f16/bf16 in, f32 accumulate) with an
// online softmax, for batches with many new tokens per sequence. Same math, masks, split and
// outputs as attention_kernel (cuda/attention.cuh), which stays the path for decode, for f32
// inputs and for head_dim 256 (whose tiles would not fit in shared memory here).
//
// Grid: x = tiles of kPrefillRows new tokens, y = (sequence, query head), z = KV split.
// Block: 4 warps, each owning 16 query rows. Per KV tile of kPrefillKeys keys:
//   S = Q K^T (wmma, f32) -> shared memory; per row (two lanes per row, 32 columns each):
//   mask, scale, soft-cap, m' = max(m, max S), P = e^(S - m') (rounded to the input type),
//   l' = l e^(m - m') + sum P, O *= e^(m - m') (O lives in shared memory in f32);
//   O += P V (wmma). At the end out = O / l, lse = m + ln l.
#pragma once

#include <math.h>
#include <mma.h>

#include "attention.cuh"
#include "common.cuh"

namespace isthmus {

constexpr int kPrefillRows = 64;   // query rows per block (4 warps x 16)
constexpr int kPrefillKeys = 64;   // keys per tile
constexpr int kPrefillWarps = 4;

// Shared-memory layout in elements; every leading dimension keeps wmma's 32-byte alignment of
// fragment pointers (16-row and 16-column offsets) and breaks the worst bank conflicts.
template <typename T, int D> struct PrefillLayout {
    static constexpr int kLdT = D + 8;                 // Q, K, V rows (T)
    static constexpr int kLdS = kPrefillKeys + 4;      // scores (f32)
    static constexpr int kLdP = kPrefillKeys + 8;      // probabilities (T)
    static constexpr int kLdO = D + 4;                 // output accumulator (f32)
    static constexpr size_t kQ = 0;
    static constexpr size_t kK = kQ + sizeof(T) * kPrefillRows * kLdT;
    static constexpr size_t kV = kK + sizeof(T) * kPrefillKeys * kLdT;
    static constexpr size_t kS = kV + sizeof(T) * kPrefillKeys * kLdT;
    static constexpr size_t kP = kS + sizeof(float) * kPrefillRows * kLdS;
    static constexpr size_t kO = kP + sizeof(T) * kPrefillRows * kLdP;
    static constexpr size_t kBytes = kO + sizeof(float) * kPrefillRows * kLdO;
};

template <typename T, int D>
__global__ void __launch_bounds__(kPrefillWarps * 32) attention_prefill_kernel(const AttentionParams p) {
    using namespace nvcuda;
    using L = PrefillLayout<T, D>;
    constexpr int kVec = 16 / sizeof(T);
    constexpr int kChunks = D / kVec;
    static_assert(D % 16 == 0, "head_dim must be a multiple of the 16-wide wmma tile");
    // wmma wants 32-byte aligned fragment pointers; every offset below is a multiple of 32.
    extern __shared__ __align__(128) unsigned char prefill_smem[];
    T *q_s = reinterpret_cast<T *>(prefill_smem + L::kQ);
    T *k_s = reinterpret_cast<T *>(prefill_smem + L::kK);
    T *v_s = reinterpret_cast<T *>(prefill_smem + L::kV);
    float *s_s = reinterpret_cast<float *>(prefill_smem + L::kS);
    T *p_s = reinterpret_cast<T *>(prefill_smem + L::kP);
    float *o_s = reinterpret_cast<float *>(prefill_smem + L::kO);

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int b = blockIdx.y / p.q_heads, head = blockIdx.y % p.q_heads;
    const int kv_head = head / (p.q_heads / p.kv_heads);
    const int split = blockIdx.z;
    const int q_begin = p.query_starts[b];
    const int new_tokens = p.query_starts[b + 1] - q_begin;
    const int first = blockIdx.x * kPrefillRows;  // first new-token index of this block
    if (first >= new_tokens) return;              // uniform, before any barrier
    const int cached = p.cached_lens[b];
    const int kv_len = cached + new_tokens;
    const int last = min(first + kPrefillRows, new_tokens) - 1;

    // Stage Q (unscaled; the scale is applied to S in f32) and zero O.
    const T *q = static_cast<const T *>(p.q);
    for (int i = threadIdx.x; i < kPrefillRows * kChunks; i += blockDim.x) {
        const int r = i / kChunks, c = i % kChunks;
        Vec<T, kVec> x;
        if (first + r <= last) {
            x = *reinterpret_cast<const Vec<T, kVec> *>(q + (static_cast<int64_t>(q_begin + first + r) * p.q_heads + head) * D + c * kVec);
        } else {
#pragma unroll
            for (int e = 0; e < kVec; ++e) x.v[e] = from_float<T>(0.0f);
        }
        *reinterpret_cast<Vec<T, kVec> *>(q_s + r * L::kLdT + c * kVec) = x;
    }
    for (int i = threadIdx.x; i < kPrefillRows * L::kLdO; i += blockDim.x) o_s[i] = 0.0f;

    int lo, hi;
    visible_key_range(p, cached, kv_len, first, last, split, &lo, &hi);

    // Row state: lane 2r + h of warp w handles row 16w + r, columns [32h, 32h + 32) of each tile.
    const int row_in_warp = lane / 2, half = lane % 2;
    const int row = warp * 16 + row_in_warp;
    const int position = cached + first + row;
    const bool row_valid = first + row <= last;
    float m = -INFINITY, l = 0.0f;

    const T *k_cache = static_cast<const T *>(p.k_cache);
    const T *v_cache = static_cast<const T *>(p.v_cache);
    const int32_t *table = p.block_table + static_cast<int64_t>(b) * p.max_blocks;

    for (int tile = lo; tile < hi; tile += kPrefillKeys) {
        __syncthreads();  // previous K/V consumed; Q and O staged on the first pass
        for (int i = threadIdx.x; i < kPrefillKeys * kChunks; i += blockDim.x) {
            const int key = i / kChunks, c = i % kChunks;
            const int t = tile + key;
            Vec<T, kVec> kv, vv;
            const int64_t offset = t < hi ? cache_offset<D>(p, table, t, kv_head) : -1;
            if (offset >= 0) {
                kv = *reinterpret_cast<const Vec<T, kVec> *>(k_cache + offset + c * kVec);
                vv = *reinterpret_cast<const Vec<T, kVec> *>(v_cache + offset + c * kVec);
            } else {
#pragma unroll
                for (int e = 0; e < kVec; ++e) kv.v[e] = vv.v[e] = from_float<T>(0.0f);
            }
            *reinterpret_cast<Vec<T, kVec> *>(k_s + key * L::kLdT + c * kVec) = kv;
            *reinterpret_cast<Vec<T, kVec> *>(v_s + key * L::kLdT + c * kVec) = vv;
        }
        __syncthreads();

        // S (this warp's 16 rows x 64 keys) = Q K^T.
        {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kPrefillKeys / 16];
#pragma unroll
            for (int n = 0; n < kPrefillKeys / 16; ++n) wmma::fill_fragment(acc[n], 0.0f);
#pragma unroll
            for (int k = 0; k < D / 16; ++k) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::load_matrix_sync(a, q_s + warp * 16 * L::kLdT + k * 16, L::kLdT);
#pragma unroll
                for (int n = 0; n < kPrefillKeys / 16; ++n) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bt;  // K^T: K rows are its columns
                    wmma::load_matrix_sync(bt, k_s + n * 16 * L::kLdT + k * 16, L::kLdT);
                    wmma::mma_sync(acc[n], a, bt, acc[n]);
                }
            }
#pragma unroll
            for (int n = 0; n < kPrefillKeys / 16; ++n)
                wmma::store_matrix_sync(s_s + warp * 16 * L::kLdS + n * 16, acc[n], L::kLdS, wmma::mem_row_major);
        }
        __syncwarp();

        // Online softmax over this row's 32 columns, the two halves combined through one shuffle.
        float *s_row = s_s + row * L::kLdS + half * 32;
        float tile_max = -INFINITY;
        for (int c = 0; c < 32; ++c) {
            const int t = tile + half * 32 + c;
            float s = s_row[c] * p.scale;
            if (p.softcap > 0.0f) s = p.softcap * tanhf(s / p.softcap);
            const bool visible = row_valid && t < hi && key_visible(p, t, position);
            s = visible ? s : -INFINITY;
            s_row[c] = s;
            tile_max = fmaxf(tile_max, s);
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        const float m_new = fmaxf(m, tile_max);
        // With nothing visible yet (m_new = -inf) every p is 0 and O stays 0: use 0 as the reference.
        const float ref = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = m == -INFINITY ? 0.0f : expf(m - ref);
        float sum = 0.0f;
        T *p_row = p_s + row * L::kLdP + half * 32;
        for (int c = 0; c < 32; ++c) {
            const float e = s_row[c] == -INFINITY ? 0.0f : expf(s_row[c] - ref);
            const T e_t = from_float<T>(e);
            p_row[c] = e_t;
            sum += to_float(e_t);  // l sums exactly the probabilities that multiply V
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * alpha + sum;
        m = m_new;
        float *o_row = o_s + row * L::kLdO;
        for (int d = half; d < D; d += 2) o_row[d] *= alpha;
        __syncwarp();

        // O (16 rows x D) += P V.
#pragma unroll
        for (int n = 0; n < D / 16; ++n) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
            wmma::load_matrix_sync(o, o_s + warp * 16 * L::kLdO + n * 16, L::kLdO, wmma::mem_row_major);
#pragma unroll
            for (int k = 0; k < kPrefillKeys / 16; ++k) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> v;
                wmma::load_matrix_sync(a, p_s + warp * 16 * L::kLdP + k * 16, L::kLdP);
                wmma::load_matrix_sync(v, v_s + k * 16 * L::kLdT + n * 16, L::kLdT);
                wmma::mma_sync(o, a, v, o);
            }
            wmma::store_matrix_sync(o_s + warp * 16 * L::kLdO + n * 16, o, L::kLdO, wmma::mem_row_major);
        }
        __syncwarp();
    }
    __syncthreads();  // O's zero fill is visible even when no tile ran
    if (!row_valid) return;

    const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
    const float row_lse = l > 0.0f ? m + logf(l) : -INFINITY;
    const int64_t q_row = static_cast<int64_t>(q_begin + first + row) * p.q_heads + head;
    const float *o_row = o_s + row * L::kLdO;
    if (p.splits == 1) {
        T *out = static_cast<T *>(p.out) + q_row * D;
        for (int d = half; d < D; d += 2) out[d] = from_float<T>(o_row[d] * inv_l);
        if (p.lse != nullptr && half == 0) p.lse[q_row] = row_lse;
    } else {
        const int64_t part_row = static_cast<int64_t>(split) * p.total_tokens * p.q_heads + q_row;
        float *out = p.partial_out + part_row * D;
        for (int d = half; d < D; d += 2) out[d] = o_row[d] * inv_l;
        if (half == 0) p.partial_lse[part_row] = row_lse;
    }
}

}  // namespace isthmus
