// Prefill attention in the FlashAttention-2 structure on tensor cores (mma.sync m16n8k16, f16/bf16
// in, fp32 accumulate): S = Q K^T, the online softmax and O += P V all stay in registers. Same math,
// masks, split and outputs as attention_kernel (cuda/attention.cuh), which stays the path for
// decode and f32.
//
// Grid: x = tiles of kPrefillRows new tokens (the last tile first: under a causal mask it has the
// most keys), y = (sequence, query head), z = KV split. Block: 8 warps, each owning 16 query rows.
// Per KV tile of kPrefillKeys keys (the tiles of the keys any row of the block sees):
//   K and V of the next tile are copied global -> shared with cp.async (gathered key by key
//   through the block table, zero-filled past the end) while this tile is computed;
//   S (16 x 64 per warp, fp32 C fragments) = Q K^T, Q and K read with ldmatrix;
//   per row (a quad of 4 lanes holds a row): soft-cap, mask, x = S scale log2(e),
//   m' = max(m, max x) (quad shuffles), p = 2^(x - m') in fp32, l' = l 2^(m - m') + sum p (the
//   unrounded p), and O *= 2^(m - m') when the max grew;
//   O += P V: the C fragments of S, rounded to T, are the A fragments of the next mma (the C
//   layout of two 16x8 tiles is the A layout of one 16x16 tile), V read with ldmatrix .trans;
//   the same A against a B of ones sums the rounded P per row (l_used).
// A warp skips the tiles none of its rows sees; only tiles that cross a mask edge are masked.
// At the end out = O / l_used (weights that sum to 1), lse = m ln 2 + ln l (the exact sum).
//
// Why 8 warps of 16 rows rather than 4 of 32 (FlashAttention-2's choice at head_dim 128): a
// warp's O (16 x head_dim), S (16 x 64) and fragments take 196 registers a thread at
// head_dim 128 and up to 255 at 256 (ptxas, sm_90, no spills); 32 rows a warp would double O and S and
// spill. The price: every K/V element is read from shared memory by 8 warps instead of 4 (256
// bytes of ldmatrix per mma instead of 128). Two blocks (16 warps) an SM up to head_dim 80 (128
// registers); from 96 on one (128 registers would spill).
//
// A quantized cache (C = int8_t or Fp8E4m3, cuda/kv_quant.cuh): cp.async double-buffers the codes
// (and int8's per-key scales) instead, and once a tile has landed the block dequantizes it into the
// one K and one V tile of T, behind a second barrier; the mma loop is the same.
#pragma once

#include <math.h>

#include "attention.cuh"
#include "common.cuh"
#include "kv_quant.cuh"
#include "mma.cuh"

