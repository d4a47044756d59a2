// Decode attention for the common case: f16/bf16, head_dim 64 or 128, pages a multiple of 16
// tokens, with the GQA group's query rows on the tensor cores. It streams the KV cache once, so it
// is judged by bytes per issued instruction; the general kernel (attention.cuh) keeps every other
// case.
//
// Grid as the general kernel: x = groups of kDecodeRows query rows of one kv head (a GQA group,
// or several new tokens of it), y = (sequence, kv head), z = KV split. The block's warps take
// 16-key steps in turn (warp w: steps w, w + 4, ...), each warp through its own ring of
// kDecodeStages K/V tiles in shared memory that cp.async (16 bytes a lane, zero-fill for keys
// that do not count) fills kDecodeStages - 1 steps ahead of the one it computes; a step's 16 keys
// lie in one page, found with one block-table entry (read 32 steps ahead, one per lane, then
// shuffled). A step is two chains of mma.sync m16n8k16 with the keys or head_dim as M:
//   S^T = K Q^T     M = 16 keys, N = 8 columns, K = head_dim: A = the K tile (ldmatrix), B = Q^T
//                   held in registers, row r of the block in column 2r, the odd columns zero;
//   O^T += V^T P^T  M = 16 of head_dim per tile, N = 8, K = 16 keys: A = the V tile (ldmatrix.trans).
// In the accumulator layout (mma.cuh; g = lane / 4, t = lane % 4) lane (g, t) then holds
// S[row t][key g], S[row t][key g + 8] and O[row t][16 i + g (+ 8)], so row t's online softmax,
// in base 2 and fp32,
//   m' = max(m, max_j x_j),  l' = l 2^(m-m') + sum_j 2^(x_j-m'),  O' = O 2^(m-m') + sum_j 2^(x_j-m') v_j,
// (x = scale log2(e) q.k, or log2(e) softcap tanh(scale q.k / softcap)) needs no exchange but the
// max over the row's 8 lanes; P^T's B fragment wants keys 2t, 2t + 1 (and + 8) of row g / 2, which
// two shuffles of each lane's packed (key g, key g + 8) pair bring. The rows on even columns only
// keep one row per lane (half the softmax work of 8 dense columns) and those shuffles at two. At
// the end the warps' states are merged in shared memory and each warp writes one row: out and lse,
// or with several splits an f32 partial, after which the last block of the row group to finish
// (a counter per row group) merges every split's partial into out and lse (merge_row).
//
// A quantized cache (C = int8_t or Fp8E4m3, cuda/kv_quant.cuh): the ring holds the codes as
// cp.async brought them (16 codes a copy, rows unswizzled) and, for int8, the step's 32 scales (16
// keys of K, then of V, one 4-byte copy a lane); once a step has landed each lane dequantizes the
// chunks it copied into the warp's one pair of T tiles, in the swizzled layout above, and the step
// runs on those exactly as on a T cache.
#pragma once

#include "attention.cuh"
#include "attention_merge.cuh"
#include "mma.cuh"

