// Sampling on the device: one block per row of f32 logits draws a token from the restricted
// softmax without sorting the vocabulary. Every restriction is a threshold on the logit's order
// key found by binary search (32 counting passes over the row), plus a cut among the tokens tied
// at the threshold, which go in id order as the host sampler takes them (dev.isthmus.model.Sampler):
//   top-k: the largest key K with at least k tokens at or above it; the ties at K up to k in all;
//   top-p: over the top-k tokens, the largest key P whose tokens at or above it hold at least p of
//          the mass; the ties at P in id order until the running mass reaches p;
//   min-p: the tokens whose weight exp((l - max) / T) is at least min_p (the largest weighs 1).
// The draw: u from the counter generator at (seed, offset), the first token in id order whose
// running kept weight exceeds u times the kept total. Sums are in double so that the thresholds
// agree with the host's double arithmetic except at exact ties of rounding.
#pragma once

#include "common.cuh"
#include "random.cuh"

namespace isthmus {

constexpr int kSampleThreads = 512;

// The float's order as an unsigned key: -inf lowest of the numbers, +inf highest; NaN gets 0,
// below every number, so it is never among the kept tokens while a number is left.
__device__ __forceinline__ uint32_t order_key(float v) {
    if (v != v) return 0;
    const uint32_t b = __float_as_uint(v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Sum over the block, in double, returned to every thread; safe to call repeatedly.
__device__ __forceinline__ double block_sum_double(double v) {
    __shared__ double totals[32];
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    __syncthreads();  // totals may still be read by a previous call
    if (threadIdx.x % 32 == 0) totals[threadIdx.x / 32] = v;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); w++) total += totals[w];
    return total;
}

__device__ __forceinline__ float block_max_float(float v) {
    __shared__ float maxima[32];
    v = warp_max(v);
    __syncthreads();
    if (threadIdx.x % 32 == 0) maxima[threadIdx.x / 32] = v;
    __syncthreads();
    float m = -INFINITY;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); w++) m = fmaxf(m, maxima[w]);
    return m;
}

// Inclusive prefix sum over the block in thread order; *total gets the block's sum.
__device__ __forceinline__ double block_inclusive_scan(double v, double *total) {
    __shared__ double warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
        const double up = __shfl_up_sync(0xffffffffu, v, offset);
        if (lane >= offset) v += up;
    }
    __syncthreads();
    if (lane == 31) warp_sums[warp] = v;
    __syncthreads();
    double before = 0, all = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); w++) {
        if (w < warp) before += warp_sums[w];
        all += warp_sums[w];
    }
    *total = all;
    return before + v;
}

// The first column, in id order, where the running sum of value(c) reaches `target` (strictly
// exceeds it when `strict`); -1 when it never does. Tiles of the block's width, a scan each.
template <typename Value>
__device__ __forceinline__ int64_t first_reaching(int64_t cols, Value value, double target, bool strict) {
    __shared__ long long found;
    double carry = 0;
    for (int64_t base = 0; base < cols; base += blockDim.x) {
        const int64_t c = base + threadIdx.x;
        const double v = c < cols ? value(c) : 0.0;
        double tile;
        const double inclusive = carry + block_inclusive_scan(v, &tile);
        const bool reached = strict ? carry + tile > target : carry + tile >= target;
        if (reached) {  // uniform: every thread has the tile's total
            if (threadIdx.x == 0) found = -1;
            __syncthreads();
            const bool here = strict ? inclusive > target && inclusive - v <= target : inclusive >= target && inclusive - v < target;
            if (here && v > 0) found = c;  // the one thread where the running sum crosses
            __syncthreads();
            return found;
        }
        carry += tile;
    }
    return -1;
}

// The largest key K with mass(K) = sum of value(c) over the columns whose key is >= K at least
// `target`, bit by bit from the top.
template <typename Value>
__device__ __forceinline__ uint32_t largest_key_reaching(const float *row, int64_t cols, Value value, double target) {
    uint32_t key = 0;
    for (int bit = 31; bit >= 0; bit--) {
        const uint32_t candidate = key | (1u << bit);
        double mass = 0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
            if (order_key(row[c]) >= candidate) mass += value(c);
        if (block_sum_double(mass) >= target) key = candidate;
    }
    return key;
}

