// Device-side building blocks shared by every kernel family: element conversion to and from
// fp32 (all arithmetic is done in fp32), aligned vectors for wide loads, and a block-wide sum.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace isthmus {

// ---- fp32 <-> storage type -------------------------------------------------------------------

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

// Round-to-nearest-even, as the host conversions do.
template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// ---- wide loads --------------------------------------------------------------------------------

// N elements of T moved as one aligned access (16 bytes when N * sizeof(T) == 16).
template <typename T, int N> struct alignas(sizeof(T) * N) Vec {
    T v[N];
};

// True when p is aligned for a `bytes`-wide access.
__host__ __device__ __forceinline__ bool is_aligned(const void *p, int bytes) {
    return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

// ---- reductions --------------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum of v over the whole block, returned to every thread. blockDim.x must be a multiple of 32.
// Uses 32 floats of shared memory and two barriers; safe to call repeatedly.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float warp_totals[32];
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    v = warp_sum(v);
    __syncthreads();  // warp_totals may still be read by a previous call
    if (lane == 0) warp_totals[warp] = v;
    // ISTHMUS_DROP_BLOCK_SUM_BARRIER exists only for `make emulation-race-demo`, which shows the
    // host emulation's schedules catching a missing barrier in this very kernel code.
#ifndef ISTHMUS_DROP_BLOCK_SUM_BARRIER
    __syncthreads();
#endif
    const int warps = blockDim.x / 32;
    float total = lane < warps ? warp_totals[lane] : 0.0f;
    return warp_sum(total);
}

// ---- split-K -----------------------------------------------------------------------------------

// The meeting of the `splits` parts of one output piece of a split-K launch, one warp a part
// (each has summed its share of K): each stores its partial sums, Groups x PerGroup floats a lane,
// at partials[part][e][lane] and counts itself in the piece's arrival counter; false for all but
// the last to arrive, which gets the sum of every part's partial, added in part order (0, 1, ...;
// its own from memory too), in the lane's accumulators: the sum does not depend on which part
// came last, so results are bitwise reproducible. The last also puts the counter back to 0 for the
// next launch (a CUDA graph replays the launch as it is). at(e): element e of the lane's
// accumulators; live(g): whether group g (elements g PerGroup ...) is stored and summed (the same
// for every part of the piece; tested once a group, so that the loads keep constant offsets).
// Plain loads read the other parts' partials: no SM has read those lines before in the launch (a
// piece's partials are read once, by its last part, and a 128-byte line holds one element of one
// part), so L1 holds no stale copy of them.
template <int Groups, int PerGroup, typename At, typename Live>
__device__ __forceinline__ bool split_meet(float *partials, int32_t *arrival, int splits, int part, At at, Live live, int lane) {
    constexpr int N = Groups * PerGroup;
    float *const lane_partials = partials + lane, *const mine = lane_partials + part * (N * 32);
#pragma unroll
    for (int g = 0; g < Groups; ++g)
        if (live(g))
#pragma unroll
            for (int e = g * PerGroup; e < (g + 1) * PerGroup; ++e) mine[e * 32] = at(e);
    __threadfence();  // the partials are visible device-wide before the arrival is counted
    __syncwarp();
    int last = 0;
    if (lane == 0) last = atomicAdd(arrival, 1) == splits - 1;
    if (!__shfl_sync(0xffffffffu, last, 0)) return false;
    __threadfence();
    if (lane == 0) *arrival = 0;  // every part has arrived: ready for the next launch
#pragma unroll
    for (int e = 0; e < N; ++e) at(e) = 0.0f;
#pragma unroll 1  // a body of N loads already: one part a pass
    for (int q = 0; q < splits; ++q) {
        const float *const from = lane_partials + q * (N * 32);
#pragma unroll
        for (int g = 0; g < Groups; ++g)
            if (live(g))
#pragma unroll
                for (int e = g * PerGroup; e < (g + 1) * PerGroup; ++e) at(e) += from[e * 32];
    }
    return true;
}

}  // namespace isthmus
