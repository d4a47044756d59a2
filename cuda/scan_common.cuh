// Pointwise math shared by the Mamba kernels (selective scan, state update, causal conv1d).
#pragma once

#include "common.cuh"

namespace isthmus {

// exp(x) = exp2(x * log2(e)): dt is pre-multiplied by this once per step, so each (step, state)
// costs one ex2 on the special-function unit.
constexpr float SCAN_LOG2E = 1.4426950408889634f;

// softplus(x) = log(1 + exp(x)), taken as x itself above 20 where the two agree in fp32
// (the threshold Mamba uses).
__device__ __forceinline__ float softplus(float x) { return x <= 20.0f ? log1pf(__expf(x)) : x; }

// silu(x) = x * sigmoid(x).
__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }

}  // namespace isthmus
