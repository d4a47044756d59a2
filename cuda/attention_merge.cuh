// Merge of P partial attention results by their log-sum-exp (natural log):
//   L = ln(sum_i exp(L_i)),  out = sum_i exp(L_i - L) * out_i.
// Parts whose L_i is -inf (nothing visible) contribute nothing; a row where every part is -inf
// gets out = 0 and L = -inf. One warp per row: the lanes first reduce the row's P log-sum-exps
// (lane i reads parts i, i + 32, ...), then each lane owns kVec adjacent elements of head_dim and
// reads every part's slice of them with one vector load, so each partial is read once.
#pragma once

#include <math.h>

#include "common.cuh"

namespace isthmus {

constexpr int kMergeRowsPerBlock = 4;  // warps per block

// parts: [P, rows, head_dim], part_lse: [P, rows] (f32), out: [rows, head_dim], lse: [rows] or NULL.
// kVec > 1 needs head_dim % kVec == 0 and parts aligned to kVec elements.
template <typename TOut, typename TPart, int kVec>
__global__ void attention_merge_kernel(TOut *__restrict__ out, float *__restrict__ lse, const TPart *__restrict__ parts,
                                       const float *__restrict__ part_lse, int num_parts, int64_t rows, int head_dim) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kMergeRowsPerBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float max_lse = -INFINITY;
    for (int p = lane; p < num_parts; p += 32) max_lse = fmaxf(max_lse, part_lse[p * rows + row]);
    max_lse = warp_max(max_lse);
    TOut *out_row = out + row * head_dim;
    if (max_lse == -INFINITY) {
        for (int d = lane; d < head_dim; d += 32) out_row[d] = from_float<TOut>(0.0f);
        if (lse != nullptr && lane == 0) lse[row] = -INFINITY;
        return;
    }
    float sum = 0.0f;
    for (int p = lane; p < num_parts; p += 32) {
        const float l = part_lse[p * rows + row];
        if (l != -INFINITY) sum += expf(l - max_lse);
    }
    const float total = max_lse + logf(warp_sum(sum));
    for (int d0 = lane * kVec; d0 < head_dim; d0 += 32 * kVec) {
        float acc[kVec] = {};
        for (int p = 0; p < num_parts; ++p) {
            const float l = part_lse[p * rows + row];  // the same word on every lane: one broadcast
            if (l == -INFINITY) continue;
            const float weight = expf(l - total);
            const Vec<TPart, kVec> x = *reinterpret_cast<const Vec<TPart, kVec> *>(parts + (p * rows + row) * head_dim + d0);
#pragma unroll
            for (int e = 0; e < kVec; ++e) acc[e] = fmaf(weight, to_float(x.v[e]), acc[e]);
        }
#pragma unroll
        for (int e = 0; e < kVec; ++e) out_row[d0 + e] = from_float<TOut>(acc[e]);
    }
    if (lse != nullptr && lane == 0) lse[row] = total;
}

}  // namespace isthmus
