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

// Four codes of one 32-bit word (byte j = element j) as two f16x2 registers for mma.sync: lo holds
// elements 0, 1 and hi elements 2, 3 (the lower index in the lower half). Every int8 and every
// E4M3 value is exact in f16, so the tensor cores can take the codes themselves, the scale applied
// to the mma's f32 result instead.
//
// int8: the byte b with its sign bit flipped is b + 128 in [1, 255]; under the f16 exponent byte
// 0x64 (1024, whose ulp is 1) it reads 1024 + b + 128, and one f16x2 subtraction of 1152 leaves b,
// exactly: five instructions for the word (one xor, then a byte permute and a sub for each pair).
constexpr uint32_t kF16x2Magic = 0x64646464u;   // the 0x64 bytes the permute takes
constexpr uint32_t kF16x2Bias = 0x64806480u;    // 1152 in both halves
__device__ __forceinline__ uint32_t f16x2_sub(uint32_t a, uint32_t b) {
#ifdef ISTHMUS_EMULATION
    __half_raw x, y;
    uint32_t r = 0;
    for (int j = 0; j < 2; ++j) {
        x.x = static_cast<unsigned short>(a >> (16 * j));
        y.x = static_cast<unsigned short>(b >> (16 * j));
        const __half_raw d = __float2half_rn(__half2float(__half(x)) - __half2float(__half(y)));
        r |= static_cast<uint32_t>(d.x) << (16 * j);
    }
    return r;
#else
    uint32_t d;
    asm("sub.f16x2 %0, %1, %2;\n" : "=r"(d) : "r"(a), "r"(b));
    return d;
#endif
}
__device__ __forceinline__ void codes_to_f16x2(int8_t, uint32_t w, uint32_t &lo, uint32_t &hi) {
    const uint32_t biased = w ^ 0x80808080u;
    lo = f16x2_sub(__byte_perm(biased, kF16x2Magic, 0x4140u), kF16x2Bias);  // bytes (b0, 0x64, b1, 0x64)
    hi = f16x2_sub(__byte_perm(biased, kF16x2Magic, 0x4342u), kF16x2Bias);
}
// E4M3: sm_89 and later convert two codes to f16x2 in one instruction; elsewhere (sm_80/86, and the
// host emulation) each code goes through the exact e4m3_to_float.
__device__ __forceinline__ void codes_to_f16x2(Fp8E4m3, uint32_t w, uint32_t &lo, uint32_t &hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890 && !defined(ISTHMUS_EMULATION)
    asm("{\n .reg .b16 l, h;\n mov.b32 {l, h}, %2;\n cvt.rn.f16x2.e4m3x2 %0, l;\n cvt.rn.f16x2.e4m3x2 %1, h;\n}\n"
        : "=r"(lo), "=r"(hi)
        : "r"(w));
#else
    uint32_t f[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) f[j] = static_cast<__half_raw>(__float2half_rn(e4m3_to_float((w >> (8 * j)) & 0xffu))).x;
    lo = f[0] | f[1] << 16;
    hi = f[2] | f[3] << 16;
#endif
}

}  // namespace isthmus
