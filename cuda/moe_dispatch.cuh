// MoE dispatch ("align") and combine.
//
// Align groups the (token, slot) pairs by expert without any host round trip: a shared-memory
// histogram, a prefix sum over segments rounded up to the GEMM tile height, and a scatter that
// writes each pair's flat index (token * k + slot) into its expert's segment. One warp does the
// scatter, in pair order, ranking equal experts inside each 32-pair step with __match_any_sync,
// so every segment lists its pairs in ascending order and the buffers are the same on every run.
// Padding entries hold the sentinel `pairs`; tiles past the padded total get expert -1.
// With an expert capacity C > 0 (Switch/GShard), an expert keeps its first C pairs in pair order
// (earlier tokens first) and the rest are dropped: left out of the list and flagged in `dropped`.
// Pairs whose expert id is out of range are flagged dropped as well.
//
// Combine sums each token's k slot outputs in slot order (fp32), skipping dropped slots, then the
// shared-expert output, then the residual: one thread per output element, no atomics, so
// repeats are bit-identical. A token with every slot dropped passes through as residual (+ shared).
#pragma once

#include "common.cuh"

namespace isthmus {

constexpr int MOE_ALIGN_THREADS = 1024;

// Shared memory: 3 * experts ints (counts; each segment's next free slot; each segment's end).
__global__ void moe_align_kernel(int32_t *__restrict__ sorted_pairs, int32_t *__restrict__ tile_experts,
                                 int32_t *__restrict__ padded_total, int32_t *__restrict__ expert_counts,
                                 int32_t *__restrict__ dropped, const int32_t *__restrict__ ids, int64_t pairs,
                                 int experts, int tile, int32_t expert_capacity, int64_t capacity, int64_t tiles) {
    extern __shared__ int32_t align_shared[];
    int32_t *counts = align_shared;
    int32_t *cursor = align_shared + experts;
    int32_t *limit = align_shared + 2 * experts;  // segment start + pairs kept
    __shared__ int32_t total;
    for (int e = threadIdx.x; e < experts; e += blockDim.x) counts[e] = 0;
    __syncthreads();
    for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
        const int32_t id = ids[p];
        if (id >= 0 && id < experts) atomicAdd(&counts[id], 1);  // out-of-range ids are left out
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t running = 0;
        for (int e = 0; e < experts; ++e) {
            const int32_t kept = expert_capacity > 0 ? min(counts[e], expert_capacity) : counts[e];
            cursor[e] = running;
            limit[e] = running + kept;
            running += (kept + tile - 1) / tile * tile;
        }
        total = running;
        *padded_total = running;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += blockDim.x) {
        expert_counts[e] = counts[e];
        const int32_t first = cursor[e] / tile;
        const int32_t n = (limit[e] - cursor[e] + tile - 1) / tile;
        for (int32_t t = first; t < first + n; ++t) tile_experts[t] = e;
    }
    for (int64_t t = total / tile + threadIdx.x; t < tiles; t += blockDim.x) tile_experts[t] = -1;
    for (int64_t i = threadIdx.x; i < capacity; i += blockDim.x) sorted_pairs[i] = static_cast<int32_t>(pairs);
    __syncthreads();  // the sentinel fill must land before the scatter overwrites it
    if (threadIdx.x >= 32) return;
    const int lane = threadIdx.x;
    const unsigned lanes_below = (1u << lane) - 1u;
    for (int64_t p0 = 0; p0 < pairs; p0 += 32) {
        const int64_t p = p0 + lane;
        int32_t id = p < pairs ? ids[p] : -1;
        if (id >= experts) id = -1;
        const unsigned peers = __match_any_sync(0xffffffffu, id);
        if (p < pairs) {
            const int32_t position = id >= 0 ? cursor[id] + __popc(peers & lanes_below) : 0;
            const bool kept = id >= 0 && position < limit[id];
            if (kept) sorted_pairs[position] = static_cast<int32_t>(p);
            dropped[p] = kept ? 0 : 1;
        }
        __syncwarp();
        if (id >= 0 && (peers & lanes_below) == 0) cursor[id] += __popc(peers);  // the lowest peer
        __syncwarp();
    }
}

// out may be shared or residual (an in-place residual add): those three are not __restrict__, so
// the compiler neither reorders their accesses nor reads the inputs through the read-only cache,
// which is not coherent with the writes of the same kernel. Each thread reads element i of them
// before it writes element i of out, which no other thread touches.
template <typename T>
__global__ void moe_combine_kernel(T *out, const T *__restrict__ slot_out, const int32_t *__restrict__ dropped,
                                   const T *shared, const T *residual, int64_t tokens, int k, int64_t hidden) {
    const int64_t n = tokens * hidden;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t t = i / hidden;
        const int64_t h = i - t * hidden;
        float sum = 0.0f;
        for (int s = 0; s < k; ++s)
            if (dropped == nullptr || dropped[t * k + s] == 0) sum += to_float(slot_out[(t * k + s) * hidden + h]);
        if (shared != nullptr) sum += to_float(shared[i]);
        if (residual != nullptr) sum += to_float(residual[i]);
        out[i] = from_float<T>(sum);
    }
}

}  // namespace isthmus
