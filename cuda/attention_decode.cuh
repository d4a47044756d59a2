// Decode attention for the common case: f16/bf16, head_dim 64 or 128, pages a multiple of 16
// tokens. It streams the KV cache once, so it is judged by bytes per issued instruction; the
// general kernel (attention.cuh) keeps every other case.
//
// Grid as the general kernel: x = groups of kDecodeRows query rows of one kv head (a GQA group,
// or several new tokens of it), y = (sequence, kv head), z = KV split. Every thread holds all
// kDecodeRows query rows for its 16-byte slice of head_dim, so each K/V byte loaded serves all the
// rows. The block's warps take 16-key steps in turn (warp w: steps w, w + 4, ...). In a step a
// lane loads kLoads 16-byte chunks of K and of V straight from global memory (a key row is
// kChunks adjacent lanes, so every load is coalesced), 8 KiB in flight per warp at head_dim 128,
// found with one block-table entry per step. Partial dot products over the lane's slice are summed
// across the kChunks lanes of a row by a reduce-scatter, which leaves two of the step's
// (key, row) scores on every lane; the online softmax in base 2 (q carries scale * log2 e) then
// updates the running max m, sum l and unnormalised output o, and p is broadcast back to the
// lanes that hold the matching V chunks. At the end the warps' states are merged in shared
// memory and each warp writes one row, as out/lse or as an f32 partial for attention_merge.
#pragma once

#include "attention.cuh"

namespace isthmus {

constexpr int kDecodeRows = 4;         // query rows per block, all held by every thread
constexpr int kDecodeWarps = 4;        // one output row each at the end
constexpr int kDecodeStep = 16;        // keys per warp step: one page lookup, two scores per lane
// Resident blocks per SM (Attention.splitCount assumes it): 8 warps of 8 KiB in flight each keep
// about 2.5x an H200's bandwidth-latency product per SM busy; 3 would cap registers at 168 and spill.
constexpr int kDecodeBlocksPerSm = 2;

// The fast path's shape: the launcher sends everything else to attention_kernel.
template <typename T, int D> constexpr bool decode_fast_path() { return sizeof(T) == 2 && (D == 64 || D == 128); }

// Eight f16/bf16 (one 16-byte chunk) as floats. bf16 widens with a shift or a mask per element.
template <typename T> __device__ __forceinline__ void unpack8(const Vec<uint32_t, 4> &raw, float (&f)[8]) {
#pragma unroll
    for (int w = 0; w < 4; ++w) {
        if constexpr (std::is_same<T, __nv_bfloat16>::value) {
            f[2 * w] = __uint_as_float(raw.v[w] << 16);
            f[2 * w + 1] = __uint_as_float(raw.v[w] & 0xffff0000u);
        } else {
            f[2 * w] = __half2float(__ushort_as_half(static_cast<unsigned short>(raw.v[w] & 0xffffu)));
            f[2 * w + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(raw.v[w] >> 16)));
        }
    }
}

// Sums v across groups of `Lanes` adjacent lanes, leaving lane l with the totals of
// v[(l % Lanes) * N / Lanes ...] in v[0 .. N / Lanes): each halving exchange sends the half the
// partner keeps, so it takes N - N / Lanes shuffles instead of N log2(Lanes). A template
// recursion over the live prefix v[0 .. Count) rather than a loop, so that every index is a
// constant and v stays in registers.
template <int N, int Lanes, int Count = N> __device__ __forceinline__ void reduce_scatter(float (&v)[N], int lane) {
    if constexpr (Lanes > 1) {
        constexpr int kMask = Lanes / 2, kHalf = Count / 2;
        const bool upper = lane & kMask;
#pragma unroll
        for (int i = 0; i < kHalf; ++i) {
            const float send = upper ? v[i] : v[i + kHalf];
            const float keep = upper ? v[i + kHalf] : v[i];
            v[i] = keep + __shfl_xor_sync(0xffffffffu, send, kMask);
        }
        reduce_scatter<N, kMask, kHalf>(v, lane);
    }
}

// One warp's running softmax state over the keys it has seen. m is per row and the same on every
// lane; l[i] is this lane's share of the sum for row pair_row(lane) + i; o is this lane's slice.
struct DecodeState {
    float m[kDecodeRows];
    float l[2];
    float o[kDecodeRows][8];
};

// The first of the two rows whose scores this lane holds after the reduce-scatter.
__device__ __forceinline__ int pair_row(int lane) { return (lane & 1) * 2; }