namespace isthmus {

constexpr int kPrefillRows = 128;  // query rows per block (8 warps x 16)
constexpr int kPrefillKeys = 64;   // keys per tile
constexpr int kPrefillWarps = 8;
constexpr int kPrefillThreads = kPrefillWarps * 32;

// Shared memory: Q (kPrefillRows rows), K and V twice (the tile computed and the one in flight).
// A row is D + 8 elements: its 16 bytes of padding put the 8 rows an ldmatrix reads at once in 8
// different 16-byte bank groups, and keep every row start 16-byte aligned for cp.async.
// A quantized cache keeps one T tile of K and of V (the double buffer holds the codes, rows of D
// codes, and int8's scales: K's 64 then V's 64 a buffer).
template <typename T, int D, typename C = T> struct PrefillLayout {
    static constexpr int kLd = D + 8;
    static constexpr int kBuffers = is_quantized<C>() ? 1 : 2;  // of T tiles
    static constexpr size_t kTile = sizeof(T) * kPrefillKeys * kLd;
    static constexpr size_t kQ = 0;
    static constexpr size_t kK = kQ + sizeof(T) * kPrefillRows * kLd;
    static constexpr size_t kV = kK + kBuffers * kTile;
    static constexpr size_t kCodeTile = is_quantized<C>() ? sizeof(C) * kPrefillKeys * D : 0;
    static constexpr size_t kKCodes = kV + kBuffers * kTile;
    static constexpr size_t kVCodes = kKCodes + 2 * kCodeTile;
    static constexpr size_t kScales = kVCodes + 2 * kCodeTile;
    static constexpr size_t kBytes = kScales + (has_token_scales<C>() ? sizeof(float) * 2 * 2 * kPrefillKeys : 0);
};

// Two blocks an SM up to head_dim 80 (128 registers) over a T cache; a quantized cache's
// dequantization, live beside O and S, would spill at 128, so it keeps one block an SM.
template <typename T, int D, typename C> constexpr int prefill_blocks_per_sm() { return D <= 80 && !is_quantized<C>() ? 2 : 1; }

template <typename T, int D, typename C = T>
__global__ void __launch_bounds__(kPrefillThreads, prefill_blocks_per_sm<T, D, C>()) attention_prefill_kernel(const AttentionParams p) {
    using L = PrefillLayout<T, D, C>;
    constexpr int kLd = L::kLd;
    constexpr int kChunks = D / 8;  // 16-byte pieces of a row
    constexpr int kKeyTiles = kPrefillKeys / 8;
    constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
    static_assert(D % 16 == 0, "head_dim must be a multiple of the mma's 16-wide k");
    extern __shared__ __align__(128) unsigned char prefill_smem[];
    T *q_s = reinterpret_cast<T *>(prefill_smem + L::kQ);
    T *k_s = reinterpret_cast<T *>(prefill_smem + L::kK);
    T *v_s = reinterpret_cast<T *>(prefill_smem + L::kV);
    C *k_codes = reinterpret_cast<C *>(prefill_smem + L::kKCodes);  // quantized caches only
    C *v_codes = reinterpret_cast<C *>(prefill_smem + L::kVCodes);
    float *scale_s = reinterpret_cast<float *>(prefill_smem + L::kScales);

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, quad_lane = lane % 4;  // this lane holds rows g and g + 8, columns 2 quad_lane, + 1 of each 8
    const int b = blockIdx.y / p.q_heads, head = blockIdx.y % p.q_heads;
    const int kv_head = head / (p.q_heads / p.kv_heads);
    const int split = blockIdx.z;
    const int q_begin = p.query_starts[b];
    const int new_tokens = p.query_starts[b + 1] - q_begin;
    const int first = (gridDim.x - 1 - blockIdx.x) * kPrefillRows;  // first new-token index of this block
    if (first >= new_tokens) return;                                // uniform, before any barrier
    const int cached = p.cached_lens[b];
    const int kv_len = cached + new_tokens;
    const int last = min(first + kPrefillRows, new_tokens) - 1;
    int lo, hi;
    visible_key_range(p, cached, kv_len, first, last, split, &lo, &hi);

    // This warp's rows, the keys any of them sees [warp_lo, warp_hi) and those all of them see
    // [all_lo, all_hi): a tile inside the latter needs no mask.
    const int warp_first = first + warp * 16;
    const int warp_last = min(warp_first + 15, last);
    const bool warp_active = warp_first <= last;
    int warp_lo = lo, warp_hi = lo;  // empty for a warp without rows
    if (warp_active) visible_key_range(p, cached, kv_len, warp_first, warp_last, split, &warp_lo, &warp_hi);
    int all_lo = warp_lo, all_hi = warp_hi;
    if (p.window_left >= 0) all_lo = static_cast<int>(max(static_cast<int64_t>(warp_lo), static_cast<int64_t>(cached) + warp_last - p.window_left));
    if (p.window_right >= 0) all_hi = static_cast<int>(min(static_cast<int64_t>(warp_hi), static_cast<int64_t>(cached) + warp_first + p.window_right + 1));

    // Q (unscaled: the scale is applied to S in fp32), rows past the last zero-filled.
    const T *q = static_cast<const T *>(p.q);
#pragma unroll
    for (int n = 0; n < kPrefillRows * kChunks / kPrefillThreads; ++n) {  // D is a multiple of 16: no remainder
        const int i = threadIdx.x + n * kPrefillThreads;
        const int r = i / kChunks, c = i % kChunks;
        const bool valid = first + r <= last;
        const T *src = q + (static_cast<int64_t>(q_begin + (valid ? first + r : first)) * p.q_heads + head) * D + c * 8;
        tc::cp_async<16>(q_s + r * kLd + c * 8, src, valid);
    }

    // K and V of keys [tile, tile + kPrefillKeys) into buffer buf. Thread (row, chunk) of a grid of
    // kLanes chunks (some idle at head_dim 80 and 96) by kRowStep key rows copies chunk `chunk` of
    // keys tile + row, + kRowStep, ...: one division a tile finds the first one's page and slot, the
    // next ones step on (a page of at least kRowStep keys is crossed at most once a step), and the
    // block table is read once a page. Keys past hi or outside the pool are zero-filled (p = 0 times
    // a finite v).
    // A quantized cache's chunks are 16 codes, to rows of D codes, and thread i < 128 copies the
    // int8 scale of key i % 64 (of K, then of V).
    constexpr int kElems = 16 / sizeof(C), kCopyChunks = D / kElems;
    constexpr int kLanes = kCopyChunks <= 4 ? 4 : kCopyChunks <= 8 ? 8 : kCopyChunks <= 16 ? 16 : 32;
    constexpr int kRowStep = kPrefillThreads / kLanes;
    static_assert(kCopyChunks <= kLanes && kPrefillKeys % kRowStep == 0, "the copy grid covers a tile");
    const int chunk = threadIdx.x % kLanes, row = threadIdx.x / kLanes;
    const int token_elems = p.kv_heads * D, block_elems = token_elems * p.block_size;  // < 2^31: the launcher checks
    const C *k_src = static_cast<const C *>(p.k_cache) + kv_head * D + chunk * kElems;
    const C *v_src = static_cast<const C *>(p.v_cache) + kv_head * D + chunk * kElems;
    const int32_t *table = p.block_table + static_cast<int64_t>(b) * p.max_blocks;
    const float k_head_scale = is_quantized<C>() && !has_token_scales<C>() ? p.k_scales[kv_head] : 1.0f;  // fp8
    const float v_head_scale = is_quantized<C>() && !has_token_scales<C>() ? p.v_scales[kv_head] : 1.0f;
    auto load_tile = [&](int tile, int buf) {
        if constexpr (has_token_scales<C>()) {
            if (threadIdx.x < 2 * kPrefillKeys) {
                const int t = tile + threadIdx.x % kPrefillKeys, page = t / p.block_size;
                const int block = page < p.max_blocks ? table[page] : -1;
                const bool valid = t < hi && block >= 0 && block < p.num_blocks;
                const int64_t at = valid ? (static_cast<int64_t>(block) * p.block_size + t - page * p.block_size) * p.kv_heads + kv_head : 0;
                tc::cp_async<4>(scale_s + buf * 2 * kPrefillKeys + threadIdx.x,
                                (threadIdx.x < kPrefillKeys ? p.k_scales : p.v_scales) + at, valid);
            }
        }
        if (chunk >= kCopyChunks) return;
        C *k_dst, *v_dst;
        int ld;  // elements between the copied rows
        if constexpr (is_quantized<C>()) {
            ld = D;
            k_dst = k_codes + buf * kPrefillKeys * D + row * D + chunk * kElems;
            v_dst = v_codes + buf * kPrefillKeys * D + row * D + chunk * kElems;
        } else {
            ld = kLd;
            k_dst = k_s + buf * kPrefillKeys * kLd + row * kLd + chunk * 8;
            v_dst = v_s + buf * kPrefillKeys * kLd + row * kLd + chunk * 8;
        }
        int t = tile + row;
        int page = t / p.block_size, slot = t - page * p.block_size;
#pragma unroll
        for (int n = 0; n < kPrefillKeys / kRowStep; ++n) {
            const int block = page < p.max_blocks ? table[page] : -1;
            const bool valid = t < hi && block >= 0 && block < p.num_blocks;
            const int64_t at = valid ? static_cast<int64_t>(block) * block_elems + slot * token_elems : 0;
            tc::cp_async<16>(k_dst + n * kRowStep * ld, k_src + at, valid);
            tc::cp_async<16>(v_dst + n * kRowStep * ld, v_src + at, valid);
            t += kRowStep;
            slot += kRowStep;
            if (p.block_size >= kRowStep) {
                if (slot >= p.block_size) slot -= p.block_size, ++page;
            } else {  // pages shorter than a step
                page = t / p.block_size;
                slot = t - page * p.block_size;
            }
        }
    };
    if (lo < hi) load_tile(lo, 0);
    tc::cp_async_commit();  // Q and the first tile

    // Softmax in base 2: x = S * mult (after the soft-cap, if any, which folds log2(e) into its cap).
    const bool capped = p.softcap > 0.0f;
    const float mult = capped ? 1.0f : p.scale * kLog2e;
    const float cap_log2 = p.softcap * kLog2e, cap_in = capped ? p.scale / p.softcap : 0.0f;
    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8; l is this lane's part
    // The row sums of the rounded P, the weights that multiply V (out = O / l_used, weights summing
    // to 1): one more mma a k-step against a B of ones; [0..1] hold row g, [2..3] row g + 8.
    float l_used[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const uint32_t ones[2] = {tc::pack2<T>(1.0f, 1.0f), tc::pack2<T>(1.0f, 1.0f)};
    const T *q_warp = q_s + (warp * 16 + lane % 16) * kLd + (lane / 16) * 8;  // ldmatrix_x4 rows of an A tile

    int buf = 0;
    for (int tile = lo; tile < hi; tile += kPrefillKeys, buf ^= 1) {
        tc::cp_async_wait<0>();
        __syncthreads();  // the tile landed for every thread, and every warp is done with the other buffer
        if (tile + kPrefillKeys < hi) load_tile(tile + kPrefillKeys, buf ^ 1);
        tc::cp_async_commit();
        if constexpr (is_quantized<C>()) {  // the codes of buffer buf into the T tiles, every thread a share
            constexpr int kCodeChunks = kPrefillKeys * (D / 16);
            static_assert(kCodeChunks % kPrefillThreads == 0, "the dequantization covers a tile evenly");
#pragma unroll
            for (int n = 0; n < kCodeChunks / kPrefillThreads; ++n) {
                const int i = threadIdx.x + n * kPrefillThreads, r = i / (D / 16), c = i % (D / 16);
                const int src = buf * kPrefillKeys * D + r * D + c * 16, dst = r * kLd + c * 16;
                const float k_scale = has_token_scales<C>() ? scale_s[buf * 2 * kPrefillKeys + r] : k_head_scale;
                const float v_scale = has_token_scales<C>() ? scale_s[buf * 2 * kPrefillKeys + kPrefillKeys + r] : v_head_scale;
                dequantize16(k_s + dst, k_s + dst + 8, k_codes + src, k_scale);
                dequantize16(v_s + dst, v_s + dst + 8, v_codes + src, v_scale);
            }
            __syncthreads();  // the T tiles are whole
        }
        if (tile >= warp_hi || tile + kPrefillKeys <= warp_lo) continue;  // warp-uniform: no row of the warp sees the tile
        const T *k_tile = k_s + (L::kBuffers == 2 ? buf : 0) * kPrefillKeys * kLd;
        const T *v_tile = v_s + (L::kBuffers == 2 ? buf : 0) * kPrefillKeys * kLd;

        // S = Q K^T: B of key tile n is K rows n..n+7 (k = d), read as stored.
        float s[kKeyTiles][4];
#pragma unroll
        for (int n = 0; n < kKeyTiles; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
        for (int k = 0; k < D / 16; ++k) {
            uint32_t a[4];
            tc::ldmatrix_x4(a, q_warp + k * 16);
#pragma unroll
            for (int n = 0; n < kKeyTiles; n += 2) {
                uint32_t kb[4];
                tc::ldmatrix_x4(kb, k_tile + (n * 8 + lane % 8 + (lane / 16) * 8) * kLd + k * 16 + ((lane / 8) % 2) * 8);
                const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
                tc::mma_m16n8k16<T>(s[n], a, b0, s[n]);
                tc::mma_m16n8k16<T>(s[n + 1], a, b1, s[n + 1]);
            }
        }

        if (capped) {
#pragma unroll
            for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) s[n][e] = cap_log2 * tanhf(s[n][e] * cap_in);
        }
        if (tile < all_lo || tile + kPrefillKeys > all_hi) {  // a mask edge crosses the tile
#pragma unroll
            for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int t = tile + n * 8 + 2 * quad_lane + e % 2;
                    const int position = cached + warp_first + g + 8 * (e / 2);
                    if (!(t < hi && key_visible(p, t, position))) s[n][e] = -INFINITY;
                }
        }

        // Online softmax, per row: the tile's max over the quad, then p = 2^(x - m') unrounded.
        float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < kKeyTiles; ++n) {
            tile_max[0] = fmaxf(tile_max[0], fmaxf(s[n][0], s[n][1]));
            tile_max[1] = fmaxf(tile_max[1], fmaxf(s[n][2], s[n][3]));
        }
        float neg_ref[2], alpha[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
            const float m_new = fmaxf(m[r], tile_max[r] * mult);
            // With nothing visible yet (m' = -inf) every p is 0 and O stays 0: use 0 as the reference.
            const float ref = m_new == -INFINITY ? 0.0f : m_new;
            alpha[r] = exp2f(m[r] - ref);  // 0 while m is -inf
            neg_ref[r] = -ref;
            m[r] = m_new;
        }
        // O and l rescale only when a row's max grew: after the first tiles of a row that is rare.
        if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
            for (int r = 0; r < 2; ++r) l[r] *= alpha[r];
#pragma unroll
            for (int e = 0; e < 4; ++e) l_used[e] *= alpha[e / 2];
#pragma unroll
            for (int j = 0; j < D / 8; ++j) {
                o[j][0] *= alpha[0];
                o[j][1] *= alpha[0];
                o[j][2] *= alpha[1];
                o[j][3] *= alpha[1];
            }
        }
#pragma unroll
        for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                s[n][e] = exp2f(fmaf(s[n][e], mult, neg_ref[e / 2]));  // -inf (masked) gives 0
                l[e / 2] += s[n][e];
            }

        // O += P V: A of keys 16k..16k+15 is key tiles 2k and 2k+1 of P; B of dim tile j is V
        // rows 16k.. (k = key) at columns 8j.., read transposed.
