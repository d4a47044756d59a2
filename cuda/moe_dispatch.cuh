// MoE dispatch ("align") and combine.
//
// Align groups the (token, slot) pairs by expert without any host round trip, in three launches
// over chunks of MOE_ALIGN_CHUNK consecutive pairs, one block per chunk. The first chunk is the
// short one (pairs - (chunks - 1) * MOE_ALIGN_CHUNK of them), so that every other chunk's slice of
// `dropped` is long enough (CHUNK >= experts) to hold one int per expert between the launches:
//   moe_align_histogram_kernel: each chunk counts its pairs per expert, into its slice of
//     `dropped` (the first chunk into expert_counts);
//   moe_align_scan_kernel: one thread per expert turns the chunks' counts into exclusive prefix
//     sums, in place, and leaves the totals in expert_counts;
//   moe_align_scatter_kernel: each block prefix-sums the totals over experts into segments
//     rounded up to the GEMM tile height; each warp ranks the pairs of its 256 in pair order
//     (__match_any_sync per 32-pair step), the block adds the counts of the warps before it and
//     the chunk's prefix, and each pair lands at segment start + pairs of its expert before it.
// When every pair fits in one chunk (decode), moe_align_one_chunk_kernel runs the histogram and
// the scatter in one block and one launch instead (the same helpers, the same buffers).
// So every segment lists its pairs in ascending order and the buffers are the same on every run
// (no atomics decide a position). A chunk reads its prefixes before any of its threads writes
// `dropped`, and no other chunk touches that slice. Padding entries hold the sentinel `pairs`;
// tiles past the padded total get expert -1.
// With an expert capacity C > 0 (Switch/GShard), an expert keeps its first C pairs in pair order
// (earlier tokens first) and the rest are dropped: left out of the list and flagged in `dropped`.
// Pairs whose expert id is out of range are flagged dropped as well.
//
// Combine sums each token's k slot outputs in slot order (fp32), skipping dropped slots, then the
// shared-expert output, then the residual: one thread per vector of N elements of a row, no
// atomics, so repeats are bit-identical. A token with every slot dropped passes through as
// residual (+ shared).
#pragma once

#include "common.cuh"

namespace isthmus {

constexpr int MOE_ALIGN_WARPS = 8;
constexpr int MOE_ALIGN_THREADS = MOE_ALIGN_WARPS * 32;
constexpr int MOE_ALIGN_STEPS = 8;                             // 32-pair steps per warp
constexpr int MOE_ALIGN_WARP_PAIRS = MOE_ALIGN_STEPS * 32;     // 256
constexpr int MOE_ALIGN_CHUNK = MOE_ALIGN_WARPS * MOE_ALIGN_WARP_PAIRS;  // 2048 >= the 1024 experts

// The pairs [begin, end) of this block's chunk.
__device__ __forceinline__ void align_chunk(int64_t pairs, int64_t &begin, int64_t &end) {
    const int64_t first = pairs - static_cast<int64_t>(gridDim.x - 1) * MOE_ALIGN_CHUNK;
    begin = blockIdx.x == 0 ? 0 : first + static_cast<int64_t>(blockIdx.x - 1) * MOE_ALIGN_CHUNK;
    end = blockIdx.x == 0 ? first : begin + MOE_ALIGN_CHUNK;
}

// The experts of this warp's pairs: pair warp_begin + 32 j + lane in id[j], -1 past the chunk or
// for an id out of range (such a pair is dropped). All loads go out before any is used.
__device__ __forceinline__ void align_load_ids(int32_t (&id)[MOE_ALIGN_STEPS], const int32_t *ids,
                                               int64_t warp_begin, int64_t end, int experts) {
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int j = 0; j < MOE_ALIGN_STEPS; ++j) {
        const int64_t p = warp_begin + j * 32 + lane;
        const int32_t v = p < end ? ids[p] : -1;
        id[j] = v >= 0 && v < experts ? v : -1;
    }
}

// The warp's 32-pair steps that hold a pair of the chunk (0 to MOE_ALIGN_STEPS): the later ones
// hold only -1 ids, so the step loops of the one-chunk kernel stop there (warp-uniform) and do
// the same as running them, which at decode sizes (a few pairs: most warps hold none) is most of
// the block's work. The chunked kernels pass MOE_ALIGN_STEPS: their chunks are whole but the
// first, and the check folds away.
__device__ __forceinline__ int align_live_steps(int64_t warp_begin, int64_t end) {
    const int64_t steps = end <= warp_begin ? 0 : (end - warp_begin + 31) / 32;
    return steps < MOE_ALIGN_STEPS ? static_cast<int>(steps) : MOE_ALIGN_STEPS;
}