namespace isthmus {

constexpr int kDecodeRows = 4;    // query rows per block: the even columns of the mma's N = 8
constexpr int kDecodeWarps = 4;   // one output row each at the end
constexpr int kDecodeStep = 16;   // keys per warp step: the mma's M, one page lookup
constexpr int kDecodeStages = 3;  // K/V tiles in each warp's ring: two in flight while one is computed
// Resident blocks per SM (Attention.splitCount assumes it): 8 warps with two 8 KiB steps in flight
// each keep about 5x an H200's bandwidth-latency product per SM busy; the rings (96 KiB a block
// at head_dim 128) leave no room for a third.
constexpr int kDecodeBlocksPerSm = 2;

// The fast path's shape: the launcher sends everything else to attention_kernel.
template <typename T, int D> constexpr bool decode_fast_path() { return sizeof(T) == 2 && (D == 64 || D == 128); }

constexpr int kDecodeScales = 2 * kDecodeStep;  // floats of a step's int8 scales: its keys' K, then V

// Dynamic shared memory of one block: each warp's ring of kDecodeStages (K tile, V tile) pairs;
// after the step loop the same bytes hold the warps' states for the final merge.
// A staged key row is D elements, unpadded (the rings then fit the 99 KiB an sm_86/89 block may
// have); its 16-byte chunk c sits at c ^ (row % 8), so that the 8 rows of one ldmatrix matrix,
// 2 D bytes apart, read 8 different chunks of a 128-byte group: 8 different groups of 4 banks.
// A quantized cache adds, after the rings of codes, each warp's ring of scales (int8) and its pair
// of dequantized T tiles.
template <typename T, int D, typename C = T> struct DecodeLayout {
    static constexpr int kTile = kDecodeStep * D;  // elements of one K or V tile
    static constexpr size_t kRingBytes = sizeof(C) * kDecodeWarps * kDecodeStages * 2 * kTile;
    static constexpr size_t kScaleBytes = has_token_scales<C>() ? sizeof(float) * kDecodeWarps * kDecodeStages * kDecodeScales : 0;
    static constexpr size_t kTileBytes = is_quantized<C>() ? sizeof(T) * kDecodeWarps * 2 * kTile : 0;
    static constexpr size_t kStagedBytes = kRingBytes + kScaleBytes + kTileBytes;
    static constexpr size_t kStateBytes = sizeof(float) * kDecodeWarps * kDecodeRows * (D + 2);  // o, m, l
    static constexpr size_t kBytes = kStagedBytes > kStateBytes ? kStagedBytes : kStateBytes;
};

// One warp's running softmax state of row t = lane % 4: m is the same on the row's 8 lanes, l is
// this lane's sum over its own keys (g and g + 8 of every step) until the end; o[i][0] =
// O[t][16 i + g] and o[i][2] = O[t][16 i + g + 8] (o[i][1] and o[i][3] belong to the zero columns).
template <int D> struct DecodeState {
    float m, l;
    float o[D / 16][4];
};

// How raw scores s = q.k become base-2 logits x.
struct DecodeScores {
    bool capped;                              // softcap > 0: x = cap_log2 tanh(s * scale_over_cap)
    float scale_log2, cap_log2, scale_over_cap;  // else x = s * scale_log2
};

// Which keys count: [lo, hi) holds the keys some row of the block sees (within the split), and
// position is that of this lane's row, for the window test.
struct DecodeMask {
    int lo, hi, position;
};

// The lanes' share of a step's copies: 16-byte chunks of C, kChunks a key row, kKeysPerCopy rows
// in one copy of the warp, kCopies copies a tile.
template <int D, typename C> struct DecodeCopies {
    static constexpr int kElems = 16 / sizeof(C), kChunks = D / kElems;
    static constexpr int kKeysPerCopy = 32 / kChunks, kCopies = kDecodeStep / kKeysPerCopy;
};

// cp.async of one step's K and V tiles into k_tile / v_tile: the lane copies 16-byte chunk
// `chunk` of the step's keys `row` + i * kKeysPerCopy (first_key + the same in the sequence), from
// k_src / v_src on (keys `stride` elements apart), each to its swizzled place (DecodeLayout), or
// for codes to its plain place. kMasked: keys outside [lo, hi), or all of them when the page is
// outside the pool, are zero-filled (p = 0 must meet a finite v) and not read.
template <typename C, int D, bool kMasked>
__device__ __forceinline__ void decode_issue(C *k_tile, C *v_tile, const C *k_src, const C *v_src, int64_t stride, int row,
                                             int chunk, int first_key, const DecodeMask &mask, bool page_ok) {
    using Copies = DecodeCopies<D, C>;
    constexpr int kKeysPerCopy = Copies::kKeysPerCopy, kCopies = Copies::kCopies;
#pragma unroll
    for (int i = 0; i < kCopies; ++i) {
        const int key = first_key + i * kKeysPerCopy, r = row + i * kKeysPerCopy;
        const bool valid = !kMasked || (page_ok && key >= mask.lo && key < mask.hi);
        const int64_t offset = valid ? i * kKeysPerCopy * stride : 0;  // a skipped copy names an address it does not read
        const int dst = is_quantized<C>() ? r * D + chunk * Copies::kElems : r * D + (chunk ^ (r % 8)) * 8;
        tc::cp_async<16>(k_tile + dst, k_src + offset, valid);
        tc::cp_async<16>(v_tile + dst, v_src + offset, valid);
    }
}

// One 16-key step from the staged tiles k_s / v_s. kMasked: some key of the step is outside [lo,
// hi), hidden from some row by the window, or on a page outside the pool (bad_page); those score -inf.
template <typename T, int D, bool kMasked>
__device__ __forceinline__ void decode_step(DecodeState<D> &st, const uint32_t (&qf)[D / 16][2], const T *k_s, const T *v_s,
                                            const AttentionParams &p, const DecodeScores &sc, const DecodeMask &mask, int t0,
                                            bool bad_page, int lane) {
    constexpr int kSlices = D / 16;
    const int g = lane / 4, t = lane % 4;

    // S^T = K Q^T. ldmatrix matrices: keys 0-7 and 8-15 (a[0], a[1]) of dims 0-7, then of dims 8-15;
    // the lane's row is key lane % 8 (+ 8) and its chunk 2 kk + lane / 16, swizzled by lane % 8.
    const T *k_row = k_s + ((lane % 8) + 8 * ((lane / 8) % 2)) * D;
    const int k_swizzle = (lane / 16) ^ (lane % 8);  // (2 kk + b) ^ x = 2 kk ^ (b ^ x) for b < 2
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int kk = 0; kk < kSlices; ++kk) {
        uint32_t a[4];
        tc::ldmatrix_x4(a, k_row + ((2 * kk) ^ k_swizzle) * 8);
        tc::mma_m16n8k16<T>(s, a, qf[kk], s);
    }
    float x[2] = {s[0], s[2]};  // keys g and g + 8 of row t
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        if (sc.capped)
            x[i] = sc.cap_log2 * tanhf(x[i] * sc.scale_over_cap);
        else
            x[i] *= sc.scale_log2;
        if constexpr (kMasked) {
            const int key = t0 + g + 8 * i;
            if (bad_page || key < mask.lo || key >= mask.hi || !key_visible(p, key, mask.position)) x[i] = -INFINITY;
        }
    }

    // The row's max over its 8 lanes; the rescale when it grows (per lane: the row's lanes agree).
    float mx = fmaxf(x[0], x[1]);