#pragma unroll
        for (int k = 0; k < kPrefillKeys / 16; ++k) {
            const uint32_t a[4] = {tc::pack2<T>(s[2 * k][0], s[2 * k][1]), tc::pack2<T>(s[2 * k][2], s[2 * k][3]),
                                   tc::pack2<T>(s[2 * k + 1][0], s[2 * k + 1][1]),
                                   tc::pack2<T>(s[2 * k + 1][2], s[2 * k + 1][3])};
            tc::mma_m16n8k16<T>(l_used, a, ones, l_used);
#pragma unroll
            for (int j = 0; j < D / 8; j += 2) {
                uint32_t vb[4];
                tc::ldmatrix_x4_trans(vb, v_tile + (k * 16 + lane % 16) * kLd + j * 8 + (lane / 16) * 8);
                const uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
                tc::mma_m16n8k16<T>(o[j], a, b0, o[j]);
                tc::mma_m16n8k16<T>(o[j + 1], a, b1, o[j + 1]);
            }
        }
    }
    tc::cp_async_wait<0>();  // nothing is left in flight (the empty groups of the last tile, or Q alone)
    if (!warp_active) return;

#pragma unroll
    for (int r = 0; r < 2; ++r) {  // each lane summed its own columns: the row's l (for the lse) is the quad's sum
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = warp_first + g + 8 * r;
        if (row > last) continue;
        const float inv_l = l[r] > 0.0f ? 1.0f / l_used[2 * r] : 0.0f;
        const float row_lse = l[r] > 0.0f ? m[r] * kLn2 + logf(l[r]) : -INFINITY;
        const int64_t q_row = static_cast<int64_t>(q_begin + row) * p.q_heads + head;
        if (p.splits == 1) {
            T *out = static_cast<T *>(p.out) + q_row * D + 2 * quad_lane;
#pragma unroll
            for (int j = 0; j < D / 8; ++j)
                *reinterpret_cast<uint32_t *>(out + 8 * j) = tc::pack2<T>(o[j][2 * r] * inv_l, o[j][2 * r + 1] * inv_l);
            if (p.lse != nullptr && quad_lane == 0) p.lse[q_row] = row_lse;
        } else {
            const int64_t part_row = static_cast<int64_t>(split) * p.total_tokens * p.q_heads + q_row;
            float *out = p.partial_out + part_row * D + 2 * quad_lane;
#pragma unroll
            for (int j = 0; j < D / 8; ++j)
                *reinterpret_cast<float2 *>(out + 8 * j) = make_float2(o[j][2 * r] * inv_l, o[j][2 * r + 1] * inv_l);
            if (quad_lane == 0) p.partial_lse[part_row] = row_lse;
        }
    }
}

}  // namespace isthmus