__device__ __forceinline__ int64_t align_warp_begin(int64_t begin) {
    return begin + static_cast<int64_t>(threadIdx.x / 32) * MOE_ALIGN_WARP_PAIRS;
}

// Counts the block's pairs (id, from align_load_ids) per expert into `counts` (experts ints of
// shared memory) and copies them to `out`; `counts` stays valid for the rest of the block.
__device__ __forceinline__ void align_histogram(int32_t *counts, int32_t *out, const int32_t (&id)[MOE_ALIGN_STEPS],
                                                int live_steps, int experts) {
    for (int e = threadIdx.x; e < experts; e += blockDim.x) counts[e] = 0;
    __syncthreads();
    const unsigned lanes_below = (1u << (threadIdx.x % 32)) - 1u;
#pragma unroll
    for (int j = 0; j < MOE_ALIGN_STEPS; ++j) {
        if (j == live_steps) break;
        // One shared atomic per expert and step: a skewed routing does not serialise the warp.
        const unsigned peers = __match_any_sync(0xffffffffu, id[j]);
        if (id[j] >= 0 && (peers & lanes_below) == 0) atomicAdd(&counts[id[j]], __popc(peers));
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += blockDim.x) out[e] = counts[e];
}

// Shared memory: experts ints.
__global__ void __launch_bounds__(MOE_ALIGN_THREADS)
moe_align_histogram_kernel(int32_t *__restrict__ dropped, int32_t *__restrict__ expert_counts,
                           const int32_t *__restrict__ ids, int64_t pairs, int experts) {
    extern __shared__ int32_t align_shared[];
    int64_t begin, end;
    align_chunk(pairs, begin, end);
    int32_t id[MOE_ALIGN_STEPS];
    align_load_ids(id, ids, align_warp_begin(begin), end, experts);
    align_histogram(align_shared, blockIdx.x == 0 ? expert_counts : dropped + begin, id, MOE_ALIGN_STEPS, experts);
}

// One thread per expert; `chunks` is the scatter's grid size.
__global__ void moe_align_scan_kernel(int32_t *__restrict__ dropped, int32_t *__restrict__ expert_counts,
                                      int64_t pairs, int experts, int64_t chunks) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= experts) return;
    int32_t *slice = dropped + (pairs - (chunks - 1) * MOE_ALIGN_CHUNK) + e;  // chunk 1's
    int32_t running = expert_counts[e];                                        // chunk 0's count
    for (int64_t c = 1; c < chunks; ++c, slice += MOE_ALIGN_CHUNK) {
        const int32_t count = *slice;
        *slice = running;
        running += count;
    }
    expert_counts[e] = running;
}

// Exclusive prefix sum over the block of one value per thread, through `warp_totals`
// (MOE_ALIGN_WARPS ints): one barrier, so one call per kernel.
__device__ __forceinline__ int32_t block_exclusive_sum(int32_t v, int32_t *warp_totals) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int32_t inclusive = v;
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
        const int32_t below = __shfl_up_sync(0xffffffffu, inclusive, d);
        if (lane >= d) inclusive += below;
    }
    if (lane == 31) warp_totals[warp] = inclusive;
    __syncthreads();
    int32_t before = 0;
    for (int w = 0; w < warp; ++w) before += warp_totals[w];
    return before + inclusive - v;
}