#pragma unroll
    for (int offset = 4; offset < 32; offset <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, offset));
    const float m_new = fmaxf(st.m, mx);
    if (m_new > st.m) {  // the max settles after a few steps
        const float alpha = exp2f(st.m - m_new);  // 0 while m is -inf
        st.l *= alpha;
#pragma unroll
        for (int i = 0; i < kSlices; ++i) {
            st.o[i][0] *= alpha;
            st.o[i][2] *= alpha;
        }
        st.m = m_new;
    }
    const float base = st.m == -INFINITY ? 0.0f : st.m;  // no key visible yet: 2^(-inf - 0) = 0, not NaN
    const float p0 = exp2f(x[0] - base), p1 = exp2f(x[1] - base);
    st.l += p0 + p1;

    // P^T's B fragment: (key 2t, 2t + 1) and (2t + 8, 2t + 9) of column g, i.e. row g / 2, from the
    // lanes (g' = 2t, t' = g / 2) and (2t + 1, g / 2) that scored them. Odd columns get row values
    // too; their products land in O^T's zero columns, never read.
    const uint32_t pair = tc::pack2<T>(p0, p1);  // (key g, key g + 8) of row t
    const uint32_t even = __shfl_sync(0xffffffffu, pair, 8 * t + g / 2);
    const uint32_t odd = __shfl_sync(0xffffffffu, pair, 8 * t + 4 + g / 2);
    const uint32_t b[2] = {(even & 0xffffu) | (odd << 16), (even >> 16) | (odd & 0xffff0000u)};

    // O^T += V^T P^T. ldmatrix.trans matrices: dims 0-7 and 8-15 (a[0], a[1]) of keys 0-7, then of
    // keys 8-15; the lane's row is key lane % 8 (+ 8), its chunk 2 i + (lane / 8) % 2, swizzled.
    const T *v_row = v_s + ((lane % 8) + 8 * (lane / 16)) * D;
    const int v_swizzle = ((lane / 8) % 2) ^ (lane % 8);
