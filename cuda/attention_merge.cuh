// Merge of P partial attention results by their log-sum-exp (natural log):
//   L = ln(sum_i exp(L_i)),  out = sum_i exp(L_i - L) * out_i.
// Parts whose L_i is -inf (nothing visible) contribute nothing; a row where every part is -inf
// gets out = 0 and L = -inf. One warp per row (merge_row): the lanes take the parts 32 at a time,
// lane i reading L of part c + i once; the running maximum M, the sum S = sum exp(L_i - M) and the
// accumulator are rescaled by exp(M_old - M) when a group of 32 raises M (an online softmax over
// the parts), and each part's weight exp(L_i - M) is broadcast from the lane that computed it. Each
// lane owns kVec adjacent elements of head_dim and reads every part's slice of them with one vector
// load, so each partial is read once when head_dim <= 32 kVec. The decode kernel calls merge_row
// itself in the last block of a row group (attention_decode.cuh); attention_merge_kernel is the
// stand-alone merge (Attention.merge, and the general kernel's splits).
#pragma once

#include <math.h>

#include "common.cuh"

namespace isthmus {

constexpr int kMergeRowsPerBlock = 4;  // warps per block

// Row `row` of parts [P, rows, head_dim] and part_lse [P, rows] into out_row [head_dim] and, when
// not null, *lse. All 32 lanes of the warp call it together. kVec > 1 needs head_dim % kVec == 0
// and parts aligned to kVec elements.
template <typename TOut, typename TPart, int kVec>
__device__ __forceinline__ void merge_row(TOut *out_row, float *lse, const TPart *parts, const float *part_lse,
                                          int num_parts, int64_t rows, int64_t row, int head_dim, int lane) {
    for (int d_base = 0; d_base < head_dim; d_base += 32 * kVec) {  // warp-uniform: the shuffles need every lane
        const int d0 = d_base + lane * kVec;
        const bool owns = d0 < head_dim;
        float m = -INFINITY, sum = 0.0f, acc[kVec] = {};
        for (int c = 0; c < num_parts; c += 32) {
            // A volatile (L1-bypassing) load: in the decode kernel's own merge other blocks wrote
            // these during this launch, and the 128-byte line of a part's LSEs holds other row
            // groups' too, which an earlier merge on this SM may have brought into its L1. (The
            // f32 partial rows there are 256 or 512 bytes: their lines hold one row, read once.)
            const float l = c + lane < num_parts ? static_cast<const volatile float *>(part_lse)[(c + lane) * rows + row] : -INFINITY;
            const float m_new = fmaxf(m, warp_max(l));
            const float base = m_new == -INFINITY ? 0.0f : m_new;  // exp(-inf - base) = 0, never NaN
            const float alpha = expf(m - base);                     // 0 while m is -inf (acc and sum are 0)
            const float weight = expf(l - base);
            sum = sum * alpha + warp_sum(weight);
#pragma unroll
            for (int e = 0; e < kVec; ++e) acc[e] *= alpha;
            m = m_new;
            const int n = min(32, num_parts - c);
            for (int j = 0; j < n; ++j) {
                const float w = __shfl_sync(0xffffffffu, weight, j);
                if (w == 0.0f || !owns) continue;  // a part that saw nothing: its slice is not read
                const Vec<TPart, kVec> x =
                    *reinterpret_cast<const Vec<TPart, kVec> *>(parts + ((c + j) * rows + row) * head_dim + d0);
#pragma unroll
                for (int e = 0; e < kVec; ++e) acc[e] = fmaf(w, to_float(x.v[e]), acc[e]);
            }
        }
        const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
        if (owns) {
#pragma unroll
            for (int e = 0; e < kVec; ++e) out_row[d0 + e] = from_float<TOut>(acc[e] * inv_sum);
        }
        if (lse != nullptr && lane == 0 && d_base == 0) *lse = sum > 0.0f ? m + logf(sum) : -INFINITY;
    }
}

// parts: [P, rows, head_dim], part_lse: [P, rows] (f32), out: [rows, head_dim], lse: [rows] or NULL.
template <typename TOut, typename TPart, int kVec>
__global__ void attention_merge_kernel(TOut *__restrict__ out, float *__restrict__ lse, const TPart *__restrict__ parts,
                                       const float *__restrict__ part_lse, int num_parts, int64_t rows, int head_dim) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kMergeRowsPerBlock + threadIdx.x / 32;
    if (row >= rows) return;  // the whole warp: merge_row's shuffles stay within it
    merge_row<TOut, TPart, kVec>(out + row * head_dim, lse != nullptr ? lse + row : nullptr, parts, part_lse, num_parts, rows,
                                 row, head_dim, threadIdx.x % 32);
}

}  // namespace isthmus