// Scatters the block's chunk [begin, end), whose experts are in id, given every expert's total
// over all pairs in `counts` and the chunk's per-expert prefix (nullptr for the first chunk).
// `shared`: (MOE_ALIGN_WARPS + 2) * experts ints: each segment's start; each segment's end of kept
// pairs; each warp's count, then base position, per expert.
__device__ __forceinline__ void align_scatter(int32_t *shared, int32_t *sorted_pairs, int32_t *tile_experts,
                                              int32_t *padded_total, int32_t *dropped, const int32_t *counts,
                                              const int32_t *chunk_prefix, const int32_t (&id)[MOE_ALIGN_STEPS],
                                              int live_steps, int64_t begin, int64_t end, int64_t pairs, int experts,
                                              int tile, int32_t expert_capacity, int64_t capacity, int64_t tiles) {
    int32_t *start = shared;
    int32_t *limit = shared + experts;  // start + pairs kept
    int32_t *warp_base = shared + 2 * experts + (threadIdx.x / 32) * experts;
    __shared__ int32_t warp_totals[MOE_ALIGN_WARPS];
    __shared__ int32_t total;
    const int lane = threadIdx.x % 32;
    const unsigned lanes_below = (1u << lane) - 1u;
    const int64_t warp_begin = align_warp_begin(begin);
    int32_t rank[MOE_ALIGN_STEPS];

    // Segments: each thread takes a run of consecutive experts, then one block-wide scan.
    const int per_thread = (experts + MOE_ALIGN_THREADS - 1) / MOE_ALIGN_THREADS;
    const int e0 = min(experts, static_cast<int>(threadIdx.x) * per_thread);
    const int e1 = min(experts, e0 + per_thread);
    int32_t run = 0;
    for (int e = e0; e < e1; ++e) {
        const int32_t kept = expert_capacity > 0 ? min(counts[e], expert_capacity) : counts[e];
        start[e] = kept;
        run += (kept + tile - 1) / tile * tile;
    }
    run = block_exclusive_sum(run, warp_totals);
    for (int e = e0; e < e1; ++e) {
        const int32_t kept = start[e];
        start[e] = run;
        limit[e] = run + kept;
        run += (kept + tile - 1) / tile * tile;
    }
    if (threadIdx.x == MOE_ALIGN_THREADS - 1) total = run;

    // Each warp ranks its pairs in pair order: rank = earlier pairs of its expert in this warp.
    for (int e = lane; e < experts; e += 32) warp_base[e] = 0;
    __syncwarp();
#pragma unroll
    for (int j = 0; j < MOE_ALIGN_STEPS; ++j) {
        if (j == live_steps) break;
        const unsigned peers = __match_any_sync(0xffffffffu, id[j]);
        rank[j] = id[j] >= 0 ? warp_base[id[j]] + __popc(peers & lanes_below) : 0;
        __syncwarp();
        if (id[j] >= 0 && (peers & lanes_below) == 0) warp_base[id[j]] += __popc(peers);  // the lowest peer
        __syncwarp();
    }
    __syncthreads();  // every warp's counts and the segments are in

    // Counts -> base positions: segment start + this chunk's prefix + the warps before.
    for (int e = threadIdx.x; e < experts; e += blockDim.x) {
        int32_t base = start[e] + (chunk_prefix != nullptr ? chunk_prefix[e] : 0);
        for (int w = 0; w < MOE_ALIGN_WARPS; ++w) {
            int32_t *slot = shared + (2 + w) * experts + e;
            const int32_t count = *slot;
            *slot = base;
            base += count;
        }
    }
    __syncthreads();  // the chunk's prefixes are read: its slice of dropped may be overwritten

#pragma unroll
    for (int j = 0; j < MOE_ALIGN_STEPS; ++j) {
        if (j == live_steps) break;
        const int64_t p = warp_begin + j * 32 + lane;
        if (p < end) {
            const int32_t position = id[j] >= 0 ? warp_base[id[j]] + rank[j] : 0;
            const bool kept = id[j] >= 0 && position < limit[id[j]];
            if (kept) sorted_pairs[position] = static_cast<int32_t>(p);
            dropped[p] = kept ? 0 : 1;
        }
    }

    // Shared by the grid: each tile's expert, the padding after each segment's kept pairs, and
    // the sentinel tail past the padded total.
    if (blockIdx.x == 0 && threadIdx.x == 0) *padded_total = total;
    const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t t = thread; t < tiles; t += threads) {
        const int64_t first = t * tile;
        if (first >= total) {
            tile_experts[t] = -1;
            continue;
        }
        // The last expert starting at or before this tile: empty segments share the next start.
        int lo = 0, hi = experts - 1;
        while (lo < hi) {
            const int mid = (lo + hi + 1) / 2;
            if (start[mid] <= first) lo = mid;
            else hi = mid - 1;
        }
        tile_experts[t] = lo;
        for (int64_t q = limit[lo] > first ? limit[lo] : first; q < first + tile; ++q)
            sorted_pairs[q] = static_cast<int32_t>(pairs);
    }
    for (int64_t q = total + thread; q < capacity; q += threads) sorted_pairs[q] = static_cast<int32_t>(pairs);
}

// Shared memory: (MOE_ALIGN_WARPS + 2) * experts ints (align_scatter's).
__global__ void __launch_bounds__(MOE_ALIGN_THREADS)
moe_align_scatter_kernel(int32_t *__restrict__ sorted_pairs, int32_t *__restrict__ tile_experts,
                         int32_t *__restrict__ padded_total, int32_t *__restrict__ dropped,
                         const int32_t *__restrict__ expert_counts, const int32_t *__restrict__ ids,
                         int64_t pairs, int experts, int tile, int32_t expert_capacity, int64_t capacity,
                         int64_t tiles) {
    extern __shared__ int32_t align_shared[];
    int64_t begin, end;
    align_chunk(pairs, begin, end);
    int32_t id[MOE_ALIGN_STEPS];
    align_load_ids(id, ids, align_warp_begin(begin), end, experts);  // in flight during the segment scan
    align_scatter(align_shared, sorted_pairs, tile_experts, padded_total, dropped, expert_counts,
                  blockIdx.x == 0 ? nullptr : dropped + begin, id, MOE_ALIGN_STEPS, begin, end, pairs, experts, tile,
                  expert_capacity, capacity, tiles);
}

