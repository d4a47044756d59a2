// The quantized KV cache formats (isthmus_kv_cache_type in native/isthmus.h): what one stored
// element means and how a value becomes one. The append kernel quantizes with these, the attention
// kernels dequantize with them, and the Java reference (KvQuantization) implements the same rules
// from the same definitions.
//
//   int8:     x = q * s, q in [-127, 127], one f32 scale s per (token, kv head) of K and of V:
//             s = max|x| / 127 over the head's elements (0 for an all-zero row), q = rne(x / s).
//   fp8 e4m3: x = decode(c) * s, c an OCP FP8 E4M3 byte, s a fixed f32 scale per (layer, kv head)
//             of K and of V given when the cache is made; c = rne(x / s), saturated to +-448.
//
// The scales of an int8 cache are [num_blocks, block_size, kv_heads] f32: the cache's own shape
// without head_dim, paged by the same block ids.
#pragma once

#include <math.h>

#include <type_traits>

#include "common.cuh"

namespace isthmus {

// One OCP FP8 E4M3 byte: sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 holds the
// subnormals m 2^-9, S.1111.111 is NaN and there is no infinity (the largest finite is 448).
struct Fp8E4m3 {
    uint8_t bits;
};

constexpr float kInt8Max = 127.0f;
constexpr float kE4m3Max = 448.0f;

template <typename C> constexpr bool is_quantized() {
    return std::is_same<C, int8_t>::value || std::is_same<C, Fp8E4m3>::value;
}
// Whether the format keeps a scale per (token, kv head) beside the cache (int8) rather than one
// per kv head (fp8).
template <typename C> constexpr bool has_token_scales() { return std::is_same<C, int8_t>::value; }

// E4M3 -> f32, exactly, without a branch: the 7 magnitude bits placed at the top of an f32's
// exponent and mantissa (exponent field e, mantissa m 2^20) are 2^(e-127) (1 + m/8), or for e = 0
// the f32 subnormal m 2^-129; times 2^120 both are the E4M3 value (2^(e-7) (1 + m/8), m 2^-9), a
// product an FMUL takes exactly (f32 subnormals are kept: the build does not flush them). `factor`
// is 2^120 times the scale, so one multiply applies both; S.1111.111 is NaN.
constexpr float kE4m3Rebias = 1.329228e36f;  // 2^120
__device__ __forceinline__ float e4m3_times(uint32_t bits, float factor) {
    const float value = __uint_as_float((bits & 0x80u) << 24 | (bits & 0x7fu) << 20) * factor;
    return (bits & 0x7fu) == 0x7fu ? __uint_as_float(0x7fc00000u) : value;
}
__device__ __forceinline__ float e4m3_to_float(uint32_t bits) { return e4m3_times(bits, kE4m3Rebias); }

// f32 -> E4M3, round to nearest even, |x| above 448 (infinity included) saturated to 448, NaN kept.
// Below the smallest normal 2^-6 the grid is m 2^-9 (m = 8 is that normal, code 0x08); above it the
// f32 mantissa is rounded to 3 bits, a carry stepping into the next binade as it should, and the
// code is the f32's (exponent, top 3 mantissa bits) rebased from bias 127 to 7.
__device__ __forceinline__ uint8_t float_to_e4m3(float x) {
    const uint32_t sign = (__float_as_uint(x) >> 24) & 0x80u;
    float a = fabsf(x);
    if (a != a) return static_cast<uint8_t>(sign | 0x7fu);
    a = fminf(a, kE4m3Max);
    if (a < 0.015625f) return static_cast<uint8_t>(sign | static_cast<uint32_t>(rintf(a * 512.0f)));
    uint32_t u = __float_as_uint(a);
    u += 0x7ffffu + ((u >> 20) & 1u);
    return static_cast<uint8_t>(sign | ((u >> 20) - (120u << 3)));
}

// The int8 scale of a row whose largest magnitude is max_abs, and one element's code under it.
__device__ __forceinline__ float int8_scale(float max_abs) { return max_abs / kInt8Max; }
__device__ __forceinline__ int8_t quantize_int8(float x, float scale) {
    if (!(scale > 0.0f)) return 0;  // an all-zero row
    return static_cast<int8_t>(fminf(fmaxf(rintf(x / scale), -kInt8Max), kInt8Max));
}

// One stored element back to f32 under its scale (the model dtype passes through unscaled).
__device__ __forceinline__ float dequantize(int8_t c, float scale) { return static_cast<float>(c) * scale; }
__device__ __forceinline__ float dequantize(Fp8E4m3 c, float scale) { return e4m3_to_float(c.bits) * scale; }

// What dequantize16 multiplies a code by, once per chunk: the scale, and for E4M3 also the 2^120
// of e4m3_times. 2^120 s is exact (a power of two times s; finite since fp8 scales are below 2^8,
// which Java checks), so one rounded product gives the same f32 as e4m3 value x s.
template <typename C> __device__ __forceinline__ float code_factor(float scale) {
    return std::is_same<C, Fp8E4m3>::value ? scale * kE4m3Rebias : scale;
}
__device__ __forceinline__ float dequantize_with(int8_t c, float factor) { return static_cast<float>(c) * factor; }
__device__ __forceinline__ float dequantize_with(Fp8E4m3 c, float factor) { return e4m3_times(c.bits, factor); }
template <typename C> __device__ __forceinline__ float dequantize(C c, float) { return to_float(c); }

// Where the scale of cache row `row` (= block * block_size + slot) of kv_head sits in its array.
template <typename C> __device__ __forceinline__ int64_t scale_index(int64_t row, int kv_head, int kv_heads) {
    return has_token_scales<C>() ? row * kv_heads + kv_head : kv_head;
}

// Sixteen bytes of the cache (16 quantized elements) dequantized into 16 elements of T, written as
// 16-byte pieces at dst0 (elements 0-7) and dst1 (8-15): the shared-memory tiles the tensor-core
// kernels then read with ldmatrix hold T, as for a model-dtype cache.
template <typename T, typename C>
__device__ __forceinline__ void dequantize16(T *dst0, T *dst1, const C *src, float scale) {
    static_assert(sizeof(C) == 1 && sizeof(T) == 2, "16 one-byte codes into 16 16-bit elements");
    const Vec<C, 16> in = *reinterpret_cast<const Vec<C, 16> *>(src);
    const float factor = code_factor<C>(scale);
    Vec<T, 8> lo, hi;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
        lo.v[e] = from_float<T>(dequantize_with(in.v[e], factor));
        hi.v[e] = from_float<T>(dequantize_with(in.v[8 + e], factor));
    }
    *reinterpret_cast<Vec<T, 8> *>(dst0) = lo;
    *reinterpret_cast<Vec<T, 8> *>(dst1) = hi;
}

}  // namespace isthmus
