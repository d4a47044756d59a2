// Merge of P partial attention results by their log-sum-exp (natural log):
//   L = ln(sum_i exp(L_i)),  out = sum_i exp(L_i - L) * out_i.
// Parts whose L_i is -inf (nothing visible) contribute nothing; a row where every part is -inf
// gets out = 0 and L = -inf. One warp per row, lanes across head_dim.
#pragma once

#include <math.h>

#include "common.cuh"

namespace isthmus {

constexpr int kMergeRowsPerBlock = 4;  // warps per block

// parts: [P, rows, head_dim], part_lse: [P, rows] (f32), out: [rows, head_dim], lse: [rows] or NULL.
template <typename TOut, typename TPart>
__global__ void attention_merge_kernel(TOut *__restrict__ out, float *__restrict__ lse, const TPart *__restrict__ parts,
                                       const float *__restrict__ part_lse, int num_parts, int64_t rows, int head_dim) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kMergeRowsPerBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float max_lse = -INFINITY;
    for (int p = 0; p < num_parts; ++p) max_lse = fmaxf(max_lse, part_lse[p * rows + row]);
    TOut *out_row = out + row * head_dim;
    if (max_lse == -INFINITY) {
        for (int d = lane; d < head_dim; d += 32) out_row[d] = from_float<TOut>(0.0f);
        if (lse != nullptr && lane == 0) lse[row] = -INFINITY;
        return;
    }
    float sum = 0.0f;
    for (int p = 0; p < num_parts; ++p) {
        const float l = part_lse[p * rows + row];
        if (l != -INFINITY) sum += expf(l - max_lse);
    }
    const float total = max_lse + logf(sum);
    for (int d = lane; d < head_dim; d += 32) {
        float acc = 0.0f;
        for (int p = 0; p < num_parts; ++p) {
            const float l = part_lse[p * rows + row];
            if (l != -INFINITY) acc += expf(l - total) * to_float(parts[(p * rows + row) * head_dim + d]);
        }
        out_row[d] = from_float<TOut>(acc);
    }
    if (lse != nullptr && lane == 0) lse[row] = total;
}

}  // namespace isthmus