__global__ void __launch_bounds__(kSampleThreads) sample_kernel(int32_t *__restrict__ ids, float *__restrict__ probs,
                                                                 const float *__restrict__ logits, int64_t cols,
                                                                 const uint64_t *__restrict__ seeds, uint64_t *__restrict__ offsets,
                                                                 float inv_temperature, int64_t top_k, float top_p, float min_p) {
    const float *row = logits + static_cast<int64_t>(blockIdx.x) * cols;
    float m = -INFINITY;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, row[c]);  // fmaxf skips NaN
    m = block_max_float(m);
    const uint64_t offset = offsets[blockIdx.x];
    if (m == -INFINITY) {  // nothing drawable: the argmax with probability 1 (the first -inf; 0 when all NaN), as the host gives
        const int64_t first = first_reaching(cols, [=](int64_t c) { return row[c] == -INFINITY ? 1.0 : 0.0; }, 1.0, false);
        if (threadIdx.x == 0) {
            ids[blockIdx.x] = static_cast<int32_t>(first < 0 ? 0 : first);
            if (probs != nullptr) probs[blockIdx.x] = 1.0f;
            offsets[blockIdx.x] = offset + 1;
        }
        return;
    }
    auto weight = [=](int64_t c) -> double {
        const float v = row[c];
        return v == v && v > -INFINITY ? static_cast<double>(expf((v - m) * inv_temperature)) : 0.0;
    };
    // top-k: keys above K, and the ties at K up to index tie_k.
    uint32_t k_key = 0;
    int64_t tie_k = cols;
    if (top_k > 0 && top_k < cols) {
        k_key = largest_key_reaching(row, cols, [](int64_t) { return 1.0; }, static_cast<double>(top_k));
        double above = 0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) above += order_key(row[c]) > k_key ? 1.0 : 0.0;
        above = block_sum_double(above);
        tie_k = first_reaching(cols, [=](int64_t c) { return order_key(row[c]) == k_key ? 1.0 : 0.0; },
                               static_cast<double>(top_k) - above, false);
    }
    auto in_top_k = [=](int64_t c) {
        const uint32_t key = order_key(row[c]);
        return key > k_key || (key == k_key && c <= tie_k);
    };
    // top-p over the top-k tokens.
    uint32_t p_key = 0;
    int64_t tie_p = cols;
    if (top_p < 1.0f) {
        double z = 0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) z += in_top_k(c) ? weight(c) : 0.0;
        const double target = static_cast<double>(top_p) * block_sum_double(z);
        p_key = largest_key_reaching(row, cols, [=](int64_t c) { return in_top_k(c) ? weight(c) : 0.0; }, target);
        double above = 0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) above += in_top_k(c) && order_key(row[c]) > p_key ? weight(c) : 0.0;
        above = block_sum_double(above);
        tie_p = first_reaching(cols, [=](int64_t c) { return in_top_k(c) && order_key(row[c]) == p_key ? weight(c) : 0.0; },
                               target - above, false);
        if (tie_p < 0) tie_p = cols;  // rounding left the target unreached: every tie
    }
    auto kept = [=](int64_t c) -> double {
        if (!in_top_k(c)) return 0.0;
        const uint32_t key = order_key(row[c]);
        if (key < p_key || (key == p_key && c > tie_p)) return 0.0;
        const double w = weight(c);
        return w >= static_cast<double>(min_p) ? w : 0.0;
    };
    double z = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) z += kept(c);
    z = block_sum_double(z);
    const double u = static_cast<double>(unit_float(random_bits(seeds[blockIdx.x], offset)));
    int64_t id = first_reaching(cols, kept, u * z, true);
    // u * z at the total after rounding (the scan sums in another order): the last kept token.
    if (id < 0) id = first_reaching(cols, kept, z * (1 - 1e-12), false);
    if (threadIdx.x == 0) {
        ids[blockIdx.x] = static_cast<int32_t>(id);
        if (probs != nullptr) probs[blockIdx.x] = static_cast<float>(kept(id) / z);
        offsets[blockIdx.x] = offset + 1;
    }
}

}  // namespace isthmus
