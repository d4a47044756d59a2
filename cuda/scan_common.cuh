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

// The special-function unit's ex2, one instruction (flushing subnormals, which only ever stand
// for a decay to zero here). The host emulation takes the exact function.
__device__ __forceinline__ float sfu_exp2(float x) {
#ifdef __CUDA_ARCH__
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}

// softplus(x) * log2(e) = log2(1 + 2^x2) of x2 = x log2(e): the softplus in the base-2 units
// the scan's exponentials take, with one special-function instruction. It is max(x2, 0) +
// log2(1 + w) with w = 2^-|x2| in (0, 1], and log2(1 + w) = w P(w), P the degree-8 polynomial of
// least relative error on [0, 1] (under 2.1e-7 evaluated in fp32), on the FMA pipe. Where w
// underflows it is x2 itself: Mamba's x > 20 threshold, to fp32.
__device__ __forceinline__ float softplus_log2(float x2) {
    const float w = sfu_exp2(fminf(x2, -x2));
    float p = 7.548769470e-03f;
    p = fmaf(p, w, -4.256537184e-02f);
    p = fmaf(p, w, 1.128533632e-01f);
    p = fmaf(p, w, -1.971164793e-01f);
    p = fmaf(p, w, 2.756401896e-01f);
    p = fmaf(p, w, -3.584081233e-01f);
    p = fmaf(p, w, 4.806929231e-01f);
    p = fmaf(p, w, -7.213401794e-01f);
    p = fmaf(p, w, 1.442695022e+00f);
    return fmaf(w, p, fmaxf(x2, 0.0f));
}

// silu(x) = x / (1 + 2^(-x log2(e))) with one special-function instruction, the ex2: the
// reciprocal of d = 1 + e in [1, 2^100] is taken on the FMA pipe, from the bit-pattern guess
// 0x7EF311C3 - bits(d) (relative error under 12.5%) and three Newton steps r += r (1 - d r),
// each squaring the error, to under 1e-7. The steps take -d, whose bits are those of d plus the
// sign bit, so the guess is 0xFEF311C3 - bits(-d) (mod 2^32) and d itself is never formed.
__device__ __forceinline__ float silu_fma(float x) {
    const float minus_d = -1.0f - fminf(sfu_exp2(-x * SCAN_LOG2E), 0x1p100f);
    float r = __uint_as_float(0xFEF311C3u - __float_as_uint(minus_d));
#pragma unroll
    for (int i = 0; i < 3; ++i) r = fmaf(r, fmaf(minus_d, r, 1.0f), r);
    return x * r;
}

}  // namespace isthmus