// Where the step's keys are: k/v point at this lane's chunk of its first key (null when the
// step's page is outside the pool); keys of the step are `stride` elements apart.
template <typename T> struct DecodeStep {
    const T *k, *v;
    int64_t stride;
    int t0;  // first key of the step
};

// One 16-key step. kMasked: some key of the step is outside [lo, hi) or hidden from some row by
// the window, or the page is missing; such keys load as zeros and score -inf.
template <typename T, int D, bool kMasked>
__device__ __forceinline__ void decode_step(DecodeState &st, const float (&q)[kDecodeRows][8], const DecodeStep<T> &s,
                                            const AttentionParams &p, int lo, int hi, const int (&pair_position)[2],
                                            float cap_log2, float inv_cap, int lane) {
    constexpr int kChunks = D / 8, kKeysPerLoad = 32 / kChunks, kLoads = kDecodeStep / kKeysPerLoad;
    constexpr int kScores = kLoads * kDecodeRows;
    static_assert(kScores / kChunks == 2, "the reduce-scatter leaves two scores per lane");
    const int sub = lane / kChunks, chunk = lane % kChunks;

    // All loads first: 2 * kLoads 16-byte requests in flight per lane.
    Vec<uint32_t, 4> kraw[kLoads], vraw[kLoads];
#pragma unroll
    for (int j = 0; j < kLoads; ++j) {
        const int t = s.t0 + j * kKeysPerLoad + sub;
        if (!kMasked || (s.k != nullptr && t >= lo && t < hi)) {
            kraw[j] = *reinterpret_cast<const Vec<uint32_t, 4> *>(s.k + j * kKeysPerLoad * s.stride);
            vraw[j] = *reinterpret_cast<const Vec<uint32_t, 4> *>(s.v + j * kKeysPerLoad * s.stride);
        } else {  // p = 0 must meet a finite v
#pragma unroll
            for (int w = 0; w < 4; ++w) kraw[j].v[w] = vraw[j].v[w] = 0u;
        }
    }

    // Partial q.k over this lane's 8 elements, score[j * kDecodeRows + r], then summed over the row.
    float score[kScores];
#pragma unroll
    for (int j = 0; j < kLoads; ++j) {
        float k[8];
        unpack8<T>(kraw[j], k);
#pragma unroll
        for (int r = 0; r < kDecodeRows; ++r) {
            float sum = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; ++e) sum = fmaf(q[r][e], k[e], sum);
            score[j * kDecodeRows + r] = sum;
        }
    }
    reduce_scatter<kScores, kChunks>(score, lane);
    // This lane now holds key s.t0 + (chunk / 2) * kKeysPerLoad + sub for rows pair_row + 0, 1.
    float sc[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        sc[i] = score[i];
        if (p.softcap > 0.0f) sc[i] = cap_log2 * tanhf(sc[i] * inv_cap);
        if constexpr (kMasked) {
            const int t = s.t0 + (chunk / 2) * kKeysPerLoad + sub;
            if (s.k == nullptr || t < lo || t >= hi || !key_visible(p, t, pair_position[i])) sc[i] = -INFINITY;
        }
    }

    // Row maxima: the lanes of one parity hold the same two rows; lane ^ 1 holds the other two.
    float mx[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        mx[i] = sc[i];
#pragma unroll
        for (int offset = 2; offset < 32; offset <<= 1) mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], offset));
    }
    const bool odd = lane & 1;
    float step_max[kDecodeRows];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const float other = __shfl_xor_sync(0xffffffffu, mx[i], 1);
        step_max[i] = odd ? other : mx[i];
        step_max[2 + i] = odd ? mx[i] : other;
    }
    // New max per row; `base` stands in for it while a row has seen no visible key, so that
    // exp2(-inf - base) = 0 instead of NaN.
    float base[kDecodeRows], alpha[kDecodeRows];
    bool grew = false;
#pragma unroll
    for (int r = 0; r < kDecodeRows; ++r) {
        const float m_new = fmaxf(st.m[r], step_max[r]);
        grew |= m_new != st.m[r];
        base[r] = m_new == -INFINITY ? 0.0f : m_new;
        alpha[r] = exp2f(st.m[r] - base[r]);
        st.m[r] = m_new;
    }
    if (grew) {  // warp-uniform: m is the same on every lane; the max settles after a few steps
#pragma unroll
        for (int r = 0; r < kDecodeRows; ++r)
#pragma unroll
            for (int e = 0; e < 8; ++e) st.o[r][e] *= alpha[r];
#pragma unroll
        for (int i = 0; i < 2; ++i) st.l[i] *= odd ? alpha[2 + i] : alpha[i];
    }
    float prob[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        prob[i] = exp2f(sc[i] - (odd ? base[2 + i] : base[i]));
        st.l[i] += prob[i];
    }

    // o += p v: the lane holding V chunk j fetches p for its key from the two lanes that scored it.
