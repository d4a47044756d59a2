// Pointwise math shared by the Mamba kernels (selective scan, state update, causal conv1d).
#pragma once

#include "common.cuh"

namespace isthmus {

// exp(x) = exp2(x * log2(e)): dt is pre-multiplied by this once per step, so each (step, state)
// costs one ex2 on the special-function unit.
constexpr float SCAN_LOG2E = 1.4426950408889634f;
constexpr float SCAN_LN2 = 0.6931471805599453f;

// softplus(x) = log(1 + exp(x)), taken as x itself above 20 where the two agree in fp32
// (the threshold Mamba uses).
__device__ __forceinline__ float softplus(float x) { return x <= 20.0f ? log1pf(__expf(x)) : x; }

// silu(x) = x * sigmoid(x).
__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }

// The special-function unit's ex2 and lg2, one instruction each (flushing subnormals, which
// only ever stand for a decay to zero here). The host emulation takes the exact functions.
__device__ __forceinline__ float sfu_exp2(float x) {
#ifdef __CUDA_ARCH__
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}

__device__ __forceinline__ float sfu_log2(float x) {
#ifdef __CUDA_ARCH__
    float y;
    asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return log2f(x);
#endif
}

// softplus(x) * log2(e) = log2(1 + 2^(x log2(e))): the softplus in the base-2 units the scan's
// exponentials take, two special-function instructions and no branch (the exponent is clamped
// where x itself is taken).
__device__ __forceinline__ float softplus_log2(float x) {
    const float x2 = x * SCAN_LOG2E;
    const float soft = sfu_log2(1.0f + sfu_exp2(fminf(x2, 20.0f * SCAN_LOG2E)));
    return x <= 20.0f ? soft : x2;
}

// silu(x) = x / (1 + 2^(-x log2(e))) with one special-function instruction, the ex2: the
// reciprocal of d = 1 + e in [1, 2^100] is taken on the FMA pipe, from the bit-pattern guess
// 0x7EF311C3 - bits(d) (relative error under 12.5%) and three Newton steps r += r (1 - d r),
// each squaring the error, to under 1e-7.
__device__ __forceinline__ float silu_fma(float x) {
    const float d = 1.0f + fminf(sfu_exp2(-x * SCAN_LOG2E), 0x1p100f);
    float r = __int_as_float(0x7EF311C3 - __float_as_int(d));
#pragma unroll
    for (int i = 0; i < 3; ++i) r = fmaf(r, fmaf(-d, r, 1.0f), r);
    return x * r;
}

}  // namespace isthmus
