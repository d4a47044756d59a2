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
// cp.async brought them (16 codes a copy, chunks swizzled as for T) and, for int8, the step's 32
// scales; the mmas take the codes themselves, turned into f16 in registers (every int8 and E4M3
// value is exact in f16: codes_to_f16x2), and the scales come in after the mmas, where they factor:
//   S^T: each lane reads its 4 of every 16 head_dim elements of keys g and g + 8 as whole 16-byte
//        words: the head_dim axis is permuted (physical element D/4 t + 4 kk + j is the slice kk's
//        column 2t + j, j < 2, or 2t + 8 + j - 2), which Q^T's fragments follow. Q^T is f16 too:
//        each row times a power of two that puts its largest element in [2^14, 2^15) (a bf16 row
//        converts exactly), undone with the softmax scale, as are fp8's per-head K scale and
//        int8's per-key one (a whole row of S^T, one per accumulator of the lane);
//   O^T: V^T's rows are head_dim, which may be permuted too (physical element D/8 g + 2 i + h is
//        slice i's row g + 8 h, and the output is written back in place), so each lane reads D/8
//        contiguous codes of keys 2t, 2t + 1, 2t + 8, 2t + 9 and pairs the keys with byte
//        permutes. fp8's per-head V scale multiplies the output; int8's per-key one multiplies P
//        (p s_v for each key) before it is rounded to f16, times 2^-E, E the largest scale
//        exponent the warp has seen (the output rescaled when it grows, as for the max), so that
//        the largest factor is in [1, 2) whatever the scales' range.
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
// 2 D bytes apart, read 8 different chunks of a 128-byte group: 8 different groups of 4 banks. A
// row of codes has D / 16 chunks (8 at head_dim 128: the same swizzle, under which the 16-byte
// reads of decode_step, two keys or keys 2t and 8 others at a time, meet 8 different chunks).
// A quantized int8 cache adds, after the rings of codes, each warp's ring of scales.
template <typename T, int D, typename C = T> struct DecodeLayout {
    static constexpr int kTile = kDecodeStep * D;  // elements of one K or V tile
    static constexpr size_t kRingBytes = sizeof(C) * kDecodeWarps * kDecodeStages * 2 * kTile;
    static constexpr size_t kScaleBytes = has_token_scales<C>() ? sizeof(float) * kDecodeWarps * kDecodeStages * kDecodeScales : 0;
    static constexpr size_t kStagedBytes = kRingBytes + kScaleBytes;
    static constexpr size_t kStateBytes = sizeof(float) * kDecodeWarps * kDecodeRows * (D + 2);  // o, m, l
    static constexpr size_t kBytes = kStagedBytes > kStateBytes ? kStagedBytes : kStateBytes;
};

// The chunk swizzle of a staged row of C with kChunks 16-byte chunks (see DecodeLayout).
template <int kChunks> __device__ __forceinline__ int decode_chunk(int chunk, int row) {
    return chunk ^ (row % (kChunks < 8 ? kChunks : 8));
}

// Where a step's int8 scale of key k (K's, or V's after kDecodeStep) sits in the stage: key k
// and k + 8 side by side, the pair the lane with g = k % 8 reads with one 8-byte load.
__device__ __forceinline__ int decode_scale_slot(int k) { return (k / kDecodeStep) * kDecodeStep + 2 * (k % 8) + (k % kDecodeStep) / 8; }

// One warp's running softmax state of row t = lane % 4: m is the same on the row's 8 lanes, l is
// this lane's sum over its own keys (g and g + 8 of every step) until the end; o[i][0] =
// O[t][16 i + g] and o[i][2] = O[t][16 i + g + 8] (o[i][1] and o[i][3] belong to the zero columns).
// An int8 cache's o is kept times 2^(127 - v_exp), v_exp the largest exponent field of a V scale
// seen (at least 1); v_inv is that factor.
template <int D> struct DecodeState {
    float m, l;
    float o[D / 16][4];
    uint32_t v_exp;
    float v_inv;
};

