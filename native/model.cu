// Launchers of the element-wise model kernels (cuda/model.cuh): check the arguments, size a
// grid-stride grid, launch on the caller's stream.
#include "../cuda/model.cuh"
#include "status.h"

#include <type_traits>

using namespace isthmus;

namespace {

constexpr unsigned THREADS = 256;

// Enough blocks to cover `count` once, capped: the loops stride over the rest.
dim3 grid_for(int64_t count) {
    int64_t blocks = (count + THREADS - 1) / THREADS;
    if (blocks < 1) blocks = 1;
    if (blocks > 65535) blocks = 65535;
    return dim3(static_cast<unsigned>(blocks));
}

// Calls f with a null pointer of the storage type of `dtype`; false for a dtype that is not a float.
template <typename F>
bool with_float_type(int32_t dtype, F f) {
    switch (dtype) {
        case ISTHMUS_F32: f(static_cast<float *>(nullptr)); return true;
        case ISTHMUS_F16: f(static_cast<__half *>(nullptr)); return true;
        case ISTHMUS_BF16: f(static_cast<__nv_bfloat16 *>(nullptr)); return true;
        default: return false;
    }
}

}  // namespace

extern "C" int isthmus_embedding(void *out, const void *table, const int32_t *ids, int64_t tokens, int64_t vocab,
                                 int64_t hidden, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && table != nullptr && ids != nullptr,
                    "isthmus_embedding: out, table and ids must not be NULL");
    ISTHMUS_REQUIRE(tokens >= 0 && vocab > 0 && hidden > 0,
                    "isthmus_embedding: tokens %lld must be >= 0, vocab %lld and hidden %lld positive",
                    static_cast<long long>(tokens), static_cast<long long>(vocab), static_cast<long long>(hidden));
    if (tokens == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    bool known = with_float_type(dtype, [&](auto *type) {
        using T = std::remove_pointer_t<decltype(type)>;
        ISTHMUS_LAUNCH(grid_for(tokens * hidden), THREADS, 0, s, embedding_kernel<T>)(
            static_cast<T *>(out), static_cast<const T *>(table), ids, tokens, vocab, hidden);
    });
    if (!known) return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_embedding: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    ISTHMUS_CHECK_LAUNCH("isthmus_embedding");
    return ISTHMUS_OK;
}

extern "C" int isthmus_add_bias(void *out, const void *x, const void *bias, int64_t rows, int64_t cols, int32_t dtype,
                                void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && x != nullptr && bias != nullptr, "isthmus_add_bias: out, x and bias must not be NULL");
    ISTHMUS_REQUIRE(rows >= 0 && cols > 0, "isthmus_add_bias: rows %lld must be >= 0 and cols %lld positive",
                    static_cast<long long>(rows), static_cast<long long>(cols));
    if (rows == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    bool known = with_float_type(dtype, [&](auto *type) {
        using T = std::remove_pointer_t<decltype(type)>;
        ISTHMUS_LAUNCH(grid_for(rows * cols), THREADS, 0, s, add_bias_kernel<T>)(
            static_cast<T *>(out), static_cast<const T *>(x), static_cast<const T *>(bias), rows, cols);
    });
    if (!known) return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_add_bias: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    ISTHMUS_CHECK_LAUNCH("isthmus_add_bias");
    return ISTHMUS_OK;
}

extern "C" int isthmus_silu_mul(void *out, const void *gate, const void *up, int64_t count, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && gate != nullptr && up != nullptr, "isthmus_silu_mul: out, gate and up must not be NULL");
    ISTHMUS_REQUIRE(count >= 0, "isthmus_silu_mul: count %lld must be >= 0", static_cast<long long>(count));
    if (count == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    bool known = with_float_type(dtype, [&](auto *type) {
        using T = std::remove_pointer_t<decltype(type)>;
        ISTHMUS_LAUNCH(grid_for(count), THREADS, 0, s, silu_mul_kernel<T>)(
            static_cast<T *>(out), static_cast<const T *>(gate), static_cast<const T *>(up), count);
    });
    if (!known) return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_silu_mul: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    ISTHMUS_CHECK_LAUNCH("isthmus_silu_mul");
    return ISTHMUS_OK;
}

extern "C" int isthmus_argmax(int32_t *out, const float *logits, int64_t rows, int64_t cols, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && logits != nullptr, "isthmus_argmax: out and logits must not be NULL");
    ISTHMUS_REQUIRE(rows >= 0 && rows <= 0x7fffffffLL, "isthmus_argmax: rows %lld out of range", static_cast<long long>(rows));
    ISTHMUS_REQUIRE(cols >= 1 && cols <= 0x7fffffffLL, "isthmus_argmax: cols %lld must be in [1, 2^31 - 1]", static_cast<long long>(cols));
    if (rows == 0) return ISTHMUS_OK;
    ISTHMUS_LAUNCH(static_cast<unsigned>(rows), kArgmaxThreads, 0, static_cast<cudaStream_t>(stream), argmax_kernel)(out, logits, cols);
    ISTHMUS_CHECK_LAUNCH("isthmus_argmax");
    return ISTHMUS_OK;
}