// Every pair in one chunk (pairs <= MOE_ALIGN_CHUNK, every decode batch), one block: the three
// phases in one launch, since at these sizes the launches' latency is most of align's cost. Over
// a single chunk the scan has nothing to do (no chunk before it, the totals are its counts), so
// the scatter reads the histogram's counts straight from shared memory.
// Shared memory: (MOE_ALIGN_WARPS + 3) * experts ints: align_scatter's, then the counts.
__global__ void __launch_bounds__(MOE_ALIGN_THREADS)
moe_align_one_chunk_kernel(int32_t *__restrict__ sorted_pairs, int32_t *__restrict__ tile_experts,
                           int32_t *__restrict__ padded_total, int32_t *__restrict__ expert_counts,
                           int32_t *__restrict__ dropped, const int32_t *__restrict__ ids, int64_t pairs,
                           int experts, int tile, int32_t expert_capacity, int64_t capacity, int64_t tiles) {
    extern __shared__ int32_t align_shared[];
    int32_t *counts = align_shared + (MOE_ALIGN_WARPS + 2) * experts;
    int32_t id[MOE_ALIGN_STEPS];
    const int live_steps = align_live_steps(align_warp_begin(0), pairs);
    align_load_ids(id, ids, align_warp_begin(0), pairs, experts);
    align_histogram(counts, expert_counts, id, live_steps, experts);
    align_scatter(align_shared, sorted_pairs, tile_experts, padded_total, dropped, counts, nullptr, id, live_steps, 0,
                  pairs, pairs, experts, tile, expert_capacity, capacity, tiles);
}

// out may be shared or residual (an in-place residual add): those three are not __restrict__, so
// the compiler neither reorders their accesses nor reads the inputs through the read-only cache,
// which is not coherent with the writes of the same kernel. Each thread reads vector i of a row
// of them before it writes vector i of out, which no other thread touches.
// Block (x: vectors of a row, y: rows); the grid's y dimension strides over the tokens, so a row's
// addresses are one multiplication each and nothing is divided.
template <typename T, int N>
__global__ void moe_combine_kernel(T *out, const T *__restrict__ slot_out, const int32_t *__restrict__ dropped,
                                   const T *shared, const T *residual, int64_t tokens, int k, int64_t hidden) {
    using V = Vec<T, N>;
    const int64_t vecs = hidden / N;
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= vecs) return;
    for (int64_t t = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; t < tokens;
         t += static_cast<int64_t>(gridDim.y) * blockDim.y) {
        const V *slot = reinterpret_cast<const V *>(slot_out + t * k * hidden) + i;
        const int32_t *slot_dropped = dropped == nullptr ? nullptr : dropped + t * k;
        float sum[N];
#pragma unroll
        for (int n = 0; n < N; ++n) sum[n] = 0.0f;
        // Four slots' loads in flight at once. A dropped slot loads nothing and adds +0, which
        // leaves the sum bit-identical to skipping it: a sum that starts at +0 is never -0.
        for (int s0 = 0; s0 < k; s0 += 4) {
            V v[4];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int s = s0 + j;
                if (s < k && (slot_dropped == nullptr || slot_dropped[s] == 0)) {
                    v[j] = slot[s * vecs];
                } else {
#pragma unroll
                    for (int n = 0; n < N; ++n) v[j].v[n] = from_float<T>(0.0f);
                }
            }
#pragma unroll
            for (int j = 0; j < 4; ++j)
#pragma unroll
                for (int n = 0; n < N; ++n) sum[n] += to_float(v[j].v[n]);
        }
        const int64_t at = t * vecs + i;
        if (shared != nullptr) {
            const V v = reinterpret_cast<const V *>(shared)[at];
#pragma unroll
            for (int n = 0; n < N; ++n) sum[n] += to_float(v.v[n]);
        }
        if (residual != nullptr) {
            const V v = reinterpret_cast<const V *>(residual)[at];
#pragma unroll
            for (int n = 0; n < N; ++n) sum[n] += to_float(v.v[n]);
        }
        V y;
#pragma unroll
        for (int n = 0; n < N; ++n) y.v[n] = from_float<T>(sum[n]);
        reinterpret_cast<V *>(out)[at] = y;
    }
}

}  // namespace isthmus