// How raw scores s of this lane's row become base-2 logits x: x = s mul, or with a soft-cap
// x = cap_log2 tanh(s mul); mul holds the softmax scale (times log2(e), or over the cap) and, for
// codes, the row's power of two and fp8's K scale (int8's per-key K scale comes with the step).
struct DecodeScores {
    bool capped;
    float mul, cap_log2;
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
// k_src / v_src on (keys `stride` elements apart), each to its swizzled place (DecodeLayout).
// kMasked: keys outside [lo, hi), or all of them when the page is outside the pool, are
// zero-filled (p = 0 must meet a finite v; int8's scales likewise) and not read.
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
        const int dst = r * D + decode_chunk<Copies::kChunks>(chunk, r) * Copies::kElems;
        tc::cp_async<16>(k_tile + dst, k_src + offset, valid);
        tc::cp_async<16>(v_tile + dst, v_src + offset, valid);
    }
}

// The 16-bit type of a step's mma operands: T, or f16 for codes (codes_to_f16x2's cheap widenings
// produce f16, which holds every int8 and E4M3 value exactly).
template <typename T, typename C> using DecodeOperand = typename std::conditional<is_quantized<C>(), __half, T>::type;

// s += S^T = K Q^T over the staged K tile k_s: lane (g, t) gets S[row t][key g] in s[0] and
// S[row t][key g + 8] in s[2].
template <typename C, int D>
__device__ __forceinline__ void decode_scores(float (&s)[4], const uint32_t (&qf)[D / 16][2], const C *k_s, int lane) {
    constexpr int kSlices = D / 16;
    const int g = lane / 4, t = lane % 4;
    if constexpr (is_quantized<C>()) {
        // Keys g and g + 8, elements [D/4 t, D/4 (t + 1)) of each: kLaneChunks 16-byte chunks, whose
        // word kk holds slice kk's A elements (a[0], a[2]) of key g, or (a[1], a[3]) of key g + 8.
        constexpr int kChunks = D / 16, kLaneChunks = D / 64;
        Vec<uint32_t, 4> words[2][kLaneChunks];
#pragma unroll
        for (int r = 0; r < 2; ++r)
#pragma unroll
            for (int h = 0; h < kLaneChunks; ++h) {
                const int key = g + 8 * r;
                words[r][h] = *reinterpret_cast<const Vec<uint32_t, 4> *>(k_s + key * D + decode_chunk<kChunks>(kLaneChunks * t + h, key) * 16);
            }
#pragma unroll
        for (int kk = 0; kk < kSlices; ++kk) {
            uint32_t a[4];
            codes_to_f16x2(C{}, words[0][kk / 4].v[kk % 4], a[0], a[2]);
            codes_to_f16x2(C{}, words[1][kk / 4].v[kk % 4], a[1], a[3]);
            tc::mma_m16n8k16<__half>(s, a, qf[kk], s);
        }
    } else {
        // ldmatrix matrices: keys 0-7 and 8-15 (a[0], a[1]) of dims 0-7, then of dims 8-15; the
        // lane's row is key lane % 8 (+ 8) and its chunk 2 kk + lane / 16, swizzled by lane % 8.
        const C *k_row = k_s + ((lane % 8) + 8 * ((lane / 8) % 2)) * D;
        const int k_swizzle = (lane / 16) ^ (lane % 8);  // (2 kk + b) ^ x = 2 kk ^ (b ^ x) for b < 2
#pragma unroll
        for (int kk = 0; kk < kSlices; ++kk) {
            uint32_t a[4];
            tc::ldmatrix_x4(a, k_row + ((2 * kk) ^ k_swizzle) * 8);
            tc::mma_m16n8k16<C>(s, a, qf[kk], s);
        }
    }
}

