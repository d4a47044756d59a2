// Random fills from a counter-based generator: element i of the output is a function of (seed, i)
// alone, so any thread can draw any element, the result does not depend on the grid, and the CPU
// reference (dev.isthmus.random.RandomFillReference) computes the same values.
#pragma once

#include "common.cuh"

namespace isthmus {

// SplitMix64's output function over the counter seed + (i + 1) * golden ratio: a bijection of
// 64-bit words whose outputs pass BigCrush, cheap enough that filling is bound by the stores.
__host__ __device__ __forceinline__ uint64_t random_bits(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// The top 24 bits as a float in [0, 1): exactly representable, so host and device agree bit for bit.
__device__ __forceinline__ float unit_float(uint64_t bits) { return static_cast<float>(bits >> 40) * 0x1p-24f; }

// Uniform in [low, high): low + u * (high - low), as one fused multiply-add on both sides.
template <typename T>
__global__ void fill_uniform_kernel(T *__restrict__ out, int64_t count, uint64_t seed, float low, float high) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        out[i] = from_float<T>(fmaf(unit_float(random_bits(seed, i)), high - low, low));
}

// Normal(mean, std) by Box-Muller from the two halves of one draw: u1 in (0, 1] (the top 24 bits
// plus one ulp, so the logarithm is finite), u2 in [0, 1) from the next 24 bits.
template <typename T>
__global__ void fill_normal_kernel(T *__restrict__ out, int64_t count, uint64_t seed, float mean, float std) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const uint64_t bits = random_bits(seed, i);
        const float u1 = static_cast<float>((bits >> 40) + 1) * 0x1p-24f;
        const float u2 = static_cast<float>((bits >> 16) & 0xFFFFFF) * 0x1p-24f;
        const float z = sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
        out[i] = from_float<T>(fmaf(z, std, mean));
    }
}

}  // namespace isthmus