#pragma unroll
    for (int j = 0; j < kLoads; ++j) {
        const int src = sub * kChunks + 2 * j;
        float pr[kDecodeRows];
        pr[0] = __shfl_sync(0xffffffffu, prob[0], src);
        pr[1] = __shfl_sync(0xffffffffu, prob[1], src);
        pr[2] = __shfl_sync(0xffffffffu, prob[0], src + 1);
        pr[3] = __shfl_sync(0xffffffffu, prob[1], src + 1);
        float v[8];
        unpack8<T>(vraw[j], v);
#pragma unroll
        for (int r = 0; r < kDecodeRows; ++r)
#pragma unroll
            for (int e = 0; e < 8; ++e) st.o[r][e] = fmaf(pr[r], v[e], st.o[r][e]);
    }
}

template <typename T, int D>
__global__ void __launch_bounds__(kDecodeWarps * 32, kDecodeBlocksPerSm) attention_decode_kernel(const AttentionParams p) {
    static_assert(kDecodeRows == kDecodeWarps, "each warp writes one row at the end");
    constexpr int kChunks = D / 8;
    constexpr float kLog2e = 1.4426950408889634f;
    __shared__ float m_s[kDecodeWarps][kDecodeRows], l_s[kDecodeWarps][kDecodeRows];
    __shared__ __align__(16) float o_s[kDecodeWarps][kDecodeRows][D];

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int sub = lane / kChunks, chunk = lane % kChunks;
    const DecodeBlock blk(p, kDecodeRows);
    if (blk.idle()) return;
    const int b = blk.b, kv_head = blk.kv_head, split = blk.split, group = blk.group, q_begin = blk.q_begin;
    const int rows = blk.rows, first_row = blk.first_row, cached = blk.cached, kv_len = blk.kv_len;
    const int last_row = min(first_row + kDecodeRows, rows) - 1;

    // The rows' queries, this lane's 8 elements, times scale * log2 e (or scale alone under a
    // soft-cap, whose tanh needs the natural scores); rows past the last are zero.
    const float q_scale = p.softcap > 0.0f ? p.scale : p.scale * kLog2e;
    const float cap_log2 = p.softcap * kLog2e, inv_cap = p.softcap > 0.0f ? 1.0f / p.softcap : 0.0f;
    const T *q_all = static_cast<const T *>(p.q);
    float q[kDecodeRows][8];
#pragma unroll
    for (int r = 0; r < kDecodeRows; ++r) {
        const int row = min(first_row + r, last_row);
        const int64_t q_row = static_cast<int64_t>(q_begin + row / group) * p.q_heads + kv_head * group + row % group;
        unpack8<T>(*reinterpret_cast<const Vec<uint32_t, 4> *>(q_all + q_row * D + chunk * 8), q[r]);
#pragma unroll
        for (int e = 0; e < 8; ++e) q[r][e] = first_row + r <= last_row ? q[r][e] * q_scale : 0.0f;
    }
    int pair_position[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) pair_position[i] = cached + min(first_row + pair_row(lane) + i, last_row) / group;

    // Keys some row sees ([lo, hi)) and keys every row sees ([full_lo, full_hi): the same window
    // with the first and last token swapped); only steps not inside the latter need masks.
    const int first_token = first_row / group, last_token = last_row / group;
    int lo, hi, full_lo, full_hi;
    visible_key_range(p, cached, kv_len, first_token, last_token, split, &lo, &hi);
    visible_key_range(p, cached, kv_len, last_token, first_token, split, &full_lo, &full_hi);

    DecodeState st;
#pragma unroll
    for (int r = 0; r < kDecodeRows; ++r) {
        st.m[r] = -INFINITY;
#pragma unroll
        for (int e = 0; e < 8; ++e) st.o[r][e] = 0.0f;
    }
    st.l[0] = st.l[1] = 0.0f;

    const T *k_cache = static_cast<const T *>(p.k_cache);
    const T *v_cache = static_cast<const T *>(p.v_cache);
    const int32_t *table = p.block_table + static_cast<int64_t>(b) * p.max_blocks;
    const int64_t stride = static_cast<int64_t>(p.kv_heads) * D;  // between adjacent slots of a block
    const int64_t lane_offset = kv_head * D + sub * stride + chunk * 8;
    const int step0 = lo / kDecodeStep;
    const int steps = hi > lo ? (hi - 1) / kDecodeStep + 1 - step0 : 0;
    // Lane i holds the block id and slot of this warp's step n + i: the table is read 32 steps
    // ahead, so no step waits on it, and the division by block_size happens there too.
    int32_t pages = -1, slots = 0;
    for (int n = 0; warp + n * kDecodeWarps < steps; ++n) {
        if (n % 32 == 0) {
            const int t = (step0 + warp + (n + lane) * kDecodeWarps) * kDecodeStep;
            const int page = t / p.block_size;
            pages = warp + (n + lane) * kDecodeWarps < steps && page < p.max_blocks ? table[page] : -1;
            slots = t - page * p.block_size;
        }
        const int block = __shfl_sync(0xffffffffu, pages, n % 32);
        const int slot = __shfl_sync(0xffffffffu, slots, n % 32);
        DecodeStep<T> s;
        s.t0 = (step0 + warp + n * kDecodeWarps) * kDecodeStep;
        s.stride = stride;
        if (block >= 0 && block < p.num_blocks) {
            const int64_t offset = (static_cast<int64_t>(block) * p.block_size + slot) * stride + lane_offset;
            s.k = k_cache + offset;
            s.v = v_cache + offset;
        } else {
            s.k = s.v = nullptr;
        }
        if (s.k != nullptr && s.t0 >= full_lo && s.t0 + kDecodeStep <= full_hi)
            decode_step<T, D, false>(st, q, s, p, lo, hi, pair_position, cap_log2, inv_cap, lane);
        else
            decode_step<T, D, true>(st, q, s, p, lo, hi, pair_position, cap_log2, inv_cap, lane);
    }

    // The lanes that took other keys of the same chunk (lane ^ kChunks, ...) share m: add up o.
#pragma unroll
    for (int offset = kChunks; offset < 32; offset <<= 1)
#pragma unroll
        for (int r = 0; r < kDecodeRows; ++r)
#pragma unroll
            for (int e = 0; e < 8; ++e) st.o[r][e] += __shfl_xor_sync(0xffffffffu, st.o[r][e], offset);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int offset = 2; offset < 32; offset <<= 1) st.l[i] += __shfl_xor_sync(0xffffffffu, st.l[i], offset);
    if (sub == 0) {
#pragma unroll
        for (int r = 0; r < kDecodeRows; ++r) {
            float4 *dst = reinterpret_cast<float4 *>(&o_s[warp][r][chunk * 8]);
            dst[0] = make_float4(st.o[r][0], st.o[r][1], st.o[r][2], st.o[r][3]);
            dst[1] = make_float4(st.o[r][4], st.o[r][5], st.o[r][6], st.o[r][7]);
        }
    }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < kDecodeRows; ++r) m_s[warp][r] = st.m[r];
    }
    if (lane < 2) {  // lane 0 holds the sums of rows 0 and 1, lane 1 those of rows 2 and 3
#pragma unroll
        for (int i = 0; i < 2; ++i) l_s[warp][pair_row(lane) + i] = st.l[i];
    }
    __syncthreads();

    // Warp w merges row w over the warps: weights 2^(m_w - M), a warp that saw nothing weighs 0.
    const int r = warp, row = first_row + r;
    if (row > last_row) return;
    float max_m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) max_m = fmaxf(max_m, m_s[w][r]);
    float weight[kDecodeWarps], sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) {
        weight[w] = m_s[w][r] == -INFINITY ? 0.0f : exp2f(m_s[w][r] - max_m);
        sum += weight[w] * l_s[w][r];
    }
    const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
    const float row_lse = sum > 0.0f ? (max_m + log2f(sum)) * 0.6931471805599453f : -INFINITY;  // natural log
    const int64_t q_row = static_cast<int64_t>(q_begin + row / group) * p.q_heads + kv_head * group + row % group;
    const int64_t part_row = static_cast<int64_t>(split) * p.total_tokens * p.q_heads + q_row;
    for (int d = lane; d < D; d += 32) {
        float acc = 0.0f;
#pragma unroll
        for (int w = 0; w < kDecodeWarps; ++w) acc = fmaf(weight[w], o_s[w][r][d], acc);
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

}  // namespace isthmus