// o += V^T P^T over the staged V tile v_s, b P^T's fragment (keys 2t, 2t + 1 and 2t + 8, 2t + 9).
template <typename C, int D>
__device__ __forceinline__ void decode_values(float (&o)[D / 16][4], const uint32_t (&b)[2], const C *v_s, int lane) {
    constexpr int kSlices = D / 16;
    const int g = lane / 4, t = lane % 4;
    if constexpr (is_quantized<C>()) {
        // Keys 2t, 2t + 1, 2t + 8, 2t + 9, elements [D/8 g, D/8 (g + 1)) of each (decode_out_dim):
        // word w holds slice 2w's rows g, g + 8, then slice 2w + 1's; permuting the bytes of two
        // keys' words pairs the keys as the A fragment wants.
        constexpr int kChunks = D / 16, kWords = D / 32;
        Vec<uint32_t, kWords> words[4];
#pragma unroll
        for (int n = 0; n < 4; ++n) {
            const int key = 2 * t + n % 2 + 8 * (n / 2), byte = D / 8 * g;
            words[n] = *reinterpret_cast<const Vec<uint32_t, kWords> *>(v_s + key * D + decode_chunk<kChunks>(byte / 16, key) * 16 + byte % 16);
        }
#pragma unroll
        for (int w = 0; w < kWords; ++w) {
            uint32_t a0[4], a1[4];  // slices 2w and 2w + 1
            codes_to_f16x2(C{}, __byte_perm(words[0].v[w], words[1].v[w], 0x5140u), a0[0], a0[1]);
            codes_to_f16x2(C{}, __byte_perm(words[0].v[w], words[1].v[w], 0x7362u), a1[0], a1[1]);
            codes_to_f16x2(C{}, __byte_perm(words[2].v[w], words[3].v[w], 0x5140u), a0[2], a0[3]);
            codes_to_f16x2(C{}, __byte_perm(words[2].v[w], words[3].v[w], 0x7362u), a1[2], a1[3]);
            tc::mma_m16n8k16<__half>(o[2 * w], a0, b, o[2 * w]);
            tc::mma_m16n8k16<__half>(o[2 * w + 1], a1, b, o[2 * w + 1]);
        }
    } else {
        // ldmatrix.trans matrices: dims 0-7 and 8-15 (a[0], a[1]) of keys 0-7, then of keys 8-15;
        // the lane's row is key lane % 8 (+ 8), its chunk 2 i + (lane / 8) % 2, swizzled.
        const C *v_row = v_s + ((lane % 8) + 8 * (lane / 16)) * D;
        const int v_swizzle = ((lane / 8) % 2) ^ (lane % 8);
#pragma unroll
        for (int i = 0; i < kSlices; ++i) {
            uint32_t a[4];
            tc::ldmatrix_x4_trans(a, v_row + ((2 * i) ^ v_swizzle) * 8);
            tc::mma_m16n8k16<C>(o[i], a, b, o[i]);
        }
    }
}

// The head_dim element that accumulator o[i][2h] of lane (g, t) holds (row t of the output).
template <typename C, int D> __device__ __forceinline__ int decode_out_dim(int i, int h, int g) {
    return is_quantized<C>() ? D / 8 * g + 2 * i + h : 16 * i + g + 8 * h;
}