#pragma unroll
    for (int i = 0; i < kSlices; ++i) {
        uint32_t a[4];
        tc::ldmatrix_x4_trans(a, v_row + ((2 * i) ^ v_swizzle) * 8);
        tc::mma_m16n8k16<T>(st.o[i], a, b, st.o[i]);
    }
}

// Dequantizes the chunks of step tiles k_codes / v_codes this lane copied (decode_issue's row and
// chunk) into the T tiles k_tile / v_tile, swizzled: code chunk c of row r is T chunks 2c and
// 2c + 1. scales: the step's int8 scales (kDecodeScales), or NULL for fp8's per-head k_scale / v_scale.
template <typename T, typename C, int D>
__device__ __forceinline__ void decode_dequantize(T *k_tile, T *v_tile, const C *k_codes, const C *v_codes, const float *scales,
                                                  float k_scale, float v_scale, int row, int chunk) {
    using Copies = DecodeCopies<D, C>;
#pragma unroll
    for (int i = 0; i < Copies::kCopies; ++i) {
        const int r = row + i * Copies::kKeysPerCopy;
        const int src = r * D + chunk * 16, dst0 = r * D + ((2 * chunk) ^ (r % 8)) * 8, dst1 = r * D + ((2 * chunk + 1) ^ (r % 8)) * 8;
        dequantize16(k_tile + dst0, k_tile + dst1, k_codes + src, scales != nullptr ? scales[r] : k_scale);
        dequantize16(v_tile + dst0, v_tile + dst1, v_codes + src, scales != nullptr ? scales[kDecodeStep + r] : v_scale);
    }
}