// One 16-key step from the staged tiles k_s / v_s (and for int8 the step's scales, placed by
// decode_scale_slot). kMasked: some key of the step is outside [lo, hi), hidden from some row by
// the window, or on a page outside the pool (bad_page); those score -inf.
template <typename T, typename C, int D, bool kMasked>
__device__ __forceinline__ void decode_step(DecodeState<D> &st, const uint32_t (&qf)[D / 16][2], const C *k_s, const C *v_s,
                                            const float *scales, const AttentionParams &p, const DecodeScores &sc,
                                            const DecodeMask &mask, int t0, bool bad_page, int lane) {
    constexpr int kSlices = D / 16;
    const int g = lane / 4, t = lane % 4;

    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    decode_scores<C, D>(s, qf, k_s, lane);
    float x[2] = {s[0], s[2]};  // keys g and g + 8 of row t
    if constexpr (has_token_scales<C>()) {
        const float2 k_scale = *reinterpret_cast<const float2 *>(scales + 2 * g);
        x[0] *= k_scale.x;
        x[1] *= k_scale.y;
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        x[i] *= sc.mul;
        if (sc.capped)  // on its own line: the perf model weights the tanh by its source line
            x[i] = sc.cap_log2 * tanhf(x[i]);
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
    float p0 = exp2f(x[0] - base), p1 = exp2f(x[1] - base);
    st.l += p0 + p1;
    if constexpr (has_token_scales<C>()) {
        // P times the keys' V scales, over 2^E (DecodeState): E follows the warp's largest scale
        // (positive floats order as their bits: one redux.sync).
        const float2 v_scale = *reinterpret_cast<const float2 *>(scales + kDecodeStep + 2 * g);
        const uint32_t e = __reduce_max_sync(0xffffffffu, max(__float_as_uint(v_scale.x), __float_as_uint(v_scale.y))) >> 23;
        if (e > st.v_exp) {  // warp-uniform, and rare once the largest scale is seen
            // 2^(E - e), 0 when past f32's normals: what is left of o is then below 2^-126 of the new terms
            const float shrink = __uint_as_float(static_cast<uint32_t>(max(127 + static_cast<int>(st.v_exp) - static_cast<int>(e), 0)) << 23);
#pragma unroll
            for (int i = 0; i < kSlices; ++i) {
                st.o[i][0] *= shrink;
                st.o[i][2] *= shrink;
            }
            st.v_exp = e;
            st.v_inv = __uint_as_float((254u - e) << 23);  // 2^(127 - e): e stays below 249 (scales are max|x| / 127)
        }
        p0 *= v_scale.x * st.v_inv;
        p1 *= v_scale.y * st.v_inv;
    }

    // P^T's B fragment: (key 2t, 2t + 1) and (2t + 8, 2t + 9) of column g, i.e. row g / 2, from the
    // lanes (g' = 2t, t' = g / 2) and (2t + 1, g / 2) that scored them. Odd columns get row values
    // too; their products land in O^T's zero columns, never read.
    const uint32_t pair = tc::pack2<DecodeOperand<T, C>>(p0, p1);  // (key g, key g + 8) of row t
    const uint32_t even = __shfl_sync(0xffffffffu, pair, 8 * t + g / 2);
    const uint32_t odd = __shfl_sync(0xffffffffu, pair, 8 * t + 4 + g / 2);
    const uint32_t b[2] = {(even & 0xffffu) | (odd << 16), (even >> 16) | (odd & 0xffff0000u)};
    decode_values<C, D>(st.o, b, v_s, lane);
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
    // g (zero past the last row), odd columns are zero. Two 16-bit elements per register: T's, or
    // for codes f16 of the row times 2^shift, in decode_scores' order of head_dim.
    uint32_t qf[kSlices][2];
    float row_mul = 1.0f;  // what undoes the row's power of two, for the row of lane (g, t) = row t
    {
        const int row = first_row + g / 2;
        const bool real = g % 2 == 0 && row <= last_row;
        const T *q = static_cast<const T *>(p.q) + q_row_of(min(row, last_row)) * D;
        if constexpr (is_quantized<C>()) {
            float v[D / 4];  // elements [D/4 t, D/4 (t + 1)): slice kk's 2t, 2t + 1, 2t + 8, 2t + 9 at 4 kk
            float top = 0.0f;
#pragma unroll
            for (int e = 0; e < D / 4; ++e) {
                v[e] = real ? to_float(q[D / 4 * t + e]) : 0.0f;
                top = fmaxf(top, fabsf(v[e]));
            }
            top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));  // over the row's 4 lanes
            top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 2));
            int top_exp;
            frexpf(top, &top_exp);  // top = f 2^top_exp, f in [0.5, 1): top 2^(15 - top_exp) in [2^14, 2^15)
            const int shift = max(-126, min(126, 15 - top_exp));
            const float up = ldexpf(1.0f, shift);
#pragma unroll
            for (int kk = 0; kk < kSlices; ++kk) {
                qf[kk][0] = tc::pack2<__half>(v[4 * kk] * up, v[4 * kk + 1] * up);
                qf[kk][1] = tc::pack2<__half>(v[4 * kk + 2] * up, v[4 * kk + 3] * up);
            }
            row_mul = __shfl_sync(0xffffffffu, ldexpf(1.0f, -shift), 8 * t);  // lane (2t, 0) holds row t
        } else {
            const uint32_t *q2 = reinterpret_cast<const uint32_t *>(q) + t;
#pragma unroll
            for (int kk = 0; kk < kSlices; ++kk) {
                qf[kk][0] = real ? q2[8 * kk] : 0u;      // elements 16 kk + 2t, + 1
                qf[kk][1] = real ? q2[8 * kk + 4] : 0u;  // elements 16 kk + 2t + 8, + 9
            }
        }
    }
    // fp8: one scale per kv head, of K folded into the scores, of V into the output; int8: one per key.
    const float k_head_scale = is_quantized<C>() && !has_token_scales<C>() ? p.k_scales[kv_head] : 1.0f;
    const float v_head_scale = is_quantized<C>() && !has_token_scales<C>() ? p.v_scales[kv_head] : 1.0f;
    const bool capped = p.softcap > 0.0f;
    const DecodeScores sc{capped, (capped ? p.scale / p.softcap : p.scale * kLog2e) * row_mul * k_head_scale, p.softcap * kLog2e};

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
    st.v_exp = 1;
    st.v_inv = 8.507059e37f;  // 2^126
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
    // int8: lane i copies the scale of key i % 16 of a step, of K (i < 16) or V.
    const int step0 = mask.lo / kDecodeStep;
    const int steps = mask.hi > mask.lo ? (mask.hi - 1) / kDecodeStep + 1 - step0 : 0;
    const int my_steps = steps > warp ? (steps - warp - 1) / kDecodeWarps + 1 : 0;

    // This warp's ring: stage s holds the K tile at ring + 2 s kTile and the V tile after it; an
    // int8 cache's scales (stage s at scale_ring + s kDecodeScales) follow the rings.
    C *ring = reinterpret_cast<C *>(smem) + warp * kDecodeStages * 2 * Layout::kTile;
    float *scale_ring = reinterpret_cast<float *>(smem + Layout::kRingBytes) + warp * kDecodeStages * kDecodeScales;
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
                tc::cp_async<4>(scale_ring + stage * kDecodeScales + decode_scale_slot(lane), (lane < kDecodeStep ? p.k_scales : p.v_scales) + at,
                                valid);
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
        const C *k_s = ring + 2 * stage * Layout::kTile;
        const float *scales = scale_ring + stage * kDecodeScales;  // int8 only
        const int t0 = (step0 + warp + n * kDecodeWarps) * kDecodeStep;
        if ((masked_steps >> (n % 32)) & 1u)
            decode_step<T, C, D, true>(st, qf, k_s, k_s + Layout::kTile, scales, p, sc, mask, t0, (bad_pages >> (n % 32)) & 1u, lane);
        else
            decode_step<T, C, D, false>(st, qf, k_s, k_s + Layout::kTile, scales, p, sc, mask, t0, false, lane);
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
    // The scale o is still missing: fp8's per-head V scale, or int8's 2^(E - 127) (DecodeState).
    const float o_scale = has_token_scales<C>() ? __uint_as_float(st.v_exp << 23) : v_head_scale;
#pragma unroll
    for (int i = 0; i < kSlices; ++i) {
        o_mine[decode_out_dim<C, D>(i, 0, g)] = st.o[i][0] * o_scale;
        o_mine[decode_out_dim<C, D>(i, 1, g)] = st.o[i][2] * o_scale;
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