template <typename T, int D, typename C = T>
__global__ void __launch_bounds__(kDecodeWarps * 32, kDecodeBlocksPerSm) attention_decode_kernel(const AttentionParams p) {
    static_assert(kDecodeRows == kDecodeWarps, "each warp writes one row at the end");
    static_assert(2 * kDecodeRows <= 8 && kDecodeRows == 4, "row t of the block is column 2t of N = 8, t = lane % 4");
    using Layout = DecodeLayout<T, D, C>;
    constexpr int kSlices = D / 16, kChunks = DecodeCopies<D, C>::kChunks, kElems = DecodeCopies<D, C>::kElems;
    constexpr float kLog2e = 1.4426950408889634f;
    extern __shared__ __align__(16) unsigned char smem[];
    __shared__ int last_block;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const DecodeBlock blk(p, kDecodeRows);
    if (blk.idle()) return;
    const int b = blk.b, kv_head = blk.kv_head, split = blk.split, group = blk.group, q_begin = blk.q_begin;
    const int rows = blk.rows, first_row = blk.first_row, cached = blk.cached, kv_len = blk.kv_len;
    const int last_row = min(first_row + kDecodeRows, rows) - 1;
    auto q_row_of = [&](int row) {  // the (token, head) row index of the block's row `row`
        return static_cast<int64_t>(q_begin + row / group) * p.q_heads + kv_head * group + row % group;
    };

    // Q^T, the B operand of S^T = K Q^T for every 16 of head_dim: column g holds row g / 2 for even
    // g (zero past the last row), odd columns are zero. Two elements of T per register.
    uint32_t qf[kSlices][2];
    {
        const int row = first_row + g / 2;
        const bool real = g % 2 == 0 && row <= last_row;
        const uint32_t *q = reinterpret_cast<const uint32_t *>(static_cast<const T *>(p.q) + q_row_of(min(row, last_row)) * D) + t;
#pragma unroll
        for (int kk = 0; kk < kSlices; ++kk) {
            qf[kk][0] = real ? q[8 * kk] : 0u;      // elements 16 kk + 2t, + 1
            qf[kk][1] = real ? q[8 * kk + 4] : 0u;  // elements 16 kk + 2t + 8, + 9
        }
    }
    const DecodeScores sc{p.softcap > 0.0f, p.scale * kLog2e, p.softcap * kLog2e, p.softcap > 0.0f ? p.scale / p.softcap : 0.0f};

    // Keys some row sees ([lo, hi)) and keys every row sees ([full_lo, full_hi): the same window
    // with the first and last token swapped); only steps not inside the latter need masks.
    const int first_token = first_row / group, last_token = last_row / group;
    DecodeMask mask;
    int full_lo, full_hi;
    visible_key_range(p, cached, kv_len, first_token, last_token, split, &mask.lo, &mask.hi);
    visible_key_range(p, cached, kv_len, last_token, first_token, split, &full_lo, &full_hi);
    mask.position = cached + min(first_row + t, last_row) / group;

    DecodeState<D> st;
    st.m = -INFINITY;
    st.l = 0.0f;
#pragma unroll
    for (int i = 0; i < kSlices; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) st.o[i][e] = 0.0f;

    const C *k_cache = static_cast<const C *>(p.k_cache);
    const C *v_cache = static_cast<const C *>(p.v_cache);
    const int32_t *table = p.block_table + static_cast<int64_t>(b) * p.max_blocks;
    const int64_t stride = static_cast<int64_t>(p.kv_heads) * D;  // between adjacent slots of a block
    const int copy_key = lane / kChunks, copy_chunk = lane % kChunks;  // this lane's first key and chunk of a step
    const int64_t lane_offset = kv_head * D + copy_key * stride + copy_chunk * kElems;
    // int8: lane i copies the scale of key i % 16 of a step, of K (i < 16) or V; fp8: the head's two.
    const float k_head_scale = is_quantized<C>() && !has_token_scales<C>() ? p.k_scales[kv_head] : 1.0f;
    const float v_head_scale = is_quantized<C>() && !has_token_scales<C>() ? p.v_scales[kv_head] : 1.0f;
    const int step0 = mask.lo / kDecodeStep;
    const int steps = mask.hi > mask.lo ? (mask.hi - 1) / kDecodeStep + 1 - step0 : 0;
    const int my_steps = steps > warp ? (steps - warp - 1) / kDecodeWarps + 1 : 0;

    // This warp's ring: stage s holds the K tile at ring + 2 s kTile and the V tile after it; a
    // quantized cache's scales (stage s at scale_ring + s kDecodeScales) and T tiles follow the rings.
    C *ring = reinterpret_cast<C *>(smem) + warp * kDecodeStages * 2 * Layout::kTile;
    float *scale_ring = reinterpret_cast<float *>(smem + Layout::kRingBytes) + warp * kDecodeStages * kDecodeScales;
    T *tiles = reinterpret_cast<T *>(smem + Layout::kRingBytes + Layout::kScaleBytes) + warp * 2 * Layout::kTile;
    // Lane i holds the block id and slot of this warp's step n + i (n a multiple of 32): the table
    // is read 32 steps ahead, so no step waits on it, and the division by block_size happens there.
    int32_t pages = -1, slots = 0;
    // Bit n % 32: step n needs the masked step / its page is outside the pool (kDecodeStages - 1 < 32 ahead).
    uint32_t masked_steps = 0, bad_pages = 0;
    auto issue = [&](int n, int stage) {
        if (n < my_steps) {  // warp-uniform
            if (n % 32 == 0) {
                const int tn = (step0 + warp + (n + lane) * kDecodeWarps) * kDecodeStep;
                const int page = tn / p.block_size;
                pages = n + lane < my_steps && page < p.max_blocks ? table[page] : -1;
                slots = tn - page * p.block_size;
            }
            const int block = __shfl_sync(0xffffffffu, pages, n % 32);
            const int slot = __shfl_sync(0xffffffffu, slots, n % 32);
            const int t0 = (step0 + warp + n * kDecodeWarps) * kDecodeStep;
            const bool page_ok = block >= 0 && block < p.num_blocks;
            const int64_t offset = page_ok ? (static_cast<int64_t>(block) * p.block_size + slot) * stride + lane_offset : 0;
            C *k_tile = ring + 2 * stage * Layout::kTile;
            if (page_ok && t0 >= mask.lo && t0 + kDecodeStep <= mask.hi)
                decode_issue<C, D, false>(k_tile, k_tile + Layout::kTile, k_cache + offset, v_cache + offset, stride, copy_key, copy_chunk,
                                          t0 + copy_key, mask, true);
            else
                decode_issue<C, D, true>(k_tile, k_tile + Layout::kTile, k_cache + offset, v_cache + offset, stride, copy_key, copy_chunk,
                                         t0 + copy_key, mask, page_ok);
            if constexpr (has_token_scales<C>()) {
                const int key = t0 + lane % kDecodeStep;
                const bool valid = page_ok && key >= mask.lo && key < mask.hi;
                const int64_t at = valid ? (static_cast<int64_t>(block) * p.block_size + slot + lane % kDecodeStep) * p.kv_heads + kv_head : 0;
                tc::cp_async<4>(scale_ring + stage * kDecodeScales + lane, (lane < kDecodeStep ? p.k_scales : p.v_scales) + at, valid);
            }
            const uint32_t bit = 1u << (n % 32);
            const bool masked = !(page_ok && t0 >= full_lo && t0 + kDecodeStep <= full_hi);
            masked_steps = masked ? masked_steps | bit : masked_steps & ~bit;
            bad_pages = page_ok ? bad_pages & ~bit : bad_pages | bit;
        }
        tc::cp_async_commit();  // an empty group past the last step keeps the count the wait relies on
    };

#pragma unroll
    for (int s = 0; s < kDecodeStages - 1; ++s) issue(s, s);
    int stage = 0;  // of step n
    for (int n = 0; n < my_steps; ++n) {
        __syncwarp();  // every lane has read step n - 1's tiles, whose stage the next issue refills
        issue(n + kDecodeStages - 1, stage == 0 ? kDecodeStages - 1 : stage - 1);
        tc::cp_async_wait<kDecodeStages - 1>();  // this lane's copies of step n have landed
        __syncwarp();                            // and so have the other lanes'
        const T *k_s;
        if constexpr (is_quantized<C>()) {
            const C *codes = ring + 2 * stage * Layout::kTile;
            decode_dequantize<T, C, D>(tiles, tiles + Layout::kTile, codes, codes + Layout::kTile,
                                       has_token_scales<C>() ? scale_ring + stage * kDecodeScales : nullptr, k_head_scale, v_head_scale,
                                       copy_key, copy_chunk);
            __syncwarp();  // every lane's chunks are in the T tiles
            k_s = tiles;
        } else {
            k_s = ring + 2 * stage * Layout::kTile;
        }
        const int t0 = (step0 + warp + n * kDecodeWarps) * kDecodeStep;
        if ((masked_steps >> (n % 32)) & 1u)
            decode_step<T, D, true>(st, qf, k_s, k_s + Layout::kTile, p, sc, mask, t0, (bad_pages >> (n % 32)) & 1u, lane);
        else
            decode_step<T, D, false>(st, qf, k_s, k_s + Layout::kTile, p, sc, mask, t0, false, lane);
        stage = stage == kDecodeStages - 1 ? 0 : stage + 1;
    }
    tc::cp_async_wait<0>();  // only empty groups are left; nothing may land once the ring is reused

    // Row t's l over the row's 8 lanes.
#pragma unroll
    for (int offset = 4; offset < 32; offset <<= 1) st.l += __shfl_xor_sync(0xffffffffu, st.l, offset);
    float *o_s = reinterpret_cast<float *>(smem);       // [warp][row][D]
    float *m_s = o_s + kDecodeWarps * kDecodeRows * D;  // [warp][row]
    float *l_s = m_s + kDecodeWarps * kDecodeRows;
    __syncthreads();  // every warp is done with its ring
    float *o_mine = o_s + (warp * kDecodeRows + t) * D;
#pragma unroll
    for (int i = 0; i < kSlices; ++i) {
        o_mine[16 * i + g] = st.o[i][0];
        o_mine[16 * i + g + 8] = st.o[i][2];
    }
    if (g == 0) {
        m_s[warp * kDecodeRows + t] = st.m;
        l_s[warp * kDecodeRows + t] = st.l;
    }
    __syncthreads();

    // Warp w merges row w over the warps: weights 2^(m_w - M), a warp that saw nothing weighs 0.
    const int r = warp, row = first_row + r;
    const bool has_row = row <= last_row;
    const int64_t q_row = q_row_of(min(row, last_row));
    if (has_row) {
        float max_m = -INFINITY;
#pragma unroll
        for (int w = 0; w < kDecodeWarps; ++w) max_m = fmaxf(max_m, m_s[w * kDecodeRows + r]);
        float weight[kDecodeWarps], sum = 0.0f;
#pragma unroll
        for (int w = 0; w < kDecodeWarps; ++w) {
            const float m_w = m_s[w * kDecodeRows + r];
            weight[w] = m_w == -INFINITY ? 0.0f : exp2f(m_w - max_m);
            sum += weight[w] * l_s[w * kDecodeRows + r];
        }
        const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
        const float row_lse = sum > 0.0f ? (max_m + log2f(sum)) * 0.6931471805599453f : -INFINITY;  // natural log
        const int64_t part_row = static_cast<int64_t>(split) * p.total_tokens * p.q_heads + q_row;
        for (int d = lane; d < D; d += 32) {
            float acc = 0.0f;
#pragma unroll
            for (int w = 0; w < kDecodeWarps; ++w) acc = fmaf(weight[w], o_s[(w * kDecodeRows + r) * D + d], acc);
            if (p.splits == 1)
                static_cast<T *>(p.out)[q_row * D + d] = from_float<T>(acc * inv_sum);
            else
                p.partial_out[part_row * D + d] = acc * inv_sum;
        }
        if (lane == 0) {
            if (p.splits == 1) {
                if (p.lse != nullptr) p.lse[q_row] = row_lse;
            } else {
                p.partial_lse[part_row] = row_lse;
            }
        }
    }
    if (p.splits == 1) return;

    // The last of the row group's blocks to get here merges every split's partial: its count
    // (indexed by the group's first row) goes back to 0 for the next launch.
    __threadfence();  // this block's partials are visible device-wide before its count is
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t *count = p.split_counts + q_row_of(first_row);
        const bool last = atomicAdd(count, 1) == p.splits - 1;
        if (last) *count = 0;
        last_block = last;
    }
    __syncthreads();
    if (!last_block || !has_row) return;
    __threadfence();
    merge_row<T, float, D / 32>(static_cast<T *>(p.out) + q_row * D, p.lse != nullptr ? p.lse + q_row : nullptr, p.partial_out,
                                p.partial_lse, p.splits, static_cast<int64_t>(p.total_tokens) * p.q_heads, q_row, D, lane);
}

}  // namespace isthmus
